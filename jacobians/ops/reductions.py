"""Reductions, normalizations and scans along axes.

(sum and mean are linear: einsum specs, in einsum.py.)

    y = log Σ_axes e^X    dY[k]/dX[j] = δ(k = j without the summed axes) · softmax(X)[j]
    S = softmax(X, a)     dS[i]/dX[j] = δ(i = j off axis a) · S[i] (δ_{i_a j_a} - S[j])
    L = log_softmax(X, a) dL[i]/dX[j] = δ(i = j off axis a) · (δ_{i_a j_a} - S[j])
    prod                  dY[k]/dX[j] = δ(kept axes) · Π of the other entries of j's slice
    variance, std         dY[k]/dX[j] = δ(kept axes) · 2 (X[j] - mean) / (n - ddof),  that / (2 Y[k])
    norm                  dY[k]/dX[j] = δ(kept axes) · X/Y (2, fro), sign X (1), sign X at max/#ties (inf), U Vᵀ (nuc)
    cumsum, cumprod       dY[..i..]/dX[..p..] = δ(off the axis) · [p ≤ i] (· Π_(q ≤ i, q ≠ p) X[q])
    diff                  dY[..i..]/dX[..p..] = δ(off the axis) · np.diff(I, n)[i, p]
    average               dY[k]/dX[j] = δ(kept axes) · w[j] / Σ w

At a kink (std of a constant slice, a norm at zero, |x| at 0 in the 1-norm)
the derivative is the subgradient 0, as relu'(0) = 0; entries tied for the
inf-norm share it equally (as jx.max). Products never divide by x.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ..form import Factor, Factored, Product, as_factor, axis_labels
from ..node import Node, shape_of
from ..registry import Op, apply, register
from ._rules import check_nonempty, normalize_axes

__all__ = ["logsumexp", "softmax", "log_softmax", "softmax_over", "logsumexp_over", "prod", "variance", "std", "norm",
           "cumsum", "cumprod", "diff", "average"]

Shape = Tuple[int, ...]
Axis = Union[None, int, Sequence[int]]


def _reduced_shape(s: Shape, axes: Tuple[int, ...], keepdims: bool) -> Shape:
    return tuple((1 if k in axes else n) for k, n in enumerate(s) if keepdims or k not in axes)


def _reduction_deltas(out: str, inp: str, axes: Tuple[int, ...], keepdims: bool) -> Tuple[str, ...]:
    """δ(out_k, in_a) for each kept input axis a; reduced axes get none (kept length-1 axes stay free)."""
    deltas, k = [], 0
    for a in range(len(inp)):
        if a in axes:
            k += keepdims
            continue
        deltas.append(out[k] + inp[a])
        k += 1
    return tuple(deltas)


def _spread(g: np.ndarray, in_shape: Shape, axes: Tuple[int, ...]) -> np.ndarray:
    """Broadcast a cotangent of the reduced shape back over the reduced axes."""
    return np.broadcast_to(np.reshape(g, _reduced_shape(in_shape, axes, True)), in_shape)


# ----------------------------------------------------------------- logsumexp
def softmax_over(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=axes, keepdims=True))
    return z / np.sum(z, axis=axes, keepdims=True)


def logsumexp_over(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    m = np.max(x, axis=axes, keepdims=True)
    return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)), axis=axes)


def _lse_factored(y, x, axes):  # δ(kept axes) softmax(X)[j...]
    out, inp = axis_labels(y.ndim, x.ndim)
    if isinstance(x, Node):  # second order: softmax = exp(X - Y) from ops, so its derivative is kept
        sm = Factor(np.exp(x - np.reshape(y, _reduced_shape(x.shape, axes, True))), inp, "softmax({x0})")
    else:
        sm = Factor(softmax_over(x, axes).astype(y.dtype), inp, "softmax({x0})")
    return Factored(out, inp, (Product((sm,), _reduction_deltas(out, inp, axes, False)),))


_LOGSUMEXP = register(Op(
    "logsumexp", logsumexp_over, lambda s, axes: _reduced_shape(s, axes, False),
    vjps=(lambda g, y, x, axes: _spread(g, x.shape, axes) * softmax_over(x, axes),),
    params=("axes",),
    example_params={"axes": (1,)},
    forms=(lambda y, x, axes: _lse_factored(y, x, axes),),
))


def logsumexp(x: Any, axis: Axis = None) -> Node:
    """log Σ exp(x) over ``axis`` (None: all), computed without overflow.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([0.0, np.log(3.0)])
    >>> round(float(jx.logsumexp(x).value), 12), jx.grad(jx.logsumexp(x), x).tolist()
    (1.386294361120, [0.25, 0.75])
    """
    ndim = len(shape_of(x))
    return apply(_LOGSUMEXP, x, axes=normalize_axes("logsumexp", ndim, axis))


# ----------------------------------------------------------- softmax family
def _axis_shape(name: str):
    def rule(s: Shape, axis: int) -> Shape:
        if not s:
            raise ValueError(f"{name}: needs at least one axis, got a scalar; pass an array")
        return tuple(s)

    return rule


def _softmax_vjp(g, y, x, axis):
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


# factored: δ(every axis) S[i]  -  δ(off the axis) S[i] S[j]
def _softmax_factored(y, x, axis):
    out, inp = axis_labels(y.ndim, x.ndim)
    every = tuple(o + i for o, i in zip(out, inp))
    off = tuple(d for k, d in enumerate(every) if k != axis)
    s_i, s_j = Factor(y, out, "{y}"), Factor(y, inp, "{y}")
    return Factored(out, inp, (Product((s_i,), every), Product((s_i, s_j), off, -1.0)))


_SOFTMAX = register(Op(
    "softmax", lambda x, axis: softmax_over(x, (axis,)), _axis_shape("softmax"),
    vjps=(_softmax_vjp,),
    params=("axis",),
    example_params={"axis": 1},
    forms=(_softmax_factored,),
))


# factored: δ(every axis)  -  δ(off the axis) softmax(X)[j]
def _log_softmax_factored(y, x, axis):
    out, inp = axis_labels(y.ndim, x.ndim)
    every = tuple(o + i for o, i in zip(out, inp))
    off = tuple(d for k, d in enumerate(every) if k != axis)
    return Factored(out, inp, (Product((), every), Product((Factor(np.exp(y), inp, "softmax({x0})"),), off, -1.0)))


_LOG_SOFTMAX = register(Op(
    "log_softmax", lambda x, axis: x - np.expand_dims(logsumexp_over(x, (axis,)), axis), _axis_shape("log_softmax"),
    vjps=(lambda g, y, x, axis: g - np.exp(y) * np.sum(g, axis=axis, keepdims=True),),
    params=("axis",),
    example_params={"axis": 1},
    forms=(lambda y, x, axis: _log_softmax_factored(y, x, axis),),
))


def _one_axis(name: str, x: Any, axis: int) -> int:
    ndim = len(shape_of(x))
    if np.ndim(axis) != 0:
        raise ValueError(f"{name}: axis must be a single int, got {axis}")
    return normalize_axes(name, ndim, axis)[0] if ndim else 0


def softmax(x: Any, axis: int = -1) -> Node:
    """exp(x) / Σ exp(x) along one axis (default: the last).

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([0.0, np.log(3.0)])
    >>> jx.softmax(x).value.round(12).tolist(), jx.jacobian(jx.softmax(x), x).round(4).tolist()
    ([0.25, 0.75], [[0.1875, -0.1875], [-0.1875, 0.1875]])
    """
    return apply(_SOFTMAX, x, axis=_one_axis("softmax", x, axis))


def log_softmax(x: Any, axis: int = -1) -> Node:
    """x - logsumexp(x) along one axis (default: the last), without overflow.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([0.0, np.log(3.0)])
    >>> jx.jacobian(jx.log_softmax(x), x).round(4).tolist()
    [[0.75, -0.75], [-0.25, 0.25]]
    """
    return apply(_LOG_SOFTMAX, x, axis=_one_axis("log_softmax", x, axis))


# ================================================================ products, moments, norms, scans
def _move_last(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    """x with ``axes`` moved to the end and flattened into one: shape (kept..., m)."""
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    return moved.reshape(moved.shape[:len(kept)] + (-1,))


def _move_back(v: np.ndarray, shape: Shape, axes: Tuple[int, ...]) -> np.ndarray:
    """Undo :func:`_move_last` for an array of shape (kept..., m)."""
    kept = [a for a in range(len(shape)) if a not in axes]
    order = kept + list(axes)
    v = v.reshape(tuple(shape[a] for a in order))
    return np.transpose(v, np.argsort(order))


def _reduction_form(y: np.ndarray, x: np.ndarray, axes: Tuple[int, ...], keepdims: bool, partial: np.ndarray,
                    name: str) -> Factored:
    """dY[k]/dX[j] = δ(k = j off the reduced axes) · partial[j]: a reduction whose derivative is one array."""
    out, inp = axis_labels(y.ndim, x.ndim)
    f = Factor(as_factor(partial, y.dtype), inp, name)  # a node (second order) stays a node
    return Factored(out, inp, (Product((f,), _reduction_deltas(out, inp, axes, keepdims)),))


def _reduction_axes(name: str, x: Any, axis: Axis) -> Tuple[int, ...]:
    return normalize_axes(name, len(shape_of(x)), axis)


# ------------------------------------------------------------------ prod
def _exclusive_products(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    """P[j] = Π of the other entries of j's slice, from prefix and suffix products (exact with zeros)."""
    v = _move_last(x, axes)
    one = np.ones(v.shape[:-1] + (1,), dtype=v.dtype)
    before = np.cumprod(np.concatenate([one, v[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([one, v[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return _move_back(before * after, x.shape, axes)


def _prod_vjp(g, y, x, axes, keepdims):
    # by counting zeros per slice: none -> Π/x_j; one -> Π of the nonzeros at the zero, 0 elsewhere; more -> 0
    zero = x == 0
    nz = np.sum(zero, axis=axes, keepdims=True)
    p = np.prod(np.where(zero, 1, x), axis=axes, keepdims=True)
    safe = np.where(zero, 1, x)
    d = np.where(nz == 0, p / safe, np.where((nz == 1) & zero, p, 0))
    return _spread(g, x.shape, axes) * d


_PROD = register(Op(
    "prod", lambda x, axes, keepdims: np.prod(x, axis=axes, keepdims=keepdims),
    lambda s, axes, keepdims: _reduced_shape(s, axes, keepdims),
    vjps=(_prod_vjp,),
    params=("axes", "keepdims"),
    example=((2, 3),), example_params={"axes": (1,), "keepdims": False},
    forms=(lambda y, x, axes, keepdims: _reduction_form(
        y, x, axes, keepdims, _exclusive_products(x, axes), "Π_others({x0})"),),
))


def prod(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:
    """Product over ``axis`` (None: every axis; an int or a tuple), like ``np.prod``.

    dY[k]/dX[j] = δ(k = j off the reduced axes) · Π_(j' ≠ j in j's slice) X[j']

    The partial is the product of the *other* entries (prefix times suffix
    products), never y / x, so it is exact with zeros: with one zero in a
    slice only the zero's partial is nonzero, with two or more every partial is 0.

    >>> import jacobians as jx
    >>> x = jx.var([2.0, 0.0, 3.0])
    >>> float(jx.prod(x).value), jx.grad(jx.prod(x), x).tolist()
    (0.0, [0.0, 6.0, 0.0])
    """
    return apply(_PROD, x, axes=_reduction_axes("prod", x, axis), keepdims=bool(keepdims))


# ------------------------------------------------------------------ variance, std
def _count(name: str, shape: Shape, axes: Tuple[int, ...], ddof: float) -> float:
    n = int(np.prod([shape[a] for a in axes])) if axes else 1
    if n - ddof <= 0:
        raise ValueError(f"{name}: ddof={ddof} leaves no degrees of freedom for {n} entries per slice (axes {axes} of "
                         f"shape {tuple(shape)}); use ddof < {n} or reduce over more axes")
    return n - ddof


def _centered(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    return x - np.mean(x, axis=axes, keepdims=True)


def _var_forward(x, axes, ddof, keepdims):
    return np.var(x, axis=axes, ddof=ddof, keepdims=keepdims)


def _moment_shape(name: str):
    def rule(s: Shape, axes: Tuple[int, ...], ddof: float, keepdims: bool) -> Shape:
        _count(name, s, axes, ddof)
        return _reduced_shape(s, axes, keepdims)

    return rule


def _var_vjp(g, y, x, axes, ddof, keepdims):
    n = _count("variance", x.shape, axes, ddof)
    return _spread(g, x.shape, axes) * (2.0 / n) * (x - x.mean(axis=axes, keepdims=True))


_VARIANCE = register(Op(
    "variance", _var_forward, _moment_shape("variance"),
    vjps=(_var_vjp,),
    params=("axes", "ddof", "keepdims"),
    example=((2, 3),), example_params={"axes": (1,), "ddof": 0, "keepdims": False},
    forms=(lambda y, x, axes, ddof, keepdims: _reduction_form(
        y, x, axes, keepdims, 2.0 * _centered(x, axes) / _count("variance", x.shape, axes, ddof),
        "(2 ({x0} - mean {x0}) / (n - ddof))"),),
))


def _std_partial(y, x, axes, ddof, keepdims):
    """(x - mean) / ((n - ddof) y), 0 in a slice where y = 0 (every entry equal: the subgradient 0)."""
    n = _count("std", x.shape, axes, ddof)
    ys = np.reshape(y, _reduced_shape(x.shape, axes, True))
    c = _centered(x, axes)
    if isinstance(x, Node):  # second order: c / (n y) from ops; the mask y > 0 is piecewise constant (values)
        return _masked_ratio(c, n * ys)
    return np.divide(c, n * ys, out=np.zeros_like(c), where=ys > 0)


def _masked_ratio(num: Node, den: Node) -> Node:
    """num / den where den > 0 and 0 elsewhere, built from ops (den ≥ 0).

    The mask is sign(den), an op with derivative 0: piecewise constant, as a mask taken on the values would
    be, and computed again from new values when jx.jit replays the graph.
    """
    pos = np.sign(den)
    return num / (den + (1.0 - pos)) * pos


def _std_vjp(g, y, x, axes, ddof, keepdims):
    n = _count("std", x.shape, axes, ddof)
    s = np.sqrt(np.sum((x - x.mean(axis=axes, keepdims=True)) ** 2, axis=axes, keepdims=True) / n)
    c = x - x.mean(axis=axes, keepdims=True)
    safe = np.where(s > 0, s, 1)
    return _spread(g, x.shape, axes) * np.where(s > 0, c / (n * safe), 0)


_STD = register(Op(
    "std", lambda x, axes, ddof, keepdims: np.std(x, axis=axes, ddof=ddof, keepdims=keepdims), _moment_shape("std"),
    vjps=(_std_vjp,),
    params=("axes", "ddof", "keepdims"),
    example=((2, 3),), example_params={"axes": (1,), "ddof": 0, "keepdims": False},
    forms=(lambda y, x, axes, ddof, keepdims: _reduction_form(
        y, x, axes, keepdims, _std_partial(y, x, axes, ddof, keepdims), "(({x0} - mean {x0}) / ((n - ddof) {y}))"),),
))


def _ddof(name: str, ddof: Any) -> float:
    if np.ndim(ddof) != 0 or not np.isreal(ddof) or ddof < 0:
        raise ValueError(f"{name}: ddof must be a non-negative number (0: population, 1: sample), got {ddof!r}")
    return float(ddof) if float(ddof) != int(ddof) else int(ddof)


def variance(x: Any, axis: Axis = None, ddof: float = 0, keepdims: bool = False) -> Node:
    """Variance over ``axis``, like ``np.var``: Σ (x - mean)² / (n - ddof).

    (``jx.var`` makes a leaf; this is the reduction.)

    dY[k]/dX[j] = δ(k = j off the reduced axes) · 2 (X[j] - mean) / (n - ddof)

    >>> import jacobians as jx
    >>> x = jx.var([1.0, 2.0, 6.0])
    >>> v = jx.variance(x, ddof=1)
    >>> float(v.value), jx.grad(v, x).tolist()
    (7.0, [-2.0, -1.0, 3.0])
    """
    axes = _reduction_axes("variance", x, axis)
    check_nonempty("variance", tuple(shape_of(x)), axes)
    return apply(_VARIANCE, x, axes=axes, ddof=_ddof("variance", ddof), keepdims=bool(keepdims))


def std(x: Any, axis: Axis = None, ddof: float = 0, keepdims: bool = False) -> Node:
    """Standard deviation over ``axis``, like ``np.std``: sqrt(variance).

    dY[k]/dX[j] = δ(k = j off the reduced axes) · (X[j] - mean) / ((n - ddof) Y[k]).
    Convention: where every entry of a slice is equal (Y = 0, a kink) the
    gradient is 0, as relu'(0) = 0 — no warning, no nan.

    >>> import jacobians as jx
    >>> x, c = jx.var([1.0, 3.0]), jx.var([2.0, 2.0])
    >>> float(jx.std(x).value), jx.grad(jx.std(x), x).tolist(), jx.grad(jx.std(c), c).tolist()
    (1.0, [-0.5, 0.5], [0.0, 0.0])
    """
    axes = _reduction_axes("std", x, axis)
    check_nonempty("std", tuple(shape_of(x)), axes)
    return apply(_STD, x, axes=axes, ddof=_ddof("std", ddof), keepdims=bool(keepdims))


# ------------------------------------------------------------------ norm
def _tie_share(a: np.ndarray, axis: int) -> np.ndarray:
    """[a = max a] / #ties along ``axis``: each maximal entry's equal share (as jx.max splits ties)."""
    top = a == np.max(a, axis=axis, keepdims=True)
    return top / np.sum(top, axis=axis, keepdims=True)


def _nuc_polar(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    """U Vᵀ of each matrix over ``axes`` (from the SVD), kept on the singular values above round-off."""
    m = np.moveaxis(x, axes, (-2, -1))
    rel = max(m.shape[-2:]) * np.finfo(x.dtype).eps
    if isinstance(x, Node):  # second order: U, σ, Vᵀ are the nodes of jx.svd (distinct σ needed); the mask is
        from .linalg import svd  # sign(max(σ − tol, 0)), ops with derivative 0, so a jx.jit replay recomputes it

        u, s, vt = svd(m, full_matrices=False)
        keep = np.sign(np.maximum(s - np.max(s, axis=-1, keepdims=True) * rel, 0.0))
    else:
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        keep = (s > np.max(s, axis=-1, keepdims=True) * rel).astype(x.dtype)
    return np.moveaxis((u * keep[..., None, :]) @ vt, (-2, -1), axes)


def _norm_forward(x, kind, axes, keepdims):
    if kind == "2":
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))
    if kind == "1":
        return np.sum(np.abs(x), axis=axes, keepdims=keepdims)
    if kind == "inf":
        return np.max(np.abs(x), axis=axes, keepdims=keepdims)
    return np.linalg.norm(x, "nuc", axis=axes, keepdims=keepdims)


def _norm_partial(y, x, kind, axes, keepdims):
    """dY/dX[j] along the reduced axes; the subgradient 0 at a kink (a zero entry, a zero vector)."""
    if kind == "2":
        ys = np.reshape(y, _reduced_shape(x.shape, axes, True))
        if isinstance(x, Node):  # second order: X / Y from ops (0 where Y = 0)
            return _masked_ratio(x, ys)
        return np.divide(x, ys, out=np.zeros_like(x), where=ys > 0)
    xv = x.value if isinstance(x, Node) else x  # the sign and the tie share are piecewise constant: values
    if kind == "1":
        return np.sign(xv)
    if kind == "inf":
        return np.sign(xv) * _tie_share(np.abs(xv), axes[0])
    return _nuc_polar(x, axes)


_NORM_NAMES = {"2": "({x0} / {y})", "1": "sign({x0})", "inf": "(sign({x0}) [|{x0}| = {y}] / #ties)", "nuc": "(U Vᵀ)"}


def _norm_vjp(g, y, x, kind, axes, keepdims):
    gs = _spread(g, x.shape, axes)
    if kind == "2":
        n = np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True))
        return gs * np.where(n > 0, x / np.where(n > 0, n, 1), 0)
    if kind == "1":
        return gs * np.where(x > 0, 1, np.where(x < 0, -1, 0))
    if kind == "inf":
        ax = np.abs(x)
        top = ax == np.reshape(y, _reduced_shape(x.shape, axes, True))  # y = max |x| exactly
        return gs * np.sign(x) * top / np.count_nonzero(top, axis=axes[0], keepdims=True)
    # nuc: U Vᵀ = X (XᵀX)^(-1/2) on the nonzero singular values, from the eigenvectors of the Gram matrix
    m = np.moveaxis(x, axes, (-2, -1))
    mt = np.swapaxes(m, -1, -2)
    lam, v = np.linalg.eigh(mt @ m)
    tol = np.max(lam, axis=-1, keepdims=True) * 10 * max(m.shape[-2:]) * np.finfo(x.dtype).eps  # eigh's round-off
    inv_sqrt = np.where(lam > np.maximum(tol, np.finfo(x.dtype).tiny), 1 / np.sqrt(np.where(lam > 0, lam, 1)), 0)
    polar = m @ (v * inv_sqrt[..., None, :]) @ np.swapaxes(v, -1, -2)
    return gs * np.moveaxis(polar, (-2, -1), axes)


_NORM = register(Op(
    "norm", _norm_forward, lambda s, kind, axes, keepdims: _reduced_shape(s, axes, keepdims),
    vjps=(_norm_vjp,),
    params=("kind", "axes", "keepdims"),
    example=((2, 3),), example_params={"kind": "2", "axes": (1,), "keepdims": False},
    forms=(lambda y, x, kind, axes, keepdims: _reduction_form(
        y, x, axes, keepdims, _norm_partial(y, x, kind, axes, keepdims), _NORM_NAMES[kind]),),
))


def _norm_kind(x_shape: Shape, ord: Any, axis: Any) -> Tuple[str, Tuple[int, ...]]:
    """numpy.linalg.norm's reading of (ord, axis): the kind of norm and the reduced axes."""
    nd = len(x_shape)
    where = f"norm: ord={ord!r}, axis={axis!r} for shape {tuple(x_shape)}"
    if axis is None:
        if ord is None:
            return "2", tuple(range(nd))
        if nd not in (1, 2):
            raise ValueError(f"{where}: with an ord, numpy's norm needs a vector or a matrix (1 or 2 axes); "
                             "pass axis= to say which axes, or flatten first")
        axis = tuple(range(nd))
    axes = normalize_axes("norm", nd, axis)
    if np.ndim(axis) != 0 and len(tuple(axis)) != len(axes):
        raise ValueError(f"{where}: repeated axis")
    if len(axes) == 1:
        vector = {None: "2", 2: "2", 1: "1", np.inf: "inf"}
        if isinstance(ord, str) or ord not in vector:
            raise ValueError(f"{where}: vector norms supported are ord=None, 1, 2 and np.inf; for another p compute "
                             "(Σ |x|^p)^(1/p) with jx.abs, jx.power and jx.sum")
        return vector[ord], axes
    if len(axes) == 2:
        if ord in (None, "fro"):
            return "2", axes
        if ord == "nuc":
            return "nuc", axes
        raise ValueError(f"{where}: matrix norms supported are ord=None, 'fro' and 'nuc' (not 1, 2, inf or negative "
                         "orders); for a vector norm along one axis pass a single axis")
    raise ValueError(f"{where}: numpy's norm takes one axis (a vector norm) or two (a matrix norm), got {len(axes)}; "
                     "for the 2-norm over several axes use ord=None with axis=None, or jx.fro")


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Node:  # noqa: A002
    """Vector or matrix norm with ``numpy.linalg.norm``'s semantics.

    Vector norms (one axis): ord None or 2 (Euclidean), 1 (Σ|x|), np.inf
    (max|x|). Matrix norms (two axes): None or 'fro' (Frobenius), 'nuc' (Σ
    singular values). axis=None with ord=None is the 2-norm of every entry.

    dY[k]/dX[j] = δ(k = j off the reduced axes) · D[j] with D = X / Y (2, fro),
    sign(X) [|X| = Y] / #ties (inf), U Vᵀ (nuc).

    Convention (as relu'(0) = 0): at a kink the gradient is the subgradient 0
    — of the 2-norm at the zero vector, of |x| at 0 for ord 1; ord inf splits it
    equally among the entries tied for the largest |x| (as jx.max does); 'nuc'
    uses U Vᵀ over the nonzero singular values only. No warning, no nan.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([3.0, -4.0])
    >>> float(jx.norm(x).value), jx.grad(jx.norm(x), x).tolist(), jx.grad(jx.norm(x, np.inf), x).tolist()
    (5.0, [0.6, -0.8], [0.0, -1.0])
    >>> z = jx.var([0.0, 0.0])
    >>> jx.grad(jx.norm(z), z).tolist()
    [0.0, 0.0]
    """
    kind, axes = _norm_kind(shape_of(x), ord, axis)
    return apply(_NORM, x, kind=kind, axes=axes, keepdims=bool(keepdims))


# ------------------------------------------------------------------ scans: cumsum, cumprod
def _scan_axis(name: str, x: Any, axis: Optional[int]) -> Tuple[Any, int]:
    """(input, axis): axis None flattens first, as numpy does."""
    if axis is None:
        from .shape import reshape

        return (x if len(shape_of(x)) == 1 else reshape(x, (-1,))), 0
    return x, _one_axis(name, x, axis)


def _other_deltas(out: str, inp: str, axis: int) -> Tuple[str, ...]:
    return tuple(o + i for k, (o, i) in enumerate(zip(out, inp)) if k != axis)


def _cumsum_form(y, x, axis):
    # dY[..i..]/dX[..p..] = δ(off the axis) [p ≤ i]
    out, inp = axis_labels(y.ndim, x.ndim)
    n = x.shape[axis]
    tri = Factor(np.tril(np.ones((n, n), dtype=y.dtype)), out[axis] + inp[axis], "tril(1)")
    return Factored(out, inp, (Product((tri,), _other_deltas(out, inp, axis)),))


_CUMSUM = register(Op(
    "cumsum", lambda x, axis: np.cumsum(x, axis=axis), _axis_shape("cumsum"),
    vjps=(lambda g, y, x, axis: np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis),),  # sums of g from p on
    params=("axis",),
    example=((2, 3),), example_params={"axis": 1},
    forms=(_cumsum_form,),
))


def _cumprod_block(v: np.ndarray) -> np.ndarray:
    """E[..., p, i] = [p ≤ i] Π_(q ≤ i, q ≠ p) v[..., q]: prefix before p times the running product after p."""
    n = v.shape[-1]
    E = np.zeros(v.shape + (n,), dtype=v.dtype)
    one = np.ones(v.shape[:-1] + (1,), dtype=v.dtype)
    before = np.cumprod(np.concatenate([one, v[..., :-1]], axis=-1), axis=-1)
    for p in range(n):
        run = np.cumprod(np.concatenate([one, v[..., p + 1:]], axis=-1), axis=-1)
        E[..., p, p:] = before[..., p:p + 1] * run
    return E


def _cumprod_block_node(v: Node) -> Node:
    """:func:`_cumprod_block` from ops (no in-place writes): row p is [0]*p then before[p] · the running product."""
    n = v.shape[-1]
    one = np.ones(v.shape[:-1] + (1,), dtype=v.dtype)
    before = np.cumprod(np.concatenate([one, v[..., :-1]], axis=-1), axis=-1)
    rows = []
    for p in range(n):
        run = np.cumprod(np.concatenate([one, v[..., p + 1:]], axis=-1), axis=-1)
        row = before[..., p:p + 1] * run
        if p:
            row = np.concatenate([np.zeros(v.shape[:-1] + (p,), dtype=v.dtype), row], axis=-1)
        rows.append(row)
    return np.stack(rows, axis=-2)


def _cumprod_form(y, x, axis):
    # dY[..i..]/dX[..p..] = δ(off the axis) E[..., p, i], E[p, i] = [p ≤ i] Π_(q ≤ i, q ≠ p) X[q]
    out, inp = axis_labels(y.ndim, x.ndim)
    if isinstance(x, Node):  # second order: E built from ops (products of the entries), so its derivative is kept
        E = _cumprod_block_node(np.moveaxis(x, axis, -1))
    else:
        E = _cumprod_block(np.moveaxis(x, axis, -1)).astype(y.dtype)
    labels = "".join(c for k, c in enumerate(inp) if k != axis) + inp[axis] + out[axis]
    f = Factor(E, labels, "cumprod_others({x0})")
    return Factored(out, inp, (Product((f,), _other_deltas(out, inp, axis)),))


def _cumprod_vjp(g, y, x, axis):
    # dl/dX[p] = Σ_(i ≥ p) G[i] · (cumprod of X with X[p] set to 1)[i]: exact with zeros
    gv, xv = np.moveaxis(g, axis, -1), np.moveaxis(x, axis, -1)
    out = np.empty(np.broadcast_shapes(gv.shape, xv.shape), dtype=np.result_type(g, x))
    for p in range(xv.shape[-1]):
        held = xv.copy()
        held[..., p] = 1
        out[..., p] = np.sum(gv[..., p:] * np.cumprod(held, axis=-1)[..., p:], axis=-1)
    return np.moveaxis(out, -1, axis)


_CUMPROD = register(Op(
    "cumprod", lambda x, axis: np.cumprod(x, axis=axis), _axis_shape("cumprod"),
    vjps=(_cumprod_vjp,),
    params=("axis",),
    example=((2, 3),), example_params={"axis": 1},
    forms=(_cumprod_form,),
))


def cumsum(x: Any, axis: Optional[int] = None) -> Node:
    """Running sum along ``axis`` (None: of the flattened array), like ``np.cumsum``.

    dY[..i..]/dX[..p..] = δ(off the axis) · [p ≤ i]   (a lower-triangular ones matrix, ``tril(1)``)

    >>> import jacobians as jx
    >>> x = jx.var([1.0, 2.0, 3.0])
    >>> jx.cumsum(x).value.tolist(), jx.jacobian(jx.cumsum(x), x).tolist()
    ([1.0, 3.0, 6.0], [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    """
    x, a = _scan_axis("cumsum", x, axis)
    return apply(_CUMSUM, x, axis=a)


def cumprod(x: Any, axis: Optional[int] = None) -> Node:
    """Running product along ``axis`` (None: of the flattened array), like ``np.cumprod``.

    dY[..i..]/dX[..p..] = δ(off the axis) · [p ≤ i] Π_(q ≤ i, q ≠ p) X[q]

    The partial is a product of the other entries (never y / x), exact with zeros.

    >>> import jacobians as jx
    >>> x = jx.var([2.0, 0.0, 3.0])
    >>> jx.cumprod(x).value.tolist(), jx.jacobian(jx.cumprod(x), x).tolist()
    ([2.0, 0.0, 0.0], [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 6.0, 0.0]])
    """
    x, a = _scan_axis("cumprod", x, axis)
    return apply(_CUMPROD, x, axis=a)


# ------------------------------------------------------------------ diff
def _difference_matrix(length: int, n: int, dtype: Any) -> np.ndarray:
    """D[i, p]: the n-th difference's weights, D @ v = np.diff(v, n): ±binomial coefficients on a band."""
    return np.diff(np.eye(length, dtype=dtype), n, axis=0)


def _diff_shape(s: Shape, n: int, axis: int) -> Shape:
    if not s or s[axis] <= n:
        raise ValueError(f"diff: n={n} differences along axis {axis} of shape {tuple(s)} leave no entries; "
                         f"needs an axis longer than n")
    return tuple(d - n if k == axis else d for k, d in enumerate(s))


def _diff_form(y, x, n, axis):
    # dY[..i..]/dX[..p..] = δ(off the axis) D[i,p]
    out, inp = axis_labels(y.ndim, x.ndim)
    D = Factor(_difference_matrix(x.shape[axis], n, y.dtype), out[axis] + inp[axis], f"Δ{n}" if n != 1 else "Δ")
    return Factored(out, inp, (Product((D,), _other_deltas(out, inp, axis)),))


def _diff_vjp(g, y, x, n, axis):
    # the adjoint of one difference: pad G with a zero at each end, difference, negate; n times
    pad = [(1, 1) if k == axis else (0, 0) for k in range(g.ndim)]
    for _ in range(n):
        g = -np.diff(np.pad(g, pad), axis=axis)
    return g


_DIFF = register(Op(
    "diff", lambda x, n, axis: np.diff(x, n, axis=axis), _diff_shape,
    vjps=(_diff_vjp,),
    params=("n", "axis"),
    example=((2, 4),), example_params={"n": 1, "axis": 1},
    forms=(_diff_form,),
))


def diff(x: Any, n: int = 1, axis: int = -1) -> Node:
    """The ``n``-th discrete difference along ``axis``, like ``np.diff``.

    dY[..i..]/dX[..p..] = δ(off the axis) · Δ[i,p], Δ = np.diff(I, n): for n = 1, Δ[i,p] = [p = i+1] - [p = i]

    >>> import jacobians as jx
    >>> x = jx.var([1.0, 4.0, 9.0])
    >>> jx.diff(x).value.tolist(), jx.jacobian(jx.diff(x), x).tolist()
    ([3.0, 5.0], [[-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"diff: n must be a non-negative int (the order of the difference), got {n!r}")
    return apply(_DIFF, x, n=int(n), axis=_one_axis("diff", x, axis))


# ------------------------------------------------------------------ average
def _average_weights(wn, waxis, ndim):
    return wn if waxis is None else wn.reshape([-1 if k == waxis else 1 for k in range(ndim)])


def _average_forward(x, axes, wn, waxis):
    if wn is None:
        return np.mean(x, axis=axes)
    return np.sum(x * _average_weights(wn, waxis, x.ndim).astype(x.dtype), axis=axes)


def _average_form(y, x, axes, wn, waxis):
    # dY[k]/dX[j] = δ(k = j off the reduced axes) · w[j] / Σ w
    out, inp = axis_labels(y.ndim, x.ndim)
    deltas = _reduction_deltas(out, inp, axes, False)
    if wn is None:
        return Factored(out, inp, (Product((), deltas, 1.0 / int(np.prod([x.shape[a] for a in axes]))),))
    labels = inp if waxis is None else inp[waxis]
    return Factored(out, inp, (Product((Factor(np.asarray(wn, dtype=y.dtype), labels, "(w / Σw)"),), deltas),))


def _average_vjp(g, y, x, axes, wn, waxis):
    gs = _spread(g, x.shape, axes)
    if wn is None:
        return gs / int(np.prod([x.shape[a] for a in axes]))
    return gs * _average_weights(wn, waxis, x.ndim)


_AVERAGE = register(Op(
    "average", _average_forward, lambda s, axes, wn, waxis: _reduced_shape(s, axes, False),
    vjps=(_average_vjp,),
    params=("axes", "wn", "waxis"),
    example=((2, 3),), example_params={"axes": (1,), "wn": np.array([0.5, 0.25, 0.25]), "waxis": 1},
    forms=(_average_form,),
))


def average(x: Any, axis: Axis = None, weights: Any = None) -> Node:
    """Weighted mean over ``axis``, like ``np.average``: Σ w x / Σ w (``weights`` are constants).

    ``weights`` has the shape of ``x``, or is 1-D along a single ``axis``; None
    is the plain mean.

    dY[k]/dX[j] = δ(k = j off the reduced axes) · w[j] / Σ w

    >>> import jacobians as jx
    >>> x = jx.var([1.0, 2.0, 4.0])
    >>> float(jx.average(x, weights=[1.0, 1.0, 2.0]).value), jx.grad(jx.average(x, weights=[1, 1, 2]), x).tolist()
    (2.75, [0.25, 0.25, 0.5])
    """
    s = tuple(shape_of(x))
    axes = _reduction_axes("average", x, axis)
    check_nonempty("average", s, axes)
    if weights is None:
        return apply(_AVERAGE, x, axes=axes, wn=None, waxis=None)
    if isinstance(weights, Node):
        raise TypeError("average: weights are constants; pass a numpy array (for weights you differentiate, "
                        "write jx.sum(w * x, axis) / jx.sum(w))")
    w = np.asarray(weights, dtype=np.float64)
    waxis = None
    if w.shape != s:
        if axis is None or len(axes) != 1 or w.ndim != 1 or w.shape[0] != s[axes[0]]:
            raise ValueError(f"average: weights of shape {w.shape} do not fit x of shape {s} with axis={axis!r}; "
                             "give weights of x's shape, or 1-D weights as long as the one axis given")
        waxis = axes[0]
    total = w.sum() if waxis is not None else w.sum(axis=axes, keepdims=True)
    if np.any(total == 0) or not np.all(np.isfinite(w)):
        raise ValueError(f"average: the weights (shape {w.shape}) must be finite and sum to a nonzero value over "
                         f"axes {axes} of x {s}; got a zero sum or a non-finite weight")
    return apply(_AVERAGE, x, axes=axes, wn=w / total, waxis=waxis)
