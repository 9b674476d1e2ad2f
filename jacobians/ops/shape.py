"""reshape: an op that only moves entries (transpose is an einsum spec, in einsum.py).

    Y = X.reshape(s)        dY[i]/dX[j] = δ(flat(i), flat(j))   (C order)
"""
from __future__ import annotations

import math
from typing import Any, Sequence, Tuple

import numpy as np

from ..form import Factored, Product, axis_labels
from ..node import Node
from ..registry import Op, apply, register

__all__ = ["reshape"]

Shape = Tuple[int, ...]


def _reshape_shape(s: Shape, shape: Shape) -> Shape:
    size = math.prod(s)
    known = math.prod(d for d in shape if d != -1)
    free = list(shape).count(-1)
    out = tuple(size // known if d == -1 and known else d for d in shape)
    if free > 1 or any(d < -1 for d in shape) or math.prod(out) != size:
        raise ValueError(f"reshape: cannot reshape an input of shape {s} (size {size}) into {shape}")
    return out


# When the reshape only adds or drops length-1 axes: one delta per remaining axis.
# Otherwise δ(flat(i), flat(j)) is not a product of per-axis deltas: it is declared
# as such (flat=True); the dense route writes the diagonal, a cotangent is reshaped.
def _reshape_factored(y, x, shape):
    out, inp = axis_labels(y.ndim, x.ndim)
    o = [k for k, n in enumerate(y.shape) if n != 1]
    i = [k for k, n in enumerate(x.shape) if n != 1]
    if [y.shape[k] for k in o] == [x.shape[k] for k in i]:
        return Factored(out, inp, (Product((), tuple(out[a] + inp[b] for a, b in zip(o, i))),))
    return Factored(out, inp, (), flat=True)


_RESHAPE = register(Op(
    "reshape", lambda x, shape: np.reshape(x, shape), _reshape_shape,
    forms=(_reshape_factored,),
    vjps=(lambda g, y, x, shape: np.reshape(g, x.shape),),
    params=("shape",),
    example=((2, 6),),
    example_params={"shape": (3, 4)},
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
