"""Op cases of the reductions family (the fields are in case.py; op_cases.py joins the tables)."""
import numpy as np

import jacobians as jx
from case import Case, draw  # noqa: F401


def _zeros_in_rows(shape, rng):
    """Standard normal rows with no zero, then one zero, then two zeros in the last axis (prod stays exact)."""
    x = rng.standard_normal(shape)
    flat = x.reshape(-1, shape[-1])
    flat[1 % len(flat), 1] = 0.0
    flat[2 % len(flat), 0] = 0.0
    flat[2 % len(flat), 2] = 0.0
    return x


W1 = np.array([1.0, 2.0, 0.5, 3.0])  # 1-D weights along an axis of length 4
W3 = np.random.default_rng(11).uniform(0.5, 2.0, (2, 3, 4))  # weights of x's shape

CASES = [
    # prod: the partial is a product of the other entries, exact with zeros
    Case("prod", jx.prod, ((2, 3),), np.prod),
    Case("prod", lambda x: jx.prod(x, axis=1), ((2, 3, 4),), lambda x: np.prod(x, axis=1), note="axis"),
    Case("prod", lambda x: jx.prod(x, axis=(0, 2), keepdims=True), ((2, 3, 2),),
         lambda x: np.prod(x, axis=(0, 2), keepdims=True), note="tuple-keepdims"),
    Case("prod", lambda x: jx.prod(x, axis=-1), ((3, 4),), lambda x: np.prod(x, axis=-1),
         domain=_zeros_in_rows, note="zeros-0-1-2"),
    Case("prod", lambda x: jx.prod(x, axis=0), ((4, 3),), lambda x: np.prod(x, axis=0),
         domain=lambda s, rng: _zeros_in_rows(s[::-1], rng).T.copy(), note="zeros-axis0"),
    # variance (jx.var makes leaves) and std
    Case("variance", jx.variance, ((3, 2),), np.var),
    Case("variance", lambda x: jx.variance(x, axis=0, ddof=1), ((4, 3),), lambda x: np.var(x, axis=0, ddof=1),
         note="axis-ddof"),
    Case("variance", lambda x: jx.variance(x, axis=(0, 2), keepdims=True), ((2, 3, 2),),
         lambda x: np.var(x, axis=(0, 2), keepdims=True), note="tuple-keepdims"),
    Case("std", jx.std, ((2, 3),), np.std),
    Case("std", lambda x: jx.std(x, axis=1, ddof=1), ((3, 4),), lambda x: np.std(x, axis=1, ddof=1), note="axis-ddof"),
    Case("std", lambda x: jx.std(x, axis=(1, 2), keepdims=True), ((2, 3, 2),),
         lambda x: np.std(x, axis=(1, 2), keepdims=True), note="tuple-keepdims"),
    # norm: numpy.linalg.norm's semantics
    Case("norm", jx.norm, ((3, 2),), np.linalg.norm),
    Case("norm", jx.norm, ((5,),), np.linalg.norm, note="vector"),
    Case("norm", jx.norm, ((2, 3, 2),), np.linalg.norm, note="rank3-all"),
    Case("norm", lambda x: jx.norm(x, ord=1, axis=0), ((3, 4),), lambda x: np.linalg.norm(x, ord=1, axis=0),
         domain="away_from_zero", note="ord1"),
    Case("norm", lambda x: jx.norm(x, ord=np.inf, axis=1), ((2, 5),), lambda x: np.linalg.norm(x, ord=np.inf, axis=1),
         note="ord-inf"),
    Case("norm", lambda x: jx.norm(x, ord=2, axis=-1, keepdims=True), ((2, 3, 4),),
         lambda x: np.linalg.norm(x, ord=2, axis=-1, keepdims=True), note="ord2-keepdims"),
    Case("norm", lambda x: jx.norm(x, ord="fro", axis=(0, 2)), ((2, 3, 4),),
         lambda x: np.linalg.norm(x, ord="fro", axis=(0, 2)), note="fro-axes"),
    Case("norm", lambda x: jx.norm(x, ord="nuc"), ((3, 2),), lambda x: np.linalg.norm(x, ord="nuc"), note="nuc"),
    Case("norm", lambda x: jx.norm(x, ord="nuc", axis=(2, 1), keepdims=True), ((2, 4, 3),),
         lambda x: np.linalg.norm(x, ord="nuc", axis=(2, 1), keepdims=True), note="nuc-batched"),
    # scans
    Case("cumsum", lambda x: jx.cumsum(x, axis=1), ((3, 4),), lambda x: np.cumsum(x, axis=1)),
    Case("cumsum", jx.cumsum, ((2, 3),), np.cumsum, note="flattened"),
    Case("cumsum", lambda x: jx.cumsum(x, axis=0), ((3, 2, 2),), lambda x: np.cumsum(x, axis=0), note="axis0-rank3"),
    Case("cumprod", lambda x: jx.cumprod(x, axis=1), ((3, 4),), lambda x: np.cumprod(x, axis=1)),
    Case("cumprod", lambda x: jx.cumprod(x, axis=-1), ((3, 4),), lambda x: np.cumprod(x, axis=-1),
         domain=_zeros_in_rows, note="zeros-0-1-2"),
    Case("cumprod", jx.cumprod, ((2, 3),), np.cumprod, note="flattened"),
    Case("cumprod", lambda x: jx.cumprod(x, axis=0), ((3, 2, 2),), lambda x: np.cumprod(x, axis=0),
         note="axis0-rank3"),
    # diff
    Case("diff", jx.diff, ((3, 5),), np.diff),
    Case("diff", lambda x: jx.diff(x, n=2, axis=0), ((5, 3),), lambda x: np.diff(x, n=2, axis=0), note="n2-axis0"),
    Case("diff", lambda x: jx.diff(x, n=3, axis=1), ((2, 5, 2),), lambda x: np.diff(x, n=3, axis=1), note="n3-rank3"),
    # average (constant weights)
    Case("average", jx.average, ((3, 4),), np.average),
    Case("average", lambda x: jx.average(x, axis=1, weights=W1), ((3, 4),), lambda x: np.average(x, axis=1, weights=W1),
         note="1d-weights"),
    Case("average", lambda x: jx.average(x, axis=(0, 2), weights=W3), ((2, 3, 4),),
         lambda x: np.average(x, axis=(0, 2), weights=W3), note="full-weights"),
    Case("average", lambda x: jx.average(x, axis=0), ((3, 2),), lambda x: np.average(x, axis=0), note="axis"),
]
