"""The factored Jacobian as one node of the graph, so that :func:`jacobians.jit.jit` can replay it.

:func:`jacobians.factored.plan_factored`, given forms evaluated on *nodes*
(``local_form``: :func:`jacobians.second_order.jacobian_graph` passes the ops'
forms evaluated on nodes), plans products
whose factors are nodes: the factors are then ordinary ops on the graph's
values. One ``land_products`` op takes those factor nodes as its inputs and
lands the products into the Jacobian (:func:`jacobians.elimination.share_factors`,
:func:`jacobians.dense.assemble`), as :meth:`FactoredPlan.execute` does with
arrays. Planning (paths, delta elimination, einsum paths) happens once, when the
node is built; a replay recomputes the factors from the new inputs and lands
them: this is how ``jx.jit(jx.hessian(f))`` replays a Hessian. The landing has
a form of its own (each product is linear in every factor), so a landed
Jacobian is differentiated again like any node.

>>> import numpy as np, jacobians as jx
>>> h = jx.jit(jx.hessian(lambda x: np.log(np.sum(np.exp(x)))))
>>> x = np.array([0.0, np.log(3.0)])            # p = softmax(x) = (1/4, 3/4)
>>> (h(x) * 16).tolist()                         # diag(p) − p pᵀ, times 16
[[3.0, -3.0], [-3.0, 3.0]]
>>> print(str(h.program(x)).splitlines()[-1])    # doctest: +ELLIPSIS
  %... = land_products(...; landing=<2 product(s) into (2, 2)>)  (2, 2)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from . import memory
from .dense import assemble, identity
from .elimination import Prepared, derived_vjp, share_factors
from .factored import MAX_PRODUCTS, LocalForm, plan_factored
from .form import Factor, Factored, Product, axis_labels
from .node import Node, const
from .registry import Op, apply

__all__ = ["jacobian_node", "Landing", "NotReplayable"]


class NotReplayable(ValueError):
    """The Jacobian cannot be built as a node (the factored plan falls back to the dense route)."""


@dataclass(frozen=True, eq=False)
class Landing:
    """What the ``land_products`` op writes: per product, the op inputs that are its factors, its
    coefficient and preparation (einsum, tied view); the Jacobian's shape and dtype."""

    pieces: Tuple[Tuple[Tuple[int, ...], float, Prepared], ...]
    shape: Tuple[int, ...]
    dtype: np.dtype
    what: str
    shares: bool = True  # some products share a factor (share_factors merges them); decided from structure

    @property
    def flagged(self) -> bool:
        """Whether an overflow while landing always raises numpy's floating-point flag in the calling thread:
        every product is a broadcast multiply (no index summed, so no BLAS call, whose worker threads keep
        their flags to themselves), and none is merged with another."""
        return not self.shares and all(prep.comp is None or _broadcast_only(prep.eq) for _, _, prep in self.pieces)

    def __repr__(self) -> str:
        return f"<{len(self.pieces)} product(s) into {self.shape}>"


def _broadcast_only(eq: str) -> bool:
    ins, out = eq.split("->")
    return set(ins.replace(",", "")) <= set(out)


def _land_forward(*arrays: np.ndarray, landing: Landing) -> np.ndarray:
    # (the result was priced when the node was built, and a jit replay prices its largest array first)
    pieces = [([arrays[k] for k in refs], coef, prep) for refs, coef, prep in landing.pieces]
    if not landing.shares:
        return assemble(landing.shape, landing.dtype, pieces, landing.what)
    pieces, held = share_factors(pieces, landing.dtype, landing.what)
    with memory.reserve(held, f"{landing.what}: the products that share a factor, summed"):
        return assemble(landing.shape, landing.dtype, pieces, landing.what)


def _land_form(i: int, y: Any, *xs: Any, landing: Landing) -> Factored:
    """d(landing)/d(input i): the landing is a sum of products, each multilinear in its factors, so its
    derivative w.r.t. one factor is the product of the others, with deltas from that factor's labels to the
    Jacobian's (and the ties of the tied view between Jacobian axes); one term per place the input fills."""
    out, inp = axis_labels(len(landing.shape), np.ndim(xs[i]))
    terms = []
    fresh = iter(chr(0x4E00 + k) for k in range(1 << 16))  # summed labels, distinct from out and inp
    for refs, coef, prep in landing.pieces:
        spots = [p for p, r in enumerate(refs) if r == i]
        if not spots:
            continue
        dropped = {d for _, d in prep.pairs}
        kept = [a for a in range(len(landing.shape)) if a not in dropped]  # the view's axes, as Jacobian axes
        ins, core = prep.eq.split("->") if prep.eq else ("", "")
        subs = ins.split(",") if ins else []
        name = {c: out[kept[prep.axes[j]]] for j, c in enumerate(core)}
        for c in "".join(subs):
            if c not in name:
                name[c] = next(fresh)
        labels = {q: "".join(name[c] for c in sub) for q, sub in zip(prep.keep, subs)}
        labels.update({q: "" for q in prep.scalars})
        ties = tuple(out[k] + out[d] for k, d in prep.pairs)
        for p in spots:
            factors = tuple(Factor(xs[refs[q]], labels[q], f"F{q}") for q in list(prep.keep) + list(prep.scalars)
                            if q != p)
            deltas = tuple(a + b for a, b in zip(labels[p], inp))
            terms.append(Product(factors, ties + deltas, coef))
    return Factored(out, inp, tuple(terms))


_LAND = Op("land_products", _land_forward, lambda *shapes, landing: landing.shape, forms=_land_form,
           vjps=lambda i, g, y, *xs, landing: derived_vjp(_land_form(i, y, *xs, landing=landing), g, y.shape,
                                                          np.shape(xs[i]), g.dtype),
           params=("landing",), broadcasts=False, polynomial=lambda landing: landing.flagged)


def jacobian_node(y: Node, x: Node, local_form: LocalForm, hold: Sequence[Node] = (),
                  max_products: int = MAX_PRODUCTS, what: str = "") -> Node:
    """dy/dx as a node of shape ``y.shape + x.shape``: factors from ``local_form``, landed by one op.

    Raises :class:`NotReplayable` where the factored plan would fall back to the dense route.
    """
    shape = y.shape + x.shape
    what = what or f"jacobian d{y.name}/d{x.name} (factored route, as a node)"
    memory.check_bytes(shape, y.dtype, what)
    if y.id == x.id:
        return const(identity(x.shape, y.dtype, what), dtype=y.dtype)
    plan = plan_factored(y, x, hold=hold, max_products=max_products, local_form=local_form)
    if plan.strategy == "dense":
        raise NotReplayable(f"{what}: {plan.reason}, so the dense route would compute it, and the dense route "
                            "cannot be replayed; compute it outside jx.jit")
    if plan.strategy == "independent" or not plan.products:
        return const(np.zeros(shape, dtype=y.dtype), dtype=y.dtype)
    inputs: List[Node] = []
    slot: Dict[int, int] = {}
    pieces = []
    for r, prep in zip(plan.products, plan.prepared):
        refs = []
        for o in r.operands:  # one input per distinct factor (a node, or an array the form made: a constant)
            if id(o.value) not in slot:
                slot[id(o.value)] = len(inputs)
                inputs.append(o.value if isinstance(o.value, Node) else const(np.asarray(o.value), dtype=y.dtype))
            refs.append(slot[id(o.value)])
        pieces.append((tuple(refs), float(r.coef), prep))
    # whether products share a factor depends on which inputs they read and their preparations, not on values:
    # decided once here, on the trace's values (one array per input, as in every replay)
    traced = [([inputs[k].value for k in refs], coef, prep) for refs, coef, prep in pieces]
    shares = len(share_factors(traced, y.dtype, what)[0]) != len(traced)
    return apply(_LAND, *inputs, landing=Landing(tuple(pieces), shape, np.dtype(y.dtype), what, shares))
