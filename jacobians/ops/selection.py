"""Selection ops: where, maximum, minimum, clip, max, min, sort — and their tie and kink policy.

Each output entry is one of the inputs' entries (or a share of tied ones), so
every Jacobian is a delta times a 0/1 (or ½) mask, or a one-hot gather:

    Y = where(C, A, B)      dY[i]/dA[p] = δ_ip [C][i]                 dY[i]/dB[p] = δ_ip [¬C][i]
    Y = maximum(A, B)       dY[i]/dA[p] = δ_ip ([A > B] + ½[A = B])[i]  (B alike, minimum with <)
    Y = clip(X, lo, hi)     dY[i]/dX[p] = δ_ip [lo ≤ X ≤ hi][i]
    y = max(X, axis)        dY[k]/dX[p] = δ(k = p off the axis) [X = max]/#ties [p]
    Y = sort(X, axis)       dY[i,j]/dX[p,q] = δ_ip P[i,j,q],  P[i,j,q] = [argsort(X)[i,j] = q]

Tie and kink policies, one line per op (each is the op's ``policy`` too; every route — explicit, factored,
VJP — follows it):

* where: derivative 1 w.r.t. a where the constant condition holds, else 0 (b the other way round); no kink
* maximum: where a = b the gradient is split equally, ½ to each operand (as JAX does)
* minimum: where a = b the gradient is split equally, ½ to each operand (as JAX does)
* clip: derivative 1 on the closed interval a_min ≤ x ≤ a_max, bounds included (as PyTorch's clamp), else 0
* max: the gradient is split equally among the entries tied for the maximum (as JAX does)
* min: the gradient is split equally among the entries tied for the minimum (as JAX does)
* sort: the gradient goes back through numpy's stable argsort: tied entries keep their order, one input each

(clip with a_min > a_max returns a_max everywhere, as numpy does; its derivative is then 0.)
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from ..form import Factor, Factored, Product, axis_labels, broadcast_factored
from ..node import Node, shape_of
from ..registry import Op, apply, register
from ._rules import broadcast_rule, normalize_axes, unbroadcast

__all__ = ["where", "maximum", "minimum", "clip", "max", "min", "sort"]

Shape = Tuple[int, ...]
Axis = Union[None, int, Sequence[int]]

_POLICY = {  # the module docstring lists the same lines
    "where": "derivative 1 w.r.t. a where the constant condition holds, else 0 (b the other way round); no kink",
    "maximum": "where a = b the gradient is split equally, ½ to each operand (as JAX does)",
    "minimum": "where a = b the gradient is split equally, ½ to each operand (as JAX does)",
    "clip": "derivative 1 on the closed interval a_min ≤ x ≤ a_max, bounds included (as PyTorch's clamp), else 0",
    "max": "the gradient is split equally among the entries tied for the maximum (as JAX does)",
    "min": "the gradient is split equally among the entries tied for the minimum (as JAX does)",
    "sort": "the gradient goes back through numpy's stable argsort: tied entries keep their order, one input each",
}


def _value(x: Any) -> Any:
    """A node's value, anything else as it is: every factor here is a mask or a one-hot selection, piecewise
    constant (derivative 0 almost everywhere), so on nodes (second order) it is computed on the values."""
    return x.value if isinstance(x, Node) else x


def _constant(name: str, what: str, value: Any) -> np.ndarray:
    """A constant argument (condition, bound, labels) as an array; a node is refused."""
    if isinstance(value, Node):
        raise TypeError(f"{name}: {what} must be a constant (numpy data), not the node {value.name}; "
                        f"pass {value.name}.value to use its current value")
    try:
        return np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: could not turn {what} into an array ({exc})") from None


# --------------------------------------------------------------------- where
def _where_shape(a: Shape, b: Shape, condition: np.ndarray) -> Shape:
    try:
        return tuple(np.broadcast_shapes(np.shape(condition), a, b))
    except ValueError:
        raise ValueError(
            f"where: condition {np.shape(condition)}, a {tuple(a)} and b {tuple(b)} do not broadcast (numpy rules: "
            "trailing axes must match or be 1); reshape the condition or an operand"
        ) from None


def _where_form(y: np.ndarray, x: np.ndarray, mask: np.ndarray, name: str) -> Factored:
    return broadcast_factored(y.shape, x.shape, mask.astype(y.dtype), name)


_WHERE = register(Op(
    "where", lambda a, b, condition: np.where(condition, a, b), _where_shape,
    forms=(lambda y, a, b, condition: _where_form(y, a, condition, "[cond]"),
           lambda y, a, b, condition: _where_form(y, b, ~condition, "[¬cond]")),
    vjps=(lambda g, y, a, b, condition: unbroadcast(np.where(condition, g, 0), a.shape),
          lambda g, y, a, b, condition: unbroadcast(np.where(condition, 0, g), b.shape)),
    params=("condition",),
    example=((3, 4), (4,)),
    example_params={"condition": np.array([[True], [False], [True]])},
    policy=_POLICY["where"],
))


def where(condition: Any, a: Any, b: Any) -> Node:
    """a where ``condition`` holds, else b, with numpy broadcasting of all three.

    ``condition`` is a constant boolean array (e.g. ``x.value > 0``); a and b
    are both differentiable: the gradient reaches a where the condition holds
    and b elsewhere.

    dY[i]/dA[p] = δ_ip [cond][i]      dY[i]/dB[p] = δ_ip [¬cond][i]

    >>> import numpy as np, jacobians as jx
    >>> a, b = jx.var([1.0, 2.0, 3.0]), jx.var([10.0, 20.0, 30.0])
    >>> y = jx.where(np.array([True, False, True]), a, b)
    >>> y.value.tolist(), jx.grad(jx.sum(y), a).tolist(), jx.grad(jx.sum(y), b).tolist()
    ([1.0, 20.0, 3.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0])
    """
    cond = _constant("where", "the condition", condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: the condition must be a boolean array, got dtype {cond.dtype} of shape {cond.shape}; "
                        "compare to make one, e.g. x.value > 0")
    return apply(_WHERE, a, b, condition=cond)


# ---------------------------------------------------------- maximum, minimum
def _split(y: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """[first > second] + ½[first = second], broadcast: the share of the gradient that goes to ``first``."""
    first, second = _value(first), _value(second)
    return (np.greater(first, second) + 0.5 * np.equal(first, second)).astype(y.dtype)


# the hand-written VJPs say the same through sign: (1 ± sign(a - b)) / 2 is 1, ½ or 0
_MAXIMUM = register(Op(
    "maximum", np.maximum, broadcast_rule("maximum"),
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape, _split(y, a, b), "([{x0} > {x1}] + ½[{x0} = {x1}])"),
           lambda y, a, b: broadcast_factored(y.shape, b.shape, _split(y, b, a), "([{x1} > {x0}] + ½[{x0} = {x1}])")),
    vjps=(lambda g, y, a, b: unbroadcast(g * (1 + np.sign(a - b)) / 2, a.shape),
          lambda g, y, a, b: unbroadcast(g * (1 - np.sign(a - b)) / 2, b.shape)),
    example=((3, 4), (4,)),
    policy=_POLICY["maximum"],
))

_MINIMUM = register(Op(
    "minimum", np.minimum, broadcast_rule("minimum"),
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape, _split(y, b, a), "([{x0} < {x1}] + ½[{x0} = {x1}])"),
           lambda y, a, b: broadcast_factored(y.shape, b.shape, _split(y, a, b), "([{x1} < {x0}] + ½[{x0} = {x1}])")),
    vjps=(lambda g, y, a, b: unbroadcast(g * (1 - np.sign(a - b)) / 2, a.shape),
          lambda g, y, a, b: unbroadcast(g * (1 + np.sign(a - b)) / 2, b.shape)),
    example=((3, 4), (4,)),
    policy=_POLICY["minimum"],
))


def maximum(a: Any, b: Any) -> Node:
    """Elementwise larger of a and b, with broadcasting (numpy's maximum).

    Ties: where a = b the gradient is split equally, ½ to each (as JAX does).

    >>> import jacobians as jx
    >>> a = jx.var([1.0, 2.0, 3.0])
    >>> jx.maximum(a, 2.0).value.tolist(), jx.grad(jx.sum(jx.maximum(a, 2.0)), a).tolist()
    ([2.0, 2.0, 3.0], [0.0, 0.5, 1.0])
    """
    return apply(_MAXIMUM, a, b)


def minimum(a: Any, b: Any) -> Node:
    """Elementwise smaller of a and b, with broadcasting (numpy's minimum).

    Ties: where a = b the gradient is split equally, ½ to each (as JAX does).

    >>> import jacobians as jx
    >>> a = jx.var([1.0, 2.0, 3.0])
    >>> jx.minimum(a, 2.0).value.tolist(), jx.grad(jx.sum(jx.minimum(a, 2.0)), a).tolist()
    ([1.0, 2.0, 2.0], [1.0, 0.5, 0.0])
    """
    return apply(_MINIMUM, a, b)


# ---------------------------------------------------------------------- clip
def _bounds(x: np.ndarray, a_min: Optional[np.ndarray], a_max: Optional[np.ndarray]):
    """The bounds in x's dtype, ∓inf for a missing one (so the clip and its mask agree bit for bit)."""
    lo = np.asarray(-np.inf if a_min is None else a_min, dtype=x.dtype)
    hi = np.asarray(np.inf if a_max is None else a_max, dtype=x.dtype)
    return lo, hi


def _clip_forward(x, a_min, a_max):
    lo, hi = _bounds(x, a_min, a_max)
    return np.minimum(np.maximum(x, lo), hi)  # numpy's clip, also where a_min > a_max (then a_max)


def _clip_shape(s: Shape, a_min: Optional[np.ndarray], a_max: Optional[np.ndarray]) -> Shape:
    shapes = [tuple(s)] + [np.shape(b) for b in (a_min, a_max) if b is not None]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"clip: x {tuple(s)}, a_min {np.shape(a_min) if a_min is not None else None} and a_max "
                         f"{np.shape(a_max) if a_max is not None else None} do not broadcast; give scalar bounds or "
                         "bounds whose shapes broadcast against x") from None


def _inside(y, x, a_min, a_max) -> np.ndarray:  # [a_min ≤ x ≤ a_max] broadcast to y's shape
    x = _value(x)
    lo, hi = _bounds(x, a_min, a_max)
    return np.broadcast_to((lo <= x) & (x <= hi), y.shape).astype(y.dtype)


def _clip_vjp(g, y, x, a_min, a_max):
    lo, hi = _bounds(x, a_min, a_max)
    return unbroadcast(np.where(x < lo, 0, np.where(x > hi, 0, g)), x.shape)


_CLIP = register(Op(
    "clip", _clip_forward, _clip_shape,
    forms=(lambda y, x, a_min, a_max: broadcast_factored(y.shape, x.shape, _inside(y, x, a_min, a_max),
                                                         "[a_min ≤ {x0} ≤ a_max]"),),
    vjps=(_clip_vjp,),
    params=("a_min", "a_max"),
    example_params={"a_min": 0.75, "a_max": 1.25},
    policy=_POLICY["clip"],
))


def clip(x: Any, a_min: Any, a_max: Any) -> Node:
    """x limited to [a_min, a_max] (numpy's clip); a bound may be None, scalars and arrays broadcast.

    The bounds are constants. Derivative 1 strictly inside, 0 outside, and
    at a bound 1 (the closed interval, as PyTorch's clamp).

    dY[i]/dX[p] = δ_ip [a_min ≤ X ≤ a_max][i]

    >>> import jacobians as jx
    >>> x = jx.var([-2.0, 0.0, 0.5, 1.0, 3.0])
    >>> jx.clip(x, 0.0, 1.0).value.tolist(), jx.grad(jx.sum(jx.clip(x, 0.0, 1.0)), x).tolist()
    ([0.0, 0.0, 0.5, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0, 0.0])
    """
    if a_min is None and a_max is None:
        raise ValueError("clip: a_min and a_max are both None; give at least one bound")
    bounds = {}
    for what, b in (("a_min", a_min), ("a_max", a_max)):
        if b is None:
            bounds[what] = None
            continue
        arr = _constant("clip", what, b)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"clip: {what} must be real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if np.isnan(arr).any():
            raise ValueError(f"clip: {what} contains NaN; give numbers (±inf for no bound)")
        bounds[what] = arr if arr.ndim else float(arr)
    return apply(_CLIP, x, **bounds)


# ------------------------------------------------------------ max, min reductions
def _reduced_shape(s: Shape, axes: Tuple[int, ...], keepdims: bool) -> Shape:
    return tuple((1 if k in axes else n) for k, n in enumerate(s) if keepdims or k not in axes)


def _extreme_shape(name: str):
    def rule(s: Shape, axes: Tuple[int, ...], keepdims: bool) -> Shape:
        empty = [a for a in axes if s[a] == 0]
        if empty:
            raise ValueError(f"{name}: cannot reduce the empty axis {empty[0]} of an input of shape {tuple(s)} "
                             "(the extreme of no entries is undefined); drop the axis or give data")
        return _reduced_shape(s, axes, keepdims)

    return rule


def _share(x: np.ndarray, y: np.ndarray, axes: Tuple[int, ...], keepdims: bool) -> np.ndarray:
    """[X = extreme] / #ties, over X's axes: each tied entry's share of the gradient."""
    hit = x == np.reshape(y, _reduced_shape(x.shape, axes, True))
    return hit / np.sum(hit, axis=axes, keepdims=True)


def _extreme_form(y, x, axes, keepdims):  # δ(kept axes) [X = max]/#ties [p...]
    out, inp = axis_labels(y.ndim, x.ndim)
    deltas, k = [], 0
    for a in range(x.ndim):
        if a in axes:
            k += keepdims  # a kept length-1 axis: free, no delta
            continue
        deltas.append(out[k] + inp[a])
        k += 1
    share = Factor(_share(_value(x), _value(y), axes, keepdims).astype(y.dtype), inp, "[{x0} = {y}]/#ties")
    return Factored(out, inp, (Product((share,), tuple(deltas)),))


def _extreme_vjp(g, y, x, axes, keepdims):
    keep = _reduced_shape(x.shape, axes, True)
    ties = x == np.reshape(y, keep)
    count = np.count_nonzero(ties, axis=axes, keepdims=True)
    return np.where(ties, np.reshape(g, keep) / count, 0).astype(g.dtype, copy=False)


def _extreme_op(name: str, fn: Any) -> Op:
    return register(Op(
        name, lambda x, axes, keepdims: fn(x, axis=axes, keepdims=keepdims), _extreme_shape(name),
        forms=(_extreme_form,),
        vjps=(_extreme_vjp,),
        params=("axes", "keepdims"),
        example_params={"axes": (1,), "keepdims": False},
        policy=_POLICY[name],
    ))


_MAX = _extreme_op("max", np.max)
_MIN = _extreme_op("min", np.min)


def _reduce(op: Op, x: Any, axis: Axis, keepdims: bool) -> Node:
    if not isinstance(keepdims, (bool, np.bool_)):
        raise TypeError(f"{op.name}: keepdims must be True or False, got {keepdims!r}")
    axes = normalize_axes(op.name, len(shape_of(x)), axis)
    return apply(op, x, axes=axes, keepdims=bool(keepdims))


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """The largest entry over ``axis`` (None: all; an int or a tuple of ints), like ``np.max``.

    Ties: the gradient is split equally among the entries tied for the maximum (as JAX does).

    dY[k]/dX[p] = δ(k = p off the reduced axes) · [X = max]/#ties [p]

    >>> import jacobians as jx
    >>> x = jx.var([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    >>> jx.max(x, axis=1).value.tolist(), jx.grad(jx.sum(jx.max(x, axis=1)), x).tolist()
    ([3.0, 2.0], [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    """
    return _reduce(_MAX, x, axis, keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Node:  # noqa: A001
    """The smallest entry over ``axis`` (None: all; an int or a tuple of ints), like ``np.min``.

    Ties: the gradient is split equally among the entries tied for the minimum (as JAX does).

    >>> import jacobians as jx
    >>> x = jx.var([[1.0, 3.0, 1.0], [2.0, 0.0, 1.0]])
    >>> jx.min(x, axis=1, keepdims=True).value.tolist(), jx.grad(jx.sum(jx.min(x, axis=1)), x).tolist()
    ([[1.0], [0.0]], [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    """
    return _reduce(_MIN, x, axis, keepdims)


# ---------------------------------------------------------------------- sort
def _sort_shape(s: Shape, axis: int) -> Shape:
    if not s:
        raise ValueError("sort: needs at least one axis, got a scalar (shape ()); reshape it to (1,)")
    return tuple(s)


def _order(x: np.ndarray, axis: int) -> np.ndarray:
    return np.argsort(x, axis=axis, kind="stable")


def _sort_form(y, x, axis):
    """δ on every axis but ``axis``; along it the one-hot P[..., j, q] = [argsort(X)[..., j] = q]."""
    out, inp = axis_labels(y.ndim, x.ndim)
    n = x.shape[axis]
    onehot = (np.expand_dims(_order(_value(x), axis), -1) == np.arange(n)).astype(y.dtype)  # x.shape + (n,)
    deltas = tuple(out[k] + inp[k] for k in range(x.ndim) if k != axis)
    perm = Factor(onehot, out + inp[axis], "onehot(argsort({x0}))")
    return Factored(out, inp, (Product((perm,), deltas),))


def _sort_vjp(g, y, x, axis):  # scatter g back to where each sorted entry came from
    gx = np.zeros(x.shape, dtype=g.dtype)
    np.put_along_axis(gx, _order(x, axis), g, axis=axis)
    return gx


_SORT = register(Op(
    "sort", lambda x, axis: np.sort(x, axis=axis, kind="stable"), _sort_shape,
    forms=(_sort_form,),
    vjps=(_sort_vjp,),
    params=("axis",),
    example_params={"axis": 1},
    policy=_POLICY["sort"],
))


def sort(x: Any, axis: int = -1) -> Node:
    """x sorted ascending along ``axis`` (default: the last), like ``np.sort``.

    A permutation gather: the gradient is scattered back through numpy's
    stable argsort (tied entries keep their order, so each output position
    takes the gradient of exactly one input entry).

    dY[i,j]/dX[p,q] = δ_ip onehot(argsort(X))[i,j,q]      (axis = 1 of a matrix)

    >>> import jacobians as jx
    >>> x = jx.var([3.0, 1.0, 2.0])
    >>> jx.sort(x).value.tolist(), jx.jacobian(jx.sort(x), x).tolist()
    ([1.0, 2.0, 3.0], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    """
    ndim = len(shape_of(x))
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"sort: axis must be a single int, got {axis!r}")
    if ndim == 0:
        raise ValueError("sort: needs at least one axis, got a scalar (shape ()); reshape it to (1,)")
    return apply(_SORT, x, axis=normalize_axes("sort", ndim, axis)[0])

