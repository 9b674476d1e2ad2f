"""The sweeps: one engine for every route that pulls a cotangent from y back to x, one that pushes tangents forward.

Nodes are visited from y back to x (reverse topological order); each node's
cotangent is pulled into its parents through ``pull(child, parent, g)`` and
summed there. The routes differ only in ``pull``:

* the vjp route pulls through the ops' hand-written VJPs (:mod:`jacobians.vjp_route`);
* the factored gradient pulls through the VJPs derived from the forms
  (:mod:`jacobians.factored`);
* the dense route's node-by-node accumulation pulls a whole block of rows,
  dy/dchild contracted with the local Jacobian (:mod:`jacobians.chain_rule`).

A contribution may be a read-only view (a broadcast, a reshape of g): it is
never written to. The second contribution to a node makes a fresh sum that the
sweep owns, and later ones are added into it in place.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .node import Node

__all__ = ["reverse_sweep", "forward_sweep"]

Pull = Callable[[Node, Node, Any], np.ndarray]


def reverse_sweep(nodes: List[Node], y: Node, x: Node, seed: Any, pull: Pull) -> Optional[np.ndarray]:
    """The cotangent that reaches x when ``seed`` starts at y (nodes: x … y in topological order).

    ``seed`` may be None where ``pull`` reads None as the identity.
    """
    inside = {n.id for n in nodes}
    cot: Dict[int, Any] = {y.id: seed}
    owned: set = set()
    for n in reversed(nodes):
        if n.id not in cot:
            continue
        g = cot.pop(n.id)
        if n.id == x.id:
            return g
        done = set()
        for p in n.parents:
            if p.id not in inside or p.id in done:
                continue
            done.add(p.id)
            c = pull(n, p, g)
            if p.id not in cot:
                cot[p.id] = c
            elif p.id in owned:
                cot[p.id] += c
            else:
                cot[p.id] = cot[p.id] + c
                owned.add(p.id)
    raise AssertionError("x not reached")  # pragma: no cover


def forward_sweep(nodes: List[Node], seeds: Dict[int, Any], push: Pull) -> Dict[int, Any]:
    """Tangents pushed from the seeded nodes through every later node (nodes in topological order).

    ``push(child, parent, t)`` is the child's tangent from the parent's tangent t;
    contributions of several parents are summed. Nodes no seed reaches get none.
    """
    tangents: Dict[int, Any] = dict(seeds)
    for n in nodes:
        if n.id in tangents:
            continue
        total = None
        for p in {q.id: q for q in n.parents if q.id in tangents}.values():
            c = push(n, p, tangents[p.id])
            total = c if total is None else total + c
        if total is not None:
            tangents[n.id] = total
    return tangents
