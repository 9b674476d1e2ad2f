"""Index forms: an op's factored Jacobian written in a derivation's own index letters.

``index_form(Y, W, "cd", "ab")`` takes the op's form (the single source of its
Jacobian), renames its output axes ``cd`` and its input axes ``ab``, renames
away the deltas on indices summed inside the op (``Σ_k δ_kb X_kd = X_bd``,
:meth:`~jacobians.form.Factored.simplified`) and names each factor by its node:
``dY_cd/dW_ab = δ_ca X_bd``. The result is a :class:`~jacobians.form.Factored`
whose factor names are display names; the Kronecker/vec forms
(:mod:`jacobians.vec_forms`) are read off the same terms, and the dense
materializer turns it back into numbers (:meth:`IndexForm.dense`).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Mapping, Optional

import numpy as np
import opt_einsum as oe

from .dense import materialize
from .elimination import form_labels
from .form import Factor, Factored, Product
from .latex import dmark, mark, plain
from .names import factor_sym, sym_text
from .node import Node
from .registry import op_errors

__all__ = ["IndexForm", "index_form", "coef_text", "subscript", "summed_labels"]

_INNER = "klmnrstuvwxyzKLMNRSTUVWXYZ"  # letters for indices summed inside one op


def subscript(marked: str, labels: str) -> str:
    return f"{marked}_{labels}" if labels else marked


def coef_text(c: float) -> str:
    """``2``, ``1/6``, ``-0.25``: a coefficient as a short exact fraction where it is one."""
    f = Fraction(c).limit_denominator(1000)
    if abs(float(f) - c) > 1e-12 * max(1.0, abs(c)):
        return f"{c:g}"
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def summed_labels(F: Factored, t: Product) -> str:
    """The indices a term sums inside itself (in a factor, not an output or input axis)."""
    return "".join(c for c in dict.fromkeys("".join(f.labels for f in t.factors)) if c not in F.out + F.inp)


def _render(F: Factored, t: Product, first: bool) -> str:
    divides = [f.name.startswith("1/") and f.labels == "" for f in t.factors]  # 1/l: written "/ l"
    s = summed_labels(F, t)
    parts = [f"Σ_{s}"] if s else []
    parts += [f"δ_{d}" for d in t.deltas]
    parts += [subscript(mark(f.name), f.labels) for f, d in zip(t.factors, divides) if not d]
    if abs(t.coef) != 1:
        parts.insert(0, coef_text(abs(t.coef)))
    body = (" ".join(parts) or "1") + "".join(f" / {mark(f.name[2:])}" for f, d in zip(t.factors, divides) if d)
    sign = "−" if t.coef < 0 else ""
    return (sign + body) if first else ((" − " if sign else " + ") + body)


@dataclass
class IndexForm:
    """A local Jacobian ``dchild_lo/dparent_li``: the op's form in these letters, factors named by node."""

    lhs: str  # marked, e.g. "dY_cd/dW_ab"
    form: Factored
    sizes: Dict[str, int]
    dtype: np.dtype

    def rhs(self) -> str:
        out = f"δ(flat({self.form.out}), flat({self.form.inp}))" if self.form.flat else ""
        for t in self.form.terms:
            out += _render(self.form, t, first=not out)
        return out or "0"

    def text_rhs(self) -> str:
        return plain(self.rhs())

    def __str__(self) -> str:
        return plain(f"{self.lhs} = {self.rhs()}")

    def dense(self) -> np.ndarray:
        """The dense Jacobian this formula describes, shape out.shape + in.shape (the shared materializer)."""
        shape = lambda labels: tuple(self.sizes[c] for c in labels)  # noqa: E731
        return materialize(self.form, shape(self.form.out), shape(self.form.inp), self.dtype,
                           f"index form {plain(self.lhs)}")


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
    lo = lo if lo is not None else "".join(oe.get_symbol(k) for k in range(child.ndim))
    li = li if li is not None else "".join(oe.get_symbol(child.ndim + k) for k in range(parent.ndim))
    shown = dict(names or {})
    values = [p.value for p in child.parents]
    sizes = dict(zip(lo + li, child.shape + parent.shape))
    terms, flat = [], False
    for pos in positions:  # X @ X: the forms of both slots, summed
        with op_errors(child.op, child.parents, f"Jacobian w.r.t. {parent.name}"):
            F = child.op.form(pos, child.value, *values, **child.params).simplified()
        flat |= F.flat
        spare = iter(c for c in _INNER if c not in lo + li)
        for t, inner in zip(F.terms, form_labels(F)):
            local = dict(zip(F.out + F.inp, lo + li), **{c: next(spare) for c in inner})
            factors = tuple(Factor(np.asarray(f.value), "".join(local[c] for c in f.labels),
                                   sym_text(factor_sym(f.name, child, shown))) for f in t.factors)
            for f in factors:
                sizes.update(zip(f.labels, f.value.shape))
            terms.append(Product(factors, tuple(local[d[0]] + local[d[1]] for d in t.deltas), float(t.coef)))
    name = lambda n: subscript(dmark(shown.get(n.id, n.name)), lo if n is child else li)  # noqa: E731
    return IndexForm(f"d{name(child)}/d{name(parent)}", Factored(lo, li, tuple(terms), flat), sizes, child.dtype)
