"""``explain(y, x)``: the derivation of dy/dx, written out.

For every edge between x and y it gives the local Jacobian in index notation,
with the einsum labels the chain rule uses (``dY_cd/dW_ab = δ_ca X_bd``), its
shape ``out.shape + in.shape`` and, where the op has one, its Kronecker/vec
form. For every path it gives the chain as an index sum, the einsum equation,
the pairwise contraction order opt_einsum chose and the FLOPs of each step.

The index forms are data, not only text: each is a sum of terms, each term a
coefficient times Kronecker deltas times indexed arrays, and
:meth:`IndexForm.evaluate` turns it back into the dense Jacobian (the tests
check it against central differences for every op).

vec convention. numpy is row-major: ``vec(A) = A.ravel()`` stacks the *rows*,
and ``J.reshape(y.size, x.size)`` is the matricized Jacobian dvec(y)/dvec(x)
in that convention. There ``(P ⊗ Q)[(i,j),(p,q)] = P[i,p] Q[j,q]``, so
``Y = A B`` gives ``dvec(Y)/dvec(A) = I ⊗ Bᵀ``. Textbooks (Magnus–Neudecker)
stack *columns*, ``vec(A) = A.ravel(order="F")``, where the same Jacobian is
``Bᵀ ⊗ I``: the factors of every Kronecker product swap places.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from contextvars import ContextVar
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import opt_einsum as oe

from .chain_rule import ORDERS, Plan, _labels, plan
from .graph import between, edges, local_jacobian
from .node import Node
from .scatter import broadcast_ties

__all__ = ["explain", "Derivation", "IndexForm", "VecForm", "index_form", "vec_form", "VEC_FORMS", "ROW_MAJOR_NOTE"]

ROW_MAJOR_NOTE = (
    "vec is numpy's row-major vec(A) = A.ravel() (rows stacked), so dvec(y)/dvec(x) = J.reshape(y.size, x.size); "
    "with the column-major vec of textbooks, A.ravel(order='F'), every Kronecker product swaps its factors "
    "(I ⊗ Bᵀ becomes Bᵀ ⊗ I)"
)
_CHECK_LIMIT = 250_000  # vec forms are checked numerically up to this many Jacobian entries

# ---------------------------------------------------------------- names
# Names are wrapped in \x01…\x02 inside formula strings so the LaTeX renderer can
# typeset them (\mathrm{yhat}) while the text renderer prints them as they are.
_A, _B = "\x01", "\x02"


_NAMES: ContextVar[Mapping[int, str]] = ContextVar("explain_names", default={})


def _nm(node: Node) -> str:
    """The display name of a node: from explain(..., names=), else node.name."""
    return _NAMES.get().get(node.id, node.name)


def _n(name: str, wrap: bool = True) -> str:
    """A node name, marked; parenthesized when an operator or space appears outside parentheses."""
    depth, bare_op = 0, False
    for c in name:
        depth += (c == "(") - (c == ")")
        bare_op |= depth == 0 and c in " +-*/@,"
    if wrap and bare_op:
        name = f"({name})"
    return f"{_A}{name}{_B}"


def _dn(name: str) -> str:
    """A marked name to write after 'd': d(fro(W @ X)), not dfro(W @ X)."""
    marked = _n(name)
    if "(" in name and not marked.startswith(_A + "("):
        marked = _n(f"({name})", wrap=False)
    return marked


def _nT(name: str) -> str:
    """The marked name of a transpose: Xᵀ, or X when the name already ends in ᵀ."""
    return _n(name[:-1]) if name.endswith("ᵀ") else _n(name) + "ᵀ"


def _sub(marked: str, labels: str) -> str:
    return f"{marked}_{labels}" if labels else marked


def _txt(s: str) -> str:
    return s.replace(_A, "").replace(_B, "")


_TEX_SYMBOLS = [
    ("Σ_{", r"\sum_{"), ("Σ_", r"\sum_"), ("Σ", r"\sum "), ("δ", r"\delta"), ("σ", r"\sigma"), ("⊗", r"\otimes "),
    ("·", r"\cdot "), ("ᵀ", r"^{\top}"), ("⁻¹", r"^{-1}"), ("²", "^{2}"), ("‖", r"\|"), ("√", r"\sqrt"),
    ("→", r"\to "), ("−", "-"), ("∂", r"\partial "), ("×", r"\times "), ("…", r"\dots "),
]
_TEX_WORDS = re.compile(r"\b(exp|log|sin|cos|tanh|sign|softmax|diag|vec|tr|flat)\b")
_TEX_FUNCS = {"exp": r"\exp", "log": r"\log", "sin": r"\sin", "cos": r"\cos", "tanh": r"\tanh",
              "tr": r"\operatorname{tr}"}


def _tex_name(name: str) -> str:
    if len(name) == 1 or (len(name) == 2 and name[1] == "ᵀ"):
        return _tex_plain(name)
    esc = name.replace("\\", r"\backslash ").replace("_", r"\_").replace("#", r"\#").replace("&", r"\&")
    return r"\mathrm{" + _tex_plain(esc) + "}"


def _tex_plain(s: str) -> str:
    for a, b in _TEX_SYMBOLS:
        s = s.replace(a, b)
    return s


def _tex(s: str) -> str:
    """LaTeX (math mode) for a formula string."""
    s = s.replace("d" + _A, r"\partial " + _A)
    out = []
    for k, part in enumerate(re.split(f"[{_A}{_B}]", s)):
        if k % 2:  # a name
            out.append(_tex_name(part))
            continue
        part = _TEX_WORDS.sub(lambda m: _TEX_FUNCS.get(m.group(1), r"\operatorname{" + m.group(1) + "}"), part)
        part = part.replace("dvec(", r"\partial\operatorname{vec}(")
        part = re.sub(r"_(\w+)", r"_{\1}", part)
        out.append(_tex_plain(part))
    return "".join(out)


def _tex_text(s: str) -> str:
    """A prose line as LaTeX \\text{} (names and symbols kept)."""
    s = _txt(s).replace("\\", "/").replace("_", r"\_").replace("#", r"\#").replace("{", r"\{").replace("}", r"\}")
    s = s.replace("&", r"\&").replace("%", r"\%").replace("^", r"\^{}")
    return r"\text{" + s + "}"


# ---------------------------------------------------------------- index forms
@dataclass
class Factor:
    """An indexed array in an index formula: ``name_labels`` (or a template around it)."""

    name: str  # marked name
    labels: str
    value: np.ndarray  # axes in the order of ``labels``
    template: str = "{}"  # e.g. "exp({})"
    divide: bool = False  # rendered as "/ name_labels"

    def render(self) -> str:
        return self.template.format(_sub(self.name, self.labels))


@dataclass
class Term:
    """coef · Π δ · Π factors."""

    coef: float = 1.0
    coef_text: str = ""  # e.g. "2/6"; empty: from coef (±1 only)
    deltas: List[Tuple[str, str]] = field(default_factory=list)
    factors: List[Factor] = field(default_factory=list)

    def render(self) -> str:
        parts = [f"δ_{a}{b}" for a, b in self.deltas]
        parts += [f.render() for f in self.factors if not f.divide]
        if self.coef_text:
            parts.insert(0, self.coef_text)
        body = " ".join(parts) or "1"
        for f in self.factors:
            if f.divide:
                body += " / " + f.render()
        return body


@dataclass
class IndexForm:
    """A local Jacobian ``dchild_lo/dparent_li`` as a sum of index terms."""

    lhs: str  # marked, e.g. "dY_cd/dW_ab"
    terms: List[Term]
    out_labels: str
    in_labels: str
    sizes: Dict[str, int]

    def rhs(self) -> str:
        out = ""
        for k, t in enumerate(self.terms):
            body = t.render()
            neg = t.coef < 0 and not t.coef_text
            if k == 0:
                out = ("−" if neg else "") + body
            else:
                out += (" − " if neg else " + ") + body
        return out

    def text_rhs(self) -> str:
        return _txt(self.rhs())

    def __str__(self) -> str:
        return _txt(f"{self.lhs} = {self.rhs()}")

    def evaluate(self) -> np.ndarray:
        """The dense Jacobian this formula describes, shape out.shape + in.shape."""
        result = 0.0
        out = self.out_labels + self.in_labels
        for t in self.terms:
            ops: List[object] = []
            subs: List[str] = []
            for a, b in t.deltas:
                ops.append(np.eye(self.sizes[a]))
                subs.append(a + b)
            for f in t.factors:
                v = np.asarray(f.value, dtype=np.float64)
                ops.append(1.0 / v if f.divide else v)
                subs.append(f.labels)
            present = set("".join(subs))
            for c in out:  # indices no factor mentions: the term is constant along them
                if c not in present:
                    ops.append(np.ones(self.sizes[c]))
                    subs.append(c)
            value = np.einsum(",".join(subs) + "->" + out, *ops) if ops else np.ones(())
            result = result + t.coef * value
        return np.broadcast_to(result, tuple(self.sizes[c] for c in out)).copy()


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


# f'(u) of the one-input elementwise ops: (template around u_labels, value from x and params)
_DERIVATIVES: Dict[str, Tuple[str, Callable[..., np.ndarray]]] = {
    "exp": ("exp({})", lambda x: np.exp(x)),
    "sin": ("cos({})", lambda x: np.cos(x)),
    "cos": ("(−sin({}))", lambda x: -np.sin(x)),
    "tanh": ("(1 − tanh({})²)", lambda x: 1 - np.tanh(x) ** 2),
    "sigmoid": ("σ({0}) (1 − σ({0}))", lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "relu": ("[{} > 0]", lambda x: (x > 0).astype(np.float64)),
    "softplus": ("σ({})", lambda x: _sigmoid(x)),
    "abs": ("sign({})", lambda x: np.sign(x)),
    "sqrt": ("1/(2√{})", lambda x: 0.5 / np.sqrt(x)),
}


def _axes_labels(labels: str, shape: Tuple[int, ...], out_labels: str, out_shape: Tuple[int, ...]) -> str:
    """Labels of an operand broadcast into the output: its own axes take the output's labels,
    a broadcast length-1 axis keeps its own (free) label."""
    off = len(out_shape) - len(shape)
    return "".join(out_labels[a + off] if shape[a] == out_shape[a + off] else labels[a] for a in range(len(shape)))


_BINARY = ("add", "subtract", "multiply", "divide")


def _elementwise_terms(child: Node, parent: Node, pos: int, lo: str, li: str) -> Optional[List[Term]]:
    name = child.op.name
    if name not in _DERIVATIVES and name not in _BINARY and name not in ("negative", "log", "square", "power"):
        return None
    ties = broadcast_ties(child.shape, parent.shape)
    n_out = child.ndim
    deltas = [(lo[k], li[a - n_out]) for k, a in ties]
    if name in _DERIVATIVES:
        tmpl, fn = _DERIVATIVES[name]
        return [Term(deltas=deltas, factors=[Factor(_n(_nm(parent)), li, fn(parent.value), tmpl)])]
    if name == "negative":
        return [Term(-1.0, deltas=deltas)]
    if name == "log":
        return [Term(deltas=deltas, factors=[Factor(_n(_nm(parent)), li, parent.value, divide=True)])]
    if name == "square":
        return [Term(2.0, "2", deltas, [Factor(_n(_nm(parent)), li, parent.value)])]
    if name == "power":
        p = float(child.params["p"])
        return [Term(p, f"{p:g}", deltas, [Factor(_n(_nm(parent)), li, parent.value ** (p - 1), "{}^" + f"{p - 1:g}")])]
    other = child.parents[1 - pos]
    me_lab = _axes_labels(li, parent.shape, lo, child.shape)
    if name == "add":
        return [Term(deltas=deltas)]
    if name == "subtract":
        return [Term(-1.0 if pos else 1.0, deltas=deltas)]
    if name == "multiply":
        return [Term(deltas=deltas, factors=[_at_output(other, lo, child.shape)])]
    if pos == 0:  # d(A/B)/dA = 1/B
        return [Term(deltas=deltas, factors=[_at_output(other, lo, child.shape, divide=True)])]
    # d(A/B)/dB = −A/B²
    return [Term(-1.0, deltas=deltas, factors=[_at_output(other, lo, child.shape),
                                               Factor(_n(_nm(parent)), me_lab, parent.value ** 2, "{}²", divide=True)])]


def _at_output(node: Node, lo: str, out_shape: Tuple[int, ...], divide: bool = False) -> Factor:
    """``node`` indexed by the output labels it is broadcast along (its broadcast length-1 axes dropped)."""
    off = len(out_shape) - node.ndim
    keep = [a for a in range(node.ndim) if node.shape[a] == out_shape[a + off]]
    value = node.value.reshape([node.shape[a] for a in keep])
    return Factor(_n(_nm(node)), "".join(lo[a + off] for a in keep), value, divide=divide)


def _matmul_terms(child: Node, parent: Node, pos: int, lo: str, li: str) -> List[Term]:
    a, b = child.parents
    # Y_ij = Σ_k A_ik B_kj; a vector operand has no i (or no j)
    i = lo[0] if a.ndim == 2 else ""
    j = lo[-1] if b.ndim == 2 else ""
    if pos == 0:  # dY_ij/dA_pq = δ_ip B_qj
        p, q = (li[0], li[1]) if a.ndim == 2 else ("", li[0])
        deltas = [(i, p)] if i else []
        return [Term(deltas=deltas, factors=[Factor(_n(_nm(b)), q + j, b.value)])]
    p, q = (li[0], li[1]) if b.ndim == 2 else (li[0], "")  # dY_ij/dB_pq = A_ip δ_qj
    deltas = [(j, q)] if j else []
    return [Term(deltas=deltas, factors=[Factor(_n(_nm(a)), i + p, a.value)])]


def _reduction_terms(child: Node, parent: Node, lo: str, li: str, axes: Tuple[int, ...],
                     keepdims: bool) -> List[Tuple[str, str]]:
    """The deltas of a reduction: each kept input axis tied to its output axis."""
    deltas, k = [], 0
    for ax in range(parent.ndim):
        if ax in axes:
            k += keepdims
            continue
        deltas.append((lo[k], li[ax]))
        k += 1
    return deltas


def _terms(child: Node, parent: Node, pos: int, lo: str, li: str) -> Optional[List[Term]]:
    """The index terms of dchild/dparent for the parent in input position ``pos``; None if not tabulated."""
    name = child.op.name
    prm = child.params
    if name == "matmul":
        return _matmul_terms(child, parent, pos, lo, li)
    if name == "transpose":  # Y_{i_k} = X_{i_{axes[k]}}
        return [Term(deltas=[(lo[k], li[a]) for k, a in enumerate(prm["axes"])])]
    if name in ("sum", "mean"):
        d = _reduction_terms(child, parent, lo, li, prm["axes"], prm["keepdims"])
        if name == "sum":
            return [Term(deltas=d)]
        count = int(np.prod([parent.shape[a] for a in prm["axes"]]))
        return [Term(1.0 / count, f"1/{count}", d)]
    if name == "trace":
        return [Term(deltas=[(li[0], li[1])])]
    if name == "fro":
        return [Term(factors=[Factor(_n(_nm(parent)), li, parent.value),
                              Factor(_n(_nm(child)), "", child.value, divide=True)])]
    if name == "mse":
        p, t = child.parents
        n = p.size
        diff = Factor(f"({_n(_nm(p))} − {_n(_nm(t))})", li, p.value - t.value)
        sign = 1.0 if pos == 0 else -1.0
        return [Term(sign * 2.0 / n, ("" if pos == 0 else "−") + f"2/{n}", factors=[diff])]
    if name == "inv":  # dY_ij/dA_pq = −Y_ip Y_qj
        y = _n(_nm(child))
        return [Term(-1.0, factors=[Factor(y, lo[0] + li[0], child.value), Factor(y, li[1] + lo[1], child.value)])]
    if name in ("det", "logdet"):  # y (A⁻¹)_qp,  (A⁻¹)_qp
        ainv = Factor(f"({_n(_nm(parent))}⁻¹)", li[1] + li[0], np.linalg.inv(parent.value))
        fs = [Factor(_n(_nm(child)), "", child.value), ainv] if name == "det" else [ainv]
        return [Term(factors=fs)]
    if name == "solve":
        a, b = child.parents
        ainv = np.linalg.inv(a.value)
        j = lo[1] if child.ndim == 2 else ""
        if pos == 0:  # dX_ij/dA_pq = −(A⁻¹)_ip X_qj
            return [Term(-1.0, factors=[Factor(f"({_n(_nm(a))}⁻¹)", lo[0] + li[0], ainv),
                                        Factor(_n(_nm(child)), li[1] + j, child.value)])]
        q = li[1] if b.ndim == 2 else ""  # dX_ij/dB_pq = (A⁻¹)_ip δ_qj
        return [Term(deltas=[(j, q)] if j else [], factors=[Factor(f"({_n(_nm(a))}⁻¹)", lo[0] + li[0], ainv)])]
    if name in ("softmax", "log_softmax"):
        ax = prm["axis"]
        off = [(lo[k], li[k]) for k in range(child.ndim) if k != ax]
        s = child.value if name == "softmax" else np.exp(child.value)
        s_name = _n(_nm(child)) if name == "softmax" else _n(f"softmax({_nm(parent)})")
        s_j = lo[:ax] + li[ax] + lo[ax + 1:]  # S at the output index with the axis index taken from the input
        first = [Factor(s_name, lo, s)] if name == "softmax" else []
        return [Term(deltas=off + [(lo[ax], li[ax])], factors=list(first)),
                Term(-1.0, deltas=off, factors=first + [Factor(s_name, s_j, s)])]
    if name == "logsumexp":
        d = _reduction_terms(child, parent, lo, li, prm["axes"], False)
        e = np.exp(parent.value - np.expand_dims(child.value, prm["axes"]))
        return [Term(deltas=d, factors=[Factor(_n(f"softmax({_nm(parent)})"), li, e)])]
    return _elementwise_terms(child, parent, pos, lo, li)


def index_form(child: Node, parent: Node, lo: Optional[str] = None, li: Optional[str] = None) -> Optional[IndexForm]:
    """dchild/dparent in index notation with labels ``lo`` (child) and ``li`` (parent).

    None when the op has no tabulated form (then its registry formula is shown).

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((3, 4)), name="X"); W = jx.var(np.ones((3, 3)), name="W")
    >>> Y = W @ X
    >>> f = index_form(Y, W, "cd", "ab")
    >>> f.text_rhs()
    'δ_ca X_bd'
    >>> np.array_equal(f.evaluate(), jx.jacobian(Y, W))
    True
    """
    lo = lo if lo is not None else "".join(oe.get_symbol(k) for k in range(child.ndim))
    li = li if li is not None else "".join(oe.get_symbol(child.ndim + k) for k in range(parent.ndim))
    positions = [k for k, p in enumerate(child.parents) if p.id == parent.id]
    if child.op is None or not positions:
        return None
    terms: List[Term] = []
    for pos in positions:
        t = _terms(child, parent, pos, lo, li)
        if t is None:
            return None
        terms += t
    sizes = dict(zip(lo, child.shape))
    sizes.update(zip(li, parent.shape))
    for t in terms:
        for f in t.factors:
            sizes.update(zip(f.labels, np.shape(f.value)))
    lhs = f"d{_sub(_dn(_nm(child)), lo)}/d{_sub(_dn(_nm(parent)), li)}"
    return IndexForm(lhs, terms, lo, li, sizes)


# ---------------------------------------------------------------- vec (Kronecker) forms
@dataclass
class VecForm:
    """dvec(child)/dvec(parent) as a Kronecker expression, in both vec conventions."""

    row_major: str  # marked formula, numpy's vec (rows stacked)
    col_major: str  # textbook vec (columns stacked)
    matrix: np.ndarray  # the row-major matrix the formula describes
    note: str = ""

    @property
    def row_text(self) -> str:
        """The row-major (numpy) form as plain text, e.g. ``I_3 ⊗ Xᵀ``."""
        return _txt(self.row_major)

    @property
    def col_text(self) -> str:
        """The column-major (textbook) form as plain text, e.g. ``Xᵀ ⊗ I_3``."""
        return _txt(self.col_major)


def _ones(n: int) -> str:
    return f"1_{n}"


def _eye(n: int) -> str:
    return f"I_{n}"


def _kron(*ms: np.ndarray) -> np.ndarray:
    out = np.ones((1, 1))
    for m in ms:
        out = np.kron(out, np.atleast_2d(m))
    return out


def _vec_matmul(child: Node, parent: Node, pos: int) -> Optional[VecForm]:
    a, b = child.parents
    A, B = _n(_nm(a)), _n(_nm(b))
    av, bv = a.value, b.value
    if a.ndim == 2 and b.ndim == 2:
        m, n = child.shape
        if pos == 0:
            return VecForm(f"{_eye(m)} ⊗ {_nT(_nm(b))}", f"{_nT(_nm(b))} ⊗ {_eye(m)}", np.kron(np.eye(m), bv.T))
        return VecForm(f"{A} ⊗ {_eye(n)}", f"{_eye(n)} ⊗ {A}", np.kron(av, np.eye(n)))
    if a.ndim == 2:  # y = A b
        m = a.shape[0]
        if pos == 0:
            return VecForm(f"{_eye(m)} ⊗ {_nT(_nm(b))}", f"{_nT(_nm(b))} ⊗ {_eye(m)}", np.kron(np.eye(m), bv[None, :]))
        return VecForm(A, A, av)
    if b.ndim == 2:  # y = aᵀ B, a vector of length n
        n = b.shape[1]
        if pos == 0:
            return VecForm(_nT(_nm(b)), _nT(_nm(b)), bv.T)
        return VecForm(f"{_nT(_nm(a))} ⊗ {_eye(n)}", f"{_eye(n)} ⊗ {_nT(_nm(a))}", np.kron(av[None, :], np.eye(n)))
    other = b if pos == 0 else a  # y = aᵀ b
    return VecForm(_nT(_nm(other)), _nT(_nm(other)), other.value[None, :])


def _vec_transpose(child: Node, parent: Node, pos: int) -> Optional[VecForm]:
    if parent.ndim != 2:
        return None
    m, n = parent.shape
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            K[j * m + i, i * n + j] = 1.0  # vec(Xᵀ)[(j,i)] = vec(X)[(i,j)], row-major
    return VecForm(f"K_{{{n},{m}}}", f"K_{{{m},{n}}}", K,
                   note=f"K_{{r,s}} is the commutation matrix with K vec(A) = vec(Aᵀ) for A r×s (column-major)")


def _vec_inv(child: Node, parent: Node, pos: int) -> VecForm:
    Y = _n(_nm(child))
    return VecForm(f"−({Y} ⊗ {_nT(_nm(child))})", f"−({_nT(_nm(child))} ⊗ {Y})", -np.kron(child.value, child.value.T))


def _vec_solve(child: Node, parent: Node, pos: int) -> Optional[VecForm]:
    a, b = child.parents
    Ainv = f"{_n(_nm(a))}⁻¹"
    inv = np.linalg.inv(a.value)
    if pos == 0:
        x2 = child.value if child.ndim == 2 else child.value[:, None]
        return VecForm(f"−({Ainv} ⊗ {_nT(_nm(child))})", f"−({_nT(_nm(child))} ⊗ {Ainv})", -np.kron(inv, x2.T))
    if b.ndim == 1:
        return VecForm(Ainv, Ainv, inv)
    k = b.shape[1]
    return VecForm(f"{Ainv} ⊗ {_eye(k)}", f"{_eye(k)} ⊗ {Ainv}", np.kron(inv, np.eye(k)))


def _vec_elementwise(child: Node, parent: Node, pos: int) -> Optional[VecForm]:
    name = child.op.name
    if name in ("add", "subtract", "multiply", "divide") and parent.shape != child.shape:
        if name not in ("add", "subtract"):
            return None
        sign = "−" if (name == "subtract" and pos == 1) else ""
        s = -1.0 if sign else 1.0
        if parent.size == 1:
            return VecForm(f"{sign}{_ones(child.size)}", f"{sign}{_ones(child.size)}", s * np.ones((child.size, 1)))
        if child.ndim == 2 and parent.shape in ((child.shape[1],), (1, child.shape[1])):  # a row bias: 1_m b
            m, n = child.shape
            return VecForm(f"{sign}({_ones(m)} ⊗ {_eye(n)})", f"{sign}({_eye(n)} ⊗ {_ones(m)})",
                           s * _kron(np.ones((m, 1)), np.eye(n)))
        if child.ndim == 2 and parent.shape == (child.shape[0], 1):  # a column bias: b 1_nᵀ
            m, n = child.shape
            return VecForm(f"{sign}({_eye(m)} ⊗ {_ones(n)})", f"{sign}({_ones(n)} ⊗ {_eye(m)})",
                           s * _kron(np.eye(m), np.ones((n, 1))))
        return None
    form = index_form(child, parent)
    if form is None or parent.shape != child.shape:
        return None
    diag = np.einsum("ii->i", form.evaluate().reshape(child.size, parent.size)).copy()
    if name in ("add", "subtract", "negative") or (name == "power" and child.params["p"] == 1):
        body = f"{'−' if diag[0] < 0 else ''}{_eye(child.size)}"
        return VecForm(body, body, np.diag(diag))
    t = form.terms[0]
    inner = (Term(t.coef, t.coef_text, [], [Factor(f.name, "", f.value, f.template, f.divide)
                                                 for f in t.factors]).render())
    inner = _strip_parens(inner)
    sign = "−" if t.coef < 0 and not t.coef_text else ""
    shapes = {np.shape(f.value) for f in t.factors}
    if shapes and all(np.size(f.value) == 1 for f in t.factors):  # a scalar factor: a multiple of I
        return VecForm(f"{sign}{inner} {_eye(child.size)}", f"{sign}{inner} {_eye(child.size)}", np.diag(diag))
    if shapes - {child.shape}:  # a broadcast factor: vec of the broadcast array, not of the factor
        return None
    return VecForm(f"{sign}diag(vec({inner}))", f"{sign}diag(vec({inner}))", np.diag(diag),
                   note="the same diagonal in both conventions, its entries in the order of each vec")


def _strip_parens(s: str) -> str:
    """'(a (b))' -> 'a (b)' when the outer parentheses enclose everything."""
    if not (s.startswith("(") and s.endswith(")")):
        return s
    depth = 0
    for k, c in enumerate(s):
        depth += (c == "(") - (c == ")")
        if depth == 0 and k < len(s) - 1:
            return s
    return s[1:-1]


def _vec_reshape(child: Node, parent: Node, pos: int) -> VecForm:
    n = child.size
    return VecForm(_eye(n), "a permutation matrix (unless the reshape keeps the column-major order)", np.eye(n),
                   note="a row-major (C-order) reshape keeps numpy's vec: its Jacobian is the identity")


def _vec_reduce(child: Node, parent: Node, pos: int) -> Optional[VecForm]:
    name = child.op.name
    A = _n(_nm(parent))
    if name == "trace":
        n = parent.shape[0]
        return VecForm(f"vec({_eye(n)})ᵀ", f"vec({_eye(n)})ᵀ", np.eye(n).reshape(1, -1))
    if name == "fro":
        y = _n(_nm(child))
        A = _n(_nm(parent), False)
        return VecForm(f"vec({A})ᵀ / {y}", f"vec({A})ᵀ / {y}", parent.value.reshape(1, -1) / child.value)
    axes = child.params["axes"]
    scale = 1.0 if name == "sum" else 1.0 / np.prod([parent.shape[a] for a in axes])
    c = "" if name == "sum" else f"(1/{int(round(1 / scale))}) "
    if len(axes) == parent.ndim:
        one = f"{_ones(parent.size)}ᵀ"
        return VecForm(c + one, c + one, scale * np.ones((1, parent.size)))
    if parent.ndim == 2:
        m, n = parent.shape
        if axes == (0,):
            return VecForm(f"{c}{_ones(m)}ᵀ ⊗ {_eye(n)}", f"{c}{_eye(n)} ⊗ {_ones(m)}ᵀ",
                           scale * _kron(np.ones((1, m)), np.eye(n)))
        return VecForm(f"{c}{_eye(m)} ⊗ {_ones(n)}ᵀ", f"{c}{_ones(n)}ᵀ ⊗ {_eye(m)}",
                       scale * _kron(np.eye(m), np.ones((1, n))))
    return None


# op name -> builder(child, parent, position) of its Kronecker/vec form (None where it has none)
VEC_FORMS: Dict[str, Callable[[Node, Node, int], Optional[VecForm]]] = {
    "matmul": _vec_matmul,
    "transpose": _vec_transpose,
    "reshape": _vec_reshape,
    "inv": _vec_inv,
    "solve": _vec_solve,
    "trace": _vec_reduce, "fro": _vec_reduce, "sum": _vec_reduce, "mean": _vec_reduce,
    **{name: _vec_elementwise for name in (
        "add", "subtract", "multiply", "divide", "negative", "power", "exp", "log", "sqrt", "square",
        "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "abs")},
}


def vec_form(child: Node, parent: Node) -> Optional[VecForm]:
    """The Kronecker/vec form of dchild/dparent, or None.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((3, 4)), name="X"); W = jx.var(np.ones((3, 3)), name="W")
    >>> v = vec_form(W @ X, W)
    >>> v.row_text, v.col_text
    ('I_3 ⊗ Xᵀ', 'Xᵀ ⊗ I_3')
    """
    if child.op is None or child.op.name not in VEC_FORMS:
        return None
    positions = [k for k, p in enumerate(child.parents) if p.id == parent.id]
    if child.op.name in ("inv", "det", "logdet") and parent.ndim != 2:
        return None
    forms = [VEC_FORMS[child.op.name](child, parent, k) for k in positions]
    if not forms or any(f is None for f in forms):
        return None
    if len(forms) == 1:
        return forms[0]
    return VecForm(" + ".join(f.row_major for f in forms), " + ".join(f.col_major for f in forms),  # X @ X, X * X
                   sum(f.matrix for f in forms), forms[0].note)


# ---------------------------------------------------------------- the derivation
@dataclass
class Local:
    """One edge child ← parent: its local Jacobian in every form explain knows."""

    child: Node
    parent: Node
    out_labels: str
    in_labels: str
    index: Optional[IndexForm]
    vec: Optional[VecForm]
    vec_error: Optional[float]  # max |J - vec matrix|, None when not checked
    names: Mapping[int, str] = field(default_factory=dict)

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.child.shape + self.parent.shape

    def lhs(self) -> str:
        return f"d{_sub(_dn(_nm(self.child)), self.out_labels)}/d{_sub(_dn(_nm(self.parent)), self.in_labels)}"

    def text(self) -> str:
        """The formula as plain text, e.g. ``dY_cd/dW_ab = δ_ca X_bd``."""
        return _txt(self.formula())

    def formula(self) -> str:
        """Marked formula: the index form, or the op's registry formula."""
        token = _NAMES.set(self.names)
        try:
            return self._formula()
        finally:
            _NAMES.reset(token)

    def _formula(self) -> str:
        if self.index is not None:
            return f"{self.lhs()} = {self.index.rhs()}"
        return f"{self.lhs()}:  {self.child.op.formula}"


@dataclass
class Step:
    left: str  # marked, e.g. "dl/dY"
    right: str
    result: str
    einsum: str
    summed: str
    flops: int
    reused: bool = False  # an earlier path already computed this product


@dataclass
class PathDerivation:
    nodes: List[Node]
    chain: str  # marked index sum
    equation: str
    operand_shapes: List[Tuple[int, ...]]
    steps: List[Step]
    flops: int
    largest_intermediate: int


@dataclass
class Derivation:
    """What :func:`explain` returns; ``str()`` is text, and it renders as Markdown and LaTeX in Jupyter."""

    y: Node
    x: Node
    plan: Plan
    labels: Dict[int, str]
    locals: List[Local]
    paths: List[PathDerivation]
    flops_by_order: Dict[str, int]
    hold: Tuple[Node, ...] = ()
    names: Mapping[int, str] = field(default_factory=dict)  # node id -> display name

    # ------------------------------------------------------------ pieces
    def _d(self, top: Node, bottom: Node) -> str:
        return f"d{_dn(_nm(top))}/d{_dn(_nm(bottom))}"

    def headline(self) -> str:
        return (f"out {self.y.shape} + in {self.x.shape} → Jacobian shape {self.y.shape + self.x.shape}")

    def chain_rule(self) -> str:
        """The whole chain rule as plain text, e.g. ``dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab``."""
        token = _NAMES.set(self.names)
        try:
            return _txt(self.total())
        finally:
            _NAMES.reset(token)

    def total(self) -> str:
        """The whole chain rule, with marked names (for the renderers)."""
        ly, lx = self.labels.get(self.y.id, ""), self.labels.get(self.x.id, "")
        lhs = f"d{_sub(_dn(_nm(self.y)), ly)}/d{_sub(_dn(_nm(self.x)), lx)}"
        if not self.paths:
            return lhs + " = " + ("0" if self.plan.strategy == "independent" else "δ (the identity)")
        return lhs + " = " + "  +  ".join(p.chain for p in self.paths)

    def _notes(self) -> List[str]:
        notes = ["layout: a Jacobian has shape out.shape + in.shape (as in JAX, PyTorch, autograd)"]
        if self.hold:
            notes.append("held fixed (paths through them cut): " + ", ".join(_n(_nm(h)) for h in self.hold))
        if self.plan.strategy == "accumulate":
            notes.append(f"more paths than the planner enumerates: accumulated node by node ({self.plan.order} mode)")
        elif self.plan.strategy == "independent":
            notes.append(f"{_n(_nm(self.y))} does not depend on {_n(_nm(self.x))}: the Jacobian is zeros")
        elif self.plan.strategy == "identity":
            notes.append("y is x: the Jacobian is the identity")
        return notes

    # ------------------------------------------------------------ renderers
    def _lines(self, fmt: Callable[[str], str], code: Callable[[str], str]) -> List[Tuple[int, str]]:
        """(depth, line) pairs shared by the renderers; ``fmt`` renders formulas, ``code`` einsum strings.

        A line starting with § is a heading; a tab separates a formula from its comment.
        """
        token = _NAMES.set(self.names)
        try:
            return self._build_lines(fmt, code)
        finally:
            _NAMES.reset(token)

    def _build_lines(self, fmt: Callable[[str], str], code: Callable[[str], str]) -> List[Tuple[int, str]]:
        L: List[Tuple[int, str]] = [(0, "§" + fmt(self._d(self.y, self.x)) + ": " + self.headline())]
        L += [(1, _txt(n)) for n in self._notes()]
        if self.locals:
            L.append((0, "§local Jacobians, one per edge (index labels as in the einsum below)"))
        for loc in self.locals:
            L.append((1, fmt(loc.formula()) + f"\t{loc.child.op.name}, shape {loc.child.shape} + {loc.parent.shape}"
                      f" = {loc.shape}"))
            v = loc.vec
            if v is None:
                continue
            chk = "" if loc.vec_error is None else f"max |J − this| = {loc.vec_error:.1e} on these numbers"
            lhs = f"dvec({_n(_nm(loc.child), False)})/dvec({_n(_nm(loc.parent), False)}) = "
            if v.row_major == v.col_major:
                L.append((2, "vec form (both conventions): " + fmt(lhs + v.row_major) + "\t" + chk))
            else:
                L.append((2, "vec form, row-major (numpy): " + fmt(lhs + v.row_major) + "\t" + chk))
                L.append((2, "vec form, column-major: " + fmt(lhs + v.col_major)))
            if v.note:
                L.append((3, _txt(v.note)))
        if self.paths:
            n = len(self.paths)
            L.append((0, f"§chain rule: {n} path{'s' * (n > 1)} from {_txt(_n(_nm(self.x)))} to "
                         f"{_txt(_n(_nm(self.y)))}" + (", one term each" if n > 1 else "")))
            L.append((1, fmt(self.total())))
        for k, p in enumerate(self.paths, 1):
            route = " → ".join(_txt(_n(_nm(n))) for n in p.nodes)
            L.append((1, f"path {k}: {route}"))
            if len(self.paths) > 1:
                L.append((2, fmt(p.chain)))
            shapes = ", ".join(str(s) for s in p.operand_shapes)
            L.append((2, f"einsum {code(p.equation)}   operand shapes {shapes}"))
            L.append((2, f"opt_einsum order ({self.plan.order}), {len(p.steps)} pairwise "
                         f"step{'s' * (len(p.steps) != 1)}:"))
            for i, s in enumerate(p.steps, 1):
                what = fmt(f"{s.left} · {s.right} → {s.result}") if s.right else fmt(f"{s.left} → {s.result}")
                summed = f"sums {','.join(s.summed)}" if s.summed else "no sum"
                cost = "already computed by an earlier path" if s.reused else f"{s.flops:,} FLOPs"
                L.append((3, f"{i}. {what}\t{code(s.einsum)}  {summed}, {cost}"))
            new = sum(s.flops for s in p.steps if not s.reused)
            reuse = f" ({new:,} new, the rest shared with an earlier path)" if new != p.flops else ""
            L.append((2, f"{p.flops:,} FLOPs{reuse}; largest intermediate {p.largest_intermediate:,} elements"))
        for eq, (c, q), fl in self.plan.steps:
            L.append((1, f"accumulate {fmt(self._d(c, q))}\t{code(eq)}, {fl:,} FLOPs"))
        if self.plan.strategy in ("paths", "accumulate"):
            L.append((0, f"§cost: {self.plan.flops:,} FLOPs (order={self.plan.order}; a product shared by "
                         "several paths counted once)" if len(self.paths) > 1 else
                         f"§cost: {self.plan.flops:,} FLOPs (order={self.plan.order})"))
            L.append((1, "FLOPs by order: " + ", ".join(f"{o} {f:,}" for o, f in self.flops_by_order.items())))
            L.append((1, f"largest intermediate {self.plan.largest_intermediate:,} elements; largest local "
                         f"Jacobian {self.plan.largest_operand:,} elements"))
        if any(loc.vec is not None for loc in self.locals):
            L.append((1, ROW_MAJOR_NOTE))
        return L

    def __str__(self) -> str:
        lines = self._lines(_txt, lambda s: s)
        width = min(44, max((len("  " * d + ln.split("\t")[0]) for d, ln in lines if "\t" in ln), default=0))
        out = []
        for depth, line in lines:
            if line.startswith("§"):
                out.append(line[1:])
                continue
            head, _, tail = line.partition("\t")
            text = "  " * depth + head
            out.append((text.ljust(width) + "   " + tail).rstrip() if tail else text)
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        out = []
        for depth, line in self._lines(lambda s: f"${_tex(s)}$", lambda s: f"`{s}`"):
            line = line.replace("\t", " — ").rstrip(" —")
            if line.startswith("§"):
                out.append(f"\n**{line[1:]}**\n")
            else:
                out.append("  " * (depth - 1) + "- " + line)
        return "\n".join(out).strip() + "\n"

    def _repr_latex_(self) -> str:
        rows = []
        math = lambda s: "\x03" + _tex(s) + "\x04"  # noqa: E731
        code = lambda s: "\x03" + r"\mathtt{" + s.replace("->", r"\to ") + "}\x04"  # noqa: E731
        for depth, line in self._lines(math, code):
            bold = line.startswith("§")
            parts = re.split("[\x03\x04]", (line[1:] if bold else line).replace("\t", " — ").rstrip(" —"))
            tex = "".join(p if k % 2 else (_tex_text(p) if p else "") for k, p in enumerate(parts))
            rows.append(r"\quad" * depth + " " + (r"\mathbf{" + tex + "}" if bold else tex))
        return "$$\\begin{array}{l}\n" + " \\\\\n".join(rows) + "\n\\end{array}$$"

    def to_text(self) -> str:
        """The derivation as plain text (the same as ``str``)."""
        return str(self)

    def to_markdown(self) -> str:
        """The derivation as Markdown with $…$ math (what Jupyter shows)."""
        return self._repr_markdown_()

    def to_latex(self) -> str:
        """The derivation as one LaTeX display-math array."""
        return self._repr_latex_()


def _step_flops(einsum_str: str, removed, n_terms: int, sizes: Dict[str, int]) -> int:
    inputs = einsum_str.split("->")[0].split(",")
    return int(oe.helpers.flop_count(set("".join(inputs)), bool(removed), n_terms, sizes))


def _path(term, labels: Dict[int, str]) -> PathDerivation:
    nodes = term.nodes
    y, x = nodes[-1], nodes[0]
    # the chain as an index sum, y end first
    factors = [f"d{_sub(_dn(_nm(c)), labels[c.id])}/d{_sub(_dn(_nm(p)), labels[p.id])}" for c, p in term.operands]
    inner = [labels[n.id] for n in reversed(nodes[1:-1]) if labels[n.id]]
    sigma = ""
    if inner:
        sigma = f"Σ_{inner[0]} " if len(inner) == 1 else "Σ_{" + ",".join(inner) + "} "
    chain = sigma + " · ".join(factors)
    # follow opt_einsum's steps; adjacent blocks of the chain contract to d(top)/d(bottom)
    pending: List[Tuple[Node, Node, str]] = [(c, p, f"d{_dn(_nm(c))}/d{_dn(_nm(p))}") for c, p in term.operands]
    steps = []
    reused = list(getattr(term, "reused", [])) or [False] * len(term.steps)
    for k, (inds, removed, einsum_str, _rem, _blas) in enumerate(term.steps):
        picked = [pending.pop(i) for i in inds]
        picked.sort(key=lambda t: -nodes.index(t[0]))  # y end first
        top, bottom = picked[0][0], picked[-1][1]
        adjacent = all(picked[k][1].id == picked[k + 1][0].id for k in range(len(picked) - 1))
        result = f"d{_dn(_nm(top))}/d{_dn(_nm(bottom))}" if adjacent else "(" + ")(".join(t[2] for t in picked) + ")"
        steps.append(Step(picked[0][2], " · ".join(t[2] for t in picked[1:]), result, einsum_str,
                          "".join(sorted(removed)), _step_flops(einsum_str, removed, len(inds), term.size_dict),
                          bool(reused[k]) if k < len(reused) else False))
        pending.append((top, bottom, result))
    return PathDerivation(nodes, chain, term.equation, [tuple(s) for s in term.shapes], steps, term.flops,
                          term.largest_intermediate)


def explain(y: Node, x: Node, order: str = "optimal", hold: Sequence[Node] = (),
            names: Optional[Mapping[Node, str]] = None) -> Derivation:
    """The derivation of dy/dx: local Jacobians, the chain as an index sum, the einsum and its cost.

    ``order`` and ``hold`` as in :func:`jacobians.jacobian`; ``names`` maps
    nodes to the names to print (``{W: "W"}``), for nodes made by ops. ``str()`` gives
    text; in Jupyter it renders as Markdown (``_repr_markdown_``) or LaTeX
    (``_repr_latex_``).

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.random.default_rng(0).standard_normal((3, 4)), name="X")
    >>> W = jx.var(X.value @ X.value.T, name="W")
    >>> Y = W @ X
    >>> d = jx.explain(jx.fro(Y), W, names={Y: "Y"})
    >>> d.locals[1].text()                      # the matmul's Jacobian, in the einsum's labels
    'dY_cd/dW_ab = δ_ca X_bd'
    >>> d.paths[0].equation, d.plan.flops
    ('cd,cdab->ab', 216)
    """
    from .api import _check

    if isinstance(x, (list, tuple)):
        raise TypeError("explain: x must be one node; call explain once per input")
    _check("explain", y, x, "explicit", order)
    hold = tuple(hold)
    shown = {n.id: str(v) for n, v in (names or {}).items()}
    token = _NAMES.set(shown)
    try:
        return _explain(y, x, order, hold, shown)
    finally:
        _NAMES.reset(token)


def _explain(y: Node, x: Node, order: str, hold: Tuple[Node, ...], shown: Mapping[int, str]) -> Derivation:
    p = plan(y, x, order, hold)
    nodes = between(y, x, hold) if y.id != x.id else []
    labels = _labels(nodes)
    locals_: List[Local] = []
    for child, parent in reversed(edges(nodes)):  # y end first
        lo, li = labels[child.id], labels[parent.id]
        form = index_form(child, parent, lo, li)
        if form is not None:
            form.lhs = f"d{_sub(_dn(_nm(child)), lo)}/d{_sub(_dn(_nm(parent)), li)}"
        vf = vec_form(child, parent)
        err = None
        if vf is not None and child.size * parent.size <= _CHECK_LIMIT:
            J = local_jacobian(child, parent).reshape(child.size, parent.size)
            err = float(np.max(np.abs(J - vf.matrix))) if J.size else 0.0
        locals_.append(Local(child, parent, lo, li, form, vf, err, shown))
    paths = [_path(t, labels) for t in p.terms]
    by_order = {o: plan(y, x, o, hold).flops for o in ORDERS} if p.strategy in ("paths", "accumulate") else {}
    return Derivation(y, x, p, labels, locals_, paths, by_order, hold, shown)
