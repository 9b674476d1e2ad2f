"""The chain rule as an einsum contraction, planned by opt_einsum.

For a path x = n₀ → n₁ → … → n_k = y, the Jacobian is the contraction

    dy/dx [Ly, Lx] = Σ  J(y←n_{k-1})[Ly, L_{k-1}] · … · J(n₁←x)[L₁, Lx]

over every inner node's index labels L_i — for the first seed,
``dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab``. A graph with several paths from
x to y (``Y = (X Xᵀ) X`` has three) gives the sum over paths of such chains.

The order of the pairwise contractions decides the cost:

* ``"reverse"`` contracts from the y end (backpropagation; best when y is small,
  e.g. a scalar loss);
* ``"forward"`` from the x end (forward mode; best when x is small);
* ``"optimal"`` asks opt_einsum's dynamic-programming optimizer and keeps the
  cheapest of its answer, reverse and forward — on chains that is the matrix-
  chain optimum, which can beat both pure orders (see docs/benchmarks.md);
* ``"naive"`` is one einsum over all operands without path optimization.

Plans are made from shapes alone. The executor then follows the planned steps,
building each local Jacobian only when a step needs it and freeing it after its
last use, so a reverse-order gradient never holds two large Jacobians at once.
When there are too many paths to enumerate, the plan falls back to
accumulating node by node (reverse or forward mode over the graph).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import opt_einsum as oe

from . import memory
from .graph import TooManyPaths, between, edges, local_jacobian, paths
from .node import Node

__all__ = ["Plan", "Term", "plan", "execute", "ORDERS", "MAX_PATHS"]

ORDERS = ("optimal", "reverse", "forward", "naive")
MAX_PATHS = 64


def _labels(nodes: Sequence[Node]) -> Dict[int, str]:
    """One run of einsum symbols per node, distinct across the graph."""
    out, k = {}, 0
    for n in nodes:
        out[n.id] = "".join(oe.get_symbol(k + i) for i in range(n.ndim))
        k += n.ndim
    return out


def _pure_path(n_ops: int, order: str) -> List[Tuple[int, ...]]:
    """Explicit opt_einsum path for operands listed from the y end (0) to the x end (n-1).

    opt_einsum removes the contracted operands and appends the result at the end.
    """
    if n_ops == 1:
        return [(0,)]
    if order == "naive":
        return [tuple(range(n_ops))]
    if order == "reverse":  # ((J_y J_{k-1}) J_{k-2}) …
        return [(0, 1)] + [(0, n_ops - 1 - s) for s in range(1, n_ops - 1)]
    # forward: … (J_2 (J_1 J_0)), with the x end last in the list
    return [(n_ops - 2, n_ops - 1)] + [(n_ops - 2 - s, n_ops - 1 - s) for s in range(1, n_ops - 1)]


@dataclass
class Term:
    """One chain of local Jacobians (one path from x to y), planned as one contraction."""

    nodes: List[Node]  # x … y
    equation: str
    operands: List[Tuple[Node, Node]]  # (child, parent) from the y end to the x end
    shapes: List[Tuple[int, ...]]
    path: List[Tuple[int, ...]]
    steps: list  # opt_einsum contraction_list
    flops: int
    largest_intermediate: int
    size_dict: Dict[str, int]

    def describe(self) -> str:
        route = " → ".join(n.name for n in self.nodes)
        ops = ", ".join(f"J[{c.name}←{p.name}]{tuple(s)}" for (c, p), s in zip(self.operands, self.shapes))
        return (f"{route}\n    einsum  {self.equation}\n    operands {ops}\n"
                f"    path {self.path}   flops {self.flops:.3g}   largest intermediate {self.largest_intermediate:,}")


@dataclass
class Plan:
    """What the explicit route will contract: equations, paths, FLOPs, sizes.

    ``flops`` is opt_einsum's estimate (summed over terms); ``largest_intermediate``
    and ``largest_operand`` count elements.
    """

    y: Node
    x: Node
    order: str
    strategy: str  # "paths", "accumulate", "identity" or "independent"
    hold: Tuple[Node, ...] = ()
    terms: List[Term] = field(default_factory=list)
    steps: List[Tuple[str, Tuple[Node, Node], int]] = field(default_factory=list)  # accumulate: (eq, edge, flops)
    flops: int = 0
    largest_intermediate: int = 0
    largest_operand: int = 0

    @property
    def equations(self) -> List[str]:
        return [t.equation for t in self.terms] or [s[0] for s in self.steps]

    @property
    def paths(self) -> List[List[Tuple[int, ...]]]:
        return [t.path for t in self.terms]

    @property
    def largest_operand_bytes(self) -> int:
        return self.largest_operand * self.y.dtype.itemsize

    def __str__(self) -> str:
        head = (f"plan for d{self.y.name}/d{self.x.name}: out {self.y.shape} + in {self.x.shape} "
                f"→ Jacobian {self.y.shape + self.x.shape}, order={self.order}, strategy={self.strategy}")
        lines = [head]
        if self.strategy == "independent":
            lines.append(f"  {self.y.name} does not depend on {self.x.name}: the Jacobian is zeros")
        elif self.strategy == "identity":
            lines.append("  y is x: the Jacobian is the identity")
        for i, t in enumerate(self.terms, 1):
            lines.append(f"  path {i}: " + t.describe())
        for eq, (c, p), fl in self.steps:
            lines.append(f"  accumulate J[{c.name}←{p.name}]: {eq}   flops {fl:.3g}")
        lines.append(f"  total: flops {self.flops:.3g}, largest intermediate {self.largest_intermediate:,} elements, "
                     f"largest local Jacobian {self.largest_operand:,} elements "
                     f"({self.largest_operand_bytes:,} bytes)")
        return "\n".join(lines)

    def execute(self) -> np.ndarray:
        """Run the plan: the dense Jacobian of shape ``y.shape + x.shape``."""
        return execute(self)


def _plan_term(nodes: List[Node], labels: Dict[int, str], order: str) -> Term:
    y, x = nodes[-1], nodes[0]
    operands = [(nodes[i + 1], nodes[i]) for i in reversed(range(len(nodes) - 1))]
    subs = [labels[c.id] + labels[p.id] for c, p in operands]
    shapes = [c.shape + p.shape for c, p in operands]
    eq = ",".join(subs) + "->" + labels[y.id] + labels[x.id]
    if order == "optimal":
        candidates = []
        for how in ("dp", _pure_path(len(shapes), "reverse"), _pure_path(len(shapes), "forward")):
            _, info = oe.contract_path(eq, *shapes, shapes=True, optimize=how)
            candidates.append(info)
        info = min(candidates, key=lambda i: (i.opt_cost, i.largest_intermediate))
    else:
        _, info = oe.contract_path(eq, *shapes, shapes=True, optimize=_pure_path(len(shapes), order))
    return Term(nodes, eq, operands, shapes, list(info.path), info.contraction_list,
                int(info.opt_cost), int(info.largest_intermediate), dict(info.size_dict))


def plan(y: Node, x: Node, order: str = "optimal", hold: Sequence[Node] = (),
         max_paths: int = MAX_PATHS) -> Plan:
    """Plan the explicit contraction for dy/dx from shapes alone (nothing large is built).

    ``hold`` lists nodes treated as constants (paths through them are cut).

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((3, 2)), name="X")
    >>> W = X @ X.T
    >>> p = jx.plan(W @ X, X)
    >>> p.equations     # three paths: X→Xᵀ→W→Y, X→W→Y, X→Y
    ['ghef,efcd,cdab->ghab', 'ghef,efab->ghab', 'ghab->ghab']
    """
    if order not in ORDERS:
        raise ValueError(f"plan: order={order!r} is not one of {', '.join(ORDERS)}")
    if not isinstance(y, Node) or not isinstance(x, Node):
        raise TypeError(f"plan: y and x must be nodes, got {type(y).__name__} and {type(x).__name__}")
    hold = tuple(hold)
    if y.id == x.id:
        return Plan(y, x, order, "identity", hold, largest_operand=y.size * x.size)
    nodes = between(y, x, hold)
    if not nodes:
        return Plan(y, x, order, "independent", hold)
    labels = _labels(nodes)
    try:
        chains = paths(y, x, max_paths, hold)
    except TooManyPaths:
        return _plan_accumulate(y, x, nodes, labels, "forward" if order == "forward" else "reverse", hold)
    p = Plan(y, x, order, "paths", hold, terms=[_plan_term(c, labels, order) for c in chains])
    p.flops = sum(t.flops for t in p.terms)
    p.largest_intermediate = max(t.largest_intermediate for t in p.terms)
    p.largest_operand = max(math.prod(s) for t in p.terms for s in t.shapes)
    return p


def _plan_accumulate(y: Node, x: Node, nodes: List[Node], labels: Dict[int, str], order: str,
                     hold: Tuple[Node, ...]) -> Plan:
    """Node-by-node accumulation: A[p] += A[n] · J(n←p) (reverse) or T[n] += J(n←p) · T[p] (forward)."""
    p = Plan(y, x, order, "accumulate", hold)
    for child, parent in edges(nodes):
        if order == "reverse":
            eq = f"{labels[y.id]}{labels[child.id]},{labels[child.id]}{labels[parent.id]}->{labels[y.id]}{labels[parent.id]}"
            shapes = [y.shape + child.shape, child.shape + parent.shape]
        else:
            eq = f"{labels[child.id]}{labels[parent.id]},{labels[parent.id]}{labels[x.id]}->{labels[child.id]}{labels[x.id]}"
            shapes = [child.shape + parent.shape, parent.shape + x.shape]
        _, info = oe.contract_path(eq, *shapes, shapes=True)
        p.steps.append((eq, (child, parent), int(info.opt_cost)))
        p.flops += int(info.opt_cost)
        p.largest_intermediate = max(p.largest_intermediate, int(info.largest_intermediate))
        p.largest_operand = max(p.largest_operand, math.prod(shapes[0]), math.prod(shapes[1]))
    return p


class _LocalJacobians:
    """Builds each needed local Jacobian once and forgets it after its last use."""

    def __init__(self, uses: Dict[Tuple[int, int], int]):
        self.uses = dict(uses)
        self.cache: Dict[Tuple[int, int], np.ndarray] = {}

    def take(self, child: Node, parent: Node) -> np.ndarray:
        key = (child.id, parent.id)
        J = self.cache.get(key)
        if J is None:
            memory.check_bytes(child.shape + parent.shape, child.dtype, f"jacobian of {child.op.name} ({child.name})")
            J = local_jacobian(child, parent)
        self.uses[key] -= 1
        if self.uses[key] > 0:
            self.cache[key] = J
        else:
            self.cache.pop(key, None)
        return J


def _result_shape(einsum_str: str, size_dict: Dict[str, int]) -> Tuple[int, ...]:
    return tuple(size_dict[c] for c in einsum_str.split("->")[1])


def _execute_term(term: Term, jacs: _LocalJacobians, what: str) -> np.ndarray:
    pending: List[object] = list(term.operands)  # (child, parent) until built
    for contract_inds, _removed, einsum_str, _remaining, _blas in term.steps:
        picked = [pending.pop(i) for i in contract_inds]
        shape = _result_shape(einsum_str, term.size_dict)
        memory.check_bytes(shape, term.nodes[-1].dtype, f"{what}: contraction step {einsum_str}")
        tensors = [jacs.take(*t) if isinstance(t, tuple) else t for t in picked]
        del picked
        pending.append(oe.contract(einsum_str, *tensors))
        del tensors
    (result,) = pending
    if isinstance(result, tuple):  # a single operand needing no step
        result = jacs.take(*result)
    return result


def execute(p: Plan) -> np.ndarray:
    """Execute a :class:`Plan`; the result is C-contiguous, of shape y.shape + x.shape."""
    y, x = p.y, p.x
    shape = y.shape + x.shape
    what = f"jacobian d{y.name}/d{x.name}"
    dtype = np.result_type(y.dtype, x.dtype)
    if p.strategy == "independent":
        return memory.zeros(shape, dtype, what)
    if p.strategy == "identity":
        J = memory.zeros(shape, dtype, what)
        np.fill_diagonal(J.reshape(y.size, x.size), 1)
        return J
    memory.check_bytes(shape, dtype, what)
    if p.strategy == "accumulate":
        return _execute_accumulate(p, what)
    uses: Dict[Tuple[int, int], int] = {}
    for t in p.terms:
        for c, q in t.operands:
            uses[(c.id, q.id)] = uses.get((c.id, q.id), 0) + 1
    jacs = _LocalJacobians(uses)
    total: Optional[np.ndarray] = None
    for t in p.terms:
        r = _execute_term(t, jacs, what)
        if total is None:
            total = np.ascontiguousarray(r, dtype=y.dtype)  # opt_einsum may hand back a transposed view
        else:
            total += r
    return total.reshape(shape)


def _execute_accumulate(p: Plan, what: str) -> np.ndarray:
    y, x = p.y, p.x
    by_child: Dict[int, List[Tuple[str, Node]]] = {}
    by_parent: Dict[int, List[Tuple[str, Node]]] = {}
    for eq, (c, q), _ in p.steps:
        by_child.setdefault(c.id, []).append((eq, q))
        by_parent.setdefault(q.id, []).append((eq, c))
    nodes = between(y, x, p.hold)
    acc: Dict[int, Optional[np.ndarray]] = {}

    def add(key: int, value: np.ndarray) -> None:
        acc[key] = np.ascontiguousarray(value) if key not in acc else acc[key] + value

    if p.order == "reverse":
        acc[y.id] = None  # the identity, never built
        for n in reversed(nodes):
            A = acc.pop(n.id)
            if n.id == x.id:
                return np.ascontiguousarray(A)
            for eq, q in by_child.get(n.id, []):
                J = local_jacobian(n, q)
                add(q.id, J if A is None else oe.contract(eq, A, J))
    else:
        acc[x.id] = None
        for n in nodes:
            if n.id == x.id:
                continue
            for eq, q in by_child.get(n.id, []):
                T = acc[q.id]
                J = local_jacobian(n, q)
                add(n.id, J if T is None else oe.contract(eq, J, T))
            for q in {q.id for _, q in by_child.get(n.id, [])}:  # free what no later node needs
                if all(c.id in acc for _, c in by_parent.get(q, [])) and q != x.id:
                    acc.pop(q, None)
        return np.ascontiguousarray(acc[y.id])
    raise AssertionError("unreachable")  # pragma: no cover
