"""Ops that only move, copy or drop entries: reshape, ravel, expand_dims, squeeze, swapaxes, moveaxis,
broadcast_to, flip, roll, tile, repeat, pad (transpose is an einsum spec, in einsum.py).

Every one of them is linear and works axis by axis, so its Jacobian is a
product over the output axes of

* a delta ``δ_ip`` where the output axis is an input axis unchanged,
* nothing where the output axis is new (length 1) or a broadcast,
* a constant 0/1 selection matrix ``S[i,p]`` (output length × input length,
  along that one axis, never the whole Jacobian) where entries along the axis
  are picked, reversed, shifted, repeated or padded. Each is a literal
  rearrangement of the identity: ``I[::-1]`` (flip), ``roll(I,2)``,
  ``tile(I,3)``, ``repeat(I,2)``, ``I[:,1:4]`` (pad one before),

e.g. ``Y = np.flip(X, 1)``:  ``dY[i,j]/dX[p,q] = δ_ip I[::-1][j,q]``.
A reshape that regroups axes is ``δ(flat(out), flat(in))``. The VJPs are
written with numpy directly (the inverse move, a sum over copies, a slice).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..form import Factor, Factored, Product, axis_labels, broadcast_factored
from ..node import Node, shape_of
from ..registry import Op, apply, register
from ._rules import broadcasts_to, normalize_axes, unbroadcast

__all__ = ["reshape", "ravel", "expand_dims", "squeeze", "swapaxes", "moveaxis", "broadcast_to", "flip", "fliplr",
           "flipud", "rot90", "roll", "tile", "repeat", "pad"]

Shape = Tuple[int, ...]
# one output axis: (the input axis it reads, or None; its selection matrix, or None for a delta; the matrix's name)
AxisRule = Tuple[Optional[int], Optional[np.ndarray], str]


# ------------------------------------------------------------------ building blocks
def selection(src: Any, n: int, dtype: Any = np.float64) -> np.ndarray:
    """S[i, p] = [src[i] = p]: output entry i along one axis reads input entry src[i] (none where src[i] < 0).

    >>> selection([2, 0, -1], 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    src = np.asarray(src, dtype=np.intp).reshape(-1)
    S = np.zeros((src.size, n), dtype=dtype)
    rows = np.nonzero(src >= 0)[0]
    S[rows, src[rows]] = 1
    return S


def axis_form(out_ndim: int, in_ndim: int, outs: Sequence[AxisRule], dtype: Any,
              dropped: Sequence[Tuple[int, np.ndarray, str]] = ()) -> Factored:
    """The form of a map that works axis by axis: one delta or one selection factor per output axis.

    ``outs[k]`` is ``(a, None, "")`` for a delta δ(out_k, in_a), ``(a, S, name)``
    for a selection matrix S[out_k, in_a], ``(None, None, "")`` for a new or
    broadcast axis (the Jacobian is constant along it) and ``(None, e, name)`` for
    a vector e[out_k] (an input placed at one position of a new axis, as in
    stack). ``dropped`` lists input axes that leave no output axis, each with a
    vector over it (an integer index picks one entry: a row of the identity).

    >>> print(axis_form(2, 2, [(0, None, ""), (1, selection([1, 0], 2), "I[::-1]")], np.float64).formula(("X",)))
    dY[i,j]/dX[p,q] = δ_ip I[::-1][j,q]
    """
    out, inp = axis_labels(out_ndim, in_ndim)
    factors: List[Factor] = []
    deltas: List[str] = []
    for k, (a, sel, name) in enumerate(outs):
        if a is not None and sel is None:
            deltas.append(out[k] + inp[a])
        elif sel is not None:
            factors.append(Factor(np.asarray(sel, dtype=dtype), out[k] + (inp[a] if a is not None else ""), name))
    for a, vec, name in dropped:
        factors.append(Factor(np.asarray(vec, dtype=dtype), inp[a], name))
    return Factored(out, inp, (Product(tuple(factors), tuple(deltas)),))


def slice_text(start: int, step: int, length: int) -> str:
    """``1:5:2``: a normalized slice as Python writes it (stop left out where it would be negative)."""
    if length == 0:
        return f"{start}:{start}"
    last = start + step * (length - 1)
    stop = last + (1 if step > 0 else -1)
    stop_text = "" if stop < 0 else str(stop)
    return f"{start}:{stop_text}" + (f":{step}" if step != 1 else "")


def _one_axis(name: str, ndim: int, axis: Any) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    return normalize_axes(name, ndim, int(axis))[0]


def _axes(name: str, ndim: int, axis: Any) -> Tuple[int, ...]:
    """Axes in the order given (normalize_axes sorts them)."""
    if axis is None:
        return tuple(range(ndim))
    given = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    normalize_axes(name, ndim, given)  # raises on a bad or repeated axis
    return tuple(int(a) % max(ndim, 1) for a in given)


def _ints(name: str, what: str, value: Any) -> Tuple[int, ...]:
    """Integer parameters (a count, a shift) as a flat tuple; the error names the op."""
    if isinstance(value, Node):
        raise TypeError(f"{name}: {what} must be constant integers, not the node {value.name}")
    arr = np.asarray(value)
    if arr.size and (arr.dtype.kind not in "iu"):
        raise TypeError(f"{name}: {what} must be integers, got {value!r}")
    return tuple(int(v) for v in arr.reshape(-1))


# ------------------------------------------------------------------ reshape and ravel
def _reshape_shape(s: Shape, shape: Shape) -> Shape:
    size = math.prod(s)
    known = math.prod(d for d in shape if d != -1)
    free = list(shape).count(-1)
    out = tuple(size // known if d == -1 and known else d for d in shape)
    if free > 1 or any(d < -1 for d in shape) or math.prod(out) != size:
        raise ValueError(f"reshape: cannot reshape an input of shape {s} (size {size}) into {shape}")
    return out


# When the reshape only adds or drops length-1 axes: one delta per remaining axis.
# Otherwise δ(flat(i), flat(j)) is not a product of per-axis deltas: it is declared
# as such (flat=True); the dense route writes the diagonal, a cotangent is reshaped.
def _reshape_factored(y, x, shape=None):
    out, inp = axis_labels(y.ndim, x.ndim)
    o = [k for k, n in enumerate(y.shape) if n != 1]
    i = [k for k, n in enumerate(x.shape) if n != 1]
    if [y.shape[k] for k in o] == [x.shape[k] for k in i]:
        return Factored(out, inp, (Product((), tuple(out[a] + inp[b] for a, b in zip(o, i))),))
    return Factored(out, inp, (), flat=True)


_RESHAPE = register(Op(
    "reshape", lambda x, shape: np.reshape(x, shape), _reshape_shape,
    forms=(_reshape_factored,),
    vjps=(lambda g, y, x, shape: np.reshape(g, x.shape),),
    params=("shape",),
    example=((2, 6),),
    example_params={"shape": (3, 4)},
))


def reshape(x: Any, shape: Sequence[int]) -> Node:
    """Reshape in C order, like ``np.reshape`` (one -1 allowed).

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.arange(6.0))
    >>> jx.reshape(x, (2, -1)).shape, float(jx.jacobian(jx.reshape(x, (2, 3)), x).reshape(6, 6).trace())
    ((2, 3), 6.0)
    """
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    return apply(_RESHAPE, x, shape=shape)


_RAVEL = register(Op(
    "ravel", lambda x: np.ravel(x).copy(), lambda s: (math.prod(s),),
    forms=(lambda y, x: _reshape_factored(y, x),),
    vjps=(lambda g, y, x: np.reshape(g, x.shape),),
    example=((2, 3),),
))


def ravel(a: Any) -> Node:
    """The entries in C order as one axis, like ``np.ravel`` (and ``X.flatten()``, ``X.ravel()``).

    dY[i]/dX[p,q] = δ(flat(i), flat(p,q))

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.arange(6.0).reshape(2, 3))
    >>> jx.ravel(X).value.tolist(), jx.jacobian(jx.ravel(X), X).shape
    ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], (6, 2, 3))
    """
    return apply(_RAVEL, a)


# ------------------------------------------------------------------ new, dropped and permuted axes
def _expand_shape(s: Shape, axes: Tuple[int, ...]) -> Shape:
    out = list(s)
    for a in sorted(axes):
        out.insert(a, 1)
    return tuple(out)


def _expand_form(y, x, axes):
    rest = iter(range(x.ndim))
    return axis_form(y.ndim, x.ndim, [(None, None, "") if k in axes else (next(rest), None, "") for k in range(y.ndim)],
                     y.dtype)


_EXPAND_DIMS = register(Op(
    "expand_dims", lambda x, axes: np.expand_dims(x, axes).copy(), _expand_shape,
    forms=(_expand_form,),
    vjps=(lambda g, y, x, axes: np.reshape(g, x.shape),),
    params=("axes",),
    example=((2, 3),),
    example_params={"axes": (1,)},
))


def expand_dims(a: Any, axis: Union[int, Sequence[int]]) -> Node:
    """Insert length-1 axes at the positions ``axis`` (of the result), like ``np.expand_dims``.

    dY[i,j,k]/dX[p,q] = δ_ip δ_kq  (axis=1: the new axis j has no delta)

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 3)))
    >>> jx.expand_dims(X, 1).shape, jx.expand_dims(X, (0, -1)).shape
    ((2, 1, 3), (1, 2, 3, 1))
    """
    n = len(shape_of(a)) + (1 if np.ndim(axis) == 0 else len(tuple(axis)))
    return apply(_EXPAND_DIMS, a, axes=tuple(sorted(_axes("expand_dims", n, axis))))


def _squeeze_shape(s: Shape, axes: Tuple[int, ...]) -> Shape:
    bad = [a for a in axes if s[a] != 1]
    if bad:
        raise ValueError(f"squeeze: axis {bad[0]} of shape {s} has length {s[bad[0]]}; only length-1 axes can be "
                         "squeezed out (leave axis=None to drop every length-1 axis)")
    return tuple(n for k, n in enumerate(s) if k not in axes)


def _squeeze_form(y, x, axes):
    return axis_form(y.ndim, x.ndim, [(a, None, "") for a in range(x.ndim) if a not in axes], y.dtype)


_SQUEEZE = register(Op(
    "squeeze", lambda x, axes: np.squeeze(x, axes).copy(), _squeeze_shape,
    forms=(_squeeze_form,),
    vjps=(lambda g, y, x, axes: np.reshape(g, x.shape),),
    params=("axes",),
    example=((2, 1, 3),),
    example_params={"axes": (1,)},
))


def squeeze(a: Any, axis: Union[None, int, Sequence[int]] = None) -> Node:
    """Drop length-1 axes (all of them, or those in ``axis``), like ``np.squeeze``.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 1, 3, 1)))
    >>> jx.squeeze(X).shape, jx.squeeze(X, 1).shape, X.squeeze(-1).shape
    ((2, 3), (2, 3, 1), (2, 1, 3))
    """
    s = shape_of(a)
    if axis is None:
        axes = tuple(k for k, n in enumerate(s) if n == 1)
    else:
        axes = tuple(sorted(_axes("squeeze", len(s), axis)))
    return apply(_SQUEEZE, a, axes=axes)


def _permute_form(y, x, order):
    return axis_form(y.ndim, x.ndim, [(a, None, "") for a in order], y.dtype)


def _swap_order(n: int, axis1: int, axis2: int) -> List[int]:
    order = list(range(n))
    order[axis1], order[axis2] = axis2, axis1
    return order


_SWAPAXES = register(Op(
    "swapaxes", lambda x, axis1, axis2: np.swapaxes(x, axis1, axis2).copy(),
    lambda s, axis1, axis2: tuple(s[a] for a in _swap_order(len(s), axis1, axis2)),
    forms=(lambda y, x, axis1, axis2: _permute_form(y, x, _swap_order(x.ndim, axis1, axis2)),),
    vjps=(lambda g, y, x, axis1, axis2: np.swapaxes(g, axis1, axis2),),
    params=("axis1", "axis2"),
    example=((2, 3, 4),),
    example_params={"axis1": 0, "axis2": 2},
))


def swapaxes(a: Any, axis1: int, axis2: int) -> Node:
    """Exchange two axes, like ``np.swapaxes``.

    dY[i,j,k]/dX[p,q,r] = δ_ir δ_jq δ_kp  (axes 0 and 2)

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 3, 4)))
    >>> jx.swapaxes(X, 0, 2).shape, X.swapaxes(-1, 1).shape
    ((4, 3, 2), (2, 4, 3))
    """
    n = len(shape_of(a))
    return apply(_SWAPAXES, a, axis1=_one_axis("swapaxes", n, axis1), axis2=_one_axis("swapaxes", n, axis2))


def _move_order(n: int, source: Tuple[int, ...], destination: Tuple[int, ...]) -> List[int]:
    order = [a for a in range(n) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return order


_MOVEAXIS = register(Op(
    "moveaxis", lambda x, source, destination: np.moveaxis(x, source, destination).copy(),
    lambda s, source, destination: tuple(s[a] for a in _move_order(len(s), source, destination)),
    forms=(lambda y, x, source, destination: _permute_form(y, x, _move_order(x.ndim, source, destination)),),
    vjps=(lambda g, y, x, source, destination: np.moveaxis(g, destination, source),),
    params=("source", "destination"),
    example=((2, 3, 4),),
    example_params={"source": (0,), "destination": (2,)},
))


def moveaxis(a: Any, source: Union[int, Sequence[int]], destination: Union[int, Sequence[int]]) -> Node:
    """Move axes to new positions, the others keeping their order, like ``np.moveaxis``.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 3, 4)))
    >>> jx.moveaxis(X, 0, -1).shape, jx.moveaxis(X, (0, 1), (2, 0)).shape
    ((3, 4, 2), (3, 4, 2))
    """
    n = len(shape_of(a))
    src, dst = _axes("moveaxis", n, source), _axes("moveaxis", n, destination)
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must name as many axes "
                         f"(input of shape {shape_of(a)})")
    return apply(_MOVEAXIS, a, source=src, destination=dst)


def _broadcast_to_shape(s: Shape, shape: Shape) -> Shape:
    if not broadcasts_to(s, shape):
        raise ValueError(f"broadcast_to: an input of shape {s} cannot be broadcast to {shape} (numpy rules: "
                         "trailing axes must match or be 1, and the target has at least as many axes)")
    return tuple(shape)


_BROADCAST_TO = register(Op(
    "broadcast_to", lambda x, shape: np.array(np.broadcast_to(x, shape)), _broadcast_to_shape,
    forms=(lambda y, x, shape: broadcast_factored(y.shape, x.shape),),
    vjps=(lambda g, y, x, shape: unbroadcast(g, x.shape),),
    params=("shape",),
    example=((3, 1),),
    example_params={"shape": (2, 3, 4)},
))


def broadcast_to(a: Any, shape: Union[int, Sequence[int]]) -> Node:
    """Broadcast to ``shape`` by numpy's rules, like ``np.broadcast_to`` (a copy, not a view).

    dY[i,j,k]/dX[p,q] = δ_jp  for (3, 1) -> (2, 3, 4): a broadcast axis has no delta

    >>> import numpy as np, jacobians as jx
    >>> b = jx.var([1.0, 2.0])
    >>> jx.broadcast_to(b, (3, 2)).shape, jx.grad(jx.sum(jx.broadcast_to(b, (3, 2))), b).tolist()
    ((3, 2), [3.0, 3.0])
    """
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    return apply(_BROADCAST_TO, a, shape=shape)


# ------------------------------------------------------------------ entries picked along one axis
def _flip_form(y, x, axes):
    return axis_form(y.ndim, x.ndim, [(a, selection(np.arange(n)[::-1], n), "I[::-1]") if a in axes else (a, None, "")
                                      for a, n in enumerate(x.shape)], y.dtype)


_FLIP = register(Op(
    "flip", lambda x, axes: np.flip(x, axes).copy(), lambda s, axes: tuple(s),
    forms=(_flip_form,),
    vjps=(lambda g, y, x, axes: np.flip(g, axes),),
    params=("axes",),
    example=((2, 3),),
    example_params={"axes": (1,)},
))


def flip(m: Any, axis: Union[None, int, Sequence[int]] = None) -> Node:
    """Reverse the order of entries along ``axis`` (None: every axis), like ``np.flip``.

    dY[i,j]/dX[p,q] = δ_ip I[::-1][j,q]  (axis=1)

    >>> import numpy as np, jacobians as jx
    >>> jx.flip(jx.var([[1.0, 2.0, 3.0]]), 1).value.tolist()
    [[3.0, 2.0, 1.0]]
    """
    return apply(_FLIP, m, axes=tuple(sorted(_axes("flip", len(shape_of(m)), axis))))


def fliplr(m: Any) -> Node:
    """Reverse the second axis (left/right), like ``np.fliplr``: ``flip(m, 1)``.

    >>> import jacobians as jx
    >>> jx.fliplr(jx.var([[1.0, 2.0, 3.0]])).value.tolist()
    [[3.0, 2.0, 1.0]]
    """
    if len(shape_of(m)) < 2:
        raise ValueError(f"fliplr: needs at least two axes, got shape {shape_of(m)}")
    return flip(m, 1)


def flipud(m: Any) -> Node:
    """Reverse the first axis (up/down), like ``np.flipud``: ``flip(m, 0)``.

    >>> import jacobians as jx
    >>> jx.flipud(jx.var([[1.0], [2.0]])).value.tolist()
    [[2.0], [1.0]]
    """
    if len(shape_of(m)) < 1:
        raise ValueError("flipud: needs at least one axis, got a scalar")
    return flip(m, 0)


def rot90(m: Any, k: int = 1, axes: Sequence[int] = (0, 1)) -> Node:
    """Rotate by 90 degrees ``k`` times in the plane of ``axes`` (first towards second), like ``np.rot90``.

    A flip and a swap of the two axes (k odd), or a flip of both (k = 2).

    >>> import jacobians as jx
    >>> jx.rot90(jx.var([[1.0, 2.0], [3.0, 4.0]])).value.tolist()
    [[2.0, 4.0], [1.0, 3.0]]
    """
    n = len(shape_of(m))
    if np.ndim(axes) != 1 or len(axes) != 2:
        raise ValueError(f"rot90: axes must be two axes, got {axes!r}")
    a, b = _one_axis("rot90", n, axes[0]), _one_axis("rot90", n, axes[1])
    if a == b:
        raise ValueError(f"rot90: the two axes must differ, got {tuple(axes)} for shape {shape_of(m)}")
    k = int(k) % 4
    if k == 0:
        return flip(m, ())
    if k == 2:
        return flip(m, (a, b))
    if k == 1:
        return swapaxes(flip(m, b), a, b)
    return flip(swapaxes(m, a, b), b)


def _roll_form(y, x, shifts):
    by = dict(shifts)
    return axis_form(y.ndim, x.ndim, [(a, selection((np.arange(n) - by[a]) % n, n), f"roll(I,{by[a]})") if a in by
                                      else (a, None, "") for a, n in enumerate(x.shape)], y.dtype)


def _roll_forward(x, shifts):
    return np.roll(x, [s for _, s in shifts], [a for a, _ in shifts]) if shifts else np.array(x)


def _roll_vjp(g, y, x, shifts):
    return np.roll(g, [-s for _, s in shifts], [a for a, _ in shifts]) if shifts else g


_ROLL = register(Op(
    "roll", _roll_forward, lambda s, shifts: tuple(s),
    forms=(_roll_form,),
    vjps=(_roll_vjp,),
    params=("shifts",),
    example=((2, 4),),
    example_params={"shifts": ((1, 1),)},
))


def roll(a: Any, shift: Union[int, Sequence[int]], axis: Union[None, int, Sequence[int]] = None) -> Node:
    """Shift entries cyclically along ``axis``, like ``np.roll`` (None: over the flattened array, shape kept).

    dY[i,j]/dX[p,q] = δ_ip roll(I,1)[j,q]  (axis=1, shift 1)

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([1.0, 2.0, 3.0, 4.0])
    >>> jx.roll(x, 1).value.tolist(), jx.roll(jx.reshape(x, (2, 2)), -1).value.tolist()
    ([4.0, 1.0, 2.0, 3.0], [[2.0, 3.0], [4.0, 1.0]])
    """
    s = shape_of(a)
    if axis is None:
        if len(s) != 1:  # numpy: flatten, roll, restore the shape
            return reshape(roll(ravel(a), shift, 0), s)
        axis = 0
    axes = [_one_axis("roll", len(s), v) for v in ((axis,) if np.ndim(axis) == 0 else tuple(axis))]
    shifts = _ints("roll", "shift", shift)
    try:
        pairs = np.broadcast_arrays(np.reshape(shifts, np.shape(shift)), np.asarray(axes))
    except ValueError:
        raise ValueError(f"roll: shift {shift} and axis {axis} do not broadcast against each other; give one shift "
                         "per axis (or one shift for all)") from None
    total: dict = {}
    for sh, ax in zip(np.ravel(pairs[0]), np.ravel(pairs[1])):
        ax = int(ax)
        total[ax] = total.get(ax, 0) + int(sh)
    norm = tuple((ax, sh % s[ax]) for ax, sh in sorted(total.items()) if s[ax] and sh % s[ax])
    return apply(_ROLL, a, shifts=norm)


def _tile_layout(s: Shape, reps: Tuple[int, ...]) -> Tuple[Shape, Tuple[int, ...]]:
    d = max(len(s), len(reps))
    return (1,) * (d - len(s)) + tuple(s), (1,) * (d - len(reps)) + tuple(reps)


def _tile_shape(s: Shape, reps: Tuple[int, ...]) -> Shape:
    xs, rs = _tile_layout(s, reps)
    return tuple(n * r for n, r in zip(xs, rs))


def _tile_form(y, x, reps):
    xs, rs = _tile_layout(x.shape, reps)
    new = len(xs) - x.ndim
    outs: List[AxisRule] = []
    for k, (n, r) in enumerate(zip(xs, rs)):
        if k < new:
            outs.append((None, None, ""))  # a new leading axis: constant along it
        elif r == 1:
            outs.append((k - new, None, ""))
        else:
            outs.append((k - new, selection(np.arange(n * r) % n, n), f"tile(I,{r})"))
    return axis_form(y.ndim, x.ndim, outs, y.dtype)


def _tile_vjp(g, y, x, reps):
    xs, rs = _tile_layout(x.shape, reps)
    split = [v for pair in zip(rs, xs) for v in pair]  # (r0, n0, r1, n1, ...)
    return np.reshape(np.reshape(g, split).sum(axis=tuple(range(0, 2 * len(xs), 2))), x.shape)


_TILE = register(Op(
    "tile", lambda x, reps: np.tile(x, reps), _tile_shape,
    forms=(_tile_form,),
    vjps=(_tile_vjp,),
    params=("reps",),
    example=((2, 3),),
    example_params={"reps": (1, 2)},
))


def tile(A: Any, reps: Union[int, Sequence[int]]) -> Node:
    """Repeat the whole array ``reps`` times along each axis, like ``np.tile``.

    dY[i,j]/dX[p,q] = δ_ip tile(I,2)[j,q]  (reps (1, 2))

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([1.0, 2.0])
    >>> jx.tile(x, 2).value.tolist(), jx.tile(x, (2, 1)).shape, jx.grad(jx.sum(jx.tile(x, 3)), x).tolist()
    ([1.0, 2.0, 1.0, 2.0], (2, 2), [3.0, 3.0])
    """
    r = _ints("tile", "reps", reps)
    if any(v < 0 for v in r):
        raise ValueError(f"tile: reps {reps} must be non-negative")
    return apply(_TILE, A, reps=r)


def _repeat_source(n: int, repeats: Tuple[int, ...]) -> np.ndarray:
    return np.repeat(np.arange(n), repeats)


def _repeat_form(y, x, repeats, axis):
    n = x.shape[axis]
    name = f"repeat(I,{repeats[0]})" if len(set(repeats)) == 1 else "repeat(I,r)"
    return axis_form(y.ndim, x.ndim, [(a, selection(_repeat_source(n, repeats), n), name) if a == axis
                                      else (a, None, "") for a in range(x.ndim)], y.dtype)


def _repeat_vjp(g, y, x, repeats, axis):
    gx = np.zeros(x.shape, dtype=g.dtype)
    np.add.at(np.moveaxis(gx, axis, 0), _repeat_source(x.shape[axis], repeats), np.moveaxis(g, axis, 0))
    return gx


_REPEAT = register(Op(
    "repeat", lambda x, repeats, axis: np.repeat(x, repeats, axis),
    lambda s, repeats, axis: s[:axis] + (sum(repeats),) + s[axis + 1:],
    forms=(_repeat_form,),
    vjps=(_repeat_vjp,),
    params=("repeats", "axis"),
    example=((2, 3),),
    example_params={"repeats": (2, 2, 2), "axis": 1},
))


def repeat(a: Any, repeats: Union[int, Sequence[int]], axis: Optional[int] = None) -> Node:
    """Repeat each entry along ``axis`` (None: of the flattened array), like ``np.repeat``.

    ``repeats`` is one count for every entry, or one count per entry along the axis.

    dY[i,j]/dX[p,q] = δ_ip repeat(I,2)[j,q]  (axis=1, repeats 2)

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([1.0, 2.0])
    >>> jx.repeat(x, 2).value.tolist(), jx.repeat(x, [1, 3]).value.tolist()
    ([1.0, 1.0, 2.0, 2.0], [1.0, 2.0, 2.0, 2.0])
    """
    s = shape_of(a)
    if axis is None:
        if len(s) != 1:
            a = ravel(a)
        s, axis = shape_of(a), 0
    ax = _one_axis("repeat", len(s), axis)
    r = _ints("repeat", "repeats", repeats)
    n = s[ax]
    if len(r) == 1:
        r = r * n
    if len(r) != n or any(v < 0 for v in r):
        raise ValueError(f"repeat: repeats {repeats} must be one non-negative count, or one per entry along axis "
                         f"{ax} (length {n}) of shape {s}")
    return apply(_REPEAT, a, repeats=r, axis=ax)


def _pad_shape(s: Shape, pad: Tuple[Tuple[int, int], ...], value: float) -> Shape:
    return tuple(n + b + e for n, (b, e) in zip(s, pad))


def _pad_form(y, x, pad, value):
    outs: List[AxisRule] = []
    for a, (n, (b, e)) in enumerate(zip(x.shape, pad)):
        if b == e == 0:
            outs.append((a, None, ""))
        else:
            src = np.arange(n + b + e) - b
            src[(src < 0) | (src >= n)] = -1
            outs.append((a, selection(src, n), f"I[:,{b}:{b + n}]"))
    return axis_form(y.ndim, x.ndim, outs, y.dtype)


_PAD = register(Op(
    "pad", lambda x, pad, value: np.pad(x, pad, mode="constant", constant_values=value), _pad_shape,
    forms=(_pad_form,),
    vjps=(lambda g, y, x, pad, value: g[tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, pad))],),
    params=("pad", "value"),
    example=((2, 3),),
    example_params={"pad": ((0, 0), (1, 2)), "value": 0.0},
))


def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: float = 0) -> Node:
    """Pad with a constant (numpy's ``mode="constant"``), like ``np.pad``.

    ``pad_width`` is numpy's: an int, ``(before, after)`` for every axis, or one pair per axis.
    ``constant_values`` is one number (the pad is a constant: it has no derivative).

    dY[i,j]/dX[p,q] = δ_ip I[:,1:4][j,q]  (one before and two after along axis 1 of a (2, 3) input)

    >>> import numpy as np, jacobians as jx
    >>> jx.pad(jx.var([1.0, 2.0]), (1, 2)).value.tolist()
    [0.0, 1.0, 2.0, 0.0, 0.0]
    """
    s = shape_of(array)
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported; only mode='constant' (pad with constant_values)")
    if isinstance(constant_values, Node) or np.ndim(constant_values) != 0:
        raise TypeError(f"pad: constant_values must be one number, got {constant_values!r}")
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu" or widths.ndim > 2:
        raise TypeError(f"pad: pad_width must be integers (an int, (before, after) or one pair per axis), "
                        f"got {pad_width!r}")
    try:
        widths = np.broadcast_to(widths, (len(s), 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit an input of shape {s}; give an int, "
                         "(before, after), or one (before, after) pair per axis") from None
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width {pad_width!r} must be non-negative")
    return apply(_PAD, array, pad=tuple((int(b), int(e)) for b, e in widths), value=float(constant_values))
