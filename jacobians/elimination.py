"""The delta algebra: Kronecker deltas eliminated by renaming, the rest landed through tied views.

A product of factored terms ``coef · Π factors · Π deltas`` is reduced in two moves:

* a delta that touches a summed index is eliminated by renaming:
  ``Σ_c δ_ca F[c…]`` is ``F[a…]`` (:func:`eliminate`);
* a delta left between two free indices is a *tie*: the product is written
  through a strided view of the output in which the tied axes are one axis
  (:func:`jacobians.scatter.tied_view`), never as an identity matrix (:func:`land`).

What is left is one einsum of small dense arrays, run by :mod:`jacobians.kernel`.
The same reduction, with a cotangent G in front and the output's indices
summed, is the VJP that the form implies (:func:`derived_vjp`):
``Σ_ij G[i,j] δ_ip B[q,j] = (G Bᵀ)[p,q]``.

>>> import numpy as np
>>> from jacobians.form import Factor, Factored, Product
>>> B = np.arange(6.0).reshape(2, 3)
>>> F = Factored("ij", "pq", (Product((Factor(B, "qj", "{x1}"),), ("ip",)),))   # Y = A B, w.r.t. A
>>> G = np.ones((4, 3))
>>> np.array_equal(derived_vjp(F, G, (4, 3), (4, 2)), G @ B.T)
True
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np

from . import memory
from .form import Factored, check_factored, fill_delta_sizes
from .kernel import Compiled, canonical, compile_path, contract, transfer
from .scatter import tied_view

__all__ = ["Sym", "Operand", "RawProduct", "Reduced", "Prepared", "Piece", "eliminate", "prepare", "share_factors", "land", "evaluate",
           "recipe", "derived_vjp", "derived_jvp", "form_labels", "form_structure"]

Sym = Tuple[str, bool]  # (display name, transposed)


class Operand:
    """A dense factor with its labels; its display name is worked out only when asked for."""

    __slots__ = ("value", "labels", "_sym", "_name")

    def __init__(self, value: Optional[np.ndarray], labels: str, sym: Optional[Sym] = None,
                 name: Optional[Callable[[], Sym]] = None):
        self.value = value  # None for a symbolic cotangent
        self.labels = labels  # one label per axis
        self._sym, self._name = sym, name

    @property
    def sym(self) -> Sym:
        if self._sym is None:
            self._sym = self._name() if self._name is not None else ("?", False)
        return self._sym

    def relabel(self, labels: str) -> "Operand":
        return Operand(self.value, labels, self._sym, self._name)


@dataclass
class RawProduct:
    """One product before elimination: coef · Π operands · Π deltas, summed over ``inner``."""

    coef: float
    operands: List[Operand]
    deltas: List[Tuple[str, str]]
    inner: List[str]


@dataclass
class Reduced:
    """One product after delta elimination: coef · einsum(operands), tied and broadcast into the output."""

    coef: float
    operands: List[Operand]
    ties: List[Tuple[str, ...]]  # groups of free labels held equal (the diagonal scatter)
    rep: Dict[str, str]  # free label -> the label that stands for its group


def form_labels(F: Factored) -> List[str]:
    """Per term, the labels it sums inside itself: in a factor or a delta, not an output or input axis."""
    own = set(F.out + F.inp)
    out = []
    for t in F.terms:
        seen = dict.fromkeys(c for f in t.factors for c in f.labels)
        seen.update(dict.fromkeys(c for d in t.deltas for c in d))
        out.append("".join(c for c in seen if c not in own))
    return out


def eliminate(raw: RawProduct, free: str, sizes: Dict[str, int]) -> Reduced:
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
    best: Dict[str, str] = {}  # class root -> its earliest free label
    for c in free:
        best.setdefault(find(c), c)

    def name(c: str) -> str:
        r = find(c)
        return best.get(r, r)

    operands = [o.relabel("".join(name(c) for c in o.labels)) for o in raw.operands]
    present = {c for o in operands for c in o.labels}
    coef = raw.coef
    for c in {name(c) for c in raw.inner} - set(free):  # summed, in no factor: Σ_c 1 = n
        if c not in present:
            coef *= sizes[c]
    groups: Dict[str, List[str]] = {}
    for c in free:
        groups.setdefault(name(c), []).append(c)
    ties = [tuple(g) for g in groups.values() if len(g) > 1]
    return Reduced(coef, operands, ties, {c: name(c) for c in free})


@dataclass
class Prepared:
    """How one product lands in the output: its einsum, the tied view, the broadcast shape.

    Built from labels and shapes only, so one preparation serves any values.
    """

    eq: str
    comp: Optional[Compiled]
    keep: Tuple[int, ...]  # operands in the einsum
    scalars: Tuple[int, ...]  # operands without an index (1/‖A‖, det A): multiplied into the coefficient
    pairs: List[Tuple[int, int]]  # (kept axis, dropped axis) of the tied view
    shape: Tuple[int, ...]  # the einsum result reshaped to the view, 1 on broadcast axes
    full: bool  # the result covers every axis of the view
    axes: Tuple[int, ...] = ()  # the view axis of each output label of ``eq``


def prepare(r: Reduced, free: str, sizes: Dict[str, int]) -> Prepared:
    """The einsum and tied view of one reduced product (past 52 labels, in opt_einsum's symbols)."""
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
        return Prepared("", None, keep, scalars, pairs, shape, not view_labels)
    eq, _ = canonical(subs, core)
    comp = compile_path(eq, [tuple(sizes[c] for c in sub) for sub in subs])
    axes = tuple(k for k, c in enumerate(view_labels) if c in present)
    return Prepared(eq, comp, keep, scalars, pairs, shape, len(core) == len(view_labels), axes)


Piece = Tuple[List[np.ndarray], float, Prepared]  # (values, coef, prepared): one product to land


def _shared(piece: Piece) -> List[Tuple[tuple, int]]:
    """(key, position in the einsum) of each operand that could be factored out of this product: one
    whose labels are all output labels, each once; the key says where it lands (view, array, axes)."""
    values, _, prep = piece
    if prep.comp is None or not prep.axes:
        return []
    ins, out = prep.eq.split("->")
    subs = ins.split(",")
    if len(subs) < 2:
        return []
    return [((tuple(prep.pairs), prep.shape, prep.axes, id(values[j]), tuple(prep.axes[out.index(c)] for c in sub)),
             pos)
            for pos, (j, sub) in enumerate(zip(prep.keep, subs)) if len(set(sub)) == len(sub) and set(sub) <= set(out)]


def share_factors(pieces: Sequence[Piece], dtype: np.dtype, what: str = "jacobian") -> Tuple[List[Piece], int]:
    """Products that land in the same view and share one factor S over output axes only are summed
    before S multiplies them: Σ_k c_k R_k ⊙ S, so the result is written once, not once per product.

    R_k is the rest of product k contracted to the output axes it has (smaller than the result, as S
    takes some of them). Attention's dY/dWq has two products ending in ``…, ac -> abcd``: one D⁴
    write and D³ sums instead of two D⁴ products added. Returns the pieces and the bytes of the sums R
    (held beside the result while it is written).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> S, U, V = rng.standard_normal((3, 2, 3))
    >>> P1 = Prepared("ab,ac->abc", compile_path("ab,ac->abc", [(2, 3), (2, 3)]), (0, 1), (), [], (2, 3, 3), True,
    ...               (0, 1, 2))
    >>> P2 = Prepared("ac,ab->abc", compile_path("ac,ab->abc", [(2, 3), (2, 3)]), (0, 1), (), [], (2, 3, 3), True,
    ...               (0, 1, 2))
    >>> merged, held = share_factors([([S, U], 2.0, P1), ([V, S], -1.0, P2)], np.dtype(float))
    >>> len(merged), merged[0][2].eq, held            # R = 2 U - V over (a, c), then R ⊙ S: one product
    (1, 'ac,ab->abc', 48)
    >>> want = 2 * np.einsum("ab,ac->abc", S, U) - np.einsum("ac,ab->abc", V, S)
    >>> bool(np.allclose(evaluate(*merged[0]), want))
    True
    """
    groups: "OrderedDict[tuple, List[Tuple[int, int]]]" = OrderedDict()
    for k, piece in enumerate(pieces):
        for key, pos in _shared(piece):
            members = groups.setdefault(key, [])
            if not members or members[-1][0] != k:  # a factor that appears twice in one product counts once
                members.append((k, pos))
    used: set = set()
    merged: List[Piece] = []
    for key, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        members = [(k, pos) for k, pos in members if k not in used]
        if len(members) < 2 or not _smaller(pieces, members):
            continue
        used.update(k for k, _ in members)
        merged.append(_factored_out(pieces, members, key, dtype, what))
    return merged + [p for k, p in enumerate(pieces) if k not in used], sum(p[0][0].nbytes for p in merged)


def _rest(piece: Piece, pos: int) -> Tuple[List[str], str, Tuple[int, ...]]:
    """Product ``piece`` without its operand at ``pos``: the other subscripts, the output labels they keep,
    and those labels' view axes."""
    _, _, prep = piece
    ins, out = prep.eq.split("->")
    rest = [sub for p, sub in enumerate(ins.split(",")) if p != pos]
    have = "".join(c for c in out if c in "".join(rest))
    return rest, have, tuple(prep.axes[out.index(c)] for c in have)


def _smaller(pieces: Sequence[Piece], members: List[Tuple[int, int]]) -> bool:
    """Whether the sum R of these products' rests is smaller than the result: some axis of size > 1 is the
    shared factor's alone. Otherwise R is as large as the result and summing first saves no write."""
    shape = pieces[members[0][0]][2].shape
    union = {a for k, pos in members for a in _rest(pieces[k], pos)[2]}
    return any(n > 1 and a not in union for a, n in enumerate(shape))


def _factored_out(pieces: Sequence[Piece], members: List[Tuple[int, int]], key: tuple, dtype: np.dtype,
                  what: str) -> Piece:
    """One piece R ⊙ S for the products ``members`` (index, position of S) that share S (see share_factors)."""
    pairs, shape, axes, _, s_axes = key
    parts = []
    for k, pos in members:
        values, coef, prep = pieces[k]
        for j in prep.scalars:
            coef *= float(values[j])
        rest, have, ax = _rest(pieces[k], pos)
        arrays = [values[j] for p, j in enumerate(prep.keep) if p != pos]
        parts.append((coef, ",".join(rest) + "->" + have, arrays, ax))
    union = tuple(sorted({a for *_, ax in parts for a in ax}))
    R = memory.zeros(tuple(shape[a] for a in union), dtype, f"{what}: the products that share one factor, summed")
    for coef, eq, arrays, ax in parts:
        r = contract(eq, arrays).reshape(tuple(shape[a] if a in ax else 1 for a in union))
        if coef == 1.0:
            R += r
        else:
            R += coef * r
    S = pieces[members[0][0]][0][pieces[members[0][0]][2].keep[members[0][1]]]
    label = {a: chr(0x4E00 + a) for a in axes}  # one label per view axis, renamed to letters by canonical
    eq, _ = canonical(["".join(label[a] for a in union), "".join(label[a] for a in s_axes)],
                      "".join(label[a] for a in axes))
    first = pieces[members[0][0]][2]
    return ([R, S], 1.0, Prepared(eq, compile_path(eq, [R.shape, S.shape]), (0, 1), (), list(pairs), shape, first.full,
                                   axes))


def evaluate(values: Sequence[np.ndarray], coef: float, prep: Prepared,
             out: Optional[np.ndarray] = None) -> np.ndarray:
    """coef · einsum(values[keep]), into ``out`` when given."""
    arrays = [values[k] for k in prep.keep]
    if coef != 1.0:  # fold the coefficient into the smallest factor
        k = min(range(len(arrays)), key=lambda i: arrays[i].size)
        arrays[k] = arrays[k] * coef
    return contract(prep.eq, arrays, out=out)


def land(J: np.ndarray, values: Sequence[np.ndarray], coef: float, prep: Prepared, assign: bool) -> None:
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
    if assign and prep.full:
        evaluate(values, coef, prep, out=view)
        return
    res = evaluate(values, coef, prep)
    res = res.reshape(prep.shape) if res.shape != prep.shape else res  # (a reshape may copy a transposed view)
    transfer(view, res, add=not assign)


# ------------------------------------------------------------ the derived VJP
_RECIPES: "OrderedDict[tuple, List[Tuple[float, Prepared]]]" = OrderedDict()
_CACHE_SIZE = 1024


def form_structure(F: Factored) -> tuple:
    """What a form's elimination depends on: its labels, deltas, coefficients and factor shapes (not values)."""
    return (F.out, F.inp, F.flat, tuple((t.coef, t.deltas, tuple((f.labels, np.shape(f.value)) for f in t.factors))
                                        for t in F.terms))


Mode = Literal["dense", "vjp", "jvp"]


def recipe(F: Factored, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...], mode: Mode,
           what: str = "factored form") -> List[Tuple[float, Prepared]]:
    """Each term of ``F`` with its deltas eliminated and its einsum planned: ``(coefficient, preparation)``.

    ``"dense"``: the output and input indices are free, the term's factors the
    operands (the dense Jacobian). ``"vjp"``: a cotangent G[out] comes first and the
    output's indices are summed, Σ_out G[out] dY[out]/dX[in]. ``"jvp"``: a tangent
    T[in] comes first and the input's indices are summed, Σ_in dY[out]/dX[in] T[in].
    Planned once per form structure, shapes and mode (cached).
    """
    key = (form_structure(F), tuple(out_shape), tuple(in_shape), mode)
    hit = _RECIPES.get(key)
    if hit is not None:
        return hit
    check_factored(F, out_shape, in_shape, what)
    free = {"dense": F.out + F.inp, "vjp": F.inp, "jvp": F.out}[mode]
    head = {"dense": [], "vjp": [Operand(None, F.out, ("G", False))], "jvp": [Operand(None, F.inp, ("T", False))]}[mode]
    summed = {"dense": "", "vjp": F.out, "jvp": F.inp}[mode]
    out = []
    for t, inner in zip(F.terms, form_labels(F)):
        sizes = dict(zip(F.out + F.inp, tuple(out_shape) + tuple(in_shape)))
        for f in t.factors:
            sizes.update(zip(f.labels, np.shape(f.value)))
        fill_delta_sizes(t.deltas, sizes)
        ops = head + [Operand(None, f.labels) for f in t.factors]
        r = eliminate(RawProduct(t.coef, ops, [(d[0], d[1]) for d in t.deltas], list(summed) + list(inner)), free, sizes)
        out.append((r.coef, prepare(r, free, sizes)))
    _RECIPES[key] = out
    if len(_RECIPES) > _CACHE_SIZE:
        _RECIPES.popitem(last=False)
    return out


def _pull(F: Factored, v: np.ndarray, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...], mode: Mode,
          dtype: Optional[np.dtype]) -> np.ndarray:
    """v contracted into F from the output side (vjp) or the input side (jvp); may return a read-only view."""
    dtype = np.result_type(v.dtype if dtype is None else dtype)
    v = np.asarray(v, dtype=dtype)
    shape = in_shape if mode == "vjp" else out_shape
    total: Optional[np.ndarray] = np.reshape(v, shape) if F.flat else None
    tied = []
    for t, (coef, prep) in zip(F.terms, recipe(F, out_shape, in_shape, mode)):
        values = [v] + [np.asarray(f.value, dtype=dtype) for f in t.factors]
        if prep.pairs:  # a delta between two free indices: lands on a diagonal, below
            tied.append((values, coef, prep))
            continue
        for k in prep.scalars:
            coef *= float(values[k])
        res = np.asarray(coef, dtype=dtype) if prep.comp is None else evaluate(values, coef, prep)
        res = np.broadcast_to(res.reshape(prep.shape), shape)
        total = res if total is None else total + res
    if tied or total is None:
        base = np.zeros(shape, dtype=dtype)
        if total is not None:
            base += total
        for values, coef, prep in tied:
            land(base, values, coef, prep, assign=False)
        total = base
    return total


def derived_vjp(F: Factored, g: np.ndarray, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...],
                dtype: Optional[np.dtype] = None) -> np.ndarray:
    """Σ_out g[out] · F[out, in]: the VJP the factored form implies, an array of ``in_shape``.

    The result may be a read-only view (a broadcast constant, g reshaped): read it, never write into it.
    """
    return _pull(F, g, out_shape, in_shape, "vjp", dtype)


def derived_jvp(F: Factored, t: np.ndarray, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...],
                dtype: Optional[np.dtype] = None) -> np.ndarray:
    """Σ_in F[out, in] · t[in]: the JVP (forward mode) the factored form implies, an array of ``out_shape``.

    >>> import numpy as np
    >>> from jacobians.form import Factor, Factored, Product
    >>> B = np.arange(6.0).reshape(2, 3)
    >>> F = Factored("ij", "pq", (Product((Factor(B, "qj", "{x1}"),), ("ip",)),))   # Y = A B, w.r.t. A
    >>> T = np.ones((4, 2))
    >>> np.array_equal(derived_jvp(F, T, (4, 3), (4, 2)), T @ B)
    True
    """
    return _pull(F, t, out_shape, in_shape, "jvp", dtype)
