"""Binary elementwise ops with numpy broadcasting: add, subtract, multiply, divide.

For Y = A ∘ B with A broadcast to Y's shape, the Jacobian w.r.t. A is
    dY[i...]/dA[j...] = δ(j = i restricted to A's axes) · ∂(a∘b)/∂a
where an axis along which A was broadcast (length 1, or missing in front) has
no delta: one entry of A reaches a whole row of Y. That is the ``1_m bᵀ`` of a
dense layer ``X W + b``. The VJP sums the cotangent over the broadcast axes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..form import broadcast_factored
from ..node import Node
from ..registry import Op, apply, register
from ._rules import broadcast_rule, unbroadcast

__all__ = ["add", "subtract", "multiply", "divide"]


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
