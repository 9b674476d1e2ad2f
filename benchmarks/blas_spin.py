"""What a BLAS call leaves behind: a memory-bound write right after a matrix product, against the same write
after the BLAS threads have gone idle.

OpenBLAS keeps its worker threads spinning for a while after a threaded call
(``OPENBLAS_THREAD_TIMEOUT`` sets how long). On a machine with few cores they
compete with whatever runs next — here the write floor of the benchmarks,
``np.empty(shape).fill(1.0)`` of a 2048×2048 array, one C call — and the
factored route's tiled transposed copy, many small numpy calls. Each pair
times the work once right after a 1024×1024 matrix product and once after
``--idle`` seconds of sleep; the report is the median of the pairs' ratios
(after / idle).

Run: ``python benchmarks/blas_spin.py [--pairs 21] [--idle 0.3]``; compare with
``OPENBLAS_THREAD_TIMEOUT=1 python benchmarks/blas_spin.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _write(shape) -> float:
    t0 = time.perf_counter()
    np.empty(shape).fill(1.0)
    return time.perf_counter() - t0


def _transpose(src) -> float:
    """The factored route's tiled transposed copy (kernel.transfer): many small numpy calls."""
    from jacobians.kernel import transfer

    t0 = time.perf_counter()
    transfer(np.empty(src.shape), src.T)
    return time.perf_counter() - t0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=21)
    p.add_argument("--idle", type=float, default=0.3, help="seconds of sleep before the idle write")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1024, 1024)), rng.standard_normal((1024, 1024))
    shape = (2048, 2048)
    src = rng.standard_normal(shape)
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    print(f"{os.cpu_count()} CPUs; BLAS environment: {env or 'none set'}")
    for what, run in ((f"fill of a fresh {shape} array", lambda: _write(shape)),
                      (f"tiled transposed copy of {shape} (kernel.transfer)", lambda: _transpose(src))):
        after, idle = [], []
        run()
        for _ in range(args.pairs):
            a @ b  # a threaded GEMM: OpenBLAS wakes its workers
            after.append(run())
            time.sleep(args.idle)
            idle.append(run())
        ratios = [x / y for x, y in zip(after, idle)]
        print(f"{what}, median of {args.pairs} pairs: right after a 1024² GEMM {np.median(after) * 1e3:.2f} ms, "
              f"after {args.idle:g} s idle {np.median(idle) * 1e3:.2f} ms; paired ratio {np.median(ratios):.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
