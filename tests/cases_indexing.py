"""Op cases of the indexing family (the fields are in case.py; op_cases.py joins the tables).

Indexing, joining and splitting, and the shape ops: all linear, so any data
will do (no kinks, no ties); shapes are non-square so a swapped axis shows.
"""
import numpy as np

import jacobians as jx
from case import Case, draw  # noqa: F401

MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, False]])
COLS = np.array([True, False, True, False, True])
ROWS2, COLS2 = np.array([[0], [2]]), np.array([1, 3, 3])


def _set(x, index, v):
    y = x.copy()
    y[index] = v
    return y


def _add(x, index, v):
    y = x.copy()
    np.add.at(y, index, np.broadcast_to(v, x[index].shape))
    return y


def _set_last_wins(x, index, v):
    """x[index] = v with repeated entries written in order (the last wins), one by one."""
    y = x.copy()
    flat = np.arange(x.size).reshape(x.shape)[index]
    vb = np.broadcast_to(v, flat.shape)
    for t, val in zip(flat.reshape(-1), vb.reshape(-1)):
        y.reshape(-1)[t] = val
    return y


CASES = [
    # X[...]: every kind of index
    Case("getitem", lambda x: x[1], ((3, 4),), lambda x: x[1], note="int"),
    Case("getitem", lambda x: x[:, -2], ((3, 4),), lambda x: x[:, -2], note="negative-int"),
    Case("getitem", lambda x: x[1, -2], ((3, 4),), lambda x: x[1, -2], note="scalar"),
    Case("getitem", lambda x: x[1::2, ::-2], ((5, 4),), lambda x: x[1::2, ::-2], note="slice-steps"),
    Case("getitem", lambda x: x[None, :, 1:3], ((3, 4),), lambda x: x[None, :, 1:3], note="newaxis"),
    Case("getitem", lambda x: x[..., 1], ((2, 3, 4),), lambda x: x[..., 1], note="ellipsis"),
    Case("getitem", lambda x: x[[0, 2, 2, 1]], ((3, 4),), lambda x: x[[0, 2, 2, 1]], note="int-array-repeated"),
    Case("getitem", lambda x: x[:, 1, [0, 3, 0]], ((2, 3, 4),), lambda x: x[:, 1, [0, 3, 0]],
         note="int-and-array-adjacent"),
    Case("getitem", lambda x: x[[0, 1, 1], :, [2, 0, 2]], ((2, 3, 4),), lambda x: x[[0, 1, 1], :, [2, 0, 2]],
         note="arrays-apart"),
    Case("getitem", lambda x: x[ROWS2, COLS2], ((3, 4),), lambda x: x[ROWS2, COLS2], note="arrays-broadcast"),
    Case("getitem", lambda x: x[MASK], ((3, 4),), lambda x: x[MASK], note="mask"),
    Case("getitem", lambda x: x[1:, COLS], ((3, 5),), lambda x: x[1:, COLS], note="mask-one-axis"),
    Case("getitem", lambda x: x[None, ..., [1, 1], None], ((2, 3),), lambda x: x[None, ..., [1, 1], None],
         note="newaxis-ellipsis-array"),
    Case("take", lambda x: jx.take(x, [2, 0, 2], axis=1), ((2, 3),), lambda x: np.take(x, [2, 0, 2], axis=1)),
    Case("take", lambda x: x.take([[5, 0], [-1, 1]]), ((2, 3),), lambda x: x.take([[5, 0], [-1, 1]]),
         note="flat-2d-indices"),
    Case("take", lambda x: jx.take(x, 1, axis=0), ((3, 2),), lambda x: np.take(x, 1, axis=0), note="scalar-index"),
    Case("take_along_axis", lambda x: jx.take_along_axis(x, np.array([[2, 0, 0], [1, 2, 1]]), axis=1), ((2, 3),),
         lambda x: np.take_along_axis(x, np.array([[2, 0, 0], [1, 2, 1]]), axis=1)),
    Case("take_along_axis", lambda x: jx.take_along_axis(x, np.array([[1, 0, 1, 1]]), axis=1), ((3, 2),),
         lambda x: np.take_along_axis(x, np.array([[1, 0, 1, 1]]), axis=1), note="indices-broadcast"),
    Case("take_along_axis", lambda x: jx.take_along_axis(x, np.array([[2, 0], [1, 1]]), axis=1), ((1, 3),),
         lambda x: np.take_along_axis(x, np.array([[2, 0], [1, 1]]), axis=1), note="input-broadcast"),
    Case("take_along_axis", lambda x: jx.take_along_axis(x, np.array([[0, 2], [1, 0], [2, 2]]), axis=0), ((3, 2),),
         lambda x: np.take_along_axis(x, np.array([[0, 2], [1, 0], [2, 2]]), axis=0), note="axis0"),
    # X.at[...]: both operands differentiated
    Case("at_set", lambda x, v: x.at[[0, 2], 1:4].set(v), ((4, 5), (2, 3)),
         lambda x, v: _set(x, (np.array([0, 2]), slice(1, 4)), v)),
    Case("at_set", lambda x, v: x.at[:, 1].set(v), ((2, 3), (2,)), lambda x, v: _set(x, (slice(None), 1), v),
         note="basic"),
    Case("at_set", lambda x, v: x.at[MASK].set(v), ((3, 4), ()), lambda x, v: _set(x, MASK, v), note="mask-scalar"),
    Case("at_set", lambda x, v: x.at[[2, 0, 2]].set(v), ((3, 2), (3, 2)), lambda x, v: _set_last_wins(x, [2, 0, 2], v),
         note="repeated-last-wins"),
    Case("at_set", lambda x, v: x.at[ROWS2, COLS2].set(v), ((3, 4), (3,)),
         lambda x, v: _set_last_wins(x, (ROWS2, COLS2), v), note="broadcast-repeated"),
    Case("at_add", lambda x, v: x.at[[0, 0, 2]].add(v), ((3, 4), (3, 4)), lambda x, v: _add(x, [0, 0, 2], v),
         note="repeated"),
    Case("at_add", lambda x, v: x.at[1:, ::2].add(v), ((3, 5), (3,)),
         lambda x, v: _add(x, (slice(1, None), slice(None, None, 2)), v), note="slices-broadcast"),
    Case("at_add", lambda x, v: x.at[..., [1, 1]].add(v), ((2, 3), ()), lambda x, v: _add(x, (Ellipsis, [1, 1]), v),
         note="scalar-repeated"),
    # joining and splitting
    Case("concatenate", lambda a, b, c: jx.concatenate([a, b, c]), ((2, 3), (1, 3), (4, 3)),
         lambda a, b, c: np.concatenate([a, b, c])),
    Case("concatenate", lambda a, b: jx.concatenate([a, b], axis=-1), ((2, 3), (2, 1)),
         lambda a, b: np.concatenate([a, b], axis=-1), note="axis-last"),
    Case("concatenate", lambda a, b: jx.concatenate([a, b], axis=None), ((2, 3), (4,)),
         lambda a, b: np.concatenate([a, b], axis=None), note="flat"),
    Case("stack", lambda a, b, c: jx.stack([a, b, c]), ((2, 3), (2, 3), (2, 3)), lambda a, b, c: np.stack([a, b, c])),
    Case("stack", lambda a, b: jx.stack([a, b], axis=-1), ((3, 2), (3, 2)), lambda a, b: np.stack([a, b], axis=-1),
         note="axis-last"),
    Case("hstack", lambda a, b: jx.hstack([a, b]), ((3,), (2,)), lambda a, b: np.hstack([a, b])),
    Case("hstack", lambda a, b: jx.hstack([a, b]), ((2, 3), (2, 1)), lambda a, b: np.hstack([a, b]), note="2d"),
    Case("vstack", lambda a, b: jx.vstack([a, b]), ((3,), (2, 3)), lambda a, b: np.vstack([a, b])),
    Case("split", lambda x: jx.split(x, 3, axis=1)[1], ((2, 6),), lambda x: np.split(x, 3, axis=1)[1]),
    Case("split", lambda x: jx.split(x, [1, 3])[2], ((5, 2),), lambda x: np.split(x, [1, 3])[2], note="points"),
    Case("array_split", lambda x: jx.array_split(x, 3, axis=-1)[0], ((2, 7),),
         lambda x: np.array_split(x, 3, axis=-1)[0]),
    # shape
    Case("ravel", jx.ravel, ((2, 3),), np.ravel),
    Case("ravel", lambda x: x.flatten(), ((3, 1, 2),), lambda x: x.flatten(), note="flatten-method"),
    Case("expand_dims", lambda x: jx.expand_dims(x, 1), ((2, 3),), lambda x: np.expand_dims(x, 1)),
    Case("expand_dims", lambda x: jx.expand_dims(x, (0, -1)), ((3, 2),), lambda x: np.expand_dims(x, (0, -1)),
         note="two-axes"),
    Case("squeeze", jx.squeeze, ((2, 1, 3, 1),), np.squeeze),
    Case("squeeze", lambda x: x.squeeze(0), ((1, 3, 2),), lambda x: x.squeeze(0), note="axis-method"),
    Case("swapaxes", lambda x: jx.swapaxes(x, 0, 2), ((2, 3, 4),), lambda x: np.swapaxes(x, 0, 2)),
    Case("swapaxes", lambda x: x.swapaxes(-1, 0), ((2, 3),), lambda x: x.swapaxes(-1, 0), note="method"),
    Case("moveaxis", lambda x: jx.moveaxis(x, 0, -1), ((2, 3, 4),), lambda x: np.moveaxis(x, 0, -1)),
    Case("moveaxis", lambda x: jx.moveaxis(x, (0, 1), (2, 0)), ((2, 3, 4),), lambda x: np.moveaxis(x, (0, 1), (2, 0)),
         note="two-axes"),
    Case("broadcast_to", lambda x: jx.broadcast_to(x, (2, 3, 4)), ((3, 1),), lambda x: np.broadcast_to(x, (2, 3, 4))),
    Case("broadcast_to", lambda x: jx.broadcast_to(x, (4, 3)), ((3,),), lambda x: np.broadcast_to(x, (4, 3)),
         note="new-axis"),
    Case("flip", lambda x: jx.flip(x, 1), ((2, 3),), lambda x: np.flip(x, 1)),
    Case("flip", jx.flip, ((2, 3, 4),), np.flip, note="all-axes"),
    Case("flip", jx.fliplr, ((2, 3),), np.fliplr, note="fliplr"),
    Case("flip", jx.flipud, ((3, 2),), np.flipud, note="flipud"),
    Case("swapaxes", jx.rot90, ((2, 3),), np.rot90, note="rot90"),
    Case("flip", lambda x: jx.rot90(x, 3, axes=(2, 0)), ((2, 3, 4),), lambda x: np.rot90(x, 3, axes=(2, 0)),
         note="rot90-k3"),
    Case("flip", lambda x: jx.rot90(x, -2), ((2, 3),), lambda x: np.rot90(x, -2), note="rot90-k2"),
    Case("roll", lambda x: jx.roll(x, 1, axis=1), ((2, 4),), lambda x: np.roll(x, 1, axis=1)),
    Case("roll", lambda x: jx.roll(x, (-1, 2), axis=(0, 1)), ((3, 4),), lambda x: np.roll(x, (-1, 2), axis=(0, 1)),
         note="two-axes"),
    Case("roll", lambda x: jx.roll(x, 2), ((5,),), lambda x: np.roll(x, 2), note="flat-1d"),
    Case("reshape", lambda x: jx.roll(x, 2), ((2, 3),), lambda x: np.roll(x, 2), note="roll-flat-2d"),
    Case("tile", lambda x: jx.tile(x, (1, 2)), ((2, 3),), lambda x: np.tile(x, (1, 2))),
    Case("tile", lambda x: jx.tile(x, (2, 1, 3)), ((3, 2),), lambda x: np.tile(x, (2, 1, 3)), note="new-axis"),
    Case("repeat", lambda x: jx.repeat(x, 2, axis=1), ((2, 3),), lambda x: np.repeat(x, 2, axis=1)),
    Case("repeat", lambda x: jx.repeat(x, [1, 0, 3], axis=0), ((3, 2),), lambda x: np.repeat(x, [1, 0, 3], axis=0),
         note="per-entry"),
    Case("repeat", lambda x: x.repeat(2), ((2, 3),), lambda x: x.repeat(2), note="flat-method"),
    Case("pad", lambda x: jx.pad(x, ((0, 0), (1, 2))), ((2, 3),), lambda x: np.pad(x, ((0, 0), (1, 2)))),
    Case("pad", lambda x: jx.pad(x, 1, constant_values=2.5), ((3, 2),), lambda x: np.pad(x, 1, constant_values=2.5),
         note="all-axes-value"),
]
