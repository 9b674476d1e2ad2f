"""The op registry: one :class:`Op` per differentiable operation, registered once.

An op is everything the three routes need, declared side by side:

* ``forward(*xs, **params)`` — the numpy computation;
* ``shape(*shapes, **params)`` — the output shape, raising ``ValueError`` on a
  mismatch *before* anything is computed;
* ``jacobians[i](out, *xs, **params)`` — the dense Jacobian with respect to
  input ``i``, shape ``out.shape + xs[i].shape``, built from the index formula;
* ``vjps[i](g, out, *xs, **params)`` — the hand-written vector-Jacobian
  product, an array of shape ``xs[i].shape``;
* ``formula`` — the index formula, the same one the Jacobian builder writes.

The Jacobian builders and VJPs are written independently so each checks the
other; the tests also check both against central differences.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Tuple

import numpy as np

__all__ = ["Op", "register", "get_op", "registered_ops"]

JacobianRule = Callable[..., np.ndarray]
VJPRule = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Op:
    """A differentiable operation: forward, shape rule, explicit Jacobians, VJPs, formula."""

    name: str
    forward: Callable[..., np.ndarray]
    shape: Callable[..., Tuple[int, ...]]
    jacobians: Tuple[JacobianRule, ...]
    vjps: Tuple[VJPRule, ...]
    formula: str
    params: Tuple[str, ...] = field(default=())

    @property
    def nargs(self) -> int:
        return len(self.jacobians)

    def __post_init__(self) -> None:
        if len(self.jacobians) != len(self.vjps):
            raise ValueError(
                f"op {self.name!r}: {len(self.jacobians)} Jacobian rules but {len(self.vjps)} VJP rules; "
                "declare one of each per differentiable input"
            )


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


def registered_ops() -> Iterator[str]:
    """Names of all registered ops, sorted."""
    return iter(sorted(_REGISTRY))
