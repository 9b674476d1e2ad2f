"""Matrix ops beyond the einsum family: fro, inv, det, logdet, solve.

Index formulas (numpy row-major; Jacobian axes are out axes then in axes), each
declared once below as the op's factored form:

    y = ‖A‖_F      dy/dA[p...] = A[p...] / y
    Y = A⁻¹        dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j]
    y = det A      dy/dA[p,q] = y (A⁻¹)[q,p]
    y = log|det A| dy/dA[p,q] = (A⁻¹)[q,p]
    X = A⁻¹ B      dX[i,j]/dA[p,q] = -(A⁻¹)[i,p] X[q,j]   dX[i,j]/dB[p,q] = (A⁻¹)[i,p] δ_qj
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ..form import IN_LABELS, Factor, Factored, Product
from ..node import Node
from ..registry import Op, apply, register

__all__ = ["fro", "inv", "det", "logdet", "solve"]

Shape = Tuple[int, ...]


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


# dy/dA[p...] = A[p...] / y
_FRO = register(Op(
    "fro", lambda a: np.sqrt(np.sum(a * a)), lambda s: (),
    vjps=(lambda g, y, a: g * a / y,),
    forms=(lambda y, a: Factored("", IN_LABELS[:a.ndim], (Product(
        (Factor(a, IN_LABELS[:a.ndim], "{x0}"), Factor(np.asarray(1.0 / y, dtype=y.dtype), "", "1/{y}"))),)),),
))


_INV = register(Op(
    "inv", np.linalg.inv, _inv_shape,
    vjps=(lambda g, y, a: -(y.T @ g @ y.T),),
    example=((3, 3),),
    forms=(lambda y, a: Factored("ij", "pq", (Product((Factor(y, "ip", "{y}"), Factor(y, "qj", "{y}")), (),
                                                         -1.0),)),),
))


# dy/dA[p,q] = y (A⁻¹)[q,p]
_DET = register(Op(
    "det", np.linalg.det, _square_rule("det"),
    vjps=(lambda g, y, a: g * y * np.linalg.inv(a).T,),
    example=((3, 3),),
    forms=(lambda y, a: Factored("", "pq", (Product(
        (Factor(np.asarray(y), "", "{y}"), Factor(np.linalg.inv(a), "qp", "{x0}⁻¹"))),)),),
))


# dy/dA[p,q] = (A⁻¹)[q,p]
_LOGDET = register(Op(
    "logdet", lambda a: np.linalg.slogdet(a)[1], _square_rule("logdet"),
    vjps=(lambda g, y, a: g * np.linalg.inv(a).T,),
    example=((3, 3),),
    forms=(lambda y, a: Factored("", "pq", (Product((Factor(np.linalg.inv(a), "qp", "{x0}⁻¹"),)),)),),
))


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
    vjps=(_solve_vjp_a, _solve_vjp_b),
    example=((3, 3), (3, 2)),
    forms=(_solve_fac_a, _solve_fac_b),
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
