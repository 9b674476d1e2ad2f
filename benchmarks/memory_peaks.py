"""Peak memory of one call against the memory limit, per route, over random graphs.

For each graph and route, the tightest limit the route accepts is found by
bisection (below it the route refuses with JacobianTooLarge before allocating);
at that limit the call runs under tracemalloc and its peak of live bytes is
reported as a ratio to the limit. A ratio ≤ 1 means the limit bounds the call.

Run: ``python benchmarks/memory_peaks.py [--graphs 20] [--seed 0]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tracemalloc
from typing import Callable, Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jacobians as jx  # noqa: E402

ROUTES = ("explicit", "factored", "vjp", "numeric")
HESSIAN_ROUTES = ("factored", "explicit", "hvp", "numeric")


def random_graph(rng: np.random.Generator):
    """y(x): a few layers of matmul, elementwise ops, broadcasting adds and a reduction or not."""
    n = int(rng.integers(20, 40))  # Jacobians of a few MB: arrays, not Python objects, set the peak
    m = int(rng.integers(10, 20))
    x = jx.var(rng.standard_normal((n, m)), name="x")
    h = x
    for _ in range(int(rng.integers(1, 4))):
        op = rng.integers(0, 5)
        if op == 0:
            h = rng.standard_normal((int(rng.integers(15, 40)), h.shape[0])) @ h
        elif op == 1:
            h = jx.tanh(h)
        elif op == 2:
            h = h * jx.sin(h)
        elif op == 3:
            h = h + rng.standard_normal(h.shape[-1])
        else:
            h = jx.softmax(h, axis=-1)
    y = jx.sum(h * h) if rng.integers(0, 2) else h
    return y, x


def peak_at(limit: int, call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        with jx.memory_limit(limit):
            call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def tightest_limit(call: Callable[[], object], hi: int = 1 << 31) -> int:
    lo = 1024
    with jx.memory_limit(hi):
        call()
    while hi - lo > max(lo // 64, 1024):
        mid = (lo + hi) // 2
        try:
            with jx.memory_limit(mid):
                call()
            hi = mid
        except jx.JacobianTooLarge:
            lo = mid
    return hi


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--graphs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    ratios: Dict[str, List[float]] = {r: [] for r in ROUTES}
    ratios.update({f"hessian {r}": [] for r in HESSIAN_ROUTES})
    for _ in range(args.graphs):
        y, x = random_graph(rng)
        calls = {r: (lambda r=r: jx.grad(y, x, method=r)) if y.size == 1 else
                 (lambda r=r: jx.jacobian(y, x, method=r)) for r in ROUTES}
        if y.size == 1:  # and the Hessian of a scalar, on a slice of x small enough for the numeric route
            x2 = x[:16]
            y2 = jx.sum(jx.tanh(x2 @ rng.standard_normal((x2.shape[1], 7))) ** 2)
            calls.update({f"hessian {r}": (lambda r=r: jx.hessian(y2, x2, method=r)) for r in HESSIAN_ROUTES})
        for route, call in calls.items():
            limit = tightest_limit(call)
            ratios[route].append(peak_at(limit, call) / limit)
    print(f"peak of live bytes / the tightest limit each route accepts, over {args.graphs} random graphs "
          f"(Hessians: on the scalar ones):")
    for route, r in ratios.items():
        print(f"  {route:<17} median {np.median(r):.2f}, max {np.max(r):.2f}, above 1: {sum(v > 1 for v in r)} "
              f"of {len(r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
