"""The dense Jacobian generated from an op's factored form: the one delta materializer.

Each term of the form is reduced by :mod:`jacobians.elimination` (deltas between
an output and an input index become ties) and written through a strided view
of one zeroed array, so only the nonzeros are touched; ``δ(flat(out), flat(in))``
is the diagonal of the matricized Jacobian. Every dense Jacobian in the package,
local or whole, is built here or by the chain rule from ones built here.

>>> import numpy as np
>>> from jacobians.form import broadcast_factored
>>> J = materialize(broadcast_factored((2, 3), (2, 3), np.full((2, 3), 5.0)), (2, 3), (2, 3), np.float64)
>>> float(J.reshape(6, 6).trace()), float(J.sum())
(30.0, 30.0)
"""
from __future__ import annotations

import math
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import memory
from .elimination import land, recipe
from .form import Factored

__all__ = ["materialize", "assemble", "identity", "identity_into", "construction_extra"]

Piece = Tuple[List[np.ndarray], float, Any]  # (values, coef, prepared)


def assemble(shape: Tuple[int, ...], dtype: Any, pieces: Sequence[Piece], what: str,
             flat: Optional[int] = None, flat_weight: float = 1.0) -> np.ndarray:
    """Σ pieces (plus δ(flat(out), flat(in)) when ``flat`` gives the output's size) written into one array.

    A piece is ``(values, coef, prepared)``. The first piece is assigned,
    not added: into fresh memory when it covers every entry (no tie), else
    into zeros; the others are added through their views.
    """
    order = sorted(range(len(pieces)), key=lambda k: bool(pieces[k][2].pairs))  # untied first
    fresh = bool(pieces) and not pieces[order[0]][2].pairs and flat is None
    extra = _extra(prep for _, _, prep in pieces)
    if extra:  # the result with one term's contraction (and numpy's buffers adding it) beside it
        memory.check_bytes((math.prod(shape) + extra + memory.ufunc_buffers(extra),), dtype,
                           f"{what} with one term's product ({extra:,} elements) live beside it")
    J = memory.empty(shape, dtype, what) if fresh else memory.zeros(shape, dtype, what)
    if flat is not None:
        identity_into(J, flat, flat_weight)
    for n, k in enumerate(order):
        values, coef, prep = pieces[k]
        land(J, values, coef, prep, assign=n == 0 and flat is None)
    return J


def _extra(preps: Iterable[Any]) -> int:
    """Elements one term's contraction holds at once (its steps, and its result reshaped), the largest term."""
    return max((p.comp.peak + math.prod(p.shape) for p in preps if p is not None and p.comp is not None), default=0)


def construction_extra(forms: Sequence[Factored], out_shape: Tuple[int, ...], in_shape: Tuple[int, ...]) -> int:
    """Elements that materializing ``forms`` holds beside the Jacobian itself: one term's contraction and
    numpy's buffers adding it (from shapes: the recipes are cached)."""
    extra = _extra(prep for G in forms for _, prep in recipe(G, out_shape, in_shape, "dense"))
    return extra + memory.ufunc_buffers(extra) if extra else 0


def materialize(F: Union[Factored, Sequence[Factored]], out_shape: Tuple[int, ...], in_shape: Tuple[int, ...],
                dtype: Any, what: str = "jacobian") -> np.ndarray:
    """The dense Jacobian ``out_shape + in_shape`` that ``F`` describes (priced before it is allocated).

    Several forms (an op that takes one node twice, ``X @ X``) are summed into one
    array: no second Jacobian-sized array is ever live.
    """
    forms = [F] if isinstance(F, Factored) else list(F)
    shape = tuple(out_shape) + tuple(in_shape)
    pieces = [([np.asarray(f.value, dtype=dtype) for f in t.factors], coef, prep) for G in forms
              for t, (coef, prep) in zip(G.terms, recipe(G, out_shape, in_shape, "dense", what))]
    flats = sum(G.flat for G in forms)
    if flats > 1:  # δ(flat) twice: the identity counted twice (a reshape feeding both inputs)
        pieces.append(([], float(flats - 1), None))
    return assemble(shape, dtype, [p for p in pieces if p[2] is not None], what,
                    flat=int(np.prod(out_shape)) if flats else None, flat_weight=float(max(flats, 1)))


def identity_into(J: np.ndarray, n: int, weight: float = 1.0) -> None:
    """Add ``weight`` on the diagonal of J matricized as (n × n)."""
    J.reshape(n, -1)[np.arange(n), np.arange(n)] += weight
def identity(shape: Tuple[int, ...], dtype: Any, what: str = "jacobian") -> np.ndarray:
    """dx/dx: the identity of x's shape, ``shape + shape``."""
    J = memory.zeros(tuple(shape) + tuple(shape), dtype, what)
    identity_into(J, int(np.prod(shape)))
    return J
