"""Nonlinear reductions and normalizations along axes: logsumexp, softmax, log_softmax.

(sum and mean are linear: einsum specs, in einsum.py.)

    y = log Σ_axes e^X    dY[k]/dX[j] = δ(k = j without the summed axes) · softmax(X)[j]
    S = softmax(X, a)     dS[i]/dX[j] = δ(i = j off axis a) · S[i] (δ_{i_a j_a} - S[j])
    L = log_softmax(X, a) dL[i]/dX[j] = δ(i = j off axis a) · (δ_{i_a j_a} - S[j])
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ..form import Factor, Factored, Product, axis_labels
from ..node import Node, shape_of
from ..registry import Op, apply, register
from ._rules import normalize_axes

__all__ = ["logsumexp", "softmax", "log_softmax", "softmax_over", "logsumexp_over"]

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
            raise ValueError(f"{name}: needs at least one axis, got a scalar")
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
