"""The second-order chain rule with numbers: the Gauss–Newton part and the curvature part of a Hessian.

For l = L(u) with u = f(x), differentiating dl/dx = Σ_i g_i du_i/dx once more gives

    d²l/dx² = Jᵀ H_u J  +  Σ_i g_i ∂²u_i/∂x²
              (Gauss–Newton)   (curvature)

with J = du/dx, H_u = d²l/du² and g = dl/du (u held as an independent input).
:func:`split_hessian` computes each piece on its own route — J by the factored
Jacobian, H_u and ∂²u by the factored Hessian, g by the VJPs — and checks that
their sum is the Hessian of l. ``jx.explain(l, x, hessian=True)`` shows it.

>>> import numpy as np, jacobians as jx
>>> X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.5]])
>>> w = jx.var([0.3, -0.4], name="w")
>>> s = split_hessian(jx.sum((jx.tanh(X @ w) - 1.0) ** 2), w)
>>> s.u.op.name, s.gauss_newton.shape, bool(np.allclose(s.gauss_newton + s.curvature, s.hessian))
('tanh', (2, 2), True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from .api import grad, jacobian
from .graph import between
from .memory import JacobianTooLarge
from .node import Node

__all__ = ["HessianSplit", "split_hessian", "loss_input", "LOSS_OPS"]

LOSS_OPS = ("mse", "cross_entropy", "binary_cross_entropy", "nll", "huber", "hinge", "kl_div")
# ops that a loss applies to the model's output on the way to l: reductions, and elementwise with constants
_LOSS_STEPS = ("sum", "mean", "fro", "power", "square", "subtract", "add", "abs", "multiply", "divide", "negative")
_SHOWN = 36  # a Hessian with at most this many entries is printed whole


def loss_input(l: Node, x: Node, hold: Sequence[Node] = ()) -> Node:
    """The node a loss reads: the input of a loss op, or what its reductions and elementwise steps with
    constants (``sum((out − T)²)``) start from. l itself when l is no such loss.

    >>> import numpy as np, jacobians as jx
    >>> W = jx.var(np.ones((2, 2)), name="W")
    >>> out = jx.tanh(W)
    >>> loss_input(jx.sum((out - 1.0) ** 2), W) is out
    True
    """
    n = l
    while n.op is not None and n.id != x.id:
        on_path = [p for p in n.parents if between(p, x, hold)]
        if len(on_path) != 1:
            break
        if n.op.name in LOSS_OPS:
            return on_path[0]
        if n.op.name not in _LOSS_STEPS:
            break
        n = on_path[0]
    return n


def _summary(M: np.ndarray) -> str:
    sym = M.shape[0] == M.shape[1] and np.allclose(M, M.T, atol=1e-10 * max(1.0, np.abs(M).max(initial=0)))
    text = f"‖·‖_F = {np.linalg.norm(M):.4g}"
    if sym and M.size:
        ev = np.linalg.eigvalsh((M + M.T) / 2)
        scale = max(1.0, np.abs(ev).max())
        tol = 1e-10 * scale
        kind = "positive semi-definite" if ev.min() >= -tol else "negative semi-definite" if ev.max() <= tol \
            else "indefinite"
        text += f", eigenvalues in [{ev.min():.4g}, {ev.max():.4g}] ({kind})"
    return text


@dataclass
class HessianSplit:
    """d²l/dx² and its two parts at u: ``gauss_newton`` (Jᵀ H_u J) and ``curvature`` (Σ g ∂²u), as
    x.size × x.size matrices (numpy's row-major vec), and the Hessian they add up to."""

    l: Node
    x: Node
    u: Node
    gauss_newton: np.ndarray
    curvature: np.ndarray
    hessian: np.ndarray
    form: object = None  # jx.derive(l, x, order=2), the structure

    @property
    def agree(self) -> float:
        """max |Jᵀ H_u J + Σ g ∂²u − H|: the second-order chain rule checked with numbers."""
        return float(np.abs(self.gauss_newton + self.curvature - self.hessian).max(initial=0.0))

    def __str__(self) -> str:
        x, u = self.x.name, "l itself" if self.u.id == self.l.id else f"{self.u.name} {self.u.shape}"
        lines = [f"Hessian of {self.l.name} w.r.t. {x} {self.x.shape}, split at u = {u}:",
                 f"  d²l/d{x}² = Jᵀ H_u J + Σ_i g_i ∂²u_i/d{x}²   (J = du/d{x}, H_u = d²l/du², g = dl/du)"]
        if self.form is not None:
            lines += ["  structure: " + line.strip() for line in str(self.form).splitlines()]
        rows = [("Gauss–Newton Jᵀ H_u J", self.gauss_newton), ("curvature Σ g ∂²u", self.curvature),
                ("Hessian", self.hessian)]
        for name, M in rows:
            lines.append(f"  {name:<22} {_summary(M)}")
        same = self.agree <= 1e-8 * max(1.0, np.abs(self.hessian).max(initial=0.0))
        lines.append(f"  Gauss–Newton + curvature = Hessian: {'yes' if same else 'NO'} (max |difference| {self.agree:.1e})")
        if self.u.id == self.l.id:
            lines.append("  (l is no loss of a model output: the Gauss–Newton part is 0; pass at=u to split elsewhere)")
        if self.hessian.size <= _SHOWN:
            for name, M in rows:
                lines.append(f"  {name}:")
                lines += ["    " + r for r in np.array2string(M, precision=4, suppress_small=True).splitlines()]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```\n"


def split_hessian(l: Node, x: Node, at: Optional[Node] = None, hold: Sequence[Node] = (),
                  names: Optional[Mapping[Node, str]] = None) -> HessianSplit:
    """The Gauss–Newton and curvature parts of d²l/dx² at u (default: :func:`loss_input`)."""
    from .hessian_form import hessian_form
    from .second_order import hessian

    if not isinstance(l, Node) or not isinstance(x, Node) or l.size != 1:
        raise ValueError("explain(hessian=True): l must be a scalar node and x a node, e.g. "
                         "jx.explain(jx.sum((out - T) ** 2), W, hessian=True)")
    u = loss_input(l, x, hold) if at is None else at
    if not isinstance(u, Node) or (u.id != l.id and not between(l, u, hold)):
        raise ValueError(f"explain(hessian=True): at= must be a node that {l.name} depends on")
    n = x.size
    try:
        H = hessian(l, x, hold=hold).reshape(n, n)
        if u.id == l.id:
            gn, curv = np.zeros_like(H), H.copy()
        else:
            J = jacobian(u, x, hold=hold).reshape(u.size, n)
            H_u = hessian(l, u, hold=hold).reshape(u.size, u.size)
            g = grad(l, u, hold=hold).reshape(u.size)
            d2u = hessian(u, x, hold=hold).reshape(u.size, n, n)
            gn, curv = J.T @ H_u @ J, np.einsum("i,iab->ab", g, d2u)
    except JacobianTooLarge as exc:
        raise JacobianTooLarge(f"explain(hessian=True): {exc}", exc.what, exc.shape, exc.nbytes, exc.limit) from None
    form = hessian_form(l, x, hold, names)
    return HessianSplit(l, x, u, gn, curv, H, form)
