"""numpy's override protocols on nodes: ``np.tanh(X)``, ``np.sum(X, axis=0)``, ``np.linalg.inv(X)`` give nodes.

A node implements NEP 13 (``__array_ufunc__``) and NEP 18 (``__array_function__``):
a numpy ufunc or function called with a node runs the registered op of the
same name, so a model written with ``import numpy as np`` builds a graph as it
runs. Plain arrays mixed in become constants. Comparisons and logical ufuncs
(``X > 0``, ``np.isfinite(X)``) give plain boolean arrays of the values: they
are not differentiated. Anything with no differentiable counterpart raises a
``TypeError`` that names it and says what to use: never an object array, never
a silent constant.

>>> import numpy as np, jacobians as jx
>>> X = jx.var(np.arange(6.0).reshape(2, 3), name="X")
>>> np.sum(np.tanh(X), axis=0).op.name, (np.ones((4, 2)) @ X).shape, (X > 2).dtype
('sum', (4, 3), dtype('bool'))
>>> np.fft.fft(X)
Traceback (most recent call last):
...
TypeError: numpy.fft.fft is not differentiable in jacobians ...
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import numpy as np

from ..node import Node, concrete
from . import arithmetic, einsum, elementwise, indexing, linalg, losses, nn, reductions, selection, shape

__all__ = ["UFUNCS", "FUNCTIONS", "NDARRAY_METHODS", "attach"]

_FAMILIES = (arithmetic, elementwise, einsum, shape, indexing, selection, reductions, linalg, losses, nn)
_OPS: Dict[str, Callable[..., Any]] = {name: getattr(m, name) for m in _FAMILIES for name in m.__all__}

# ufunc names that differ from the op's (numpy's ufunc.__name__ on the left)
_UFUNC_ALIASES = {"absolute": "abs", "fabs": "abs", "remainder": "mod", "rint": "round", "true_divide": "divide"}
# computed on the values, never differentiated
_NOT_DIFFERENTIATED = {
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and", "logical_or",
    "logical_not", "logical_xor", "isfinite", "isinf", "isnan", "signbit",
}
# numpy function names that differ from the op's
_FUNCTION_ALIASES = {"var": "variance", "amax": "max", "amin": "min", "around": "round", "round_": "round"}


def _ufuncs() -> Dict[str, Callable[..., Any]]:
    table: Dict[str, Callable[..., Any]] = {"positive": lambda x: x}
    for name in dir(np):
        uf = getattr(np, name)
        if isinstance(uf, np.ufunc):
            op = _UFUNC_ALIASES.get(uf.__name__, uf.__name__)
            if op in _OPS:
                table[uf.__name__] = _OPS[op]
    return table


def _np_trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """numpy.trace's semantics (axes 0 and 1 by default): the sum of numpy.diagonal."""
    return _OPS["sum"](_OPS["diagonal"](a, offset, axis1, axis2), axis=-1)


def _functions() -> Dict[Callable[..., Any], Callable[..., Any]]:
    table: Dict[Callable[..., Any], Callable[..., Any]] = {
        np.trace: _np_trace, np.linalg.trace: _OPS["trace"],
        np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a, axis=None: (
            a.size if axis is None else a.shape[axis]),
    }
    for ns in (np, np.linalg):
        for name in dir(ns):
            f = getattr(ns, name)
            op = _FUNCTION_ALIASES.get(name, name)
            if callable(f) and not isinstance(f, (np.ufunc, type)) and op in _OPS and f not in table:
                table[f] = _OPS[op]
    return table


UFUNCS = _ufuncs()
FUNCTIONS = _functions()


def _qualname(f: Any) -> str:
    mod = getattr(f, "__module__", "numpy") or "numpy"
    mod = "numpy" if mod.startswith("numpy") and mod.count(".") <= 1 and "linalg" not in mod and "fft" not in mod \
        else mod.replace("._", ".").replace("numpy.linalg.linalg", "numpy.linalg")
    return f"{mod}.{getattr(f, '__name__', f)}"


def _call(fn: Callable[..., Any], what: str, args: Any, kwargs: Dict[str, Any]) -> Any:
    """Run the op; numpy-only keyword arguments (out=, dtype=, ...) are refused by name."""
    if kwargs.get("out") is not None:
        raise TypeError(f"{what}(..., out=...) on a node: nodes are immutable; drop out= and use the result")
    kwargs = {k: v for k, v in kwargs.items() if not (k == "out" and v is None) and not (k == "optimize")}
    try:
        return fn(*args, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc) or "positional argument" in str(exc):
            raise TypeError(f"{what} on a node: {exc}; jacobians supports {fn.__name__}'s arguments "
                            f"(see help(jx.{fn.__name__}))") from None
        raise


def array_ufunc(self: Node, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    name = ufunc.__name__
    if name in _NOT_DIFFERENTIATED:
        return getattr(ufunc, method)(*[concrete(x, f"numpy.{name}") for x in inputs], **kwargs)
    if method != "__call__":
        raise TypeError(f"numpy.{name}.{method} on a node is not differentiable in jacobians; use the function "
                        f"(np.sum, np.cumsum, np.max) or jx.{name} on the node, or work on .value (not differentiated)")
    fn = UFUNCS.get(name)
    if fn is None:
        raise TypeError(f"numpy.{name} is not differentiable in jacobians (no registered op of that name); "
                        f"registered ops are listed by jx.registered_ops(); use one of them, or work on .value "
                        "(not differentiated)")
    return _call(fn, f"numpy.{name}", inputs, kwargs)


def array_function(self: Node, func: Callable[..., Any], types: Any, args: Any, kwargs: Dict[str, Any]) -> Any:
    fn = FUNCTIONS.get(func)
    if fn is None:
        raise TypeError(f"{_qualname(func)} is not differentiable in jacobians (no registered op of that name); "
                        "use a registered op (jx.registered_ops() lists them), or work on .value (not differentiated)")
    return _call(fn, _qualname(func), args, kwargs)


# ndarray methods a node gets when the op of that name exists (its numpy function's signature)
NDARRAY_METHODS = ("dot", "max", "min", "prod", "std", "var", "cumsum", "cumprod", "clip", "round", "trace",
                   "diagonal", "flatten", "ravel", "squeeze", "swapaxes", "take", "repeat", "sum", "mean",
                   "transpose", "reshape", "argmax", "argmin")


def _method(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Node, *args: Any, **kwargs: Any) -> Any:
        return _call(fn, f"ndarray.{name}", (self,) + args, kwargs)

    method.__name__ = name
    method.__doc__ = f"Like ``ndarray.{name}``: ``jx.{fn.__name__}(self, ...)``."
    return method


def _arg_method(name: str) -> Callable[..., Any]:
    def method(self: Node, *args: Any, **kwargs: Any) -> Any:
        return getattr(concrete(self, f".{name}()"), name)(*args, **kwargs)  # an index: not differentiated

    method.__name__ = name
    method.__doc__ = f"``ndarray.{name}`` of the value: an integer index, not differentiated."
    return method


def _astype(self: Node, dtype: Any, *args: Any, **kwargs: Any) -> Node:
    """``ndarray.astype``: the node itself for its own dtype; any other dtype is refused (no cast op)."""
    if np.dtype(dtype) == self.dtype:
        return self
    raise TypeError(f"ndarray.astype({np.dtype(dtype)}) on node {self.name} ({self.dtype}) is not differentiable in "
                    "jacobians: build the graph in the dtype you want (jx.var(x, dtype=...)), or use .value.astype "
                    "for a constant")


def _tolist(self: Node) -> Any:
    raise TypeError(f"ndarray.tolist on node {self.name} would leave the graph; use .value.tolist() "
                    "(not differentiated)")


def _comparison(ufunc: np.ufunc) -> Callable[[Node, Any], np.ndarray]:
    def compare(self: Node, other: Any) -> np.ndarray:
        return ufunc(concrete(self, f"a comparison ({ufunc.__name__})"), concrete(other, "a comparison"))

    compare.__doc__ = f"``numpy.{ufunc.__name__}`` of the values: a boolean array, not differentiated."
    return compare


def attach() -> None:
    """Give ``Node`` the two protocols, the comparisons and the ndarray methods it lacks (once, at import).

    ``== != < <= > >=`` compare values as numpy does (boolean arrays, not
    differentiated); a node stays hashable by identity, so it is still a
    dictionary key (``explain(..., names={W: "W"})``).
    """
    Node.__array_ufunc__ = array_ufunc
    Node.__array_function__ = array_function
    for dunder, uf in (("__lt__", np.less), ("__le__", np.less_equal), ("__gt__", np.greater),
                       ("__ge__", np.greater_equal), ("__eq__", np.equal), ("__ne__", np.not_equal)):
        setattr(Node, dunder, _comparison(uf))
    Node.__hash__ = object.__hash__  # still a dictionary key by identity (explain(..., names={W: "W"}))
    Node.astype = _astype
    Node.tolist = _tolist
    Node.copy = lambda self: self  # nodes are immutable: a copy is the node itself
    for name in NDARRAY_METHODS:
        if name in ("argmax", "argmin"):
            setattr(Node, name, _arg_method(name))
            continue
        op = _OPS.get(_FUNCTION_ALIASES.get(name, name))
        if op is not None and name not in Node.__dict__:
            setattr(Node, name, _method(name, op))


attach()
