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

from typing import Any, Dict, Tuple

import numpy as np

from . import memory
from .elimination import Operand, RawProduct, eliminate, form_labels, land, prepare
from .form import Factored, check_factored, fill_delta_sizes

__all__ = ["materialize", "identity", "identity_into"]


def materialize(F: Factored, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...], dtype: Any,
                what: str = "jacobian") -> np.ndarray:
    """The dense Jacobian ``out_shape + in_shape`` that ``F`` describes (priced before it is allocated)."""
    shape = tuple(out_shape) + tuple(in_shape)
    memory.check_bytes(shape, dtype, what)
    check_factored(F, out_shape, in_shape, what)
    free = F.out + F.inp
    products = []
    for t, inner in zip(F.terms, form_labels(F)):
        sizes: Dict[str, int] = dict(zip(free, shape))
        for f in t.factors:
            sizes.update(zip(f.labels, np.shape(f.value)))
        fill_delta_sizes(t.deltas, sizes)
        r = eliminate(RawProduct(t.coef, [Operand(np.asarray(f.value), f.labels) for f in t.factors],
                                 [(d[0], d[1]) for d in t.deltas], list(inner)), free, sizes)
        products.append((r, prepare(r, free, sizes)))
    first_untied = next((k for k, (r, _) in enumerate(products) if not r.ties), None)
    fresh = first_untied is not None and not F.flat
    J = np.empty(shape, dtype=dtype) if fresh else np.zeros(shape, dtype=dtype)
    if F.flat:
        identity_into(J, int(np.prod(out_shape)))
    order = ([first_untied] if fresh else []) + [k for k in range(len(products)) if not (fresh and k == first_untied)]
    for n, k in enumerate(order):
        r, prep = products[k]
        land(J, [np.asarray(o.value, dtype=dtype) for o in r.operands], r.coef, prep, assign=fresh and n == 0)
    return J


def identity_into(J: np.ndarray, n: int) -> None:
    """Add ones on the diagonal of J matricized as (n × n)."""
    J.reshape(n, -1)[np.arange(n), np.arange(n)] += 1


def identity(shape: Tuple[int, ...], dtype: Any, what: str = "jacobian") -> np.ndarray:
    """dx/dx: the identity of x's shape, ``shape + shape``."""
    J = memory.zeros(tuple(shape) + tuple(shape), dtype, what)
    identity_into(J, int(np.prod(shape)))
    return J
