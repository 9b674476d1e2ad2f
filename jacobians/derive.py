"""``derive``: the gradient expression that survives delta elimination — where the VJP shortcuts come from.

Contracting a cotangent G = dl/dY into the factored Jacobians along every path
(:func:`jacobians.factored.expand` with a symbolic G) and eliminating the deltas
leaves one einsum per product; a product of matrices (and Hadamard products ⊙)
is also written in matrix notation: ``Σ_cd G_cd δ_ca X_bd = (G Xᵀ)_ab``.

>>> import numpy as np, jacobians as jx
>>> X = jx.var(np.random.default_rng(0).standard_normal((4, 3)), name="X")
>>> W = X @ X.T
>>> Y = W @ X
>>> print(jx.derive(Y, W, names={W: "W", Y: "Y"}))
Σ G·dY/dW = G Xᵀ
  ad,bd->ab  (G, X)  =  G Xᵀ
"""
from __future__ import annotations

import string
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

from .factored import MAX_PRODUCTS, FactoredFallback, expand
from .kernel import TooManyIndices
from .names import Names, Sym, flip, node_sym, sym_text
from .node import Node

if TYPE_CHECKING:  # pragma: no cover
    from .hessian_form import HessianForm

__all__ = ["derive", "DerivedGradient", "DerivedTerm", "matrix_form"]


def _group_text(members: List[Tuple[str, Sym]], orient: str) -> str:
    """A Hadamard group read with its indices in the order ``orient``."""
    parts = [sym_text(s if lab == orient or len(lab) < 2 else flip(s)) for lab, s in members]
    return parts[0] if len(parts) == 1 else "(" + " ⊙ ".join(parts) + ")"


def matrix_form(free: str, operands: List[Tuple[str, Sym]], ties: List[Tuple[str, ...]]) -> Optional[str]:
    """Matrix notation when the product is a chain of matrices and vectors (⊙ allowed); else None.

    ``free`` lists the result's indices (x's axes), ``ties`` the deltas left between them.
    """
    scalars = [sym_text(s) for lab, s in operands if not lab]
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
class DerivedGradient:
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

    def __repr__(self) -> str:
        return f"<DerivedGradient {str(self).splitlines()[0]}>"

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```\n"

    def __str__(self) -> str:
        y, x = sym_text(node_sym(self.y, self.names)), sym_text(node_sym(self.x, self.names))
        lhs = f"d{y}/d{x}" if self.y.size == 1 else f"Σ G·d{y}/d{x}"
        if self.reason:
            return f"{lhs}: not derived — {self.reason}"
        lines = [f"{lhs} = {self.expression}"]
        lines += [f"  {t}" for t in self.terms]
        return "\n".join(lines)


def derive(y: Node, x: Node, hold: Sequence[Node] = (), names: Optional[Dict[Node, str]] = None,
           max_products: int = MAX_PRODUCTS, order: int = 1) -> Union[DerivedGradient, "HessianForm"]:
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

    ``order=2`` derives the Hessian of a scalar y instead: its structure in index
    and Kronecker notation (:func:`jacobians.hessian_form.hessian_form`).

    >>> A = jx.const(np.array([[1.0, 2.0], [0.0, 3.0]]), name="A"); v = jx.var([1.0, 2.0], name="v")
    >>> print(derive(v @ (A @ v), v, order=2))
    d²l/dv_a dv_b = A_ba + A_ab
      Kronecker (numpy's row-major vec): Aᵀ + A
    """
    if order == 2:
        from .hessian_form import hessian_form  # it builds on this module's matrix notation

        return hessian_form(y, x, hold, names, max_products)
    if order != 1:
        raise ValueError(f"derive: order={order!r}; use 1 (the gradient or VJP) or 2 (the Hessian of a scalar)")
    if not isinstance(y, Node) or not isinstance(x, Node):
        raise TypeError(f"derive: y and x must be nodes, got {type(y).__name__} and {type(x).__name__}")
    hold = tuple(hold)
    shown = {n.id: str(v) for n, v in (names or {}).items()}
    if y.id == x.id:
        term = DerivedTerm(1.0, "", (), "1" if y.size == 1 else "G")
        return DerivedGradient(y, x, [term], names=shown)
    try:
        expanded = expand(y, x, hold, max_products, cotangent=y.size != 1, names=shown)
    except (FactoredFallback, TooManyIndices) as exc:
        return DerivedGradient(y, x, [], reason=str(exc), names=shown)
    if expanded is None:
        return DerivedGradient(y, x, [], names=shown)
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
        matrix = None if broadcast and r.operands else matrix_form(
            "".join(letters[c] for c in free), [(sub, o.sym) for sub, o in zip(subs, r.operands)], tie_groups)
        eq = ",".join(subs) + "->" + out if r.operands else ""
        names = tuple(sym_text(o.sym) for o in r.operands)
        key = ("matrix", matrix) if matrix else (eq, names, ties, broadcast)  # X and (Xᵀ)ᵀ are one term
        if key in terms:
            terms[key].coef += r.coef
        else:
            terms[key] = DerivedTerm(r.coef, eq, names, matrix, ties, broadcast)
    return DerivedGradient(y, x, [t for t in terms.values() if t.coef != 0], names=shown)
