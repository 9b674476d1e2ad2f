"""Graph nodes: differentiable leaves (:func:`var`), constants and op results.

Graphs are built eagerly (define-by-run): each node holds its value as soon as
it is made, and a node is immutable — its value is a read-only array, and its
op, parents and parameters cannot be reassigned — so no cycle can ever be
formed, and nodes from separately built graphs combine freely. numpy arrays
and Python scalars mixed into an expression become constants in the graph's
float dtype. A node sets ``__array_ufunc__ = None`` so that ``ndarray @ node``
and ``ndarray - node`` defer to the node's reflected operators and give nodes.

Input policy (docs/reliability.md has the examples):

* object, string, bytes, datetime and masked arrays, extended precision
  (longdouble) and complex input are refused with ``TypeError``;
* integers and booleans become float64, float16 becomes float32;
* NaN or ±Inf in a :func:`var` is refused with ``ValueError`` naming the var;
  NaN in a constant is refused, ±Inf in a constant is allowed (masks such as
  ``-inf`` before a softmax);
* an op whose forward fails in ``numpy.linalg`` (inv or solve of a singular
  matrix) raises ``numpy.linalg.LinAlgError`` — a ``ValueError`` — naming the op
  and its inputs; an op that turns finite inputs into NaN or ±Inf (log of a
  negative number, logdet of a singular matrix) warns with
  :class:`NonFiniteWarning` naming the op, the new node and its inputs;
* a 1-D operand that numpy would broadcast against an axis it could equally
  mean (a ``(n,)`` bias against an ``(n, n)`` matrix) warns with
  :class:`AmbiguousBroadcastWarning`.
"""
from __future__ import annotations

import contextlib
import itertools
import numbers
import os
import sys
import types
import warnings
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .registry import Op

__all__ = [
    "Node", "var", "const", "as_node", "apply", "op_errors",
    "NonFiniteWarning", "AmbiguousBroadcastWarning",
]

_ids = itertools.count()

ArrayLike = Union["Node", np.ndarray, float, int, Sequence[Any]]


class NonFiniteWarning(RuntimeWarning):
    """An op turned finite inputs into NaN or ±Inf (e.g. log of a negative number)."""


class AmbiguousBroadcastWarning(UserWarning):
    """numpy broadcasting picked one of several axes a lower-rank operand could align with."""


def _user_stacklevel() -> int:
    """The stacklevel of the first frame outside this package, for warnings.warn called by our caller."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def _first_bad(arr: np.ndarray, bad: np.ndarray) -> str:
    """``"3 of 12 entries, the first at index (0, 2) (nan)"``."""
    where = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    return f"{int(bad.sum())} of {arr.size} entries, the first at index {where} ({arr[where].item()!r})"


def _validate_array(value: Any, who: str) -> np.ndarray:
    """Turn user data into a float ndarray, refusing what cannot be differentiated.

    Integers and booleans become float64, float16 becomes float32; object, string,
    bytes, datetime, masked, complex and extended-precision data are refused.
    """
    if isinstance(value, Node):
        raise TypeError(f"{who}: got a Node; pass its .value, or use the node itself in the expression")
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{who}: masked arrays are not supported (the mask would be silently ignored); "
            "pass plain data, e.g. a.filled(0.0), or drop the masked entries"
        )
    if isinstance(value, (list, tuple)) and any(isinstance(v, Node) for v in value):
        raise TypeError(
            f"{who}: got a {type(value).__name__} containing nodes; nodes cannot be packed into an array "
            "— build the expression with jx ops on the nodes, or pass their .value to start a new graph"
        )
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(
            f"{who}: could not turn {type(value).__name__} into a numeric array ({exc}); "
            "pass a rectangular array of numbers"
        ) from None
    kind = arr.dtype.kind
    if kind in "OUSVMm":
        got = f"{type(value).__name__}" if kind == "O" else f"dtype {arr.dtype}"
        raise TypeError(
            f"{who}: {got} is not numeric data (numpy makes it an array of dtype {arr.dtype}), which cannot "
            "be differentiated; pass numbers, e.g. np.asarray(data, dtype=float)"
        )
    if kind == "c":
        raise TypeError(
            f"{who}: complex input (dtype {arr.dtype}) is not supported; jacobians differentiates real "
            "functions only — split the data into real and imaginary parts (z.real, z.imag)"
        )
    if kind in "biu":  # integers and booleans become float64 (docs/reliability.md)
        return arr.astype(np.float64)
    if arr.dtype == np.float16:  # lossless; numpy.linalg has no float16
        return arr.astype(np.float32)
    if arr.dtype.itemsize > 8:
        raise TypeError(
            f"{who}: extended precision ({arr.dtype}) is not supported (numpy.linalg refuses it); "
            "cast to float64 with np.asarray(data, dtype=np.float64)"
        )
    return arr


def _float_dtype(dtype: Any, who: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{who}: dtype must be float32 or float64, got {dt}")
    return dt


def _read_only(value: Any) -> Any:
    """A parameter as stored on a node: arrays become read-only copies."""
    if isinstance(value, np.ndarray):
        value = value.copy()
        value.setflags(write=False)
    return value


class Node:
    """A value in a computation graph, with the op that made it and its parents.

    A node is immutable: its value is read-only and ``value``, ``op``, ``parents``,
    ``params``, ``kind`` and ``id`` cannot be reassigned (a node's parents are fixed
    when it is made, so no cycle can be formed). Only the display name may change.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 3)), name="X")
    >>> Y = 2 * X.T @ X
    >>> Y.shape, Y.dtype, Y.op.name
    ((3, 3), dtype('float64'), 'matmul')
    >>> Y.parents = (Y,)
    Traceback (most recent call last):
    ...
    AttributeError: node matmul#...: 'parents' cannot be changed — nodes are immutable ...
    """

    __array_ufunc__ = None  # numpy defers to our reflected operators
    __array_priority__ = 1000

    __slots__ = ("value", "op", "parents", "params", "_name", "kind", "id", "__weakref__")

    value: np.ndarray
    op: Optional[Op]
    parents: Tuple["Node", ...]
    params: Mapping[str, Any]
    kind: str
    id: int

    def __init__(
        self,
        value: np.ndarray,
        op: Optional[Op] = None,
        parents: Tuple["Node", ...] = (),
        params: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
        kind: str = "op",
    ) -> None:
        value.setflags(write=False)  # node values are never modified by any route
        init = object.__setattr__
        init(self, "value", value)
        init(self, "op", op)
        init(self, "parents", tuple(parents))
        init(self, "params", types.MappingProxyType({k: _read_only(v) for k, v in (params or {}).items()}))
        init(self, "kind", kind)  # "var", "const" or "op"
        init(self, "id", next(_ids))
        init(self, "_name", name)

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr == "_name":  # a label, not part of the maths
            object.__setattr__(self, attr, value)
            return
        raise AttributeError(
            f"node {self.name}: {attr!r} cannot be changed — nodes are immutable (graphs are built eagerly, "
            "so a node's parents are fixed when it is made and no cycle can be formed); build a new node instead"
        )

    def __delattr__(self, attr: str) -> None:
        self.__setattr__(attr, None)

    def named(self, name: str) -> "Node":
        """Label this node for printing (derivations then say ``W``, not ``matmul#7``); returns it.

        The label is not part of the maths: values, parents and derivatives stay as they are.

        >>> import numpy as np, jacobians as jx
        >>> X = jx.var(np.ones((2, 3)), name="X")
        >>> (X @ X.T).named("W").name
        'W'
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"named: a node's name must be a non-empty string, got {name!r}")
        self._name = name
        return self

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


def _refuse_nonfinite(arr: np.ndarray, who: str, allow_inf: bool) -> None:
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        what = "NaN" if allow_inf else "NaN or ±Inf"
        raise ValueError(
            f"{who}: the data contain {what} ({_first_bad(arr, bad)}); a derivative there is undefined. "
            "Clean the data first (drop those entries, or np.nan_to_num)"
        )


def var(value: Any, name: Optional[str] = None, dtype: Any = None) -> Node:
    """A differentiable leaf holding a copy of ``value`` (any rank).

    Integer and boolean data become float64, float16 becomes float32; float32
    stays float32 unless ``dtype`` (float32 or float64) says otherwise. NaN or
    ±Inf is refused. The user's array is copied, never modified.

    >>> import jacobians as jx
    >>> x = jx.var([[1, 2], [3, 4]], name="x")
    >>> x.dtype, x.shape
    (dtype('float64'), (2, 2))
    >>> jx.var([1.0, float("nan")], name="w")
    Traceback (most recent call last):
    ...
    ValueError: var(w): the data contain NaN or ±Inf (1 of 2 entries, the first at index (1,) (nan)); ...
    """
    who = f"var({name or ''})"
    if isinstance(value, Node):
        raise TypeError(
            f"var: got the node {value.name}; a var is a leaf made from data — pass {value.name}.value "
            "to start a new graph, or differentiate with respect to the node itself"
        )
    arr = _validate_array(value, who)
    if dtype is not None:
        arr = arr.astype(_float_dtype(dtype, who))
    _refuse_nonfinite(arr, who, allow_inf=False)
    return Node(np.array(arr, copy=True), name=name, kind="var")


def const(value: Any, name: Optional[str] = None, dtype: Any = None) -> Node:
    """A constant node: part of the graph, never differentiated.

    Same data rules as :func:`var`, except that ±Inf is allowed (a ``-inf``
    mask before a softmax is a constant); NaN is refused.

    >>> import jacobians as jx
    >>> jx.const(3.0).kind
    'const'
    """
    if isinstance(value, Node):
        return value
    return _const(value, f"const({name or ''})", name, dtype)


def _const(value: Any, who: str, name: Optional[str] = None, dtype: Any = None) -> Node:
    arr = _validate_array(value, who)
    if dtype is not None:
        arr = arr.astype(_float_dtype(dtype, who))
    _refuse_nonfinite(arr, who, allow_inf=True)
    return Node(np.array(arr, copy=True), name=name, kind="const")


def _graph_float(args: Sequence[Any]) -> Optional[np.dtype]:
    """The float dtype of the nodes among ``args`` (None if there are none)."""
    dtypes = [a.dtype for a in args if isinstance(a, Node)]
    return np.result_type(*dtypes) if dtypes else None


def as_node(value: Any, like: Optional[np.dtype] = None, who: str = "constant") -> Node:
    """``value`` itself if it is a node, else a constant.

    The constant takes the float dtype ``like`` (the graph's, so a float32 graph
    stays float32 when float64 numpy data are mixed in); without ``like``, numbers
    and integer data become float64 and float data keep their dtype. ``who`` names
    the operand in error messages.

    >>> import numpy as np, jacobians as jx
    >>> as_node(np.ones(2), like=np.float32).dtype, as_node(np.arange(2)).dtype
    (dtype('float32'), dtype('float64'))
    """
    if isinstance(value, Node):
        return value
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)) and not isinstance(value, np.float16):
        return _const(np.asarray(value, dtype=like or np.float64), who)
    arr = _validate_array(value, who)
    if like is not None:
        arr = arr.astype(like, copy=False)
    return _const(arr, who)


# ------------------------------------------------------------------ applying an op
def _describe(nodes: Sequence[Node]) -> str:
    return ", ".join(f"{n.name} {n.shape}" for n in nodes)


@contextlib.contextmanager
def op_errors(op: Op, inputs: Sequence[Node], stage: str = "forward") -> Iterator[None]:
    """Re-raise a ``numpy.linalg.LinAlgError`` from inside ``op`` with the op and its inputs named.

    The error stays a ``LinAlgError`` (hence a ``ValueError``); ``stage`` says what
    was running (the forward, a Jacobian rule, a VJP rule).

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.zeros((2, 2)), name="A")
    >>> with op_errors(jx.get_op("inv"), [A]):
    ...     np.linalg.inv(A.value)
    Traceback (most recent call last):
    ...
    numpy.linalg.LinAlgError: inv (forward) failed on A (2, 2): Singular matrix. ...
    """
    try:
        yield
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            f"{op.name} ({stage}) failed on {_describe(inputs)}: {exc}. The matrix is singular or not "
            "finite: make it invertible (e.g. add a small multiple of the identity) or reformulate "
            "(jx.solve instead of jx.inv, logdet of a positive definite matrix)"
        ) from exc


def _check_nonfinite(node: Node) -> None:
    """Warn when an op turned finite inputs into NaN or ±Inf."""
    value = node.value
    bad = ~np.isfinite(value)
    if not bad.any() or not all(np.isfinite(p.value).all() for p in node.parents):
        return
    warnings.warn(
        f"{node.op.name}: finite inputs {_describe(node.parents)} gave non-finite output {node.name} "
        f"({_first_bad(value, bad)}); "
        "the input is outside the op's domain (log and logdet need positive values, sqrt non-negative "
        "ones, inv a non-singular matrix) or the result overflows, so this value and every derivative "
        "through it are meaningless. "
        "Make it an error with warnings.simplefilter('error', jx.NonFiniteWarning)",
        NonFiniteWarning, stacklevel=_user_stacklevel(),
    )


def _check_broadcast(op: Op, shapes: Sequence[Tuple[int, ...]], out_shape: Tuple[int, ...]) -> None:
    """Warn when a lower-rank operand of a broadcasting op matches several axis positions."""
    if len(shapes) < 2:
        return
    try:
        if tuple(np.broadcast_shapes(*shapes)) != tuple(out_shape):
            return  # not a broadcasting op (matmul, solve, ...)
    except ValueError:
        return
    n = len(out_shape)
    for k, s in enumerate(shapes):
        if not 0 < len(s) < n or all(d == 1 for d in s):
            continue
        fits = [o for o in range(n - len(s) + 1) if tuple(out_shape[o:o + len(s)]) == tuple(s)]
        if len(fits) > 1:
            col = tuple(s) + (1,) * (n - len(s) - fits[0]) if fits[0] != n - len(s) else None
            warnings.warn(
                f"{op.name}: operand {k + 1} of shape {tuple(s)} is broadcast against shape {tuple(out_shape)}; "
                f"numpy aligns it with the last {'axis' if len(s) == 1 else str(len(s)) + ' axes'}, but it fits "
                f"axes starting at {fits[:-1]} too. If that is what you mean, reshape it to "
                f"{(1,) * (n - len(s)) + tuple(s)} to say so"
                + (f"; to align it with the leading axes, reshape it to {col}" if col else ""),
                AmbiguousBroadcastWarning, stacklevel=_user_stacklevel(),
            )


def apply(op: Op, *args: Any, **params: Any) -> Node:
    """Make the node ``op(*args, **params)``: check shapes, then run the forward.

    Shape errors name the op and every input shape, and are raised before any
    computation. numpy arrays and scalars among ``args`` become constants in the
    graph's float dtype. A ``numpy.linalg`` failure in the forward is re-raised
    naming the op and inputs (:func:`op_errors`); non-finite output from finite
    input warns (:class:`NonFiniteWarning`); an ambiguous broadcast warns
    (:class:`AmbiguousBroadcastWarning`).

    >>> import numpy as np, jacobians as jx
    >>> apply(jx.get_op("add"), jx.var(np.ones(2)), 1.0).value.tolist()
    [2.0, 2.0]
    """
    if len(args) != op.nargs:
        raise TypeError(f"{op.name}: takes {op.nargs} array argument(s), got {len(args)}")
    like = _graph_float(args)
    nodes = tuple(as_node(a, like, f"{op.name}: operand {i + 1} (a constant)") for i, a in enumerate(args))
    shapes = tuple(n.shape for n in nodes)
    out_shape = tuple(op.shape(*shapes, **params))  # raises ValueError naming op and shapes
    _check_broadcast(op, shapes, out_shape)
    with np.errstate(all="ignore"), op_errors(op, nodes):
        value = np.asarray(op.forward(*(n.value for n in nodes), **params))
    if value.shape != out_shape:  # a bug in an op declaration, not in user input
        raise AssertionError(f"{op.name}: forward gave shape {value.shape}, shape rule said {out_shape}")
    node = Node(value, op=op, parents=nodes, params=params)
    _check_nonfinite(node)
    return node


def _call(name: str, *args: Any) -> Node:
    from .registry import get_op

    return apply(get_op(name), *args)
