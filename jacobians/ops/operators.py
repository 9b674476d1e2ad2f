"""The operators and array methods of a node, attached from one table.

The node layer (:mod:`jacobians.node`) knows nothing of ops; this module gives
``Node`` its ``+ - * / ** @``, unary minus, ``.T`` and the ndarray-style methods,
each the registered op of the same numpy name.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Dict

from ..node import Node
from .arithmetic import add, divide, multiply, subtract
from .einsum import matmul, mean, sum, transpose
from .elementwise import negative, power
from .shape import reshape

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
    "__pos__": lambda s: s,
    "T": property(lambda s: transpose(s), doc="Transpose (reversed axes), like ``ndarray.T``."),
    "reshape": _reshape,
    "sum": _sum,
    "mean": _mean,
    "transpose": _transpose,
}


def attach() -> None:
    """Give ``Node`` every operator and method of the table (once, at import)."""
    for name, fn in OPERATORS.items():
        setattr(Node, name, fn)


attach()
