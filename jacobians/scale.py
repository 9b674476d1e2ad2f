"""Jacobians larger than memory: a lazy dask array, each block computed on its own from the factored products.

``jx.jacobian(y, x, chunks="128MiB")`` (through :func:`jacobians.api.jacobian`)
returns a ``dask.array.Array`` of shape ``y.shape + x.shape`` instead of an
ndarray. Nothing is computed until dask asks for a block; then one task builds
that block, and only it, from the products of :mod:`jacobians.factored`:

* each product is ``coef · einsum(small factors)``, tied and broadcast into the
  output (:class:`jacobians.elimination.Reduced`). Its factors are sliced along
  the axes whose labels are free, to the block's index range on that axis;
* a tie (a delta between two free labels, ``δ_ca``) restricts both labels to
  the intersection of their ranges: the product lands on the diagonal part of
  the block, through a tied view of the sub-block where the ranges meet, and
  a block where they do not meet gets nothing from it;
* a free label in no factor is a broadcast: the product repeats along that axis.

So a task touches the small factors and its own block, never the whole
Jacobian, nor any local Jacobian. Where the factored plan falls back (too many
products, more indices than einsum takes) or would carry a whole local
Jacobian as a factor (a reshape that mixes axes), the block is computed by
the VJP route instead: one pull-back
(:func:`jacobians.vjp_route.backward`) per output entry of the block, with a
basis cotangent, each row cut to the block's input range. The dense chain is
never built.

The blocks need only numpy; the dask array around them needs the ``scale``
extra (``pip install "jacobians[scale]"``). The seed-1 graph, one block:

>>> import numpy as np, jacobians as jx
>>> X = jx.var(np.random.default_rng(1).standard_normal((4, 3)), name="X")
>>> Y = (X @ X.T) @ X
>>> plan = plan_blocks(Y, X)
>>> plan.route, len(plan.terms)
('products', 3)
>>> B = block(plan, ((1, 3), (0, 3), (0, 2), (1, 3)))      # J[1:3, :, 0:2, 1:3]
>>> bool(np.allclose(B, jx.jacobian(Y, X)[1:3, :, 0:2, 1:3]))
True
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import memory
from .memory import suggested_chunks
from .elimination import Operand, Prepared, Reduced, land, prepare
from .factored import FactoredFallback, plan_factored
from .graph import ancestors, between, edges
from .kernel import TooManyIndices
from .node import Node
from .vjp_route import backward

__all__ = ["INSTALL", "Term", "BlockPlan", "plan_blocks", "block", "jacobian_chunked", "normalize",
           "suggested_chunks", "require_dask"]

INSTALL = 'pip install "jacobians[scale]"'
Ranges = Tuple[Tuple[int, int], ...]  # per axis of the Jacobian: [start, stop)
Chunks = Union[str, int, Sequence[Any], Dict[int, Any]]


# ----------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Term:
    """One product as plain data: ``coef · einsum(values)``, tied and broadcast into the Jacobian.

    ``labels[k]`` labels ``values[k]``; a label that is a free label (one of
    :attr:`BlockPlan.free`) runs along a Jacobian axis, any other is summed.
    ``ties`` are groups of free labels held equal; ``rep`` maps each free
    label to the one that stands for its group (the one the factors carry).
    """

    coef: float
    values: Tuple[np.ndarray, ...]
    labels: Tuple[str, ...]
    ties: Tuple[Tuple[str, ...], ...] = ()
    rep: Tuple[Tuple[str, str], ...] = ()

    def reduced(self) -> Reduced:
        """The labels-only :class:`~jacobians.elimination.Reduced` that :func:`~jacobians.elimination.prepare` reads."""
        return Reduced(self.coef, [Operand(None, lab) for lab in self.labels], list(self.ties), dict(self.rep))


@dataclass
class BlockPlan:
    """Everything a block task needs, planned once per Jacobian; small and picklable.

    ``route`` is ``"products"`` (blocks from :attr:`terms`; no terms means
    zeros) or ``"rows"`` (the VJP route; :attr:`nodes` holds y, x and the held
    nodes, :attr:`reason` says why the factored plan gave way). ``limit`` is
    the memory limit in force when the plan was made: every task runs under it.
    """

    y_shape: Tuple[int, ...]
    x_shape: Tuple[int, ...]
    dtype: np.dtype
    route: str
    limit: int
    what: str
    free: str = ""
    sizes: Dict[str, int] = field(default_factory=dict)  # the summed labels' lengths
    terms: List[Term] = field(default_factory=list)
    nodes: Tuple[Node, ...] = ()
    reason: str = ""

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.y_shape + self.x_shape

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        """Pickled with its nodes as plain data (nodes are immutable and refuse unpickling), rebuilt on load."""
        fields = {k: v for k, v in self.__dict__.items() if k != "nodes"}
        return _unpack, (fields, _pack(self.nodes))


Spec = Tuple[List[Tuple[Any, ...]], Tuple[int, ...]]  # (per node: value, op, parents, params, name, kind; positions)


def _pack(nodes: Sequence[Node]) -> Spec:
    """The graph above ``nodes`` as plain data, parents before children, and where each of ``nodes`` sits in it."""
    pos: Dict[int, int] = {}
    entries: List[Tuple[Any, ...]] = []
    for n in nodes:
        for a in ancestors(n):
            if a.id not in pos:
                pos[a.id] = len(entries)
                entries.append((a.value, a.op, tuple(pos[p.id] for p in a.parents), dict(a.params), a._name, a.kind))
    return entries, tuple(pos[n.id] for n in nodes)


def _unpack(fields: Dict[str, Any], spec: Spec) -> "BlockPlan":
    """A :class:`BlockPlan` with its graph rebuilt from :func:`_pack`'s data (the same values and ops, new ids)."""
    entries, where = spec
    made: List[Node] = []
    for value, op, parents, params, name, kind in entries:
        made.append(Node(value, op, tuple(made[i] for i in parents), params, name, kind))
    return BlockPlan(nodes=tuple(made[i] for i in where), **fields)


def _labels(n: int) -> str:
    """n distinct labels for the Jacobian's axes (any characters: einsum equations are renamed to letters)."""
    return "".join(chr(0x4E00 + k) for k in range(n))


def _rows(y: Node, x: Node, hold: Tuple[Node, ...], limit: int, what: str, reason: str) -> BlockPlan:
    return BlockPlan(y.shape, x.shape, np.result_type(y.dtype, x.dtype), "rows", limit, what + " (vjp route)",
                     nodes=(y, x) + hold, reason=reason)


def _mixes_axes(y: Node, x: Node, hold: Tuple[Node, ...]) -> str:
    """The first op between x and y whose form is ``δ(flat(out), flat(in))`` (a reshape mixing axes), or "".

    The factored route writes that delta as a 0/1 matrix, a whole local Jacobian; blocks take the VJP route instead.
    """
    for child, parent in edges(between(y, x, hold)):
        values = [p.value for p in child.parents]
        for i, p in enumerate(child.parents):
            if p.id == parent.id and child.op.form(i, child.value, *values, **child.params).flat:
                return (f"op {child.op.name!r} ({child.name}) is δ(flat(out), flat(in)), no product of per-axis "
                        "deltas: its factor would be a whole local Jacobian")
    return ""


def plan_blocks(y: Node, x: Node, method: str = "auto", order: str = "optimal",
                hold: Sequence[Node] = ()) -> BlockPlan:
    """Plan the blocks of dy/dx: the factored products as plain data, or the VJP route where they give way.

    ``method`` is ``"auto"`` or ``"factored"`` (products, falling back to rows)
    or ``"vjp"`` (rows always); ``order`` is passed to the factored plan.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.linspace(0.2, 0.9, 3), name="x")
    >>> y = x
    >>> for _ in range(7):
    ...     y = y * jx.sin(y)                 # 2⁷ products: the factored plan gives way
    >>> p = plan_blocks(y, x)
    >>> p.route, p.reason
    ('rows', '128 products of local terms along the paths x → multiply#... exceed max_products=64')
    >>> bool(np.allclose(block(p, ((0, 2), (1, 3))), jx.jacobian(y, x)[0:2, 1:3]))
    True
    """
    if method not in ("auto", "factored", "vjp"):
        raise ValueError(f"jacobian: chunks= computes blocks by the factored route (method='auto' or 'factored') "
                         f"or by the VJP route (method='vjp'), not method={method!r}")
    hold = tuple(hold)
    limit = memory.get_memory_limit()
    what = f"jacobian d{y.name}/d{x.name}, one block"
    if method == "vjp":
        return _rows(y, x, hold, limit, what, "method='vjp'")
    if y.id != x.id and y.size != 1:  # a gradient is one reverse sweep: it pulls a cotangent through a reshape
        flat = _mixes_axes(y, x, hold)
        if flat:
            return _rows(y, x, hold, limit, what, flat)
    try:
        fp = plan_factored(y, x, order, hold)  # type: ignore[arg-type]
    except (FactoredFallback, TooManyIndices, memory.JacobianTooLarge) as exc:  # a flat reshape's 0/1 matrix
        return _rows(y, x, hold, limit, what, str(exc))
    n, m = y.ndim, x.ndim
    if fp.strategy == "dense":
        return _rows(y, x, hold, limit, what, fp.reason)
    if fp.strategy == "independent":
        return BlockPlan(y.shape, x.shape, np.result_type(y.dtype, x.dtype), "products", limit, what,
                         free=_labels(n + m))
    base = BlockPlan(y.shape, x.shape, np.dtype(y.dtype), "products", limit, what)
    if fp.strategy == "identity":  # δ on every axis pair (i, n + i)
        free = _labels(2 * n)
        base.free = free
        base.terms = [Term(1.0, (), (), tuple((free[i], free[n + i]) for i in range(n)),
                           tuple((c, free[k % n]) for k, c in enumerate(free)))]
        return base
    if fp.strategy == "reverse":  # y is a scalar: the Jacobian is the gradient (x's size), one factor
        free = _labels(n + m)
        g = np.ascontiguousarray(fp.execute()).reshape(x.shape)
        base.free = free
        base.terms = [Term(1.0, (g,), (free[n:],), (), tuple((c, c) for c in free))]
        return base
    base.free = fp.free
    for r in fp.products:
        values = tuple(np.asarray(o.value) for o in r.operands)
        for o, v in zip(r.operands, values):
            base.sizes.update((c, s) for c, s in zip(o.labels, v.shape) if c not in fp.free)
        base.terms.append(Term(float(r.coef), values, tuple(o.labels for o in r.operands),
                               tuple(tuple(g) for g in r.ties), tuple(r.rep.items())))
    return base


# ---------------------------------------------------------------- one block
def _piece(plan: BlockPlan, t: Term, ranges: Ranges
           ) -> Optional[Tuple[Tuple[slice, ...], List[np.ndarray], Prepared]]:
    """Where term ``t`` lands in the block (a sub-block), its sliced factors and its einsum; None if it misses."""
    span = dict(zip(plan.free, ranges))
    rep = dict(t.rep)
    meet: Dict[str, Tuple[int, int]] = {}  # group representative -> the intersection of its axes' ranges
    for c in plan.free:
        r, (lo, hi) = rep[c], span[c]
        a, b = meet.get(r, (lo, hi))
        meet[r] = (max(a, lo), min(b, hi))
    if any(b <= a for a, b in meet.values()):
        return None
    sub = tuple(slice(meet[rep[c]][0] - span[c][0], meet[rep[c]][1] - span[c][0]) for c in plan.free)
    values = [v[tuple(slice(*meet[c]) if c in meet else slice(None) for c in lab)]
              for v, lab in zip(t.values, t.labels)]
    sizes = dict(plan.sizes)
    sizes.update((r, b - a) for r, (a, b) in meet.items())
    return sub, values, prepare(t.reduced(), plan.free, sizes)


def _products_block(plan: BlockPlan, ranges: Ranges) -> np.ndarray:
    shape = tuple(b - a for a, b in ranges)
    pieces = [(t.coef,) + p for t in plan.terms for p in [_piece(plan, t, ranges)] if p is not None]
    pieces.sort(key=lambda p: bool(p[3].pairs))  # untied first: it covers the block and is assigned
    for _, _, values, prep in pieces:  # an einsum's intermediates are priced like the block
        if prep.comp is not None and prep.comp.largest > math.prod(shape):
            memory.check_bytes((prep.comp.largest,), plan.dtype, f"{plan.what}, an intermediate of {prep.eq}")
    fresh = bool(pieces) and not pieces[0][3].pairs
    B = memory.empty(shape, plan.dtype, plan.what) if fresh else memory.zeros(shape, plan.dtype, plan.what)
    for n, (coef, sub, values, prep) in enumerate(pieces):
        land(B[sub] if B.ndim else B, values, coef, prep, assign=fresh and n == 0)  # a view (B[()] is a scalar)
    return B


def _rows_block(plan: BlockPlan, ranges: Ranges) -> np.ndarray:
    y, x, hold = plan.nodes[0], plan.nodes[1], plan.nodes[2:]
    n = len(plan.y_shape)
    out_ranges, in_ranges = ranges[:n], ranges[n:]
    shape = tuple(b - a for a, b in ranges)
    B = memory.zeros(shape, plan.dtype, plan.what)
    if math.prod(shape) == 0 or (y.id != x.id and not between(y, x, hold)):
        return B
    cut = tuple(slice(a, b) for a, b in in_ranges)
    e = np.zeros(y.shape, dtype=y.dtype)
    for idx in np.ndindex(*shape[:n]):  # one pull-back per output entry of the block: a row, cut to the block
        at = tuple(a + i for (a, _), i in zip(out_ranges, idx))
        e[at] = 1
        B[idx] = backward(y, x, e, hold)[cut]
        e[at] = 0
    return B


def block(plan: BlockPlan, ranges: Ranges) -> np.ndarray:
    """The block ``J[a0:b0, a1:b1, …]`` of the Jacobian, given ``ranges = ((a0, b0), (a1, b1), …)``.

    A fresh C-ordered ndarray, computed under the plan's memory limit; it is
    the task each chunk of :func:`jacobian_chunked` runs.

    >>> import numpy as np, jacobians as jx
    >>> a = jx.var(np.arange(3.0), name="a")
    >>> block(plan_blocks(a, a), ((0, 2), (1, 3))).tolist()      # a block of the identity
    [[0.0, 0.0], [1.0, 0.0]]
    """
    ranges = tuple((int(a), int(b)) for a, b in ranges)
    if len(ranges) != len(plan.shape) or any(not 0 <= a <= b <= s for (a, b), s in zip(ranges, plan.shape)):
        raise ValueError(f"block: ranges {ranges} do not fit the Jacobian's shape {plan.shape}")
    with memory.memory_limit(plan.limit):
        return _rows_block(plan, ranges) if plan.route == "rows" else _products_block(plan, ranges)


# ------------------------------------------------------------ the dask array
def require_dask() -> Any:
    """``dask.array``, or an ImportError that names the extra to install."""
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError(f"jacobian(..., chunks=...) returns a dask array and needs dask: {INSTALL}") from exc
    return da


def _divisors(n: int) -> List[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def even_blocks(shape: Tuple[int, ...], itemsize: int, budget: int,
                start: Sequence[int]) -> Optional[Tuple[int, ...]]:
    """Per axis a block length that divides the axis, the block at most ``budget`` bytes; None if none is near.

    From dask's lengths ``start``: each moved down to a divisor of its axis (no
    less than half of it, else None), then grown, axis by axis, to the next
    divisor while the block stays within the budget. A zarr store of such
    blocks has no padded edge chunk.

    >>> even_blocks((160,) * 4, 8, 128 * 2**20, (64,) * 4)       # dask's 64 leaves a ragged 32: 40, then grown
    (80, 80, 40, 40)
    >>> even_blocks((97, 10), 8, 2**10, (12, 10)) is None        # 97 is prime
    True
    """
    lengths = []
    for n, c in zip(shape, start):
        d = max([d for d in _divisors(n) if d <= max(c, 1)] or [n])
        if n and 2 * d < c:
            return None
        lengths.append(d if n else c)
    grew = True
    while grew:
        grew = False
        for k, n in enumerate(shape):
            bigger = [d for d in _divisors(n) if d > lengths[k]]
            if bigger and math.prod(lengths[:k] + [bigger[0]] + lengths[k + 1:]) * itemsize <= budget:
                lengths[k] = bigger[0]
                grew = True
    return tuple(lengths)


def normalize(chunks: Chunks, shape: Tuple[int, ...], dtype: Any,
              limit: Optional[int] = None) -> Tuple[Tuple[int, ...], ...]:
    """dask's chunk notation made explicit: per axis, the block lengths.

    Per-axis sizes, an int or a dict are dask's own. A byte size
    (``"64MiB"``) or ``"auto"`` (:func:`suggested_chunks`) is the largest a
    block may be: dask's choice, made regular with lengths that divide each
    axis where a divisor is near (:func:`even_blocks`), so that every block
    has the same shape and a zarr store pads none.

    >>> import pytest; _ = pytest.importorskip("dask.array")      # needs jacobians[scale]
    >>> normalize((3, 2), (4, 5), np.float64)
    ((3, 1), (2, 2, 1))
    >>> normalize("1KiB", (16, 16), np.float64)                   # dask alone: (11, 5) on each axis
    ((16,), (8, 8))
    """
    from dask.array.core import normalize_chunks
    from dask.utils import parse_bytes
    dtype = np.dtype(dtype)
    if isinstance(chunks, str) and 0 in shape:  # no entries: one (empty) block
        return tuple((n,) for n in shape)
    if isinstance(chunks, str):
        budget = parse_bytes(suggested_chunks(limit) if chunks.strip().lower() == "auto" else chunks)
        dask_way = normalize_chunks("auto", shape, dtype=dtype, limit=budget)
        even = even_blocks(shape, dtype.itemsize, budget, [c[0] if c else 0 for c in dask_way])
        return dask_way if even is None else normalize_chunks(even, shape, dtype=dtype)
    given = chunks.values() if isinstance(chunks, dict) else chunks if isinstance(chunks, (tuple, list)) else [chunks]
    sized = any(isinstance(c, str) and c != "auto" for c in given)  # a byte size given sets dask's limit itself
    auto = parse_bytes(suggested_chunks(limit))
    return normalize_chunks(chunks, shape, dtype=dtype, limit=None if sized else auto)


class _Payload:
    """The plan as one value in the task graph: every block task depends on its key (shipped once per worker)."""

    def __init__(self, plan: BlockPlan):
        self.plan = plan


def _task(payload: _Payload, ranges: Ranges) -> np.ndarray:
    return block(payload.plan, ranges)


def jacobian_chunked(y: Node, x: Node, chunks: Chunks, method: str = "auto", order: str = "optimal",
                     hold: Sequence[Node] = ()) -> Any:
    """dy/dx as a lazy ``dask.array.Array`` of shape ``y.shape + x.shape``, one task per block.

    The plan (the factored products, or the VJP route where they give way) is
    made now; each block is computed when dask asks for it, on the threaded
    scheduler or on a ``dask.distributed`` client alike. A block larger than
    the memory limit is refused now, with the guard's message.

    >>> import pytest; da = pytest.importorskip("dask.array")      # needs jacobians[scale]
    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.random.default_rng(1).standard_normal((4, 3)), name="X")
    >>> Y = (X @ X.T) @ X
    >>> J = jacobian_chunked(Y, X, chunks=(3, 2, 4, 3))
    >>> J.shape, J.numblocks
    ((4, 3, 4, 3), (2, 2, 1, 1))
    >>> bool(np.allclose(J.compute(), jx.jacobian(Y, X)))
    True
    """
    da = require_dask()
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    plan = plan_blocks(y, x, method, order, hold)
    shape = plan.shape
    normal = normalize(chunks, shape, plan.dtype, plan.limit)
    memory.check_bytes(tuple(max(c, default=0) for c in normal), plan.dtype, plan.what)  # the largest block
    token = tokenize(y.id, x.id, tuple(h.id for h in hold), normal, method, order, plan.limit)
    name, pay = f"jacobian-{token}", f"jacobian-plan-{token}"
    starts = [np.concatenate([[0], np.cumsum(c)]).astype(int).tolist() for c in normal]
    layer: Dict[Any, Any] = {}
    for idx in np.ndindex(*[len(c) for c in normal]):
        ranges = tuple((s[i], s[i + 1]) for s, i in zip(starts, idx))
        layer[(name,) + idx] = (functools.partial(_task, ranges=ranges), pay)
    graph = HighLevelGraph({pay: {pay: _Payload(plan)}, name: layer}, {pay: set(), name: {pay}})
    return da.Array(graph, name, normal, dtype=plan.dtype, meta=np.empty((0,) * len(shape), dtype=plan.dtype))
