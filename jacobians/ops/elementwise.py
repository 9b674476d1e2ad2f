"""Elementwise ops of one input: Y[i] = f(X[i]).

Every one has the diagonal Jacobian   dY[i...]/dX[p...] = Π δ_ip · f'(X)[i...]
(one delta per axis: its factored form) and the hand-written VJP
dl/dX = g ⊙ f'(X).   Only f and f' differ, so each op is one line of the table
below: name, forward, derivative (from X and Y), and the name of f' as the
factor of the form (or a constant like "-1", then no array is carried).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..form import broadcast_factored
from ..node import Node
from ..registry import Op, apply, register
from ._rules import op_function, same_shape

__all__ = [
    "negative", "exp", "log", "sqrt", "square", "sin", "cos", "tanh", "sigmoid",
    "relu", "softplus", "abs", "power",
]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def elementwise_op(name: str, f: Callable, df: Callable, factor: str) -> Op:
    """Declare Y = f(X) with f'(X) given by ``df(x, y)``; registers and returns the op.

    ``factor`` names df's array in the factored form ("tanh'({x0})"), or is a
    number when f' is that constant (then no array is carried).
    """
    try:
        constant: "float | None" = float(factor)
    except ValueError:
        constant = None

    # dY[i...]/dX[j...] = Π_k δ(i_k, j_k) · f'(X)[i...]
    def factored(y, x):
        if constant is not None:
            return broadcast_factored(y.shape, x.shape, coef=constant)
        return broadcast_factored(y.shape, x.shape, np.asarray(df(x, y), dtype=y.dtype), factor)

    return register(
        Op(
            name=name,
            forward=f,
            shape=same_shape(name),
            forms=(factored,),
            vjps=(lambda g, y, x: g * df(x, y),),  # dl/dX = g ⊙ f'(X)
        )
    )


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
    ("abs",      np.abs,                        lambda x, y: np.sign(x).astype(y.dtype), "sign({x0})"),
]
_OPS = {name: elementwise_op(name, f, df, fac) for name, f, df, fac in _TABLE}

_EXAMPLE = """

    {formula}

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([0.5, 1.5])
    >>> np.allclose(jx.{name}(x).value, {ref}(np.array([0.5, 1.5])))
    True
    >>> jx.jacobian(jx.{name}(x), x).shape
    (2, 2)
"""


def _doc(name: str, summary: str, ref: str) -> str:
    return summary + _EXAMPLE.format(formula=_OPS[name].formula, name=name, ref=ref)


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
