"""Losses, each a scalar with PyTorch's functional argument order and mean reduction.

    l = mean((P - T)²)                 dl/dP[j] = 2 (P[j] - T[j]) / n     dl/dT[j] = -dl/dP[j]
    l = -(1/m) Σ_r Σ_k T[r,k] log_softmax(Z)[r,k]
                                       dl/dZ[r,k] = (S[r,k] Σ_k' T[r,k'] - T[r,k]) / m,  S = softmax(Z)
    l = -mean(T log P + (1 - T) log(1 - P))
                                       dl/dP[j] = (P - T)/(P (1 - P))[j] / n   dl/dT[j] = -log(P/(1 - P))[j] / n
    l = mean(softplus(Z) - T Z)        dl/dZ[j] = (σ(Z) - T)[j] / n            dl/dT[j] = -Z[j] / n
    l = -(1/m) Σ_r logp[r, label_r]    dl/dlogp[r,k] = -[k = label_r] / m
    l = mean(huber_δ(P - T))           dl/dP[j] = clip(P - T, -δ, δ)[j] / n    dl/dT[j] = -dl/dP[j]
    l = mean(max(0, 1 - y S))          dl/dS[j] = -y[j] [y S < 1][j] / n
    l = mean(P (log P - logQ))         dl/dlogQ[j] = -P[j] / n                 dl/dP[j] = (log P + 1 - logQ)[j] / n

(n is the number of entries, m the number of rows.) Kink policies, one line per loss that has a kink (each
is the op's ``policy`` too):

* hinge: at the kink y·s = 1 the derivative is 0 (the hinge is flat there, like relu'(0) = 0)
* kl_div: where p = 0 the term p log p is 0 (0 log 0 = 0) and its derivative w.r.t. p is taken as 0

The others are smooth where defined: huber's slope clip(d, -δ, δ) is continuous at |d| = δ;
binary_cross_entropy needs 0 < p < 1 (with_logits=True takes logits and never overflows).
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ..form import Factor, Factored, Product, as_factor, axis_labels
from ..node import Node, shape_of
from ..registry import Op, apply, register
from .reductions import logsumexp_over, softmax, softmax_over

__all__ = ["mse", "cross_entropy", "binary_cross_entropy", "nll", "huber", "hinge", "kl_div"]

Shape = Tuple[int, ...]


def _mse_shape(p: Shape, t: Shape) -> Shape:
    if tuple(p) != tuple(t):
        raise ValueError(f"mse: prediction shape {p} and target shape {t} differ; they must be equal (no broadcasting)")
    return ()


def _mse_factored(y, p, t, sign):  # ±(2/n) (P - T)[j...]
    _, inp = axis_labels(0, p.ndim)
    return Factored("", inp, (Product((Factor(as_factor(p - t, y.dtype), inp, "({x0} - {x1})"),), (), sign / p.size),))


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
    s = softmax(z, axis=-1) if isinstance(z, Node) else softmax_over(z, (z.ndim - 1,))  # a node: second order
    return (s * np.sum(t, axis=-1, keepdims=True) - t) / _ce_rows(z)


_CROSS_ENTROPY = register(Op(
    "cross_entropy", _ce_forward,
    lambda z, t: (),
    vjps=(lambda g, y, z, t: g * _ce_grad(z, t),),
    params=("t",),
    example=((3, 4),),
    example_params={"t": np.eye(4)[[0, 3, 1]]},
    forms=(lambda y, z, t: Factored("", axis_labels(0, z.ndim)[1], (Product(
        (Factor(as_factor(_ce_grad(z, t), y.dtype), axis_labels(0, z.ndim)[1], "(softmax({x0}) Σt - t)/m"),)),)),),
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


# ------------------------------------------------------------------ helpers
_POLICY = {  # the module docstring lists the same lines
    "hinge": "at the kink y·s = 1 the derivative is 0 (the hinge is flat there, like relu'(0) = 0)",
    "kl_div": "where p = 0 the term p log p is 0 (0 log 0 = 0) and its derivative w.r.t. p is taken as 0",
}


def _equal_shapes(name: str, first: str, second: str):
    """Shape rule of a loss of two arrays of one shape; the error names the loss and both shapes."""

    def rule(a: Shape, b: Shape, **_: Any) -> Shape:
        if tuple(a) != tuple(b):
            raise ValueError(f"{name}: {first} shape {tuple(a)} and {second} shape {tuple(b)} differ; they must be "
                             "equal (no broadcasting)")
        return ()

    return rule


def _gradient_form(y: np.ndarray, x: np.ndarray, value: np.ndarray, name: str, coef: float) -> Factored:
    """dl/dX[p...] = coef · value[p...] for a scalar loss l."""
    _, inp = axis_labels(0, x.ndim)
    return Factored("", inp, (Product((Factor(as_factor(value, y.dtype), inp, name),), (), coef),))


def _constant_labels(name: str, labels: Any) -> np.ndarray:
    if isinstance(labels, Node):
        raise TypeError(f"{name}: labels must be a constant array, not the node {labels.name}; pass "
                        f"{labels.name}.value")
    return np.asarray(labels)


# ------------------------------------------------------------ binary cross-entropy
def _bce_forward(p: np.ndarray, t: np.ndarray, with_logits: bool) -> np.ndarray:
    if with_logits:  # softplus(z) - t z, with softplus(z) = max(z, 0) + log1p(e^-|z|)
        return np.mean(np.maximum(p, 0) - t * p + np.log1p(np.exp(-np.abs(p))))
    return -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p))


def _logistic(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def _bce_form_p(y, p, t, with_logits):
    if with_logits:
        return _gradient_form(y, p, _logistic(p) - t, "(σ({x0}) - {x1})", 1.0 / p.size)
    return _gradient_form(y, p, (p - t) / (p * (1 - p)), "({x0} - {x1})/({x0} (1 - {x0}))", 1.0 / p.size)


def _bce_form_t(y, p, t, with_logits):
    if with_logits:
        return _gradient_form(y, t, p, "{x0}", -1.0 / p.size)
    return _gradient_form(y, t, np.log(p / (1 - p)), "log({x0}/(1 - {x0}))", -1.0 / p.size)


def _bce_vjp_p(g, y, p, t, with_logits):
    if with_logits:
        return g * (np.exp(np.minimum(p, 0)) / (1.0 + np.exp(-np.abs(p))) - t) / p.size  # σ(z) without overflow
    return g * ((1 - t) / (1 - p) - t / p) / p.size


def _bce_vjp_t(g, y, p, t, with_logits):
    if with_logits:
        return -g * p / p.size
    return g * (np.log1p(-p) - np.log(p)) / p.size


_BCE = register(Op(
    "binary_cross_entropy", _bce_forward, _equal_shapes("binary_cross_entropy", "input", "target"),
    forms=(_bce_form_p, _bce_form_t),
    vjps=(_bce_vjp_p, _bce_vjp_t),
    params=("with_logits",),
    example=((3, 2), (3, 2)),
    example_params={"with_logits": False},
))


def binary_cross_entropy(p: Any, target: Any, with_logits: bool = False) -> Node:
    """Mean binary cross-entropy -mean(t log p + (1 - t) log(1 - p)) over every entry (a scalar node).

    ``p`` holds probabilities in (0, 1); with ``with_logits=True`` it holds
    logits z and the loss is mean(softplus(z) - t z), computed without
    overflow (PyTorch's binary_cross_entropy_with_logits). Both arguments are
    differentiable; their shapes must be equal.

    >>> import numpy as np, jacobians as jx
    >>> p = jx.var([0.5, 0.8])
    >>> round(float(jx.binary_cross_entropy(p, [1.0, 0.0]).value), 6)
    1.151293
    >>> jx.grad(jx.binary_cross_entropy(p, [1.0, 0.0]), p).round(6).tolist()
    [-1.0, 2.5]
    >>> z = jx.var([0.0, 1000.0])
    >>> round(float(jx.binary_cross_entropy(z, [1.0, 1.0], with_logits=True).value), 6)   # (log 2 + 0) / 2
    0.346574
    """
    if not isinstance(with_logits, (bool, np.bool_)):
        raise TypeError(f"binary_cross_entropy: with_logits must be True or False, got {with_logits!r}")
    return apply(_BCE, p, target, with_logits=bool(with_logits))


# ----------------------------------------------------------------------- nll
def _rows(logp_shape: Shape) -> int:
    return int(np.prod(logp_shape[:-1], dtype=np.int64))


def _nll_forward(logp: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.mean(np.take_along_axis(logp, labels[..., None], axis=-1))


def _nll_form(y, logp, labels):  # -[k = label_r] / m: the one-hot gather along the class axis
    onehot = labels[..., None] == np.arange(logp.shape[-1])
    return _gradient_form(y, logp, onehot, "onehot(labels)", -1.0 / _rows(logp.shape))


def _nll_vjp(g, y, logp, labels):
    gx = np.zeros(logp.shape, dtype=logp.dtype)
    np.put_along_axis(gx, labels[..., None], -g / _rows(logp.shape), axis=-1)
    return gx


_NLL = register(Op(
    "nll", _nll_forward, lambda s, labels: (),
    forms=(_nll_form,),
    vjps=(_nll_vjp,),
    params=("labels",),
    example=((3, 4),),
    example_params={"labels": np.array([0, 3, 1])},
))


def nll(logp: Any, labels: Any) -> Node:
    """Negative log-likelihood -mean_r logp[r, label_r] of log-probabilities (m, k) or (k,) (PyTorch's nll_loss).

    ``labels`` is a constant: integer class indices of shape (m,) (a scalar
    for 1-D logp). Usually logp = jx.log_softmax(logits).

    dl/dlogp[r,k] = -[k = label_r] / m

    >>> import numpy as np, jacobians as jx
    >>> L = jx.var(np.log([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
    >>> round(float(jx.nll(L, [0, 2]).value), 6), jx.grad(jx.nll(L, [0, 2]), L).tolist()
    (0.458145, [[-0.5, 0.0, 0.0], [0.0, 0.0, -0.5]])
    """
    shape = tuple(shape_of(logp))
    if len(shape) not in (1, 2) or shape[-1] == 0:
        raise ValueError(f"nll: log-probabilities must have shape (m, k) or (k,) with k ≥ 1, got {shape}")
    lab = _constant_labels("nll", labels)
    if lab.dtype.kind not in "iu":
        raise TypeError(f"nll: labels must be integer class indices, got dtype {lab.dtype}; for one-hot or soft "
                        "targets use jx.cross_entropy")
    if lab.shape != shape[:-1]:
        raise ValueError(f"nll: labels of shape {lab.shape} do not fit log-probabilities of shape {shape}; pass "
                         f"one integer class index per row, shape {shape[:-1]}")
    if lab.size and (lab.min() < 0 or lab.max() >= shape[-1]):
        raise ValueError(f"nll: integer labels must lie in [0, {shape[-1]}) for log-probabilities of shape {shape}")
    return apply(_NLL, logp, labels=lab.astype(np.int64))


# --------------------------------------------------------------------- huber
def _huber_forward(p: np.ndarray, t: np.ndarray, delta: float) -> np.ndarray:
    d = p - t
    a = np.abs(d)
    return np.mean(np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta)))


def _huber_slope(p, t, delta):  # written apart from the form's clip
    d = p - t
    return np.where(np.abs(d) < delta, d, delta * np.sign(d))


_HUBER = register(Op(
    "huber", _huber_forward, _equal_shapes("huber", "input", "target"),
    forms=(lambda y, p, t, delta: _gradient_form(y, p, np.clip(p - t, -delta, delta), "clip({x0} - {x1}, ±delta)",
                                                 1.0 / p.size),
           lambda y, p, t, delta: _gradient_form(y, t, np.clip(p - t, -delta, delta), "clip({x0} - {x1}, ±delta)",
                                                 -1.0 / p.size)),
    vjps=(lambda g, y, p, t, delta: g * _huber_slope(p, t, delta) / p.size,
          lambda g, y, p, t, delta: -g * _huber_slope(p, t, delta) / p.size),
    params=("delta",),
    example=((3, 2), (3, 2)),
    example_params={"delta": 1.0},
))


def huber(pred: Any, target: Any, delta: float = 1.0) -> Node:
    """Mean Huber loss (PyTorch's huber_loss): ½d² where |d| < delta, else delta (|d| - ½ delta), d = pred - target.

    Differentiable everywhere: the slope is clip(d, -delta, delta). Both
    arguments are differentiable; their shapes must be equal.

    >>> import jacobians as jx
    >>> p = jx.var([0.5, 3.0])
    >>> float(jx.huber(p, [0.0, 0.0]).value), jx.grad(jx.huber(p, [0.0, 0.0]), p).tolist()
    (1.3125, [0.25, 0.5])
    """
    if isinstance(delta, Node) or np.ndim(delta) != 0 or isinstance(delta, (str, bytes)):
        raise TypeError(f"huber: delta must be a constant positive number, got {type(delta).__name__}")
    if not float(delta) > 0 or not np.isfinite(float(delta)):
        raise ValueError(f"huber: delta must be positive and finite, got {delta}")
    return apply(_HUBER, pred, target, delta=float(delta))


# --------------------------------------------------------------------- hinge
def _hinge_forward(s: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.mean(np.maximum(0, 1 - labels.astype(s.dtype) * s))


_HINGE = register(Op(
    "hinge", _hinge_forward, lambda s, labels: (),
    forms=(lambda y, s, labels: _gradient_form(y, s, labels * (labels * s < 1), "y [y {x0} < 1]", -1.0 / s.size),),
    vjps=(lambda g, y, s, labels: np.where(1 - labels * s > 0, -g * labels.astype(s.dtype), 0) / s.size,),
    params=("labels",),
    example=((3, 2),),
    example_params={"labels": np.array([[1.0, -1.0], [-1.0, -1.0], [1.0, 1.0]])},
    policy=_POLICY["hinge"],
))


def hinge(scores: Any, labels: Any) -> Node:
    """Mean binary hinge loss mean(max(0, 1 - y · s)) for constant labels y = ±1 of the scores' shape.

    Kink policy: at y·s = 1 the derivative is 0 (like relu'(0) = 0).

    dl/dS[p] = -y[p] [y S < 1][p] / n

    >>> import jacobians as jx
    >>> s = jx.var([0.5, 2.0, 1.0])
    >>> float(jx.hinge(s, [1, 1, -1]).value), jx.grad(jx.hinge(s, [1, 1, -1]), s).tolist()
    (0.8333333333333334, [-0.3333333333333333, 0.0, 0.3333333333333333])
    """
    shape = tuple(shape_of(scores))
    lab = _constant_labels("hinge", labels)
    if lab.shape != shape:
        raise ValueError(f"hinge: labels of shape {lab.shape} do not fit scores of shape {shape}; give one label "
                         "±1 per score")
    if lab.dtype.kind not in "biuf" or not np.isin(lab, (-1, 1)).all():
        raise ValueError("hinge: labels must be -1 or +1 (binary hinge loss); map 0/1 labels with 2 * labels - 1")
    return apply(_HINGE, scores, labels=lab.astype(np.float64))


# ------------------------------------------------------------------- kl_div
def _plogp(p: np.ndarray) -> np.ndarray:
    """p log p with 0 log 0 = 0."""
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)


def _kl_slope_p(logq, p):  # log p + 1 - logQ where p > 0, 0 at p = 0 (the policy)
    return np.where(p > 0, np.log(np.where(p > 0, p, 1)) + 1 - logq, 0)


_KL_DIV = register(Op(
    "kl_div", lambda logq, p: np.mean(_plogp(p) - p * logq), _equal_shapes("kl_div", "input (log q)", "target (p)"),
    forms=(lambda y, logq, p: _gradient_form(y, logq, p, "{x1}", -1.0 / p.size),
           lambda y, logq, p: _gradient_form(y, p, _kl_slope_p(logq, p), "(log {x1} + 1 - {x0})", 1.0 / p.size)),
    vjps=(lambda g, y, logq, p: -g * p / p.size,
          lambda g, y, logq, p: g * np.where(p == 0, 0, np.log(np.maximum(p, np.finfo(p.dtype).tiny)) - logq + 1)
          / p.size),
    example=((3, 2), (3, 2)),
    policy=_POLICY["kl_div"],
))


def kl_div(logq: Any, p: Any) -> Node:
    """KL divergence with PyTorch's kl_div semantics and reduction='mean': mean over every entry of p (log p - logq).

    ``logq`` holds log-probabilities (the input), ``p`` probabilities (the
    target); both are differentiable, their shapes must be equal. The mean is
    over all entries (PyTorch's 'mean'), not per row ('batchmean', the true KL
    divergence of row distributions: multiply by the number of columns).
    Where p = 0 the term is 0 (0 log 0 = 0) and its derivative w.r.t. p is 0.

    >>> import numpy as np, jacobians as jx
    >>> p = jx.var([0.25, 0.75])
    >>> logq = jx.var(np.log([0.5, 0.5]))
    >>> round(float(jx.kl_div(logq, p).value), 6), jx.grad(jx.kl_div(logq, p), logq).tolist()
    (0.065406, [-0.125, -0.375])
    """
    return apply(_KL_DIV, logq, p)
