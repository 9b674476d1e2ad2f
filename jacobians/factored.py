"""The factored route: the chain rule over Kronecker deltas and small arrays.

Every op declares its Jacobian as a sum of products of dense factors and
deltas (``dY[c,d]/dW[a,b] = δ_ca X[b,d]`` for ``Y = W X``). Along one path
x → … → y the chain rule multiplies those local forms, and a sum of terms
along the path expands into a sum of products. Each product is reduced by
:mod:`jacobians.elimination` (deltas on summed indices renamed away, deltas
between free indices landed through a tied view, the small factors contracted
by :mod:`jacobians.kernel` along opt_einsum's path).

A gradient (a scalar y) is computed edge by edge instead: one reverse sweep
(:mod:`jacobians.sweep`), each edge's cotangent contracted into its factored
local Jacobian — the VJP the form implies, planned once per form structure —
so it costs what the VJPs cost. :func:`jacobians.derive.derive` prints the
same reduction as an expression.

When the products along the paths of a full Jacobian would number more than
``max_products``, or a product needs more indices than numpy's einsum takes,
the plan says so and the dense route of :mod:`jacobians.chain_rule` computes
the Jacobian instead.

>>> import numpy as np, jacobians as jx
>>> X = jx.var(np.random.default_rng(0).standard_normal((4, 3)), name="X")
>>> W = X @ X.T
>>> Y = W @ X
>>> np.allclose(jx.jacobian(Y, X, method="factored"), jx.jacobian(Y, X))
True
"""
from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import memory
from .chain_rule import ORDERS, Order
from .chain_rule import plan as dense_plan
from .dense import assemble, identity
from .elimination import (Operand, Prepared, RawProduct, Reduced, derived_vjp, eliminate, recipe, form_labels,
                          prepare, share_factors)
from .form import Factor, Factored, Product, check_factored, fill_delta_sizes
from .graph import between, edges
from .kernel import TooManyIndices
from .names import Names, factor_sym, sym_text
from .node import Node
from .registry import op_errors
from .sweep import reverse_sweep

__all__ = ["MAX_PRODUCTS", "FactoredPlan", "FactoredFallback", "GlobalLabels", "plan_factored", "jacobian_factored",
           "expand"]

MAX_PRODUCTS = 64  # expanded products along all paths before the dense fallback


class FactoredFallback(Exception):
    """The factored plan gives way to the dense route; the message says why."""


class GlobalLabels:
    """Labels across a graph: one run per node, fresh ones for indices inside a factored form."""

    def __init__(self, nodes: Sequence[Node]):
        self.k = 0
        self.of: Dict[int, str] = {n.id: self.fresh(n.ndim) for n in nodes}

    def fresh(self, n: int) -> str:
        out = "".join(map(chr, range(0x4E00 + self.k, 0x4E00 + self.k + n)))  # any distinct characters
        self.k += n
        return out


LocalForm = Callable[[Node, int], Factored]  # (child, input slot) -> its form, with nodes for factors


def _local_products(child: Node, parent: Node, labels: GlobalLabels, sizes: Dict[str, int],
                    names: Names, local_form: Optional[LocalForm] = None) -> List[RawProduct]:
    """The factored local Jacobian d child / d parent with global labels (summed over repeated inputs).

    With ``local_form`` the forms come from it (factors may be nodes, kept as nodes).
    """
    op = child.op
    values = [p.value for p in child.parents]
    out: List[RawProduct] = []
    for i, p in enumerate(child.parents):
        if p.id != parent.id:
            continue
        with op_errors(op, child.parents, f"factored Jacobian w.r.t. {parent.name}"):
            F = op.form(i, child.value, *values, **child.params) if local_form is None else local_form(child, i)
        what = f"op {op.name!r} ({child.name}), input {i}"
        if len(F.out) != child.ndim or len(F.inp) != parent.ndim:
            check_factored(F, child.shape, parent.shape, what)
        if F.flat:  # δ(flat(out), flat(in)) is no product of per-axis deltas: its 0/1 matrix is the factor
            E = identity(parent.shape, child.dtype, f"{what}: the 0/1 matrix of a reshape").reshape(
                child.shape + parent.shape)
            F = Factored(F.out, F.inp, F.terms + (Product((Factor(E, F.out + F.inp, "I_flat"),)),))
        rename = dict(zip(F.out, labels.of[child.id]))
        rename.update(zip(F.inp, labels.of[parent.id]))
        for t, inner in zip(F.terms, form_labels(F)):
            local = dict(rename, **dict(zip(inner, labels.fresh(len(inner)))))
            ops = []
            for f in t.factors:
                glab = "".join(local[c] for c in f.labels)
                v = f.value if isinstance(f.value, Node) else np.asarray(f.value, dtype=child.dtype)
                sizes.update(zip(glab, v.shape))
                ops.append(Operand(v, glab, name=lambda f=f: factor_sym(f.name, child, names)))
            deltas = [(local[d[0]], local[d[1]]) for d in t.deltas]
            fill_delta_sizes(tuple(a + b for a, b in deltas), sizes)
            out.append(RawProduct(float(t.coef), ops, deltas, [local[c] for c in inner]))
    return out


def _merge(products: List[Reduced], prepared: List[Prepared]) -> Tuple[List[Reduced], List[Prepared]]:
    """Add up products that are the same contraction of the same arrays (``Y ⊙ Y`` gives two)."""
    keep: "OrderedDict[tuple, int]" = OrderedDict()
    out_r: List[Reduced] = []
    out_p: List[Prepared] = []
    for r, p in zip(products, prepared):
        key = (p.eq, tuple(id(o.value) for o in r.operands), tuple(p.pairs), p.shape)
        if key in keep:
            out_r[keep[key]].coef += r.coef
        else:
            keep[key] = len(out_r)
            out_r.append(r)
            out_p.append(p)
    return out_r, out_p


def expand(y: Node, x: Node, hold: Sequence[Node], max_products: int, cotangent: bool = False,
           names: Optional[Names] = None, local_form: Optional[LocalForm] = None
           ) -> Optional[Tuple[List[Reduced], str, Dict[str, int], GlobalLabels]]:
    """Every product of local terms along every path x → y, deltas eliminated.

    With ``cotangent`` the products start with a symbolic G of y's shape and
    y's indices are summed (a VJP); otherwise they are free (the Jacobian).
    None when y does not depend on x. Raises :class:`FactoredFallback` past ``max_products``.
    ``local_form`` (child, slot) -> form replaces the ops' array forms (factors may then be nodes).
    """
    nodes = between(y, x, hold)
    if not nodes:
        return None
    labels = GlobalLabels(nodes)
    sizes: Dict[str, int] = {}
    for n in nodes:
        sizes.update(zip(labels.of[n.id], n.shape))
    local: Dict[Tuple[int, int], List[RawProduct]] = {}
    children: Dict[int, List[Node]] = {n.id: [] for n in nodes}
    for child, parent in edges(nodes):
        local[(child.id, parent.id)] = _local_products(child, parent, labels, sizes, names or {}, local_form)
        children[parent.id].append(child)
    count: Dict[int, int] = {y.id: 1}  # products from each node to y
    for n in reversed(nodes[:-1]):
        count[n.id] = sum(len(local[(c.id, n.id)]) * count[c.id] for c in children[n.id])
    if count[x.id] > max_products:
        raise FactoredFallback(f"{count[x.id]} products of local terms along the paths {x.name} → {y.name} "
                               f"exceed max_products={max_products}")
    free = labels.of[x.id] if cotangent else labels.of[y.id] + labels.of[x.id]
    head = [Operand(None, labels.of[y.id], ("G", False))] if cotangent else []
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
            raw = RawProduct(math.prod(t.coef for t in combo), head + [o for t in combo for o in t.operands],
                             [d for t in combo for d in t.deltas], inner + [c for t in combo for c in t.inner])
            products.append(eliminate(raw, free, sizes))
    return products, free, sizes, labels


# --------------------------------------------------- gradients: edge by edge
@dataclass
class EdgeStep:
    """One edge of a reverse sweep: the cotangent of the child pulled through the parent's factored forms."""

    child: Node
    parent: Node
    forms: List[Factored]  # one per input slot the parent fills
    recipes: List[List[Tuple[float, Prepared]]]  # per form, per term: (coefficient, preparation)


def _reverse_steps(nodes: List[Node]) -> List[EdgeStep]:
    """The edges from the y end back to x, each with its factored forms and derived VJP recipes."""
    steps = []
    for child, p in reversed(edges(nodes)):
        op = child.op
        values = [q.value for q in child.parents]
        forms, recipes = [], []
        for i, q in enumerate(child.parents):
            if q.id == p.id:
                with op_errors(op, child.parents, f"factored Jacobian w.r.t. {p.name}"):
                    F = op.form(i, child.value, *values, **child.params)
                forms.append(F)
                recipes.append(recipe(F, child.shape, p.shape, "vjp", f"op {op.name!r} ({child.name}), input {i}"))
        steps.append(EdgeStep(child, p, forms, recipes))
    return steps


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
    order: Order
    strategy: str
    hold: Tuple[Node, ...] = ()
    reason: str = ""
    products: List[Reduced] = field(default_factory=list)
    free: str = ""
    flops: int = 0
    largest_intermediate: int = 0  # elements
    peak: int = 0  # elements one derived VJP's contraction holds at once (kernel.Compiled.peak), on the reverse strategy
    prepared: List[Prepared] = field(default_factory=list, repr=False)
    steps: List[EdgeStep] = field(default_factory=list, repr=False)
    nodes: List[Node] = field(default_factory=list, repr=False)  # x … y, for the sweep

    def __str__(self) -> str:
        head = (f"factored plan for d{self.y.name}/d{self.x.name}: Jacobian {self.y.shape + self.x.shape}, "
                f"strategy={self.strategy}")
        lines = [head]
        if self.strategy == "dense":
            lines.append(f"  falls back to the dense route: {self.reason}")
        for st in self.steps:
            names = tuple(f"x{k}" for k in range(len(st.child.parents)))
            for F, rec in zip(st.forms, st.recipes):
                for t, (coef, prep) in zip(F.terms, rec):
                    lines.append(f"  {st.parent.name} ← {st.child.name}: {coef:g} · {prep.eq or '1'}  "
                                 f"(G, {', '.join(F.factor_name(f, names, 'y') for f in t.factors)})")
        axis = {c: f"{k}" for k, c in enumerate(self.free)}
        for k, (r, prep) in enumerate(zip(self.products, self.prepared), 1):
            ops = ", ".join(sym_text(o.sym) for o in r.operands)
            ties = ("  scatter on axes " + " ".join("=".join(axis[c] for c in g) for g in r.ties)) if r.ties else ""
            lines.append(f"  product {k}: {r.coef:g} · {prep.eq or '1'}  ({ops}){ties}")
        what = f"{len(self.steps)} edges" if self.strategy == "reverse" else f"{len(self.products)} products"
        lines.append(f"  total: {what}, flops {self.flops:.3g}, "
                     f"largest intermediate {self.largest_intermediate:,} elements")
        return "\n".join(lines)

    def __repr__(self) -> str:
        what = f"{len(self.steps)} edges" if self.strategy == "reverse" else f"{len(self.products)} products"
        return (f"<FactoredPlan d{self.y.name}/d{self.x.name}: strategy={self.strategy}, {what}, "
                f"{self.flops:,} FLOPs{', ' + self.reason if self.reason else ''}>")

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```\n"

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
            return identity(x.shape, y.dtype, what)
        if self.strategy == "reverse":
            memory.check_bytes((self.peak,), y.dtype, f"{what}, the arrays of one derived VJP live at once")
            return self._sweep()
        memory.check_bytes(shape, y.dtype, what)  # the result alone; assemble prices it with one product beside it
        pieces, held = share_factors([([o.value for o in r.operands], r.coef, prep)
                                      for r, prep in zip(self.products, self.prepared)], y.dtype, what)
        with memory.reserve(held, f"{what}: the products that share a factor, summed"):
            return assemble(shape, y.dtype, pieces, what)

    def _sweep(self) -> np.ndarray:
        y, x = self.y, self.x
        by_edge = {(st.child.id, st.parent.id): st for st in self.steps}

        def pull(child: Node, parent: Node, g: np.ndarray) -> np.ndarray:
            st = by_edge[(child.id, parent.id)]
            total = None
            for F in st.forms:
                c = derived_vjp(F, g, child.shape, parent.shape, y.dtype)
                total = c if total is None else total + c
            return total

        g = reverse_sweep(self.nodes, y, x, np.ones(y.shape, dtype=y.dtype), pull)
        return np.array(g, dtype=y.dtype, order="C").reshape(y.shape + x.shape)


def plan_factored(y: Node, x: Node, order: Order = "optimal", hold: Sequence[Node] = (),
                  max_products: int = MAX_PRODUCTS, local_form: Optional[LocalForm] = None) -> FactoredPlan:
    """Plan dy/dx on the factored route; ``order`` is used only by the dense fallback.

    With ``local_form`` (a Jacobian, not a gradient) the products' factors come
    from it and may be nodes (:mod:`jacobians.jacobian_node`).

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
    if y.size == 1 and local_form is None:  # a gradient: one reverse sweep, no expansion over paths
        nodes = between(y, x, hold)
        if not nodes:
            return FactoredPlan(y, x, order, "independent", hold)
        try:
            steps = _reverse_steps(nodes)
        except TooManyIndices as exc:
            return FactoredPlan(y, x, order, "dense", hold, reason=str(exc))
        comps = [prep.comp for st in steps for rec in st.recipes for _, prep in rec if prep.comp is not None]
        return FactoredPlan(y, x, order, "reverse", hold, steps=steps, nodes=nodes, flops=sum(c.flops for c in comps),
                            largest_intermediate=max((c.largest for c in comps), default=0),
                            peak=max((c.peak for c in comps), default=0))
    try:
        expanded = expand(y, x, hold, max_products, local_form=local_form)
        if expanded is None:
            return FactoredPlan(y, x, order, "independent", hold)
        products, free, sizes, _ = expanded
        products, prepared = _merge(products, [prepare(r, free, sizes) for r in products])
    except (FactoredFallback, TooManyIndices) as exc:
        return FactoredPlan(y, x, order, "dense", hold, reason=str(exc))
    comps = [p.comp for p in prepared if p.comp is not None]
    return FactoredPlan(y, x, order, "products", hold, products=products, free=free,
                        flops=sum(c.flops for c in comps),
                        largest_intermediate=max((c.largest for c in comps), default=0), prepared=prepared)


def jacobian_factored(y: Node, x: Node, order: Order = "optimal", hold: Sequence[Node] = (),
                      max_products: int = MAX_PRODUCTS) -> np.ndarray:
    """Dense dy/dx computed on the factored route (``jx.jacobian(y, x, method="factored")``).

    >>> import numpy as np, jacobians as jx
    >>> W = jx.var(np.eye(2), name="W")
    >>> jacobian_factored(W @ np.array([[1.0, 2.0], [3.0, 4.0]]), W)[0, 1].tolist()   # δ_0a X[b,1]
    [[2.0, 4.0], [0.0, 0.0]]
    """
    return plan_factored(y, x, order, hold, max_products).execute()
