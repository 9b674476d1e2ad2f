"""Op cases of the nn family (the fields are in case.py; op_cases.py joins the tables).

The references are direct loops over output positions and kernel taps, written
here apart from the ops' shifted-view forwards.
"""
import itertools

import numpy as np

import jacobians as jx
from case import Case, draw  # noqa: F401


def _pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


ALL = slice(None)


def conv_loop(x, w, stride=1, padding=0, dilation=1):
    """Cross-correlation by loops, any number of spatial axes: Y[n,o,i..] = Σ W[o,c,a..] X[n,c,i·s+a·d−p ..]."""
    d = x.ndim - 2
    s, p, dl = ((v,) * d if np.ndim(v) == 0 else tuple(v) for v in (stride, padding, dilation))
    k = w.shape[2:]
    out = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for n, kk, ss, pp, dd in zip(x.shape[2:], k, s, p, dl))
    y = np.zeros((x.shape[0], w.shape[0]) + out)
    for pos in itertools.product(*(range(o) for o in out)):
        for tap in itertools.product(*(range(kk) for kk in k)):
            src = tuple(i * ss + a * dd - pp for i, a, ss, dd, pp in zip(pos, tap, s, dl, p))
            if all(0 <= h < n for h, n in zip(src, x.shape[2:])):
                y[(ALL, ALL) + pos] += x[(ALL, ALL) + src] @ w[(ALL, ALL) + tap].T
    return y


def pool_loop(x, kernel, stride=None, reduce=np.max):
    kh, kw = _pair(kernel)
    sh, sw = _pair(kernel if stride is None else stride)
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    y = np.zeros(x.shape[:2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = reduce(x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return y


CASES = [
    Case("conv2d", jx.conv2d, ((2, 2, 5, 4), (3, 2, 2, 3)), conv_loop),
    Case("conv2d", lambda x, w: jx.conv2d(x, w, stride=2, padding=1), ((2, 2, 5, 4), (3, 2, 2, 3)),
         lambda x, w: conv_loop(x, w, 2, 1), note="stride2-pad1"),
    Case("conv2d", lambda x, w: jx.conv2d(x, w, stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
         ((1, 2, 5, 6), (2, 2, 2, 3)), lambda x, w: conv_loop(x, w, (1, 2), (2, 0), (2, 1)), note="pairs-dilation"),
    Case("conv2d", lambda x, w: jx.conv2d(x, w, padding=1), ((1, 3, 3, 4), (2, 3, 3, 3)),
         lambda x, w: conv_loop(x, w, 1, 1), note="same-padding"),
    Case("conv1d", jx.conv1d, ((2, 2, 6), (3, 2, 3)), conv_loop),
    Case("conv1d", lambda x, w: jx.conv1d(x, w, stride=2, padding=2, dilation=2), ((2, 3, 7), (2, 3, 2)),
         lambda x, w: conv_loop(x, w, 2, 2, 2), note="stride-pad-dilation"),
    Case("max_pool2d", lambda x: jx.max_pool2d(x, 2), ((2, 2, 4, 6),), lambda x: pool_loop(x, 2)),
    Case("max_pool2d", lambda x: jx.max_pool2d(x, (2, 3), stride=1), ((1, 2, 4, 5),),
         lambda x: pool_loop(x, (2, 3), 1), note="overlapping"),
    Case("max_pool2d", lambda x: jx.max_pool2d(x, (3, 2), stride=(2, 1)), ((2, 1, 5, 4),),
         lambda x: pool_loop(x, (3, 2), (2, 1)), note="pairs-ragged"),
    Case("avg_pool2d", lambda x: jx.avg_pool2d(x, 2), ((2, 2, 4, 6),), lambda x: pool_loop(x, 2, reduce=np.mean)),
    Case("avg_pool2d", lambda x: jx.avg_pool2d(x, (2, 3), stride=1), ((1, 2, 4, 5),),
         lambda x: pool_loop(x, (2, 3), 1, reduce=np.mean), note="overlapping"),
    Case("avg_pool2d", lambda x: jx.avg_pool2d(x, (3, 2), stride=(2, 1)), ((2, 1, 5, 4),),
         lambda x: pool_loop(x, (3, 2), (2, 1), reduce=np.mean), note="pairs-ragged"),
]
