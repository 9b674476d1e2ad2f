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

import itertools
import os
import sys
import threading
import types
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:  # the node layer imports nothing above it
    from .registry import Op

__all__ = [
    "Node", "var", "const", "as_node", "shape_of", "graph_float", "describe_bad", "user_stacklevel",
    "NonFiniteWarning", "AmbiguousBroadcastWarning", "ConcretizationError", "ThreadFlag", "tracing", "is_tracing", "concrete", "outside_trace", "leaf_array", "differentiating",
    "active_vars",
]

_ids = itertools.count()
_trace = threading.local()  # .active: the ids of the vars the running transforms differentiate, in this thread


class ConcretizationError(TypeError):
    """A number was asked of a node while :func:`jacobians.jit.jit` was tracing: the replay would freeze it."""


class differentiating:
    """While active (in this thread), the ids of ``xs`` are vars a running transform differentiates.

    A transform called inside another one (``jx.grad(f)`` inside an outer
    ``jx.grad``'s function, or a jitted function there) may close over the
    outer transform's vars: its result must then stay in the graph, as a node,
    so that the outer derivative reaches through it (:func:`active_vars`).
    """

    __slots__ = ("ids",)

    def __init__(self, xs: Sequence["Node"]) -> None:
        self.ids = frozenset(x.id for x in xs)

    def __enter__(self) -> None:
        stack = getattr(_trace, "active", None)
        if stack is None:
            stack = _trace.active = []
        stack.append(self.ids)

    def __exit__(self, *exc: Any) -> bool:
        _trace.active.pop()
        return False


def active_vars() -> frozenset:
    """The ids of the vars that the transforms running in this thread differentiate (outermost first)."""
    stack = getattr(_trace, "active", None)
    return frozenset().union(*stack) if stack else frozenset()


def is_tracing() -> bool:
    """Whether :func:`jacobians.jit.jit` is recording a function now (see :class:`tracing`)."""
    return _TRACING.on


def concrete(x: Any, what: str) -> Any:
    """A node's value read as numbers that leave the graph (a comparison, an index); refused while tracing.

    Anything that is not a node comes back as it is.
    """
    if not isinstance(x, Node):
        return x
    if _TRACING.on:
        raise ConcretizationError(
            f"node {x.name}: {what} inside a function that jx.jit is tracing gives numbers taken out of the graph, "
            "which the replay would freeze at their first values. Use jx ops that stay in the graph (jx.maximum, "
            "jx.minimum, jx.clip, jx.abs, jx.relu instead of a mask from a comparison), mark the argument static "
            "(static_argnums), or call the function without jit"
        )
    return x.value


def outside_trace(what: str) -> None:
    """Refuse, while jx.jit traces (this thread), a call that would return arrays computed at the trace."""
    if _TRACING.on:
        raise ConcretizationError(
            f"{what} inside a function that jx.jit is tracing returns arrays computed from the trace's values, "
            "which the replay would freeze. Inside jit use jx.grad(f) or jx.value_and_grad(f), which return "
            "their result as nodes there; or call it outside the jitted function"
        )


class ThreadFlag:
    """A flag that is on in one thread while any ``with`` block of it is open there (blocks nest).

    >>> flag = ThreadFlag()
    >>> with flag:
    ...     flag.on
    True
    >>> flag.on
    False
    """

    __slots__ = ("_local",)

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def on(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def __enter__(self) -> None:
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def __exit__(self, *exc: Any) -> bool:
        self._local.depth -= 1
        return False


_TRACING = ThreadFlag()


def tracing() -> ThreadFlag:
    """``with tracing():`` jx.jit records one trace; meanwhile ``node.item()`` raises :class:`ConcretizationError`.

    A Python branch on a value (``if loss.item() > 1:``) would be frozen into the
    recorded program and replayed for every later input, so it is refused, as
    ``jax.jit`` refuses to concretize a tracer.
    """
    return _TRACING

ArrayLike = Union["Node", np.ndarray, float, int, Sequence[Any]]


class NonFiniteWarning(RuntimeWarning):
    """An op turned finite inputs into NaN or ±Inf (e.g. log of a negative number)."""


class AmbiguousBroadcastWarning(UserWarning):
    """numpy broadcasting picked one of several axes a lower-rank operand could align with."""


def user_stacklevel() -> int:
    """The stacklevel of the first frame outside this package, for warnings.warn called by our caller."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def describe_bad(arr: np.ndarray, bad: np.ndarray) -> str:
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


def _immutable_copy(arr: np.ndarray) -> np.ndarray:
    """A copy of the user's data in an immutable ``bytes`` buffer: no flag, base or view can make it writable.

    >>> v = _immutable_copy(np.arange(3.0))
    >>> v.base.setflags(write=True)
    Traceback (most recent call last):
    ...
    ValueError: cannot set WRITEABLE flag to True of this array
    """
    return np.frombuffer(np.ascontiguousarray(arr).tobytes(), dtype=arr.dtype).reshape(arr.shape)


def _frozen(value: np.ndarray) -> np.ndarray:
    """A read-only view whose base is read-only too, so ``setflags(write=True)`` cannot undo it."""
    root = value
    while isinstance(root.base, np.ndarray):
        root = root.base
    if root is value or not root.flags.writeable:
        root.setflags(write=False)
    else:  # a view into memory someone else may write: keep a copy of our own
        value = root = np.array(value)
        root.setflags(write=False)
    view = value.view()
    view.setflags(write=False)
    return view


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
    op: Optional["Op"]
    parents: Tuple["Node", ...]
    params: Mapping[str, Any]
    kind: str
    id: int

    def __init__(
        self,
        value: np.ndarray,
        op: Optional["Op"] = None,
        parents: Tuple["Node", ...] = (),
        params: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
        kind: str = "op",
    ) -> None:
        value = _frozen(value)  # node values are never modified by any route, nor can they be made writable
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

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            f"node {self.name} cannot become a numpy array: that would leave the graph silently. Use "
            f"{self.name}.value for the numbers (not differentiated), or call numpy functions on the node itself"
        )

    def __float__(self) -> float:
        raise TypeError(f"node {self.name}: float() would leave the graph; use {self.name}.item() for the number "
                        "(not differentiated)")

    def item(self) -> Any:
        """The value of a one-entry node as a Python number: it leaves the graph (not differentiated)."""
        return concrete(self, ".item()").item()


def _refuse_nonfinite(arr: np.ndarray, who: str, allow_inf: bool) -> None:
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        what = "NaN" if allow_inf else "NaN or ±Inf"
        raise ValueError(
            f"{who}: the data contain {what} ({describe_bad(arr, bad)}); a derivative there is undefined. "
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
    return Node(_immutable_copy(leaf_array(value, who, dtype)), name=name, kind="var")


def leaf_array(value: Any, who: str, dtype: Any = None) -> np.ndarray:
    """The float array a :func:`var` of ``value`` would hold (not copied): same dtype rules and refusals.

    >>> leaf_array([1, 2], "x").dtype, leaf_array(np.ones(2, np.float32), "x").dtype
    (dtype('float64'), dtype('float32'))
    """
    arr = _validate_array(value, who)
    if dtype is not None:
        arr = arr.astype(_float_dtype(dtype, who))
    _refuse_nonfinite(arr, who, allow_inf=False)
    return arr


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
    return Node(_immutable_copy(arr), name=name, kind="const")


def shape_of(x: Any) -> Tuple[int, ...]:
    """The shape of a node or of array-like data.

    >>> shape_of([[1, 2, 3]]), shape_of(var([1.0, 2.0]))
    ((1, 3), (2,))
    """
    return x.shape if isinstance(x, Node) else np.shape(x)


def graph_float(args: Sequence[Any]) -> Optional[np.dtype]:
    """The float dtype of the nodes among ``args`` (None if there are none)."""
    dtypes = [a.value.dtype for a in args if isinstance(a, Node)]
    if not dtypes:
        return None
    first = dtypes[0]
    return first if all(d == first for d in dtypes) else np.result_type(*dtypes)


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
        with np.errstate(over="ignore"):
            arr = np.asarray(value, dtype=like or np.float64)
        if np.isfinite(value) and not np.isfinite(arr):
            warnings.warn(f"{who}: the number {value!r} overflows the graph's {arr.dtype} (it becomes {arr.item()}); "
                          "every value and derivative through it is meaningless. Use a float64 graph "
                          "(jx.var(x, dtype=np.float64)) or a smaller constant",
                          NonFiniteWarning, stacklevel=user_stacklevel())
        return _const(arr, who)
    arr = _validate_array(value, who)
    if like is not None:
        arr = arr.astype(like, copy=False)
    return _const(arr, who)
