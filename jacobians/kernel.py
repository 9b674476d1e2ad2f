"""The contraction kernel: every einsum the package runs, as GEMMs on views.

One kernel for every route. :func:`contract` executes an einsum equation along
opt_einsum's path (planned once per equation and shapes, then cached); each
pairwise step is :func:`pairwise`: shared labels summed as one matrix product
(batched where a shared label is kept), no label summed as one broadcast
multiply, written straight into ``out`` when given. Only a step that repeats a
label inside one operand (a trace, a diagonal) goes to ``np.einsum``.

>>> import numpy as np
>>> a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
>>> np.array_equal(contract("ij,jk->ik", [a, b]), a @ b)
True
>>> pairwise("bij,bjk->bik", np.ones((5, 2, 3)), np.ones((5, 3, 4))).shape
(5, 2, 4)
"""
from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import opt_einsum as oe

from . import memory

__all__ = ["TooManyIndices", "canonical", "Compiled", "compile_path", "contract", "bind", "pairwise", "step",
           "transfer"]

# Matrix-vector steps up to this many entries run in numpy's own single-threaded loop: it is
# memory-bound either way, and waking BLAS threads on a busy machine can cost milliseconds.
SMALL_GEMV = 1 << 20


class TooManyIndices(ValueError):
    """A single contraction step needs more distinct indices than numpy's einsum takes (52)."""


def canonical(subs: Sequence[str], out: str) -> Tuple[str, Dict[str, str]]:
    """The einsum equation with letters a, b, … in order of first appearance (output first).

    Past 52 labels the names go on in opt_einsum's symbols (``À``, ``Á``, …): a
    product of many factors is planned as a whole and run pairwise, and each
    step is renamed to letters when it reaches numpy (:func:`_einsum`).

    >>> canonical(["xy", "yz"], "xz")[0]
    'ac,cb->ab'
    """
    names: Dict[str, str] = {}
    for c in out + "".join(subs):
        if c not in names:
            names[c] = oe.get_symbol(len(names))
    return ",".join("".join(names[c] for c in s) for s in subs) + "->" + "".join(names[c] for c in out), names


def _einsum(eq: str, *ops: np.ndarray) -> np.ndarray:
    """``np.einsum`` on one step, its labels renamed to letters when the product's names went past 52."""
    if not eq.isascii():
        if len(set(eq) - set(",->")) > 52:
            raise TooManyIndices(f"one contraction step {eq!r} needs more than 52 distinct indices, more than "
                                 "numpy's einsum takes")
        eq = oe.parser.convert_to_valid_einsum_chars(eq)
    return np.einsum(eq, *ops)


@dataclass
class Compiled:
    """opt_einsum's pairwise order for one equation and shapes: ``(operand positions, step equation)``.

    ``largest`` is opt_einsum's largest intermediate (elements); ``peak`` bounds what
    running the steps holds at once: the intermediates still pending, and in each
    step a copy of both operands (a transpose that cannot be a view) and two of its
    product (the product and its reordering).
    """

    steps: List[Tuple[Tuple[int, ...], str]]
    flops: int
    largest: int
    peak: int = 0


def _peak(steps: Sequence[Tuple[Tuple[int, ...], str]], shapes: Sequence[Tuple[int, ...]],
          size: Dict[str, int]) -> int:
    pending = [(math.prod(s), False) for s in shapes]  # (elements, made by an earlier step)
    peak = 0
    for take, eq_step in steps:
        ops = [pending.pop(i) for i in take]
        out = math.prod(size[c] for c in eq_step.split("->")[1])
        held = sum(n for n, made in pending + ops if made)
        peak = max(peak, held + sum(n for n, _ in ops) + 2 * out)
        pending.append((out, True))
    return peak


_CACHE: "OrderedDict[tuple, Compiled]" = OrderedDict()
_CACHE_SIZE = 1024


def compile_path(eq: str, shapes: Sequence[Tuple[int, ...]]) -> Compiled:
    """opt_einsum's path for ``eq`` on ``shapes`` (cached by equation and shapes)."""
    key = (eq, tuple(map(tuple, shapes)))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit  # least recently *made* is evicted first: cheaper than reordering on every hit
    ins, out = eq.split("->")
    size = {c: n for s, shape in zip(ins.split(","), shapes) for c, n in zip(s, shape)}
    if len(shapes) == 1:
        comp = Compiled([((0,), eq)], math.prod(shapes[0]), math.prod(size[c] for c in out))
    else:
        _, info = oe.contract_path(eq, *shapes, shapes=True, optimize="auto")
        comp = Compiled([(tuple(inds), s) for inds, _, s, _, _ in info.contraction_list],
                        int(info.opt_cost), int(info.largest_intermediate))
    comp.peak = _peak(comp.steps, shapes, size)
    _CACHE[key] = comp
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return comp


PRICED = 1 << 20  # a contraction holding more elements than this at once is priced first (memory.check_bytes)
TILE = 64  # the tile side of a cache-friendly copy between arrays whose fastest axes differ


def transfer(dst: np.ndarray, src: np.ndarray, add: bool = False) -> None:
    """``dst[...] = src`` (or ``+=``), tiled when their fastest-varying axes differ (a transposed write).

    numpy walks the destination in memory order; when the source's contiguous
    axis is another one, every read then lands on a new cache line. Copying in
    TILE × TILE tiles of those two axes keeps both sides in cache (about 3× on a
    2048² transpose).
    """
    if dst.ndim >= 2 and dst.size >= 1 << 16 and max(dst.shape) > TILE:
        full = np.broadcast_to(src, dst.shape)
        strides = [abs(s) if s else np.inf for s in full.strides]
        a = int(np.argmin([abs(s) if s else np.inf for s in dst.strides]))
        b = int(np.argmin(strides))
        if a != b and np.isfinite(strides[b]) and dst.shape[a] > TILE and dst.shape[b] > TILE:
            src = full
            if dst.ndim == 2:
                _blocked(dst, src, add)
                return
            idx: List[slice] = [slice(None)] * dst.ndim
            for i in range(0, dst.shape[a], TILE):
                idx[a] = slice(i, i + TILE)
                for j in range(0, dst.shape[b], TILE):
                    idx[b] = slice(j, j + TILE)
                    t = tuple(idx)
                    if add:
                        dst[t] += src[t]
                    else:
                        dst[t] = src[t]
            return
    if add:
        dst += src
    else:
        dst[...] = src


BLOCK = 32  # the block side of a transposed 2-D copy done in one ufunc call


def _blocked(dst: np.ndarray, src: np.ndarray, add: bool) -> None:
    """``dst[...] = src`` (or ``+=``) for matrices whose fastest axes differ, block by block in one call.

    Both are viewed as (row blocks, column blocks, BLOCK, BLOCK): their strides
    disagree on every axis order, so numpy walks the view as given, one
    BLOCK × BLOCK block at a time, and both blocks stay in cache (about 2× the
    Python-tiled loop on a 2048² transpose). Rows and columns past the last
    whole block are copied directly.
    """
    n0, n1 = dst.shape
    m0, m1 = n0 - n0 % BLOCK, n1 - n1 % BLOCK

    def blocks(x: np.ndarray) -> np.ndarray:
        s0, s1 = x.strides
        return np.lib.stride_tricks.as_strided(x, shape=(m0 // BLOCK, m1 // BLOCK, BLOCK, BLOCK),
                                               strides=(BLOCK * s0, BLOCK * s1, s0, s1), writeable=x is dst)

    d, s = blocks(dst), blocks(src)
    if add:
        np.add(d, s, out=d)
    else:
        np.positive(s, out=d)  # a ufunc walks the blocks as given; np.copyto reorders them (3× slower)
    for rows, cols in ((slice(m0, None), slice(None)), (slice(None, m0), slice(m1, None))):
        if add:
            dst[rows, cols] += src[rows, cols]
        else:
            dst[rows, cols] = src[rows, cols]


def contract(eq: str, arrays: Sequence[np.ndarray], out: Optional[np.ndarray] = None) -> np.ndarray:
    """Execute ``eq`` on ``arrays`` along the cached path; the last step may write straight into ``out``."""
    comp = compile_path(eq, [a.shape for a in arrays])
    if comp.peak > PRICED:  # a VJP's or forward's own intermediates: priced like every large array
        memory.check_bytes((comp.peak,), np.result_type(*arrays), f"the contraction {eq} (its intermediates and "
                                                                  "product at once)")
    if len(comp.steps) == 1:  # one pairwise product or one relabeling: the common case, kept lean
        take, eq_step = comp.steps[0]
        res = step(eq_step, [arrays[i] for i in take], out)
        if out is not None and res is not out:
            transfer(out, res)
            return out
        return res
    pending = list(arrays)
    for k, (take, eq_step) in enumerate(comp.steps):
        ops = [pending.pop(i) for i in take]  # opt_einsum's order: its step equation reads them so
        last = k == len(comp.steps) - 1
        pending.append(step(eq_step, ops, out if last else None))
    res = pending[0]
    if out is not None and res is not out:
        transfer(out, res)
        return out
    return res


def bind(eq: str, shapes: Sequence[Tuple[int, ...]]) -> Callable[..., np.ndarray]:
    """:func:`contract` of ``eq`` for operands of these shapes, its path and views planned now: a callable.

    For a replay of the same contraction on new arrays (:mod:`jacobians.jit`):
    a single 2-D matrix product becomes one ``np.matmul`` on fixed views, a
    relabeling one fixed transpose; anything else calls :func:`contract`. The
    result may be a view of an operand, as :func:`contract`'s may.

    >>> f = bind("ac,bc->ab", [(2, 3), (4, 3)])
    >>> a, b = np.ones((2, 3)), np.arange(12.0).reshape(4, 3)
    >>> np.array_equal(f(a, b), a @ b.T)
    True
    """
    shapes = [tuple(s) for s in shapes]
    comp = compile_path(eq, shapes)
    if comp.peak > PRICED or len(comp.steps) != 1:
        return lambda *xs: contract(eq, xs)
    take, eq_step = comp.steps[0]
    src, dst = eq_step.split("->")
    if len(take) == 1 and sorted(src) == sorted(dst) and len(set(src)) == len(src):
        axes = tuple(src.index(c) for c in dst)
        return lambda x: x.transpose(axes)
    if len(take) != 2:
        return lambda *xs: contract(eq, xs)
    i, j = take
    plan = _pairwise_plan(eq_step, shapes[i], shapes[j])
    if plan[0] != "matmul" or plan[8] != "matmul2" or plan[1] or plan[2]:
        return lambda *xs: pairwise(eq_step, xs[i], xs[j])
    _, _, _, swap, perm_a, shape_a, perm_b, shape_b, _, have_shape, out_perm = plan
    if swap:
        i, j = j, i
    view_a, view_b = _matrix_view(shapes[i], perm_a, shape_a[1:]), _matrix_view(shapes[j], perm_b, shape_b[1:])
    reshape = None if tuple(have_shape) == (shape_a[1], shape_b[2]) else tuple(have_shape)

    def product(*xs: np.ndarray) -> np.ndarray:
        R = np.matmul(view_a(xs[i]), view_b(xs[j]))
        if reshape is not None:
            R = R.reshape(reshape)
        return R.transpose(out_perm) if out_perm is not None else R

    return product


def _matrix_view(shape: Tuple[int, ...], perm: Optional[Tuple[int, ...]], matrix: Tuple[int, int]
                 ) -> Callable[[np.ndarray], np.ndarray]:
    moved = shape if perm is None else tuple(shape[p] for p in perm)
    if perm is None:
        return (lambda x: x) if moved == matrix else (lambda x: x.reshape(matrix))
    return (lambda x: x.transpose(perm)) if moved == matrix else (lambda x: x.transpose(perm).reshape(matrix))


def step(eq: str, ops: Sequence[np.ndarray], out: Optional[np.ndarray] = None) -> np.ndarray:
    """One contraction step: a pairwise product, a relabeling, or (a naive plan) all operands at once."""
    if len(ops) == 2:
        return pairwise(eq, ops[0], ops[1], out)
    src, dst = eq.split("->")
    if len(ops) == 1:  # a relabeling is a view; a sum, trace or diagonal is numpy's one-operand einsum
        if sorted(src) == sorted(dst) and len(set(src)) == len(src):
            return ops[0].transpose([src.index(c) for c in dst])
        return _einsum(eq, ops[0])
    return oe.contract(eq, *ops)  # many operands at once (a naive plan): opt_einsum's own order


def pairwise(eq: str, a: np.ndarray, b: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``a`` and ``b`` contracted as one (batched) matrix product on views, or one broadcast multiply.

    The operands are viewed as (batch × free_a × summed) and (batch × summed ×
    free_b); numpy copies only where those axes are not contiguous blocks. The
    result is a view in the order of the output labels (``out`` is filled only
    by a broadcast multiply; callers copy otherwise). The views are planned once
    per equation and shapes (:func:`_pairwise_plan`).
    """
    plan = _pairwise_plan(eq, a.shape, b.shape)
    kind = plan[0]
    if kind == "einsum":
        return _einsum(eq, a, b)  # a diagonal or trace inside one operand
    _, lone_a, lone_b, swap, perm_a, shape_a, perm_b, shape_b, how, have_shape, out_perm = plan
    if lone_a:
        a = a.sum(axis=lone_a)
    if lone_b:
        b = b.sum(axis=lone_b)
    if swap:
        a, b = b, a
    A = a.transpose(perm_a).reshape(shape_a) if perm_a is not None else a.reshape(shape_a)
    B = b.transpose(perm_b).reshape(shape_b) if perm_b is not None else b.reshape(shape_b)
    if kind == "multiply":  # an outer or Hadamard product: a broadcast multiply in the output's order
        if out is not None and out.shape == have_shape:
            return np.multiply(A, B, out=out)
        return np.multiply(A, B, order="C")  # in the planned order, so the next step views it without a copy
    if how == "gemv":  # matrix · vector: 1-d operands reach gemv; an (m,k)@(k,1) matmul does not
        R = np.dot(A[0], B[0, :, 0])
    elif how == "gemv_small":
        R = np.einsum("ij,j->i", A[0], B[0, :, 0])
    elif how == "vecmat":
        R = np.dot(A[0, 0], B[0])
    elif how == "vecmat_small":
        R = np.einsum("i,ij->j", A[0, 0], B[0])
    elif how == "matmul2":
        R = np.matmul(A[0], B[0])
    else:
        R = np.matmul(A, B)
    R = R.reshape(have_shape)
    return R.transpose(out_perm) if out_perm is not None else R


def _moved(perm: Optional[Tuple[int, ...]]) -> Optional[Tuple[int, ...]]:
    """``perm``, or None when it leaves every axis in place (no transpose needed)."""
    return None if perm is None or perm == tuple(range(len(perm))) else perm


@functools.lru_cache(maxsize=4096)
def _pairwise_plan(eq: str, sha: Tuple[int, ...], shb: Tuple[int, ...]) -> tuple:
    """How :func:`pairwise` views two operands of these shapes: sums, transposes (None: none needed),
    reshapes and the product."""
    plan = _pairwise_views(eq, sha, shb)
    if plan[0] == "einsum":
        return plan
    kind, lone_a, lone_b, swap, perm_a, shape_a, perm_b, shape_b, how, have_shape, out_perm = plan
    return (kind, lone_a, lone_b, swap, _moved(perm_a), shape_a, _moved(perm_b), shape_b, how, have_shape,
            _moved(out_perm))


def _pairwise_views(eq: str, sha: Tuple[int, ...], shb: Tuple[int, ...]) -> tuple:
    inputs, dst = eq.split("->")
    sa, sb = inputs.split(",")
    if len(set(sa)) != len(sa) or len(set(sb)) != len(sb) or len(set(dst)) != len(dst):
        return ("einsum",)
    lone_a, sa2 = _lone(sa, sb + dst)
    lone_b, sb2 = _lone(sb, sa2 + dst)
    sha = tuple(n for k, n in enumerate(sha) if k not in lone_a)
    shb = tuple(n for k, n in enumerate(shb) if k not in lone_b)
    sa, sb = sa2, sb2
    shared = [c for c in sa if c in sb]
    batch = [c for c in shared if c in dst]
    summed = [c for c in shared if c not in dst]
    if not summed:
        perm_a = tuple(sorted(range(len(sa)), key=lambda k: dst.index(sa[k])))
        perm_b = tuple(sorted(range(len(sb)), key=lambda k: dst.index(sb[k])))
        va = tuple(sha[sa.index(c)] if c in sa else 1 for c in dst)
        vb = tuple(shb[sb.index(c)] if c in sb else 1 for c in dst)
        return ("multiply", lone_a, lone_b, False, perm_a, va, perm_b, vb, None,
                np.broadcast_shapes(va, vb), None)
    swap = not batch and list(dst) == [c for c in sb if c not in sa] + [c for c in sa if c not in sb]
    if swap:  # the product then comes out in the output's order
        sa, sb, sha, shb = sb, sa, shb, sha
    fa = [c for c in sa if c not in sb]
    fb = [c for c in sb if c not in sa]
    dims = {c: n for s, t in ((sa, sha), (sb, shb)) for c, n in zip(s, t)}
    nb, m, k, n = (math.prod(dims[c] for c in g) for g in (batch, fa, summed, fb))
    how = "batched"
    if nb == 1:
        if n == 1:
            how = "gemv_small" if m * k <= SMALL_GEMV else "gemv"
        elif m == 1:
            how = "vecmat_small" if k * n <= SMALL_GEMV else "vecmat"
        else:
            how = "matmul2"
    have = batch + fa + fb
    return ("matmul", lone_a, lone_b, swap,
            tuple(sa.index(c) for c in batch + fa + summed), (nb, m, k),
            tuple(sb.index(c) for c in batch + summed + fb), (nb, k, n),
            how, tuple(dims[c] for c in have), tuple(have.index(c) for c in dst))


def _lone(s: str, elsewhere: str) -> Tuple[Tuple[int, ...], str]:
    """The axes of labels ``s`` that appear nowhere in ``elsewhere``, and the labels left."""
    lone = tuple(k for k, c in enumerate(s) if c not in elsewhere)
    return lone, "".join(c for k, c in enumerate(s) if k not in lone)
