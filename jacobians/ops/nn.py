"""Neural-network layers, channels-first as in PyTorch: conv1d, conv2d, max_pool2d, avg_pool2d.

A convolution (a cross-correlation, as PyTorch computes it) is an einsum with
one small constant 0/1 selection tensor per spatial axis,

    S[i, a, h] = [h = i·stride + a·dilation − padding]     (output i, kernel tap a, input h)
    Y[n,o,i,j] = Σ_(c,a,b,h,w) W[o,c,a,b] X[n,c,h,w] S1[i,a,h] S2[j,b,w]

so its Jacobians are forms of deltas and small factors, never a dense im2col matrix:

    dY[i,j,k,l]/dX[p,q,r,s] = δ_ip Σ_ab W[j,q,a,b] S1[k,a,r] S2[l,b,s]
    dY[i,j,k,l]/dW[p,q,r,s] = δ_jp Σ_ab X[i,q,a,b] S1[k,r,a] S2[l,s,b]

Padding needs no padded array: a tap that lands outside the input has no 1 in S.
The VJPs are written apart, with numpy: w.r.t. X the transposed (full)
convolution — G scattered back through each kernel tap — and w.r.t. W the
correlation of X with G. Pools read windows through the same S tensors: the
average pool weights every tap 1/(kh·kw); the max pool picks one tap per window
with a one-hot factor A (ties: the first maximum in row-major window order, as
PyTorch does).
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence, Tuple, Union

import numpy as np

from ..form import Factor, Factored, Product
from ..node import Node, shape_of
from ..registry import Op, apply, register

__all__ = ["conv1d", "conv2d", "max_pool2d", "avg_pool2d"]

Shape = Tuple[int, ...]
IntOrPair = Union[int, Sequence[int]]


# ------------------------------------------------------------------ geometry
def out_length(n: int, k: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a window sweep: ⌊(n + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1 (may be ≤ 0)."""
    return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def selection(n_out: int, k: int, n_in: int, stride: int, padding: int, dilation: int, dtype: Any = np.float64
              ) -> np.ndarray:
    """S[i, a, h] = [h = i·stride + a·dilation − padding], shape (n_out, k, n_in): which input a tap reads.

    >>> selection(2, 2, 3, 1, 0, 1)[1].tolist()    # output 1: taps 0, 1 read inputs 1, 2
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    S = np.zeros((n_out, k, n_in), dtype=dtype)
    i, a = np.meshgrid(np.arange(n_out), np.arange(k), indexing="ij")
    h = i * stride + a * dilation - padding
    inside = (h >= 0) & (h < n_in)
    S[i[inside], a[inside], h[inside]] = 1
    return S


def _ints(name: str, what: str, value: Any, d: int, least: int) -> Tuple[int, ...]:
    """An int or a d-tuple of ints, each ≥ least, as a d-tuple."""
    vals = (value,) * d if np.ndim(value) == 0 else tuple(value)
    if len(vals) != d or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least for v in vals):
        form = "an int" if d == 1 else "an int or a pair of ints"
        raise ValueError(f"{name}: {what} must be {form}, each ≥ {least}, got {value!r}")
    return tuple(int(v) for v in vals)


def _check_layout(name: str, xs: Shape, ws: Shape, d: int) -> None:
    lay = "(N, C, L)" if d == 1 else "(N, C, H, W)"
    klay = "(O, C, k)" if d == 1 else "(O, C, kh, kw)"
    if len(xs) != d + 2 or len(ws) != d + 2:
        raise ValueError(f"{name}: input of shape {xs} and kernel of shape {ws}: expected input {lay} and kernel "
                         f"{klay} (channels first, as in PyTorch); add a batch axis with jx.reshape if needed")
    if xs[1] != ws[1]:
        raise ValueError(f"{name}: input of shape {xs} has {xs[1]} channels but the kernel of shape {ws} expects "
                         f"{ws[1]} (axis 1 of both is the input channel)")


def _spatial_out(name: str, xs: Shape, ks: Shape, stride, padding, dilation) -> Tuple[int, ...]:
    out = tuple(out_length(n, k, s, p, dl) for n, k, s, p, dl in zip(xs, ks, stride, padding, dilation))
    if any(o < 1 for o in out):
        raise ValueError(f"{name}: a window of size {tuple(ks)} (dilation {tuple(dilation)}) does not fit the "
                         f"input's spatial shape {tuple(xs)} with padding {tuple(padding)}: no output; use a smaller "
                         "kernel, more padding or a larger input")
    return out


# ------------------------------------------------------------------ convolution
def _conv_shape(xs: Shape, ws: Shape, stride, padding, dilation) -> Shape:
    d = len(stride)
    name = f"conv{d}d"
    _check_layout(name, xs, ws, d)
    return (xs[0], ws[0]) + _spatial_out(name, xs[2:], ws[2:], stride, padding, dilation)


_ALL2 = (slice(None), slice(None))  # the batch and channel axes


def _taps(kernel: Shape, out_sp: Shape, stride, dilation):
    """For each kernel tap (a, b): the slices of the padded input it reads, one entry per output position."""
    for tap in itertools.product(*(range(k) for k in kernel)):
        yield _ALL2 + tap, _ALL2 + tuple(slice(a * dl, a * dl + s * (o - 1) + 1, s)
                                         for a, dl, s, o in zip(tap, dilation, stride, out_sp))


def _pad(x: np.ndarray, padding) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])


def _conv_forward(x, w, stride, padding, dilation):
    # Y = Σ_taps W[:, :, tap] applied to the input entries the tap reads (a shifted, strided view)
    out_sp = _spatial_out("conv", x.shape[2:], w.shape[2:], stride, padding, dilation)
    xp = _pad(x, padding)
    y = np.zeros((x.shape[0], w.shape[0]) + out_sp, dtype=np.result_type(x, w))
    sp = "ij"[:len(stride)]
    for tap, window in _taps(w.shape[2:], out_sp, stride, dilation):
        y += np.einsum(f"nc{sp},oc->no{sp}", xp[window], w[tap])
    return y


def _conv_vjp_x(g, y, x, w, stride, padding, dilation):
    # the transposed convolution: G through each tap's weights, scattered back onto the padded input, then cropped
    gp = np.zeros(x.shape[:2] + tuple(n + 2 * p for n, p in zip(x.shape[2:], padding)), dtype=np.result_type(g, w))
    sp = "ij"[:len(stride)]
    for tap, window in _taps(w.shape[2:], y.shape[2:], stride, dilation):
        gp[window] += np.einsum(f"no{sp},oc->nc{sp}", g, w[tap])
    return gp[_ALL2 + tuple(slice(p, p + n) for p, n in zip(padding, x.shape[2:]))]


def _conv_vjp_w(g, y, x, w, stride, padding, dilation):
    # the correlation of X with G: each tap's weight gathers G times the inputs that tap read
    xp = _pad(x, padding)
    gw = np.zeros(w.shape, dtype=np.result_type(g, x))
    sp = "ij"[:len(stride)]
    for tap, window in _taps(w.shape[2:], y.shape[2:], stride, dilation):
        gw[tap] = np.einsum(f"no{sp},nc{sp}->oc", g, xp[window])
    return gw


_SP_OUT, _SP_IN, _SP_SUM = "kl", "rs", "ab"


def _selections(y, x_shape, k_shape, stride, padding, dilation):
    return [selection(o, k, n, s, p, dl, y.dtype)
            for o, k, n, s, p, dl in zip(y.shape[2:], k_shape, x_shape, stride, padding, dilation)]


def _conv_form_x(y, x, w, stride, padding, dilation):
    # dY[i,j,k,l]/dX[p,q,r,s] = δ_ip Σ_ab W[j,q,a,b] S1[k,a,r] S2[l,b,s]
    d = len(stride)
    o, s_in, t = _SP_OUT[:d], _SP_IN[:d], _SP_SUM[:d]
    S = _selections(y, x.shape[2:], w.shape[2:], stride, padding, dilation)
    factors = (Factor(w, "jq" + t, "{x1}"),) + tuple(
        Factor(S[m], o[m] + t[m] + s_in[m], f"S{m + 1}") for m in range(d))
    return Factored("ij" + o, "pq" + s_in, (Product(factors, ("ip",)),))


def _conv_form_w(y, x, w, stride, padding, dilation):
    # dY[i,j,k,l]/dW[p,q,r,s] = δ_jp Σ_ab X[i,q,a,b] S1[k,r,a] S2[l,s,b]
    d = len(stride)
    o, s_in, t = _SP_OUT[:d], _SP_IN[:d], _SP_SUM[:d]
    S = _selections(y, x.shape[2:], w.shape[2:], stride, padding, dilation)
    factors = (Factor(x, "iq" + t, "{x0}"),) + tuple(
        Factor(S[m], o[m] + s_in[m] + t[m], f"S{m + 1}") for m in range(d))
    return Factored("ij" + o, "pq" + s_in, (Product(factors, ("jp",)),))


def _conv_op(name: str, d: int) -> Op:
    one = (1,) * d
    return register(Op(
        name, _conv_forward, _conv_shape,
        forms=(_conv_form_x, _conv_form_w),
        vjps=(_conv_vjp_x, _conv_vjp_w),
        params=("stride", "padding", "dilation"),
        example=((1, 2, 5, 4), (3, 2, 2, 3)) if d == 2 else ((1, 2, 5), (3, 2, 2)),
        example_params={"stride": one, "padding": (0,) * d, "dilation": one},
    ))


_CONV1D = _conv_op("conv1d", 1)
_CONV2D = _conv_op("conv2d", 2)


def _conv(op: Op, x: Any, w: Any, stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair, d: int) -> Node:
    name = op.name
    _check_layout(name, tuple(shape_of(x)), tuple(shape_of(w)), d)
    return apply(op, x, w, stride=_ints(name, "stride", stride, d, 1), padding=_ints(name, "padding", padding, d, 0),
                 dilation=_ints(name, "dilation", dilation, d, 1))


def conv2d(x: Any, w: Any, stride: IntOrPair = 1, padding: IntOrPair = 0, dilation: IntOrPair = 1) -> Node:
    """2-D convolution (cross-correlation, as PyTorch), x (N, C, H, W) and w (O, C, kh, kw) → (N, O, H', W').

    Y[n,o,i,j] = Σ_(c,a,b) W[o,c,a,b] X[n, c, i·s1 + a·d1 − p1, j·s2 + b·d2 − p2]  (0 outside X).
    ``stride``, ``padding`` (zeros), ``dilation``: ints or (height, width) pairs.
    No bias argument: add one with ``+ b[:, None, None]`` (b of shape (O,)).

    dY[i,j,k,l]/dX[p,q,r,s] = δ_ip Σ_ab W[j,q,a,b] S1[k,a,r] S2[l,b,s]   (S: 0/1 selection tensors)
    dY[i,j,k,l]/dW[p,q,r,s] = δ_jp Σ_ab X[i,q,a,b] S1[k,r,a] S2[l,s,b]

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> w = jx.var(np.ones((1, 1, 2, 2)))
    >>> jx.conv2d(x, w, stride=2).value.tolist()
    [[[[10.0, 18.0], [42.0, 50.0]]]]
    >>> J = jx.jacobian(jx.conv2d(x, w, stride=2), x)    # each output reads its own 2×2 window
    >>> J.shape, J[0, 0, 0, 1, 0, 0].tolist()
    ((1, 1, 2, 2, 1, 1, 4, 4), [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    """
    return _conv(_CONV2D, x, w, stride, padding, dilation, 2)


def conv1d(x: Any, w: Any, stride: int = 1, padding: int = 0, dilation: int = 1) -> Node:
    """1-D convolution (cross-correlation, as PyTorch), x (N, C, L) and w (O, C, k) → (N, O, L').

    Y[n,o,i] = Σ_(c,a) W[o,c,a] X[n, c, i·stride + a·dilation − padding]  (0 outside X).

    dY[i,j,k]/dX[p,q,r] = δ_ip Σ_a W[j,q,a] S1[k,a,r] ;  dY[i,j,k]/dW[p,q,r] = δ_jp Σ_a X[i,q,a] S1[k,r,a]

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([[[1.0, 2.0, 3.0, 4.0]]])
    >>> jx.conv1d(x, np.array([[[1.0, -1.0]]])).value.tolist()
    [[[-1.0, -1.0, -1.0]]]
    """
    return _conv(_CONV1D, x, w, stride, padding, dilation, 1)


# ------------------------------------------------------------------ pooling
def _pool_shape(name: str):
    def rule(xs: Shape, kernel, stride) -> Shape:
        if len(xs) != 4:
            raise ValueError(f"{name}: input of shape {xs}: expected (N, C, H, W) (channels first, as in PyTorch)")
        return xs[:2] + _spatial_out(name, xs[2:], kernel, stride, (0, 0), (1, 1))

    return rule


def _windows(x: np.ndarray, kernel, stride) -> np.ndarray:
    """Every window: shape (N, C, H', W', kh, kw)."""
    v = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
    return v[:, :, ::stride[0], ::stride[1]]


def _first_max_onehot(win: np.ndarray) -> np.ndarray:
    """A[n,c,i,j,a,b] = 1 at the first maximum of each window in row-major order."""
    flat = win.reshape(win.shape[:4] + (-1,))
    A = np.zeros_like(flat)
    np.put_along_axis(A, np.argmax(flat, axis=-1)[..., None], 1, axis=-1)
    return A.reshape(win.shape)


def _max_pool_form(y, x, kernel, stride):
    # dY[i,j,k,l]/dX[p,q,r,s] = δ_ip δ_jq Σ_ab A[i,j,k,l,a,b] S1[k,a,r] S2[l,b,s],  A one-hot at each window's max
    xv = x.value if isinstance(x, Node) else x  # the one-hot is piecewise constant: taken on the values
    A = _first_max_onehot(_windows(xv, kernel, stride)).astype(y.dtype)
    S1, S2 = _selections(y, x.shape[2:], kernel, stride, (0, 0), (1, 1))
    factors = (Factor(A, "ijklab", "onehot_argmax({x0})"), Factor(S1, "kar", "S1"), Factor(S2, "lbs", "S2"))
    return Factored("ijkl", "pqrs", (Product(factors, ("ip", "jq")),))


def _max_pool_vjp(g, y, x, kernel, stride):
    # each window's G goes to its first maximum (row-major), added where windows overlap
    n, c, ho, wo = g.shape
    win = _windows(x, kernel, stride).reshape(n, c, ho, wo, -1)
    a, b = np.divmod(np.argmax(win, axis=-1), kernel[1])
    h = a + stride[0] * np.arange(ho)[:, None]
    w = b + stride[1] * np.arange(wo)[None, :]
    gx = np.zeros(x.shape, dtype=np.result_type(g, x))
    nn_, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    np.add.at(gx, (nn_[:, :, None, None], cc[:, :, None, None], h, w), g)
    return gx


_MAX_POOL2D = register(Op(
    "max_pool2d", lambda x, kernel, stride: _windows(x, kernel, stride).max(axis=(-2, -1)), _pool_shape("max_pool2d"),
    forms=(_max_pool_form,),
    vjps=(_max_pool_vjp,),
    params=("kernel", "stride"),
    example=((1, 2, 4, 5),), example_params={"kernel": (2, 2), "stride": (2, 2)},
))


def _avg_pool_form(y, x, kernel, stride):
    # dY[i,j,k,l]/dX[p,q,r,s] = δ_ip δ_jq B1[k,r] B2[l,s] / (kh·kw),  B[k,r] = Σ_a S[k,a,r]: r in window k
    B1, B2 = (S.sum(axis=1) for S in _selections(y, x.shape[2:], kernel, stride, (0, 0), (1, 1)))
    factors = (Factor(B1, "kr", "B1"), Factor(B2, "ls", "B2"))
    return Factored("ijkl", "pqrs", (Product(factors, ("ip", "jq"), 1.0 / (kernel[0] * kernel[1])),))


def _avg_pool_vjp(g, y, x, kernel, stride):
    # each window's G / (kh·kw) added onto every entry of the window
    gx = np.zeros(x.shape, dtype=np.result_type(g, x))
    ho, wo = g.shape[2:]
    share = g / (kernel[0] * kernel[1])
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            gx[:, :, a:a + stride[0] * (ho - 1) + 1:stride[0], b:b + stride[1] * (wo - 1) + 1:stride[1]] += share
    return gx


_AVG_POOL2D = register(Op(
    "avg_pool2d", lambda x, kernel, stride: _windows(x, kernel, stride).mean(axis=(-2, -1)), _pool_shape("avg_pool2d"),
    forms=(_avg_pool_form,),
    vjps=(_avg_pool_vjp,),
    params=("kernel", "stride"),
    example=((1, 2, 4, 5),), example_params={"kernel": (2, 2), "stride": (2, 2)},
))


def _pool(op: Op, x: Any, kernel_size: IntOrPair, stride: Any) -> Node:
    k = _ints(op.name, "kernel_size", kernel_size, 2, 1)
    s = k if stride is None else _ints(op.name, "stride", stride, 2, 1)
    return apply(op, x, kernel=k, stride=s)


def max_pool2d(x: Any, kernel_size: IntOrPair, stride: Any = None) -> Node:
    """Max over each kh×kw window of x (N, C, H, W), stride default = kernel_size (no padding), as PyTorch.

    dY[i,j,k,l]/dX[p,q,r,s] = δ_ip δ_jq Σ_ab A[i,j,k,l,a,b] S1[k,a,r] S2[l,b,s]
    with A one-hot at each window's maximum.

    Tie policy: the whole derivative goes to the first maximum of the window in
    row-major order (numpy's argmax; PyTorch does the same); overlapping
    windows (stride < kernel) add their shares.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.array([[[[1.0, 5.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]]))
    >>> y = jx.max_pool2d(x, 2)
    >>> y.value.tolist(), jx.grad(jx.sum(y), x).tolist()    # the tie of 2s: the first one
    ([[[[5.0, 2.0]]]], [[[[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    """
    return _pool(_MAX_POOL2D, x, kernel_size, stride)


def avg_pool2d(x: Any, kernel_size: IntOrPair, stride: Any = None) -> Node:
    """Mean over each kh×kw window of x (N, C, H, W), stride default = kernel_size (no padding), as PyTorch.

    dY[i,j,k,l]/dX[p,q,r,s] = δ_ip δ_jq B1[k,r] B2[l,s] / (kh·kw),  B[k,r] = [r in window k]

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.arange(8.0).reshape(1, 1, 2, 4))
    >>> jx.avg_pool2d(x, 2).value.tolist()
    [[[[2.5, 4.5]]]]
    """
    return _pool(_AVG_POOL2D, x, kernel_size, stride)
