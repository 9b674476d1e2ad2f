"""An op case of the one table: the op, how to call it, input shapes and domain, a numpy reference."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import numpy as np


@dataclass(frozen=True)
class Case:
    op: str
    call: Callable  # (*leaves) -> node
    shapes: Tuple[Tuple[int, ...], ...]
    reference: Callable  # (*arrays) -> ndarray
    domain: object = "real"  # real | positive | away_from_zero | well_conditioned | spd | symmetric | probability, or f(shape, rng)
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.op}{'-' + self.note if self.note else ''}"


def draw(shape: Tuple[int, ...], domain, rng: np.random.Generator) -> np.ndarray:
    """Data of ``shape`` from a named domain, or from ``domain(shape, rng)`` when it is a function.

    Square matrices (and stacks of them, (..., n, n)) for ``well_conditioned``, ``spd``
    (symmetric positive definite) and ``symmetric`` (distinct eigenvalues).
    """
    if callable(domain):
        return domain(shape, rng)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "away_from_zero":
        return rng.choice([-1, 1], shape) * rng.uniform(0.2, 1.5, shape)
    square = len(shape) >= 2 and shape[-1] == shape[-2]
    if domain == "well_conditioned" and square:
        return np.eye(shape[-1]) * 2.0 + 0.3 * rng.standard_normal(shape)  # right-hand sides stay normal
    if domain == "spd" and square:
        a = rng.standard_normal(shape)
        return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])
    if domain == "symmetric" and square:
        a = 0.1 * rng.standard_normal(shape)
        return np.diag(np.arange(1.0, shape[-1] + 1)) * 1.5 + a + np.swapaxes(a, -1, -2)
    if domain == "probability":
        p = rng.uniform(0.1, 1.0, shape)
        return p / p.sum(axis=-1, keepdims=True)
    return rng.standard_normal(shape)
