"""The gradient checker, shipped in the package (and itself tested on a wrong rule).

``check_node(y)`` takes a node made by one op from leaves and checks, for every
differentiable parent x:

1. the explicit Jacobian has shape ``y.shape + x.shape``;
2. it matches central differences (float64);
3. the hand-written VJP of a random cotangent g matches the contraction
   ``Σ_i g[i] J[i, ...]`` of g with the dense Jacobian.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from .compare import discrepancy
from .graph import local_jacobian
from .node import Node
from .numeric import jacobian_numeric
from .vjp_route import backward

__all__ = ["check_node", "JacobianMismatch", "CheckResult"]


class JacobianMismatch(AssertionError):
    """An op's explicit Jacobian or VJP disagrees with an independent route."""


@dataclass
class CheckResult:
    parent: str
    shape_ok: bool
    vs_numeric: float  # normwise relative discrepancy
    vjp_vs_contraction: float


def check_node(y: Node, rtol_numeric: float = 1e-6, rtol_vjp: float = 1e-10,
               seed: int = 0, raise_on_error: bool = True) -> List[CheckResult]:
    """Check the op that made ``y`` against central differences and its own VJP.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.linspace(-1, 1, 5), name="x")
    >>> [round(r.vs_numeric, 8) for r in check_node(jx.tanh(x))]
    [0.0]
    """
    if y.op is None:
        raise ValueError(f"check_node: {y.name} is a leaf; pass a node made by an op")
    rng = np.random.default_rng(seed)
    out = []
    for x in {p.id: p for p in y.parents if p.kind != "const"}.values():
        J = local_jacobian(y, x)
        shape_ok = J.shape == y.shape + x.shape
        _, num = discrepancy(J, jacobian_numeric(y, x))
        g = rng.standard_normal(y.shape).astype(y.dtype)
        contracted = np.tensordot(g, J, axes=y.ndim) if y.ndim else g * J
        _, vjp = discrepancy(backward(y, x, g), contracted)
        result = CheckResult(x.name, shape_ok, num, vjp)
        out.append(result)
        if raise_on_error and not (shape_ok and num <= rtol_numeric and vjp <= rtol_vjp):
            raise JacobianMismatch(
                f"op {y.op.name}, input {x.name} {x.shape}: Jacobian shape {J.shape} "
                f"(expected {y.shape + x.shape}), relative discrepancy vs central differences {num:.2e} "
                f"(tol {rtol_numeric:.0e}), VJP vs contracted Jacobian {vjp:.2e} (tol {rtol_vjp:.0e}); "
                f"compare the rule with its formula: {y.op.formula}"
            )
    return out
