"""The operators and array methods of a node, attached from one table.

The node layer (:mod:`jacobians.node`) knows nothing of ops; this module gives
``Node`` its ``+ - * / ** @``, unary minus, ``.T``, indexing ``X[...]``, the
functional update ``X.at[...].set/add`` and the ndarray-style methods, each the
registered op of the same numpy name. Item assignment and iteration are refused
(nodes are immutable; a loop would unroll the graph), ``len()`` works.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Dict

from ..node import Node
from .arithmetic import add, divide, multiply, subtract
from .einsum import matmul, mean, sum, transpose
from .arithmetic import mod
from .elementwise import abs as _abs
from .elementwise import negative, power
from .indexing import AtIndexer, getitem, take
from .shape import ravel, repeat, reshape, squeeze, swapaxes

__all__ = ["OPERATORS", "attach"]


def _rpow(self: Node, base: Any) -> Node:
    raise TypeError(
        f"power: a node as exponent ({self.name}) is not supported; write base ** x as jx.exp(np.log(base) * x)"
    )


def _reshape(self: Node, *shape: Any) -> Node:
    """Reshape in C order, like ``ndarray.reshape``."""
    if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
        shape = tuple(shape[0])
    return reshape(self, shape)


def _sum(self: Node, axis: Any = None, keepdims: bool = False) -> Node:
    """Sum over ``axis`` (None: all), like ``ndarray.sum``."""
    return sum(self, axis=axis, keepdims=keepdims)


def _mean(self: Node, axis: Any = None, keepdims: bool = False) -> Node:
    """Mean over ``axis`` (None: all), like ``ndarray.mean``."""
    return mean(self, axis=axis, keepdims=keepdims)


def _transpose(self: Node, *axes: Any) -> Node:
    """Permute axes, like ``ndarray.transpose``."""
    if len(axes) == 1 and not isinstance(axes[0], numbers.Integral):
        axes = tuple(axes[0])
    return transpose(self, axes or None)


def _setitem(self: Node, index: Any, value: Any) -> None:
    raise TypeError(
        f"node {self.name} does not support item assignment (nodes are immutable); write "
        f"{self.name}.at[...].set(value) for a new node with those entries replaced, or .at[...].add(value)"
    )


def _iter(self: Node) -> Any:
    raise TypeError(
        f"node {self.name} cannot be iterated (a Python loop would unroll the graph entry by entry); index it "
        f"({self.name}[0], {self.name}[:, 1]), cut it with jx.split, or loop over .value (not differentiated)"
    )


def _squeeze(self: Node, axis: Any = None) -> Node:
    """Drop length-1 axes, like ``ndarray.squeeze``."""
    return squeeze(self, axis)


def _swapaxes(self: Node, axis1: int, axis2: int) -> Node:
    """Exchange two axes, like ``ndarray.swapaxes``."""
    return swapaxes(self, axis1, axis2)


def _take(self: Node, indices: Any, axis: Any = None) -> Node:
    """Entries at ``indices`` along ``axis`` (None: flattened), like ``ndarray.take``."""
    return take(self, indices, axis)


def _repeat(self: Node, repeats: Any, axis: Any = None) -> Node:
    """Repeat each entry along ``axis`` (None: flattened), like ``ndarray.repeat``."""
    return repeat(self, repeats, axis)


def _ravel(self: Node) -> Node:
    """The entries in C order as one axis, like ``ndarray.ravel`` (a new node, never a view)."""
    return ravel(self)


def _flatten(self: Node) -> Node:
    """The entries in C order as one axis, like ``ndarray.flatten``."""
    return ravel(self)


# Python's name -> what it does with (self, other)
OPERATORS: Dict[str, Callable[..., Any]] = {
    "__add__": lambda s, o: add(s, o),
    "__radd__": lambda s, o: add(o, s),
    "__sub__": lambda s, o: subtract(s, o),
    "__rsub__": lambda s, o: subtract(o, s),
    "__mul__": lambda s, o: multiply(s, o),
    "__rmul__": lambda s, o: multiply(o, s),
    "__truediv__": lambda s, o: divide(s, o),
    "__rtruediv__": lambda s, o: divide(o, s),
    "__matmul__": lambda s, o: matmul(s, o),
    "__rmatmul__": lambda s, o: matmul(o, s),
    "__pow__": lambda s, p: power(s, p),
    "__rpow__": _rpow,
    "__neg__": lambda s: negative(s),
    "__abs__": lambda s: _abs(s),
    "__mod__": lambda s, o: mod(s, o),
    "__rmod__": lambda s, o: mod(o, s),
    "__pos__": lambda s: s,
    "T": property(lambda s: transpose(s), doc="Transpose (reversed axes), like ``ndarray.T``."),
    "reshape": _reshape,
    "sum": _sum,
    "mean": _mean,
    "transpose": _transpose,
    "__getitem__": lambda s, index: getitem(s, index),
    "__setitem__": _setitem,
    "__iter__": _iter,
    "at": property(lambda s: AtIndexer(s), doc="Functional updates in JAX's spelling: ``X.at[idx].set(v)``, "
                                                "``X.at[idx].add(v)``."),
    "flatten": _flatten,
    "ravel": _ravel,
    "squeeze": _squeeze,
    "swapaxes": _swapaxes,
    "take": _take,
    "repeat": _repeat,
}


def attach() -> None:
    """Give ``Node`` every operator and method of the table (once, at import)."""
    for name, fn in OPERATORS.items():
        setattr(Node, name, fn)


attach()
