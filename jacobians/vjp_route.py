"""The VJP route: reverse accumulation with the ops' hand-written VJPs only.

``backward(y, x, g)`` pulls one cotangent g (shape y.shape) back to x:
dl/dx = gᵀ · dy/dx, never forming a Jacobian. A full Jacobian is one pull-back
per basis cotangent e_k (one row of the matricized Jacobian each) — what
``jax.jacrev`` does; the explicit route is the other way round.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import memory
from .graph import between
from .node import Node
from .registry import op_errors
from .sweep import reverse_sweep

__all__ = ["backward", "jacobian_vjp"]


def _pullback(nodes: List[Node], y: Node, x: Node, g: np.ndarray) -> np.ndarray:
    def pull(n: Node, p: Node, gn: np.ndarray) -> np.ndarray:
        values = [q.value for q in n.parents]
        total = None
        for i, q in enumerate(n.parents):
            if q is p:
                with op_errors(n.op, n.parents, "VJP"):
                    gp = n.op.vjp(i, gn, n.value, *values, **n.params)
                if not isinstance(gp, np.ndarray) or gp.dtype != n.value.dtype:
                    gp = np.asarray(gp, dtype=n.value.dtype)
                if gp.shape != p.value.shape:
                    gp = gp.reshape(p.value.shape)
                total = gp if total is None else total + gp
        return total

    return reverse_sweep(nodes, y, x, g, pull)


def backward(y: Node, x: Node, g: np.ndarray, hold: Sequence[Node] = (),
             nodes: Optional[List[Node]] = None) -> np.ndarray:
    """The cotangent of x for the cotangent ``g`` of y: Σ_i g[i] dy[i]/dx (shape x.shape).

    >>> import numpy as np, jacobians as jx
    >>> W = jx.var(np.eye(2)); X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> Y = W @ X
    >>> backward(Y, W, 2 * Y.value).tolist()            # 2 Y Xᵀ
    [[10.0, 22.0], [22.0, 50.0]]

    ``nodes`` is ``between(y, x, hold)`` when the caller has it already.
    """
    g = np.asarray(g, dtype=y.dtype)
    if g.shape != y.shape:
        raise ValueError(f"backward: cotangent shape {g.shape} does not match {y.name}'s shape {y.shape}")
    if y.id == x.id:
        return g.copy()
    nodes = between(y, x, hold) if nodes is None else nodes
    if not nodes:
        return np.zeros(x.shape, dtype=np.result_type(y.dtype, x.dtype))
    return np.asarray(_pullback(nodes, y, x, g), order="C")


def jacobian_vjp(y: Node, x: Node, hold: Sequence[Node] = ()) -> np.ndarray:
    """Dense dy/dx built row by row: one VJP pull-back per entry of y."""
    dtype = np.result_type(y.dtype, x.dtype)
    J = memory.zeros(y.shape + x.shape, dtype, f"jacobian d{y.name}/d{x.name} (vjp route)")
    nodes = between(y, x, hold) if y.id != x.id else [x]
    if not nodes:
        return J
    rows = J.reshape(y.size, *x.shape)
    e = np.zeros(y.size, dtype=y.dtype)
    for k in range(y.size):
        e[k] = 1
        rows[k] = _pullback(nodes, y, x, e.reshape(y.shape)) if y.id != x.id else e.reshape(x.shape)
        e[k] = 0
    return J
