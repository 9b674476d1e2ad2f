"""Graph nodes: differentiable leaves (:func:`var`), constants and op results.

Graphs are built eagerly (define-by-run): each node holds its value as soon as
it is made, and a node is immutable, so no cycle can ever be formed. numpy
arrays and Python scalars mixed into an expression become constants. A node
sets ``__array_ufunc__ = None`` so that ``ndarray @ node`` and ``ndarray - node``
defer to the node's reflected operators and give nodes.
"""
from __future__ import annotations

import itertools
import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .registry import Op

__all__ = ["Node", "var", "const", "as_node", "apply"]

_ids = itertools.count()

ArrayLike = Union["Node", np.ndarray, float, int, Sequence[Any]]


def _validate_array(value: Any, who: str) -> np.ndarray:
    """Turn user data into a float ndarray, refusing what cannot be differentiated."""
    if isinstance(value, Node):
        raise TypeError(f"{who}: got a Node; pass its .value, or use the node itself in the expression")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{who}: could not turn {type(value).__name__} into a numeric array ({exc})") from None
    kind = arr.dtype.kind
    if kind in "OUSVMm":
        raise TypeError(
            f"{who}: arrays of dtype {arr.dtype} cannot be differentiated; pass a float array "
            "(e.g. np.asarray(data, dtype=float))"
        )
    if kind == "c":
        raise TypeError(
            f"{who}: complex input (dtype {arr.dtype}) is not supported; jacobians differentiates real "
            "functions only — split into real and imaginary parts"
        )
    if kind in "biu":  # integers and booleans become float64 (documented in docs/theory.md)
        arr = arr.astype(np.float64)
    return arr


class Node:
    """A value in a computation graph, with the op that made it and its parents.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 3)), name="X")
    >>> Y = 2 * X.T @ X
    >>> Y.shape, Y.dtype, Y.op.name
    ((3, 3), dtype('float64'), 'matmul')
    """

    __array_ufunc__ = None  # numpy defers to our reflected operators
    __array_priority__ = 1000

    __slots__ = ("value", "op", "parents", "params", "_name", "kind", "id", "__weakref__")

    def __init__(
        self,
        value: np.ndarray,
        op: Optional[Op] = None,
        parents: Tuple["Node", ...] = (),
        params: Optional[dict] = None,
        name: Optional[str] = None,
        kind: str = "op",
    ) -> None:
        self.value = value
        self.value.setflags(write=False)  # node values are never modified by any route
        self.op = op
        self.parents = parents
        self.params = params or {}
        self.kind = kind  # "var", "const" or "op"
        self.id = next(_ids)
        self._name = name

    # ------------------------------------------------------------------ facts
    @property
    def name(self) -> str:
        """The user's name, or ``<op>#<id>`` for an unnamed node."""
        if self._name is not None:
            return self._name
        return f"{self.op.name if self.op else self.kind}#{self.id}"

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def size(self) -> int:
        return self.value.size

    def __repr__(self) -> str:
        what = self.op.name if self.op else self.kind
        return f"<Node {self.name}: {what}, shape {self.shape}, {self.dtype}>"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"node {self.name} is a scalar and has no len()")
        return self.shape[0]

    def __iter__(self):
        raise TypeError(
            f"node {self.name} cannot be iterated or indexed; use reshape, sum or a matmul with a "
            "selection matrix, or work on .value (which is not differentiated)"
        )

    def __bool__(self) -> bool:
        raise TypeError(f"node {self.name} has no truth value; compare .value instead")

    # -------------------------------------------------------------- operators
    def __add__(self, other: ArrayLike) -> "Node":
        return _call("add", self, other)

    def __radd__(self, other: ArrayLike) -> "Node":
        return _call("add", other, self)

    def __sub__(self, other: ArrayLike) -> "Node":
        return _call("subtract", self, other)

    def __rsub__(self, other: ArrayLike) -> "Node":
        return _call("subtract", other, self)

    def __mul__(self, other: ArrayLike) -> "Node":
        return _call("multiply", self, other)

    def __rmul__(self, other: ArrayLike) -> "Node":
        return _call("multiply", other, self)

    def __truediv__(self, other: ArrayLike) -> "Node":
        return _call("divide", self, other)

    def __rtruediv__(self, other: ArrayLike) -> "Node":
        return _call("divide", other, self)

    def __matmul__(self, other: ArrayLike) -> "Node":
        return _call("matmul", self, other)

    def __rmatmul__(self, other: ArrayLike) -> "Node":
        return _call("matmul", other, self)

    def __pow__(self, exponent: Any) -> "Node":
        from .ops import power

        return power(self, exponent)

    def __rpow__(self, base: Any) -> "Node":
        raise TypeError(
            f"power: a node as exponent ({self.name}) is not supported; write base ** x as "
            "jx.exp(np.log(base) * x)"
        )

    def __neg__(self) -> "Node":
        return _call("negative", self)

    def __pos__(self) -> "Node":
        return self

    @property
    def T(self) -> "Node":
        """Transpose (reversed axes), like ``ndarray.T``."""
        from .ops import transpose

        return transpose(self)

    def reshape(self, *shape: Any) -> "Node":
        """Reshape in C order, like ``ndarray.reshape``."""
        from .ops import reshape

        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = tuple(shape[0])
        return reshape(self, shape)

    def sum(self, axis: Any = None, keepdims: bool = False) -> "Node":
        """Sum over ``axis`` (None: all), like ``ndarray.sum``."""
        from .ops import sum as _sum

        return _sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "Node":
        """Mean over ``axis`` (None: all), like ``ndarray.mean``."""
        from .ops import mean

        return mean(self, axis=axis, keepdims=keepdims)


def var(value: Any, name: Optional[str] = None, dtype: Any = None) -> Node:
    """A differentiable leaf holding a copy of ``value`` (any rank).

    Integer and boolean data become float64; float32 stays float32 unless
    ``dtype`` says otherwise. The user's array is copied, never modified.

    >>> import jacobians as jx
    >>> x = jx.var([[1, 2], [3, 4]], name="x")
    >>> x.dtype, x.shape
    (dtype('float64'), (2, 2))
    """
    if isinstance(value, Node):
        raise TypeError(
            f"var: got the node {value.name}; a var is a leaf made from data — pass {value.name}.value "
            "to start a new graph, or differentiate with respect to the node itself"
        )
    arr = _validate_array(value, f"var({name or ''})")
    if dtype is not None:
        if np.dtype(dtype).kind != "f":
            raise TypeError(f"var({name or ''}): dtype must be a float type (float32 or float64), got {dtype}")
        arr = arr.astype(dtype)
    return Node(np.array(arr, copy=True), name=name, kind="var")


def const(value: Any, name: Optional[str] = None, dtype: Any = None) -> Node:
    """A constant node: part of the graph, never differentiated.

    >>> import jacobians as jx
    >>> jx.const(3.0).kind
    'const'
    """
    if isinstance(value, Node):
        return value
    arr = _validate_array(value, f"const({name or ''})")
    if dtype is not None:
        arr = arr.astype(dtype)
    return Node(np.array(arr, copy=True), name=name, kind="const")


def _graph_float(args: Sequence[Any]) -> np.dtype:
    """The float dtype of the nodes among ``args`` (float64 if there are none)."""
    dtypes = [a.dtype for a in args if isinstance(a, Node)]
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)


def as_node(value: Any, like: np.dtype = np.dtype(np.float64)) -> Node:
    """``value`` itself if it is a node, else a constant in dtype ``like`` when it is a
    Python scalar or integer/boolean data (so a float32 graph stays float32)."""
    if isinstance(value, Node):
        return value
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return const(np.asarray(value, dtype=like))
    arr = _validate_array(value, "constant")
    raw = np.asarray(value)
    if raw.dtype.kind in "biu":
        arr = arr.astype(like)
    return const(arr)


def apply(op: Op, *args: Any, **params: Any) -> Node:
    """Make the node ``op(*args, **params)``: check shapes, then run the forward.

    Shape errors name the op and every input shape, and are raised before any
    computation.
    """
    if len(args) != op.nargs:
        raise TypeError(f"{op.name}: takes {op.nargs} array argument(s), got {len(args)}")
    like = _graph_float(args)
    nodes = tuple(as_node(a, like) for a in args)
    shapes = tuple(n.shape for n in nodes)
    out_shape = op.shape(*shapes, **params)  # raises ValueError naming op and shapes
    with np.errstate(all="ignore"):
        value = np.asarray(op.forward(*(n.value for n in nodes), **params))
    if value.shape != tuple(out_shape):  # a bug in an op declaration, not in user input
        raise AssertionError(f"{op.name}: forward gave shape {value.shape}, shape rule said {out_shape}")
    return Node(value, op=op, parents=nodes, params=params)


def _call(name: str, *args: Any) -> Node:
    from .registry import get_op

    return apply(get_op(name), *args)
