"""Writing the nonzeros of a Kronecker-delta-structured Jacobian into a zeroed array.

Most local Jacobians are zero except where Kronecker deltas tie an output index
to an input index: ``dY[c,d]/dW[a,b] = δ_ca X[b,d]``. Instead of building the
deltas as identity matrices (``np.einsum`` with ``np.eye`` runs at a fraction of
write bandwidth), :func:`tied_view` returns a strided *view* of the zeroed
Jacobian in which each tied pair of axes is merged into one axis whose stride is
the sum of the two. Assigning into that view writes exactly the nonzeros.

>>> import numpy as np
>>> J = np.zeros((2, 3, 2, 3))           # d out[i,j] / d in[p,q] for an elementwise op
>>> tied_view(J, [(0, 2), (1, 3)])[...] = 7.0   # J[i,j,i,j] = 7
>>> float(J.reshape(6, 6).trace()), float(J.sum())
(42.0, 42.0)
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["tied_view"]


def tied_view(J: np.ndarray, ties: Sequence[Tuple[int, int]]) -> np.ndarray:
    """View of ``J`` with each pair ``(keep, drop)`` of axes merged into axis ``keep``.

    The dropped axes disappear; the view's element at a kept index is
    ``J[..., i, ..., i, ...]`` (the two tied axes at the same index). Tied axes
    must have equal lengths. The view is writeable and every element of it is
    a distinct element of ``J``, so ``view[...] = values`` is a scatter.
    """
    shape = list(J.shape)
    strides = list(J.strides)
    dropped = set()
    for keep, drop in ties:
        if shape[keep] != shape[drop]:
            raise ValueError(f"tied_view: axes {keep} and {drop} have lengths {shape[keep]} and {shape[drop]}")
        strides[keep] += strides[drop]
        dropped.add(drop)
    axes = [k for k in range(J.ndim) if k not in dropped]
    if J.flags.writeable and J.flags.c_contiguous:  # a view on J's own buffer (as_strided, minus its overhead)
        return np.ndarray([shape[k] for k in axes], J.dtype, buffer=J, strides=[strides[k] for k in axes])
    return as_strided(J, shape=[shape[k] for k in axes], strides=[strides[k] for k in axes], writeable=True)
