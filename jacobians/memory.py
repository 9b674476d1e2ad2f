"""Memory guard: every dense Jacobian is priced from its shape before it is allocated.

A 1000×1000 matmul has a Jacobian of 10¹² entries (8 TB in float64). Asking for
one must give a clear refusal in milliseconds, not a frozen machine, so every
explicit allocation in the package goes through :func:`zeros` or
:func:`check_bytes`.

The limit defaults to a quarter of physical memory. ``JACOBIANS_MEMORY_LIMIT``
(bytes, or with a suffix K/M/G/T) or :func:`set_memory_limit` change it.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import numpy as np

__all__ = ["JacobianTooLarge", "set_memory_limit", "get_memory_limit", "check_bytes", "zeros"]

_DEFAULT_FRACTION = 0.25
_limit_override: Optional[int] = None


class JacobianTooLarge(MemoryError):
    """An explicit Jacobian (or a planned intermediate) would exceed the memory limit."""


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    scale = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * scale)
    except ValueError:
        raise ValueError(
            f"JACOBIANS_MEMORY_LIMIT={text!r} is not a byte count; "
            "use a number of bytes, optionally with K, M, G or T (e.g. 4G)"
        ) from None


def get_memory_limit() -> int:
    """The byte limit in force: set_memory_limit, else the environment, else 1/4 of RAM.

    >>> get_memory_limit() > 0
    True
    """
    if _limit_override is not None:
        return _limit_override
    env = os.environ.get("JACOBIANS_MEMORY_LIMIT")
    if env:
        return _parse_bytes(env)
    return int(_physical_memory() * _DEFAULT_FRACTION)


def set_memory_limit(nbytes: Optional[int]) -> None:
    """Set the largest explicit Jacobian or intermediate, in bytes (None restores the default).

    >>> set_memory_limit(2**20); get_memory_limit()
    1048576
    >>> set_memory_limit(None)
    """
    global _limit_override
    if nbytes is not None and (not isinstance(nbytes, (int, np.integer)) or nbytes <= 0):
        raise ValueError(f"set_memory_limit needs a positive number of bytes or None, got {nbytes!r}")
    _limit_override = None if nbytes is None else int(nbytes)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def check_bytes(shape: Sequence[int], dtype, what: str) -> int:
    """Raise JacobianTooLarge if an array of ``shape`` and ``dtype`` exceeds the limit.

    ``what`` names the op or contraction step, for the message. Returns the bytes.
    """
    nbytes = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    limit = get_memory_limit()
    if nbytes > limit:
        raise JacobianTooLarge(
            f"{what}: the explicit array of shape {tuple(int(s) for s in shape)} ({np.dtype(dtype).name}) "
            f"needs {_human(nbytes)} ({nbytes} bytes), above the memory limit of {_human(limit)}. "
            'Use method="vjp" (never builds a Jacobian), use smaller sizes, or raise the limit '
            "with jx.set_memory_limit(nbytes) or JACOBIANS_MEMORY_LIMIT."
        )
    return nbytes


def zeros(shape: Sequence[int], dtype, what: str) -> np.ndarray:
    """A zeroed C-ordered array, after the memory guard has priced it."""
    check_bytes(shape, dtype, what)
    return np.zeros(tuple(shape), dtype=dtype)
