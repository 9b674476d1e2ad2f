"""Building blocks shared by op declarations: shape rules, unbroadcasting, public functions."""
from __future__ import annotations

from typing import Any, Callable, Tuple

import numpy as np

from ..node import Node
from ..registry import Op, apply

Shape = Tuple[int, ...]


def same_shape(name: str) -> Callable[..., Shape]:
    def rule(shape: Shape, **_: object) -> Shape:
        return tuple(shape)

    return rule


def broadcast_rule(name: str) -> Callable[..., Shape]:
    """Shape rule of a broadcasting binary op; the error names the op and both shapes."""

    def rule(a: Shape, b: Shape) -> Shape:
        try:
            return tuple(np.broadcast_shapes(a, b))
        except ValueError:
            raise ValueError(
                f"{name}: shapes {a} and {b} do not broadcast (numpy rules: trailing axes must match or be 1); "
                "reshape one operand, e.g. a bias of shape (n,) or (1, n) for an (m, n) matrix"
            ) from None

    return rule


def broadcasts_to(shape: Shape, target: Shape) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``target`` (numpy's rules).

    >>> broadcasts_to((3, 1), (2, 3, 4)), broadcasts_to((2, 3), (3,))
    (True, False)
    """
    try:
        return tuple(np.broadcast_shapes(shape, target)) == tuple(target)
    except ValueError:
        return False


def unbroadcast(g: np.ndarray, in_shape: Shape) -> np.ndarray:
    """Sum a cotangent of the broadcast output shape back to ``in_shape``."""
    extra = g.ndim - len(in_shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(k for k, n in enumerate(in_shape) if n == 1 and g.shape[k] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def op_function(op: Op, doc: str, name: str = "") -> Callable[..., Node]:
    """The public function ``jx.<name>(x)`` of a one-input op without parameters."""

    def fn(x: "Node | np.ndarray | float") -> Node:
        return apply(op, x)

    fn.__name__ = fn.__qualname__ = name or op.name
    fn.__doc__ = doc
    return fn


def normalize_axes(name: str, ndim: int, axis: Any) -> Tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; the error names the op and the rank."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not float(a).is_integer():
            raise ValueError(f"{name}: axis {a!r} is not a whole number; give an int (or a tuple of ints)")
        if not -ndim <= int(a) < max(ndim, 1):
            raise ValueError(f"{name}: axis {a} is out of range for an input with {ndim} axes")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(out))


def check_nonempty(name: str, shape: Tuple[int, ...], axes: Tuple[int, ...]) -> int:
    """The number of entries each output entry averages over; a clear error when it is none (numpy gives nan)."""
    count = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    if count == 0:
        raise ValueError(f"{name}: the mean over axes {axes} of an array of shape {tuple(shape)} has no entries; "
                         "reduce over a non-empty axis")
    return count
