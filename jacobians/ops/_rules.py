"""Building blocks shared by op declarations: shape rules, delta scatters, factored forms."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from .. import memory
from ..node import Node, apply
from ..registry import Factor, Factored, Op, Product
from ..scatter import broadcast_ties, tied_view

Shape = Tuple[int, ...]


def same_shape(name: str) -> Callable[..., Shape]:
    def rule(shape: Shape, **_: object) -> Shape:
        return tuple(shape)

    return rule


def broadcast_rule(name: str) -> Callable[..., Shape]:
    """Shape rule of a broadcasting binary op; the error names the op and both shapes."""

    def rule(a: Shape, b: Shape) -> Shape:
        try:
            return tuple(np.broadcast_shapes(a, b))
        except ValueError:
            raise ValueError(
                f"{name}: shapes {a} and {b} do not broadcast (numpy rules: trailing axes must match or be 1); "
                "reshape one operand, e.g. a bias of shape (n,) or (1, n) for an (m, n) matrix"
            ) from None

    return rule


def diagonal_jacobian(local: np.ndarray, out_shape: Shape, in_shape: Shape, dtype, what: str) -> np.ndarray:
    """J[i..., j...] = δ(j = i broadcast into in_shape) · local[i...].

    The Jacobian of an elementwise op whose input of ``in_shape`` broadcasts to
    ``out_shape``; ``local`` (broadcastable to ``out_shape``) is the elementwise
    derivative. Only the nonzeros are written, through a strided view.
    """
    J = memory.zeros(tuple(out_shape) + tuple(in_shape), dtype, what)
    view = tied_view(J, broadcast_ties(tuple(out_shape), tuple(in_shape)))
    view[...] = np.reshape(np.broadcast_to(local, out_shape), view.shape)
    return J


OUT_LABELS = "ijklmnoabcdefgh"  # output axes of a factored Jacobian
IN_LABELS = "pqrstuvwxyzABCD"  # input axes


def axis_labels(n_out: int, n_in: int) -> Tuple[str, str]:
    """Index letters for the output axes and the input axes of a factored Jacobian."""
    if n_out > len(OUT_LABELS) or n_in > len(IN_LABELS):
        raise ValueError(f"factored Jacobians support up to {len(OUT_LABELS)} axes, got {n_out} and {n_in}")
    return OUT_LABELS[:n_out], IN_LABELS[:n_in]


def broadcast_factored(out_shape: Shape, in_shape: Shape, partial: Optional[np.ndarray] = None,
                       name: str = "", coef: float = 1.0) -> Factored:
    """dY[i...]/dA[p...] = coef · Π δ(i_k, p_a) · partial[i...] for A broadcast into Y.

    One delta per axis of A that was not broadcast; a broadcast axis (length 1,
    or missing in front) gets none: one entry of A reaches a whole row of Y.
    ``partial`` (broadcastable to ``out_shape``) is the elementwise derivative;
    None when it is the constant ``coef``. Axes along which it is constant
    are dropped from the factor.
    """
    out, inp = axis_labels(len(out_shape), len(in_shape))
    off = len(out_shape) - len(in_shape)
    deltas = tuple(out[a + off] + inp[a] for a, n in enumerate(in_shape) if n == out_shape[a + off])
    factors: Tuple[Factor, ...] = ()
    if partial is not None:
        f = np.asarray(partial)
        f = f.reshape((1,) * (len(out_shape) - f.ndim) + f.shape)
        keep = [k for k in range(f.ndim) if not (f.shape[k] == 1 and out_shape[k] != 1)]
        factors = (Factor(f.reshape([f.shape[k] for k in keep]), "".join(out[k] for k in keep), name),)
    return Factored(out, inp, (Product(factors, deltas, coef),))


def unbroadcast(g: np.ndarray, in_shape: Shape) -> np.ndarray:
    """Sum a cotangent of the broadcast output shape back to ``in_shape``."""
    extra = g.ndim - len(in_shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(k for k, n in enumerate(in_shape) if n == 1 and g.shape[k] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def op_function(op: Op, doc: str, name: str = "") -> Callable[..., Node]:
    """The public function ``jx.<name>(x)`` of a one-input op without parameters."""

    def fn(x: "Node | np.ndarray | float") -> Node:
        return apply(op, x)

    fn.__name__ = fn.__qualname__ = name or op.name
    fn.__doc__ = doc
    return fn
