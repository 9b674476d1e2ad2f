"""Linear algebra on matrices and on stacks of them, numpy's ``(..., n, n)`` convention.

Every op but ``fro`` acts on the last two axes and maps each matrix of a stack
on its own: a batch axis is one delta in the form (``δ_as``: matrix a of the
output reaches only matrix a of the input) and a broadcast batch axis none.
Index formulas (numpy row-major; Jacobian axes are out axes then in axes; the
batch axes, a ↔ s, are left out), each declared once below as the op's
factored form:

    y = ‖A‖_F       dy/dA[p...] = A[p...] / y                   (the whole array, not batched)
    Y = A⁻¹         dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j]
    y = det A       dy/dA[p,q] = y (A⁻¹)[q,p]
    y = log|det A|  dy/dA[p,q] = (A⁻¹)[q,p]                    (logdet, and slogdet's second output)
    X = A⁻¹ B       dX[i,j]/dA[p,q] = -(A⁻¹)[i,p] X[q,j]   dX[i,j]/dB[p,q] = (A⁻¹)[i,p] δ_jq
    L = chol(A)     dL[i,j]/dA[p,q] = ½ Σ_m L[i,m] H[m,j] (L⁻¹[m,p] L⁻¹[j,q] + L⁻¹[m,q] L⁻¹[j,p])
    w, V = eigh A   dw[j]/dA[p,q] = V[p,j] V[q,j]
                    dV[i,j]/dA[p,q] = ½ Σ_m V[i,m] F[m,j] (V[p,m] V[q,j] + V[q,m] V[p,j])
    U, σ, Vᵀ = svd  dσ[j]/dA[p,q] = U[p,j] Vᵀ[j,q]   (dU, dVᵀ: see svd)
    Y = A⁺          dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j] + (Y Yᵀ)[i,q] (I - A Y)[p,j] + (I - Y A)[i,q] (Yᵀ Y)[p,j]
    Y = Aⁿ          dY[i,j]/dA[p,q] = Σ_k (A^k)[i,p] (A^(n-1-k))[q,j]     (n < 0: through A⁻¹)

with H the lower-triangle mask with ½ on the diagonal, F[m,j] = 1/(w_j - w_m)
(eigh) or 1/(σ_j² - σ_m²) (svd) off the diagonal and 0 on it. ``kron`` and
``cross`` are einsum specs (constant 0/1 selection matrices; the Levi-Civita
symbol ε), so they share the einsum family's form and VJP.

Conventions:

* ``cholesky``, ``eigh`` and ``eigvalsh`` read the symmetric part ½(A + Aᵀ) of A.
  numpy reads only the lower triangle; on a symmetric matrix the two are the
  same numbers, and the symmetric part gives the symmetric Jacobian of the
  matrix-calculus texts (gradients are symmetric matrices).
* Eigenvectors and singular vectors have a sign fixed by a rule: the entry of
  largest magnitude of each eigenvector, and of each left singular vector, is
  positive (the right one follows). The sign is then locally constant, so
  central differences and float32 agree with float64.
* ``eigh`` and ``svd`` (with vectors) refuse, with a ValueError, two eigenvalues
  (singular values) closer than ``gap_rtol`` × the spread (× σ_max): the vectors
  of a repeated value have no derivative.

Kink and tie policies (each op's ``policy``; the other ops are smooth where defined):

* fro: gradient 0 at A = 0 (the subgradient, as relu'(0) = 0)
* logdet: log|det A| has a pole at det A = 0 (the forward warns); slogdet's sign is a constant array, not differentiated
* cholesky: reads ½(A + Aᵀ) (numpy: the lower triangle), so gradients are symmetric
* eigh_w: reads ½(A + Aᵀ); at tied eigenvalues exact only for functions symmetric in the tied ones (their sum)
* eigvalsh: reads ½(A + Aᵀ); at tied eigenvalues exact only for functions symmetric in the tied ones (their sum)
* eigh_v: reads ½(A + Aᵀ); largest-magnitude entry of each eigenvector positive; jx.eigh refuses gaps ≤ 1e-6 × spread
* svd_s: at tied singular values exact only for functions symmetric in the tied ones; σ = 0 is a kink (numpy's U, V pick the side)
* svd_u: largest-magnitude entry of each column of U positive; jx.svd refuses gaps ≤ 1e-6 × σ_max (and σ ≈ 0 if m ≠ n)
* svd_vt: rows signed with U's columns; jx.svd refuses gaps ≤ 1e-6 × σ_max (and σ ≈ 0 if m ≠ n), full_matrices=True if m ≠ n
* pinv: differentiable where the rank is constant (full rank in practice); a change of rank is a jump
"""
from __future__ import annotations

import numbers
import string
from typing import Any, Tuple

import numpy as np

from ..form import IN_LABELS, Factor, Factored, Product, as_factor
from ..kernel import contract
from ..node import Node, concrete, shape_of
from ..registry import Op, apply, register
from .einsum import apply_spec, einsum_family, einsum_vjp, parse_einsum

__all__ = ["fro", "inv", "det", "logdet", "slogdet", "solve", "cholesky", "eigh", "eigvalsh", "svd", "pinv",
           "matrix_power", "kron", "cross"]

Shape = Tuple[int, ...]

GAP_RTOL = 1e-6  # eigh/svd: the smallest gap allowed between two eigenvalues (singular values), relative

_POLICY = {  # each op's kink or tie policy: the lines of the module docstring, word for word
    "logdet": "log|det A| has a pole at det A = 0 (the forward warns); slogdet's sign is a constant array, not differentiated",
    "cholesky": "reads ½(A + Aᵀ) (numpy: the lower triangle), so gradients are symmetric",
    "eigh_w": "reads ½(A + Aᵀ); at tied eigenvalues exact only for functions symmetric in the tied ones (their sum)",
    "eigvalsh": "reads ½(A + Aᵀ); at tied eigenvalues exact only for functions symmetric in the tied ones (their sum)",
    "eigh_v": "reads ½(A + Aᵀ); largest-magnitude entry of each eigenvector positive; jx.eigh refuses gaps ≤ 1e-6 × spread",
    "svd_s": "at tied singular values exact only for functions symmetric in the tied ones; σ = 0 is a kink (numpy's U, V pick the side)",
    "svd_u": "largest-magnitude entry of each column of U positive; jx.svd refuses gaps ≤ 1e-6 × σ_max (and σ ≈ 0 if m ≠ n)",
    "svd_vt": "rows signed with U's columns; jx.svd refuses gaps ≤ 1e-6 × σ_max (and σ ≈ 0 if m ≠ n), full_matrices=True if m ≠ n",
    "pinv": "differentiable where the rank is constant (full rank in practice); a change of rank is a jump",
}

_OB = "abcdefghABCDEFGH"  # batch axes of the output
_IB = "stuvwxyzSTUVWXYZ"  # batch axes of an input (matrix axes: i, j out; p, q in; m, k summed)


# ------------------------------------------------------------------ helpers
def _T(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _sym(a: np.ndarray) -> np.ndarray:
    return (a + _T(a)) * 0.5


def _eye(n: int, like: np.ndarray) -> np.ndarray:
    return np.eye(n, dtype=like.dtype)


def _unbroadcast(g: np.ndarray, shape: Shape) -> np.ndarray:
    """Sum g over the axes along which an input of ``shape`` was broadcast."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(k for k, n in enumerate(shape) if n == 1 and g.shape[k] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _batch(name: str, out_batch: Shape, in_batch: Shape) -> Tuple[str, str, Tuple[str, ...]]:
    """Batch labels of the output and of one input, and a delta per batch axis of the input not broadcast."""
    if len(out_batch) > len(_OB):
        raise ValueError(f"{name}: at most {len(_OB)} batch axes, got {len(out_batch)} in batch shape {out_batch}")
    ob, ib, off = _OB[:len(out_batch)], _IB[:len(in_batch)], len(out_batch) - len(in_batch)
    return ob, ib, tuple(ob[k + off] + ib[k] for k, n in enumerate(in_batch) if n == out_batch[k + off])


def _bcast(x: np.ndarray, batch: Shape, core: int) -> np.ndarray:
    """x, whose last ``core`` axes are its own, broadcast to ``batch`` in front (a view)."""
    return np.broadcast_to(x, tuple(batch) + x.shape[x.ndim - core:])


def _square(name: str, s: Shape) -> None:
    if len(s) < 2 or s[-1] != s[-2]:
        raise ValueError(f"{name}: needs a square matrix or a stack of them, shape (..., n, n), got shape {s}")
    _batch(name, tuple(s[:-2]), ())


def _matrix(name: str, s: Shape) -> None:
    if len(s) < 2:
        raise ValueError(f"{name}: needs a matrix or a stack of them, shape (..., m, n), got shape {s}")
    _batch(name, tuple(s[:-2]), ())


def _same_shape(name: str):
    def rule(s: Shape) -> Shape:
        _square(name, s)
        return tuple(s)
    return rule


def _batch_of(name: str):
    def rule(s: Shape) -> Shape:
        _square(name, s)
        return tuple(s[:-2])
    return rule


def _one_delta_form(ob: str, out_core: str, ib: str, terms) -> Factored:
    """A form on one input whose batch axes all match the output's: δ per batch axis in every term."""
    deltas = tuple(o + i for o, i in zip(ob, ib))
    return Factored(ob + out_core, ib + "pq", tuple(Product(f, deltas + d, c) for f, d, c in terms))


def _labels(name: str, batch: Shape) -> Tuple[str, str]:
    ob, ib, _ = _batch(name, batch, batch)
    return ob, ib


# ------------------------------------------------------------------ fro (not batched)
# dy/dA[p...] = A[p...] / y
def _inverse_or_zero(y: np.ndarray) -> np.ndarray:
    """1/y, and 0 at y = 0: the subgradient 0 of a norm at 0 (as relu'(0) = 0), with no warning."""
    return np.asarray(0.0 if y == 0 else 1.0 / y, dtype=y.dtype)


def _fro_inverse(y: Any) -> Any:
    """1/y of the form: on a node (second order) the node 1/y, so its derivative -1/y² is kept; 0 at y = 0."""
    if isinstance(y, Node):
        k = np.sign(y)  # y ≥ 0; at 0 the subgradient 0: sign is piecewise constant, recomputed by a jx.jit replay
        return k / (y + (1.0 - k))
    return _inverse_or_zero(y)


_FRO = register(Op(
    "fro", lambda a: np.sqrt(np.sum(a * a)), lambda s: (),
    vjps=(lambda g, y, a: g * a * _inverse_or_zero(y),),
    forms=(lambda y, a: Factored("", IN_LABELS[:a.ndim], (Product(
        (Factor(a, IN_LABELS[:a.ndim], "{x0}"), Factor(_fro_inverse(y), "", "1/{y}"))),)),),
    policy="gradient 0 at A = 0 (the subgradient, as relu'(0) = 0)",
))


# ------------------------------------------------------------------ inv, det, logdet
def _inv_form(y, a):  # dY[a,i,j]/dA[s,p,q] = -δ_as Y[a,i,p] Y[a,q,j]
    ob, ib = _labels("inv", a.shape[:-2])
    return _one_delta_form(ob, "ij", ib, [((Factor(y, ob + "ip", "{y}"), Factor(y, ob + "qj", "{y}")), (), -1.0)])


_INV = register(Op(
    "inv", np.linalg.inv, _same_shape("inv"),
    vjps=(lambda g, y, a: -(_T(y) @ g @ _T(y)),),
    example=((3, 3),),
    forms=(_inv_form,),
))


def _det_form(y, a):  # dy[a]/dA[s,p,q] = δ_as y[a] (A⁻¹)[a,q,p]
    ob, ib = _labels("det", a.shape[:-2])
    return _one_delta_form(ob, "", ib, [((Factor(as_factor(y), ob, "{y}"),
                                          Factor(np.linalg.inv(a), ob + "qp", "{x0}⁻¹")), (), 1.0)])


_DET = register(Op(
    "det", np.linalg.det, _batch_of("det"),
    vjps=(lambda g, y, a: np.asarray(np.asarray(g) * y)[..., None, None] * _T(np.linalg.inv(a)),),
    example=((3, 3),),
    forms=(_det_form,),
))


def _logdet_form(y, a):  # dy[a]/dA[s,p,q] = δ_as (A⁻¹)[a,q,p]
    ob, ib = _labels("logdet", a.shape[:-2])
    return _one_delta_form(ob, "", ib, [((Factor(np.linalg.inv(a), ob + "qp", "{x0}⁻¹"),), (), 1.0)])


_LOGDET = register(Op(
    "logdet", lambda a: np.linalg.slogdet(a)[1], _batch_of("logdet"), policy=_POLICY["logdet"],
    vjps=(lambda g, y, a: np.asarray(g)[..., None, None] * _T(np.linalg.inv(a)),),
    example=((3, 3),),
    forms=(_logdet_form,),
))


def fro(a: Any) -> Node:
    """Frobenius norm ‖A‖_F = sqrt(Σ A²) of an array of any rank (a scalar node; not batched).

    dy/dA[p...] = A[p...] / ‖A‖_F  (at A = 0 the gradient is 0, the subgradient, as relu'(0) = 0)

    >>> import jacobians as jx
    >>> A = jx.var([[3.0, 0.0], [0.0, 4.0]])
    >>> float(jx.fro(A).value), jx.grad(jx.fro(A), A).tolist()
    (5.0, [[0.6, 0.0], [0.0, 0.8]])
    """
    return apply(_FRO, a)


def inv(a: Any) -> Node:
    """Inverse of a square matrix, or of each matrix of a stack ``(..., n, n)``.

    dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j]   (batch axes: one δ each)

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[2.0, 0.0], [0.0, 4.0]])
    >>> jx.inv(A).value.tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    >>> jx.inv(np.stack([2 * np.eye(2), 4 * np.eye(2)])).value[:, 0, 0].tolist()
    [0.5, 0.25]
    """
    return apply(_INV, a)


def det(a: Any) -> Node:
    """Determinant of a square matrix, or of each matrix of a stack (shape ``(...)``).

    dy/dA[p,q] = det(A) (A⁻¹)[q,p]

    >>> import jacobians as jx
    >>> A = jx.var([[2.0, 1.0], [0.0, 3.0]])
    >>> float(jx.det(A).value), jx.grad(jx.det(A), A).tolist()
    (6.0, [[3.0, 0.0], [-1.0, 2.0]])
    """
    return apply(_DET, a)


def logdet(a: Any) -> Node:
    """log |det A| of a square matrix or of each matrix of a stack (the sign is dropped, as in ``slogdet``).

    dy/dA[p,q] = (A⁻¹)[q,p]

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.diag([1.0, np.e]))
    >>> round(float(jx.logdet(A).value), 12), jx.grad(jx.logdet(A), A).round(6).tolist()
    (1.0, [[1.0, 0.0], [0.0, 0.367879]])
    """
    return apply(_LOGDET, a)


def slogdet(a: Any) -> Tuple[np.ndarray, Node]:
    """``(sign, logabsdet)`` of a square matrix or a stack of them, as ``np.linalg.slogdet``.

    ``logabsdet`` is a node (the op ``logdet``: d/dA[p,q] = (A⁻¹)[q,p]). ``sign``
    (±1, or 0 for a singular matrix) is a plain numpy array, not a node: it is
    piecewise constant, so it is not differentiated and no gradient flows
    through it (multiply by it as a constant).

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.diag([-2.0, 0.5]))
    >>> sign, lad = jx.slogdet(A)
    >>> float(sign), round(float(lad.value), 12), jx.grad(lad, A).tolist()
    (-1.0, 0.0, [[-0.5, 0.0], [0.0, 2.0]])
    """
    y = logdet(a)
    value = concrete(y.parents[0], "slogdet's sign")  # a number out of the graph: refused while jx.jit traces
    return np.asarray(np.linalg.slogdet(value)[0], dtype=value.dtype), y


# ------------------------------------------------------------------ solve
def _solve_batches(a: Shape, b: Shape) -> Tuple[Shape, Shape, bool]:
    """(a's batch shape, b's batch shape, b is a vector), numpy's rule: b is a vector only when 1-D."""
    return tuple(a[:-2]), (() if len(b) == 1 else tuple(b[:-2])), len(b) == 1


def _solve_shape(a: Shape, b: Shape) -> Shape:
    if len(a) < 2 or a[-1] != a[-2]:
        raise ValueError(f"solve: the matrix A must be square (or a stack of them, (..., n, n)), got shapes "
                         f"A {a} and B {b}")
    n = a[-1]
    if len(b) == 0 or (len(b) == 1 and b[0] != n) or (len(b) >= 2 and b[-2] != n):
        raise ValueError(f"solve: B must be a vector ({n},) or a matrix (or stack) (..., {n}, k) to match A {a}, "
                         f"got B {b}")
    ba, bb, vec = _solve_batches(a, b)
    try:
        batch = tuple(np.broadcast_shapes(ba, bb))
    except ValueError:
        raise ValueError(f"solve: the batch axes of A {a} and B {b}, {ba} and {bb}, do not broadcast "
                         "(numpy rules: trailing axes must match or be 1)") from None
    return batch + ((n,) if vec else (n, b[-1]))


def _solve_forward(a, b):
    batch = tuple(np.broadcast_shapes(*_solve_batches(a.shape, b.shape)[:2]))
    af = _bcast(a, batch, 2)
    if b.ndim == 1:  # a vector: a column, solved in every batch element
        return np.linalg.solve(af, _bcast(b[:, None], batch, 2))[..., 0]
    return np.linalg.solve(af, _bcast(b, batch, 2))


def _solve_vjp_b(g, x, a, b):  # dl/dB = A⁻ᵀ G, summed over the batch axes B was broadcast along
    vec = b.ndim == 1
    batch = x.shape[:-1] if vec else x.shape[:-2]
    gm = g[..., None] if vec else g
    gb = np.linalg.solve(_bcast(_T(a), batch, 2), gm)
    return _unbroadcast(gb[..., 0] if vec else gb, b.shape)


def _solve_vjp_a(g, x, a, b):  # dl/dA = -(A⁻ᵀ G) Xᵀ
    vec = b.ndim == 1
    batch = x.shape[:-1] if vec else x.shape[:-2]
    gm, xm = (g[..., None], x[..., None]) if vec else (g, x)
    gb = np.linalg.solve(_bcast(_T(a), batch, 2), gm)
    return _unbroadcast(-(gb @ _T(xm)), a.shape)


def _solve_fac_a(x, a, b):  # dX[a,i,j]/dA[s,p,q] = -δ_as (A⁻¹)[a,i,p] X[a,q,j]   (a vector X drops j)
    vec = b.ndim == 1
    batch = x.shape[:-1] if vec else x.shape[:-2]
    ob, ib, deltas = _batch("solve", batch, a.shape[:-2])
    j = "" if vec else "j"
    ainv = Factor(_bcast(np.linalg.inv(a), batch, 2), ob + "ip", "{x0}⁻¹")
    return Factored(ob + "i" + j, ib + "pq", (Product((ainv, Factor(x, ob + "q" + j, "{y}")), deltas, -1.0),))


def _solve_fac_b(x, a, b):
    # dX[a,i,j]/dB[s,p,q] = δ_as (A⁻¹)[a,i,p] δ_jq   (a vector B: dX[a,i]/dB[p] = (A⁻¹)[a,i,p])
    vec = b.ndim == 1
    batch = x.shape[:-1] if vec else x.shape[:-2]
    ob, ib, deltas = _batch("solve", batch, () if vec else b.shape[:-2])
    ainv = Factor(_bcast(np.linalg.inv(a), batch, 2), ob + "ip", "{x0}⁻¹")
    if vec:
        return Factored(ob + "i", "p", (Product((ainv,), ()),))
    return Factored(ob + "ij", ib + "pq", (Product((ainv,), deltas + ("jq",)),))


_SOLVE = register(Op(
    "solve", _solve_forward, _solve_shape,
    vjps=(_solve_vjp_a, _solve_vjp_b),
    example=((3, 3), (3, 2)),
    forms=(_solve_fac_a, _solve_fac_b),
))


def solve(a: Any, b: Any) -> Node:
    """X = A⁻¹ B, as ``np.linalg.solve``: A ``(..., n, n)``; B a vector ``(n,)`` or matrices ``(..., n, k)``.

    The batch axes of A and B broadcast (numpy rules); B is a vector only when it is 1-D.

    dX[i,j]/dA[p,q] = -(A⁻¹)[i,p] X[q,j] ;  dX[i,j]/dB[p,q] = (A⁻¹)[i,p] δ_jq   (batch axes: one δ each)

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[2.0, 0.0], [0.0, 4.0]]); b = jx.var([2.0, 2.0])
    >>> jx.solve(A, b).value.tolist(), jx.jacobian(jx.solve(A, b), b).tolist()
    ([1.0, 0.5], [[0.5, 0.0], [0.0, 0.25]])
    >>> jx.solve(np.stack([2 * np.eye(2), 4 * np.eye(2)]), b).value.tolist()   # one b, two matrices
    [[1.0, 1.0], [0.5, 0.5]]
    """
    return apply(_SOLVE, a, b)


# ------------------------------------------------------------------ cholesky
def _phi_mask(n: int, dtype) -> np.ndarray:
    """H[m,j]: 1 below the diagonal, ½ on it, 0 above (Φ, the lower half of a symmetric matrix)."""
    return (np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)).astype(dtype)


def _chol_forward(a):
    return np.linalg.cholesky(_sym(a))


def _chol_form(L, a):
    # dL[a,i,j]/dA[s,p,q] = ½ δ_as Σ_m L[a,i,m] H[m,j] (L⁻¹[a,m,p] L⁻¹[a,j,q] + L⁻¹[a,m,q] L⁻¹[a,j,p])
    ob, ib = _labels("cholesky", a.shape[:-2])
    Li = np.linalg.inv(L)
    l, h = Factor(L, ob + "im", "{y}"), Factor(_phi_mask(a.shape[-1], L.dtype), "mj", "H")
    t1 = (l, h, Factor(Li, ob + "mp", "{y}⁻¹"), Factor(Li, ob + "jq", "{y}⁻¹"))
    t2 = (l, h, Factor(Li, ob + "mq", "{y}⁻¹"), Factor(Li, ob + "jp", "{y}⁻¹"))
    return _one_delta_form(ob, "ij", ib, [(t1, (), 0.5), (t2, (), 0.5)])


def _chol_vjp(g, L, a):  # S̄ = L⁻ᵀ Φ(Lᵀ Ḡ) L⁻¹, then its symmetric part
    P = (_T(L) @ g) * _phi_mask(a.shape[-1], L.dtype)
    Sbar = np.linalg.solve(_T(L), _T(np.linalg.solve(_T(L), _T(P))))  # L⁻ᵀ P L⁻¹ = L⁻ᵀ (L⁻ᵀ Pᵀ)ᵀ
    return _sym(Sbar)


_CHOLESKY = register(Op(
    "cholesky", _chol_forward, _same_shape("cholesky"), policy=_POLICY["cholesky"],
    vjps=(_chol_vjp,),
    example=((3, 3),),
    forms=(_chol_form,),
))


def cholesky(a: Any) -> Node:
    """Lower Cholesky factor L (A = L Lᵀ) of a symmetric positive definite matrix, or of each of a stack.

    Reads the symmetric part ½(A + Aᵀ) of A (numpy reads the lower triangle; on a
    symmetric A the two are the same). With H the lower-triangle mask with ½ on
    the diagonal (dL = L Φ(L⁻¹ dA L⁻ᵀ)):

    dL[i,j]/dA[p,q] = ½ Σ_m L[i,m] H[m,j] (L⁻¹[m,p] L⁻¹[j,q] + L⁻¹[m,q] L⁻¹[j,p])

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[4.0, 2.0], [2.0, 5.0]])
    >>> jx.cholesky(A).value.tolist()
    [[2.0, 0.0], [1.0, 2.0]]
    """
    return apply(_CHOLESKY, a)


# ------------------------------------------------------------------ eigh, eigvalsh
def _fix_signs(u: np.ndarray) -> np.ndarray:
    """±1 per column of u (shape (..., 1, k)): the column's entry of largest magnitude made positive."""
    idx = np.argmax(np.abs(u), axis=-2)[..., None, :]
    s = np.sign(np.take_along_axis(u, idx, axis=-2))
    return np.where(s == 0, 1, s).astype(u.dtype)


def _eigh(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    w, v = np.linalg.eigh(_sym(a))
    return w, v * _fix_signs(v)


def _gap_factor(w: np.ndarray, square: bool) -> np.ndarray:
    """F[..., m, j] = 1/(w_j - w_m) off the diagonal, 0 on it (w_j² - w_m² for singular values)."""
    d = w[..., None, :] - w[..., :, None]
    if square:
        d = d * (w[..., None, :] + w[..., :, None])
    n = w.shape[-1]
    off = ~np.eye(n, dtype=bool)
    with np.errstate(divide="ignore"):
        return np.where(off, 1.0 / np.where(off, d, 1), 0).astype(w.dtype)


def _form_eigh(a: Any) -> Tuple[Any, Any]:
    """(w, V) for a form: arrays, or on a node (second order) the nodes of jx.eigh, whose own forms carry dw, dV."""
    return eigh(a) if isinstance(a, Node) else _eigh(a)


def _form_gap_factor(w: Any, square: bool) -> Any:
    """:func:`_gap_factor` for a form: on a node, (1 - I) / (d + I) built from ops, so dF = -F² dd is kept."""
    if not isinstance(w, Node):
        return _gap_factor(w, square)
    d = w[..., None, :] - w[..., :, None]
    if square:
        d = d * (w[..., None, :] + w[..., :, None])
    eye = np.eye(w.shape[-1], dtype=w.dtype)  # a constant: 0 on the diagonal stays 0
    return (1.0 - eye) / (d + eye)


def _eigh_w_form(w, a):  # dw[a,j]/dA[s,p,q] = δ_as V[a,p,j] V[a,q,j]
    ob, ib = _labels("eigh", a.shape[:-2])
    v = _form_eigh(a)[1]
    return _one_delta_form(ob, "j", ib, [((Factor(v, ob + "pj", "V"), Factor(v, ob + "qj", "V")), (), 1.0)])


def _eigh_w_vjp(g, w, a):  # V diag(g) Vᵀ
    v = _eigh(a)[1]
    return (v * np.asarray(g)[..., None, :]) @ _T(v)


def _eigh_v_form(v, a):
    # dV[a,i,j]/dA[s,p,q] = ½ δ_as Σ_m V[a,i,m] F[a,m,j] (V[a,p,m] V[a,q,j] + V[a,q,m] V[a,p,j])
    ob, ib = _labels("eigh", a.shape[:-2])
    F = Factor(_form_gap_factor(_form_eigh(a)[0], False), ob + "mj", "F")
    vi = Factor(v, ob + "im", "{y}")
    t1 = (vi, F, Factor(v, ob + "pm", "{y}"), Factor(v, ob + "qj", "{y}"))
    t2 = (vi, F, Factor(v, ob + "qm", "{y}"), Factor(v, ob + "pj", "{y}"))
    return _one_delta_form(ob, "ij", ib, [(t1, (), 0.5), (t2, (), 0.5)])


def _eigh_v_vjp(g, v, a):  # M = V (F ∘ Vᵀ Ḡ) Vᵀ, then its symmetric part
    F = _gap_factor(_eigh(a)[0], False)
    return _sym(v @ (F * (_T(v) @ g)) @ _T(v))


def _eig_shape(name: str):
    def rule(s: Shape) -> Shape:
        _square(name, s)
        return tuple(s[:-1])
    return rule


_EIGH_W = register(Op("eigh_w", lambda a: _eigh(a)[0], _eig_shape("eigh"), forms=(_eigh_w_form,), vjps=(_eigh_w_vjp,),
                      example=((3, 3),), policy=_POLICY["eigh_w"]))
_EIGH_V = register(Op("eigh_v", lambda a: _eigh(a)[1], _same_shape("eigh"), forms=(_eigh_v_form,),
                      vjps=(_eigh_v_vjp,), example=((3, 3),), policy=_POLICY["eigh_v"]))
_EIGVALSH = register(Op("eigvalsh", lambda a: np.linalg.eigvalsh(_sym(a)), _eig_shape("eigvalsh"),
                        forms=(_eigh_w_form,), vjps=(_eigh_w_vjp,), example=((3, 3),),
                        policy=_POLICY["eigvalsh"]))


def _check_gaps(name: str, values: np.ndarray, scale: np.ndarray, rtol: float, what: str, fix: str) -> None:
    """ValueError naming ``name`` when two adjacent sorted values of one matrix are within rtol × scale."""
    if values.shape[-1] < 2:
        return
    gaps = np.abs(np.diff(values, axis=-1))
    bad = gaps <= rtol * scale[..., None]
    if bad.any():
        where = np.argwhere(bad)[0]
        b, k = tuple(int(i) for i in where[:-1]), int(where[-1])
        at = f" of matrix {b} of the stack" if b else ""
        raise ValueError(
            f"{name}: {what} {values[b][k]:.6g} and {values[b][k + 1]:.6g}{at} are closer than gap_rtol={rtol:g} × "
            f"{float(scale[b]):.6g}; the vectors of a repeated {what[:-1] if what.endswith('s') else what} are not "
            f"unique and have no derivative (the F-matrix 1/gap blows up). {fix}")


def eigh(a: Any, *, gap_rtol: float = GAP_RTOL) -> Tuple[Node, Node]:
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix or a stack: ``(w, V)``, two nodes.

    Reads the symmetric part ½(A + Aᵀ) of A (numpy reads the lower triangle; on a
    symmetric A they agree). Each eigenvector's entry of largest magnitude is
    positive. The eigenvalues must be distinct: a ValueError names eigh when two
    are closer than ``gap_rtol`` × (w_max - w_min) in any matrix of the stack
    (eigenvectors of a repeated eigenvalue have no derivative); use
    :func:`eigvalsh` for the eigenvalues alone. With F[m,j] = 1/(w_j - w_m), 0 on the diagonal:

    dw[j]/dA[p,q] = V[p,j] V[q,j] ;  dV[i,j]/dA[p,q] = ½ Σ_m V[i,m] F[m,j] (V[p,m] V[q,j] + V[q,m] V[p,j])

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[2.0, 1.0], [1.0, 2.0]])
    >>> w, V = jx.eigh(A)
    >>> w.value.tolist(), jx.grad(jx.sum(w), A).round(12).tolist()     # d tr(A)/dA = I
    ([1.0, 3.0], [[1.0, 0.0], [0.0, 1.0]])
    >>> jx.eigh(np.eye(2))
    Traceback (most recent call last):
    ...
    ValueError: eigh: eigenvalues 1 and 1 are closer than gap_rtol=1e-06 × 0; ...
    """
    w = apply(_EIGH_W, a)
    wv = w.value
    _check_gaps("eigh", wv, wv[..., -1] - wv[..., 0], gap_rtol, "eigenvalues",
                "Use jx.eigvalsh for the eigenvalues alone, or keep the eigenvalues apart")
    return w, apply(_EIGH_V, w.parents[0])


def eigvalsh(a: Any) -> Node:
    """Eigenvalues (ascending) of a symmetric matrix or of each matrix of a stack.

    Reads the symmetric part ½(A + Aᵀ). dw[j]/dA[p,q] = V[p,j] V[q,j]. Repeated
    eigenvalues are allowed: there a single eigenvalue has no derivative, but the
    form is exact for any function symmetric in the tied ones (their sum, tr A).

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.diag([3.0, 1.0]))
    >>> jx.eigvalsh(A).value.tolist(), jx.jacobian(jx.eigvalsh(A), A)[1].tolist()
    ([1.0, 3.0], [[1.0, 0.0], [0.0, 0.0]])
    """
    return apply(_EIGVALSH, a)


# ------------------------------------------------------------------ svd
def _svd(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    sign = _fix_signs(u)
    return u * sign, s, vt * _T(sign)


def _form_svd(a: Any) -> Tuple[Any, Any, Any]:
    """(U, σ, Vᵀ) for a form: arrays, or on a node (second order) the nodes of jx.svd (thin), whose forms carry dU, dσ, dVᵀ."""
    return svd(a, full_matrices=False) if isinstance(a, Node) else _svd(a)


def _svd_s_form(s, a):  # dσ[a,j]/dA[s,p,q] = δ_as U[a,p,j] Vᵀ[a,j,q]
    ob, ib = _labels("svd", a.shape[:-2])
    u, _, vt = _form_svd(a)
    return _one_delta_form(ob, "j", ib, [((Factor(u, ob + "pj", "U"), Factor(vt, ob + "jq", "Vᵀ")), (), 1.0)])


def _svd_s_vjp(g, s, a):  # U diag(g) Vᵀ
    u, _, vt = _svd(a)
    return (u * np.asarray(g)[..., None, :]) @ vt


def _svd_u_form(u, a):
    # dU[a,i,j]/dA[s,p,q] = δ_as (Σ_m U[i,m] F[m,j] U[p,m] Vᵀ[j,q] σ[j]
    #                              + Σ_m U[i,m] F[m,j] σ[m] U[p,j] Vᵀ[m,q]
    #                              + (I - U Uᵀ)[i,p] Vᵀ[j,q] / σ[j])              (the last only when m > n)
    ob, ib = _labels("svd", a.shape[:-2])
    _, s, vt = _form_svd(a)
    F, ui = Factor(_form_gap_factor(s, True), ob + "mj", "F"), Factor(u, ob + "im", "{y}")
    terms = [((ui, F, Factor(u, ob + "pm", "{y}"), Factor(vt, ob + "jq", "Vᵀ"), Factor(s, ob + "j", "σ")), (), 1.0),
             ((ui, F, Factor(s, ob + "m", "σ"), Factor(u, ob + "pj", "{y}"), Factor(vt, ob + "mq", "Vᵀ")), (),
              1.0)]
    if a.shape[-2] > a.shape[-1]:
        proj = _eye(a.shape[-2], u) - u @ _T(u)
        terms.append(((Factor(proj, ob + "ip", "(I-{y}{y}ᵀ)"), Factor(vt, ob + "jq", "Vᵀ"),
                       Factor(1 / s, ob + "j", "1/σ")), (), 1.0))
    return _one_delta_form(ob, "ij", ib, terms)


def _svd_u_vjp(g, u, a):  # U [(F ∘ (UᵀḠ - ḠᵀU)) S] Vᵀ + (I - UUᵀ) Ḡ S⁻¹ Vᵀ
    _, s, vt = _svd(a)
    F = _gap_factor(s, True)
    utg = _T(u) @ g
    core = (F * (utg - _T(utg))) * s[..., None, :]
    out = u @ core @ vt
    if a.shape[-2] > a.shape[-1]:
        out = out + ((g - u @ utg) / s[..., None, :]) @ vt
    return out


def _svd_vt_form(vt, a):
    # dVᵀ[a,i,j]/dA[s,p,q] = δ_as (Σ_m Vᵀ[m,j] F[m,i] σ[m] U[p,m] Vᵀ[i,q]
    #                               + Σ_m Vᵀ[m,j] F[m,i] σ[i] U[p,i] Vᵀ[m,q]
    #                               + (I - V Vᵀ)[j,q] U[p,i] / σ[i])              (the last only when n > m)
    ob, ib = _labels("svd", a.shape[:-2])
    u, s, _ = _form_svd(a)
    F, vm = Factor(_form_gap_factor(s, True), ob + "mi", "F"), Factor(vt, ob + "mj", "{y}")
    terms = [((vm, F, Factor(s, ob + "m", "σ"), Factor(u, ob + "pm", "U"), Factor(vt, ob + "iq", "{y}")), (), 1.0),
             ((vm, F, Factor(s, ob + "i", "σ"), Factor(u, ob + "pi", "U"), Factor(vt, ob + "mq", "{y}")), (), 1.0)]
    if a.shape[-1] > a.shape[-2]:
        proj = _eye(a.shape[-1], vt) - _T(vt) @ vt
        terms.append(((Factor(proj, ob + "jq", "(I-{y}ᵀ{y})"), Factor(u, ob + "pi", "U"),
                       Factor(1 / s, ob + "i", "1/σ")), (), 1.0))
    return _one_delta_form(ob, "ij", ib, terms)


def _svd_vt_vjp(g, vt, a):  # with V̄ = Ḡᵀ: U [S (F ∘ (VᵀV̄ - V̄ᵀV))] Vᵀ + U S⁻¹ V̄ᵀ (I - VVᵀ)
    u, s, _ = _svd(a)
    F = _gap_factor(s, True)
    vtvb = vt @ _T(g)  # Vᵀ V̄
    core = s[..., :, None] * (F * (vtvb - _T(vtvb)))
    out = u @ core @ vt
    if a.shape[-1] > a.shape[-2]:
        out = out + u @ ((g - _T(vtvb) @ vt) / s[..., :, None])  # U S⁻¹ V̄ᵀ (I - V Vᵀ), V̄ᵀ = Ḡ
    return out


def _svd_shapes(part: str):
    def rule(s: Shape) -> Shape:
        _matrix("svd", s)
        m, n = s[-2:]
        k = min(m, n)
        return tuple(s[:-2]) + {"u": (m, k), "s": (k,), "vt": (k, n)}[part]
    return rule


_SVD_U = register(Op("svd_u", lambda a: _svd(a)[0], _svd_shapes("u"), forms=(_svd_u_form,), vjps=(_svd_u_vjp,),
                     example=((3, 2),), policy=_POLICY["svd_u"]))
_SVD_S = register(Op("svd_s", lambda a: np.linalg.svd(a, compute_uv=False), _svd_shapes("s"),
                     forms=(_svd_s_form,), vjps=(_svd_s_vjp,), example=((3, 2),), policy=_POLICY["svd_s"]))
_SVD_VT = register(Op("svd_vt", lambda a: _svd(a)[2], _svd_shapes("vt"), forms=(_svd_vt_form,),
                      vjps=(_svd_vt_vjp,), example=((2, 3),), policy=_POLICY["svd_vt"]))


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, *,
        gap_rtol: float = GAP_RTOL) -> Any:
    """Singular value decomposition A = U diag(σ) Vᵀ of a matrix or a stack, numpy's signature.

    ``compute_uv=False``: the singular values σ (descending) alone, one node;
    they may repeat (the form is exact for functions symmetric in tied values).
    Otherwise ``(U, σ, Vᵀ)``, three nodes. Each column of U has its entry of
    largest magnitude positive (Vᵀ's rows follow). The vectors need distinct
    singular values (and, for a non-square matrix, none zero): a ValueError names
    svd when two are closer than ``gap_rtol`` × σ_max. The full U (or Vᵀ) of a
    non-square matrix is not unique, so it needs ``full_matrices=False``. With
    F[m,j] = 1/(σ_j² - σ_m²), 0 on the diagonal:

    dσ[j]/dA[p,q] = U[p,j] Vᵀ[j,q]
    dU[i,j]/dA[p,q] = Σ_m U[i,m] F[m,j] (U[p,m] Vᵀ[j,q] σ[j] + σ[m] U[p,j] Vᵀ[m,q])
                      + (I - UUᵀ)[i,p] Vᵀ[j,q] / σ[j]                       (m > n only)
    dVᵀ[i,j]/dA[p,q] = Σ_m Vᵀ[m,j] F[m,i] (σ[m] U[p,m] Vᵀ[i,q] + σ[i] U[p,i] Vᵀ[m,q])
                       + (I - VVᵀ)[j,q] U[p,i] / σ[i]                       (n > m only)

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[3.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    >>> jx.svd(A, compute_uv=False).value.tolist()
    [3.0, 2.0]
    >>> U, s, Vt = jx.svd(A, full_matrices=False)
    >>> U.shape, s.shape, Vt.shape
    ((3, 2), (2,), (2, 2))
    """
    sh = shape_of(a)
    _matrix("svd", sh)
    if not compute_uv:
        return apply(_SVD_S, a)
    if full_matrices and sh[-1] != sh[-2]:
        raise ValueError(
            f"svd: the full {'U' if sh[-2] > sh[-1] else 'Vᵀ'} of a non-square matrix of shape {sh} is not "
            "differentiable (its extra columns are any orthonormal basis of a complement); pass "
            "full_matrices=False for the thin U, σ, Vᵀ (or compute_uv=False for σ alone)")
    s = apply(_SVD_S, a)
    sv = s.value
    smax = sv[..., 0]
    vals = np.concatenate([sv, np.zeros(sv.shape[:-1] + (1,), sv.dtype)], -1) if sh[-1] != sh[-2] else sv
    _check_gaps("svd", vals, smax, gap_rtol, "singular values",
                "Use compute_uv=False for the singular values alone, or keep them apart" +
                (" (for a non-square matrix, away from 0 too)" if sh[-1] != sh[-2] else ""))
    x = s.parents[0]
    return apply(_SVD_U, x), s, apply(_SVD_VT, x)


# ------------------------------------------------------------------ pinv
def _pinv_shape(s: Shape) -> Shape:
    _matrix("pinv", s)
    return tuple(s[:-2]) + (s[-1], s[-2])


def _pinv_form(y, a):
    # dY[a,i,j]/dA[s,p,q] = δ_as (-Y[i,p] Y[q,j] + (Y Yᵀ)[i,q] (I - A Y)[p,j] + (I - Y A)[i,q] (Yᵀ Y)[p,j])
    ob, ib = _labels("pinv", a.shape[:-2])
    m, n = a.shape[-2:]
    yyt, yty = y @ _T(y), _T(y) @ y
    i_ay, i_ya = _eye(m, y) - a @ y, _eye(n, y) - y @ a
    return _one_delta_form(ob, "ij", ib, [
        ((Factor(y, ob + "ip", "{y}"), Factor(y, ob + "qj", "{y}")), (), -1.0),
        ((Factor(yyt, ob + "iq", "{y}{y}ᵀ"), Factor(i_ay, ob + "pj", "(I-{x0}{y})")), (), 1.0),
        ((Factor(i_ya, ob + "iq", "(I-{y}{x0})"), Factor(yty, ob + "pj", "{y}ᵀ{y}")), (), 1.0)])


def _pinv_vjp(g, y, a):  # -Yᵀ G Yᵀ + (I - A Y) Gᵀ Y Yᵀ + Yᵀ Y Gᵀ (I - Y A)
    m, n = a.shape[-2:]
    gt = _T(g)
    return (-(_T(y) @ g @ _T(y)) + (_eye(m, y) - a @ y) @ gt @ y @ _T(y)
            + _T(y) @ y @ gt @ (_eye(n, y) - y @ a))


_PINV = register(Op("pinv", np.linalg.pinv, _pinv_shape, forms=(_pinv_form,), vjps=(_pinv_vjp,),
                    example=((3, 2),), policy=_POLICY["pinv"]))


def pinv(a: Any) -> Node:
    """Moore-Penrose pseudo-inverse A⁺ of a matrix ``(m, n)`` or a stack, shape ``(..., n, m)``.

    Differentiable where the rank does not change (the form is Golub and
    Pereyra's, valid for any constant rank; a full-rank A is the usual case):

    dY[i,j]/dA[p,q] = -Y[i,p] Y[q,j] + (Y Yᵀ)[i,q] (I - A Y)[p,j] + (I - Y A)[i,q] (Yᵀ Y)[p,j]

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[2.0], [0.0]])
    >>> jx.pinv(A).value.tolist()
    [[0.5, 0.0]]
    """
    return apply(_PINV, a)


# ------------------------------------------------------------------ matrix_power
def _power_factors(a: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray, float]:
    """Stacks P[k] and Q[k] (k < |n|) with dY = coef Σ_k P[k] dA Q[k]."""
    if n > 0:
        pw = [np.broadcast_to(_eye(a.shape[-1], a), a.shape)]
        for _ in range(n - 1):
            pw.append(pw[-1] @ a)
        return np.stack(pw), np.stack(pw[::-1]), 1.0  # A^k, A^(n-1-k)
    b = np.linalg.inv(a)
    pw = [b]
    for _ in range(-n - 1):
        pw.append(pw[-1] @ b)
    return np.stack(pw), np.stack(pw[::-1]), -1.0  # B^(k+1), B^(|n|-k)


def _power_form(y, a, n):  # dY[a,i,j]/dA[s,p,q] = ±δ_as Σ_k P[k,a,i,p] Q[k,a,q,j]
    ob, ib = _labels("matrix_power", a.shape[:-2])
    if n == 0:
        return Factored(ob + "ij", ib + "pq", ())
    P, Q, coef = _power_factors(a, n)
    names = ("{x0}^k", "{x0}^(n-1-k)") if n > 0 else ("{x0}^-(k+1)", "{x0}^-(|n|-k)")
    return _one_delta_form(ob, "ij", ib, [((Factor(P, "k" + ob + "ip", names[0]),
                                            Factor(Q, "k" + ob + "qj", names[1])), (), coef)])


def _power_vjp(g, y, a, n):  # walk back through the chain of products Y = A A ... A (or A⁻¹ ... A⁻¹)
    if n == 0:
        return np.zeros_like(a)
    base = a if n > 0 else np.linalg.inv(a)
    m = abs(n)
    prefix = [np.broadcast_to(_eye(a.shape[-1], a), a.shape)]  # base^t, t < m
    for _ in range(m - 1):
        prefix.append(prefix[-1] @ base)
    gbase = np.zeros_like(a)
    right = g  # the cotangent of base^t times what follows it
    for t in range(m - 1, -1, -1):  # Y = base^t · base · base^(m-1-t)
        gbase = gbase + _T(prefix[t]) @ right
        right = right @ _T(base)
    return gbase if n > 0 else -(_T(base) @ gbase @ _T(base))


def _power_shape(s: Shape, n: int) -> Shape:
    _square("matrix_power", s)
    return tuple(s)


_MATRIX_POWER = register(Op(
    "matrix_power", lambda a, n: np.linalg.matrix_power(a, n), _power_shape,
    forms=(_power_form,), vjps=(_power_vjp,), params=("n",), example=((3, 3),), example_params={"n": 3},
))


def matrix_power(a: Any, n: int) -> Node:
    """Aⁿ for an integer n, of a square matrix or of each of a stack; n < 0 through A⁻¹, n = 0 gives I.

    dY[i,j]/dA[p,q] = Σ_(k<n) (A^k)[i,p] (A^(n-1-k))[q,j]  (n > 0);
    with B = A⁻¹ and n < 0: -Σ_(k<|n|) (B^(k+1))[i,p] (B^(|n|-k))[q,j]

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var([[1.0, 1.0], [0.0, 1.0]])
    >>> jx.matrix_power(A, 3).value.tolist(), jx.matrix_power(A, -1).value.tolist()
    ([[1.0, 3.0], [0.0, 1.0]], [[1.0, -1.0], [0.0, 1.0]])
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"matrix_power: the exponent n must be an integer, got {n!r} ({type(n).__name__}); "
                        "for a fractional power use an eigendecomposition (jx.eigh)")
    return apply(_MATRIX_POWER, a, n=int(n))


# ------------------------------------------------------------------ kron, cross (einsum specs)
def _kron_forward(a: np.ndarray, b: np.ndarray, *selections: np.ndarray, eq: str, scale: float = 1.0,
                  ones: Tuple[int, ...] = ()) -> np.ndarray:
    return np.kron(a, b)  # the spec's numbers by numpy's own routine: no einsum over the selection matrices


def _kron_vjp(k: int, g: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, *selections: np.ndarray,
              eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()) -> np.ndarray:
    """dl/dA[p] = Σ_k G[p·m_B + k] B[k] per axis: G viewed as (A's axis, B's axis) pairs, contracted with B
    (and the same for B) — never the spec's contraction over the selection matrices, which can be huge."""
    if k > 1:  # the selection matrices themselves (constants)
        return einsum_vjp(k, g, y, a, b, *selections, eq=eq, scale=scale, ones=ones)
    nd = max(a.ndim, b.ndim)
    pa, pb = (1,) * (nd - a.ndim) + a.shape, (1,) * (nd - b.ndim) + b.shape
    la, lb = string.ascii_letters[:nd], string.ascii_letters[nd:2 * nd]
    pairs = "".join(p + q for p, q in zip(la, lb))
    G = np.reshape(g, [n for d in range(nd) for n in (pa[d], pb[d])])
    if k == 0:
        return contract(f"{pairs},{lb}->{la}", [G, b.reshape(pb)]).reshape(a.shape) * scale
    return contract(f"{pairs},{la}->{lb}", [G, a.reshape(pa)]).reshape(b.shape) * scale


_KRON = einsum_family("kron", ((2, 2), (2, 2), (4, 2), (4, 2), (4, 2), (4, 2)), "pq,kl,Ip,Ik,Jq,Jl->IJ",
                      _kron_forward, _kron_vjp)
_CROSS = einsum_family("cross", ((3,), (3,), (3, 3, 3)), "j,k,ijk->i")

_LEVI_CIVITA = np.zeros((3, 3, 3))
for _i, _j, _k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
    _LEVI_CIVITA[_i, _j, _k], _LEVI_CIVITA[_i, _k, _j] = 1.0, -1.0


def kron(a: Any, b: Any) -> Node:
    """Kronecker product, as ``np.kron``: block (i, j) of the result is A[i, j] B (any ranks; the shorter padded).

    Y[I] = A[I div m_B] B[I mod m_B] per axis: an einsum with two 0/1 selection
    matrices per axis (S_A[I,p] = [I div m_B = p], S_B[I,k] = [I mod m_B = k]):

    dY[I,J]/dA[p,q] = Σ_kl S_A[I,p] S_B[I,k] S_A[J,q] S_B[J,l] B[k,l]

    >>> import numpy as np, jacobians as jx
    >>> jx.kron(jx.var(np.eye(2)), np.ones((1, 2))).value.tolist()
    [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]
    """
    sa, sb = shape_of(a), shape_of(b)
    nd = max(len(sa), len(sb))
    pa, pb = (1,) * (nd - len(sa)) + tuple(sa), (1,) * (nd - len(sb)) + tuple(sb)
    if nd > 17:
        raise ValueError(f"kron: at most 17 axes (52 einsum labels), got shapes {sa} and {sb}")
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    la, lb, lo, consts, subs = "", "", "", [], []
    for d in range(nd):
        ma, mb = pa[d], pb[d]
        o = next(letters)
        lo += o
        if ma > 1 and mb > 1:  # output index o = p·m_B + k: two selection matrices
            p, k = next(letters), next(letters)
            la, lb = la + p, lb + k
            idx = np.arange(ma * mb)[:, None]
            consts += [(idx // mb == np.arange(ma)).astype(float), (idx % mb == np.arange(mb)).astype(float)]
            subs += [o + p, o + k]
            continue
        # one side has length 1 (or none): the output index is the other side's own
        if d >= nd - len(sa):
            la += next(letters) if ma == 1 and mb > 1 else o
        if d >= nd - len(sb):
            lb += next(letters) if mb == 1 and ma > 1 else o
    eq = ",".join([la, lb] + subs) + "->" + lo
    return apply_spec(_KRON, eq, a, b, *consts)


def cross(a: Any, b: Any, axis: int = -1) -> Node:
    """Cross product of 3-vectors along ``axis`` of a and b (their other axes broadcast), as ``np.cross``.

    Y[i] = Σ_jk ε_ijk A[j] B[k], with ε the Levi-Civita symbol:

    dY[i]/dA[j] = Σ_k ε_ijk B[k] ;  dY[i]/dB[k] = Σ_j ε_ijk A[j]

    >>> import jacobians as jx
    >>> jx.cross(jx.var([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0]).value.tolist()
    [0.0, 0.0, 1.0]
    """
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        raise ValueError(f"cross: needs arrays of 3-vectors, got shapes {sa} and {sb}")
    try:
        ax_a, ax_b = range(len(sa))[axis], range(len(sb))[axis]
    except (IndexError, TypeError):
        raise ValueError(f"cross: axis {axis!r} is out of range for shapes {sa} and {sb}") from None
    if sa[ax_a] != 3 or sb[ax_b] != 3:
        raise ValueError(f"cross: needs 3-vectors along axis {axis}, got shapes {sa} and {sb} "
                         f"(lengths {sa[ax_a]} and {sb[ax_b]})")
    ra, rb = sa[:ax_a] + sa[ax_a + 1:], sb[:ax_b] + sb[ax_b + 1:]
    try:
        batch = tuple(np.broadcast_shapes(ra, rb))
    except ValueError:
        raise ValueError(f"cross: the other axes of shapes {sa} and {sb}, {ra} and {rb}, do not broadcast "
                         "(numpy rules)") from None
    letters = "abcdefghlmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[:len(batch)]  # i, j, k are the vector axes
    la, lb = letters[len(batch) - len(ra):], letters[len(batch) - len(rb):]
    la, lb = la[:ax_a] + "j" + la[ax_a:], lb[:ax_b] + "k" + lb[ax_b:]
    ax_c = range(len(batch) + 1)[axis]
    lo = letters[:ax_c] + "i" + letters[ax_c:]
    eq = parse_einsum(f"{la},{lb},ijk->{lo}", [sa, sb, (3, 3, 3)], "cross")
    return apply_spec(_CROSS, eq, a, b, _LEVI_CIVITA)
