"""Timing, peak memory, growth exponents and a text progress bar (numpy only).

>>> t = measure(lambda: sum(range(100)), repeats=3, warmup=1)
>>> t.median > 0 and len(t.times) == 3 and len(t.warmup) == 1
True
>>> round(fit_exponent([8, 16, 32], [1.0, 8.0, 64.0]), 6)
3.0
>>> a, b, r = measure_paired(lambda: sum(range(200)), lambda: sum(range(100)), repeats=3)
>>> len(r) == 3 and all(x > 0 for x in r)
True
"""
from __future__ import annotations

import math
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, TextIO, Tuple

__all__ = ["Timing", "measure", "measure_paired", "median", "peak_bytes", "fit_exponent", "Progress"]


@dataclass
class Timing:
    """Wall times in seconds: ``warmup`` calls (not counted), then the timed ``times``."""

    times: List[float]
    warmup: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        s = sorted(self.times)
        mid = len(s) // 2
        return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])

    def as_dict(self) -> Dict[str, object]:
        return {"median_s": self.median, "min_s": min(self.times), "times_s": self.times,
                "warmup_s": self.warmup, "repeats": len(self.times)}


def measure(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, budget: float = 30.0,
            min_repeats: int = 3) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then up to ``repeats`` timed ones.

    Timing stops early once the timed calls have used ``budget`` seconds, but
    never before ``min(min_repeats, repeats)`` calls. Report the median.
    """
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    times: List[float] = []
    floor = min(min_repeats, repeats)
    while len(times) < repeats:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= floor and sum(times) > budget:
            break
    return Timing(times, warm)


def measure_paired(fn: Callable[[], object], ref: Callable[[], object], repeats: int = 5, warmup: int = 1,
                   budget: float = 30.0, min_repeats: int = 3) -> Tuple[Timing, Timing, List[float]]:
    """Time ``fn`` and a yardstick ``ref`` alternately; also the ratios ref_time / fn_time, pair by pair.

    On a shared machine the load drifts; a ratio taken from two calls made
    back to back sees the same load, so the median of the pairs' ratios is
    steadier than the ratio of two medians taken minutes apart.
    """
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        ref()
        warm.append(time.perf_counter() - t0)
    tf: List[float] = []
    tr: List[float] = []
    floor = min(min_repeats, repeats)
    while len(tf) < repeats:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        ref()
        t2 = time.perf_counter()
        tf.append(t1 - t0)
        tr.append(t2 - t1)
        if len(tf) >= floor and sum(tf) + sum(tr) > budget:
            break
    return Timing(tf, warm), Timing(tr), [b / a for a, b in zip(tf, tr)]


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    return Timing(list(values)).median


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated through Python's allocators (numpy arrays included) during ``fn()``.

    Memory that JAX or PyTorch allocate in their own C++ runtimes is not seen.

    >>> import numpy as np
    >>> peak_bytes(lambda: np.ones(1000)) >= 8000
    True
    """
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fit_exponent(sizes: Sequence[float], values: Sequence[Optional[float]]) -> Optional[float]:
    """Least-squares slope of log(value) against log(size): the p of value ∝ size^p.

    Sizes whose value is missing or not positive are left out; fewer than two
    points give None.
    """
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if v is not None and v > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


class Progress:
    """A one-line text progress bar on a terminal; one line per step otherwise (logs).

    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress(2, stream=out)
    >>> p.step("a"); p.step("b"); p.done()
    >>> "2/2" in out.getvalue()
    True
    """

    def __init__(self, total: int, stream: Optional[TextIO] = None, enabled: bool = True, width: int = 24):
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.count = 0
        self.start = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def step(self, label: str) -> None:
        """Announce the next step (the bar counts it as started)."""
        self.count = min(self.count + 1, self.total)
        if not self.enabled:
            return
        filled = round(self.width * self.count / self.total)
        elapsed = time.perf_counter() - self.start
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {self.count}/{self.total} "
                f"{int(elapsed // 60)}:{int(elapsed % 60):02d}  {label}")
        if self.tty:
            self.stream.write("\r" + line[:110].ljust(110))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
