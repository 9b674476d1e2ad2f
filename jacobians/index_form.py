"""Index forms: an op's factored Jacobian written in a derivation's own index letters.

``index_form(Y, W, "cd", "ab")`` takes the op's form (the single source of its
Jacobian), renames its output axes ``cd`` and its input axes ``ab``, eliminates
the deltas on indices summed inside the op (``Σ_k δ_kb X_kd = X_bd``) and names
each factor by its node: ``dY_cd/dW_ab = δ_ca X_bd``. The same terms give the
Kronecker/vec forms (:mod:`jacobians.vec_forms`) and, through the dense
materializer, the numbers (:meth:`IndexForm.dense`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import opt_einsum as oe

from .dense import materialize
from .elimination import form_labels
from .form import Factor, Factored, Product
from .latex import dmark, mark, plain
from .names import Sym, factor_sym, sym_text
from .node import Node

__all__ = ["IndexFactor", "IndexTerm", "IndexForm", "index_form", "coef_text", "subscript"]

_INNER = "klmnrstuvwxyzKLMNRSTUVWXYZ"  # letters for indices summed inside one op


def subscript(marked: str, labels: str) -> str:
    return f"{marked}_{labels}" if labels else marked


def coef_text(c: float) -> str:
    """``2``, ``1/6``, ``-0.25``: a coefficient as a short exact fraction where it is one."""
    f = Fraction(c).limit_denominator(1000)
    if abs(float(f) - c) > 1e-12 * max(1.0, abs(c)):
        return f"{c:g}"
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


@dataclass
class IndexFactor:
    """A named array in an index form; ``sym`` is its display name (and whether it reads transposed)."""

    sym: Sym
    labels: str
    value: np.ndarray

    @property
    def divides(self) -> bool:
        """A factor named ``1/…`` is written as a division: ``Y_cd / l``."""
        return self.sym[0].startswith("1/") and not self.sym[1]

    def render(self) -> str:
        name = self.sym[0][2:] if self.divides else sym_text(self.sym)
        return subscript(mark(name), self.labels)


@dataclass
class IndexTerm:
    """coef · Π δ · Π factors, in the derivation's letters."""

    coef: float
    deltas: List[Tuple[str, str]]
    factors: List[IndexFactor]
    summed: str = ""  # indices summed inside the term (Σ_k B_qk C_kl)

    def render(self, first: bool) -> str:
        parts = [f"Σ_{self.summed}"] if self.summed else []
        parts += [f"δ_{a}{b}" for a, b in self.deltas]
        parts += [f.render() for f in self.factors if not f.divides]
        c = abs(self.coef)
        if c != 1:
            parts.insert(0, coef_text(c))
        body = " ".join(parts) or "1"
        for f in self.factors:
            if f.divides:
                body += " / " + f.render()
        sign = "−" if self.coef < 0 else ""
        return (sign + body) if first else ((" − " if sign else " + ") + body)


@dataclass
class IndexForm:
    """A local Jacobian ``dchild_lo/dparent_li`` as a sum of index terms (from the op's form)."""

    lhs: str  # marked, e.g. "dY_cd/dW_ab"
    terms: List[IndexTerm]
    out_labels: str
    in_labels: str
    sizes: Dict[str, int]
    flat: bool = False  # plus δ(flat(out), flat(in)): a reshape
    dtype: np.dtype = field(default=np.dtype(np.float64))

    def rhs(self) -> str:
        parts = [f"δ(flat({self.out_labels}), flat({self.in_labels}))"] if self.flat else []
        out = "".join(parts)
        for t in self.terms:
            out += t.render(first=not out)
        return out or "0"

    def text_rhs(self) -> str:
        return plain(self.rhs())

    def __str__(self) -> str:
        return plain(f"{self.lhs} = {self.rhs()}")

    def factored(self) -> Factored:
        """The form back as a :class:`~jacobians.form.Factored` in these letters."""
        terms = tuple(Product(tuple(Factor(f.value, f.labels, f.sym[0]) for f in t.factors),
                              tuple(a + b for a, b in t.deltas), t.coef) for t in self.terms)
        return Factored(self.out_labels, self.in_labels, terms, self.flat)

    def dense(self) -> np.ndarray:
        """The dense Jacobian this formula describes, shape out.shape + in.shape (the shared materializer)."""
        shape = lambda labels: tuple(self.sizes[c] for c in labels)  # noqa: E731
        return materialize(self.factored(), shape(self.out_labels), shape(self.in_labels), self.dtype,
                           f"index form {plain(self.lhs)}")


def _default_labels(n: int, start: int = 0) -> str:
    return "".join(oe.get_symbol(start + k) for k in range(n))


def index_form(child: Node, parent: Node, lo: Optional[str] = None, li: Optional[str] = None,
               names: Optional[Mapping[int, str]] = None) -> Optional[IndexForm]:
    """dchild/dparent in index notation with labels ``lo`` (child) and ``li`` (parent); None for a leaf.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((3, 4)), name="X"); W = jx.var(np.ones((3, 3)), name="W")
    >>> Y = W @ X
    >>> f = index_form(Y, W, "cd", "ab")
    >>> f.text_rhs()
    'δ_ca X_bd'
    """
    positions = [k for k, p in enumerate(child.parents) if p.id == parent.id]
    if child.op is None or not positions:
        return None
    lo = lo if lo is not None else _default_labels(child.ndim)
    li = li if li is not None else _default_labels(parent.ndim, child.ndim)
    shown = dict(names or {})
    values = [p.value for p in child.parents]
    sizes = dict(zip(lo, child.shape))
    sizes.update(zip(li, parent.shape))
    terms: List[IndexTerm] = []
    flat = False
    for pos in positions:
        F = child.op.form(pos, child.value, *values, **child.params).simplified()
        flat |= F.flat
        ren = dict(zip(F.out, lo))
        ren.update(zip(F.inp, li))
        spare = iter(c for c in _INNER if c not in lo + li)
        for t, inner in zip(F.terms, form_labels(F)):
            local = dict(ren, **{c: next(spare) for c in inner})
            deltas = [(local[d[0]], local[d[1]]) for d in t.deltas]
            factors = [IndexFactor(factor_sym(f.name, child, shown), "".join(local[c] for c in f.labels),
                                   np.asarray(f.value)) for f in t.factors]
            for f in factors:
                sizes.update(zip(f.labels, f.value.shape))
            summed = {local[c] for c in inner}
            left = "".join(c for c in dict.fromkeys("".join(f.labels for f in factors)) if c in summed)
            terms.append(IndexTerm(float(t.coef), deltas, factors, left))
    lhs = f"d{subscript(dmark(shown.get(child.id, child.name)), lo)}/d{subscript(dmark(shown.get(parent.id, parent.name)), li)}"
    return IndexForm(lhs, terms, lo, li, sizes, flat, child.dtype)
