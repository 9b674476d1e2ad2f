"""How an op declares its Jacobian: one factored form, deltas and small arrays.

An op's Jacobian w.r.t. one input is a :class:`Factored`: a sum of
:class:`Product` terms, each a coefficient times Kronecker deltas times dense
:class:`Factor` arrays, every axis named by one letter::

    dY[i,j]/dA[p,q] = δ_ip B[q,j]          (Y = A B)

This form is the single source of the Jacobian. From it come the dense 4-tensor
(:mod:`jacobians.dense`), the index formula text (:meth:`Factored.formula`), its
LaTeX (:mod:`jacobians.latex`), explain's index forms, the Kronecker/vec forms
of 2-D cases (:mod:`jacobians.vec_forms`) and the derived VJP
(:func:`jacobians.elimination.derived_vjp`). The hand-written VJP and central
differences check it from outside.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

__all__ = ["Factor", "Product", "Factored", "check_factored", "fill_delta_sizes", "as_factor", "axis_labels", "broadcast_factored",
           "OUT_LABELS", "IN_LABELS"]


@dataclass(frozen=True)
class Factor:
    """A dense array in a factored Jacobian, one index label (a letter) per axis.

    ``name`` says what the array is, for derivations: ``"{x0}"`` / ``"{x1}"``
    is the op's first / second input itself, ``"{y}"`` its output, anything else
    an array written in terms of those, e.g. ``"tanh'({x0})"``.
    """

    value: np.ndarray
    labels: str
    name: str


@dataclass(frozen=True)
class Product:
    """One term of a factored Jacobian: ``coef · Π factors · Π deltas``.

    Each delta is a two-letter string: ``"ip"`` is δ_ip.
    """

    factors: Tuple[Factor, ...] = ()
    deltas: Tuple[str, ...] = ()
    coef: float = 1.0


def _idx(labels: str) -> str:
    return "[" + ",".join(labels) + "]" if labels else ""


@dataclass(frozen=True)
class Factored:
    """``dY[out...]/dX[inp...] = Σ_terms coef · Π factors · Π deltas``.

    ``out`` labels the output's axes, ``inp`` the input's; a factor label in
    neither is summed inside the term. An axis whose label appears in no factor
    and no delta is one along which the Jacobian is constant (a broadcast).
    ``flat=True`` adds the term ``δ(flat(out), flat(in))``: a reshape whose
    axes share no per-axis deltas.

    >>> F = Factored("ij", "pq", (Product((Factor(np.ones((4, 2)), "qj", "{x1}"),), ("ip",)),))
    >>> F.formula(("A", "B"), "Y")
    'dY[i,j]/dA[p,q] = δ_ip B[q,j]'
    """

    out: str
    inp: str
    terms: Tuple[Product, ...]
    flat: bool = False

    def factor_name(self, f: Factor, inputs: Tuple[str, ...], output: str) -> str:
        """A factor's name with the op's inputs and output filled in: ``tanh'(X)``."""
        try:
            return f.name.format(y=output, **{f"x{k}": n for k, n in enumerate(inputs)})
        except (KeyError, IndexError, ValueError):
            return f.name

    def rhs(self, inputs: Tuple[str, ...] = ("X0", "X1"), output: str = "Y") -> str:
        """The right-hand side: ``δ_ip B[q,j]``."""
        parts = [f"δ(flat({','.join(self.out)}), flat({','.join(self.inp)}))"] if self.flat else []
        for t in self.terms:
            words = [f"δ_{d}" for d in t.deltas]
            words += [self.factor_name(f, inputs, output) + _idx(f.labels) for f in t.factors]
            body = " ".join(words) or "1"
            c = "" if t.coef == 1 else "-" if t.coef == -1 else f"{t.coef:g} "
            parts.append(c + body)
        return " + ".join(parts).replace("+ -", "- ") or "0"

    def simplified(self) -> "Factored":
        """The same Jacobian with each delta on an index summed inside a term renamed away.

        ``Σ_k δ_kq B[k,j]`` becomes ``B[q,j]``: how the form reads in a formula.

        >>> F = Factored("ij", "pq", (Product((Factor(np.ones((3, 2)), "kj", "{x1}"),), ("ip", "kq")),))
        >>> F.simplified().rhs(("A", "B"))
        'δ_ip B[q,j]'
        """
        own = set(self.out + self.inp)
        terms = []
        for t in self.terms:
            deltas, factors = [(d[0], d[-1]) for d in t.deltas], list(t.factors)
            while True:
                hit = next(((n, a, b) for n, (a, b) in enumerate(deltas) if a not in own or b not in own), None)
                if hit is None:
                    break
                n, a, b = hit
                gone, keep = (b, a) if b not in own else (a, b)
                del deltas[n]
                deltas = [(keep if x == gone else x, keep if y == gone else y) for x, y in deltas]
                factors = [Factor(f.value, f.labels.replace(gone, keep), f.name) for f in factors]
            terms.append(Product(tuple(factors), tuple(a + b for a, b in deltas if a != b), t.coef))
        return Factored(self.out, self.inp, tuple(terms), self.flat)

    def formula(self, inputs: Tuple[str, ...] = ("X0", "X1"), output: str = "Y", wrt: int = 0) -> str:
        """The index formula with the factors named by ``inputs`` and ``output``."""
        name = inputs[wrt] if wrt < len(inputs) else f"X{wrt}"
        return f"d{output}{_idx(self.out)}/d{name}{_idx(self.inp)} = {self.rhs(inputs, output)}"


def check_factored(F: Factored, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...], what: str) -> None:
    """Raise ValueError unless ``F``'s labels fit an out_shape + in_shape Jacobian.

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
        fill_delta_sizes(t.deltas, sizes)
        for d in t.deltas:
            if len(d) != 2 or any(c not in sizes for c in d):
                raise ValueError(f"{what}: delta {d!r} must name two indices of the output, input or a factor")
            if sizes[d[0]] != sizes[d[1]]:
                raise ValueError(f"{what}: δ_{d} ties axes of lengths {sizes[d[0]]} and {sizes[d[1]]}; "
                                 "a delta joins indices of equal length")


def fill_delta_sizes(deltas: Tuple[str, ...], sizes: dict) -> None:
    """Give a summed label that appears only in deltas the length of the index it is tied to."""
    changed = True
    while changed:
        changed = False
        for d in deltas:
            for u, v in ((d[0], d[-1]), (d[-1], d[0])):
                if u not in sizes and v in sizes:
                    sizes[u] = sizes[v]
                    changed = True


def as_factor(value, dtype=None):
    """A factor's value: an array (of ``dtype``), or a node left as it is (forms evaluated on nodes, second order)."""
    if hasattr(value, "parents"):
        return value
    return np.asarray(value, dtype=dtype)


# ------------------------------------------------------------ building forms
OUT_LABELS = "ijklmnoabcdefghIJKLMNOPQRSTUVWXYZ"  # output axes of a factored Jacobian
IN_LABELS = "pqrstuvwxyzABCDEFGH" + "αβγδεζηθικλμνξπρστυφχψω"  # input axes (never shared with OUT_LABELS)


def axis_labels(n_out: int, n_in: int) -> Tuple[str, str]:
    """Index letters for the output axes and the input axes of a factored Jacobian."""
    if n_out > len(OUT_LABELS) or n_in > len(IN_LABELS):
        raise ValueError(f"factored Jacobians support up to {len(IN_LABELS)} input axes and {len(OUT_LABELS)} "
                         f"output axes, got {n_in} and {n_out}")
    return OUT_LABELS[:n_out], IN_LABELS[:n_in]


def broadcast_factored(out_shape: Tuple[int, ...], in_shape: Tuple[int, ...], partial: Optional[np.ndarray] = None,
                       name: str = "", coef: float = 1.0) -> Factored:
    """dY[i...]/dA[p...] = coef · Π δ(i_k, p_a) · partial[i...] for A broadcast into Y.

    One delta per axis of A that was not broadcast; a broadcast axis (length 1,
    or missing in front) gets none: one entry of A reaches a whole row of Y.
    ``partial`` (broadcastable to ``out_shape``) is the elementwise derivative;
    None when it is the constant ``coef``. Axes along which it is constant
    are dropped from the factor.

    >>> broadcast_factored((4, 3), (3,)).formula(("b",), "Z")
    'dZ[i,j]/db[p] = δ_jp'
    """
    out, inp = axis_labels(len(out_shape), len(in_shape))
    off = len(out_shape) - len(in_shape)
    deltas = tuple(out[a + off] + inp[a] for a, n in enumerate(in_shape) if n == out_shape[a + off])
    factors: Tuple[Factor, ...] = ()
    if partial is not None:
        f = as_factor(partial)  # a node (second order) stays a node
        f = f.reshape((1,) * (len(out_shape) - f.ndim) + f.shape)
        keep = [k for k in range(f.ndim) if not (f.shape[k] == 1 and out_shape[k] != 1)]
        factors = (Factor(f.reshape([f.shape[k] for k in keep]), "".join(out[k] for k in keep), name),)
    return Factored(out, inp, (Product(factors, deltas, coef),))
