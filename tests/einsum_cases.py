"""The einsum test table: equations, operand shapes, which leaf feeds which operand.

Drives tests/test_einsum.py. Two lists of equation strings, then ``CASES``:

* ``OPT_EINSUM_EQUATIONS`` — the equations opt_einsum tests its own contractions on.
* ``KNOWN_HARD`` — what einsum Jacobians get wrong: repeated labels (diagonals),
  sums to a scalar, implicit output, ellipsis, broadcast batch axes, long chains.

Shapes come from :func:`shapes_for`: every label a small size (3, 2 or 4), labels
in order of first appearance cycling through the sizes so neighbours differ and a
transposed index cannot hide; a repeated label shares its size; ``...`` becomes
one or two axes. Sizes shrink until every operand has at most ``MAX_OPERAND``
entries and every output × operand Jacobian at most ``MAX_JACOBIAN``, so central
differences stay fast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["OPT_EINSUM_EQUATIONS", "KNOWN_HARD", "EinsumCase", "CASES", "shapes_for", "operands_of",
           "MAX_OPERAND", "MAX_JACOBIAN"]

MAX_OPERAND = 64
MAX_JACOBIAN = 4000
SIZES = (3, 2, 4)  # cycle order: a lone label gets 3, not 2

# From opt_einsum's own test table: `tests` in opt_einsum/tests/test_contract.py (dgasmith/opt_einsum @ 2ebc7b8).
OPT_EINSUM_EQUATIONS = [
    "a,->a",
    "ab,->ab",
    ",ab,->ab",
    ",,->",
    "a,ab,abc->abc",
    "a,b,ab->ab",
    "ea,fb,gc,hd,abcd->efgh",
    "ea,fb,abcd,gc,hd->efgh",
    "abcd,ea,fb,gc,hd->efgh",
    "acdf,jbje,gihb,hfac,gfac,gifabc,hfac",
    "acdf,jbje,gihb,hfac,gfac,gifabc,hfac",
    "cd,bdhe,aidb,hgca,gc,hgibcd,hgac",
    "abhe,hidj,jgba,hiab,gab",
    "bde,cdh,agdb,hica,ibd,hgicd,hiac",
    "chd,bde,agbc,hiad,hgc,hgi,hiad",
    "chd,bde,agbc,hiad,bdi,cgh,agdb",
    "bdhe,acad,hiab,agac,hibd",
    "ab,ab,c->",
    "ab,ab,c->c",
    "ab,ab,cd,cd->",
    "ab,ab,cd,cd->ac",
    "ab,ab,cd,cd->cd",
    "ab,ab,cd,cd,ef,ef->",
    "ab,cd,ef->abcdef",
    "ab,cd,ef->acdf",
    "ab,cd,de->abcde",
    "ab,cd,de->be",
    "ab,bcd,cd->abcd",
    "ab,bcd,cd->abd",
    "eb,cb,fb->cef",
    "dd,fb,be,cdb->cef",
    "bca,cdb,dbf,afc->",
    "dcc,fce,ea,dbf->ab",
    "fdf,cdd,ccd,afe->ae",
    "abcd,ad",
    "ed,fcd,ff,bcf->be",
    "baa,dcf,af,cde->be",
    "bd,db,eac->ace",
    "fff,fae,bef,def->abd",
    "efc,dbc,acf,fd->abe",
    "ab,ab",
    "ab,ba",
    "abc,abc",
    "abc,bac",
    "abc,cba",
    "ab,bc",
    "ab,cb",
    "ba,bc",
    "ba,cb",
    "abcd,cd",
    "abcd,ab",
    "abcd,cdef",
    "abcd,cdef->feba",
    "abcd,efdc",
    "aab,bc->ac",
    "ab,bcc->ac",
    "aab,bcc->ac",
    "baa,bcc->ac",
    "aab,ccb->ac",
    "aab,fa,df,ecc->bde",
    "ecb,fef,bad,ed->ac",
    "bcf,bbb,fbf,fc->",
    "bb,ff,be->e",
    "bcb,bb,fc,fff->",
    "fbb,dfd,fc,fc->",
    "afd,ba,cc,dc->bf",
    "adb,bc,fa,cfc->d",
    "bbd,bda,fc,db->acf",
    "dba,ead,cad->bce",
    "aef,fbc,dca->bde",
]
# numpy (2.x) accepts every one of them; none dropped. The one duplicate
# ("acdf,jbje,gihb,hfac,gfac,gifabc,hfac") is kept, as in the source list.

KNOWN_HARD = [
    "ii->",                 # trace: a repeated label summed away
    "ii->i",                # diagonal
    "iij->ij",              # diagonal of the leading pair, a free axis kept
    "iji->j",               # repeated label, not adjacent
    "nd,nn->d",             # a diagonal inside a contraction
    "...ij,...jk->...ik",   # batched matmul through ellipsis
    "i,i->",                # inner product
    "ij->",                 # total sum
    "ij->ji",               # pure transpose
    "ij,jk",                # implicit output (ik)
    "ba",                   # implicit output sorts the labels: a transpose
    "ii",                   # implicit output of a repeated label: trace
    "...i->...",            # sum the last axis under ellipsis
    "i...->...",            # sum the first axis under ellipsis
    "...ii->...i",          # batched diagonal
    "ij,ij->ij",            # a label in two operands and in the output (Hadamard)
    "i,j->ij",              # outer product
    "bij,bjk->bik",         # batch label kept in the output
    "ij,jk,kl,lm->im",      # a 4-operand chain
    "ab,bc,cd,de,ea->",     # a 5-operand ring: trace of a product
]


@dataclass(frozen=True)
class EinsumCase:
    """One equation on given operand shapes.

    ``leaves[i]`` is the index of the leaf feeding operand i; ``None`` means one
    distinct leaf per operand. Operands that share a leaf share its shape.
    """

    id: str
    eq: str
    shapes: Tuple[Tuple[int, ...], ...]
    leaves: Optional[Tuple[int, ...]] = None

    @property
    def leaf_of(self) -> Tuple[int, ...]:
        return self.leaves if self.leaves is not None else tuple(range(len(self.shapes)))

    @property
    def leaf_shapes(self) -> Tuple[Tuple[int, ...], ...]:
        """The shape of each distinct leaf, in leaf order."""
        n = max(self.leaf_of) + 1 if self.leaf_of else 0
        return tuple(self.shapes[self.leaf_of.index(j)] for j in range(n))


def operands_of(eq: str) -> Tuple[List[str], Optional[str]]:
    """The input subscripts and the explicit output (``None`` when implicit)."""
    lhs, arrow, rhs = eq.replace(" ", "").partition("->")
    return lhs.split(","), (rhs if arrow else None)


def _build(inputs: Sequence[str], size: Dict[str, int], batch: Tuple[int, ...]) -> Tuple[Tuple[int, ...], ...]:
    shapes = []
    for term in inputs:
        head, ell, tail = term.partition("...")
        shape = [size[c] for c in head] + (list(batch) if ell else []) + [size[c] for c in tail]
        shapes.append(tuple(shape))
    return tuple(shapes)


def _over(eq: str, shapes: Tuple[Tuple[int, ...], ...]) -> List[int]:
    """Operands over budget: too many entries, or too large an output × operand Jacobian."""
    out = np.einsum(eq, *[np.zeros(s) for s in shapes]).size
    return [k for k, s in enumerate(shapes)
            if math.prod(s) > MAX_OPERAND or out * math.prod(s) > MAX_JACOBIAN]


def shapes_for(eq: str, batch_axes: int = 2) -> Tuple[Tuple[int, ...], ...]:
    """Operand shapes for ``eq`` within the budgets (see the module docstring).

    Labels take sizes 3, 2, 4, 3, ... in order of first appearance; ``...``
    takes ``batch_axes`` axes continuing that cycle. While some operand is over
    budget: first drop ellipsis axes down to one, then shrink the largest label
    of an offending operand (ties: the one in most offending operands, then the
    latest to appear). Raises ValueError if everything is 2 and still too big.
    """
    inputs, _ = operands_of(eq)
    labels: List[str] = []
    for term in inputs:
        for c in term.replace("...", ""):
            if c not in labels:
                labels.append(c)
    size = {c: SIZES[k % len(SIZES)] for k, c in enumerate(labels)}
    has_ellipsis = any("..." in t for t in inputs)
    n_batch = batch_axes if has_ellipsis else 0

    while True:
        batch = tuple(SIZES[(len(labels) + t) % len(SIZES)] for t in range(n_batch))
        shapes = _build(inputs, size, batch)
        over = _over(eq, shapes)
        if not over:
            return shapes
        if n_batch > 1 and any("..." in inputs[k] for k in over):
            n_batch -= 1
            continue
        counts = {c: sum(c in inputs[k] for k in over) for c in labels}
        shrinkable = [c for c in labels if size[c] > 2 and counts[c]]
        if not shrinkable:
            raise ValueError(f"no shapes within budget for {eq!r}: {shapes}")
        c = max(shrinkable, key=lambda c: (size[c], counts[c], labels.index(c)))
        size[c] -= 1


def _id(eq: str) -> str:
    """A readable ascii test id: 'ab,bc->ac' -> 'ab_bc-ac'; an empty (scalar) operand shows as 's'."""
    inputs, out = operands_of(eq)
    text = "_".join(t if t else "s" for t in inputs).replace("...", "E")
    if out is not None:
        text += "-" + (out.replace("...", "E") if out else "scalar")
    return text


CASES: List[EinsumCase] = (
    [EinsumCase(f"oe{k:02d}-{_id(eq)}", eq, shapes_for(eq)) for k, eq in enumerate(OPT_EINSUM_EQUATIONS)]
    + [EinsumCase(f"hard-{_id(eq)}", eq, shapes_for(eq)) for eq in KNOWN_HARD]
    + [
        # a size-1 batch axis broadcast against a size-3 one (ellipsis of one axis)
        EinsumCase("broadcast-batch-1vs3", "...ij,...jk->...ik", ((1, 2, 3), (3, 3, 4))),
        # two batch axes, broadcast in different places on each side
        EinsumCase("broadcast-batch-2axes", "...i,...i->...", ((2, 1, 3), (4, 3))),
        # a batch axis present on one operand only (ellipsis of no axes on the other)
        EinsumCase("broadcast-batch-missing", "...ij,...j->...i", ((3, 2, 4), (4,))),
        # one leaf used for two operands: the total Jacobian sums both paths
        EinsumCase("same-leaf-XX", "ij,jk->ik", ((3, 3), (3, 3)), leaves=(0, 0)),
        EinsumCase("same-leaf-xx", "i,i->", ((4,), (4,)), leaves=(0, 0)),
        EinsumCase("same-leaf-hadamard", "ij,ij->ij", ((2, 3), (2, 3)), leaves=(0, 0)),
        EinsumCase("same-leaf-gram", "ij,kj->ik", ((3, 4), (3, 4)), leaves=(0, 0)),
        EinsumCase("same-leaf-trace-XX", "ij,ji->", ((3, 3), (3, 3)), leaves=(0, 0)),
        EinsumCase("same-leaf-XYX", "ij,jk,kl->il", ((2, 3), (3, 2), (2, 3)), leaves=(0, 1, 0)),
    ]
)
