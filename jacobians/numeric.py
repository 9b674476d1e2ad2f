"""The numeric route: central differences, always in float64.

    dy/dx[:, j] ≈ (f(x + h e_j) - f(x - h e_j)) / 2h,   h = ε^(1/3) · max(1, |x_j|)

f re-runs only what lies between x and y, with every other input held at its
value — so x may be an intermediate node (perturb its value, recompute what is
downstream), which is the partial derivative with other paths held fixed.
The truncation error is O(h²) and the rounding error O(ε/h); this h balances
them (about 1e-10 relative for smooth functions in float64).
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from . import memory
from .graph import between
from .node import Node
from .registry import op_errors
from .sweep import reverse_sweep

__all__ = ["jacobian_numeric", "function_of", "values_at", "gradient_at", "gradient_at_shifted", "Pace",
           "NumericTooSlow", "TIME_BUDGET"]

_H = np.finfo(np.float64).eps ** (1.0 / 3.0)
TIME_BUDGET = 60.0  # seconds: a numeric route whose passes would take longer is stopped, with its estimate


class NumericTooSlow(ValueError):
    """Central differences would take longer than :data:`TIME_BUDGET` (estimated from the first passes)."""


class Pace:
    """Counts the passes of a central-difference loop and stops it early when, at the pace of the first
    ones, all of them would take longer than :data:`TIME_BUDGET` — a request that runs for hours is
    refused in about a second with its estimate, instead of looking like a hang."""

    def __init__(self, passes: int, what: str) -> None:
        self.passes, self.what, self.done = passes, what, 0
        self.start = time.perf_counter()

    def tick(self, n: int = 1) -> None:
        self.done += n
        spent = time.perf_counter() - self.start
        if spent < 0.5 or self.done >= self.passes:
            return
        estimate = spent / self.done * self.passes
        if estimate > TIME_BUDGET:
            raise NumericTooSlow(
                f"{self.what}: {self.passes:,} passes of central differences would take about {estimate:,.0f} s "
                f"at the pace of the first {self.done:,} (over the {TIME_BUDGET:g} s budget); use method='vjp' "
                "or 'factored', check a few directions with jx.check_grad, use a smaller x, or raise "
                "jacobians.numeric.TIME_BUDGET")


def function_of(y: Node, x: Node, hold: Sequence[Node] = ()) -> Callable[[np.ndarray], np.ndarray]:
    """The map x-value ↦ y-value through the graph, in float64 (nodes in ``hold`` fixed)."""
    nodes = between(y, x, hold)
    if y.id == x.id:
        return lambda v: np.array(v, dtype=np.float64)
    if not nodes:
        fixed = y.value.astype(np.float64)
        return lambda v: fixed

    def f(v: np.ndarray) -> np.ndarray:
        return values_at(nodes, x, v)[y.id]

    return f


def _params64(n: Node) -> dict:
    return {k: (np.asarray(a, dtype=np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a)
            for k, a in n.params.items()}


def values_at(nodes: List[Node], x: Node, v: np.ndarray) -> Dict[int, np.ndarray]:
    """Every node's value (float64) when x takes the value v; ``nodes`` are x … in topological order."""
    values = {x.id: np.asarray(v, dtype=np.float64)}
    for n in nodes[1:]:
        args = [values.get(p.id, p.value).astype(np.float64) for p in n.parents]
        with np.errstate(all="ignore"):
            values[n.id] = np.asarray(n.op.forward(*args, **_params64(n)), dtype=np.float64)
    return values


def _vjp_gradient(l: Node, a: Node, values: Dict[int, np.ndarray], hold: Sequence[Node]) -> np.ndarray:
    """dl/da by the hand-written VJPs, reading each node's value from ``values`` where it has one."""
    nodes = between(l, a, hold)
    if not nodes:
        return np.zeros(a.shape)
    val = lambda n: values.get(n.id, n.value.astype(np.float64))  # noqa: E731

    def pull(n: Node, p: Node, g: np.ndarray) -> np.ndarray:
        args = [val(q) for q in n.parents]
        with op_errors(n.op, n.parents, "VJP"):
            return sum(np.asarray(n.op.vjp(i, g, val(n), *args, **_params64(n)), dtype=np.float64).reshape(p.shape)
                       for i, q in enumerate(n.parents) if q.id == p.id)

    with np.errstate(all="ignore"):
        return np.asarray(reverse_sweep(nodes, l, a, np.ones(l.shape), pull), dtype=np.float64).reshape(a.shape)


def gradient_at(l: Node, x: Node, v: np.ndarray, hold: Sequence[Node] = ()) -> np.ndarray:
    """dl/dx at x = v (float64), by the hand-written VJPs on recomputed values: no form is involved."""
    return _vjp_gradient(l, x, values_at(between(l, x, hold) or [x], x, v), hold)


def gradient_at_shifted(l: Node, a: Node, b: Node, v: np.ndarray, hold: Sequence[Node] = ()) -> np.ndarray:
    """dl/da when b takes the value v (float64), by the hand-written VJPs: a column block of a cross Hessian."""
    return _vjp_gradient(l, a, values_at(between(l, b, hold) or [b], b, v), hold)


def jacobian_numeric(y: Node, x: Node, hold: Sequence[Node] = (), step: Optional[float] = None) -> np.ndarray:
    """Dense dy/dx (float64) by central differences; ``step`` overrides the relative step h."""
    J = memory.zeros(y.shape + x.shape, np.float64, f"jacobian d{y.name}/d{x.name} (numeric route)")
    f = function_of(y, x, hold)
    x0 = x.value.astype(np.float64)
    cols = J.reshape(y.size, x.size)
    xp = x0.copy().reshape(-1)
    pace = Pace(2 * x.size, f"jacobian d{y.name}/d{x.name} (numeric route)")
    for j in range(x.size):
        h = (step or _H) * max(1.0, abs(x0.flat[j]))
        xp[j] = x0.flat[j] + h
        up = f(xp.reshape(x.shape))
        xp[j] = x0.flat[j] - h
        down = f(xp.reshape(x.shape))
        xp[j] = x0.flat[j]
        cols[:, j] = ((up - down) / (2 * h)).reshape(-1)
        pace.tick(2)
    return J
