"""Op cases of the elementwise family (the fields are in case.py; op_cases.py joins the tables).

Elementwise ops of one input, the broadcasting binary ops of arithmetic.py, the
selection ops (selection.py) and the losses (losses.py). Domains keep every
draw away from kinks, jumps and ties; those are the subject of
test_selection_policy.py.
"""
import math

import numpy as np

import jacobians as jx
from case import Case, draw  # noqa: F401

_ERF = np.vectorize(math.erf)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _inside_unit(shape, rng):  # (-0.9, 0.9): arcsin, arccos, arctanh
    return rng.uniform(-0.9, 0.9, shape)


def _off_integers(shape, rng):  # fractional part in [0.1, 0.4]: no jump of floor, ceil, round, trunc nearby
    return rng.integers(-3, 4, shape) + rng.uniform(0.1, 0.4, shape)


def _open_unit(shape, rng):  # (0.05, 0.95): probabilities and targets of binary cross-entropy
    return rng.uniform(0.05, 0.95, shape)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _huber(p, t, delta):
    d = np.abs(p - t)
    return np.mean(np.where(d < delta, 0.5 * d**2, delta * (d - 0.5 * delta)))


def _xlogx(p):
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


COND = np.array([[True], [False], [True]])  # (3, 1)
COND3 = np.array([[[True, False, True, False]], [[False, False, True, True]]])  # (2, 1, 4)
LO, HI = np.array([-1.0, -0.2, 0.1, -0.5]), np.array([0.5, 0.3, 1.2, 2.0])
NLL_LABELS = np.array([2, 0, 1, 2])
HINGE_LABELS = np.array([[1, -1, -1, 1], [-1, 1, 1, 1], [1, 1, -1, -1]])

CASES = [
    # ------------------------------------------------------------ one input
    Case("log1p", jx.log1p, ((2, 3),), np.log1p, domain="positive"),
    Case("expm1", jx.expm1, ((3, 2),), np.expm1),
    Case("log2", jx.log2, ((2, 3),), np.log2, domain="positive"),
    Case("log10", jx.log10, ((3, 2),), np.log10, domain="positive"),
    Case("exp2", jx.exp2, ((2, 3),), np.exp2),
    Case("tan", jx.tan, ((3, 2),), np.tan, domain=_inside_unit),
    Case("arcsin", jx.arcsin, ((2, 3),), np.arcsin, domain=_inside_unit),
    Case("arccos", jx.arccos, ((3, 2),), np.arccos, domain=_inside_unit),
    Case("arctan", jx.arctan, ((2, 3),), np.arctan),
    Case("sinh", jx.sinh, ((3, 2),), np.sinh),
    Case("cosh", jx.cosh, ((2, 3),), np.cosh),
    Case("arcsinh", jx.arcsinh, ((3, 2),), np.arcsinh),
    Case("arctanh", jx.arctanh, ((2, 3),), np.arctanh, domain=_inside_unit),
    Case("reciprocal", jx.reciprocal, ((3, 2),), lambda x: 1.0 / x, domain="away_from_zero"),
    Case("cbrt", jx.cbrt, ((2, 3),), np.cbrt, domain="away_from_zero"),
    Case("erf", jx.erf, ((3, 2),), _ERF),
    Case("erf", jx.erf, ((2, 3, 2),), _ERF, note="rank3"),
    Case("sign", jx.sign, ((2, 3),), np.sign, domain="away_from_zero"),
    Case("floor", jx.floor, ((3, 2),), np.floor, domain=_off_integers),
    Case("ceil", jx.ceil, ((2, 3),), np.ceil, domain=_off_integers),
    Case("round", jx.round, ((3, 2),), np.round, domain=_off_integers),
    Case("trunc", jx.trunc, ((2, 3),), np.trunc, domain=_off_integers),
    Case("leaky_relu", jx.leaky_relu, ((3, 2),), lambda x: np.where(x > 0, x, 0.01 * x), domain="away_from_zero"),
    Case("leaky_relu", lambda x: jx.leaky_relu(x, negative_slope=0.2), ((2, 3),),
         lambda x: np.where(x > 0, x, 0.2 * x), domain="away_from_zero", note="slope"),
    Case("elu", jx.elu, ((3, 2),), lambda x: np.where(x > 0, x, np.exp(x) - 1), domain="away_from_zero"),
    Case("elu", lambda x: jx.elu(x, alpha=1.5), ((2, 3),), lambda x: np.where(x > 0, x, 1.5 * (np.exp(x) - 1)),
         domain="away_from_zero", note="alpha"),
    Case("selu", jx.selu, ((3, 2),), lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * (np.exp(x) - 1)),
         domain="away_from_zero"),
    Case("gelu", jx.gelu, ((2, 3),), lambda x: 0.5 * x * (1 + _ERF(x / np.sqrt(2)))),
    Case("gelu", lambda x: jx.gelu(x, approximate="tanh"), ((3, 2),), _gelu_tanh, note="tanh"),
    Case("silu", jx.silu, ((2, 3),), lambda x: x / (1 + np.exp(-x))),
    Case("softsign", jx.softsign, ((3, 2),), lambda x: x / (1 + np.abs(x)), domain="away_from_zero"),
    Case("log_sigmoid", jx.log_sigmoid, ((2, 3),), lambda x: -np.log1p(np.exp(-x))),
    # ------------------------------------------------ two inputs, broadcasting
    Case("hypot", jx.hypot, ((3, 4), (3, 4)), np.hypot),
    Case("hypot", jx.hypot, ((3, 4), (4,)), np.hypot, note="broadcast"),
    Case("arctan2", jx.arctan2, ((2, 3), (2, 3)), np.arctan2),
    Case("arctan2", jx.arctan2, ((3, 1), (1, 4)), np.arctan2, note="both-broadcast"),
    Case("logaddexp", jx.logaddexp, ((3, 2), (3, 2)), np.logaddexp),
    Case("logaddexp", jx.logaddexp, ((2, 3, 4), (3, 1)), np.logaddexp, note="broadcast"),
    Case("mod", jx.mod, ((2, 3), (2, 3)), np.mod, domain="away_from_zero"),
    Case("mod", jx.mod, ((4, 3), (3,)), np.mod, domain="away_from_zero", note="broadcast"),
    # ---------------------------------------------------------------- selection
    Case("where", lambda a, b: jx.where(COND, a, b), ((3, 4), (3, 4)), lambda a, b: np.where(COND, a, b)),
    Case("where", lambda a, b: jx.where(COND3, a, b), ((3, 4), (3, 1)), lambda a, b: np.where(COND3, a, b),
         note="condition-broadcasts-wider"),
    Case("maximum", jx.maximum, ((3, 4), (3, 4)), np.maximum),
    Case("maximum", jx.maximum, ((3, 4), (4,)), np.maximum, note="broadcast"),
    Case("minimum", jx.minimum, ((2, 3), (2, 3)), np.minimum),
    Case("minimum", jx.minimum, ((3, 1), (2, 1, 4)), np.minimum, note="both-broadcast"),
    Case("clip", lambda x: jx.clip(x, -0.5, 0.7), ((3, 4),), lambda x: np.clip(x, -0.5, 0.7)),
    Case("clip", lambda x: jx.clip(x, LO, HI), ((3, 4),), lambda x: np.clip(x, LO, HI), note="array-bounds"),
    Case("clip", lambda x: jx.clip(x, None, HI), ((4,),), lambda x: np.minimum(x, HI), note="upper-only"),
    Case("clip", lambda x: jx.clip(x, LO[:, None], None), ((3,),), lambda x: np.maximum(x, LO[:, None]),
         note="bounds-broadcast-wider"),
    Case("max", jx.max, ((3, 4),), np.max),
    Case("max", lambda x: jx.max(x, axis=1), ((2, 3, 4),), lambda x: np.max(x, axis=1), note="axis"),
    Case("max", lambda x: jx.max(x, axis=(0, 2), keepdims=True), ((2, 3, 4),),
         lambda x: np.max(x, axis=(0, 2), keepdims=True), note="tuple-keepdims"),
    Case("min", lambda x: jx.min(x, axis=0), ((3, 4),), lambda x: np.min(x, axis=0), note="axis"),
    Case("min", lambda x: jx.min(x, axis=-1, keepdims=True), ((2, 3, 4),),
         lambda x: np.min(x, axis=-1, keepdims=True), note="keepdims"),
    Case("sort", jx.sort, ((3, 4),), np.sort),
    Case("sort", lambda x: jx.sort(x, axis=0), ((4, 3, 2),), lambda x: np.sort(x, axis=0), note="axis0-rank3"),
    Case("sort", jx.sort, ((5,),), np.sort, note="vector"),
    # ------------------------------------------------------------------- losses
    Case("binary_cross_entropy", jx.binary_cross_entropy, ((3, 2), (3, 2)),
         lambda p, t: -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)), domain=_open_unit),
    Case("binary_cross_entropy", lambda z, t: jx.binary_cross_entropy(z, t, with_logits=True), ((2, 3), (2, 3)),
         lambda z, t: np.mean(np.log1p(np.exp(z)) - t * z), domain=_open_unit, note="with-logits"),
    Case("nll", lambda lp: jx.nll(lp, NLL_LABELS), ((4, 3),),
         lambda lp: -lp[np.arange(4), NLL_LABELS].mean()),
    Case("nll", lambda lp: jx.nll(lp, 3), ((5,),), lambda lp: -lp[3], note="vector"),
    Case("huber", jx.huber, ((3, 4), (3, 4)), lambda p, t: _huber(p, t, 1.0)),
    Case("huber", lambda p, t: jx.huber(p, t, delta=0.5), ((4, 3), (4, 3)), lambda p, t: _huber(p, t, 0.5),
         note="delta"),
    Case("hinge", lambda s: jx.hinge(s, HINGE_LABELS), ((3, 4),),
         lambda s: np.mean(np.maximum(0.0, 1.0 - HINGE_LABELS * s))),
    Case("kl_div", jx.kl_div, ((3, 4), (3, 4)), lambda lq, p: np.mean(_xlogx(p) - p * lq), domain="probability"),
]
