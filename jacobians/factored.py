"""The factored route: the chain rule over Kronecker deltas and small arrays.

Every op declares its Jacobian as a sum of products of dense factors and
deltas (``dY[c,d]/dW[a,b] = δ_ca X[b,d]`` for ``Y = W X``). Along one path
x → … → y the chain rule multiplies those local forms, and a sum of terms
along the path expands into a sum of products. In each product:

* a delta whose index is summed is eliminated by renaming: ``Σ_c δ_ca F[c…]``
  is ``F[a…]``;
* opt_einsum plans the contraction of the dense factors that remain;
* a delta left between two free indices (an output index of y and an input
  index of x) is applied at the end as a diagonal scatter into the output,
  through :func:`jacobians.scatter.tied_view`, never as an identity matrix;
* a free index in no factor is a broadcast; a summed index in no factor
  multiplies by its length.

Contracting a cotangent G = dl/dY into the factored Jacobian the same way gives
the VJP shortcut: ``Σ_cd G_cd δ_ca X_bd = (G Xᵀ)_ab``. :func:`derive` prints it.
A gradient (a scalar y) is computed that way edge by edge: one reverse sweep,
each edge's cotangent contracted into its factored local Jacobian (the derived
VJP, planned once per op structure and shape), so it costs what the VJPs cost.

When the products along the paths of a full Jacobian would number more than
``max_products``, or an op declares no factored form, the plan says so and the
dense route of :mod:`jacobians.chain_rule` computes the Jacobian instead.

>>> import numpy as np, jacobians as jx
>>> X = jx.var(np.random.default_rng(0).standard_normal((4, 3)), name="X")
>>> W = X @ X.T
>>> Y = W @ X
>>> np.allclose(jx.jacobian(Y, X, method="factored"), jx.jacobian(Y, X))
True
>>> print(jx.derive(Y, W, names={W: "W", Y: "Y"}))
Σ G·dY/dW = G Xᵀ
  ad,bd->ab  (G, X)  =  G Xᵀ
"""
from __future__ import annotations

import itertools
import math
import string
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import opt_einsum as oe

from . import memory
from .chain_rule import ORDERS
from .chain_rule import plan as dense_plan
from .graph import between, edges
from .node import Node
from .registry import Factor, Factored, Product
from .scatter import tied_view

__all__ = ["MAX_PRODUCTS", "FactoredPlan", "plan_factored", "jacobian_factored", "derive", "Derivation",
           "DerivedTerm", "check_factored"]

MAX_PRODUCTS = 64  # expanded products along all paths before the dense fallback

Sym = Tuple[str, bool]  # (display name, transposed)


# ----------------------------------------------------------------- data
class _Operand:
    """A dense factor with its global labels; its display name is worked out only when asked for."""

    __slots__ = ("value", "labels", "_sym", "_how")

    def __init__(self, value: Optional[np.ndarray], labels: str, sym: Optional[Sym] = None,
                 how: Optional[Tuple[str, Node, "Names"]] = None):
        self.value = value  # None for the symbolic cotangent of derive
        self.labels = labels  # global labels, one per axis
        self._sym, self._how = sym, how

    @property
    def sym(self) -> Sym:
        if self._sym is None:
            self._sym = _resolve(*self._how)
        return self._sym

    def relabel(self, labels: str) -> "_Operand":
        return _Operand(self.value, labels, self._sym, self._how)


@dataclass
class _Raw:
    """One product before elimination: coef · Π operands · Π deltas, summed over ``inner``."""

    coef: float
    operands: List[_Operand]
    deltas: List[Tuple[str, str]]
    inner: List[str]


@dataclass
class Reduced:
    """One product after delta elimination: coef · einsum(operands), tied and broadcast into the output."""

    coef: float
    operands: List[_Operand]
    ties: List[Tuple[str, ...]]  # groups of free labels held equal (the diagonal scatter)
    rep: Dict[str, str]  # free label -> the label that stands for its group


class _Fallback(Exception):
    """The factored plan gives way to the dense route; the message says why."""


Names = Dict[int, str]  # node id -> display name


def _node_sym(n: Node, names: Names) -> Sym:
    """The node's display name; an unnamed transpose of a matrix reads as its parent, transposed."""
    if n.id in names:
        return names[n.id], False
    if n._name is None and n.op is not None and n.op.name == "transpose" and n.ndim == 2:
        base, t = _node_sym(n.parents[0], names)
        return base, not t
    return n.name, False


def _resolve(template: str, child: Node, names: Names) -> Sym:
    """A factor's name: the node itself for ``{x0}``/``{y}``, else the template filled with node names."""
    nodes = {f"x{k}": p for k, p in enumerate(child.parents)}
    nodes["y"] = child
    if template.startswith("{") and template.endswith("}") and template[1:-1] in nodes:
        return _node_sym(nodes[template[1:-1]], names)
    try:
        return template.format(**{k: _text(_node_sym(v, names)) for k, v in nodes.items()}), False
    except (KeyError, IndexError, ValueError):
        return template, False


# ------------------------------------------------------------- checking
def check_factored(F: Factored, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...], what: str) -> None:
    """Raise ValueError unless ``F``'s labels fit an out_shape + in_shape Jacobian.

    >>> from jacobians.registry import Factored, Product
    >>> check_factored(Factored("i", "p", (Product((), ("ip",)),)), (2,), (3,), "op 'demo'")
    Traceback (most recent call last):
    ...
    ValueError: op 'demo': δ_ip ties axes of lengths 2 and 3; a delta joins indices of equal length
    """
    if len(F.out) != len(out_shape) or len(F.inp) != len(in_shape):
        raise ValueError(f"{what}: factored form labels out {F.out!r} and in {F.inp!r} but the Jacobian is "
                         f"{tuple(out_shape)} + {tuple(in_shape)}; give one letter per axis")
    if len(set(F.out + F.inp)) != len(F.out) + len(F.inp):
        raise ValueError(f"{what}: factored form labels out {F.out!r} and in {F.inp!r} repeat a letter; "
                         "use a distinct letter for every axis (a delta says two indices are equal)")
    if F.flat and math.prod(out_shape) != math.prod(in_shape):
        raise ValueError(f"{what}: δ(flat(out), flat(in)) needs sizes that match, got {tuple(out_shape)} and "
                         f"{tuple(in_shape)}")
    sizes = dict(zip(F.out + F.inp, tuple(out_shape) + tuple(in_shape)))
    for t in F.terms:
        for f in t.factors:
            if np.ndim(f.value) != len(f.labels):
                raise ValueError(f"{what}: factor {f.name!r} has {np.ndim(f.value)} axes but labels {f.labels!r}")
            for c, n in zip(f.labels, np.shape(f.value)):
                if sizes.setdefault(c, n) != n:
                    raise ValueError(f"{what}: factor {f.name!r} gives index {c} length {n}, elsewhere {sizes[c]}")
        for d in t.deltas:
            if len(d) != 2 or any(c not in sizes for c in d):
                raise ValueError(f"{what}: delta {d!r} must name two indices of the output, input or a factor")
            if sizes[d[0]] != sizes[d[1]]:
                raise ValueError(f"{what}: δ_{d} ties axes of lengths {sizes[d[0]]} and {sizes[d[1]]}; "
                                 "a delta joins indices of equal length")


# -------------------------------------------------------------- expansion
class _Labels:
    """Global einsum labels: one run per node, fresh ones for indices inside a factored form."""

    def __init__(self, nodes: Sequence[Node]):
        self.k = 0
        self.of: Dict[int, str] = {n.id: self.fresh(n.ndim) for n in nodes}

    def fresh(self, n: int) -> str:
        out = "".join(map(chr, range(0x4E00 + self.k, 0x4E00 + self.k + n)))  # any distinct characters
        self.k += n
        return out


def _local_products(child: Node, parent: Node, labels: _Labels, sizes: Dict[str, int],
                    names: Names) -> List[_Raw]:
    """The factored local Jacobian d child / d parent with global labels (summed over repeated inputs)."""
    op = child.op
    if op is None or op.factored is None:
        raise _Fallback(f"op {op.name if op else '?'!r} ({child.name}) declares no factored Jacobian")
    values = [p.value for p in child.parents]
    out: List[_Raw] = []
    for i, p in enumerate(child.parents):
        if p.id != parent.id:
            continue
        F = op.factored[i](child.value, *values, **child.params)
        what = f"op {op.name!r} ({child.name}), input {i}"
        if len(F.out) != child.ndim or len(F.inp) != parent.ndim:
            check_factored(F, child.shape, parent.shape, what)
        if F.flat:  # δ(flat(out), flat(in)) is no product of per-axis deltas: its 0/1 matrix is the factor
            E = memory.zeros(child.shape + parent.shape, child.dtype, f"{what}: the 0/1 matrix of a reshape")
            np.fill_diagonal(E.reshape(child.size, parent.size), 1)
            F = Factored(F.out, F.inp, F.terms + (Product((Factor(E, F.out + F.inp, "I_flat"),)),))
        rename = dict(zip(F.out, labels.of[child.id]))
        rename.update(zip(F.inp, labels.of[parent.id]))
        for t in F.terms:
            extra = sorted({c for f in t.factors for c in f.labels if c not in rename})
            local = dict(rename, **dict(zip(extra, labels.fresh(len(extra)))))
            ops = []
            for f in t.factors:
                glab = "".join(local[c] for c in f.labels)
                v = np.asarray(f.value, dtype=child.dtype)
                for c, n in zip(glab, v.shape):
                    sizes.setdefault(c, n)
                ops.append(_Operand(v, glab, how=(f.name, child, names)))
            deltas = [(local[d[0]], local[d[1]]) for d in t.deltas]
            out.append(_Raw(float(t.coef), ops, deltas, [local[c] for c in extra]))
    return out


def _eliminate(raw: _Raw, free: str, sizes: Dict[str, int]) -> Reduced:
    """Rename away every delta; what is left between free labels becomes a tie."""
    parent: Dict[str, str] = {}

    def find(a: str) -> str:
        while parent.get(a, a) != a:
            a = parent[a]
        return a

    for a, b in raw.deltas:
        if sizes[a] != sizes[b]:
            raise ValueError(f"factored route: a delta ties indices of lengths {sizes[a]} and {sizes[b]}")
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    rank = {c: k for k, c in enumerate(free)}
    best: Dict[str, str] = {}  # class root -> its earliest free label
    for c in free:
        r = find(c)
        if r not in best:
            best[r] = c

    def name(c: str) -> str:
        r = find(c)
        return best.get(r, r)

    operands = [o.relabel("".join(name(c) for c in o.labels)) for o in raw.operands]
    present = {c for o in operands for c in o.labels}
    coef = raw.coef
    for c in {name(c) for c in raw.inner} - set(rank):  # summed, in no factor: Σ_c 1 = n
        if c not in present:
            coef *= sizes[c]
    groups: Dict[str, List[str]] = {}
    for c in free:
        groups.setdefault(name(c), []).append(c)
    ties = [tuple(g) for g in groups.values() if len(g) > 1]
    return Reduced(coef, operands, ties, {c: name(c) for c in free})


def _merge(products: List[Reduced], prepared: List["_Prepared"]) -> Tuple[List[Reduced], List["_Prepared"]]:
    """Add up products that are the same contraction of the same arrays (``Y ⊙ Y`` gives two)."""
    keep: "OrderedDict[tuple, int]" = OrderedDict()
    out_r: List[Reduced] = []
    out_p: List[_Prepared] = []
    for r, p in zip(products, prepared):
        key = (p.eq, tuple(id(o.value) for o in r.operands), tuple(p.pairs), p.shape)
        if key in keep:
            out_r[keep[key]].coef += r.coef
        else:
            keep[key] = len(out_r)
            out_r.append(r)
            out_p.append(p)
    return out_r, out_p


def _expand(y: Node, x: Node, hold: Sequence[Node], max_products: int, cotangent: bool = False,
            names: Optional[Names] = None) -> Optional[Tuple[List[Reduced], str, Dict[str, int], _Labels]]:
    """Every product of local terms along every path x → y, deltas eliminated.

    With ``cotangent`` the products start with a symbolic G of y's shape and
    y's indices are summed (a VJP); otherwise they are free (the Jacobian).
    None when y does not depend on x.
    """
    nodes = between(y, x, hold)
    if not nodes:
        return None
    labels = _Labels(nodes)
    sizes: Dict[str, int] = {}
    for n in nodes:
        sizes.update(zip(labels.of[n.id], n.shape))
    local: Dict[Tuple[int, int], List[_Raw]] = {}
    children: Dict[int, List[Node]] = {n.id: [] for n in nodes}
    for child, parent in edges(nodes):
        local[(child.id, parent.id)] = _local_products(child, parent, labels, sizes, names or {})
        children[parent.id].append(child)
    count: Dict[int, int] = {y.id: 1}  # products from each node to y
    for n in reversed(nodes[:-1]):
        count[n.id] = sum(len(local[(c.id, n.id)]) * count[c.id] for c in children[n.id])
    if count[x.id] > max_products:
        raise _Fallback(f"{count[x.id]} products of local terms along the paths {x.name} → {y.name} "
                        f"exceed max_products={max_products}")
    free = labels.of[x.id] if cotangent else labels.of[y.id] + labels.of[x.id]
    head = [_Operand(None, labels.of[y.id], ("G", False))] if cotangent else []
    products: List[Reduced] = []
    stack: List[List[Node]] = [[x]]
    while stack:  # depth-first over paths x → y
        path = stack.pop()
        if path[-1].id != y.id:
            stack.extend(path + [c] for c in reversed(children[path[-1].id]))
            continue
        steps = [local[(path[k + 1].id, path[k].id)] for k in reversed(range(len(path) - 1))]  # y end first
        inner = [c for n in path[1:-1] for c in labels.of[n.id]]
        if cotangent:
            inner += list(labels.of[y.id])
        for combo in itertools.product(*steps):
            raw = _Raw(math.prod(t.coef for t in combo), head + [o for t in combo for o in t.operands],
                       [d for t in combo for d in t.deltas], inner + [c for t in combo for c in t.inner])
            products.append(_eliminate(raw, free, sizes))
    return products, free, sizes, labels


# --------------------------------------------------------------- execution
def _canonical(subs: Sequence[str], out: str) -> Tuple[str, Dict[str, str]]:
    """The einsum equation with letters a, b, … in order of first appearance (output first)."""
    names: Dict[str, str] = {}
    for c in out + "".join(subs):
        if c not in names:
            if len(names) == 52:
                raise _Fallback("a product needs more than 52 distinct indices, more than numpy's einsum takes")
            names[c] = string.ascii_letters[len(names)]
    return ",".join("".join(names[c] for c in s) for s in subs) + "->" + "".join(names[c] for c in out), names


@dataclass
class _Step:
    take: Tuple[int, ...]
    kind: str  # "gemm", "mul" or "einsum"
    eq: str
    axes: tuple = ()  # gemm: transposes and reshapes around one matmul; mul: per operand (perm, shape)


@dataclass
class _Compiled:
    steps: List[_Step]
    flops: int
    largest: int


_CACHE: "OrderedDict[tuple, _Compiled]" = OrderedDict()
_CACHE_SIZE = 1024


def _compile(eq: str, shapes: Tuple[Tuple[int, ...], ...]) -> _Compiled:
    """opt_einsum's path for ``eq``, each pairwise step turned into a GEMM, a broadcast multiply or einsum."""
    key = (eq, shapes)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    ins, out = eq.split("->")
    size = {c: n for s, shape in zip(ins.split(","), shapes) for c, n in zip(s, shape)}
    if len(shapes) == 1:
        comp = _Compiled([_Step((0,), "einsum", eq)], math.prod(shapes[0]), math.prod(size[c] for c in out))
    else:
        _, info = oe.contract_path(eq, *shapes, shapes=True, optimize="auto")
        steps = [_step(inds, removed, s, size) for inds, removed, s, _, _ in info.contraction_list]
        comp = _Compiled(steps, int(info.opt_cost), int(info.largest_intermediate))
    _CACHE[key] = comp
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return comp


def _step(inds: Tuple[int, ...], removed: "frozenset[str]", eq: str, size: Dict[str, int]) -> _Step:
    ins, out = eq.split("->")
    subs = ins.split(",")
    plain = len(subs) == 2 and all(len(set(s)) == len(s) for s in subs)
    if plain and not removed and set(out) == set(subs[0]) | set(subs[1]):
        # no index summed: an outer or Hadamard product, written as a broadcast multiply
        how = []
        for s in subs:
            perm = sorted(range(len(s)), key=lambda k: out.index(s[k]))
            how.append((tuple(perm), tuple(size[c] if c in s else 1 for c in out)))
        return _Step(tuple(inds), "mul", eq, tuple(how))
    a, b = subs if len(subs) == 2 else ("", "")
    if (plain and removed and set(removed) <= set(a) & set(b)
            and not (set(a) & set(b)) - set(removed)):
        # no batch index: (kept a × summed) @ (summed × kept b), one GEMM on reshaped views
        summed = sorted(removed)
        keep_a = [c for c in a if c not in removed]
        keep_b = [c for c in b if c not in removed]
        perm_a = tuple(a.index(c) for c in keep_a + summed)
        perm_b = tuple(b.index(c) for c in summed + keep_b)
        m, k, n = (math.prod(size[c] for c in cs) for cs in (keep_a, summed, keep_b))
        left = keep_a + keep_b
        how = (perm_a, (m, k), perm_b, (k, n), tuple(size[c] for c in left), tuple(left.index(c) for c in out))
        return _Step(tuple(inds), "gemm", eq, how)
    return _Step(tuple(inds), "einsum", eq)


def _run_step(step: _Step, ops: List[np.ndarray], out: Optional[np.ndarray]) -> np.ndarray:
    if step.kind == "gemm":
        perm_a, shape_a, perm_b, shape_b, shape, perm = step.axes
        r = (ops[0].transpose(perm_a).reshape(shape_a) @ ops[1].transpose(perm_b).reshape(shape_b))
        r = r.reshape(shape).transpose(perm)
    elif step.kind == "mul":
        (pa, sa), (pb, sb) = step.axes
        a, b = ops[0].transpose(pa).reshape(sa), ops[1].transpose(pb).reshape(sb)
        return np.multiply(a, b, out=out) if out is not None else a * b
    else:
        r = np.einsum(step.eq, *ops)
    if out is not None:
        out[...] = r
        return out
    return r


def _contract(eq: str, arrays: List[np.ndarray], out: Optional[np.ndarray] = None) -> np.ndarray:
    """Execute ``eq`` on ``arrays`` along the cached plan; the last step may write straight into ``out``."""
    comp = _compile(eq, tuple(a.shape for a in arrays))
    pending = list(arrays)
    for k, step in enumerate(comp.steps):
        ops = [pending.pop(i) for i in step.take]  # opt_einsum's order: its step equation reads them so
        pending.append(_run_step(step, ops, out if k == len(comp.steps) - 1 else None))
    return pending[0]


@dataclass
class _Prepared:
    """How one product lands in the output: its einsum, the tied view, the broadcast shape.

    Built from labels and shapes only, so one preparation serves any values.
    """

    eq: str
    comp: Optional[_Compiled]
    keep: Tuple[int, ...]  # operands in the einsum
    scalars: Tuple[int, ...]  # operands without an index (1/‖A‖, det A): multiplied into the coefficient
    pairs: List[Tuple[int, int]]  # (kept axis, dropped axis) of the tied view
    shape: Tuple[int, ...]  # the einsum result reshaped to the view, 1 on broadcast axes
    full: bool  # the result covers every axis of the view


def _prepare(r: Reduced, free: str, sizes: Dict[str, int]) -> _Prepared:
    keep = tuple(k for k, o in enumerate(r.operands) if o.labels)
    scalars = tuple(k for k, o in enumerate(r.operands) if not o.labels)
    pos = {c: k for k, c in enumerate(free)}
    pairs = [(pos[g[0]], pos[c]) for g in r.ties for c in g[1:]]
    dropped = {d for _, d in pairs}
    view_labels = [r.rep[c] for k, c in enumerate(free) if k not in dropped]
    subs = [r.operands[k].labels for k in keep]
    present = {c for sub in subs for c in sub}
    core = "".join(c for c in view_labels if c in present)
    shape = tuple(sizes[c] if c in present else 1 for c in view_labels)
    if not keep:
        return _Prepared("", None, keep, scalars, pairs, shape, not view_labels)
    eq, _ = _canonical(subs, core)
    comp = _compile(eq, tuple(tuple(sizes[c] for c in sub) for sub in subs))
    return _Prepared(eq, comp, keep, scalars, pairs, shape, len(core) == len(view_labels))


def _land(J: np.ndarray, values: List[np.ndarray], coef: float, prep: _Prepared, assign: bool) -> None:
    """J[free…] (+)= coef · einsum(values), through a tied view for the deltas between free indices."""
    view = tied_view(J, prep.pairs) if prep.pairs else J
    for k in prep.scalars:
        coef *= float(values[k])
    if prep.comp is None:
        if assign:
            view[...] = coef
        else:
            view += coef
        return
    res = _evaluate(values, coef, prep, out=view if assign and prep.full else None)
    if res is view:
        return
    res = res.reshape(prep.shape)
    if assign:
        view[...] = res
    else:
        view += res


def _evaluate(values: List[np.ndarray], coef: float, prep: _Prepared, out: Optional[np.ndarray] = None) -> np.ndarray:
    """coef · einsum(values[keep]); written into ``out`` when the last step is a broadcast multiply."""
    arrays = [values[k] for k in prep.keep]
    if coef != 1.0:  # fold the coefficient into the smallest factor
        k = min(range(len(arrays)), key=lambda i: arrays[i].size)
        arrays[k] = arrays[k] * coef
    direct = out is not None and prep.comp.steps[-1].kind == "mul"
    return _contract(prep.eq, arrays, out=out if direct else None)


# --------------------------------------------------- gradients: edge by edge
@dataclass
class _EdgeStep:
    """One edge of a reverse sweep: G of the child contracted into the parent's factored local Jacobian."""

    child: Node
    parent: Node
    forms: List[Factored]  # one per input slot the parent fills
    recipes: List[List[Tuple[float, _Prepared]]]  # per form, per term: (coefficient, preparation)


_RECIPES: "OrderedDict[tuple, List[Tuple[float, _Prepared]]]" = OrderedDict()


def _structure(F: Factored) -> tuple:
    return (F.out, F.inp, F.flat, tuple((t.coef, t.deltas, tuple((f.labels, np.shape(f.value)) for f in t.factors))
                                        for t in F.terms))


def _edge_recipe(F: Factored, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...],
                 what: str) -> List[Tuple[float, _Prepared]]:
    """Σ_out G[out] dY[out]/dX[in] term by term, deltas eliminated in the op's own letters (cached)."""
    key = (_structure(F), out_shape, in_shape)
    hit = _RECIPES.get(key)
    if hit is not None:
        return hit
    if len(F.out) != len(out_shape) or len(F.inp) != len(in_shape):
        check_factored(F, out_shape, in_shape, what)
    sizes = dict(zip(F.out + F.inp, tuple(out_shape) + tuple(in_shape)))
    recipe = []
    for t in F.terms:
        for f in t.factors:
            sizes.update(zip(f.labels, np.shape(f.value)))
        extra = sorted({c for f in t.factors for c in f.labels} - set(F.out + F.inp))
        ops = [_Operand(None, F.out, ("G", False))] + [_Operand(None, f.labels, ("", False)) for f in t.factors]
        r = _eliminate(_Raw(t.coef, ops, [(d[0], d[1]) for d in t.deltas], list(F.out) + extra), F.inp, sizes)
        recipe.append((r.coef, _prepare(r, F.inp, sizes)))
    _RECIPES[key] = recipe
    if len(_RECIPES) > _CACHE_SIZE:
        _RECIPES.popitem(last=False)
    return recipe


def _reverse_steps(nodes: List[Node]) -> List[_EdgeStep]:
    """The edges from the y end back to x, each with its factored forms and derived VJP recipes."""
    inside = {n.id for n in nodes}
    steps = []
    for child in reversed(nodes[1:]):
        op = child.op
        if op is None or op.factored is None:
            raise _Fallback(f"op {op.name if op else '?'!r} ({child.name}) declares no factored Jacobian")
        values = [p.value for p in child.parents]
        done = set()
        for p in child.parents:
            if p.id not in inside or p.id in done:
                continue
            done.add(p.id)
            forms, recipes = [], []
            for i, q in enumerate(child.parents):
                if q.id == p.id:
                    F = op.factored[i](child.value, *values, **child.params)
                    forms.append(F)
                    recipes.append(_edge_recipe(F, child.shape, p.shape, f"op {op.name!r} ({child.name}), input {i}"))
            steps.append(_EdgeStep(child, p, forms, recipes))
    return steps


def _sweep(y: Node, x: Node, steps: List[_EdgeStep]) -> np.ndarray:
    """Reverse accumulation: each node's cotangent pulled into its parents through the derived VJPs.

    Fresh arrays are few (a new one costs page faults): a constant or broadcast
    contribution stays a broadcast view, a second contribution is added in place
    into a cotangent this sweep owns, and the result is copied only when it is
    not such an array.
    """
    cot: Dict[int, np.ndarray] = {y.id: np.ones(y.shape, dtype=y.dtype)}
    owned: set = set()  # ids whose cotangent is an array this sweep allocated
    for k, st in enumerate(steps):
        g = cot[st.child.id]
        if k + 1 == len(steps) or steps[k + 1].child.id != st.child.id:
            del cot[st.child.id]  # its last edge: no longer needed
        pid, shape, dtype = st.parent.id, st.parent.shape, st.child.dtype
        for F, recipe in zip(st.forms, st.recipes):
            if F.flat:  # Σ_out G[out] δ(flat(out), flat(in)) = G reshaped
                res = g.reshape(shape)
                if pid not in cot:
                    cot[pid] = res
                elif pid in owned:
                    cot[pid] += res
                else:
                    cot[pid] = cot[pid] + res
                    owned.add(pid)
            for t, (coef, prep) in zip(F.terms, recipe):
                values = [g] + [np.asarray(f.value, dtype=dtype) for f in t.factors]
                if prep.pairs:  # a delta between two indices of the parent: scatter into its diagonal
                    if pid not in owned:
                        base = cot.get(pid)
                        cot[pid] = np.zeros(shape, dtype=dtype) if base is None else np.array(base, dtype=dtype)
                        owned.add(pid)
                    _land(cot[pid], values, coef, prep, assign=False)
                    continue
                c = coef
                for k in prep.scalars:
                    c *= float(values[k])
                if prep.comp is None:
                    res, fresh = np.asarray(c, dtype=dtype), False
                else:
                    res = _evaluate(values, c, prep)
                    fresh = not (len(prep.keep) == 1 and c == 1.0)  # else it may be a view of an input
                res = res.reshape(prep.shape)
                if res.shape != shape:
                    res, fresh = np.broadcast_to(res, shape), False
                if pid not in cot:
                    cot[pid] = res
                    if fresh:
                        owned.add(pid)
                elif pid in owned:
                    cot[pid] += res
                else:
                    cot[pid] = cot[pid] + res
                    owned.add(pid)
    g = cot[x.id]
    if x.id in owned and g.flags.c_contiguous and g.dtype == y.dtype:
        return g.reshape(y.shape + x.shape)
    return np.array(g, dtype=y.dtype, order="C").reshape(y.shape + x.shape)  # fresh, C-ordered


# ------------------------------------------------------------------- plan
@dataclass
class FactoredPlan:
    """What the factored route will compute for dy/dx: the products after delta elimination.

    ``strategy`` is ``"products"`` (a Jacobian: the products of local terms
    along every path, each a planned einsum scattered into the result),
    ``"reverse"`` (a gradient: one sweep from y back to x, each edge's
    cotangent contracted into its factored local Jacobian, which is the derived
    VJP), ``"identity"``, ``"independent"`` or ``"dense"`` (the fallback;
    ``reason`` says why).
    """

    y: Node
    x: Node
    order: str
    strategy: str
    hold: Tuple[Node, ...] = ()
    reason: str = ""
    products: List[Reduced] = field(default_factory=list)
    free: str = ""
    flops: int = 0
    largest_intermediate: int = 0  # elements
    _prepared: List[_Prepared] = field(default_factory=list, repr=False)
    steps: List[_EdgeStep] = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        head = (f"factored plan for d{self.y.name}/d{self.x.name}: Jacobian {self.y.shape + self.x.shape}, "
                f"strategy={self.strategy}")
        lines = [head]
        if self.strategy == "dense":
            lines.append(f"  falls back to the dense route: {self.reason}")
        for st in self.steps:
            for F, recipe in zip(st.forms, st.recipes):
                for t, (coef, prep) in zip(F.terms, recipe):
                    lines.append(f"  {st.parent.name} ← {st.child.name}: {coef:g} · {prep.eq or '1'}  "
                                 f"(G, {', '.join(f.name.format(y='y', x0='x0', x1='x1') for f in t.factors)})")
        axis = {c: f"{k}" for k, c in enumerate(self.free)}
        for k, (r, prep) in enumerate(zip(self.products, self._prepared), 1):
            ops = ", ".join(_text(o.sym) for o in r.operands)
            ties = ("  scatter on axes " + " ".join("=".join(axis[c] for c in g) for g in r.ties)) if r.ties else ""
            lines.append(f"  product {k}: {r.coef:g} · {prep.eq or '1'}  ({ops}){ties}")
        what = f"{len(self.steps)} edges" if self.strategy == "reverse" else f"{len(self.products)} products"
        lines.append(f"  total: {what}, flops {self.flops:.3g}, "
                     f"largest intermediate {self.largest_intermediate:,} elements")
        return "\n".join(lines)

    def execute(self) -> np.ndarray:
        """The dense Jacobian dy/dx, shape ``y.shape + x.shape`` (C-contiguous)."""
        y, x = self.y, self.x
        shape = y.shape + x.shape
        what = f"jacobian d{y.name}/d{x.name} (factored route)"
        if self.strategy == "dense":
            return dense_plan(y, x, self.order, self.hold).execute()
        if self.strategy == "independent" or (self.strategy == "products" and not self.products):
            return memory.zeros(shape, np.result_type(y.dtype, x.dtype), what)
        if self.strategy == "identity":
            J = memory.zeros(shape, y.dtype, what)
            tied_view(J, [(k, y.ndim + k) for k in range(y.ndim)])[...] = 1
            return J
        if self.strategy == "reverse":
            if self.largest_intermediate > max(x.size, 1 << 16):
                memory.check_bytes((self.largest_intermediate,), y.dtype, what)
            return _sweep(y, x, self.steps)
        memory.check_bytes((max(math.prod(shape), self.largest_intermediate),), y.dtype, what)
        order = sorted(range(len(self.products)), key=lambda k: bool(self.products[k].ties))
        fresh = not self.products[order[0]].ties  # an untied product can fill J first
        J = np.empty(shape, dtype=y.dtype) if fresh else np.zeros(shape, dtype=y.dtype)
        for n, k in enumerate(order):
            r = self.products[k]
            _land(J, [o.value for o in r.operands], r.coef, self._prepared[k], assign=fresh and n == 0)
        return J


def plan_factored(y: Node, x: Node, order: str = "optimal", hold: Sequence[Node] = (),
                  max_products: int = MAX_PRODUCTS) -> FactoredPlan:
    """Plan dy/dx on the factored route; ``order`` is used only by the dense fallback.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((3, 2)), name="X")
    >>> p = plan_factored(jx.tanh(X @ X.T), X)
    >>> p.strategy, len(p.products)          # two paths through X @ Xᵀ (one via Xᵀ)
    ('products', 2)
    >>> plan_factored(jx.tanh(X @ X.T), X, max_products=1).reason
    '2 products of local terms along the paths X → tanh#... exceed max_products=1'
    """
    if order not in ORDERS:
        raise ValueError(f"plan_factored: order={order!r} is not one of {', '.join(ORDERS)}")
    if not isinstance(y, Node) or not isinstance(x, Node):
        raise TypeError(f"plan_factored: y and x must be nodes, got {type(y).__name__} and {type(x).__name__}")
    hold = tuple(hold)
    if y.id == x.id:
        return FactoredPlan(y, x, order, "identity", hold)
    if y.size == 1:  # a gradient: one reverse sweep, no expansion over paths
        nodes = between(y, x, hold)
        if not nodes:
            return FactoredPlan(y, x, order, "independent", hold)
        try:
            steps = _reverse_steps(nodes)
        except _Fallback as exc:
            return FactoredPlan(y, x, order, "dense", hold, reason=str(exc))
        comps = [prep.comp for st in steps for rec in st.recipes for _, prep in rec if prep.comp is not None]
        return FactoredPlan(y, x, order, "reverse", hold, steps=steps, flops=sum(c.flops for c in comps),
                            largest_intermediate=max((c.largest for c in comps), default=0))
    try:
        expanded = _expand(y, x, hold, max_products)
        if expanded is None:
            return FactoredPlan(y, x, order, "independent", hold)
        products, free, sizes, _ = expanded
        products, prepared = _merge(products, [_prepare(r, free, sizes) for r in products])
    except _Fallback as exc:
        return FactoredPlan(y, x, order, "dense", hold, reason=str(exc))
    comps = [p.comp for p in prepared if p.comp is not None]
    return FactoredPlan(y, x, order, "products", hold, products=products, free=free,
                        flops=sum(c.flops for c in comps),
                        largest_intermediate=max((c.largest for c in comps), default=0), _prepared=prepared)


def jacobian_factored(y: Node, x: Node, order: str = "optimal", hold: Sequence[Node] = (),
                      max_products: int = MAX_PRODUCTS) -> np.ndarray:
    """Dense dy/dx computed on the factored route (``jx.jacobian(y, x, method="factored")``).

    >>> import numpy as np, jacobians as jx
    >>> W = jx.var(np.eye(2), name="W")
    >>> jacobian_factored(W @ np.array([[1.0, 2.0], [3.0, 4.0]]), W)[0, 1].tolist()   # δ_0a X[b,1]
    [[2.0, 4.0], [0.0, 0.0]]
    """
    return plan_factored(y, x, order, hold, max_products).execute()


# ---------------------------------------------------------------- derive
def _text(sym: Sym) -> str:
    base, t = sym
    if not t:
        return base
    simple = base.replace("_", "").replace("#", "").isalnum() or base.endswith("⁻¹")
    return (base if simple else f"({base})") + "ᵀ"


def _flip(sym: Sym) -> Sym:
    return sym[0], not sym[1]


def _group_text(members: List[Tuple[str, Sym]], orient: str) -> str:
    """A Hadamard group read with its indices in the order ``orient``."""
    parts = [_text(s if lab == orient or len(lab) < 2 else _flip(s)) for lab, s in members]
    return parts[0] if len(parts) == 1 else "(" + " ⊙ ".join(parts) + ")"


def _matrix_form(free: str, operands: List[Tuple[str, Sym]], ties: List[Tuple[str, ...]]) -> Optional[str]:
    """Matrix notation when the product is a chain of matrices and vectors (⊙ allowed); else None.

    ``free`` lists the result's indices (x's axes), ``ties`` the deltas left between them.
    """
    scalars = [_text(s) for lab, s in operands if not lab]
    arrays = [(lab, s) for lab, s in operands if lab]
    pre = " ".join(f"({s})" if "/" in s or " " in s else s for s in scalars)
    if ties:  # only the identity: δ_ab between the two indices of the result
        return (pre + " I").strip() if not arrays and len(ties) == 1 and set(ties[0]) == set(free) == set(
            free[:2]) and len(free) == 2 else None
    present = {c for lab, _ in arrays for c in lab}
    if len(free) > 2 or any(c not in present for c in free) and arrays:
        return None
    if not arrays:
        return (pre + " 1").strip() if free else pre or "1"
    if any(len(lab) > 2 or len(set(lab)) < len(lab) for lab, _ in arrays):
        return None
    groups: "OrderedDict[frozenset, List[Tuple[str, Sym]]]" = OrderedDict()
    for lab, s in arrays:
        groups.setdefault(frozenset(lab), []).append((lab, s))
    keys = list(groups)
    where: Dict[str, List[int]] = {}
    for g, k in enumerate(keys):
        for c in k:
            where.setdefault(c, []).append(g)
    if any(len(v) > 2 for v in where.values()) or any(len(where[c]) != 1 for c in free):
        return None
    dangling = [c for c, v in where.items() if len(v) == 1 and c not in free]
    # walk the chain from one end: (group, index in, index out); "" where a vector ends it
    walk: List[Tuple[int, str, str]] = []
    if free:
        c = free[0]
    elif dangling:
        c = dangling[0]
    else:
        vec = [g for g, k in enumerate(keys) if len(k) == 1]
        if not vec:
            return None  # a closed loop: a trace
        c = next(iter(keys[vec[0]]))
        walk.append((vec[0], "", c))
    used = {g for g, _, _ in walk}
    while True:
        nxt = [g for g in where[c] if g not in used]
        if not nxt:
            break
        g = nxt[0]
        used.add(g)
        if len(keys[g]) == 1:
            walk.append((g, c, ""))
            break
        d = next(iter(keys[g] - {c}))
        walk.append((g, c, d))
        c = d
    if len(used) != len(keys):
        return None
    end = walk[-1][2]
    if len(free) == 2:
        if end != free[1]:
            return None
        words = [_group_text(groups[keys[g]], a + b) for g, a, b in walk]
    elif len(free) == 1:  # read back from the far end: a row vector times matrices, indexed by free[0]
        words = ["1ᵀ"] if end else []
        for g, a, b in reversed(walk):
            words.append(_group_text(groups[keys[g]], a) + "ᵀ" if not b else _group_text(groups[keys[g]], b + a))
    else:
        words = ["1ᵀ"] if walk[0][1] else []
        for g, a, b in walk:
            if not a:
                words.append(_group_text(groups[keys[g]], b) + "ᵀ")
            elif not b:
                words.append(_group_text(groups[keys[g]], a))
            else:
                words.append(_group_text(groups[keys[g]], a + b))
        if end:
            words.append("1")
    if len(words) == 1 and not pre and " ⊙ " in words[0] and words[0].endswith(")"):
        words[0] = words[0][1:-1]  # G ⊙ σ'(Z), not (G ⊙ σ'(Z))
    return (pre + " " + " ".join(words)).strip()


@dataclass
class DerivedTerm:
    """One surviving product: ``coef · einsum(operands)``, with its matrix notation when it has one."""

    coef: float
    einsum: str
    operands: Tuple[str, ...]
    matrix: Optional[str]
    ties: str = ""
    broadcast: str = ""

    def __str__(self) -> str:
        c = "" if self.coef == 1 else "-" if self.coef == -1 else f"{self.coef:g} · "
        extra = (f" · δ_{self.ties}" if self.ties else "") + (f" ⊗ 1[{self.broadcast}]" if self.broadcast else "")
        s = f"{c}{self.einsum}  ({', '.join(self.operands)}){extra}"
        return s + (f"  =  {self._signed()}" if self.matrix else "")

    def _signed(self) -> str:
        m = self.matrix or ""
        if self.coef == 1:
            return m
        if self.coef == -1:
            return "-" + m
        return f"{self.coef:g}" + (" · " if m[:1].isdigit() else " ") + m  # 2 · 1ᵀ G, not 2 1ᵀ G


@dataclass
class Derivation:
    """The gradient expression of :func:`derive`: a sum of :class:`DerivedTerm`."""

    y: Node
    x: Node
    terms: List[DerivedTerm]
    reason: str = ""
    names: Names = field(default_factory=dict)

    @property
    def expression(self) -> str:
        """The whole sum, in matrix notation where every term has one, else as einsums."""
        if self.reason:
            return "(not derived)"
        if not self.terms:
            return "0"
        if all(t.matrix for t in self.terms):
            parts = [t._signed() for t in self.terms]
        else:
            parts = [str(t).split("  =  ")[0] for t in self.terms]
        return " + ".join(parts).replace("+ -", "- ")

    def __str__(self) -> str:
        y, x = _text(_node_sym(self.y, self.names)), _text(_node_sym(self.x, self.names))
        lhs = f"d{y}/d{x}" if self.y.size == 1 else f"Σ G·d{y}/d{x}"
        if self.reason:
            return f"{lhs}: not derived — {self.reason}"
        lines = [f"{lhs} = {self.expression}"]
        lines += [f"  {t}" for t in self.terms]
        return "\n".join(lines)


def derive(y: Node, x: Node, hold: Sequence[Node] = (), names: Optional[Dict[Node, str]] = None,
           max_products: int = MAX_PRODUCTS) -> Derivation:
    """The gradient of y w.r.t. x derived from the factored Jacobians: the einsum that survives delta elimination.

    For a scalar y this is dy/dx. For any other y it is the VJP Σ G·dy/dx of a
    cotangent G of y's shape. Operands are named by node (``names`` maps
    nodes to the names to print, e.g. ``{W: "W"}`` for an op's result); a
    product of matrices (and Hadamard products ⊙) is also written in matrix
    notation. Products that are the same term are added up.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((3, 2)), name="X")
    >>> W = X @ X.T
    >>> Y = W @ X
    >>> print(derive(Y, W, names={W: "W", Y: "Y"}))
    Σ G·dY/dW = G Xᵀ
      ad,bd->ab  (G, X)  =  G Xᵀ
    >>> derive(jx.sum(Y * Y), X, hold=[W], names={W: "W", Y: "Y"}).expression   # W held: 2 Wᵀ Y
    '2 Wᵀ Y'
    """
    if not isinstance(y, Node) or not isinstance(x, Node):
        raise TypeError(f"derive: y and x must be nodes, got {type(y).__name__} and {type(x).__name__}")
    hold = tuple(hold)
    shown = {n.id: str(v) for n, v in (names or {}).items()}
    if y.id == x.id:
        term = DerivedTerm(1.0, "", (), "1" if y.size == 1 else "G")
        return Derivation(y, x, [term], names=shown)
    try:
        expanded = _expand(y, x, hold, max_products, cotangent=y.size != 1, names=shown)
    except _Fallback as exc:
        return Derivation(y, x, [], reason=str(exc), names=shown)
    if expanded is None:
        return Derivation(y, x, [], names=shown)
    products, free, _, labels = expanded
    reserved = labels.of[x.id] + labels.of[y.id]  # x's indices read a, b, …; y's come next
    terms: "OrderedDict[tuple, DerivedTerm]" = OrderedDict()
    for r in products:
        letters: Dict[str, str] = {}
        for c in reserved + "".join(o.labels for o in r.operands):
            if c not in letters:
                letters[c] = string.ascii_letters[len(letters)]
        present = {c for o in r.operands for c in o.labels}
        reps = list(dict.fromkeys(r.rep[c] for c in free))
        out = "".join(letters[c] for c in reps if c in present)
        broadcast = "".join(letters[c] for c in reps if c not in present)
        subs = ["".join(letters[c] for c in o.labels) for o in r.operands]
        tie_groups = [tuple(letters[c] for c in g) for g in r.ties]
        ties = " ".join("".join(g) for g in tie_groups)
        matrix = None if broadcast and r.operands else _matrix_form(
            "".join(letters[c] for c in free), [(sub, o.sym) for sub, o in zip(subs, r.operands)], tie_groups)
        eq = ",".join(subs) + "->" + out if r.operands else ""
        names = tuple(_text(o.sym) for o in r.operands)
        key = ("matrix", matrix) if matrix else (eq, names, ties, broadcast)  # X and (Xᵀ)ᵀ are one term
        if key in terms:
            terms[key].coef += r.coef
        else:
            terms[key] = DerivedTerm(r.coef, eq, names, matrix, ties, broadcast)
    return Derivation(y, x, [t for t in terms.values() if t.coef != 0], names=shown)
