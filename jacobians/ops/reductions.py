"""Reductions and normalizations along axes: sum, mean, logsumexp, softmax, log_softmax.

    y = Σ_axes X          dY[k]/dX[j] = δ(k = j without the summed axes)
    y = mean_axes X       dY[k]/dX[j] = δ(k = j without the summed axes) / count
    y = log Σ_axes e^X    dY[k]/dX[j] = δ(k = j without the summed axes) · softmax(X)[j]
    S = softmax(X, a)     dS[i]/dX[j] = δ(i = j off axis a) · S[i] (δ_{i_a j_a} - S[j])
    L = log_softmax(X, a) dL[i]/dX[j] = δ(i = j off axis a) · (δ_{i_a j_a} - S[j])
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .. import memory
from ..node import Node, apply
from ..registry import Factor, Factored, Op, Product, register
from ._rules import axis_labels
from ..scatter import tied_view

__all__ = ["sum", "mean", "logsumexp", "softmax", "log_softmax"]

Shape = Tuple[int, ...]
Axis = Union[None, int, Sequence[int]]


def _normalize_axes(name: str, ndim: int, axis: Axis) -> Tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= int(a) < max(ndim, 1):
            raise ValueError(f"{name}: axis {a} is out of range for an input with {ndim} axes")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(out))


def _reduced_shape(s: Shape, axes: Tuple[int, ...], keepdims: bool) -> Shape:
    return tuple((1 if k in axes else n) for k, n in enumerate(s) if keepdims or k not in axes)


def _reduction_view(J: np.ndarray, in_shape: Shape, axes: Tuple[int, ...], keepdims: bool) -> np.ndarray:
    """View of J[out..., in...] with each kept input axis tied to its output axis.

    Its shape is out_shape + (the reduced input axes), in that order.
    """
    n_out = J.ndim - len(in_shape)
    ties, k = [], 0
    for a in range(len(in_shape)):
        if a in axes:
            k += keepdims  # a kept length-1 output axis stays free
            continue
        ties.append((k, n_out + a))
        k += 1
    return tied_view(J, ties)


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


def _kept_then_reduced(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    """x with its kept axes first and reduced axes last (the order of the reduction view)."""
    return np.transpose(x, [a for a in range(x.ndim) if a not in axes] + list(axes))


def _spread(g: np.ndarray, in_shape: Shape, axes: Tuple[int, ...]) -> np.ndarray:
    """Broadcast a cotangent of the reduced shape back over the reduced axes."""
    return np.broadcast_to(np.reshape(g, _reduced_shape(in_shape, axes, True)), in_shape)


# ----------------------------------------------------------------- sum, mean
def _sum_like(name: str, scale):
    def shape(s: Shape, axes: Tuple[int, ...], keepdims: bool) -> Shape:
        return _reduced_shape(s, axes, keepdims)

    # dY[k]/dX[j] = δ(k = j off the axes) · scale
    def jac(y, x, axes, keepdims):
        J = memory.zeros(y.shape + x.shape, y.dtype, f"jacobian of {name}")
        _reduction_view(J, x.shape, axes, keepdims)[...] = scale(x.shape, axes)
        return J

    def vjp(g, y, x, axes, keepdims):
        return _spread(g * scale(x.shape, axes), x.shape, axes).astype(x.dtype, copy=True)

    # factored: the deltas alone, times the scale
    def factored(y, x, axes, keepdims):
        out, inp = axis_labels(y.ndim, x.ndim)
        return Factored(out, inp, (Product((), _reduction_deltas(out, inp, axes, keepdims), scale(x.shape, axes)),))

    return shape, (jac,), (vjp,), (factored,)


def _count(shape: Shape, axes: Tuple[int, ...]) -> float:
    return 1.0 / float(np.prod([shape[a] for a in axes]))


_s, _j, _v, _f = _sum_like("sum", lambda shape, axes: 1.0)
_SUM = register(Op("sum", lambda x, axes, keepdims: np.sum(x, axis=axes, keepdims=keepdims), _s, _j, _v,
                   formula="dY[k]/dX[j] = δ(k = j without the summed axes)", params=("axes", "keepdims"),
                   factored=_f))
_s, _j, _v, _f = _sum_like("mean", _count)
_MEAN = register(Op("mean", lambda x, axes, keepdims: np.mean(x, axis=axes, keepdims=keepdims), _s, _j, _v,
                    formula="dY[k]/dX[j] = δ(k = j without the averaged axes) / count", params=("axes", "keepdims"),
                    factored=_f))


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Sum over ``axis`` (None: every axis; an int or a tuple), like ``np.sum``.

    dY[k]/dX[j] = δ(k = j without the summed axes)

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 3)))
    >>> jx.sum(X, axis=0).shape, jx.jacobian(jx.sum(X, axis=0), X)[1].tolist()
    ((3,), [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    """
    ndim = x.ndim if isinstance(x, Node) else np.ndim(x)
    return apply(_SUM, x, axes=_normalize_axes("sum", ndim, axis), keepdims=bool(keepdims))


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:
    """Mean over ``axis`` (None: every axis; an int or a tuple), like ``np.mean``.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 2)))
    >>> jx.grad(jx.mean(X), X).tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    ndim = x.ndim if isinstance(x, Node) else np.ndim(x)
    return apply(_MEAN, x, axes=_normalize_axes("mean", ndim, axis), keepdims=bool(keepdims))


# ----------------------------------------------------------------- logsumexp
def _softmax_over(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    z = np.exp(x - np.max(x, axis=axes, keepdims=True))
    return z / np.sum(z, axis=axes, keepdims=True)


def _lse(x: np.ndarray, axes: Tuple[int, ...]) -> np.ndarray:
    m = np.max(x, axis=axes, keepdims=True)
    return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)), axis=axes)


# dY[k]/dX[j] = δ(k = j off the axes) softmax(X)[j]
def _lse_jac(y, x, axes):
    J = memory.zeros(y.shape + x.shape, y.dtype, "jacobian of logsumexp")
    _reduction_view(J, x.shape, axes, False)[...] = _kept_then_reduced(_softmax_over(x, axes), axes)
    return J


def _lse_factored(y, x, axes):  # δ(kept axes) softmax(X)[j...]
    out, inp = axis_labels(y.ndim, x.ndim)
    sm = Factor(_softmax_over(x, axes).astype(y.dtype), inp, "softmax({x0})")
    return Factored(out, inp, (Product((sm,), _reduction_deltas(out, inp, axes, False)),))


_LOGSUMEXP = register(Op(
    "logsumexp", _lse, lambda s, axes: _reduced_shape(s, axes, False),
    jacobians=(_lse_jac,),
    vjps=(lambda g, y, x, axes: _spread(g, x.shape, axes) * _softmax_over(x, axes),),
    formula="dY[k]/dX[j] = δ(k = j without the reduced axes) · softmax(X)[j]",
    params=("axes",),
    factored=(lambda y, x, axes: _lse_factored(y, x, axes),),
))


def logsumexp(x: Any, axis: Axis = None) -> Node:
    """log Σ exp(x) over ``axis`` (None: all), computed without overflow.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([0.0, np.log(3.0)])
    >>> round(float(jx.logsumexp(x).value), 12), jx.grad(jx.logsumexp(x), x).tolist()
    (1.386294361120, [0.25, 0.75])
    """
    ndim = x.ndim if isinstance(x, Node) else np.ndim(x)
    return apply(_LOGSUMEXP, x, axes=_normalize_axes("logsumexp", ndim, axis))


# ----------------------------------------------------------- softmax family
def _axis_shape(name: str):
    def rule(s: Shape, axis: int) -> Shape:
        if not s:
            raise ValueError(f"{name}: needs at least one axis, got a scalar")
        return tuple(s)

    return rule


def _axis_jacobian(y: np.ndarray, x: np.ndarray, axis: int, block: np.ndarray, name: str) -> np.ndarray:
    """Dense Jacobian of an op acting along one axis: δ on every other axis, ``block`` along it.

    ``block`` has shape (others..., L, L) = [..., i_axis, j_axis].
    """
    J = memory.zeros(y.shape + x.shape, y.dtype, f"jacobian of {name}")
    n = y.ndim
    view = tied_view(J, [(k, n + k) for k in range(n) if k != axis])  # shape y.shape + (L,)
    view[...] = np.moveaxis(block, -2, axis)
    return J


# dS[i]/dX[j] = δ(off axis) S[i] (δ_{i_a j_a} - S[j])
def _softmax_jac(y, x, axis):
    s = np.moveaxis(y, axis, -1)
    block = -s[..., :, None] * s[..., None, :]
    np.einsum("...ii->...i", block)[...] += s  # writeable diagonal view
    return _axis_jacobian(y, x, axis, block, "softmax")


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
    "softmax", lambda x, axis: _softmax_over(x, (axis,)), _axis_shape("softmax"),
    jacobians=(_softmax_jac,),
    vjps=(_softmax_vjp,),
    formula="dS[i]/dX[j] = δ(i = j off the axis) · S[i] (δ_{i_a j_a} - S[j])",
    params=("axis",),
    factored=(_softmax_factored,),
))


# dL[i]/dX[j] = δ(off axis) (δ_{i_a j_a} - S[j])
def _log_softmax_jac(y, x, axis):
    s = np.moveaxis(np.exp(y), axis, -1)
    block = np.repeat(-s[..., None, :], s.shape[-1], axis=-2)
    np.einsum("...ii->...i", block)[...] += 1.0
    return _axis_jacobian(y, x, axis, block, "log_softmax")


# factored: δ(every axis)  -  δ(off the axis) softmax(X)[j]
def _log_softmax_factored(y, x, axis):
    out, inp = axis_labels(y.ndim, x.ndim)
    every = tuple(o + i for o, i in zip(out, inp))
    off = tuple(d for k, d in enumerate(every) if k != axis)
    return Factored(out, inp, (Product((), every), Product((Factor(np.exp(y), inp, "softmax({x0})"),), off, -1.0)))


_LOG_SOFTMAX = register(Op(
    "log_softmax", lambda x, axis: x - np.expand_dims(_lse(x, (axis,)), axis), _axis_shape("log_softmax"),
    jacobians=(_log_softmax_jac,),
    vjps=(lambda g, y, x, axis: g - np.exp(y) * np.sum(g, axis=axis, keepdims=True),),
    formula="dL[i]/dX[j] = δ(i = j off the axis) · (δ_{i_a j_a} - softmax(X)[j])",
    params=("axis",),
    factored=(lambda y, x, axis: _log_softmax_factored(y, x, axis),),
))


def _one_axis(name: str, x: Any, axis: int) -> int:
    ndim = x.ndim if isinstance(x, Node) else np.ndim(x)
    if np.ndim(axis) != 0:
        raise ValueError(f"{name}: axis must be a single int, got {axis}")
    return _normalize_axes(name, ndim, axis)[0] if ndim else 0


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
