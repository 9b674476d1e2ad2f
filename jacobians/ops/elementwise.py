"""Elementwise ops of one input: Y[i] = f(X[i]).

Every one has the diagonal Jacobian   dY[i...]/dX[p...] = Π δ_ip · f'(X)[i...]
(one delta per axis: its factored form) and the hand-written VJP
dl/dX = g ⊙ f'(X).   Only f and f' differ, so each op is one line of the table
below: name, forward, derivative (from X, Y and the op's parameters), and the
name of f' as the factor of the form (or a constant like "-1", then no array is
carried; "0" gives the form with no terms, dY/dX = 0).

Kink policies (the derivative taken where f is not differentiable), one line per op; each is the op's
``policy`` too (the _POLICY table below):

* relu: relu'(0) = 0 (as PyTorch and JAX)
* abs: abs'(0) = 0
* leaky_relu: leaky_relu'(0) = negative_slope (the x ≤ 0 branch, as PyTorch)
* elu: elu'(0) = alpha (the x ≤ 0 branch, as PyTorch)
* selu: selu'(0) = scale · alpha (the x ≤ 0 branch, as PyTorch)
* sign: derivative 0 everywhere, at 0 (its jump) as well
* floor: derivative 0 everywhere, at the integers (its jumps) as well
* ceil: derivative 0 everywhere, at the integers (its jumps) as well
* round: derivative 0 everywhere, at the half-integers (its jumps) as well
* trunc: derivative 0 everywhere it is defined, and 0 at its jumps (the nonzero integers) as well

Not policies but facts: sqrt and cbrt have an infinite derivative at 0 (no value is substituted); outside
their domains log, log1p, log2, log10, arcsin, arccos, arctanh and reciprocal give nan or ±inf as numpy does,
and so do their derivatives.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Tuple

import numpy as np

from ..form import Factored, as_factor, axis_labels, broadcast_factored
from ..node import Node
from ..registry import Op, apply, register
from ._rules import op_function, same_shape

__all__ = [
    "negative", "exp", "log", "sqrt", "square", "sin", "cos", "tanh", "sigmoid",
    "relu", "softplus", "abs", "power",
    "log1p", "expm1", "log2", "log10", "exp2", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh",
    "arctanh", "reciprocal", "cbrt", "erf", "sign", "floor", "ceil", "round", "trunc",
    "leaky_relu", "elu", "selu", "gelu", "silu", "softsign", "log_sigmoid",
]

_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_2, _INV_SQRT_2PI = 1.0 / math.sqrt(2.0), 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715  # the cubic coefficient of gelu's tanh approximation
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_ERF = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def _value(x: Any) -> Any:
    """A node's value (for piecewise-constant factors: signs, masks), anything else as it is."""
    return x.value if isinstance(x, Node) else x


def _erf(x: np.ndarray) -> np.ndarray:
    """math.erf entry by entry (numpy has no erf), keeping x's float dtype; on a node, the erf op (second order)."""
    if isinstance(x, Node):
        return apply(_OPS["erf"], x)
    x = np.asarray(x)
    return np.asarray(_ERF(x), dtype=x.dtype)


def _phi(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF Φ(x) = (1 + erf(x/√2)) / 2."""
    return 0.5 * (1.0 + _erf(x * _INV_SQRT_2))


def _gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)))
    return x * _phi(x)


def _gelu_slope(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x * x * x))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * x * x)
    return _phi(x) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)  # Φ(x) + x φ(x)


def _negative_part_exp(x: np.ndarray) -> np.ndarray:
    """e^x where x ≤ 0, 1 elsewhere: never overflows."""
    return np.exp(np.minimum(x, 0))


def _zero_form(y: np.ndarray, x: np.ndarray) -> Factored:
    """dY/dX = 0: a form with no terms."""
    return Factored(*axis_labels(y.ndim, x.ndim), ())


def elementwise_op(name: str, f: Callable, df: Callable, factor: str, params: Tuple[str, ...] = (),
                   example_params: "dict | None" = None, policy: str = "") -> Op:
    """Declare Y = f(X, **params) with f'(X) given by ``df(x, y, **params)``; registers and returns the op.

    ``factor`` names df's array in the factored form ("tanh'({x0})"), or is a
    number when f' is that constant (then no array is carried; 0 gives the
    form with no terms). ``policy`` states the convention at kinks, if any.
    """
    try:
        constant: "float | None" = float(factor)
    except ValueError:
        constant = None

    # dY[i...]/dX[j...] = Π_k δ(i_k, j_k) · f'(X)[i...]
    def factored(y, x, **p):
        if constant == 0:
            return _zero_form(y, x)
        if constant is not None:
            return broadcast_factored(y.shape, x.shape, coef=constant)
        return broadcast_factored(y.shape, x.shape, as_factor(df(x, y, **p), y.dtype), factor)

    return register(
        Op(
            name=name,
            forward=f,
            shape=same_shape(name),
            forms=(factored,),
            vjps=(lambda g, y, x, **p: g * np.asarray(df(x, y, **p), dtype=y.dtype),),  # dl/dX = g ⊙ f'(X)
            params=params,
            example_params=example_params or {},
            policy=policy,
        )
    )


# the convention where f has a kink or a jump (the module docstring lists the same lines)
_POLICY = {
    "relu": "relu'(0) = 0 (as PyTorch and JAX)",
    "abs": "abs'(0) = 0",
    "leaky_relu": "leaky_relu'(0) = negative_slope (the x ≤ 0 branch, as PyTorch)",
    "elu": "elu'(0) = alpha (the x ≤ 0 branch, as PyTorch)",
    "selu": "selu'(0) = scale · alpha (the x ≤ 0 branch, as PyTorch)",
    "sign": "derivative 0 everywhere, at 0 (its jump) as well",
    "floor": "derivative 0 everywhere, at the integers (its jumps) as well",
    "ceil": "derivative 0 everywhere, at the integers (its jumps) as well",
    "round": "derivative 0 everywhere, at the half-integers (its jumps) as well",
    "trunc": "derivative 0 everywhere it is defined, and 0 at its jumps (the nonzero integers) as well",
}


def _zero(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.zeros_like(y)


#  name        forward                        f'(x) from (x, y)                        f' as a factor
_TABLE = [
    ("negative", np.negative,                   lambda x, y: -np.ones_like(y),           "-1"),
    ("exp",      np.exp,                        lambda x, y: y,                          "{y}"),
    ("log",      np.log,                        lambda x, y: 1.0 / x,                    "1/{x0}"),
    ("sqrt",     np.sqrt,                       lambda x, y: 0.5 / y,                    "1/(2 {y})"),
    ("square",   np.square,                     lambda x, y: 2.0 * x,                    "2 {x0}"),
    ("sin",      np.sin,                        lambda x, y: np.cos(x),                  "cos({x0})"),
    ("cos",      np.cos,                        lambda x, y: -np.sin(x),                 "-sin({x0})"),
    ("tanh",     np.tanh,                       lambda x, y: 1.0 - y * y,                "(1 - {y}²)"),
    ("sigmoid",  _sigmoid,                      lambda x, y: y * (1.0 - y),              "σ'({x0})"),
    ("relu",     lambda x: np.maximum(x, 0),    lambda x, y: (x > 0).astype(y.dtype),    "[{x0} > 0]"),
    ("softplus", lambda x: np.logaddexp(0, x),  lambda x, y: _sigmoid(x),                "σ({x0})"),
    ("abs",      np.abs,                        lambda x, y: np.sign(_value(x)).astype(y.dtype), "sign({x0})"),
    ("log1p",    np.log1p,                      lambda x, y: 1.0 / (1.0 + x),            "1/(1 + {x0})"),
    ("expm1",    np.expm1,                      lambda x, y: y + 1.0,                    "({y} + 1)"),
    ("log2",     np.log2,                       lambda x, y: 1.0 / (_LN2 * x),           "1/({x0} ln 2)"),
    ("log10",    np.log10,                      lambda x, y: 1.0 / (_LN10 * x),          "1/({x0} ln 10)"),
    ("exp2",     np.exp2,                       lambda x, y: _LN2 * y,                   "ln 2 {y}"),
    ("tan",      np.tan,                        lambda x, y: 1.0 + y * y,                "(1 + {y}²)"),
    ("arcsin",   np.arcsin,                     lambda x, y: 1.0 / np.sqrt(1.0 - x * x), "1/√(1 - {x0}²)"),
    ("arccos",   np.arccos,                     lambda x, y: -1.0 / np.sqrt(1.0 - x * x), "-1/√(1 - {x0}²)"),
    ("arctan",   np.arctan,                     lambda x, y: 1.0 / (1.0 + x * x),        "1/(1 + {x0}²)"),
    ("sinh",     np.sinh,                       lambda x, y: np.cosh(x),                 "cosh({x0})"),
    ("cosh",     np.cosh,                       lambda x, y: np.sinh(x),                 "sinh({x0})"),
    ("arcsinh",  np.arcsinh,                    lambda x, y: 1.0 / np.sqrt(x * x + 1.0), "1/√({x0}² + 1)"),
    ("arctanh",  np.arctanh,                    lambda x, y: 1.0 / (1.0 - x * x),        "1/(1 - {x0}²)"),
    ("reciprocal", np.reciprocal,               lambda x, y: -(y * y),                   "-{y}²"),
    ("cbrt",     np.cbrt,                       lambda x, y: 1.0 / (3.0 * y * y),        "1/(3 {y}²)"),
    ("erf",      _erf,                          lambda x, y: _TWO_OVER_SQRT_PI * np.exp(-x * x), "2/√π e^(-{x0}²)"),
    ("sign",     np.sign,                       _zero,                                   "0"),
    ("floor",    np.floor,                      _zero,                                   "0"),
    ("ceil",     np.ceil,                       _zero,                                   "0"),
    ("round",    np.round,                      _zero,                                   "0"),
    ("trunc",    np.trunc,                      _zero,                                   "0"),
    ("selu",     lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
                 lambda x, y: _SELU_SCALE * np.where(x > 0, 1.0, _SELU_ALPHA * _negative_part_exp(x)), "selu'({x0})"),
    ("silu",     lambda x: x * _sigmoid(x),
                 lambda x, y: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))), "σ({x0}) (1 + {x0} (1 - σ({x0})))"),
    ("softsign", lambda x: x / (1.0 + np.abs(x)),
                 lambda x, y: 1.0 / np.square(1.0 + np.abs(x)), "1/(1 + |{x0}|)²"),
    ("log_sigmoid", lambda x: -np.logaddexp(0, -x), lambda x, y: _sigmoid(-x), "σ(-{x0})"),
]
_OPS = {name: elementwise_op(name, f, df, fac, policy=_POLICY.get(name, "")) for name, f, df, fac in _TABLE}

# ops with parameters: the same declaration, f and f' taking the parameters by keyword
_OPS["leaky_relu"] = elementwise_op(
    "leaky_relu", lambda x, negative_slope: np.where(x > 0, x, negative_slope * x),
    lambda x, y, negative_slope: np.where(x > 0, 1.0, negative_slope), "leaky_relu'({x0})",
    params=("negative_slope",), example_params={"negative_slope": 0.01}, policy=_POLICY["leaky_relu"])
_OPS["elu"] = elementwise_op(
    "elu", lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
    lambda x, y, alpha: np.where(x > 0, 1.0, alpha * _negative_part_exp(x)), "elu'({x0})",
    params=("alpha",), example_params={"alpha": 1.0}, policy=_POLICY["elu"])
_OPS["gelu"] = elementwise_op(
    "gelu", _gelu, lambda x, y, approximate: _gelu_slope(x, approximate), "gelu'({x0})",
    params=("approximate",), example_params={"approximate": "none"})

_EXAMPLE = """

    {formula}

    >>> import math, numpy as np, jacobians as jx
    >>> x = jx.var({values})
    >>> np.allclose(jx.{name}(x{args}).value, ({ref})(np.array({values})))
    True
    >>> jx.jacobian(jx.{name}(x{args}), x).shape
    (2, 2)
"""


def _doc(name: str, summary: str, ref: str, values: str = "[0.5, 1.5]", args: str = "") -> str:
    with np.errstate(all="ignore"):  # the formula's example inputs may lie outside the domain (arcsin): text only
        formula = _OPS[name].formula
    return summary + _EXAMPLE.format(formula=formula, name=name, ref=ref, values=values, args=args)


negative = op_function(_OPS["negative"], _doc("negative", "Elementwise -x.", "np.negative"))
exp = op_function(_OPS["exp"], _doc("exp", "Elementwise e**x.", "np.exp"))
log = op_function(_OPS["log"], _doc("log", "Elementwise natural log; log(x ≤ 0) gives nan/-inf as in numpy.", "np.log"))
sqrt = op_function(_OPS["sqrt"], _doc("sqrt", "Elementwise square root; its derivative is infinite at 0.", "np.sqrt"))
square = op_function(_OPS["square"], _doc("square", "Elementwise x**2.", "np.square"))
sin = op_function(_OPS["sin"], _doc("sin", "Elementwise sine.", "np.sin"))
cos = op_function(_OPS["cos"], _doc("cos", "Elementwise cosine.", "np.cos"))
tanh = op_function(_OPS["tanh"], _doc("tanh", "Elementwise hyperbolic tangent.", "np.tanh"))
sigmoid = op_function(
    _OPS["sigmoid"], _doc("sigmoid", "Elementwise logistic function 1 / (1 + e**-x).", "lambda v: 1 / (1 + np.exp(-v))")
)
relu = op_function(
    _OPS["relu"],
    _doc("relu", "Elementwise max(x, 0). Convention: relu'(0) = 0 (as in PyTorch and JAX).", "lambda v: np.maximum(v, 0)"),
)
softplus = op_function(_OPS["softplus"], _doc("softplus", "Elementwise log(1 + e**x).", "lambda v: np.log1p(np.exp(v))"))
abs = op_function(_OPS["abs"], _doc("abs", "Elementwise |x|. Convention: abs'(0) = 0.", "np.abs"))  # noqa: A001
log1p = op_function(_OPS["log1p"], _doc("log1p", "Elementwise log(1 + x), accurate for small x; x > -1.", "np.log1p"))
expm1 = op_function(_OPS["expm1"], _doc("expm1", "Elementwise e**x - 1, accurate for small x.", "np.expm1"))
log2 = op_function(_OPS["log2"], _doc("log2", "Elementwise base-2 logarithm; x > 0.", "np.log2"))
log10 = op_function(_OPS["log10"], _doc("log10", "Elementwise base-10 logarithm; x > 0.", "np.log10"))
exp2 = op_function(_OPS["exp2"], _doc("exp2", "Elementwise 2**x.", "np.exp2"))
tan = op_function(_OPS["tan"], _doc("tan", "Elementwise tangent.", "np.tan"))
arcsin = op_function(_OPS["arcsin"], _doc("arcsin", "Elementwise inverse sine; -1 < x < 1 (the derivative is infinite "
                                                    "at ±1).", "np.arcsin", "[0.25, 0.5]"))
arccos = op_function(_OPS["arccos"], _doc("arccos", "Elementwise inverse cosine; -1 < x < 1 (the derivative is "
                                                    "infinite at ±1).", "np.arccos", "[0.25, 0.5]"))
arctan = op_function(_OPS["arctan"], _doc("arctan", "Elementwise inverse tangent.", "np.arctan"))
sinh = op_function(_OPS["sinh"], _doc("sinh", "Elementwise hyperbolic sine.", "np.sinh"))
cosh = op_function(_OPS["cosh"], _doc("cosh", "Elementwise hyperbolic cosine.", "np.cosh"))
arcsinh = op_function(_OPS["arcsinh"], _doc("arcsinh", "Elementwise inverse hyperbolic sine.", "np.arcsinh"))
arctanh = op_function(_OPS["arctanh"], _doc("arctanh", "Elementwise inverse hyperbolic tangent; -1 < x < 1.",
                                            "np.arctanh", "[0.25, 0.5]"))
reciprocal = op_function(_OPS["reciprocal"], _doc("reciprocal", "Elementwise 1/x.", "np.reciprocal"))
cbrt = op_function(_OPS["cbrt"], _doc("cbrt", "Elementwise real cube root; its derivative is infinite at 0.", "np.cbrt"))
erf = op_function(_OPS["erf"], _doc("erf", "Elementwise error function (math.erf per entry; the dtype is kept).",
                                    "np.vectorize(math.erf)"))
sign = op_function(_OPS["sign"], _doc("sign", "Elementwise sign (-1, 0 or 1). Convention: derivative 0 everywhere, "
                                              "at 0 as well.", "np.sign"))
floor = op_function(_OPS["floor"], _doc("floor", "Elementwise floor. Convention: derivative 0 everywhere, at the "
                                                 "integers (its jumps) as well.", "np.floor"))
ceil = op_function(_OPS["ceil"], _doc("ceil", "Elementwise ceiling. Convention: derivative 0 everywhere, at the "
                                              "integers (its jumps) as well.", "np.ceil"))
round = op_function(_OPS["round"], _doc("round", "Elementwise round to the nearest integer, halves to even (numpy's "  # noqa: A001
                                                 "round). Convention: derivative 0 everywhere, at the half-integers "
                                                 "(its jumps) as well.", "np.round", "[0.25, 1.75]"))
trunc = op_function(_OPS["trunc"], _doc("trunc", "Elementwise truncation toward 0. Convention: derivative 0 "
                                                 "everywhere it is defined, and 0 at its jumps (the nonzero integers) "
                                                 "as well.", "np.trunc"))
selu = op_function(_OPS["selu"], _doc(
    "selu", f"Elementwise scale · (x if x > 0 else alpha (e**x - 1)), alpha = {_SELU_ALPHA}, scale = {_SELU_SCALE} "
            "(PyTorch's constants). Convention: selu'(0) = scale · alpha (the x ≤ 0 branch).",
    "lambda v: 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * (np.exp(v) - 1))"))
silu = op_function(_OPS["silu"], _doc("silu", "Elementwise x · sigmoid(x) (swish).", "lambda v: v / (1 + np.exp(-v))"))
softsign = op_function(_OPS["softsign"], _doc("softsign", "Elementwise x / (1 + |x|).", "lambda v: v / (1 + np.abs(v))"))
log_sigmoid = op_function(_OPS["log_sigmoid"], _doc("log_sigmoid", "Elementwise log(sigmoid(x)) = -softplus(-x), "
                                                                   "without overflow.",
                                                    "lambda v: -np.log1p(np.exp(-v))"))

# the functions above are made in _rules.py, where doctest does not look: their examples are collected here
__test__ = {name: globals()[name].__doc__ for name in _OPS if name in globals()}


def _scalar_param(name: str, what: str, value: Any) -> float:
    if isinstance(value, Node) or np.ndim(value) != 0 or isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: {what} must be a constant number, got {type(value).__name__}"
                        f"{' node ' + value.name if isinstance(value, Node) else ''}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: {what} must be finite, got {v}")
    return v


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Node:
    """Elementwise x if x > 0 else negative_slope · x (PyTorch's argument name).

    Convention: leaky_relu'(0) = negative_slope (the x ≤ 0 branch, as PyTorch).

    dY[i]/dX[p] = δ_ip · ([X[i] > 0] + negative_slope [X[i] ≤ 0])

    >>> import jacobians as jx
    >>> x = jx.var([-2.0, 0.0, 3.0])
    >>> jx.leaky_relu(x, 0.1).value.tolist(), jx.grad(jx.sum(jx.leaky_relu(x, 0.1)), x).tolist()
    ([-0.2, 0.0, 3.0], [0.1, 0.1, 1.0])
    """
    return apply(_OPS["leaky_relu"], x, negative_slope=_scalar_param("leaky_relu", "negative_slope", negative_slope))


def elu(x: Any, alpha: float = 1.0) -> Node:
    """Elementwise x if x > 0 else alpha · (e**x - 1) (PyTorch's argument name).

    Convention: elu'(0) = alpha (the x ≤ 0 branch, as PyTorch).

    dY[i]/dX[p] = δ_ip · ([X[i] > 0] + alpha e^X[i] [X[i] ≤ 0])

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([-1.0, 2.0])
    >>> np.allclose(jx.elu(x, 2.0).value, [2 * (np.exp(-1) - 1), 2.0])
    True
    >>> np.allclose(jx.grad(jx.sum(jx.elu(x, 2.0)), x), [2 * np.exp(-1), 1.0])
    True
    """
    return apply(_OPS["elu"], x, alpha=_scalar_param("elu", "alpha", alpha))


def gelu(x: Any, approximate: str = "none") -> Node:
    """Elementwise Gaussian error linear unit x · Φ(x) (PyTorch's argument names).

    ``approximate="none"``: Φ is the normal CDF (1 + erf(x/√2))/2, and
    gelu'(x) = Φ(x) + x φ(x). ``approximate="tanh"``:
    0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), differentiated as written.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([-1.0, 0.5])
    >>> np.allclose(jx.gelu(x).value, [-0.15865525393145707, 0.34573123063700656])
    True
    >>> np.allclose(jx.gelu(x, approximate="tanh").value, jx.gelu(x).value, atol=1e-3)
    True
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh' (PyTorch's values), got {approximate!r}")
    return apply(_OPS["gelu"], x, approximate=approximate)


# Y = X ** p with a constant exponent p
# dY[i]/dX[j] = δ_ij p X[i]^(p-1)
def _power_slope(x: np.ndarray, p: float) -> np.ndarray:
    return p * x ** (p - 1) if p != 0 else np.zeros_like(x)


# the factored form keeps p as the coefficient: for p = 2 the factor is X itself
def _power_factored(y: np.ndarray, x: np.ndarray, p: float):
    if p == 0:
        return broadcast_factored(y.shape, x.shape, coef=0.0)
    if p == 1:
        return broadcast_factored(y.shape, x.shape)
    if p == 2:
        return broadcast_factored(y.shape, x.shape, x, "{x0}", coef=2.0)
    return broadcast_factored(y.shape, x.shape, x ** (p - 1), f"{{x0}}^{p - 1:g}", coef=p)


_POWER = register(
    Op(
        name="power",
        forward=lambda x, p: x**p,
        shape=lambda s, p: tuple(s),
        forms=(_power_factored,),
        vjps=(lambda g, y, x, p: g * _power_slope(x, p),),
        params=("p",),
        example_params={"p": 3.0},
    )
)


def power(x: Any, p: Any) -> Node:
    """Elementwise x ** p for a constant (Python or numpy scalar) exponent p.

    dY[i]/dX[j] = δ_ij · p X[i]^(p-1)

    >>> import jacobians as jx
    >>> x = jx.var([1.0, 2.0])
    >>> (x ** 3).value.tolist(), jx.grad(jx.sum(x ** 3), x).tolist()
    ([1.0, 8.0], [3.0, 12.0])
    """
    if isinstance(p, Node) or np.ndim(p) != 0:
        raise TypeError(
            f"power: the exponent must be a constant scalar, got {type(p).__name__} "
            f"{'node ' + p.name if isinstance(p, Node) else ''}; for a differentiable exponent write "
            "jx.exp(b * jx.log(a))"
        )
    return apply(_POWER, x, p=float(p))
