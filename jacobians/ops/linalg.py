"""Matrix ops: matmul, trace, fro, inv, det, logdet, solve.

Index formulas (numpy row-major; Jacobian axes are out axes then in axes):

    Y = A B        dY[i,j]/dA[p,q] = δ_ip B[q,j]          dY[i,j]/dB[p,q] = A[i,p] δ_qj
    y = tr A       dy/dA[p,q] = δ_pq
    y = ‖A‖_F      dy/dA[p...] = A[p...] / y
    Y = A⁻¹        dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j]
    y = det A      dy/dA[p,q] = y (A⁻¹)[q,p]
    y = log|det A| dy/dA[p,q] = (A⁻¹)[q,p]
    X = A⁻¹ B      dX[i,j]/dA[p,q] = -(A⁻¹)[i,p] X[q,j]   dX[i,j]/dB[p,q] = (A⁻¹)[i,p] δ_qj
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from .. import memory
from ..node import Node, apply
from ..registry import Factor, Factored, Op, Product, register
from ..scatter import tied_view

__all__ = ["matmul", "trace", "fro", "inv", "det", "logdet", "solve"]

Shape = Tuple[int, ...]


# ------------------------------------------------------------------ matmul
def _matmul_shape(a: Shape, b: Shape) -> Shape:
    if not (1 <= len(a) <= 2 and 1 <= len(b) <= 2):
        raise ValueError(
            f"matmul: shapes {a} @ {b}: only matrices and vectors (ndim 1 or 2) are supported; "
            "reshape batched operands or write the product with several matmuls"
        )
    if a[-1] != b[0]:
        raise ValueError(
            f"matmul: shapes {a} @ {b} do not match: the last axis of the left ({a[-1]}) must equal "
            f"the first axis of the right ({b[0]}); did you mean a transpose (.T)?"
        )
    return a[:-1] + b[1:]


def _as_matrices(a: np.ndarray, b: np.ndarray):
    """Promote vectors as numpy's matmul does: a (k,) -> (1, k), b (k,) -> (k, 1)."""
    return (a if a.ndim == 2 else a[None, :]), (b if b.ndim == 2 else b[:, None])


# dY[i,j]/dA[p,q] = δ_ip B[q,j]
def _matmul_jac_a(y, a, b):
    a2, b2 = _as_matrices(a, b)
    m, n, k = a2.shape[0], b2.shape[1], a2.shape[1]
    J = memory.zeros((m, n, m, k), y.dtype, "jacobian of matmul w.r.t. its left input")
    tied_view(J, [(0, 2)])[...] = b2.T[None, :, :]  # J[i,j,i,q] = B[q,j]
    return J.reshape(y.shape + a.shape)


# dY[i,j]/dB[p,q] = A[i,p] δ_qj
def _matmul_jac_b(y, a, b):
    a2, b2 = _as_matrices(a, b)
    m, n, k = a2.shape[0], b2.shape[1], a2.shape[1]
    J = memory.zeros((m, n, k, n), y.dtype, "jacobian of matmul w.r.t. its right input")
    tied_view(J, [(1, 3)])[...] = a2[:, None, :]  # J[i,j,p,j] = A[i,p]
    return J.reshape(y.shape + b.shape)


def _matmul_vjp_a(g, y, a, b):  # dl/dA = G Bᵀ
    a2, b2 = _as_matrices(a, b)
    return (g.reshape(a2.shape[0], b2.shape[1]) @ b2.T).reshape(a.shape)


def _matmul_vjp_b(g, y, a, b):  # dl/dB = Aᵀ G
    a2, b2 = _as_matrices(a, b)
    return (a2.T @ g.reshape(a2.shape[0], b2.shape[1])).reshape(b.shape)


# factored: the same formulas; a vector operand drops its row (A) or column (B) letter
def _matmul_fac_a(y, a, b):  # δ_ip B[q,j]
    i, p = ("i", "p") if a.ndim == 2 else ("", "")
    j = "j" if b.ndim == 2 else ""
    return Factored(i + j, p + "q", (Product((Factor(b, "q" + j, "{x1}"),), (i + p,) if i else ()),))


def _matmul_fac_b(y, a, b):  # A[i,p] δ_qj
    i = "i" if a.ndim == 2 else ""
    j, q = ("j", "q") if b.ndim == 2 else ("", "")
    return Factored(i + j, "p" + q, (Product((Factor(a, i + "p", "{x0}"),), (j + q,) if j else ()),))


_MATMUL = register(Op(
    "matmul", np.matmul, _matmul_shape,
    jacobians=(_matmul_jac_a, _matmul_jac_b),
    vjps=(_matmul_vjp_a, _matmul_vjp_b),
    formula="dY[i,j]/dA[p,q] = δ_ip B[q,j] ;  dY[i,j]/dB[p,q] = A[i,p] δ_qj",
    factored=(_matmul_fac_a, _matmul_fac_b),
))


def matmul(a: Any, b: Any) -> Node:
    """Matrix product ``a @ b`` of matrices and vectors (also the ``@`` operator).

    dY[i,j]/dA[p,q] = δ_ip B[q,j] ;  dY[i,j]/dB[p,q] = A[i,p] δ_qj

    >>> import numpy as np, jacobians as jx
    >>> W = jx.var(np.ones((2, 3)), name="W")
    >>> X = np.arange(12.0).reshape(3, 4)
    >>> J = jx.jacobian(W @ X, W)        # a 4-tensor: out (2, 4) + in (2, 3)
    >>> J.shape, float(J[0, 1, 0, 2]), float(J[1, 1, 0, 2])  # δ_ca X[b,d]: X[2,1], then 0
    ((2, 4, 2, 3), 9.0, 0.0)
    """
    return apply(_MATMUL, a, b)


# ------------------------------------------------------------- square-matrix ops
def _square_rule(name: str):
    def rule(s: Shape) -> Shape:
        if len(s) != 2 or s[0] != s[1]:
            raise ValueError(f"{name}: needs a square matrix, got shape {s}")
        return ()

    return rule


def _inv_shape(s: Shape) -> Shape:
    _square_rule("inv")(s)
    return tuple(s)


# dy/dA[p,q] = δ_pq
_TRACE = register(Op(
    "trace", np.trace, _square_rule("trace"),
    jacobians=(lambda y, a: np.eye(a.shape[0], dtype=y.dtype),),
    vjps=(lambda g, y, a: g * np.eye(a.shape[0], dtype=a.dtype),),
    formula="dy/dA[p,q] = δ_pq",
    factored=(lambda y, a: Factored("", "pq", (Product((), ("pq",)),)),),
))


_IN = "pqrstuvwxyzABCD"  # input letters of a factored form


# dy/dA[p...] = A[p...] / y
_FRO = register(Op(
    "fro", lambda a: np.sqrt(np.sum(a * a)), lambda s: (),
    jacobians=(lambda y, a: (a / y).astype(y.dtype),),
    vjps=(lambda g, y, a: g * a / y,),
    formula="dy/dA[p...] = A[p...] / ‖A‖_F",
    factored=(lambda y, a: Factored("", _IN[:a.ndim], (Product(
        (Factor(a, _IN[:a.ndim], "{x0}"), Factor(np.asarray(1.0 / y, dtype=y.dtype), "", "1/{y}"))),)),),
))


# dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j]
def _inv_jac(y, a):
    J = memory.zeros(y.shape + a.shape, y.dtype, "jacobian of inv")
    np.multiply(-y[:, None, :, None], y.T[None, :, None, :], out=J)
    return J


_INV = register(Op(
    "inv", np.linalg.inv, _inv_shape,
    jacobians=(_inv_jac,),
    vjps=(lambda g, y, a: -(y.T @ g @ y.T),),
    formula="dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j]",
    factored=(lambda y, a: Factored("ij", "pq", (Product((Factor(y, "ip", "{y}"), Factor(y, "qj", "{y}")), (),
                                                         -1.0),)),),
))


# dy/dA[p,q] = y (A⁻¹)[q,p]
_DET = register(Op(
    "det", np.linalg.det, _square_rule("det"),
    jacobians=(lambda y, a: (y * np.linalg.inv(a).T).astype(y.dtype),),
    vjps=(lambda g, y, a: g * y * np.linalg.inv(a).T,),
    formula="dy/dA[p,q] = det(A) (A⁻¹)[q,p]",
    factored=(lambda y, a: Factored("", "pq", (Product(
        (Factor(np.asarray(y), "", "{y}"), Factor(np.linalg.inv(a), "qp", "{x0}⁻¹"))),)),),
))


# dy/dA[p,q] = (A⁻¹)[q,p]
_LOGDET = register(Op(
    "logdet", lambda a: np.linalg.slogdet(a)[1], _square_rule("logdet"),
    jacobians=(lambda y, a: np.ascontiguousarray(np.linalg.inv(a).T, dtype=y.dtype),),
    vjps=(lambda g, y, a: g * np.linalg.inv(a).T,),
    formula="dy/dA[p,q] = (A⁻¹)[q,p]",
    factored=(lambda y, a: Factored("", "pq", (Product((Factor(np.linalg.inv(a), "qp", "{x0}⁻¹"),)),)),),
))


def trace(a: Any) -> Node:
    """Trace of a square matrix.  dy/dA[p,q] = δ_pq

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.ones((2, 2)))
    >>> jx.grad(jx.trace(A), A).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    return apply(_TRACE, a)


def fro(a: Any) -> Node:
    """Frobenius norm ‖A‖_F = sqrt(Σ A²) of an array of any rank (a scalar node).

    dy/dA[p...] = A[p...] / ‖A‖_F  (undefined at A = 0, where it gives nan)

    >>> import jacobians as jx
    >>> A = jx.var([[3.0, 0.0], [0.0, 4.0]])
    >>> float(jx.fro(A).value), jx.grad(jx.fro(A), A).tolist()
    (5.0, [[0.6, 0.0], [0.0, 0.8]])
    """
    return apply(_FRO, a)


def inv(a: Any) -> Node:
    """Inverse of a square matrix.  dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j]

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[2.0, 0.0], [0.0, 4.0]])
    >>> jx.inv(A).value.tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    """
    return apply(_INV, a)


def det(a: Any) -> Node:
    """Determinant of a square matrix.  dy/dA[p,q] = det(A) (A⁻¹)[q,p]

    >>> import jacobians as jx
    >>> A = jx.var([[2.0, 1.0], [0.0, 3.0]])
    >>> float(jx.det(A).value), jx.grad(jx.det(A), A).tolist()
    (6.0, [[3.0, 0.0], [-1.0, 2.0]])
    """
    return apply(_DET, a)


def logdet(a: Any) -> Node:
    """log |det A| of a square matrix (the sign is dropped, as in ``np.linalg.slogdet``).

    dy/dA[p,q] = (A⁻¹)[q,p]

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.diag([1.0, np.e]))
    >>> round(float(jx.logdet(A).value), 12), jx.grad(jx.logdet(A), A).round(6).tolist()
    (1.0, [[1.0, 0.0], [0.0, 0.367879]])
    """
    return apply(_LOGDET, a)


# ------------------------------------------------------------------- solve
def _solve_shape(a: Shape, b: Shape) -> Shape:
    if len(a) != 2 or a[0] != a[1]:
        raise ValueError(f"solve: the matrix A must be square, got shapes A {a} and B {b}")
    if len(b) not in (1, 2) or b[0] != a[0]:
        raise ValueError(
            f"solve: B must be a vector or matrix with {a[0]} rows to match A {a}, got B {b}"
        )
    return tuple(b)


# dX[i,j]/dA[p,q] = -(A⁻¹)[i,p] X[q,j]
def _solve_jac_a(x, a, b):
    x2 = x if x.ndim == 2 else x[:, None]
    J = memory.zeros(x2.shape + a.shape, x.dtype, "jacobian of solve w.r.t. A")
    np.multiply(-np.linalg.inv(a)[:, None, :, None], x2.T[None, :, None, :], out=J)
    return J.reshape(x.shape + a.shape)


# dX[i,j]/dB[p,q] = (A⁻¹)[i,p] δ_qj
def _solve_jac_b(x, a, b):
    x2 = x if x.ndim == 2 else x[:, None]
    n, m = x2.shape
    J = memory.zeros((n, m, n, m), x.dtype, "jacobian of solve w.r.t. B")
    tied_view(J, [(1, 3)])[...] = np.linalg.inv(a)[:, None, :]
    return J.reshape(x.shape + b.shape)


def _solve_vjp_b(g, x, a, b):  # dl/dB = A⁻ᵀ G
    return np.linalg.solve(a.T, g)


def _solve_vjp_a(g, x, a, b):  # dl/dA = -(A⁻ᵀ G) Xᵀ
    gb = np.linalg.solve(a.T, g)
    return -(np.outer(gb, x) if x.ndim == 1 else gb @ x.T)


def _solve_fac_a(x, a, b):  # -(A⁻¹)[i,p] X[q,j]   (a vector X drops j)
    j = "j" if x.ndim == 2 else ""
    ainv = Factor(np.linalg.inv(a), "ip", "{x0}⁻¹")
    return Factored("i" + j, "pq", (Product((ainv, Factor(x, "q" + j, "{y}")), (), -1.0),))


def _solve_fac_b(x, a, b):  # (A⁻¹)[i,p] δ_qj   (a vector B drops q and j)
    j, q = ("j", "q") if x.ndim == 2 else ("", "")
    return Factored("i" + j, "p" + q, (Product((Factor(np.linalg.inv(a), "ip", "{x0}⁻¹"),), (j + q,) if j else ()),))


_SOLVE = register(Op(
    "solve", np.linalg.solve, _solve_shape,
    jacobians=(_solve_jac_a, _solve_jac_b),
    vjps=(_solve_vjp_a, _solve_vjp_b),
    formula="dX[i,j]/dA[p,q] = -(A⁻¹)[i,p] X[q,j] ;  dX[i,j]/dB[p,q] = (A⁻¹)[i,p] δ_qj",
    factored=(_solve_fac_a, _solve_fac_b),
))


def solve(a: Any, b: Any) -> Node:
    """X = A⁻¹ B for square A and a vector or matrix B (as ``np.linalg.solve``).

    dX[i,j]/dA[p,q] = -(A⁻¹)[i,p] X[q,j] ;  dX[i,j]/dB[p,q] = (A⁻¹)[i,p] δ_qj

    >>> import jacobians as jx
    >>> A = jx.var([[2.0, 0.0], [0.0, 4.0]]); b = jx.var([2.0, 2.0])
    >>> jx.solve(A, b).value.tolist(), jx.jacobian(jx.solve(A, b), b).tolist()
    ([1.0, 0.5], [[0.5, 0.0], [0.0, 0.25]])
    """
    return apply(_SOLVE, a, b)
