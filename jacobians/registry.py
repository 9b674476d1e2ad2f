"""The op registry: one :class:`Op` per differentiable operation, registered once.

An op is everything the three routes need, declared side by side:

* ``forward(*xs, **params)`` — the numpy computation;
* ``shape(*shapes, **params)`` — the output shape, raising ``ValueError`` on a
  mismatch *before* anything is computed;
* ``jacobians[i](out, *xs, **params)`` — the dense Jacobian with respect to
  input ``i``, shape ``out.shape + xs[i].shape``, built from the index formula;
* ``vjps[i](g, out, *xs, **params)`` — the hand-written vector-Jacobian
  product, an array of shape ``xs[i].shape``;
* ``formula`` — the index formula, the same one the Jacobian builder writes;
* ``factored[i](out, *xs, **params)`` — the same Jacobian as a :class:`Factored`:
  a sum of products of small dense arrays and Kronecker deltas, never
  materialized (``dY[i,j]/dA[p,q] = δ_ip B[q,j]`` is one delta and one factor B).

The Jacobian builders and VJPs are written independently so each checks the
other; the tests also check both against central differences, and the factored
form against the dense builder.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np

__all__ = ["Op", "Factor", "Product", "Factored", "register", "get_op", "registered_ops"]

JacobianRule = Callable[..., np.ndarray]
VJPRule = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Factor:
    """A dense array in a factored Jacobian, one index label (a letter) per axis.

    ``name`` says what the array is, for derivations: ``"{x0}"`` / ``"{x1}"``
    is the op's first / second input itself, ``"{y}"`` its output, anything else
    an array written in terms of those, e.g. ``"tanh'({x0})"``.
    """

    value: np.ndarray
    labels: str
    name: str


@dataclass(frozen=True)
class Product:
    """One term of a factored Jacobian: ``coef · Π factors · Π deltas``.

    Each delta is a two-letter string: ``"ip"`` is δ_ip.
    """

    factors: Tuple[Factor, ...] = ()
    deltas: Tuple[str, ...] = ()
    coef: float = 1.0


@dataclass(frozen=True)
class Factored:
    """``dY[out...]/dX[inp...] = Σ_terms coef · Π factors · Π deltas``.

    ``out`` labels the output's axes, ``inp`` the input's; a factor label in
    neither is summed inside the term. An axis whose label appears in no factor
    and no delta is one along which the Jacobian is constant (a broadcast).
    ``flat=True`` (with no terms) is ``δ(flat(out), flat(in))``: a reshape whose
    axes share no per-axis deltas.

    >>> F = Factored("ij", "pq", (Product((Factor(np.ones((4, 2)), "qj", "{x1}"),), ("ip",)),))
    >>> F.formula(("A", "B"), "Y")
    'dY[i,j]/dA[p,q] = δ_ip B[q,j]'
    """

    out: str
    inp: str
    terms: Tuple[Product, ...]
    flat: bool = False

    def formula(self, inputs: Tuple[str, ...] = ("X0", "X1"), output: str = "Y", wrt: int = 0) -> str:
        """The index formula with the factors named by ``inputs`` and ``output``."""
        def idx(labels: str) -> str:
            return "[" + ",".join(labels) + "]" if labels else ""

        parts = [f"δ(flat({','.join(self.out)}), flat({','.join(self.inp)}))"] if self.flat else []
        for t in self.terms:
            words = [f"δ_{d}" for d in t.deltas]
            words += [f.name.format(y=output, **{f"x{k}": n for k, n in enumerate(inputs)}) + idx(f.labels)
                      for f in t.factors]
            body = " ".join(words) or "1"
            c = "" if t.coef == 1 else "-" if t.coef == -1 else f"{t.coef:g} "
            parts.append(c + body)
        rhs = " + ".join(parts).replace("+ -", "- ") or "0"
        return f"d{output}{idx(self.out)}/d{inputs[wrt]}{idx(self.inp)} = {rhs}"


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
    factored: Optional[Tuple[Callable[..., Factored], ...]] = None

    @property
    def nargs(self) -> int:
        return len(self.jacobians)

    def __post_init__(self) -> None:
        if len(self.jacobians) != len(self.vjps):
            raise ValueError(
                f"op {self.name!r}: {len(self.jacobians)} Jacobian rules but {len(self.vjps)} VJP rules; "
                "declare one of each per differentiable input"
            )
        if self.factored is not None and len(self.factored) != len(self.jacobians):
            raise ValueError(
                f"op {self.name!r}: {len(self.jacobians)} Jacobian rules but {len(self.factored)} factored rules; "
                "declare one factored rule per differentiable input (or none)"
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
