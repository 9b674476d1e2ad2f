"""Walking the graph: topological order, the nodes between x and y, the paths from x to y."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .node import Node
from .dense import construction_extra, materialize
from .registry import op_errors

__all__ = ["ancestors", "reaches", "between", "edges", "paths", "local_jacobian", "local_extra", "TooManyPaths", "GraphCycle"]


class TooManyPaths(Exception):
    """More paths from x to y than the path-by-path plan enumerates."""


class GraphCycle(ValueError):
    """A node depends on itself: its parents were forced to form a cycle (nodes are immutable otherwise)."""


def ancestors(y: Node) -> List[Node]:
    """Every node y depends on (and y), parents before children; raises :class:`GraphCycle` on a cycle.

    Iterative (no recursion limit): a chain of any depth is walked.
    """
    order: List[Node] = []
    state: dict = {}  # node id -> 1 while its parents are being walked, 2 when done
    stack: List[Tuple[Node, bool]] = [(y, False)]
    while stack:
        node, done = stack.pop()
        if done:
            state[node.id] = 2
            order.append(node)
            continue
        if state.get(node.id) == 2:
            continue
        if state.get(node.id) == 1:
            raise GraphCycle(f"node {node.name} depends on itself (its parents were changed to form a cycle); "
                             "build the graph again from vars: nodes are immutable")
        state[node.id] = 1
        stack.append((node, True))
        for p in node.parents:
            if state.get(p.id) == 1:
                raise GraphCycle(f"node {p.name} depends on itself (a cycle through {node.name}); build the graph "
                                 "again from vars: nodes are immutable")
            if state.get(p.id) != 2:
                stack.append((p, False))
    return order


def reaches(outputs: Sequence[object], ids: "frozenset") -> bool:
    """Whether any node among ``outputs`` depends on (or is) a node whose id is in ``ids``."""
    if not ids:
        return False
    return any(n.id in ids for y in outputs if isinstance(y, Node) for n in ancestors(y))


def between(y: Node, x: Node, hold: Sequence[Node] = ()) -> List[Node]:
    """Nodes on some path from x to y (x and y included), in topological order.

    Empty when y does not depend on x. Nodes feeding the path from elsewhere
    (including x's own ancestors) are held fixed: they are not in the list.
    Paths through a node in ``hold`` are cut: that node acts as a constant.
    """
    order = ancestors(y)
    if x.id not in {n.id for n in order}:
        return []
    held = {h.id for h in hold}
    if x.id in held:
        raise ValueError(f"{x.name} is both the variable and held fixed; remove it from hold")
    reach = {x.id}
    out = []
    for n in order:
        if n.id in held:
            continue
        if n.id == x.id or any(p.id in reach for p in n.parents):
            reach.add(n.id)
            out.append(n)
    # keep only nodes from which y is still reachable (hold may have cut some)
    feeds = {y.id} if y.id in reach else set()
    for n in reversed(out):
        if n.id in feeds:
            feeds.update(p.id for p in n.parents if p.id in reach)
    return [n for n in out if n.id in feeds]


def edges(nodes: List[Node]) -> List[Tuple[Node, Node]]:
    """The (child, parent) pairs inside ``nodes``, one per distinct pair."""
    inside = {n.id for n in nodes}
    out = []
    for n in nodes:
        seen = set()
        for p in n.parents:
            if p.id in inside and p.id not in seen:
                seen.add(p.id)
                out.append((n, p))
    return out


def paths(y: Node, x: Node, limit: int, hold: Sequence[Node] = ()) -> List[List[Node]]:
    """Every path x → … → y as a list of nodes; raises TooManyPaths past ``limit``."""
    nodes = between(y, x, hold)
    if not nodes:
        return []
    children: Dict[int, List[Node]] = {n.id: [] for n in nodes}
    for child, parent in edges(nodes):
        children[parent.id].append(child)
    count: Dict[int, int] = {y.id: 1}
    if nodes[-1].id != y.id:  # every path to y was cut by hold
        return []
    for n in reversed(nodes[:-1]):
        count[n.id] = sum(count.get(c.id, 0) for c in children[n.id])
    if count[x.id] > limit:
        raise TooManyPaths(f"{count[x.id]} paths from {x.name} to {y.name}, more than {limit}")
    result: List[List[Node]] = []
    stack: List[List[Node]] = [[x]]
    while stack:
        path = stack.pop()
        if path[-1].id == y.id:
            result.append(path)
            continue
        stack.extend(path + [c] for c in reversed(children[path[-1].id]))
    return result


def _local_forms(child: Node, parent: Node) -> list:
    op = child.op
    values = [p.value for p in child.parents]
    slots = [i for i, p in enumerate(child.parents) if p.id == parent.id]
    assert slots, f"{parent.name} is not a parent of {child.name}"
    return [op.form(i, child.value, *values, **child.params) for i in slots]


def local_jacobian(child: Node, parent: Node) -> np.ndarray:
    """d child / d parent, generated from the op's factored forms, shape child.shape + parent.shape.

    When the parent feeds several inputs of the op (``X @ X``), the Jacobians of
    those inputs are summed.
    """
    with op_errors(child.op, child.parents, f"Jacobian w.r.t. {parent.name}"):
        J = materialize(_local_forms(child, parent), child.shape, parent.shape, child.dtype,
                        f"jacobian of {child.op.name} ({child.name}) w.r.t. {parent.name}")
    return np.asarray(J, dtype=child.dtype).reshape(child.shape + parent.shape)


def local_extra(child: Node, parent: Node) -> int:
    """Elements that building d child / d parent holds beside it (one term's product at a time): for
    pricing a plan (:func:`jacobians.memory.check_plan`) before any local Jacobian is built."""
    with op_errors(child.op, child.parents, f"Jacobian w.r.t. {parent.name}"):
        return construction_extra(_local_forms(child, parent), child.shape, parent.shape)
