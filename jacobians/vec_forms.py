"""Kronecker/vec forms of 2-D cases, read off an op's index form.

numpy is row-major: ``vec(A) = A.ravel()`` stacks the *rows*, and
``J.reshape(y.size, x.size)`` is dvec(y)/dvec(x) in that convention, where
``(P ⊗ Q)[(i,j),(p,q)] = P[i,p] Q[j,q]``. A term of an index form is a
Kronecker product when its factors and deltas split into one group on the axis
pair (i, p) and one on (j, q): ``δ_ip B_qj`` is ``I ⊗ Bᵀ``. Textbooks
(Magnus–Neudecker) stack *columns*, ``vec(A) = A.ravel(order="F")``, where the
same Jacobian is ``Bᵀ ⊗ I``: the factors of every Kronecker product swap places.
Besides Kronecker products: the elementwise diagonal ``diag(vec(F))``, the
commutation matrix of a transpose, and the row vector ``vec(F)ᵀ`` of a scalar.

Each form carries the matrix built from its own pieces with ``np.kron``, so
explain can check it against the Jacobian.

>>> import numpy as np, jacobians as jx
>>> X = jx.var(np.ones((3, 4)), name="X"); W = jx.var(np.ones((3, 3)), name="W")
>>> v = vec_form(W @ X, W)
>>> v.row_text, v.col_text
('I_3 ⊗ Xᵀ', 'Xᵀ ⊗ I_3')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple

import numpy as np

from .form import Factor, Product
from .index_form import IndexForm, coef_text, index_form
from .latex import mark, plain
from .names import flip, sym_text
from .node import Node

__all__ = ["VecForm", "vec_form", "kron_term", "ROW_MAJOR_NOTE", "MATRIX_LIMIT"]

ROW_MAJOR_NOTE = (
    "vec is numpy's row-major vec(A) = A.ravel() (rows stacked), so dvec(y)/dvec(x) = J.reshape(y.size, x.size); "
    "with the column-major vec of textbooks, A.ravel(order='F'), every Kronecker product swaps its factors "
    "(I ⊗ Bᵀ becomes Bᵀ ⊗ I)"
)
MATRIX_LIMIT = 250_000  # a form's matrix is built (to check it) up to this many entries


@dataclass
class VecForm:
    """dvec(child)/dvec(parent) as a Kronecker expression, in both vec conventions."""

    row_major: str  # marked formula, numpy's vec (rows stacked)
    col_major: str  # textbook vec (columns stacked)
    matrix: Optional[np.ndarray]  # the row-major matrix the formula describes (None when too large to build)
    note: str = ""

    @property
    def row_text(self) -> str:
        """The row-major (numpy) form as plain text, e.g. ``I_3 ⊗ Xᵀ``."""
        return plain(self.row_major)

    @property
    def col_text(self) -> str:
        """The column-major (textbook) form as plain text, e.g. ``Xᵀ ⊗ I_3``."""
        return plain(self.col_major)


Piece = Tuple[str, np.ndarray]  # a matrix's text and value


def _named(f: Factor, transposed: bool = False, wrap: bool = True) -> str:
    return mark(sym_text(flip((f.name, False)) if transposed else (f.name, False)), wrap)


def _group(items: List[object], o: str, p: str, sizes) -> Optional[Piece]:
    """The block on axis pair (o, p) that the items (deltas, factors) make; o or p "" for a vector side."""
    m, n = sizes.get(o, 1), sizes.get(p, 1)
    if not items:
        return None if o and p else (f"1_{m}", np.ones((m, 1))) if o else (f"1_{n}ᵀ", np.ones((1, n))) if p \
            else ("", np.ones((1, 1)))
    if len(items) != 1:
        return None
    f = items[0]
    if isinstance(f, str):  # a delta
        return (f"I_{m}", np.eye(m)) if o and p else None
    v = np.asarray(f.value, dtype=np.float64)
    if o and p and f.labels in (o + p, p + o):
        return (_named(f), v) if f.labels == o + p else (_named(f, True), v.T)
    if f.labels == (o or p) and not (o and p):
        return (_named(f), v.reshape(m, 1)) if o else (_named(f) + "ᵀ", v.reshape(1, n))
    return None


def _kron(arrays: List[object], out: str, inp: str, sizes) -> Optional[Tuple[str, str, np.ndarray]]:
    """The term as G1 ⊗ G2 over the axis pairs (out[0], inp[0]), (out[1], inp[1]) (a vector side is "")."""
    outs = [(out[0], out[1])] if len(out) == 2 else [("", out), (out, "")]
    ins = [(inp[0], inp[1])] if len(inp) == 2 else [("", inp), (inp, "")] if inp else [("", "")]
    labels = lambda a: set(a) if isinstance(a, str) else set(a.labels)  # noqa: E731
    for o1, o2 in outs:
        for p1, p2 in ins:
            g1 = [a for a in arrays if labels(a) <= {o1, p1} - {""}]
            g2 = [a for a in arrays if labels(a) <= {o2, p2} - {""}]
            if len(g1) + len(g2) != len(arrays):
                continue
            A, B = _group(g1, o1, p1, sizes), _group(g2, o2, p2, sizes)
            if A is not None and B is not None:
                parts = [x for x in (A[0], B[0]) if x]
                return " ⊗ ".join(parts) or "1", " ⊗ ".join(reversed(parts)) or "1", np.kron(A[1], B[1])
    return None


def _special(arrays: List[object], out: str, inp: str, sizes) -> Optional[Tuple[str, str, np.ndarray]]:
    """A scalar's row vector vec(M)ᵀ, the elementwise diagonal, or a transpose's commutation matrix."""
    deltas = {a for a in arrays if isinstance(a, str)}
    factors = [a for a in arrays if not isinstance(a, str)]
    if not out:
        n = int(np.prod([sizes[c] for c in inp]))
        if not arrays:
            return f"1_{n}ᵀ", f"1_{n}ᵀ", np.ones((1, n))
        if len(arrays) == 1 and deltas and len(inp) == 2 and set(next(iter(deltas))) == set(inp):
            t = f"vec(I_{sizes[inp[0]]})ᵀ"
            return t, t, np.eye(sizes[inp[0]]).reshape(1, -1)
        if len(arrays) == 1 and factors and sorted(factors[0].labels) == sorted(inp) and len(inp) <= 2:
            f = factors[0]
            v = np.asarray(f.value, dtype=np.float64)
            t = f"vec({_named(f, f.labels != inp, wrap=False)})ᵀ"
            return t, t, (v if f.labels == inp else v.T).reshape(1, -1)
        return None
    if len(out) == len(inp) and deltas == {o + p for o, p in zip(out, inp)} and all(f.labels == out for f in factors):
        n = int(np.prod([sizes[c] for c in out]))
        if not factors:
            return f"I_{n}", f"I_{n}", np.eye(n)
        if len(factors) == 1:
            t = f"diag(vec({_named(factors[0], wrap=False)}))"
            return t, t, np.diag(np.asarray(factors[0].value, dtype=np.float64).ravel())
    if len(out) == len(inp) == 2 and deltas == {out[0] + inp[1], out[1] + inp[0]} and not factors:
        r, s = sizes[inp[0]], sizes[inp[1]]
        K = np.zeros((r * s, r * s))
        for i in range(r):
            K[np.arange(s) * r + i, i * s + np.arange(s)] = 1.0
        return f"K_{{{s},{r}}}", f"K_{{{r},{s}}}", K
    return None


def kron_term(t: Product, out: str, inp: str, sizes) -> Optional[Tuple[str, str, np.ndarray]]:
    """One term as (row-major text, column-major text, matrix), or None when it has no such form."""
    scalars = [f for f in t.factors if not f.labels]
    arrays: List[object] = [f for f in t.factors if f.labels] + list(t.deltas)
    if len(out) > 2 or len(inp) > 2:
        return None
    found = _special(arrays, out, inp, sizes) or _kron(arrays, out, inp, sizes)
    if found is None:
        return None
    scale = t.coef * float(np.prod([np.asarray(f.value, dtype=np.float64) for f in scalars]))
    pre = " ".join(mark(f.name) for f in scalars if not f.name.startswith("1/"))
    post = "".join(f" / {mark(f.name[2:])}" for f in scalars if f.name.startswith("1/"))
    sign = "−" if t.coef < 0 else ""
    mult = (coef_text(abs(t.coef)) + " " if abs(t.coef) != 1 else "") + (pre + " " if pre else "")

    def wrap(body: str) -> str:
        return f"{sign}{mult}{'(' + body + ')' if ' ⊗ ' in body and (sign or mult or post) else body}{post}"

    return wrap(found[0]), wrap(found[1]), scale * found[2]


def vec_form(child: Node, parent: Node, names: Optional[Mapping[int, str]] = None,
             form: Optional[IndexForm] = None) -> Optional[VecForm]:
    """The Kronecker/vec form of dchild/dparent (up to 2-D on each side), or None."""
    if child.ndim > 2 or parent.ndim > 2 or child.size * parent.size > MATRIX_LIMIT:
        return None
    form = form if form is not None else index_form(child, parent, names=names)
    if form is None:
        return None
    F = form.form
    if F.flat:  # a C-order reshape keeps numpy's vec: the identity
        return None if F.terms else VecForm(
            f"I_{child.size}", "a permutation matrix (unless the reshape keeps the column-major order)",
            np.eye(child.size), note="a row-major (C-order) reshape keeps numpy's vec: its Jacobian is the identity")
    pieces = [kron_term(t, F.out, F.inp, form.sizes) for t in F.terms]
    if not pieces or any(p is None for p in pieces):
        return None
    join = lambda k: pieces[0][k] + "".join(  # noqa: E731
        " − " + p[k][1:] if p[k].startswith("−") else " + " + p[k] for p in pieces[1:])
    row = join(0)
    note = ("K_{r,s} is the commutation matrix with K vec(A) = vec(Aᵀ) for A r×s (column-major)" if "K_{" in row
            else "the same diagonal in both conventions, its entries in the order of each vec" if "diag(" in row
            else "")
    return VecForm(row, join(1), sum(p[2] for p in pieces), note)
