"""Kronecker/vec forms of 2-D cases, read off an op's index form.

numpy is row-major: ``vec(A) = A.ravel()`` stacks the *rows*, and
``J.reshape(y.size, x.size)`` is dvec(y)/dvec(x) in that convention, where
``(P ⊗ Q)[(i,j),(p,q)] = P[i,p] Q[j,q]``. A term of an index form is a
Kronecker product when its factors and deltas split into one group on the axis
pair (i, p) and one on (j, q): ``δ_ip B_qj`` is ``I ⊗ Bᵀ``. Textbooks
(Magnus–Neudecker) stack *columns*, ``vec(A) = A.ravel(order="F")``, where the
same Jacobian is ``Bᵀ ⊗ I``: the factors of every Kronecker product swap places.
Besides the Kronecker products: the elementwise diagonal ``diag(vec(F))``, the
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

from .index_form import IndexFactor, IndexForm, IndexTerm, coef_text, index_form
from .latex import mark, plain
from .names import flip, sym_text
from .node import Node

__all__ = ["VecForm", "vec_form", "ROW_MAJOR_NOTE", "MATRIX_LIMIT"]

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


# A group: (text, matrix-builder) for the block on one axis pair (o, p); o or p may be "" (a vector side).
Group = Tuple[str, object]


def _name(f: IndexFactor, transposed: bool) -> str:
    return mark(sym_text(flip(f.sym) if transposed else f.sym))


def _group(items: List[object], o: str, p: str, sizes) -> Optional[Tuple[str, np.ndarray]]:
    """The matrix on axis pair (o, p) that the items (deltas and factors) make, with its text; None if none."""
    m, n = sizes.get(o, 1) if o else 1, sizes.get(p, 1) if p else 1
    if not items:
        if o and p:
            return None
        if o:
            return f"1_{m}", np.ones((m, 1))
        return (f"1_{n}ᵀ", np.ones((1, n))) if p else ("", np.ones((1, 1)))
    if len(items) != 1:
        return None
    it = items[0]
    if isinstance(it, tuple):  # a delta
        return (f"I_{m}", np.eye(m)) if o and p else None
    f: IndexFactor = it
    v = np.asarray(f.value, dtype=np.float64)
    if f.labels == o + p and o and p:
        return _name(f, False), v
    if f.labels == p + o and o and p:
        return _name(f, True), v.T
    if f.labels == o and not p:
        return _name(f, False), v.reshape(m, 1)
    if f.labels == p and not o:
        return _name(f, False) + "ᵀ", v.reshape(1, n)
    return None


def _term(t: IndexTerm, out: str, inp: str, sizes, build: bool) -> Optional[Tuple[str, str, Optional[np.ndarray]]]:
    """One term as (row-major text, column-major text, matrix), or None when it is no Kronecker product."""
    scalars = [f for f in t.factors if not f.labels]
    arrays: List[object] = [f for f in t.factors if f.labels] + list(t.deltas)
    scale = t.coef * float(np.prod([np.asarray(f.value, dtype=np.float64) for f in scalars])) if build else t.coef
    words = [plain(f.render()) if not f.divides else None for f in scalars]
    pre = " ".join(mark(w) for w in words if w)
    post = "".join(f" / {mark(f.sym[0][2:])}" for f in scalars if f.divides)
    c = abs(t.coef)
    sign = "−" if t.coef < 0 else ""
    mult = (coef_text(c) + " " if c != 1 else "") + (pre + " " if pre else "")

    def wrap(body: str) -> str:
        if " ⊗ " in body and (sign or mult or post):
            body = f"({body})"
        return f"{sign}{mult}{body}{post}"

    if not out:  # a scalar: the row vector vec(M)ᵀ of the in-shaped term
        if len(inp) > 2 or len(arrays) > 1:
            return None
        n = int(np.prod([sizes[c] for c in inp]))
        if not arrays:
            text, mat = f"1_{n}ᵀ", np.ones((1, n))
        elif isinstance(arrays[0], tuple):
            if len(inp) != 2 or set(arrays[0]) != set(inp):
                return None
            text, mat = f"vec(I_{sizes[inp[0]]})ᵀ", np.eye(sizes[inp[0]]).reshape(1, -1)
        else:
            f = arrays[0]
            if sorted(f.labels) != sorted(inp):
                return None
            v = np.asarray(f.value, dtype=np.float64)
            if f.labels != inp:
                v = v.T
            text, mat = f"vec({_name(f, f.labels != inp)})ᵀ", v.reshape(1, -1)
        return wrap(text), wrap(text), (scale * mat if build else None)
    # the elementwise diagonal: every output index tied to its input index, factors over the output indices
    deltas = set(t.deltas)
    if len(out) == len(inp) and deltas == set(zip(out, inp)) and all(f.labels == out for f in t.factors if f.labels):
        arr = [f for f in t.factors if f.labels]
        n = int(np.prod([sizes[c] for c in out]))
        if not arr:
            return wrap(f"I_{n}"), wrap(f"I_{n}"), (scale * np.eye(n) if build else None)
        if len(arr) == 1:
            text = f"diag(vec({_name(arr[0], False)}))"
            mat = np.diag(np.asarray(arr[0].value, dtype=np.float64).ravel()) if build else None
            return wrap(text), wrap(text), (scale * mat if build else None)
        return None
    if len(out) == 2 and len(inp) == 2 and deltas == {(out[0], inp[1]), (out[1], inp[0])} and len(arrays) == 2:
        r, s_ = sizes[inp[0]], sizes[inp[1]]  # a transpose: the commutation matrix
        K = np.zeros((r * s_, r * s_))
        for i in range(r):
            for j in range(s_):
                K[j * r + i, i * s_ + j] = 1.0
        return wrap(f"K_{{{s_},{r}}}"), wrap(f"K_{{{r},{s_}}}"), (scale * K if build else None)
    if len(out) > 2 or len(inp) > 2:
        return None
    outs = [(out[0], out[1])] if len(out) == 2 else [("", out), (out, "")]
    ins = [(inp[0], inp[1])] if len(inp) == 2 else [("", inp), (inp, "")] if inp else [("", "")]
    for o1, o2 in outs:
        for p1, p2 in ins:
            g1 = [a for a in arrays if set(a if isinstance(a, tuple) else a.labels) <= {o1, p1} - {""}]
            g2 = [a for a in arrays if set(a if isinstance(a, tuple) else a.labels) <= {o2, p2} - {""}]
            if len(g1) + len(g2) != len(arrays):
                continue
            A, B = _group(g1, o1, p1, sizes), _group(g2, o2, p2, sizes)
            if A is None or B is None:
                continue
            (ta, ma), (tb, mb) = A, B
            parts = [x for x in (ta, tb) if x]
            row = " ⊗ ".join(parts) or "1"
            col = " ⊗ ".join(reversed(parts)) or "1"
            return wrap(row), wrap(col), (scale * np.kron(ma, mb) if build else None)
    return None


def vec_form(child: Node, parent: Node, names: Optional[Mapping[int, str]] = None,
             form: Optional[IndexForm] = None) -> Optional[VecForm]:
    """The Kronecker/vec form of dchild/dparent (up to 2-D on each side), or None."""
    if child.ndim > 2 or parent.ndim > 2:
        return None
    form = form if form is not None else index_form(child, parent, names=names)
    if form is None:
        return None
    build = child.size * parent.size <= MATRIX_LIMIT
    if form.flat:  # a C-order reshape keeps numpy's vec: the identity
        if form.terms:
            return None
        n = child.size
        return VecForm(f"I_{n}", "a permutation matrix (unless the reshape keeps the column-major order)",
                       np.eye(n) if build else None,
                       note="a row-major (C-order) reshape keeps numpy's vec: its Jacobian is the identity")
    pieces = [_term(t, form.out_labels, form.in_labels, form.sizes, build) for t in form.terms]
    if not pieces or any(p is None for p in pieces):
        return None
    row = pieces[0][0] + "".join((" − " + p[0][1:]) if p[0].startswith("−") else " + " + p[0] for p in pieces[1:])
    col = pieces[0][1] + "".join((" − " + p[1][1:]) if p[1].startswith("−") else " + " + p[1] for p in pieces[1:])
    matrix = sum(p[2] for p in pieces) if build else None
    note = ""
    if "K_{" in row:
        note = "K_{r,s} is the commutation matrix with K vec(A) = vec(Aᵀ) for A r×s (column-major)"
    elif "diag(vec(" in row:
        note = "the same diagonal in both conventions, its entries in the order of each vec"
    return VecForm(row, col, matrix, note)
