"""Planning time of ``jx.plan(..., "optimal")`` against graph size, and the FLOPs it plans.

The families issue #14 names: a chain of elementwise ops (2 … 2000 ops), an
MLP chain of width 16 (2 … 64 layers, tanh between matmuls), a sum of k
products (k paths from x to y), and seed 1's dY/dX for Y = (X Xᵀ) X (D = N,
three paths; only planned, never run, so D = 96 is cheap). Each row is the median of ``--repeats``
timed calls of ``jx.plan`` on a graph built once, and the planned FLOPs of the
optimal order over the better pure order (≤ 1 means never worse).

Run: ``python benchmarks/planning.py [--repeats 5]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, List, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import jacobians as jx  # noqa: E402


def elementwise_chain(n: int) -> Tuple[object, object]:
    """x of length 3 negated n times, then summed: n + 1 ops."""
    x = jx.var(np.ones(3), name="x")
    y = x
    for _ in range(n):
        y = -y
    return jx.sum(y), x


def mlp_chain(layers: int, width: int = 16) -> Tuple[object, object]:
    """tanh(W_k ⋯ tanh(W_1 x)): 2 ops per layer, y of length ``width``."""
    rng = np.random.default_rng(layers)
    x = jx.var(rng.standard_normal(width), name="x")
    h = x
    for _ in range(layers):
        h = jx.tanh(rng.standard_normal((width, width)) / 4 @ h)
    return h, x


def sum_of_products(k: int, width: int = 8) -> Tuple[object, object]:
    """Σ_i A_i x ⊙ B_i x: 2k paths from x to y."""
    rng = np.random.default_rng(k)
    x = jx.var(rng.standard_normal(width), name="x")
    terms = [(rng.standard_normal((width, width)) @ x) * (rng.standard_normal((width, width)) @ x) for _ in range(k)]
    y = terms[0]
    for t in terms[1:]:
        y = y + t
    return y, x


def seed_one(d: int) -> Tuple[object, object]:
    """Y = (X Xᵀ) X w.r.t. X, D = N = d: three paths, two of them through W = X Xᵀ."""
    x = jx.var(np.ones((d, d)), name="X")
    return (x @ x.T) @ x, x


FAMILIES: List[Tuple[str, Callable, Tuple[int, ...]]] = [
    ("elementwise chain (ops)", elementwise_chain, (2, 32, 64, 200, 2000)),
    ("MLP chain, width 16 (layers)", mlp_chain, (2, 8, 32, 64)),
    ("sum of products (products)", sum_of_products, (2, 10, 50)),
    ("seed 1 dY/dX, D = N", seed_one, (4, 64, 96)),
]


def run(repeats: int) -> List[dict]:
    rows = []
    for family, build, sizes in FAMILIES:
        for n in sizes:
            y, x = build(n)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                p = jx.plan(y, x, "optimal")
                times.append(time.perf_counter() - t0)
            pure = min(jx.plan(y, x, o).flops for o in ("reverse", "forward"))
            rows.append({"family": family, "n": n, "seconds": float(np.median(times)), "flops": p.flops,
                         "over_best_pure": p.flops / pure if pure else 1.0})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed plans per graph (median reported)")
    args = ap.parse_args(argv)
    print("| graph | n | plan time (median) | optimal FLOPs / better pure order |")
    print("|---|---|---|---|")
    for r in run(max(1, args.repeats)):
        print(f"| {r['family']} | {r['n']} | {r['seconds'] * 1e3:.2f} ms | {r['over_best_pure']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
