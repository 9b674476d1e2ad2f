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
* ``"naive"`` is one einsum over all operands of a path, without path
  optimization: its FLOPs are those of one loop over every index at once (the
  baseline that shows what ordering saves). Executing it hands that single
  step to ``opt_einsum.contract``, which contracts it pairwise — so running a
  naive plan gives the same result in reasonable time, and only the plan
  carries the naive cost.

Plans are made from shapes alone. The executor then follows the planned steps,
building each local Jacobian only when a step needs it and freeing it after its
last use. A product that several paths share (the same set of local Jacobians,
e.g. ``dl/dY · dY/dW`` in both ``X→Xᵀ→W→Y→l`` and ``X→W→Y→l``) is computed once
and counted once in ``Plan.flops``; so a reverse-order gradient builds every
local Jacobian once and never holds two large ones at a time. Each pairwise
step is one matrix product (BLAS GEMM) on reshaped views, without copies when
the contracted axes are contiguous — which they are for out+in layouts.
When there are too many paths to enumerate, the plan falls back to
accumulating node by node (reverse or forward mode over the graph).
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Literal, Optional, Sequence, Tuple

import numpy as np
import opt_einsum as oe

from . import memory
from .dense import identity
from .graph import TooManyPaths, between, edges, local_extra, local_jacobian, paths
from .kernel import pairwise, step
from .node import Node
from .sweep import reverse_sweep

__all__ = ["Plan", "PathTerm", "plan", "execute", "node_labels", "chain_order", "ORDERS", "Order", "MAX_PATHS", "DP_MAX"]

Order = Literal["optimal", "reverse", "forward", "naive"]
ORDERS: Tuple[Order, ...] = ("optimal", "reverse", "forward", "naive")
MAX_PATHS = 64

Edge = Tuple[int, int]  # (child id, parent id)
Key = FrozenSet[Edge]  # the local Jacobians a (partial) product contracts


def node_labels(nodes: Sequence[Node]) -> Dict[int, str]:
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
class PathTerm:
    """One chain of local Jacobians (one path from x to y), planned as one contraction.

    ``steps`` is opt_einsum's contraction list; ``step_keys[i]`` names the local
    Jacobians step i has contracted so far, ``step_flops[i]`` its cost, and
    ``reused[i]`` says an earlier path already computed that product.
    """

    nodes: List[Node]  # x … y
    equation: str
    operands: List[Tuple[Node, Node]]  # (child, parent) from the y end to the x end
    shapes: List[Tuple[int, ...]]
    path: List[Tuple[int, ...]]
    steps: list  # opt_einsum contraction_list
    flops: int
    largest_intermediate: int
    size_dict: Dict[str, int]
    step_keys: List[Key] = field(default_factory=list)
    step_flops: List[int] = field(default_factory=list)
    reused: List[bool] = field(default_factory=list)

    def describe(self) -> str:
        route = " → ".join(n.name for n in self.nodes)
        ops = ", ".join(f"J[{c.name}←{p.name}]{tuple(s)}" for (c, p), s in zip(self.operands, self.shapes))
        text = (f"{route}\n    einsum  {self.equation}\n    operands {ops}\n"
                f"    path {self.path}   flops {self.flops:.3g}   largest intermediate {self.largest_intermediate:,}")
        shared = [i + 1 for i, r in enumerate(self.reused) if r]
        if shared:
            text += f"\n    step(s) {shared} reuse a product an earlier path computed"
        return text


@dataclass
class Plan:
    """What the explicit route will contract: equations, paths, FLOPs, sizes.

    ``flops`` is opt_einsum's estimate summed over the steps the executor runs
    (a product shared by several paths is counted once); ``largest_intermediate``
    and ``largest_operand`` count elements.
    """

    y: Node
    x: Node
    order: str
    strategy: str  # "paths", "accumulate", "identity" or "independent"
    hold: Tuple[Node, ...] = ()
    terms: List[PathTerm] = field(default_factory=list)
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

    def __repr__(self) -> str:
        return (f"<Plan d{self.y.name}/d{self.x.name}: Jacobian {self.y.shape + self.x.shape}, order={self.order}, "
                f"strategy={self.strategy}, {len(self.terms) or len(self.steps)} "
                f"{'paths' if self.terms else 'steps'}, {self.flops:,} FLOPs>")

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```\n"

    def execute(self) -> np.ndarray:
        """Run the plan: the dense Jacobian of shape ``y.shape + x.shape``."""
        return execute(self)


def _edge(child: Node, parent: Node) -> Edge:
    return (child.id, parent.id)


def _step_keys(operands: List[Tuple[Node, Node]], steps: list, size_dict: Dict[str, int]):
    """The key and the FLOPs of every step, by replaying opt_einsum's operand list."""
    pending: List[Key] = [frozenset([_edge(c, p)]) for c, p in operands]
    keys, flops = [], []
    for contract_inds, removed, einsum_str, _rest, _blas in steps:
        picked = [pending.pop(i) for i in contract_inds]
        key = frozenset().union(*picked)
        inputs = einsum_str.split("->")[0].split(",")
        flops.append(oe.helpers.flop_count(set("".join(inputs)), bool(removed), len(inputs), size_dict))
        keys.append(key)
        pending.append(key)
    return keys, flops


DP_MAX = 64  # chains up to this many local Jacobians get the exact matrix-chain optimum (O(k³) planning)


def chain_order(dims: Sequence[int]) -> List[Tuple[int, int]]:
    """A pairwise order for the chain M_0 M_1 … M_{k-1}, M_i of size dims[i] × dims[i+1], as an opt_einsum path.

    Up to ``DP_MAX`` matrices: the matrix-chain dynamic programme (optimal, O(k³));
    beyond: greedily the cheapest adjacent product first (O(k²)). Either way the
    caller keeps the cheaper of this and the two pure orders.
    """
    k = len(dims) - 1
    if k == 1:
        return [(0,)]
    if k <= DP_MAX:
        cost = [[0] * k for _ in range(k)]
        split = [[0] * k for _ in range(k)]
        for span in range(1, k):
            for i in range(k - span):
                j = i + span
                cost[i][j], split[i][j] = min((cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1], s)
                                              for s in range(i, j))
        pairs: List[Tuple[Tuple[int, int], Tuple[int, int]]] = []

        def walk(i: int, j: int) -> Tuple[int, int]:
            if i == j:
                return (i, i)
            s = split[i][j]
            a, b = walk(i, s), walk(s + 1, j)
            pairs.append((a, b))
            return (i, j)

        walk(0, k - 1)
    else:  # greedy: the cheapest adjacent product first (a heap over neighbours, O(k log k))
        start = list(range(k))  # group g spans matrices start[g] .. end[g]; groups are linked left/right
        end = list(range(k))
        left, right = [g - 1 for g in range(k)], [g + 1 if g + 1 < k else -1 for g in range(k)]
        alive = [True] * k
        heap = [(dims[g] * dims[g + 1] * dims[g + 2], g, g + 1) for g in range(k - 1)]
        heapq.heapify(heap)
        pairs = []
        while heap:
            _, g, h = heapq.heappop(heap)
            if not (alive[g] and alive[h] and right[g] == h):
                continue  # stale: one side has merged since
            pairs.append(((start[g], end[g]), (start[h], end[h])))
            end[g], alive[h] = end[h], False
            right[g] = right[h]
            if right[g] != -1:
                left[right[g]] = g
                heapq.heappush(heap, (dims[start[g]] * dims[end[g] + 1] * dims[end[right[g]] + 1], g, right[g]))
            if left[g] != -1:
                f = left[g]
                heapq.heappush(heap, (dims[start[f]] * dims[end[f] + 1] * dims[end[g] + 1], f, g))
    # opt_einsum's path: positions in the current operand list; the result goes to the end
    current: List[Tuple[int, int]] = [(i, i) for i in range(k)]
    path = []
    for a, b in pairs:
        ia, ib = current.index(a), current.index(b)
        path.append((min(ia, ib), max(ia, ib)))
        for idx in sorted((ia, ib), reverse=True):
            current.pop(idx)
        current.append((a[0], b[1]))
    return path


def _plan_term(nodes: List[Node], labels: Dict[int, str], order: str) -> PathTerm:
    y, x = nodes[-1], nodes[0]
    operands = [(nodes[i + 1], nodes[i]) for i in reversed(range(len(nodes) - 1))]
    subs = [labels[c.id] + labels[p.id] for c, p in operands]
    shapes = [c.shape + p.shape for c, p in operands]
    eq = ",".join(subs) + "->" + labels[y.id] + labels[x.id]
    if order == "optimal":
        candidates = []
        dims = [y.size] + [c.size for c, _ in operands[1:]] + [x.size]
        for how in (chain_order(dims), _pure_path(len(shapes), "reverse"), _pure_path(len(shapes), "forward")):
            _, info = oe.contract_path(eq, *shapes, shapes=True, optimize=how)
            candidates.append(info)
        info = min(candidates, key=lambda i: (i.opt_cost, i.largest_intermediate))
    else:
        _, info = oe.contract_path(eq, *shapes, shapes=True, optimize=_pure_path(len(shapes), order))
    keys, step_flops = _step_keys(operands, info.contraction_list, info.size_dict)
    return PathTerm(nodes, eq, operands, shapes, list(info.path), info.contraction_list,
                int(info.opt_cost), int(info.largest_intermediate), dict(info.size_dict),
                keys, [int(f) for f in step_flops])


def _share(terms: List[PathTerm]) -> int:
    """Mark the steps whose product an earlier term computed; the FLOPs of the rest."""
    seen: set = set()
    total = 0
    for t in terms:
        t.reused = []
        for key, fl in zip(t.step_keys, t.step_flops):
            again = len(key) > 1 and key in seen
            t.reused.append(again)
            seen.add(key)
            total += 0 if again else fl
    return total


def plan(y: Node, x: Node, order: str = "optimal", hold: Sequence[Node] = (),
         max_paths: int = MAX_PATHS) -> Plan:
    """Plan the explicit contraction for dy/dx from shapes alone (nothing large is built).

    ``hold`` lists nodes treated as constants (paths through them are cut).
    For several paths, ``"optimal"`` keeps the cheapest of: every path at its
    own optimum, every path in reverse, every path forward (shared products
    counted once), and node-by-node accumulation over the whole graph, forward
    and reverse (a cross-country order: a partial shared by several paths is
    formed once), so it is never above either pure order.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((3, 2)), name="X")
    >>> W = X @ X.T
    >>> p = jx.plan(W @ X, X, "reverse")
    >>> p.equations     # three paths: X→Xᵀ→W→Y, X→W→Y, X→Y
    ['ghef,efcd,cdab->ghab', 'ghef,efab->ghab', 'ghab->ghab']
    >>> q = jx.plan(W @ X, X)   # optimal: node by node, forward — dW/dX is formed once, for both paths through W
    >>> q.strategy, q.order, q.flops, p.flops, jx.plan(W @ X, X, "forward").flops
    ('accumulate', 'forward', 1422, 1764, 1980)
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
    labels = node_labels(nodes)
    try:
        chains = paths(y, x, max_paths, hold)
    except TooManyPaths:
        if order != "optimal":
            return _plan_accumulate(y, x, nodes, labels, "forward" if order == "forward" else "reverse", hold)
        both = [_plan_accumulate(y, x, nodes, labels, o, hold) for o in ("reverse", "forward")]
        return min(both, key=lambda q: (q.flops, q.largest_intermediate))  # ties go to reverse
    candidates = [[_plan_term(c, labels, order) for c in chains]]
    if order == "optimal" and len(chains) > 1:  # per-path optima may share less than a pure order
        candidates += [[_plan_term(c, labels, o) for c in chains] for o in ("reverse", "forward")]
    costs = [(_share(ts), max(t.largest_intermediate for t in ts)) for ts in candidates]
    terms = candidates[costs.index(min(costs))]
    p = Plan(y, x, order, "paths", hold, terms=terms)
    p.flops = _share(terms)
    p.largest_intermediate = max(t.largest_intermediate for t in p.terms)
    p.largest_operand = max(math.prod(s) for t in p.terms for s in t.shapes)
    if order == "optimal" and len(chains) > 1 and y.size > 1 and x.size > 1:
        # cross-country: node-by-node accumulation may share more (for a gradient, reverse paths already
        # share every product from y down: that is reverse accumulation)
        both = [_plan_accumulate(y, x, nodes, labels, o, hold) for o in ("reverse", "forward")]
        best = min(both, key=lambda q: (q.flops, q.largest_intermediate))
        if best.flops < p.flops:
            return best
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


def _oriented(arr: np.ndarray, have: str, want: str) -> np.ndarray:
    """``arr`` (axes labelled ``have``) as a view with axes labelled ``want``."""
    return arr if have == want else arr.transpose([have.index(c) for c in want])


# ---------------------------------------------------------------- the executor
class _Products:
    """Local Jacobians and partial products by key, each freed after its last use."""

    def __init__(self, p: Plan):
        self.uses = _uses(p.terms)
        self.edges: Dict[Key, Tuple[Node, Node]] = {}
        self.labels: Dict[Key, str] = {}
        for t in p.terms:
            for (c, q), sub in zip(t.operands, t.equation.split("->")[0].split(",")):
                self.edges[frozenset([_edge(c, q)])] = (c, q)
                self.labels[frozenset([_edge(c, q)])] = sub
        self.cache: Dict[Key, Tuple[np.ndarray, str]] = {}
        self.y, self.x = p.y, p.x
        self.what = f"jacobian d{p.y.name}/d{p.x.name}"

    def build(self, key: Key) -> Tuple[np.ndarray, str]:
        child, parent = self.edges[key]
        memory.check_bytes(child.shape + parent.shape, child.dtype, f"jacobian of {child.op.name} ({child.name})")
        return local_jacobian(child, parent), self.labels[key]

    def take(self, key: Key, want: str) -> np.ndarray:
        entry = self.cache.get(key)
        if entry is None:  # only a local Jacobian can be missing: build it now
            entry = self.build(key)
        self.uses[key] -= 1
        if self.uses[key] > 0:
            self.cache[key] = entry
        else:
            self.cache.pop(key, None)
        return _oriented(entry[0], entry[1], want)

    def put(self, key: Key, value: np.ndarray, labels: str) -> None:
        if self.uses.get(key, 0) > 0:
            self.cache[key] = (value, labels)

    def step(self, einsum_str: str, tensors: List[np.ndarray], t: PathTerm) -> np.ndarray:
        out = einsum_str.split("->")[1]
        memory.check_bytes([t.size_dict[c] for c in out], self.y.dtype, f"{self.what}: contraction step {einsum_str}")
        return step(einsum_str, tensors)

    def add(self, total: Optional[np.ndarray], r: np.ndarray) -> np.ndarray:
        if total is None:
            total = np.asarray(r, dtype=self.y.dtype, order="C")  # steps may hand back a transposed view
            return total.copy() if not total.flags.writeable else total  # never add into a read-only local J
        total += r
        return total


class _Ledger(_Products):
    """The executor's schedule run on sizes: the elements held at once at the worst moment of the call
    (what the cache keeps for later paths, what a step holds, building a local Jacobian, the sum)."""

    def __init__(self, p: Plan, extra: Callable[[Node, Node], int]):
        super().__init__(p)
        self.extra = extra
        self.sizes: Dict[Key, int] = {}
        self.flight = 0  # taken from the cache for the step at hand
        self.total = 0
        self.peak = 0

    def _held(self, more: int) -> None:
        self.peak = max(self.peak, sum(self.sizes.values()) + self.flight + self.total + more)

    def take(self, key: Key, want: str) -> int:  # type: ignore[override]
        size = self.sizes.pop(key, None)
        if size is None:
            child, parent = self.edges[key]
            size = math.prod(child.shape + parent.shape)
            self._held(size + self.extra(child, parent))
        self.uses[key] -= 1
        if self.uses[key] > 0:
            self.sizes[key] = size
            return 0  # still counted in the cache
        self.flight += size
        return size

    def put(self, key: Key, value: int, labels: str) -> None:  # type: ignore[override]
        if self.uses.get(key, 0) > 0:
            self.sizes[key] = value

    def step(self, einsum_str: str, tensors: List[int], t: PathTerm) -> int:  # type: ignore[override]
        ins, out = einsum_str.split("->")
        n = math.prod(t.size_dict[c] for c in out)
        self._held(sum(math.prod(t.size_dict[c] for c in s) for s in ins.split(",")) + 2 * n)  # copies, product
        self.flight -= sum(tensors)
        return n

    def add(self, total: Optional[int], r: int) -> int:  # type: ignore[override]
        if total is None:  # the sum over paths starts as a C-ordered copy of the first
            self.total = math.prod(self.y.shape + self.x.shape)
            self._held(0)
        self.flight -= r
        return self.total


def _walk(p: Plan, store: _Products) -> object:
    """The paths strategy's schedule: each path's steps (a product an earlier path made is reused), summed."""
    total = None
    for t in p.terms:
        pending: List[Key] = [frozenset([_edge(c, q)]) for c, q in t.operands]
        for (inds, _removed, einsum_str, _rest, _blas), key, again in zip(t.steps, t.step_keys, t.reused):
            picked = [pending.pop(i) for i in inds]
            pending.append(key)
            if again:
                continue
            inputs, out = einsum_str.split("->")
            tensors = [store.take(k, s) for k, s in zip(picked, inputs.split(","))]
            result = store.step(einsum_str, tensors, t)
            del tensors
            store.put(key, result, out)
            del result
        r = store.take(pending[0], t.equation.split("->")[1])
        total = store.add(total, r)
        del r
    return total


def _uses(terms: List[PathTerm]) -> Dict[Key, int]:
    """How many executed steps (and path sums) read each local Jacobian or product."""
    uses: Dict[Key, int] = {}
    for t in terms:
        pending: List[Key] = [frozenset([_edge(c, p)]) for c, p in t.operands]
        for (inds, *_), key, again in zip(t.steps, t.step_keys, t.reused):
            picked = [pending.pop(i) for i in inds]
            if not again:
                for k in picked:
                    uses[k] = uses.get(k, 0) + 1
            pending.append(key)
        (last,) = pending
        uses[last] = uses.get(last, 0) + 1
    return uses


def execute(p: Plan) -> np.ndarray:
    """Execute a :class:`Plan`; the result is C-contiguous, of shape y.shape + x.shape.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.ones(3), name="x")
    >>> A = 2 * np.eye(3)
    >>> execute(jx.plan(A @ (A @ x), x, "reverse")).diagonal().tolist()
    [4.0, 4.0, 4.0]
    """
    y, x = p.y, p.x
    shape = y.shape + x.shape
    what = f"jacobian d{y.name}/d{x.name}"
    dtype = np.result_type(y.dtype, x.dtype)
    if p.strategy == "independent":
        return memory.zeros(shape, dtype, what)
    if p.strategy == "identity":
        return identity(x.shape, dtype, what)
    extra = _memo(local_extra)
    memory.check_plan(p, extra)  # every local Jacobian and intermediate priced before any is built
    if p.strategy == "accumulate":
        memory.check_bytes((_accumulate_peak(p, extra),), y.dtype, f"{what}: the partials node-by-node "
                                                                     "accumulation holds at once, with a step's arrays")
        return _execute_accumulate(p, what)
    ledger = _Ledger(p, extra)
    _walk(p, ledger)  # then what the schedule holds at once, the cache for later paths included
    memory.check_bytes((ledger.peak,), y.dtype, f"{what}: the arrays the plan holds at once (local Jacobians and "
                                                 "products kept for later paths, a step's operands and product)")
    total = _walk(p, _Products(p))
    return np.asarray(total).reshape(shape)


def _accumulate_peak(p: Plan, extra: Callable[[Node, Node], int]) -> int:
    """Elements :func:`_execute_accumulate` holds at its worst moment, from shapes: the partials still
    needed, and in a step the local Jacobian (with what building it holds), the product and a new sum."""
    y, x = p.y, p.x
    nodes = between(y, x, p.hold)
    inside = {n.id: n for n in nodes}
    peak = 0
    if p.order == "reverse":  # rows dy/dn: the sweep keeps one per node that still has parents to reach
        held: Dict[int, int] = {}
        for n in reversed(nodes):
            if n.id != y.id and n.id not in held:
                continue
            g = held.pop(n.id, 0)  # the identity at y costs nothing
            if n.id == x.id:
                break
            for q in {r.id: r for r in n.parents if r.id in inside}.values():
                local = n.size * q.size
                out = y.size * q.size
                peak = max(peak, sum(held.values()) + g + local + extra(n, q) + 2 * out)
                held[q.id] = out
        return peak
    remaining = _uses_left(nodes)
    acc: Dict[int, int] = {x.id: 0}  # columns dn/dx; the identity at x costs nothing
    for n in nodes[1:]:
        for q in _forward_parents(n, inside, x):
            local, column = n.size * q.size, n.size * x.size
            held = sum(acc.values())
            product = 0 if q.id == x.id else 2 * column  # the product, and a C-ordered copy of it
            peak = max(peak, held + local + extra(n, q), held + local + product)
            remaining[q.id] -= 1
            if remaining[q.id] == 0 and q.id != x.id:
                acc.pop(q.id)
            if n.id in acc:  # added in place, the contribution beside the sum
                peak = max(peak, sum(acc.values()) + (local if q.id == x.id else column))
            acc[n.id] = column
    return peak


def _memo(fn):  # type: ignore[no-untyped-def]
    """``fn(child, parent)`` computed once per edge."""
    seen: Dict[Tuple[int, int], int] = {}

    def once(child: Node, parent: Node) -> int:
        key = (child.id, parent.id)
        if key not in seen:
            seen[key] = fn(child, parent)
        return seen[key]

    return once


def _execute_accumulate(p: Plan, what: str) -> np.ndarray:
    y, x = p.y, p.x
    nodes = between(y, x, p.hold)
    eqs = {(c.id, q.id): eq for eq, (c, q), _ in p.steps}
    if p.order == "reverse":  # rows dy/dn pulled back edge by edge; None is the identity at y
        def pull(n: Node, q: Node, A: Optional[np.ndarray]) -> np.ndarray:
            J = local_jacobian(n, q)
            return J if A is None else pairwise(eqs[(n.id, q.id)], A, J)

        return np.asarray(reverse_sweep(nodes, y, x, None, pull), order="C")
    # forward: columns dn/dx pushed forward node by node; None is the identity at x. A partial is freed
    # right after its last use, and a node's second contribution is added in place: no third copy.
    remaining = _uses_left(nodes)
    inside = {m.id: m for m in nodes}
    acc: Dict[int, Optional[np.ndarray]] = {x.id: None}
    for n in nodes[1:]:
        for q in _forward_parents(n, inside, x):
            T = acc[q.id]
            J = local_jacobian(n, q)
            if T is None:
                contribution = J
            elif remaining[q.id] == 1 and _in_place(eqs[(n.id, q.id)], J, T, n, q):
                contribution = _product_into(J, T, n, x)  # dn/dx in dq/dx's memory: its last use
            else:
                contribution = pairwise(eqs[(n.id, q.id)], J, T)
            del J, T
            remaining[q.id] -= 1
            if remaining[q.id] == 0 and q.id != x.id:
                acc.pop(q.id)
            if n.id not in acc:
                acc[n.id] = contribution  # ours (J or a fresh product), in whatever order the product left it
            else:
                acc[n.id] += contribution
            del contribution
    return np.asarray(acc[y.id], order="C")


IN_PLACE_BLOCKS = 16  # column blocks of an in-place product: its temporary is 1/16 of the result


def _in_place(eq: str, J: np.ndarray, T: np.ndarray, n: Node, q: Node) -> bool:
    """Whether dn/dx = dn/dq · dq/dx can be written into T's own memory: T (dq/dx, at its last use: a local
    Jacobian or a product this sweep made, never a node's value) is writable and C-ordered, J a C-ordered
    dn/dq, the equation their matrix product, and n as large as q."""
    if n.size != q.size or not (T.flags.c_contiguous and T.flags.writeable) or not J.flags.c_contiguous:
        return False
    ins, out = eq.split("->")
    j, t = ins.split(",")
    a, b = j[:n.ndim], j[n.ndim:]
    return len(set(j + t)) == len(j) + len(t) - len(b) and t.startswith(b) and out == a + t[len(b):]


def _product_into(J: np.ndarray, T: np.ndarray, n: Node, x: Node) -> np.ndarray:
    """J · T written over T, block of columns by block of columns: each block of the product needs only the
    same block of T, so the product takes T's place and holds one block beside it, not a second result."""
    Jm, Tm = J.reshape(n.size, -1), T.reshape(-1, x.size)
    width = -(-x.size // IN_PLACE_BLOCKS)
    for k in range(0, x.size, width):
        Tm[:, k:k + width] = Jm @ Tm[:, k:k + width]
    return T.reshape(n.shape + x.shape)


def _forward_parents(n: Node, inside: Dict[int, Node], x: Node) -> List[Node]:
    """n's parents on the paths from x, x itself last: a product with a partial comes first (and frees
    the partial), then x's contribution, the local Jacobian itself, is added in place."""
    return sorted({r.id: r for r in n.parents if r.id in inside}.values(), key=lambda r: r.id == x.id)


def _uses_left(nodes: List[Node]) -> Dict[int, int]:
    """How many children (edges to a later node) each node still feeds in forward accumulation."""
    left: Dict[int, int] = {}
    for _c, q in edges(nodes):
        left[q.id] = left.get(q.id, 0) + 1
    return left
