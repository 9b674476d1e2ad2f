"""Ops that only move entries: transpose and reshape.

    Y = X.transpose(axes)   dY[i...]/dX[j...] = Π_k δ(i_k, j_axes[k])
    Y = X.reshape(s)        dY[i]/dX[j] = δ(flat(i), flat(j))   (C order)
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from .. import memory
from ..node import Node, apply
from ..registry import Factored, Op, Product, register
from ._rules import axis_labels
from ..scatter import tied_view

__all__ = ["transpose", "reshape"]

Shape = Tuple[int, ...]


def _transpose_shape(s: Shape, axes: Tuple[int, ...]) -> Shape:
    if sorted(axes) != list(range(len(s))):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {len(s)} axes of shape {s}")
    return tuple(s[a] for a in axes)


# dY[i...]/dX[j...] = Π_k δ(i_k, j_axes[k])
def _transpose_jac(y, x, axes):
    J = memory.zeros(y.shape + x.shape, y.dtype, "jacobian of transpose")
    tied_view(J, [(k, y.ndim + a) for k, a in enumerate(axes)])[...] = 1
    return J


def _transpose_factored(y, x, axes):  # deltas only
    out, inp = axis_labels(y.ndim, x.ndim)
    return Factored(out, inp, (Product((), tuple(out[k] + inp[a] for k, a in enumerate(axes))),))


_TRANSPOSE = register(Op(
    "transpose", lambda x, axes: np.transpose(x, axes), _transpose_shape,
    jacobians=(_transpose_jac,),
    vjps=(lambda g, y, x, axes: np.transpose(g, np.argsort(axes)),),
    formula="dY[i...]/dX[j...] = Π_k δ(i_k, j_axes[k])   (for .T: dY[i,j]/dX[p,q] = δ_iq δ_jp)",
    params=("axes",),
    factored=(lambda y, x, axes: _transpose_factored(y, x, axes),),
))


def transpose(x: Any, axes: Optional[Sequence[int]] = None) -> Node:
    """Permute axes (default: reverse them, like ``.T``).

    dY[i,j]/dX[p,q] = δ_iq δ_jp for a matrix

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.zeros((2, 3)))
    >>> jx.transpose(X).shape, jx.jacobian(X.T, X).shape
    ((3, 2), (3, 2, 2, 3))
    """
    ndim = x.ndim if isinstance(x, Node) else np.ndim(x)
    axes = tuple(reversed(range(ndim))) if axes is None else tuple(int(a) % max(ndim, 1) for a in axes)
    return apply(_TRANSPOSE, x, axes=axes)


def _reshape_shape(s: Shape, shape: Shape) -> Shape:
    size = math.prod(s)
    known = math.prod(d for d in shape if d != -1)
    free = list(shape).count(-1)
    out = tuple(size // known if d == -1 and known else d for d in shape)
    if free > 1 or any(d < -1 for d in shape) or math.prod(out) != size:
        raise ValueError(f"reshape: cannot reshape an input of shape {s} (size {size}) into {shape}")
    return out


# dY[i]/dX[j] = δ(flat(i), flat(j))
def _reshape_jac(y, x, shape):
    J = memory.zeros(y.shape + x.shape, y.dtype, "jacobian of reshape")
    np.fill_diagonal(J.reshape(y.size, x.size), 1)  # J is C-contiguous: the reshape is a view
    return J


# factored: when the reshape only adds or drops length-1 axes, one delta per
# remaining axis. Otherwise δ(flat(i), flat(j)) is not a product of per-axis
# deltas: it is declared as such (flat=True), and a cotangent is reshaped.
def _reshape_factored(y, x, shape):
    out, inp = axis_labels(y.ndim, x.ndim)
    o = [k for k, n in enumerate(y.shape) if n != 1]
    i = [k for k, n in enumerate(x.shape) if n != 1]
    if [y.shape[k] for k in o] == [x.shape[k] for k in i]:
        return Factored(out, inp, (Product((), tuple(out[a] + inp[b] for a, b in zip(o, i))),))
    return Factored(out, inp, (), flat=True)


_RESHAPE = register(Op(
    "reshape", lambda x, shape: np.reshape(x, shape), _reshape_shape,
    jacobians=(_reshape_jac,),
    vjps=(lambda g, y, x, shape: np.reshape(g, x.shape),),
    formula="dY[i]/dX[j] = δ(flat(i), flat(j))   (C-order flat index)",
    params=("shape",),
    factored=(_reshape_factored,),
))


def reshape(x: Any, shape: Sequence[int]) -> Node:
    """Reshape in C order, like ``np.reshape`` (one -1 allowed).

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var(np.arange(6.0))
    >>> jx.reshape(x, (2, -1)).shape, float(jx.jacobian(jx.reshape(x, (2, 3)), x).reshape(6, 6).trace())
    ((2, 3), 6.0)
    """
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    return apply(_RESHAPE, x, shape=shape)
