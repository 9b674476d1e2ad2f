"""Losses: mean squared error and softmax cross-entropy.

    l = mean((P - T)²)                 dl/dP[j] = 2 (P[j] - T[j]) / n     dl/dT[j] = -dl/dP[j]
    l = -(1/m) Σ_r Σ_k T[r,k] log_softmax(Z)[r,k]
                                       dl/dZ[r,k] = (S[r,k] Σ_k' T[r,k'] - T[r,k]) / m,  S = softmax(Z)
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ..form import Factor, Factored, Product, axis_labels
from ..node import Node, shape_of
from ..registry import Op, apply, register
from .reductions import logsumexp_over, softmax_over

__all__ = ["mse", "cross_entropy"]

Shape = Tuple[int, ...]


def _mse_shape(p: Shape, t: Shape) -> Shape:
    if tuple(p) != tuple(t):
        raise ValueError(f"mse: prediction shape {p} and target shape {t} differ; they must be equal (no broadcasting)")
    return ()


def _mse_factored(y, p, t, sign):  # ±(2/n) (P - T)[j...]
    _, inp = axis_labels(0, p.ndim)
    return Factored("", inp, (Product((Factor((p - t).astype(y.dtype), inp, "({x0} - {x1})"),), (), sign / p.size),))


_MSE = register(Op(
    "mse", lambda p, t: np.mean((p - t) ** 2), _mse_shape,
    vjps=(lambda g, y, p, t: g * 2.0 * (p - t) / p.size,
          lambda g, y, p, t: -g * 2.0 * (p - t) / p.size),
    forms=(lambda y, p, t: _mse_factored(y, p, t, 2.0), lambda y, p, t: _mse_factored(y, p, t, -2.0)),
    example=((3, 2), (3, 2)),
))


def mse(pred: Any, target: Any) -> Node:
    """Mean squared error mean((pred - target)²) over every entry (a scalar node).

    >>> import jacobians as jx
    >>> p = jx.var([1.0, 3.0])
    >>> float(jx.mse(p, [0.0, 0.0]).value), jx.grad(jx.mse(p, [0.0, 0.0]), p).tolist()
    (5.0, [1.0, 3.0])
    """
    return apply(_MSE, pred, target)


def _ce_rows(z: np.ndarray) -> int:
    return z.shape[0] if z.ndim == 2 else 1


def _ce_forward(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    return -np.sum(t * (z - np.expand_dims(logsumexp_over(z, (z.ndim - 1,)), -1))) / _ce_rows(z)


def _ce_grad(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    s = softmax_over(z, (z.ndim - 1,))
    return (s * np.sum(t, axis=-1, keepdims=True) - t) / _ce_rows(z)


_CROSS_ENTROPY = register(Op(
    "cross_entropy", _ce_forward,
    lambda z, t: (),
    vjps=(lambda g, y, z, t: g * _ce_grad(z, t),),
    params=("t",),
    example=((3, 4),),
    example_params={"t": np.eye(4)[[0, 3, 1]]},
    forms=(lambda y, z, t: Factored("", axis_labels(0, z.ndim)[1], (Product(
        (Factor(_ce_grad(z, t).astype(y.dtype), axis_labels(0, z.ndim)[1], "(softmax({x0}) Σt - t)/m"),)),)),),
))


def _one_hot(name: str, labels: Any, logits_shape: Shape) -> np.ndarray:
    if isinstance(labels, Node):
        raise TypeError(f"{name}: labels must be a constant array, not the node {labels.name}")
    lab = np.asarray(labels)
    k = logits_shape[-1]
    if lab.dtype.kind in "iu" and lab.shape == logits_shape[:-1]:
        if lab.size and (lab.min() < 0 or lab.max() >= k):
            raise ValueError(f"{name}: integer labels must lie in [0, {k}) for logits of shape {logits_shape}")
        return np.eye(k)[lab]
    if lab.dtype.kind in "fb" and lab.shape == logits_shape:
        return lab.astype(np.float64)
    raise ValueError(
        f"{name}: labels of shape {lab.shape} and dtype {lab.dtype} do not fit logits of shape {logits_shape}; "
        f"pass integer class indices of shape {logits_shape[:-1]} or one-hot rows of shape {logits_shape}"
    )


def cross_entropy(logits: Any, labels: Any) -> Node:
    """Softmax cross-entropy of logits (m, k) or (k,), averaged over the m rows.

    ``labels`` is a constant: integer class indices of shape (m,) (or a scalar
    for 1-D logits), or one-hot (or soft) rows of the logits' shape.

    >>> import numpy as np, jacobians as jx
    >>> Z = jx.var(np.zeros((2, 3)))
    >>> round(float(jx.cross_entropy(Z, [0, 2]).value), 6), jx.grad(jx.cross_entropy(Z, [0, 2]), Z).round(4).tolist()
    (1.098612, [[-0.3333, 0.1667, 0.1667], [0.1667, 0.1667, -0.3333]])
    """
    shape = shape_of(logits)
    if len(shape) not in (1, 2):
        raise ValueError(f"cross_entropy: logits must have shape (m, k) or (k,), got {tuple(shape)}")
    t = _one_hot("cross_entropy", labels, tuple(shape))
    if isinstance(logits, Node):
        t = t.astype(logits.dtype)
    return apply(_CROSS_ENTROPY, logits, t=t)
