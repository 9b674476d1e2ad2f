"""Binary elementwise ops with numpy broadcasting: add, subtract, multiply, divide, hypot, arctan2, logaddexp, mod.

For Y = A ∘ B with A broadcast to Y's shape, the Jacobian w.r.t. A is
    dY[i...]/dA[j...] = δ(j = i restricted to A's axes) · ∂(a∘b)/∂a
where an axis along which A was broadcast (length 1, or missing in front) has
no delta: one entry of A reaches a whole row of Y. That is the ``1_m bᵀ`` of a
dense layer ``X W + b``. The VJP sums the cotangent over the broadcast axes.

Policies where the derivative does not exist, one line per op (each is the op's ``policy`` too):

* hypot: at a = b = 0 both partial derivatives are taken as 0 (the cone's tip, where a/y and b/y are 0/0)
* arctan2: at a = b = 0 both partial derivatives are taken as 0 (the angle is undefined there)
* mod: derivative 1 w.r.t. a and -floor(a/b) w.r.t. b, at the jumps (a/b an integer) too: the piece starting there
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..form import broadcast_factored
from ..node import Node
from ..registry import Op, apply, register
from ._rules import broadcast_rule, unbroadcast

__all__ = ["add", "subtract", "multiply", "divide", "hypot", "arctan2", "logaddexp", "mod"]


# Y = A + B      dY[i]/dA[j] = δ_ij      dY[i]/dB[j] = δ_ij
_ADD = register(Op(
    "add", np.add, broadcast_rule("add"),
    vjps=(lambda g, y, a, b: unbroadcast(g, a.shape), lambda g, y, a, b: unbroadcast(g, b.shape)),
    example=((3, 4), (4,)),
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape),
              lambda y, a, b: broadcast_factored(y.shape, b.shape)),
))

# Y = A - B      dY[i]/dA[j] = δ_ij      dY[i]/dB[j] = -δ_ij
_SUBTRACT = register(Op(
    "subtract", np.subtract, broadcast_rule("subtract"),
    vjps=(lambda g, y, a, b: unbroadcast(g, a.shape), lambda g, y, a, b: -unbroadcast(g, b.shape)),
    example=((3, 4), (4,)),
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape),
              lambda y, a, b: broadcast_factored(y.shape, b.shape, coef=-1.0)),
))

# Y = A ⊙ B      dY[i]/dA[j] = δ_ij B[i]      dY[i]/dB[j] = δ_ij A[i]
_MULTIPLY = register(Op(
    "multiply", np.multiply, broadcast_rule("multiply"),
    vjps=(lambda g, y, a, b: unbroadcast(g * b, a.shape), lambda g, y, a, b: unbroadcast(g * a, b.shape)),
    example=((3, 4), (4,)),
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape, b, "{x1}"),
              lambda y, a, b: broadcast_factored(y.shape, b.shape, a, "{x0}")),
))

# Y = A / B      dY[i]/dA[j] = δ_ij / B[i]      dY[i]/dB[j] = -δ_ij A[i] / B[i]²
_DIVIDE = register(Op(
    "divide", np.divide, broadcast_rule("divide"),
    vjps=(lambda g, y, a, b: unbroadcast(g / b, a.shape), lambda g, y, a, b: unbroadcast(-g * a / (b * b), b.shape)),
    example=((3, 4), (4,)),
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape, 1.0 / b, "1/{x1}"),
              lambda y, a, b: broadcast_factored(y.shape, b.shape, a / (b * b), "{x0}/{x1}²", coef=-1.0)),
))


def add(a: Any, b: Any) -> Node:
    """a + b with broadcasting (also the ``+`` operator).

    >>> import numpy as np, jacobians as jx
    >>> b = jx.var(np.zeros(3))
    >>> jx.jacobian(jx.add(np.ones((2, 3)), b), b).shape   # a bias broadcast over 2 rows
    (2, 3, 3)
    """
    return apply(_ADD, a, b)


def subtract(a: Any, b: Any) -> Node:
    """a - b with broadcasting (also the ``-`` operator).

    >>> import jacobians as jx
    >>> jx.subtract(jx.var([3.0]), 1.0).value.tolist()
    [2.0]
    """
    return apply(_SUBTRACT, a, b)


def multiply(a: Any, b: Any) -> Node:
    """Elementwise a * b with broadcasting (also the ``*`` operator).

    >>> import jacobians as jx
    >>> a = jx.var([1.0, 2.0])
    >>> jx.jacobian(jx.multiply(a, [3.0, 4.0]), a).tolist()
    [[3.0, 0.0], [0.0, 4.0]]
    """
    return apply(_MULTIPLY, a, b)


def divide(a: Any, b: Any) -> Node:
    """Elementwise a / b with broadcasting (also the ``/`` operator).

    >>> import jacobians as jx
    >>> b = jx.var([2.0])
    >>> jx.grad(jx.sum(jx.divide(1.0, b)), b).tolist()
    [-0.25]
    """
    return apply(_DIVIDE, a, b)


# ----------------------------------------------------------- hypot, arctan2, logaddexp, mod
_POLICY = {  # the module docstring lists the same lines
    "hypot": "at a = b = 0 both partial derivatives are taken as 0 (the cone's tip, where a/y and b/y are 0/0)",
    "arctan2": "at a = b = 0 both partial derivatives are taken as 0 (the angle is undefined there)",
    "mod": "derivative 1 w.r.t. a and -floor(a/b) w.r.t. b, at the jumps (a/b an integer) too: the piece starting there",
}


def _value(x: Any) -> Any:
    """A node's value (for piecewise-constant factors: masks, floors), anything else as it is."""
    return x.value if isinstance(x, Node) else x


def _over(num: np.ndarray, den: np.ndarray, shape: tuple) -> np.ndarray:
    """num / den broadcast to ``shape``, and 0 where den is 0 (the policy at the origin).

    On nodes (second order) the same as an expression of ops: the mask den ≠ 0
    is sign(den)², an op with derivative 0 (piecewise constant), computed again
    from new values when jx.jit replays the graph.
    """
    if isinstance(num, Node) or isinstance(den, Node):
        s = np.sign(den)
        keep = s * s
        res = num / (den + (1.0 - keep)) * keep
        return res if np.shape(res) == tuple(shape) else np.broadcast_to(res, shape)
    num, den = np.broadcast_to(num, shape), np.broadcast_to(den, shape)
    out = np.zeros(shape, dtype=np.result_type(num, den))
    return np.divide(num, den, out=out, where=den != 0)


# Y = √(A² + B²)      dY[i]/dA[j] = δ_ij A[i]/Y[i]      dY[i]/dB[j] = δ_ij B[i]/Y[i]      (0 at A = B = 0)
_HYPOT = register(Op(
    "hypot", np.hypot, broadcast_rule("hypot"),
    vjps=(lambda g, y, a, b: unbroadcast(np.where(y == 0, 0, g * a / np.where(y == 0, 1, y)), a.shape),
          lambda g, y, a, b: unbroadcast(np.where(y == 0, 0, g * b / np.where(y == 0, 1, y)), b.shape)),
    example=((3, 4), (4,)),
    policy=_POLICY["hypot"],
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape, _over(a, y, y.shape), "({x0}/{y})"),
           lambda y, a, b: broadcast_factored(y.shape, b.shape, _over(b, y, y.shape), "({x1}/{y})")),
))


# Y = atan2(A, B)     dY[i]/dA[j] = δ_ij B[i]/(A² + B²)[i]     dY[i]/dB[j] = -δ_ij A[i]/(A² + B²)[i]   (0 at 0, 0)
def _atan2_vjp(g, a, b, top, shape):
    r2 = a * a + b * b
    return unbroadcast(np.where(r2 == 0, 0, g * top / np.where(r2 == 0, 1, r2)), shape)


_ARCTAN2 = register(Op(
    "arctan2", np.arctan2, broadcast_rule("arctan2"),
    vjps=(lambda g, y, a, b: _atan2_vjp(g, a, b, b, a.shape), lambda g, y, a, b: _atan2_vjp(g, a, b, -a, b.shape)),
    example=((3, 4), (4,)),
    policy=_POLICY["arctan2"],
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape, _over(b, a * a + b * b, y.shape),
                                              "({x1}/({x0}² + {x1}²))"),
           lambda y, a, b: broadcast_factored(y.shape, b.shape, _over(a, a * a + b * b, y.shape),
                                              "({x0}/({x0}² + {x1}²))", coef=-1.0)),
))

# Y = log(e^A + e^B)  dY[i]/dA[j] = δ_ij e^(A - Y)[i]      dY[i]/dB[j] = δ_ij e^(B - Y)[i]
def _logistic(d: np.ndarray) -> np.ndarray:
    """σ(d) = e^min(d, 0) / (1 + e^-|d|), never overflowing: e^(a - y) = σ(a - b)."""
    return np.exp(np.minimum(d, 0)) / (1.0 + np.exp(-np.abs(d)))


_LOGADDEXP = register(Op(
    "logaddexp", np.logaddexp, broadcast_rule("logaddexp"),
    vjps=(lambda g, y, a, b: unbroadcast(g * _logistic(a - b), a.shape),
          lambda g, y, a, b: unbroadcast(g * _logistic(b - a), b.shape)),
    example=((3, 4), (4,)),
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape, np.exp(a - y), "e^({x0} - {y})"),
           lambda y, a, b: broadcast_factored(y.shape, b.shape, np.exp(b - y), "e^({x1} - {y})")),
))

# Y = A mod B = A - ⌊A/B⌋ B      dY[i]/dA[j] = δ_ij      dY[i]/dB[j] = -δ_ij ⌊A/B⌋[i]
_MOD = register(Op(
    "mod", np.mod, broadcast_rule("mod"),
    vjps=(lambda g, y, a, b: unbroadcast(g, a.shape),
          lambda g, y, a, b: unbroadcast(-g * np.floor_divide(a, b), b.shape)),
    example=((3, 4), (4,)),
    policy=_POLICY["mod"],
    forms=(lambda y, a, b: broadcast_factored(y.shape, a.shape),
           lambda y, a, b: broadcast_factored(y.shape, b.shape, np.floor_divide(_value(a), _value(b)),
                                                   "⌊{x0}/{x1}⌋", coef=-1.0)),
))


def hypot(a: Any, b: Any) -> Node:
    """Elementwise √(a² + b²) with broadcasting, without overflow.

    Convention: at a = b = 0 (where it is not differentiable) both partial derivatives are 0.

    >>> import jacobians as jx
    >>> a = jx.var([3.0, 0.0])
    >>> jx.hypot(a, [4.0, 0.0]).value.tolist(), jx.grad(jx.sum(jx.hypot(a, [4.0, 0.0])), a).tolist()
    ([5.0, 0.0], [0.6, 0.0])
    """
    return apply(_HYPOT, a, b)


def arctan2(a: Any, b: Any) -> Node:
    """Elementwise angle of the point (b, a), atan2(a, b), with broadcasting (numpy's argument order: y, x).

    Convention: at a = b = 0 (where the angle is undefined) both partial derivatives are 0.

    >>> import jacobians as jx
    >>> a = jx.var([1.0])
    >>> round(float(jx.arctan2(a, [1.0]).value[0]), 6), jx.grad(jx.sum(jx.arctan2(a, [1.0])), a).tolist()
    (0.785398, [0.5])
    """
    return apply(_ARCTAN2, a, b)


def logaddexp(a: Any, b: Any) -> Node:
    """Elementwise log(e**a + e**b) with broadcasting, without overflow.

    >>> import numpy as np, jacobians as jx
    >>> a = jx.var([0.0, 1000.0])
    >>> jx.logaddexp(a, [0.0, 1000.0]).value.round(6).tolist(), jx.grad(jx.sum(jx.logaddexp(a, 0.0)), a).tolist()
    ([0.693147, 1000.693147], [0.5, 1.0])
    """
    return apply(_LOGADDEXP, a, b)


def mod(a: Any, b: Any) -> Node:
    """Elementwise a mod b = a - floor(a/b) · b with broadcasting (numpy's mod: the result has the sign of b).

    Derivative 1 w.r.t. a and -floor(a/b) w.r.t. b (floor(a/b) is numpy's
    floor_divide); at the jumps (a/b an integer, where mod(a, b) = 0) the same
    formula is used: the slope of the piece that starts there. b = 0 gives
    nan, as in numpy.

    >>> import jacobians as jx
    >>> a, b = jx.var([7.0, -7.0]), jx.var([3.0, 3.0])
    >>> jx.mod(a, b).value.tolist(), jx.grad(jx.sum(jx.mod(a, b)), b).tolist()
    ([1.0, 2.0], [-2.0, 3.0])
    """
    return apply(_MOD, a, b)
