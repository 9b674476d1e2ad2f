"""The einsum family: one rule for every linear and multilinear op.

    Y[out] = scale · Σ_(labels not in out) Π_m X_m[s_m]

The Jacobian w.r.t. operand k is itself a form: the other operands as factors,
one delta per axis of X_k tying its label to the input index,

    dY[out]/dX_k[p...] = scale · Π_(m≠k) X_m[s_m] · Π_a δ(s_k[a], p_a),

and its VJP is an einsum with X_k's subscripts as output (``G[out], X_m[s_m] ->
X_k[s_k]``); where X_k repeats a label (``ii->``) the result lands on a diagonal
through a strided view (numpy's einsum cannot write ``i->ii``), and a label only
X_k has is a broadcast.

matmul (with numpy's batched semantics), transpose, sum, mean, trace, outer,
inner, dot, vdot, tensordot and diagonal are einsum specs: each keeps its numpy
name as its node's op name, and shares this one form and this one VJP.

>>> import numpy as np, jacobians as jx
>>> A = jx.var(np.arange(4.0).reshape(2, 2), name="A")
>>> t = jx.einsum("ii->", A)                       # the trace
>>> float(t.value), jx.grad(t, A).tolist()
(3.0, [[1.0, 0.0], [0.0, 1.0]])
"""
from __future__ import annotations

import functools
import math
import string
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..form import Factor, Factored, Product
from ..kernel import bind, contract
from ..node import Node, shape_of
from ..registry import Op, apply, register
from ..scatter import tied_view
from ._rules import check_nonempty, normalize_axes

__all__ = ["einsum", "matmul", "transpose", "sum", "mean", "trace", "outer", "inner", "dot", "vdot", "tensordot",
           "diagonal"]

# building blocks for ops written as einsum specs (with constant selection operands) elsewhere
BUILDING_BLOCKS = ["parse_einsum", "einsum_shape", "einsum_forward", "einsum_form", "einsum_vjp", "einsum_family",
                   "apply_spec"]

Shape = Tuple[int, ...]
_LETTERS = string.ascii_letters


# ------------------------------------------------------------------ the grammar
def _split(eq: str) -> Tuple[List[str], str]:
    ins, out = eq.split("->")
    return ins.split(","), out


def parse_einsum(subscripts: str, shapes: Sequence[Shape], name: str = "einsum") -> str:
    """numpy's einsum grammar made explicit: one letter per axis, ``...`` expanded, output written out.

    A label of length 1 in one operand and n in another broadcasts (as numpy
    does): that operand's axis gets a label of its own. Errors name the op,
    the subscripts and the shapes.

    >>> parse_einsum("ij,jk", [(2, 3), (3, 4)])
    'ij,jk->ik'
    >>> parse_einsum("...ij,...jk->...ik", [(5, 2, 3), (3, 4)])
    'aij,jk->aik'
    >>> parse_einsum("ij,jk->ik", [(2, 3), (4, 5)])
    Traceback (most recent call last):
    ...
    ValueError: einsum 'ij,jk->ik': label j has lengths 3 and 4 in operands of shapes (2, 3), (4, 5); ...
    """
    if isinstance(subscripts, str):
        return _parse_cached(subscripts, tuple(tuple(int(n) for n in s) for s in shapes), name)
    return _parse(subscripts, shapes, name)


@functools.lru_cache(maxsize=4096)
def _parse_cached(subscripts: str, shapes: Tuple[Shape, ...], name: str) -> str:
    return _parse(subscripts, shapes, name)


def _parse(subscripts: Any, shapes: Sequence[Shape], name: str = "einsum") -> str:
    """The grammar itself (see parse_einsum)."""
    if not isinstance(subscripts, str):
        raise TypeError(f"{name}: subscripts must be a string such as 'ij,jk->ik', got {type(subscripts).__name__}")
    shapes = [tuple(int(n) for n in s) for s in shapes]
    where, got = f"{name} {subscripts!r}", ", ".join(str(s) for s in shapes)
    ins_text, arrow, out_text = subscripts.replace(" ", "").partition("->")
    ins = ins_text.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"{where}: {len(ins)} operand subscripts but {len(shapes)} operands; give one "
                         "comma-separated subscript per operand")
    for s in ins + [out_text]:
        if "->" in s or s.count("...") > 1 or any(c not in _LETTERS for c in s.replace("...", "")):
            raise ValueError(f"{where}: subscripts use letters a-z, A-Z, at most one '...' per operand and one "
                             f"'->', got {s!r}")
    spare = iter(c for c in _LETTERS if c not in subscripts)

    def fresh() -> str:
        c = next(spare, None)
        if c is None:
            raise ValueError(f"{where}: more than 52 distinct axes; numpy's einsum takes 52 labels at most")
        return c

    # '...' stands for the leading axes an operand's letters leave; they broadcast right-aligned
    n_ell = [len(shape) - len(s.replace("...", "")) for s, shape in zip(ins, shapes)]
    for s, shape, n in zip(ins, shapes, n_ell):
        if n < 0 or (n and "..." not in s):
            raise ValueError(f"{where}: subscripts {s!r} do not fit an operand of shape {shape} ({len(shape)} axes); "
                             "give one letter per axis, or '...' for the leading ones")
    ell = [fresh() for _ in range(max(n_ell, default=0))]
    expanded = [list(s.partition("...")[0]) + ell[len(ell) - n:] + list(s.partition("...")[2]) if "..." in s
                else list(s) for s, n in zip(ins, n_ell)]
    sizes: Dict[str, int] = {}
    for labels, shape in zip(expanded, shapes):  # a length-1 axis against a longer one is a broadcast
        for c, d in zip(labels, shape):
            if d != 1 and sizes.get(c, 1) not in (1, d):
                what = (f"the '...' axes of operands of shapes {got} do not broadcast" if c in ell else
                        f"label {c} has lengths {sizes[c]} and {d} in operands of shapes {got}")
                raise ValueError(f"{where}: {what}; a label repeated across or within operands must have one "
                                 "length (or 1, which broadcasts)")
            sizes[c] = d if d != 1 or c not in sizes else sizes[c]
    final = ["".join(fresh() if d == 1 and sizes[c] != 1 else c for c, d in zip(labels, shape))
             for labels, shape in zip(expanded, shapes)]
    if not arrow:  # implicit: the '...' axes, then the letters that appear once, in alphabetical order
        letters = "".join(ins).replace(".", "")
        return ",".join(final) + "->" + "".join(ell) + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if "..." not in out_text and any(n_ell):
        raise ValueError(f"{where}: the operands have '...' axes but the output has no '...'; write it "
                         "in the output (e.g. '...ij->...i') or sum them explicitly")
    out = out_text.replace("...", "".join(ell))
    if len(set(out)) != len(out):
        raise ValueError(f"{where}: the output repeats a label ({out_text!r}); numpy's einsum cannot write "
                         "a diagonal: use jx.diagonal on the result's input instead")
    missing = [c for c in out if c not in sizes]
    if missing:
        raise ValueError(f"{where}: output label(s) {', '.join(missing)} appear in no operand")
    return ",".join(final) + "->" + out


def _sizes(eq: str, shapes: Sequence[Shape]) -> Dict[str, int]:
    ins, _ = _split(eq)
    return {c: d for s, shape in zip(ins, shapes) for c, d in zip(s, shape)}


# ------------------------------------------------------------------ the rules
def einsum_shape(*shapes: Shape, eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()) -> Shape:
    return _einsum_shape(tuple(tuple(s) for s in shapes), eq, tuple(ones))


@functools.lru_cache(maxsize=4096)
def _einsum_shape(shapes: Tuple[Shape, ...], eq: str, ones: Tuple[int, ...]) -> Shape:
    ins, out = _split(eq)
    if len(ins) != len(shapes):
        raise ValueError(f"einsum {eq!r}: takes {len(ins)} operands, got {len(shapes)}")
    sizes = _sizes(eq, shapes)
    core = [sizes[c] for c in out]
    for k in sorted(ones):
        core.insert(k, 1)
    return tuple(core)


def einsum_forward(*xs: np.ndarray, eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()) -> np.ndarray:
    y = contract(eq, list(xs))
    y = y * scale if scale != 1.0 else np.array(y, copy=True)
    return np.reshape(y, einsum_shape(*(x.shape for x in xs), eq=eq, ones=ones))


@functools.lru_cache(maxsize=1024)
def _input_letters(eq: str, n: int) -> str:
    """Letters for the input axes of a form: never one of the equation's own."""
    taken = set(eq)
    pool = [c for c in "pqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "abcdefghijklmno" if c not in taken]
    pool += [chr(0x3B1 + k) for k in range(24)]  # Greek, past the 52 letters
    return "".join(pool[:n])


def einsum_form(k: int, y: np.ndarray, *xs: np.ndarray, eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()) -> Factored:
    # dY[out]/dX_k[p...] = scale · Π_(m≠k) X_m[s_m] · Π_a δ(s_k[a], p_a)
    ins, out = _split(eq)
    inp = _input_letters(eq, xs[k].ndim)
    outl = list(out)
    for pos in sorted(ones):  # a kept length-1 axis: a label of its own, in no factor (a broadcast)
        outl.insert(pos, _input_letters(eq + inp + "".join(outl), 1))
    factors = tuple(Factor(x, s, "{x%d}" % m) for m, (s, x) in enumerate(zip(ins, xs)) if m != k)
    deltas = tuple(c + p for c, p in zip(ins[k], inp))
    return Factored("".join(outl), inp, (Product(factors, deltas, float(scale)),))


def einsum_vjp(k: int, g: np.ndarray, y: np.ndarray, *xs: np.ndarray, eq: str, scale: float = 1.0,
         ones: Tuple[int, ...] = ()) -> np.ndarray:
    # dl/dX_k = einsum(G[out], X_m[s_m] (m≠k) -> X_k[s_k]), diag-embedded where s_k repeats a label
    g_shape, sub_eq, r_shape, full_shape, perm, ties = _vjp_plan(eq, k, tuple(x.shape for x in xs))
    r = contract(sub_eq, [g.reshape(g_shape)] + [x for m, x in enumerate(xs) if m != k])
    if scale != 1.0:
        r = r * scale
    if r.shape != r_shape:
        r = r.reshape(r_shape)
    if r_shape != full_shape:  # labels only X_k has: the gradient is constant along them
        r = np.broadcast_to(r, full_shape)
    if ties is None:
        return np.asarray(r.transpose(perm) if perm is not None else r, order="C")
    res = np.zeros(xs[k].shape, dtype=np.result_type(g.dtype, xs[k].dtype))
    tied_view(res, ties)[...] = r.transpose(perm)
    return res


@functools.lru_cache(maxsize=1024)
def _vjp_plan(eq: str, k: int, shapes: Tuple[Shape, ...]) -> tuple:
    """The VJP of operand ``k`` as one contraction: G's shape, the equation, and how its result lands in X_k."""
    ins, out = _split(eq)
    sizes = _sizes(eq, shapes)
    sk = ins[k]
    uniq = "".join(dict.fromkeys(sk))
    subs = [out] + [s for m, s in enumerate(ins) if m != k]
    present = set("".join(subs))
    want = "".join(c for c in uniq if c in present)
    r_shape = tuple(sizes[c] if c in want else 1 for c in uniq)
    full_shape = tuple(sizes[c] for c in uniq)
    if len(uniq) == len(sk):
        perm = tuple(uniq.index(c) for c in sk)
        return (tuple(sizes[c] for c in out), ",".join(subs) + "->" + want, r_shape, full_shape,
                None if perm == tuple(range(len(perm))) else perm, None)  # None: no transpose
    first = {c: sk.index(c) for c in uniq}
    ties = tuple((first[c], a) for a, c in enumerate(sk) if a != first[c])
    kept = [a for a in range(len(sk)) if a not in {d for _, d in ties}]
    return (tuple(sizes[c] for c in out), ",".join(subs) + "->" + want, r_shape, full_shape,
            tuple(uniq.index(sk[a]) for a in kept), ties)


def einsum_bind(shapes: Tuple[Shape, ...], eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()):
    """:func:`einsum_forward` for operands of these shapes, planned once (:func:`jacobians.kernel.bind`)."""
    run = bind(eq, shapes)
    out_shape = einsum_shape(*shapes, eq=eq, ones=ones)
    sizes = _sizes(eq, shapes)
    if out_shape == tuple(sizes[c] for c in _split(eq)[1]):
        return run if scale == 1.0 else lambda *xs: run(*xs) * scale
    return lambda *xs: np.reshape(run(*xs) * scale if scale != 1.0 else run(*xs), out_shape)


def einsum_family(name: str, example: Tuple[Shape, ...], eq: str, forward=einsum_forward, vjp=None,
                  bound=einsum_bind) -> Op:
    """Register an einsum spec under a numpy name: the family's one form and one VJP (or the op's own,
    checked against the form like every VJP; and its own forward, with how to bind it to shapes)."""
    return register(Op(name, forward, einsum_shape, forms=einsum_form, vjps=vjp or einsum_vjp,
                       params=("eq", "scale", "ones"),
                       example=example, example_params={"eq": eq}, broadcasts=False, bind=bound))


def _matmul_forward(a: np.ndarray, b: np.ndarray, eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()) -> np.ndarray:
    return np.matmul(a, b)  # the same numbers as the spec, by numpy's own (BLAS) routine


def _transpose_axes(eq: str) -> List[int]:
    src, out = eq.split("->")
    return [src.index(c) for c in out]


def _transpose_forward(x: np.ndarray, eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()) -> np.ndarray:
    return np.transpose(x, _transpose_axes(eq))


def _transpose_bind(shapes: Tuple[Shape, ...], eq: str, scale: float = 1.0, ones: Tuple[int, ...] = ()):
    axes = _transpose_axes(eq)
    return lambda x: np.transpose(x, axes)


_EINSUM = einsum_family("einsum", ((2, 3), (3, 4)), "ij,jk->ik")
_MATMUL = einsum_family("matmul", ((3, 4), (4, 2)), "ik,kj->ij", _matmul_forward,
                        bound=lambda shapes, eq, scale=1.0, ones=(): np.matmul)
_TRANSPOSE = einsum_family("transpose", ((2, 3),), "ij->ji", _transpose_forward, bound=_transpose_bind)
_SUM = einsum_family("sum", ((2, 3),), "ij->j")
_MEAN = einsum_family("mean", ((2, 3),), "ij->j")
_TRACE = einsum_family("trace", ((3, 3),), "ii->")
_OUTER = einsum_family("outer", ((2,), (3,)), "i,j->ij")
_INNER = einsum_family("inner", ((2, 3), (4, 3)), "ik,jk->ij")
_DOT = einsum_family("dot", ((2, 3), (3,)), "ij,j->i")
_VDOT = einsum_family("vdot", ((3,), (3,)), "i,i->")
_TENSORDOT = einsum_family("tensordot", ((2, 3), (3, 4)), "ij,jk->ik")
_DIAGONAL = einsum_family("diagonal", ((3, 3),), "ii->i")


def apply_spec(op: Op, eq: str, *operands: Any, scale: float = 1.0, ones: Tuple[int, ...] = ()) -> Node:
    return apply(op, *operands, eq=eq, scale=float(scale), ones=tuple(ones))


# ------------------------------------------------------------------ public functions
def einsum(subscripts: str, *operands: Any) -> Node:
    """numpy's ``einsum`` on nodes, with its whole grammar (implicit output, repeated labels, ``...``).

    dY[out]/dX_k[p...] = Π_(m≠k) X_m[s_m] · Π_a δ(s_k[a], p_a)

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.arange(6.0).reshape(2, 3), name="X")
    >>> W = jx.var(np.ones((3, 4)), name="W")
    >>> Y = jx.einsum("ij,jk->ik", X, W)
    >>> Y.shape, jx.jacobian(Y, W).shape
    ((2, 4), (2, 4, 3, 4))
    >>> print(jx.derive(Y, W, names={Y: "Y"}))
    Σ G·dY/dW = Xᵀ G
      cb,ca->ab  (G, X)  =  Xᵀ G
    """
    if not operands:
        raise ValueError(f"einsum {subscripts!r}: no operands; pass one array or node per subscript")
    eq = parse_einsum(subscripts, [shape_of(x) for x in operands])
    return apply_spec(_EINSUM, eq, *operands)


def matmul(a: Any, b: Any) -> Node:
    """Matrix product ``a @ b`` with numpy's semantics: vectors, matrices and stacks ``(..., n, k) @ (..., k, m)``.

    dY[i,j]/dA[p,q] = δ_ip B[q,j] ;  dY[i,j]/dB[p,q] = A[i,p] δ_qj   (batch axes: one δ each)

    >>> import numpy as np, jacobians as jx
    >>> W = jx.var(np.ones((2, 3)), name="W")
    >>> X = np.arange(12.0).reshape(3, 4)
    >>> J = jx.jacobian(W @ X, W)        # a 4-tensor: out (2, 4) + in (2, 3)
    >>> J.shape, float(J[0, 1, 0, 2]), float(J[1, 1, 0, 2])  # δ_ca X[b,d]: X[2,1], then 0
    ((2, 4, 2, 3), 9.0, 0.0)
    >>> (jx.var(np.ones((5, 2, 3))) @ np.ones((3, 4))).shape      # a stack of 5 products
    (5, 2, 4)
    """
    sa, sb = shape_of(a), shape_of(b)
    if not sa or not sb:
        raise ValueError(f"matmul: shapes {sa} @ {sb}: matmul needs arrays of at least one axis; "
                         "for a scalar factor use * (jx.multiply)")
    k_a, k_b = sa[-1], (sb[0] if len(sb) == 1 else sb[-2])
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {sa} @ {sb} do not match: the last axis of the left ({k_a}) must equal "
            f"the {'only' if len(sb) == 1 else 'second-to-last'} axis of the right ({k_b}); did you mean a transpose (.T)?")
    if len(sa) == 1 and len(sb) == 1:
        spec = "k,k->"
    elif len(sa) == 1:
        spec = "k,...kj->...j"
    elif len(sb) == 1:
        spec = "...ik,k->...i"
    else:
        spec = "...ik,...kj->...ij"
    try:
        eq = parse_einsum(spec, [sa, sb], "matmul")
    except ValueError:
        raise ValueError(f"matmul: shapes {sa} @ {sb}: the batch axes {sa[:-2]} and {sb[:-2]} do not broadcast "
                         "(numpy rules: trailing axes must match or be 1)") from None
    return apply_spec(_MATMUL, eq, a, b)


def transpose(x: Any, axes: Optional[Sequence[int]] = None) -> Node:
    """Permute axes (default: reverse them, like ``.T``).

    dY[i,j]/dX[p,q] = δ_iq δ_jp for a matrix

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.zeros((2, 3)))
    >>> jx.transpose(X).shape, jx.jacobian(X.T, X).shape
    ((3, 2), (3, 2, 2, 3))
    """
    n = len(shape_of(x))
    perm = tuple(reversed(range(n))) if axes is None else tuple(int(a) % max(n, 1) for a in axes)
    if sorted(perm) != list(range(n)):
        raise ValueError(f"transpose: axes {tuple(axes or ())} are not a permutation of the {n} axes of shape "
                         f"{shape_of(x)}")
    s = _LETTERS[:n]
    return apply_spec(_TRANSPOSE, s + "->" + "".join(s[a] for a in perm), x)


def _reduce(op: Op, name: str, x: Any, axis: Any, keepdims: bool, mean: bool) -> Node:
    shape = shape_of(x)
    axes = normalize_axes(name, len(shape), axis)
    s = _LETTERS[:len(shape)]
    out = "".join(c for k, c in enumerate(s) if k not in axes)
    scale = 1.0 / check_nonempty(name, shape, axes) if mean else 1.0
    return apply_spec(op, s + "->" + out, x, scale=scale, ones=axes if keepdims else ())


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Node:  # noqa: A001
    """Sum over ``axis`` (None: every axis; an int or a tuple), like ``np.sum``.

    dY[k]/dX[j] = δ(k = j without the summed axes)

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 3)))
    >>> jx.sum(X, axis=0).shape, jx.jacobian(jx.sum(X, axis=0), X)[1].tolist()
    ((3,), [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    """
    return _reduce(_SUM, "sum", x, axis, keepdims, mean=False)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Node:
    """Mean over ``axis`` (None: every axis; an int or a tuple), like ``np.mean``.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.ones((2, 2)))
    >>> jx.grad(jx.mean(X), X).tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    return _reduce(_MEAN, "mean", x, axis, keepdims, mean=True)


def trace(a: Any) -> Node:
    """Trace of a matrix, or of each matrix in a stack (over the last two axes, as ``numpy.linalg.trace``).

    dy/dA[p,q] = δ_pq

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.ones((2, 2)))
    >>> jx.grad(jx.trace(A), A).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    s = shape_of(a)
    if len(s) < 2:
        raise ValueError(f"trace: needs a matrix (or a stack of them, (..., n, m)), got shape {s}")
    eq, consts = _diagonal_spec(s, 0, -2, -1, keep=False)
    return apply_spec(_TRACE, eq, a, *consts)


def outer(a: Any, b: Any) -> Node:
    """Outer product of two vectors, like ``np.outer`` (other shapes are flattened first).

    >>> import jacobians as jx
    >>> jx.outer(jx.var([1.0, 2.0]), [3.0, 4.0, 5.0]).value.tolist()
    [[3.0, 4.0, 5.0], [6.0, 8.0, 10.0]]
    """
    from .shape import reshape

    a, b = (x if len(shape_of(x)) == 1 else reshape(x, (-1,)) for x in (a, b))
    return apply_spec(_OUTER, "i,j->ij", a, b)


def _product_spec(name: str, sa: Shape, sb: Shape, ka: Sequence[int], kb: Sequence[int]) -> str:
    """Subscripts summing axes ``ka`` of a against ``kb`` of b; the rest of a, then the rest of b."""
    for i, j in zip(ka, kb):
        if sa[i] != sb[j]:
            raise ValueError(f"{name}: shapes {sa} and {sb} do not match: axis {i} of the first has length "
                             f"{sa[i]}, axis {j} of the second {sb[j]}")
    la = list(_LETTERS[:len(sa)])
    lb = list(_LETTERS[len(sa):len(sa) + len(sb)])
    for i, j in zip(ka, kb):
        lb[j] = la[i]
    out = [c for k, c in enumerate(la) if k not in ka] + [c for k, c in enumerate(lb) if k not in kb]
    return "".join(la) + "," + "".join(lb) + "->" + "".join(out)


def _scalar_product(name: str, a: Any, b: Any) -> Optional[Node]:
    if len(shape_of(a)) == 0 or len(shape_of(b)) == 0:
        from .arithmetic import multiply

        return multiply(a, b)
    return None


def inner(a: Any, b: Any) -> Node:
    """Inner product over the last axes, like ``np.inner``: shape ``a.shape[:-1] + b.shape[:-1]``.

    >>> import jacobians as jx
    >>> float(jx.inner(jx.var([1.0, 2.0]), [3.0, 4.0]).value)
    11.0
    """
    scalar = _scalar_product("inner", a, b)
    if scalar is not None:
        return scalar
    sa, sb = shape_of(a), shape_of(b)
    return apply_spec(_INNER, _product_spec("inner", sa, sb, [len(sa) - 1], [len(sb) - 1]), a, b)


def dot(a: Any, b: Any) -> Node:
    """``np.dot``: inner product of vectors, matrix product, and the sum over a's last and b's second-to-last axis.

    >>> import numpy as np, jacobians as jx
    >>> jx.dot(jx.var(np.eye(2)), [1.0, 2.0]).value.tolist()
    [1.0, 2.0]
    """
    scalar = _scalar_product("dot", a, b)
    if scalar is not None:
        return scalar
    sa, sb = shape_of(a), shape_of(b)
    kb = 0 if len(sb) == 1 else len(sb) - 2
    return apply_spec(_DOT, _product_spec("dot", sa, sb, [len(sa) - 1], [kb]), a, b)


def vdot(a: Any, b: Any) -> Node:
    """Σ a·b over every entry of two arrays of the same size, like ``np.vdot`` (real input).

    >>> import jacobians as jx
    >>> float(jx.vdot(jx.var([[1.0, 2.0]]), [[3.0, 4.0]]).value)
    11.0
    """
    from .shape import reshape

    sa, sb = shape_of(a), shape_of(b)
    if math.prod(sa) != math.prod(sb):
        raise ValueError(f"vdot: shapes {sa} and {sb} have different sizes; vdot needs as many entries in each")
    a, b = (x if len(shape_of(x)) == 1 else reshape(x, (-1,)) for x in (a, b))
    return apply_spec(_VDOT, "i,i->", a, b)


def tensordot(a: Any, b: Any, axes: Union[int, Sequence[Any]] = 2) -> Node:
    """``np.tensordot``: sum the last ``axes`` axes of a against the first of b, or the listed pairs.

    >>> import numpy as np, jacobians as jx
    >>> jx.tensordot(jx.var(np.ones((2, 3))), np.ones((3, 4)), axes=1).shape
    (2, 4)
    """
    sa, sb = shape_of(a), shape_of(b)
    if np.ndim(axes) == 0:
        n = int(axes)
        if not 0 <= n <= min(len(sa), len(sb)):
            raise ValueError(f"tensordot: axes={axes} is more than the axes of shapes {sa} and {sb}")
        ka, kb = list(range(len(sa) - n, len(sa))), list(range(n))
    else:
        ka, kb = ([int(v)] if np.ndim(v) == 0 else [int(w) for w in v] for v in axes)
        if len(ka) != len(kb):
            raise ValueError(f"tensordot: axes {axes} pair {len(ka)} axes of a with {len(kb)} of b")
        ka = [k % len(sa) for k in ka]
        kb = [k % len(sb) for k in kb]
    return apply_spec(_TENSORDOT, _product_spec("tensordot", sa, sb, ka, kb), a, b)


def _diagonal_spec(s: Shape, offset: int, axis1: int, axis2: int, keep: bool) -> Tuple[str, List[np.ndarray]]:
    """Subscripts (and constant selection matrices) that read the diagonal of axes axis1, axis2.

    Square axes at offset 0: ``ii->i``. Otherwise the two axes are read through
    constant 0/1 matrices E1[p,d] = [p = d + max(-offset, 0)], E2[q,d] = [q = d + max(offset, 0)]:
    ``pq,pd,qd->d``. ``keep`` keeps the diagonal's axis last (diagonal), else it is summed (trace).
    """
    n = len(s)
    a1, a2 = axis1 % n, axis2 % n
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2} for shape {s}")
    labels = list(_LETTERS[:n])
    rest = "".join(c for k, c in enumerate(labels) if k not in (a1, a2))
    if offset == 0 and s[a1] == s[a2]:
        labels[a2] = labels[a1]
        return "".join(labels) + "->" + rest + (labels[a1] if keep else ""), []
    length = max(0, min(s[a1] - max(-offset, 0), s[a2] - max(offset, 0)))
    d = np.arange(length)
    e1, e2 = np.zeros((s[a1], length)), np.zeros((s[a2], length))
    e1[d + max(-offset, 0), d] = 1.0
    e2[d + max(offset, 0), d] = 1.0
    p, q, k = labels[a1], labels[a2], _LETTERS[n]
    return "".join(labels) + f",{p}{k},{q}{k}->" + rest + (k if keep else ""), [e1, e2]


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Node:
    """The diagonal of ``a`` over ``axis1`` and ``axis2``, like ``np.diagonal`` (appended as the last axis).

    With ``offset`` 0 on square axes this is ``ii->i``; otherwise the two axes are
    read through constant 0/1 selection matrices, ``pq,pd,qd->d``.

    >>> import numpy as np, jacobians as jx
    >>> A = jx.var(np.arange(12.0).reshape(3, 4))
    >>> jx.diagonal(A).value.tolist(), jx.diagonal(A, offset=1).value.tolist()
    ([0.0, 5.0, 10.0], [1.0, 6.0, 11.0])
    """
    s = shape_of(a)
    if len(s) < 2:
        raise ValueError(f"diagonal: needs at least two axes, got shape {s}")
    eq, consts = _diagonal_spec(s, int(offset), int(axis1), int(axis2), keep=True)
    return apply_spec(_DIAGONAL, eq, a, *consts)
