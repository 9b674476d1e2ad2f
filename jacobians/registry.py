"""The op registry, and applying an op: one :class:`Op` per differentiable operation, registered once.

An op declares, side by side:

* ``forward(*xs, **params)`` — the numpy computation;
* ``shape(*shapes, **params)`` — the output shape, raising ``ValueError`` on a
  mismatch *before* anything is computed;
* ``forms`` — its Jacobian w.r.t. each input as a :class:`~jacobians.form.Factored`
  (deltas and small arrays): the single source from which the dense Jacobian,
  the formula text, LaTeX, explain's index forms, the vec forms and the derived
  VJP are generated;
* ``vjps`` — the hand-written vector-Jacobian products, written apart from the
  forms: the fast gradient and the independent exact check of each form.

``forms`` and ``vjps`` are tuples with one rule per input, or (for an op with
any number of inputs, such as einsum) one rule that takes the input's position
first. :func:`apply` makes a node from an op.
"""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import memory
from .dense import materialize
from .form import Factor, Factored, Product
from .node import (AmbiguousBroadcastWarning, Node, NonFiniteWarning, ThreadFlag, as_node, describe_bad, graph_float,
                   user_stacklevel)

__all__ = ["Op", "Factor", "Product", "Factored", "register", "get_op", "registered_ops", "declared_in", "apply",
           "op_errors", "rule_broadcasts"]

FormRule = Callable[..., Factored]
VJPRule = Callable[..., np.ndarray]
Rules = Union[Tuple[Callable[..., Any], ...], Callable[..., Any]]
Shape = Tuple[int, ...]


def _example_value(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    v = rng.uniform(0.2, 0.6, shape)  # inside every op's domain (log, arcsin, probabilities)
    if len(shape) >= 2 and shape[-1] == shape[-2]:
        v = v + 2.0 * np.eye(shape[-1])  # well conditioned, for inv, det, solve
    return v


@dataclass(frozen=True)
class Op:
    """A differentiable operation: forward, shape rule, factored Jacobians, hand-written VJPs.

    ``example`` (input shapes) and ``example_params`` are what :attr:`formula`
    renders the forms on; ``policy`` states the op's convention at kinks and
    ties, where it has one (docs/ops.md lists them).
    """

    name: str
    forward: Callable[..., np.ndarray]
    shape: Callable[..., Shape]
    forms: Rules
    vjps: Rules
    params: Tuple[str, ...] = field(default=())
    example: Tuple[Shape, ...] = ((2, 3),)
    example_params: Mapping[str, Any] = field(default_factory=dict)
    policy: str = ""  # the op's kink or tie convention, one line (relu'(0) = 0, ties split equally, ...)
    broadcasts: bool = True  # aligns operands by numpy broadcasting (False: by einsum labels)
    bind: Optional[Callable[..., Callable[..., np.ndarray]]] = None  # bind(shapes, **params): forward for fixed shapes
    # (params) -> whether the output is a sum of products of the inputs whose overflow raises numpy's floating-point
    # flag in the calling thread (no threaded BLAS): finite inputs then give finite output, or a flag
    polynomial: Optional[Callable[..., bool]] = None

    @property
    def nargs(self) -> Optional[int]:
        """The number of array inputs; None for an op that takes any number (einsum)."""
        return len(self.forms) if isinstance(self.forms, tuple) else None

    def __post_init__(self) -> None:
        if isinstance(self.forms, tuple) != isinstance(self.vjps, tuple) or (
                isinstance(self.forms, tuple) and len(self.forms) != len(self.vjps)):
            raise ValueError(
                f"op {self.name!r}: {self.forms!r} form rules but {self.vjps!r} VJP rules; declare one of each per "
                "differentiable input (or one of each taking the input's position, for any number of inputs)"
            )

    def form(self, i: int, y: np.ndarray, *xs: np.ndarray, **params: Any) -> Factored:
        """The factored Jacobian d y / d xs[i]."""
        rule = self.forms[i] if isinstance(self.forms, tuple) else self.forms
        return rule(y, *xs, **params) if isinstance(self.forms, tuple) else rule(i, y, *xs, **params)

    def bound(self, shapes: Sequence[Shape], **params: Any) -> Callable[..., np.ndarray]:
        """The forward for inputs of these shapes and these parameters, planned once, as a callable of the arrays.

        What :mod:`jacobians.jit` replays. An op that declares ``bind`` plans its
        work here (an einsum its path and views); any other op's forward is
        called with its parameters. The result may be a view of an input.

        >>> import numpy as np
        >>> f = get_op("matmul").bound([(2, 3), (3, 2)], eq="ik,kj->ij")
        >>> f(np.ones((2, 3)), np.ones((3, 2))).tolist()
        [[3.0, 3.0], [3.0, 3.0]]
        """
        if self.bind is not None:
            return self.bind(tuple(tuple(s) for s in shapes), **params)
        forward = self.forward
        return (lambda *xs: forward(*xs, **params)) if params else forward

    def vjp(self, i: int, g: np.ndarray, y: np.ndarray, *xs: np.ndarray, **params: Any) -> np.ndarray:
        """The hand-written VJP: Σ_out g[out] dy[out]/dxs[i], shape xs[i].shape."""
        if isinstance(self.vjps, tuple):
            return self.vjps[i](g, y, *xs, **params)
        return self.vjps(i, g, y, *xs, **params)

    def jacobian(self, i: int, y: np.ndarray, *xs: np.ndarray, **params: Any) -> np.ndarray:
        """The dense Jacobian d y / d xs[i], shape ``y.shape + xs[i].shape``, generated from the form."""
        return materialize(self.form(i, y, *xs, **params), np.shape(y), np.shape(xs[i]), y.dtype,
                           f"jacobian of {self.name} w.r.t. input {i}")

    @property
    def formula(self) -> str:
        """The index formula, rendered from the forms on the example inputs.

        >>> print(get_op("matmul").formula)
        dY[i,j]/dA[p,q] = δ_ip B[q,j] ;  dY[i,j]/dB[p,q] = δ_jq A[i,p]
        """
        rng = np.random.default_rng(0)
        xs = [_example_value(s, rng) for s in self.example]
        n = len(xs)
        names = ("X",) if n == 1 else ("A", "B") if n == 2 else tuple(f"X{k}" for k in range(n))
        with np.errstate(all="ignore"):  # the text does not depend on the numbers
            y = np.asarray(self.forward(*xs, **self.example_params))
            return " ;  ".join(self.form(i, y, *xs, **self.example_params).simplified().formula(names, "Y", i)
                               for i in range(n))


_REGISTRY: Dict[str, Op] = {}
_WHERE: Dict[str, str] = {}  # op name -> module that declared it


def register(op: Op) -> Op:
    """Add ``op`` to the registry; a second op of the same name is refused.

    >>> register(get_op("tanh"))
    Traceback (most recent call last):
    ...
    ValueError: op 'tanh' is already registered (in jacobians.ops.elementwise); pick another name or remove the first declaration
    """
    if op.name in _REGISTRY:
        raise ValueError(
            f"op {op.name!r} is already registered (in {_WHERE[op.name]}); pick another name or remove the "
            "first declaration"
        )
    _REGISTRY[op.name] = op
    _WHERE[op.name] = sys._getframe(1).f_globals.get("__name__", "?")
    return op


def get_op(name: str) -> Op:
    """The registered op called ``name``; the error lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r}; registered ops are: {', '.join(sorted(_REGISTRY))}") from None


def declared_in(name: str) -> str:
    """The module that registered the op ``name``.

    >>> declared_in("tanh")
    'jacobians.ops.elementwise'
    """
    get_op(name)
    return _WHERE[name]


def registered_ops() -> List[str]:
    """Names of all registered ops, sorted.

    >>> "einsum" in registered_ops()
    True
    """
    return sorted(_REGISTRY)


# ------------------------------------------------------------------ applying an op
def _describe(nodes: Sequence[Node]) -> str:
    return ", ".join(f"{n.name} {n.shape}" for n in nodes)


class op_errors:
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

    __slots__ = ("op", "inputs", "stage")

    def __init__(self, op: Op, inputs: Sequence[Node], stage: str = "forward") -> None:
        self.op, self.inputs, self.stage = op, inputs, stage  # a class, not a generator: it wraps every op call

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if kind is not None and issubclass(kind, np.linalg.LinAlgError):
            raise np.linalg.LinAlgError(
                f"{self.op.name} ({self.stage}) failed on {_describe(self.inputs)}: {exc}. The matrix is singular "
                "or not finite: make it invertible (e.g. add a small multiple of the identity) or reformulate "
                "(jx.solve instead of jx.inv, logdet of a positive definite matrix)"
            ) from exc
        return False


def _check_nonfinite(node: Node) -> None:
    """Warn when an op turned finite inputs into NaN or ±Inf."""
    value = node.value
    if np.isfinite(value).all():
        return
    bad = ~np.isfinite(value)
    if not all(np.isfinite(p.value).all() for p in node.parents):
        return
    warnings.warn(
        f"{node.op.name}: finite inputs {_describe(node.parents)} gave non-finite output {node.name} "
        f"({describe_bad(value, bad)}); "
        "the input is outside the op's domain (log and logdet need positive values, sqrt non-negative "
        "ones, inv a non-singular matrix) or the result overflows, so this value and every derivative "
        "through it are meaningless. "
        "Make it an error with warnings.simplefilter('error', jx.NonFiniteWarning)",
        NonFiniteWarning, stacklevel=user_stacklevel(),
    )


_RULES = ThreadFlag()


def rule_broadcasts() -> ThreadFlag:
    """``with rule_broadcasts():`` (in this thread) :class:`AmbiguousBroadcastWarning` is not raised: the graph is
    being built by derivative rules (a gradient graph), whose broadcasts are the op's business, not the user's.
    A ``warnings.catch_warnings`` block would do the same for the whole process, and is not thread-safe."""
    return _RULES


def _check_broadcast(op: Op, shapes: Sequence[Shape], out_shape: Shape) -> None:
    """Warn when a lower-rank operand of a broadcasting op matches several axis positions."""
    if len(shapes) < 2 or not op.broadcasts or _RULES.on:  # einsum aligns by labels, not
        return  # by position; a derivative rule's own broadcasts are not the user's
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
                AmbiguousBroadcastWarning, stacklevel=user_stacklevel(),
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
    if op.nargs is not None and len(args) != op.nargs:
        raise TypeError(f"{op.name}: takes {op.nargs} array argument(s), got {len(args)}")
    like = graph_float(args)
    nodes = tuple(a if isinstance(a, Node) else as_node(a, like, f"{op.name}: operand {i + 1} (a constant)")
                  for i, a in enumerate(args))
    shapes = tuple(n.value.shape for n in nodes)
    out_shape = tuple(op.shape(*shapes, **params))  # raises ValueError naming op and shapes
    if math.prod(out_shape) > 1 << 20:  # a large result is priced before the forward allocates it
        memory.check_bytes(out_shape, like or np.float64, f"the output of {op.name} on {_describe(nodes)}")
    if op.broadcasts and len(shapes) > 1:
        _check_broadcast(op, shapes, out_shape)
    with np.errstate(all="ignore"), op_errors(op, nodes):
        value = np.asarray(op.forward(*(n.value for n in nodes), **params))
    if value.shape != out_shape:  # a bug in an op declaration, not in user input
        raise AssertionError(f"{op.name}: forward gave shape {value.shape}, shape rule said {out_shape}")
    node = Node(value, op=op, parents=nodes, params=params)
    _check_nonfinite(node)
    return node
