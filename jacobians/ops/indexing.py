"""Indexing, joining and splitting: X[...], take, take_along_axis, .at[...], concatenate, stack, split.

All of them are linear. Their Jacobians are products of one piece per axis:
a delta where an axis is kept whole, a constant 0/1 selection matrix along one
axis where entries are picked (rows of the identity: ``I[1:5:2]``, ``I[idx]``
for an integer array, ``I[:,3:5]`` for the place of one operand in a
concatenation), a row of the identity ``I[2]`` where an integer index drops an
axis. An integer-array (or mask) index over several axes gives one one-hot
gather matrix per indexed axis, sharing the output's indices::

    Y = X[rows, 1:]        dY[i,j]/dX[p,q] = I[idx][i,p] I[1:][j,q]

Repeated indices need no special case: the summed index of the VJP adds their
cotangents (``np.add.at``). The VJPs are written with numpy directly.

There is no item assignment on nodes. The functional update is JAX's spelling,
``X.at[idx].set(v)`` and ``X.at[idx].add(v)``, differentiable in X and in v::

    Y = X.at[idx].add(V)   dY/dX = δ (every axis)      dY[x]/dV[w] = Σ_z G[z,x] B[z,w]

with G the gather form of ``X[idx]`` and B the broadcast of V to its shape.
``.set`` keeps from X only the entries not written (a 0/1 factor on δ), and
where an index repeats, the last write wins (C order of the index), as a
``last`` factor on the gather: only the winning copy of V has a derivative.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..form import OUT_LABELS, Factor, Factored, Product, axis_labels
from ..node import Node, shape_of
from ..registry import Op, apply, register
from ._rules import broadcasts_to, normalize_axes, unbroadcast
from .shape import AxisRule, axis_form, ravel, reshape, selection, slice_text

__all__ = ["getitem", "take", "take_along_axis", "at_set", "at_add", "concatenate", "stack", "hstack", "vstack",
           "split", "array_split"]

Shape = Tuple[int, ...]


class IndexOutOfRange(IndexError, ValueError):
    """An index that does not fit the array (an IndexError, as numpy says, and a ValueError)."""


# ------------------------------------------------------------------ reading a numpy index
@dataclass(frozen=True)
class IndexPlan:
    """A numpy index read axis by axis.

    ``index`` is numpy-ready and canonical (non-negative ints and integer
    arrays, masks replaced by their ``nonzero()`` arrays, read-only copies),
    so reading it again gives the same plan. ``outs`` says where each output
    axis comes from: ``("new",)``, ``("slice", axis, start, step, length)`` or
    ``("adv", d)`` (axis d of the broadcast integer-array block ``bshape``).
    ``ints`` are the integer indices that drop an axis (no integer array in the
    index), ``adv`` the integer arrays (ints among them, as 0-d arrays) with the
    input axis each one indexes.
    """

    index: tuple
    in_shape: Shape
    out_shape: Shape
    outs: Tuple[tuple, ...]
    ints: Tuple[Tuple[int, int], ...]
    adv: Tuple[Tuple[int, np.ndarray], ...]
    bshape: Shape

    @property
    def basic(self) -> bool:
        return not self.adv


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=np.intp, copy=True)
    arr.setflags(write=False)
    return arr


def read_index(shape: Sequence[int], index: Any, who: str = "getitem") -> IndexPlan:
    """Read ``index`` against an array of ``shape`` as numpy would; errors name ``who`` and the shape.

    >>> p = read_index((3, 4), (slice(None), [0, 2, 2]))
    >>> p.out_shape, p.outs
    ((3, 3), (('slice', 0, 0, 1, 3), ('adv', 0)))
    """
    shape = tuple(int(n) for n in shape)
    nd = len(shape)
    raw = index if isinstance(index, tuple) else (index,)
    entries: List[Tuple[str, Any]] = []
    for pos, e in enumerate(raw):
        if isinstance(e, Node):
            raise TypeError(f"{who}: the index {e.name} is a node; indices are constants (they have no derivative): "
                            f"index with {e.name}.value, an integer array or a boolean mask")
        if e is None:
            entries.append(("new", None))
        elif e is Ellipsis:
            entries.append(("ell", None))
        elif isinstance(e, slice):
            entries.append(("slice", e))
        elif isinstance(e, (bool, np.bool_)):
            raise TypeError(f"{who}: a bare True/False index is not supported (input of shape {shape}); index "
                            "with a boolean mask array of the indexed axes' shape instead")
        elif isinstance(e, numbers.Integral):
            entries.append(("int", int(e)))
        else:
            try:
                arr = np.asarray(e)
            except Exception:
                arr = np.asarray(None, dtype=object)
            if arr.dtype == bool and arr.ndim:
                entries.append(("mask", arr))
            elif arr.dtype.kind in "iu":
                entries.append(("int", int(arr)) if arr.ndim == 0 else ("arr", arr))
            elif arr.size == 0 and arr.dtype.kind == "f" and isinstance(e, (list, tuple)):
                entries.append(("arr", arr.astype(np.intp)))
            else:
                raise TypeError(f"{who}: index entry {pos} ({e!r}) of an input of shape {shape} is not an index; "
                                "use ints, slices, None, ..., integer arrays or boolean masks")
    if sum(k == "ell" for k, _ in entries) > 1:
        raise IndexOutOfRange(f"{who}: an index can have only one '...' (input of shape {shape})")
    consumed = sum(v.ndim if k == "mask" else 1 for k, v in entries if k in ("slice", "int", "arr", "mask"))
    if consumed > nd:
        raise IndexOutOfRange(f"{who}: too many indices for an input of shape {shape}: {consumed} axes indexed, "
                              f"it has {nd}")
    advanced = any(k in ("arr", "mask") for k, _ in entries)
    n_ell = nd - consumed
    canon: List[Any] = []
    groups: List[List[tuple]] = []  # the output axes of each entry
    adv: List[Tuple[int, np.ndarray]] = []
    adv_pos: List[int] = []
    ints: List[Tuple[int, int]] = []
    axis = 0
    for pos, (kind, v) in enumerate(entries):
        items: List[tuple] = []
        if kind == "new":
            items, entry = [("new",)], None
        elif kind == "ell":
            items = [("slice", axis + j, 0, 1, shape[axis + j]) for j in range(n_ell)]
            axis, entry = axis + n_ell, Ellipsis
        elif kind == "slice":
            try:
                start, stop, step = v.indices(shape[axis])
            except TypeError:
                raise TypeError(f"{who}: slice {v} (axis {axis} of shape {shape}) must have integer start, stop "
                                "and step") from None
            items = [("slice", axis, start, step, len(range(start, stop, step)))]
            entry, axis = v, axis + 1
        elif kind == "int":
            n = shape[axis]
            if not -n <= v < n:
                raise IndexOutOfRange(f"{who}: index {v} is out of range for axis {axis} of length {n} "
                                      f"(input of shape {shape})")
            entry = v % n
            if advanced:
                adv.append((axis, _frozen(np.asarray(entry))))
                adv_pos.append(pos)
            else:
                ints.append((axis, entry))
            axis += 1
        elif kind == "arr":
            n = shape[axis]
            if v.size and (v.min() < -n or v.max() >= n):
                bad = v[(v < -n) | (v >= n)].flat[0]
                raise IndexOutOfRange(f"{who}: index {bad} is out of range for axis {axis} of length {n} "
                                      f"(input of shape {shape})")
            entry = _frozen(v % n if n else v)
            adv.append((axis, entry))
            adv_pos.append(pos)
            axis += 1
        else:  # a mask: its nonzero() arrays, one per axis it covers
            m = v.ndim
            if v.shape != shape[axis:axis + m]:
                raise IndexOutOfRange(f"{who}: boolean mask of shape {v.shape} does not match axes "
                                      f"{axis}..{axis + m - 1} of an input of shape {shape}; a mask has the shape "
                                      "of the axes it selects from")
            nz = [_frozen(a) for a in np.nonzero(v)]
            adv.extend((axis + j, a) for j, a in enumerate(nz))
            adv_pos.append(pos)
            axis += m
            canon.extend(nz)
            groups.append([])
            continue
        canon.append(entry)
        groups.append(items)
    trailing = [("slice", a, 0, 1, shape[a]) for a in range(axis, nd)]
    try:
        bshape = tuple(np.broadcast_shapes(*(a.shape for _, a in adv))) if adv else ()
    except ValueError:
        raise IndexOutOfRange(f"{who}: the integer-array indices of shapes {', '.join(str(a.shape) for _, a in adv)} "
                              f"do not broadcast together (input of shape {shape})") from None
    block = [("adv", d) for d in range(len(bshape))]
    outs: List[tuple] = []
    in_place = bool(adv_pos) and adv_pos == list(range(adv_pos[0], adv_pos[0] + len(adv_pos)))
    if adv_pos and not in_place:  # numpy: integer arrays apart from each other put their axes first
        outs += block
    for pos, items in enumerate(groups):
        if in_place and pos == adv_pos[0]:
            outs += block
        outs += items
    outs += trailing
    out_shape = tuple(1 if o[0] == "new" else o[4] if o[0] == "slice" else bshape[o[1]] for o in outs)
    return IndexPlan(tuple(canon), shape, out_shape, tuple(outs), tuple(ints), tuple(adv), bshape)


def _onehot(arr: np.ndarray, n: int, dtype: Any) -> np.ndarray:
    """E[..., p] = [arr[...] = p]: the rows of the identity I_n that arr picks."""
    return (np.asarray(arr)[..., None] == np.arange(n)).astype(dtype)


def _gather_product(plan: IndexPlan, zl: str, xl: str, dtype: Any) -> Tuple[List[Factor], List[str]]:
    """Factors and deltas of dZ[zl]/dX[xl] for Z = X[index]."""
    factors: List[Factor] = []
    deltas: List[str] = []
    blabel = {}
    for k, o in enumerate(plan.outs):
        if o[0] == "slice":
            _, a, start, step, length = o
            n = plan.in_shape[a]
            if start == 0 and step == 1 and length == n:
                deltas.append(zl[k] + xl[a])
            else:
                factors.append(Factor(selection(start + step * np.arange(length), n, dtype), zl[k] + xl[a],
                                      f"I[{slice_text(start, step, length)}]"))
        elif o[0] == "adv":
            blabel[o[1]] = zl[k]
    for a, k in plan.ints:
        factors.append(Factor(selection([k], plan.in_shape[a], dtype)[0], xl[a], f"I[{k}]"))
    nb = len(plan.bshape)
    arrays = [(a, arr) for a, arr in plan.adv if arr.ndim]
    for a, arr in plan.adv:
        full = arr.reshape((1,) * (nb - arr.ndim) + arr.shape)
        keep = [d for d in range(nb) if not (full.shape[d] == 1 and plan.bshape[d] != 1)] if arr.ndim else []
        kept = full.reshape([full.shape[d] for d in keep])
        name = (f"I[{int(arr)}]" if not arr.ndim else
                "I[idx]" if len(arrays) == 1 else f"I[idx{[b for b, _ in arrays].index(a)}]")
        factors.append(Factor(_onehot(kept, plan.in_shape[a], dtype), "".join(blabel[d] for d in keep) + xl[a], name))
    return factors, deltas


def _last_writes(plan: IndexPlan) -> Optional[np.ndarray]:
    """Over the integer-array block: 1 where an index is the last to name its entry, 0 where a later one repeats it.

    None when no index repeats (nothing is overwritten).
    """
    if not plan.adv or not np.prod(plan.bshape, dtype=np.int64):
        return None
    coords = [np.broadcast_to(arr, plan.bshape) for _, arr in plan.adv]
    t = np.ravel_multi_index(coords, [plan.in_shape[a] for a, _ in plan.adv]).reshape(-1)
    _, first_from_end = np.unique(t[::-1], return_index=True)
    win = np.zeros(t.size, dtype=bool)
    win[t.size - 1 - first_from_end] = True
    return None if win.all() else win.reshape(plan.bshape)


# ------------------------------------------------------------------ X[index]
def _getitem_form(y, x, index):
    plan = read_index(x.shape, index)
    out, inp = axis_labels(y.ndim, x.ndim)
    factors, deltas = _gather_product(plan, out, inp, y.dtype)
    return Factored(out, inp, (Product(tuple(factors), tuple(deltas)),))


def _getitem_vjp(g, y, x, index):
    gx = np.zeros(x.shape, dtype=g.dtype)
    if read_index(x.shape, index).basic:
        gx[index] = g  # a basic index names every entry once
    else:
        np.add.at(gx, index, g)  # repeated integer indices add up
    return gx


_GETITEM = register(Op(
    "getitem", lambda x, index: np.array(x[index]), lambda s, index: read_index(s, index).out_shape,
    forms=(_getitem_form,),
    vjps=(_getitem_vjp,),
    params=("index",),
    example=((3, 4),),
    example_params={"index": (slice(0, 3, 2), np.array([3, 0, 3]))},
))


def getitem(x: Any, index: Any) -> Node:
    """``x[index]`` with numpy's indexing: ints (negative too), slices with steps, None, ``...``,
    integer arrays (repeated indices allowed) and boolean masks. ``X[...]`` on a node calls this.

    dY[i,j]/dX[p,q] = I[0:3:2][i,p] I[idx][j,q]   (X[::2, [3, 0, 3]])

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.arange(12.0).reshape(3, 4), name="X")
    >>> X[1].value.tolist(), X[::2, [3, 0, 3]].value.tolist(), X[X.value > 9].value.tolist()
    ([4.0, 5.0, 6.0, 7.0], [[3.0, 0.0, 3.0], [11.0, 8.0, 11.0]], [10.0, 11.0])
    >>> jx.grad(jx.sum(X[0, [1, 1, 2]]), X)[0].tolist()     # a repeated index counts twice
    [0.0, 2.0, 1.0, 0.0]
    """
    plan = read_index(shape_of(x), index)
    return apply(_GETITEM, x, index=plan.index)


# ------------------------------------------------------------------ X.at[index].set(v) / .add(v)
def _at_shape(name: str):
    def rule(sx: Shape, sv: Shape, index: tuple) -> Shape:
        z = read_index(sx, index, name).out_shape
        if not broadcasts_to(sv, z):
            raise ValueError(f"{name}: values of shape {tuple(sv)} do not broadcast to the indexed part X[index] of "
                             f"shape {z} (X has shape {tuple(sx)}); give values of shape {z} or one that "
                             "broadcasts to it")
        return tuple(sx)

    return rule


def _flat_targets(x: np.ndarray, index: tuple) -> np.ndarray:
    """The flat position in x of every entry of x[index]."""
    return np.arange(x.size).reshape(x.shape)[index]


def _winners(targets: np.ndarray) -> np.ndarray:
    """1 at the last occurrence (C order) of each target, 0 at the earlier ones."""
    t = targets.reshape(-1)
    _, first_from_end = np.unique(t[::-1], return_index=True)
    win = np.zeros(t.size, dtype=bool)
    win[t.size - 1 - first_from_end] = True
    return win.reshape(targets.shape)


def _set_forward(x, v, index):
    y = np.array(x, dtype=np.result_type(x, v), copy=True)
    if read_index(x.shape, index).basic:
        y[index] = v
        return y
    t = _flat_targets(x, index)
    win = _winners(t)
    y.reshape(-1)[t[win]] = np.broadcast_to(v, t.shape)[win]  # the last write wins, deterministically
    return y


def _add_forward(x, v, index):
    y = np.array(x, dtype=np.result_type(x, v), copy=True)
    np.add.at(y, index, np.broadcast_to(v, read_index(x.shape, index).out_shape))
    return y


def _at_v_form(y, x, v, index, last: bool) -> Factored:
    # dY[x]/dV[w] = Σ_z G[z,x] B[z,w] (· last[z] for set): the gather, transposed, after V's broadcast
    plan = read_index(x.shape, index)
    out, inp = axis_labels(x.ndim, v.ndim)
    nz = len(plan.out_shape)
    zl = OUT_LABELS[x.ndim:x.ndim + nz]
    factors, deltas = _gather_product(plan, zl, out, y.dtype)
    off = nz - v.ndim
    deltas += [zl[off + j] + inp[j] for j in range(v.ndim) if v.shape[j] == plan.out_shape[off + j]]
    win = _last_writes(plan) if last else None
    if win is not None:
        blabels = "".join(zl[k] for k, o in enumerate(plan.outs) if o[0] == "adv")
        factors.append(Factor(win.astype(y.dtype), blabels, "last(idx)"))
    return Factored(out, inp, (Product(tuple(factors), tuple(deltas)),))


def _set_x_form(y, x, v, index):
    # dY[i]/dX[p] = Π δ_ip · unset[i]: the entries written lose their dependence on X
    out, inp = axis_labels(y.ndim, x.ndim)
    keep = np.ones(x.shape, dtype=y.dtype)
    keep[index] = 0
    return Factored(out, inp, (Product((Factor(keep, out, "unset(idx)"),), tuple(o + p for o, p in zip(out, inp))),))


def _set_v_vjp(g, y, x, v, index):
    gz = np.array(g[index], copy=True)
    if not read_index(x.shape, index).basic:
        gz[~_winners(_flat_targets(x, index))] = 0  # overwritten copies reach nothing
    return unbroadcast(gz, v.shape)


def _set_x_vjp(g, y, x, v, index):
    gx = np.array(g, copy=True)
    gx[index] = 0
    return gx


_AT_SET = register(Op(
    "at_set", _set_forward, _at_shape("at_set"),
    forms=(_set_x_form, lambda y, x, v, index: _at_v_form(y, x, v, index, last=True)),
    vjps=(_set_x_vjp, _set_v_vjp),
    params=("index",),
    example=((3, 4), (2,)),
    example_params={"index": (np.array([0, 2]), 1)},
))

_AT_ADD = register(Op(
    "at_add", _add_forward, _at_shape("at_add"),
    forms=(lambda y, x, v, index: Factored(*axis_labels(y.ndim, x.ndim),
                                           (Product((), tuple(o + p for o, p in zip(*axis_labels(y.ndim, x.ndim)))),)),
           lambda y, x, v, index: _at_v_form(y, x, v, index, last=False)),
    vjps=(lambda g, y, x, v, index: np.array(g, copy=True),
          lambda g, y, x, v, index: unbroadcast(np.array(g[index]), v.shape)),
    params=("index",),
    example=((3, 4), (2,)),
    example_params={"index": (np.array([0, 2]), 1)},
))


def at_set(x: Any, index: Any, values: Any) -> Node:
    """A copy of ``x`` with ``x[index]`` replaced by ``values`` (broadcast): ``X.at[index].set(values)``.

    Differentiable in both x and values.

    Where an integer-array index repeats an entry, the last write wins (C order of the index).

    >>> import numpy as np, jacobians as jx
    >>> X, v = jx.var(np.zeros((2, 3))), jx.var([5.0, 6.0])
    >>> Y = X.at[:, [0, 2]].set(v)
    >>> Y.value.tolist(), jx.grad(jx.sum(Y), X).tolist()
    ([[5.0, 0.0, 6.0], [5.0, 0.0, 6.0]], [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    """
    plan = read_index(shape_of(x), index, "at_set")
    return apply(_AT_SET, x, values, index=plan.index)


def at_add(x: Any, index: Any, values: Any) -> Node:
    """A copy of ``x`` with ``values`` (broadcast) added at ``x[index]``: ``X.at[index].add(values)``.

    Repeated integer indices add up (like ``np.add.at``).

    >>> import numpy as np, jacobians as jx
    >>> X, v = jx.var(np.zeros(3)), jx.var([1.0, 2.0])
    >>> Y = X.at[[0, 0]].add(v)
    >>> Y.value.tolist(), jx.grad(jx.sum(Y * Y), v).tolist()
    ([3.0, 0.0, 0.0], [6.0, 6.0])
    """
    plan = read_index(shape_of(x), index, "at_add")
    return apply(_AT_ADD, x, values, index=plan.index)


class AtUpdate:
    """``X.at[index]``: ``.set(v)``, ``.add(v)`` (new nodes; X is unchanged) and ``.get()`` (``X[index]``)."""

    __slots__ = ("node", "index")

    def __init__(self, node: Node, index: Any) -> None:
        self.node, self.index = node, index

    def set(self, values: Any) -> Node:
        """X with X[index] replaced by values: :func:`at_set`."""
        return at_set(self.node, self.index, values)

    def add(self, values: Any) -> Node:
        """X with values added at X[index] (repeats add up): :func:`at_add`."""
        return at_add(self.node, self.index, values)

    def get(self) -> Node:
        """X[index]."""
        return getitem(self.node, self.index)

    def __repr__(self) -> str:
        return f"<{self.node.name}.at[{self.index!r}]: .set(v), .add(v) or .get()>"


class AtIndexer:
    """``X.at``: index it, then ``.set(v)`` or ``.add(v)``: JAX's functional update.

    >>> import jacobians as jx
    >>> x = jx.var([1.0, 2.0, 3.0])
    >>> x.at[-1].set(0.0).value.tolist(), x.at[0].add(10.0).value.tolist()
    ([1.0, 2.0, 0.0], [11.0, 2.0, 3.0])
    """

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node

    def __getitem__(self, index: Any) -> AtUpdate:
        return AtUpdate(self.node, index)

    def __repr__(self) -> str:
        return f"<{self.node.name}.at: index it, then .set(v) or .add(v)>"


# ------------------------------------------------------------------ take, take_along_axis
def _int_indices(name: str, indices: Any, n: int, where: str) -> np.ndarray:
    if isinstance(indices, Node):
        raise TypeError(f"{name}: the indices {indices.name} are a node; indices are constants: pass "
                        f"{indices.name}.value")
    arr = np.asarray(indices)
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype(np.intp)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: indices must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < -n or arr.max() >= n):
        bad = arr[(arr < -n) | (arr >= n)].flat[0]
        raise IndexOutOfRange(f"{name}: index {bad} is out of range for {where} of length {n}")
    return _frozen(arr % n if n else arr)


def _take_form(y, x, indices, axis):
    out, inp = axis_labels(y.ndim, x.ndim)
    k = indices.ndim
    deltas = [out[a] + inp[a] for a in range(axis)] + [out[a + k - 1] + inp[a] for a in range(axis + 1, x.ndim)]
    name = f"I[{int(indices)}]" if not k else "I[idx]"
    sel = Factor(_onehot(indices, x.shape[axis], y.dtype), out[axis:axis + k] + inp[axis], name)
    return Factored(out, inp, (Product((sel,), tuple(deltas)),))


def _take_vjp(g, y, x, indices, axis):
    gx = np.zeros(x.shape, dtype=g.dtype)
    np.add.at(gx, (slice(None),) * axis + (indices,), g)
    return gx


_TAKE = register(Op(
    "take", lambda x, indices, axis: np.take(x, indices, axis=axis),
    lambda s, indices, axis: s[:axis] + indices.shape + s[axis + 1:],
    forms=(_take_form,),
    vjps=(_take_vjp,),
    params=("indices", "axis"),
    example=((2, 4),),
    example_params={"indices": np.array([3, 0, 3]), "axis": 1},
))


def take(a: Any, indices: Any, axis: Optional[int] = None) -> Node:
    """Entries at ``indices`` along ``axis`` (None: of the flattened array), like ``np.take``.

    dY[i,j]/dX[p,q] = δ_ip I[idx][j,q]   (axis=1)

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.arange(6.0).reshape(2, 3))
    >>> jx.take(X, [2, 0], axis=1).value.tolist(), jx.take(X, [[5, -1]]).value.tolist()
    ([[2.0, 0.0], [5.0, 3.0]], [[5.0, 5.0]])
    """
    s = shape_of(a)
    if axis is None:
        if len(s) != 1:
            a = ravel(a)
        s, axis = shape_of(a), 0
    if not s:
        raise ValueError("take: cannot take from a scalar along an axis; index an array of at least one axis")
    ax = normalize_axes("take", len(s), axis)[0] if np.ndim(axis) == 0 else None
    if ax is None:
        raise TypeError(f"take: axis must be an int or None, got {axis!r}")
    ind = _int_indices("take", indices, s[ax], f"axis {ax} of shape {s}")
    return apply(_TAKE, a, indices=ind, axis=ax)


def _along_shape(s: Shape, indices: np.ndarray, axis: int) -> Shape:
    if indices.ndim != len(s):
        raise ValueError(f"take_along_axis: indices of shape {indices.shape} need as many axes as the input of "
                         f"shape {s}")
    a = list(s)
    b = list(indices.shape)
    a[axis] = b[axis] = 1
    try:
        out = list(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ValueError(f"take_along_axis: indices of shape {indices.shape} do not broadcast against the input of "
                         f"shape {s} off axis {axis}") from None
    out[axis] = indices.shape[axis]
    return tuple(out)


def _along_form(y, x, indices, axis):
    out, inp = axis_labels(y.ndim, x.ndim)
    deltas = tuple(out[d] + inp[d] for d in range(x.ndim) if d != axis and x.shape[d] == y.shape[d])
    keep = [d for d in range(x.ndim) if d == axis or not (indices.shape[d] == 1 and y.shape[d] != 1)]
    kept = indices.reshape([indices.shape[d] for d in keep])
    sel = Factor(_onehot(kept, x.shape[axis], y.dtype), "".join(out[d] for d in keep) + inp[axis], "I[idx]")
    return Factored(out, inp, (Product((sel,), deltas),))


def _along_vjp(g, y, x, indices, axis):
    gx = np.zeros(x.shape, dtype=g.dtype)
    nd = x.ndim
    where = []
    for d in range(nd):
        if d == axis:
            where.append(indices)
        elif x.shape[d] == 1:
            where.append(np.zeros((1,) * nd, dtype=np.intp))  # a broadcast axis of x: every row lands on its one
        else:
            where.append(np.arange(y.shape[d]).reshape([-1 if k == d else 1 for k in range(nd)]))
    np.add.at(gx, tuple(where), g)
    return gx


_TAKE_ALONG_AXIS = register(Op(
    "take_along_axis", lambda x, indices, axis: np.take_along_axis(x, indices, axis), _along_shape,
    forms=(_along_form,),
    vjps=(_along_vjp,),
    params=("indices", "axis"),
    example=((2, 4),),
    example_params={"indices": np.array([[3, 0, 0], [1, 2, 1]]), "axis": 1},
))


def take_along_axis(arr: Any, indices: Any, axis: Optional[int] = -1) -> Node:
    """Entries picked along ``axis`` per position of the other axes, like ``np.take_along_axis``.

    ``indices`` has as many axes as ``arr`` (argsort's output, for instance);
    with axis None both are flattened.

    dY[i,j]/dX[p,q] = δ_ip I[idx][i,j,q]   (axis=1)

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    >>> jx.take_along_axis(X, np.argsort(X.value, axis=1), axis=1).value.tolist()
    [[1.0, 2.0, 3.0], [0.0, 4.0, 5.0]]
    """
    s = shape_of(arr)
    if axis is None:
        if np.ndim(indices) != 1:
            raise ValueError(f"take_along_axis: with axis=None the indices must be one-dimensional, got shape "
                             f"{np.shape(indices)}")
        if len(s) != 1:
            arr = ravel(arr)
        s, axis = shape_of(arr), 0
    if not s:
        raise ValueError("take_along_axis: needs an input with at least one axis, got a scalar")
    if np.ndim(axis) != 0:
        raise TypeError(f"take_along_axis: axis must be an int or None, got {axis!r}")
    ax = normalize_axes("take_along_axis", len(s), axis)[0]
    ind = _int_indices("take_along_axis", indices, s[ax], f"axis {ax} of shape {s}")
    _along_shape(s, ind, ax)
    return apply(_TAKE_ALONG_AXIS, arr, indices=ind, axis=ax)


# ------------------------------------------------------------------ joining
def _join_shape(name: str):
    def rule(*shapes: Shape, axis: int) -> Shape:
        first = shapes[0]
        for s in shapes:
            if len(s) != len(first) or any(n != m for k, (n, m) in enumerate(zip(s, first)) if k != axis):
                raise ValueError(f"{name}: shapes {', '.join(str(tuple(t)) for t in shapes)} do not fit together "
                                 f"along axis {axis}: every operand needs the same number of axes and the same "
                                 "lengths off that axis")
        return first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1:]

    return rule


def _join_form(i, y, *xs, axis):
    # dY/dX_i: δ off the axis; along it the columns of the identity where operand i lands
    off = sum(x.shape[axis] for x in xs[:i])
    n = xs[i].shape[axis]
    src = np.arange(y.shape[axis]) - off
    src[(src < 0) | (src >= n)] = -1
    outs: List[AxisRule] = [(a, None, "") if a != axis else (a, selection(src, n), f"I[:,{off}:{off + n}]")
                            for a in range(y.ndim)]
    return axis_form(y.ndim, xs[i].ndim, outs, y.dtype)


def _join_vjp(i, g, y, *xs, axis):
    off = sum(x.shape[axis] for x in xs[:i])
    return np.array(g[(slice(None),) * axis + (slice(off, off + xs[i].shape[axis]),)])


def _joining(name: str) -> Op:
    return register(Op(
        name, lambda *xs, axis: np.concatenate(xs, axis=axis), _join_shape(name),
        forms=_join_form, vjps=_join_vjp, params=("axis",),
        example=((2, 3), (1, 3)) if name != "hstack" else ((2, 3), (2, 1)),
        example_params={"axis": 1 if name == "hstack" else 0},
    ))


_CONCATENATE = _joining("concatenate")
_HSTACK = _joining("hstack")
_VSTACK = _joining("vstack")


def _operands(name: str, arrays: Any) -> List[Any]:
    if isinstance(arrays, Node):
        raise TypeError(f"{name}: pass a list of arrays or nodes, not one node ({arrays.name}); to cut one node "
                        "into pieces use jx.split")
    if isinstance(arrays, np.ndarray):
        arrays = list(arrays)
    try:
        items = list(arrays)
    except TypeError:
        raise TypeError(f"{name}: pass a list of arrays or nodes, got {type(arrays).__name__}") from None
    if not items:
        raise ValueError(f"{name}: needs at least one array")
    return items


def _promote(a: Any, shape: Shape) -> Any:
    return reshape(a, shape) if isinstance(a, Node) else np.reshape(np.asarray(a), shape)


def concatenate(arrays: Sequence[Any], axis: Optional[int] = 0) -> Node:
    """Join arrays along an existing axis (None: flattened first), like ``np.concatenate``.

    dY[i,j]/dA_k[p,q] = I[:,off:off+n][i,p] δ_jq   (axis=0; operand k lands in rows off..off+n)

    >>> import numpy as np, jacobians as jx
    >>> a, b = jx.var(np.ones((2, 3))), jx.var(np.zeros((1, 3)))
    >>> jx.concatenate([a, b]).shape, jx.concatenate([a, b.T], axis=None).shape
    ((3, 3), (9,))
    """
    items = _operands("concatenate", arrays)
    if axis is None:
        items = [ravel(x) if len(shape_of(x)) != 1 else x for x in items]
        axis = 0
    nd = len(shape_of(items[0]))
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated; use jx.stack")
    ax = normalize_axes("concatenate", nd, axis)[0]
    _join_shape("concatenate")(*(tuple(shape_of(x)) for x in items), axis=ax)
    return apply(_CONCATENATE, *items, axis=ax)


def hstack(tup: Sequence[Any]) -> Node:
    """Join along the second axis (the first for 1-D arrays), like ``np.hstack``.

    >>> import numpy as np, jacobians as jx
    >>> jx.hstack([jx.var([1.0]), [2.0, 3.0]]).value.tolist()
    [1.0, 2.0, 3.0]
    >>> jx.hstack([jx.var(np.ones((2, 1))), np.zeros((2, 2))]).shape
    (2, 3)
    """
    items = [x if len(shape_of(x)) else _promote(x, (1,)) for x in _operands("hstack", tup)]
    ax = 0 if len(shape_of(items[0])) == 1 else 1
    _join_shape("hstack")(*(tuple(shape_of(x)) for x in items), axis=ax)
    return apply(_HSTACK, *items, axis=ax)


def vstack(tup: Sequence[Any]) -> Node:
    """Join along the first axis, 1-D arrays as rows, like ``np.vstack``.

    >>> import numpy as np, jacobians as jx
    >>> jx.vstack([jx.var([1.0, 2.0]), np.zeros((2, 2))]).value.tolist()
    [[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
    """
    items = []
    for x in _operands("vstack", tup):
        s = shape_of(x)
        items.append(x if len(s) >= 2 else _promote(x, (1,) * (2 - len(s)) + tuple(s)))
    _join_shape("vstack")(*(tuple(shape_of(x)) for x in items), axis=0)
    return apply(_VSTACK, *items, axis=0)


def _stack_shape(*shapes: Shape, axis: int) -> Shape:
    if any(tuple(s) != tuple(shapes[0]) for s in shapes):
        raise ValueError(f"stack: shapes {', '.join(str(tuple(s)) for s in shapes)} differ; stack needs arrays of "
                         "one shape (concatenate joins along an existing axis)")
    return tuple(shapes[0][:axis]) + (len(shapes),) + tuple(shapes[0][axis:])


def _stack_form(i, y, *xs, axis):
    # dY/dX_i: δ on X_i's axes; on the new axis the row i of the identity (X_i sits at position i)
    outs: List[AxisRule] = []
    for k in range(y.ndim):
        if k == axis:
            outs.append((None, selection([i], len(xs), y.dtype)[0], f"I[{i}]"))
        else:
            outs.append((k if k < axis else k - 1, None, ""))
    return axis_form(y.ndim, xs[i].ndim, outs, y.dtype)


_STACK = register(Op(
    "stack", lambda *xs, axis: np.stack(xs, axis=axis), _stack_shape,
    forms=_stack_form,
    vjps=lambda i, g, y, *xs, axis: np.take(g, i, axis=axis),
    params=("axis",),
    example=((2, 3), (2, 3)),
    example_params={"axis": 1},
))


def stack(arrays: Sequence[Any], axis: int = 0) -> Node:
    """Join arrays of one shape along a new axis, like ``np.stack``.

    dY[i,j,k]/dA_1[p,q] = δ_ip I[1][j] δ_kq   (axis=1: operand 1 is row 1 of the new axis)

    >>> import numpy as np, jacobians as jx
    >>> a, b = jx.var([1.0, 2.0]), jx.var([3.0, 4.0])
    >>> jx.stack([a, b]).value.tolist(), jx.stack([a, b], axis=1).value.tolist()
    ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [2.0, 4.0]])
    """
    items = _operands("stack", arrays)
    nd = len(shape_of(items[0]))
    ax = normalize_axes("stack", nd + 1, axis)[0]
    _stack_shape(*(tuple(shape_of(x)) for x in items), axis=ax)
    return apply(_STACK, *items, axis=ax)


# ------------------------------------------------------------------ splitting
def _piece_form(y, x, axis, start, stop):
    n = x.shape[axis]
    outs: List[AxisRule] = [(a, None, "") for a in range(x.ndim)]
    if (start, stop) != (0, n):
        outs[axis] = (axis, selection(np.arange(start, stop), n), f"I[{slice_text(start, 1, stop - start)}]")
    return axis_form(y.ndim, x.ndim, outs, y.dtype)


def _piece_vjp(g, y, x, axis, start, stop):
    gx = np.zeros(x.shape, dtype=g.dtype)
    gx[(slice(None),) * axis + (slice(start, stop),)] = g
    return gx


def _splitting(name: str) -> Op:
    return register(Op(
        name, lambda x, axis, start, stop: np.array(x[(slice(None),) * axis + (slice(start, stop),)]),
        lambda s, axis, start, stop: s[:axis] + (stop - start,) + s[axis + 1:],
        forms=(_piece_form,), vjps=(_piece_vjp,), params=("axis", "start", "stop"),
        example=((2, 6),), example_params={"axis": 1, "start": 2, "stop": 4},
    ))


_SPLIT = _splitting("split")
_ARRAY_SPLIT = _splitting("array_split")


def _bounds(name: str, n: int, parts: Any, where: str) -> List[Tuple[int, int]]:
    if isinstance(parts, Node):
        raise TypeError(f"{name}: indices_or_sections must be constant, not the node {parts.name}")
    if np.ndim(parts) == 0:
        if isinstance(parts, (bool, np.bool_)) or not isinstance(parts, numbers.Integral) or int(parts) <= 0:
            raise ValueError(f"{name}: the number of sections must be a positive int, got {parts!r}")
        k = int(parts)
        if name == "split" and n % k:
            raise ValueError(f"split: {where} of length {n} does not divide into {k} equal pieces; use "
                             "jx.array_split for pieces of unequal length, or give the split points")
        each, extra = divmod(n, k)
        sizes = [each + 1] * extra + [each] * (k - extra)
        cuts = np.cumsum([0] + sizes)
        return [(int(cuts[j]), int(cuts[j + 1])) for j in range(k)]
    points = np.asarray(parts)
    if points.size and points.dtype.kind not in "iu":
        raise TypeError(f"{name}: split points must be integers, got {parts!r}")
    edges = [None] + [int(p) for p in points.reshape(-1)] + [None]
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        start, stop, _ = slice(lo, hi).indices(n)
        out.append((start, max(start, stop)))
    return out


def _split(name: str, op: Op, ary: Any, indices_or_sections: Any, axis: int) -> List[Node]:
    s = shape_of(ary)
    if not s:
        raise ValueError(f"{name}: cannot split a scalar; it has no axis")
    ax = normalize_axes(name, len(s), axis)[0]
    pieces = _bounds(name, s[ax], indices_or_sections, f"axis {ax} of shape {s}")
    return [apply(op, ary, axis=ax, start=a, stop=b) for a, b in pieces]


def split(ary: Any, indices_or_sections: Union[int, Sequence[int]], axis: int = 0) -> List[Node]:
    """Cut into equal pieces, or at the given points, along ``axis``, like ``np.split``: a list of nodes.

    Each piece is a node of its own (op ``split``): dY[i,j]/dX[p,q] = δ_ip I[2:4][j,q].

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.arange(6.0).reshape(2, 3))
    >>> [p.value.tolist() for p in jx.split(X, 3, axis=1)]
    [[[0.0], [3.0]], [[1.0], [4.0]], [[2.0], [5.0]]]
    >>> [p.shape for p in jx.split(X, [1], axis=1)]
    [(2, 1), (2, 2)]
    """
    return _split("split", _SPLIT, ary, indices_or_sections, axis)


def array_split(ary: Any, indices_or_sections: Union[int, Sequence[int]], axis: int = 0) -> List[Node]:
    """Like :func:`split`, but a number of sections need not divide the axis (the first pieces get one more).

    >>> import numpy as np, jacobians as jx
    >>> [p.value.tolist() for p in jx.array_split(jx.var(np.arange(5.0)), 3)]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """
    return _split("array_split", _ARRAY_SPLIT, ary, indices_or_sections, axis)
