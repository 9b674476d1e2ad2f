"""The structure of a Hessian, derived: ``jx.derive(l, x, order=2)``.

The Hessian d²l/dx² is the Jacobian of the gradient, and the gradient is a
graph of ops (:func:`jacobians.second_order.gradient_graph`). Its factored
Jacobian, deltas eliminated (:func:`jacobians.factored.expand`), is the
Hessian's structure. Factors that are constants of the gradient graph with one
value throughout (the seed 1, a 2 from a square) are folded into the
coefficient; what is left is written in index notation, and — where each term
splits into a block on the first axes of x and one on the second — in
Kronecker notation over numpy's row-major vec, each checked against
``np.kron`` of its own pieces:

>>> import numpy as np, jacobians as jx
>>> rng = np.random.default_rng(0)
>>> X, T = jx.const(rng.standard_normal((5, 3)), name="X"), rng.standard_normal((5, 2))
>>> W = jx.var(rng.standard_normal((3, 2)), name="W")
>>> h = hessian_form(jx.sum((X @ W - T) ** 2), W)
>>> print(h)
d²l/dW_ab dW_cd = 2 Σ_k δ_bd X_ka X_kc
  Kronecker (numpy's row-major vec): 2 ((Xᵀ X) ⊗ I_2)
>>> np.allclose(h.dense(), jx.hessian(jx.sum((X @ W - T) ** 2), W, method="numeric"))
True
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np
import opt_einsum as oe

from .derive import matrix_form
from .factored import MAX_PRODUCTS, FactoredFallback, expand
from .form import Factor, Factored, Product
from .graph import ancestors
from .index_form import IndexForm
from .kernel import TooManyIndices
from .latex import dmark, plain
from .names import sym_text
from .node import Node
from .vec_forms import kron_term

__all__ = ["HessianForm", "hessian_form"]

_SUMMED = "klmnrstuvwxyzKLMNRSTUVWXYZ"


@dataclass
class HessianForm:
    """d²l/dx² as a sum of factored terms: its index form, and its Kronecker form where it has one."""

    l: Node
    x: Node
    index: Optional[IndexForm]
    kronecker: str = ""  # plain text, numpy's row-major vec ("" when a term has no Kronecker reading)
    matrix: Optional[np.ndarray] = None  # the matrix the Kronecker text describes, built from its pieces
    reason: str = ""  # why nothing was derived

    def dense(self) -> np.ndarray:
        """The Hessian the index form describes, shape ``x.shape + x.shape`` (built by the dense materializer)."""
        if self.index is None:
            raise ValueError(f"derive(order=2): not derived — {self.reason}")
        return self.index.dense()

    def __str__(self) -> str:
        if self.index is None:
            return f"d²l/d{self.x.name}²: not derived — {self.reason}"
        lines = [str(self.index)]
        if self.kronecker:
            lines.append(f"  Kronecker (numpy's row-major vec): {self.kronecker}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<HessianForm {str(self).splitlines()[0]}>"

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```\n"


def _constants(g: Node) -> Tuple[Set[int], Set[str]]:
    """The constants of the gradient graph (nodes that depend on no var): ids of their values, and the
    names only they carry (a 0-d factor is a fresh array, known by its node's name)."""
    free: Dict[int, bool] = {}
    for n in ancestors(g):
        free[n.id] = n.kind != "var" and all(free[p.id] for p in n.parents)
    nodes = ancestors(g)
    names = {n.name for n in nodes if free[n.id]} - {n.name for n in nodes if not free[n.id]}
    return {id(n.value) for n in nodes if free[n.id]}, names


_INFIX = {"add": " + ", "subtract": " − ", "multiply": " ⊙ ", "divide": " / ", "matmul": " "}
_LONGEST = 32  # a readable name longer than this stays the node's own (op#id)


def _readable(g: Node, shown: Dict[int, str]) -> Dict[int, str]:
    """Names for the unnamed nodes of the gradient graph that are short formulas of named ones:
    ``tanh(X W1)`` rather than ``tanh#96``, ``softmax(Z)`` rather than ``softmax#61``."""
    out = dict(shown)
    for n in ancestors(g):
        if n.id in out or n._name is not None or n.op is None:
            continue
        args = [out.get(p.id, p.name if p._name is not None else "") for p in n.parents]
        if not all(args):
            continue
        if n.op.name in _INFIX and len(args) == 2:
            text = "(" + _INFIX[n.op.name].join(args) + ")" if n.op.name != "matmul" else " ".join(args)
        elif len(args) == 1:
            inner = args[0][1:-1] if args[0].startswith("(") and args[0].endswith(")") else args[0]
            text = f"{n.op.name}({inner})"
        else:
            continue
        if len(text) <= _LONGEST:
            out[n.id] = text
    return out


def _uniform(v: np.ndarray) -> bool:
    return v.size > 0 and bool(np.all(v == v.flat[0]))


def hessian_form(l: Node, x: Node, hold: Sequence[Node] = (), names: Optional[Mapping[Node, str]] = None,
                 max_products: int = MAX_PRODUCTS) -> HessianForm:
    """The derived structure of d²l/dx² for a scalar l (``jx.derive(l, x, order=2)``).

    >>> import numpy as np, jacobians as jx
    >>> A = jx.const(np.array([[1.0, 2.0], [0.0, 3.0]]), name="A")
    >>> x = jx.var([1.0, -1.0], name="x")
    >>> print(hessian_form(x @ (A @ x), x))     # xᵀAx: A + Aᵀ, without reading x
    d²l/dx_a dx_b = A_ba + A_ab
      Kronecker (numpy's row-major vec): Aᵀ + A
    """
    from .second_order import gradient_graph  # the gradient as a graph: second order sits above first

    if not isinstance(l, Node) or not isinstance(x, Node):
        raise TypeError(f"derive(order=2): l and x must be nodes, got {type(l).__name__} and {type(x).__name__}")
    if l.size != 1:
        raise ValueError(f"derive(order=2): {l.name} has shape {l.shape}; a Hessian form needs a scalar, e.g. "
                         f"jx.sum({l.name}) or one entry {l.name}[i]")
    shown = {n.id: str(v) for n, v in (names or {}).items()}
    g = gradient_graph(l, x, tuple(hold))
    lo = "".join(oe.get_symbol(k) for k in range(x.ndim))
    li = "".join(oe.get_symbol(k) for k in range(x.ndim, 2 * x.ndim))
    spare = [c for c in _SUMMED if c not in lo + li]
    lhs = plain(f"d²l/d{dmark(shown.get(x.id, x.name))}_{lo} d{dmark(shown.get(x.id, x.name))}_{li}") \
        if x.ndim else f"d²l/d{shown.get(x.id, x.name)}²"
    try:
        expanded = expand(g, x, tuple(hold), max_products, names=_readable(g, shown))
    except (FactoredFallback, TooManyIndices) as exc:
        return HessianForm(l, x, None, reason=str(exc))
    if expanded is None:  # l is linear in x: the gradient does not depend on it
        return HessianForm(l, x, IndexForm(lhs, Factored(lo, li, ()), dict(zip(lo + li, x.shape * 2)), x.dtype))
    products, free, sizes, _ = expanded
    fixed, fixed_names = _constants(g)
    name = dict(zip(free, lo + li))
    terms: "OrderedDict[tuple, Product]" = OrderedDict()
    for r in products:
        coef, kept = r.coef, []
        for o in r.operands:
            known = o.sym[0][2:] if o.sym[0].startswith("1/") else o.sym[0]  # 1/N of a constant N
            if (id(o.value) in fixed or known in fixed_names) and _uniform(np.asarray(o.value)):
                coef *= float(o.value.flat[0])
            else:
                kept.append(o)
        used = {c for o in kept for c in o.labels}
        for c in {c for o in r.operands for c in o.labels} - used - set(free):  # Σ_c of a constant: its length
            coef *= sizes[c]
        for c in dict.fromkeys(c for o in kept for c in o.labels):  # one letter per summed index of the graph
            if c not in name:
                k = len(name) - len(free)
                name[c] = spare[k] if k < len(spare) else oe.get_symbol(52 + k)  # past the letters
        factors = tuple(Factor(np.asarray(o.value), "".join(name[c] for c in o.labels), sym_text(o.sym))
                        for o in kept)
        deltas = tuple(name[grp[0]] + name[c] for grp in r.ties for c in grp[1:])
        key = (tuple((f.labels, f.name) for f in factors), deltas)
        if key in terms:
            t = terms[key]
            terms[key] = Product(t.factors, t.deltas, t.coef + coef)
        else:
            terms[key] = Product(factors, deltas, coef)
    kept_terms = tuple(t for t in terms.values() if t.coef != 0)
    for t in kept_terms:
        for f in t.factors:
            sizes.update(zip(f.labels, f.value.shape))
    shape = dict(zip(lo + li, x.shape * 2))
    shape.update({c: n for t in kept_terms for f in t.factors for c, n in zip(f.labels, f.value.shape)})
    index = IndexForm(lhs, Factored(lo, li, kept_terms), shape, x.dtype)
    kron, matrix = _kronecker(kept_terms, lo, li, shape)
    return HessianForm(l, x, index, kron, matrix)


def _blocks(t: Product, lo: str, li: str) -> Optional[Product]:
    """The term with each group of factors joined by summed indices contracted into one named matrix
    (``Σ_k X_ka X_kc`` becomes ``(Xᵀ X)_ac``), so a Kronecker reading can see one factor per axis pair."""
    free = set(lo + li)
    groups: List[List[Factor]] = []
    for f in t.factors:  # connected through summed labels
        touch = [k for k, grp in enumerate(groups) if any(set(f.labels) & set(h.labels) - free for h in grp)]
        merged = [f] + [h for k in touch for h in groups[k]]
        groups = [grp for k, grp in enumerate(groups) if k not in touch] + [merged]
    out = []
    for grp in groups:
        if len(grp) == 1:
            out.append(grp[0])
            continue
        keep = "".join(c for c in lo + li if any(c in f.labels for f in grp))  # x's first axes first
        text = matrix_form(keep, [(f.labels, (f.name, False)) for f in grp], [])
        if text is None or len(keep) > 2:
            return None
        value = np.einsum(",".join(f.labels for f in grp) + "->" + keep, *[f.value for f in grp])
        out.append(Factor(value, keep, text))
    return Product(tuple(out), t.deltas, t.coef)


def _kronecker(terms: Tuple[Product, ...], lo: str, li: str,
               sizes: Dict[str, int]) -> Tuple[str, Optional[np.ndarray]]:
    """The Kronecker text of the sum (row-major vec) and its matrix from the pieces, or ("", None).

    When every term holds δ between the first axes (rows never meet, as in a
    row-wise softmax), the reading is per row: each term with that row fixed.
    """
    if len(lo) > 2 or not terms:
        return "", None
    pieces = [kron_term(b, lo, li, sizes) if b is not None else None for b in (_blocks(t, lo, li) for t in terms)]
    if all(p is not None for p in pieces):
        return _joined([p[0] for p in pieces]), sum(p[2] for p in pieces)
    row = lo[0] + li[0]
    if len(lo) != 2 or not all(row in t.deltas for t in terms):
        return "", None
    texts = []
    for t in terms:  # the row a fixed: factors lose that axis and carry it in their name
        fixed = Product(tuple(Factor(np.take(f.value, 0, axis=f.labels.index(lo[0])), f.labels.replace(lo[0], ""),
                                     f"{f.name}_{lo[0]}") if lo[0] in f.labels else f for f in t.factors),
                        tuple(d for d in t.deltas if d != row), t.coef)
        b = _blocks(fixed, lo[1], li[1])
        found = kron_term(b, lo[1], li[1], sizes) if b is not None else None
        if found is None:
            return "", None
        texts.append(found[0])
    return f"per row {lo[0]}: " + _joined(texts), None


def _joined(texts: List[str]) -> str:
    return plain(texts[0] + "".join(" − " + p[1:] if p.startswith("−") else " + " + p for p in texts[1:]))
