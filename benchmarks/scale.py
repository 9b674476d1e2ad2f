"""A Jacobian 4× the memory limit, streamed to zarr in blocks: ``python benchmarks/scale.py``.

The seed-1 graph at D = 160 (X of D × D, W = X Xᵀ, Y = W X): dY/dX has D⁴
entries, 5.2 GB in float64, under a 1 GiB memory limit. The in-memory route
refuses it; ``jacobian(Y, X, chunks=...)`` writes it to zarr block by block.
Measured in one process, in turn (``--repeats`` rounds, each starting one
further along, every store removed after it is timed), each written to zarr
with the same chunks, dtype and compressor, then ``os.sync()``:

* the storage floor: ``da.full``, a constant (nothing to compute; with a
  compressor, nothing much to store either);
* the noise floor: every block a copy of one block of random numbers
  (nothing to compute, but as incompressible as the Jacobian);
* the Jacobian: the lazy dask array;

throughput in bytes of the array per second, both to the page cache (when
``to_zarr`` returns) and to disk (after the sync), and their ratio (medians
over the rounds, and the best round; after a warm-up round that is not
counted: the first write of a process pays for the page cache's state). Also the blocks alone,
computed and dropped, for the compute rate the writes hide. Peak RSS
of the process (``resource.getrusage``) against 1.5 × the limit. Random blocks
read back from zarr are checked against the factored route's entries for those
blocks, ``X_cb X_ad + δ_ca (XᵀX)_bd + W_ca δ_db``, computed directly on the
block's index ranges; and the in-memory factored route at the largest D whose
Jacobian fits the limit is timed in a subprocess (so its memory does not count
here), for its throughput per byte. Needs ``pip install ".[scale]"``.

>>> closed_form(np.eye(2), ((0, 1), (0, 2), (0, 1), (0, 2))).shape
(1, 2, 1, 2)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # benchmark this checkout
    sys.path.insert(0, ROOT)

import jacobians as jx  # noqa: E402
from jacobians import memory  # noqa: E402
from jacobians.api import jacobian  # noqa: E402

GB = 1e9
GIB = 2**30
Ranges = Tuple[Tuple[int, int], ...]


def peak_rss() -> int:
    """The process's peak resident set size so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def seed1(D: int) -> Tuple[Any, Any, Any]:
    """X (D × D, seed 1), W = X Xᵀ, Y = W X: nodes."""
    X = jx.var(np.random.default_rng(1).standard_normal((D, D)), name="X")
    W = X @ X.T
    return X, W, W @ X


def closed_form(Xv: np.ndarray, ranges: Ranges) -> np.ndarray:
    """dY[c,d]/dX[a,b] = X_cb X_ad + δ_ca (XᵀX)_bd + W_ca δ_db on the block ``ranges`` (the factored products)."""
    (c0, c1), (d0, d1), (a0, a1), (b0, b1) = ranges
    c, d, a, b = np.ix_(np.arange(c0, c1), np.arange(d0, d1), np.arange(a0, a1), np.arange(b0, b1))
    XtX, W = Xv.T @ Xv, Xv @ Xv.T
    return Xv[c, b] * Xv[a, d] + (c == a) * XtX[b, d] + W[c, a] * (d == b)


def _zarr_kwargs(compressor: str) -> Dict[str, Any]:
    """The same for every array written: the compressor, and no check for chunks equal to the fill value.

    zarr compares each chunk with its fill value to skip empty ones; that check
    costs about five times more on a constant chunk than on the Jacobian's, and
    would slow the floor down.
    """
    kw: Dict[str, Any] = {"config": {"write_empty_chunks": True}}
    if compressor == "none":
        kw["compressors"] = None
    return kw


def _write(arr: Any, path: str, compressor: str) -> Tuple[float, float]:
    """Seconds until ``to_zarr`` returns, and until the data is on disk (``os.sync``); the store is then removed."""
    shutil.rmtree(path, ignore_errors=True)
    os.sync()
    t0 = time.perf_counter()
    arr.to_zarr(path, **_zarr_kwargs(compressor))
    t1 = time.perf_counter()
    os.sync()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0


def _du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def in_memory_rate(D: int, limit: str) -> Dict[str, float]:
    """The in-memory factored route at size D, timed in a subprocess (best of 3): seconds and bytes per second."""
    code = (
        "import sys, time, json, numpy as np; sys.path.insert(0, %r)\n"
        "import jacobians as jx\n"
        "jx.set_memory_limit(%r)\n"
        "X = jx.var(np.random.default_rng(1).standard_normal((%d, %d))); Y = (X @ X.T) @ X\n"
        "jx.jacobian(Y, X)\n"
        "ts = []\n"
        "for _ in range(3):\n"
        "    t = time.perf_counter(); J = jx.jacobian(Y, X); ts.append(time.perf_counter() - t); del J\n"
        "print(json.dumps(min(ts)))\n" % (ROOT, limit, D, D))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = float(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"D": D, "bytes": D ** 4 * 8, "seconds": seconds, "bytes_per_s": D ** 4 * 8 / seconds}


def run(D: int, limit: str, chunks: Optional[str], compressor: str, repeats: int, blocks: int, where: str,
        keep: bool, threads: int, warmup: int = 1) -> Dict[str, Any]:
    import dask
    import dask.array as da

    from jacobians.scale import suggested_chunks

    nbytes = D ** 4 * 8
    free = shutil.disk_usage(where).free
    if free < 2.2 * nbytes:
        raise SystemExit(f"{where}: {free / GB:.1f} GB free, the run keeps two {nbytes / GB:.1f} GB arrays; "
                         "use a smaller --D or another --dir")
    memory.set_memory_limit(limit)
    lim = memory.get_memory_limit()
    chunks = chunks or suggested_chunks(lim)
    X, W, Y = seed1(D)
    rss0 = peak_rss()
    try:
        jacobian(Y, X)
        refused = ""
    except memory.JacobianTooLarge as exc:
        refused = str(exc).split(". ")[0]
    J = jacobian(Y, X, chunks=chunks)
    noise = np.random.default_rng(0).standard_normal(tuple(c[0] for c in J.chunks))
    arrays = {  # the floors: the same shape, chunks, dtype and compressor, nothing to compute
        "constants": da.full(J.shape, 1.0, chunks=J.chunks, dtype=J.dtype),
        "noise": da.full(J.shape, 1.0, chunks=J.chunks, dtype=J.dtype).map_blocks(
            lambda b: noise[tuple(slice(0, n) for n in b.shape)].copy(), dtype=J.dtype),
        "jacobian": J,
    }
    base = tempfile.mkdtemp(prefix="jx-scale-", dir=where)
    jpath = os.path.join(base, "J.zarr")
    rounds: List[Dict[str, float]] = []
    try:
        with dask.config.set(scheduler="threads", num_workers=threads):
            names = list(arrays)
            for k in range(warmup + repeats):  # in turn, each round starting one further: the same disk for all
                times: Dict[str, float] = {}
                for name in names[k % 3:] + names[:k % 3]:
                    path = jpath if name == "jacobian" else os.path.join(base, name + ".zarr")
                    times[name], times[name + "_synced"] = _write(arrays[name], path, compressor)
                    shutil.rmtree(path, ignore_errors=True)
                if k >= warmup:
                    rounds.append(times)
            _write(J, jpath, compressor)  # once more, kept for reading back
            t0 = time.perf_counter()  # the blocks alone: each computed, then dropped
            J.map_blocks(lambda b: np.full((1,) * b.ndim, b.flat[0]),  # a copy: a view would keep the block
                         chunks=tuple((1,) * len(c) for c in J.chunks)).compute()
            compute_s = time.perf_counter() - t0
        stored = _du(jpath)
        rss_write = peak_rss()
        back = da.from_zarr(jpath)
        rng = np.random.default_rng(0)
        checked = []
        Xv = X.value
        for _ in range(blocks):
            idx = tuple(int(rng.integers(n)) for n in back.numblocks)
            starts = [int(np.sum(c[:i])) for c, i in zip(back.chunks, idx)]
            ranges = tuple((s, s + c[i]) for s, c, i in zip(starts, back.chunks, idx))
            got = back.blocks[idx].compute()
            err = float(np.max(np.abs(got - closed_form(Xv, ranges))))
            checked.append({"block": idx, "ranges": ranges, "max_abs_err": err})
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    median = {k: float(np.median([r[k] for r in rounds])) for k in rounds[0]}
    best = {k: float(min(r[k] for r in rounds)) for k in rounds[0]}
    fit = max(d for d in range(2, D + 1) if d ** 4 * 8 <= lim)
    return {
        "D": D, "shape": J.shape, "bytes": nbytes, "limit": lim, "times_limit": nbytes / lim,
        "chunks": chunks, "chunk_shape": tuple(c[0] for c in J.chunks), "blocks": J.npartitions,
        "compressor": compressor, "threads": threads, "warmup": warmup, "stored_bytes": stored, "refused": refused,
        "rounds": rounds, "median_s": median, "best_s": best,
        "throughput": {k: nbytes / v for k, v in median.items()},
        "throughput_best": {k: nbytes / v for k, v in best.items()},
        "ratio": {f: median[f] / median["jacobian"] for f in ("constants", "noise")},
        "ratio_synced": {f: median[f + "_synced"] / median["jacobian_synced"] for f in ("constants", "noise")},
        "ratio_best": {f: best[f] / best["jacobian"] for f in ("constants", "noise")},
        "compute_only": nbytes / compute_s,
        "peak_rss_start": rss0, "peak_rss": rss_write, "peak_rss_over_limit": rss_write / lim,
        "checked": checked, "max_abs_err": max(c["max_abs_err"] for c in checked),
        "in_memory": in_memory_rate(fit, limit),
    }


def report(r: Dict[str, Any]) -> str:
    """The figures as text, one line each."""
    t, q, qs, tb = r["throughput"], r["ratio"], r["ratio_synced"], r["throughput_best"]
    rows = [("storage floor: constants", "constants"), ("storage floor: noise", "noise"), ("the Jacobian", "jacobian")]
    lines = [
        f"seed 1 at D = {r['D']}: dY/dX of shape {r['shape']}, {r['bytes'] / GB:.2f} GB "
        f"= {r['times_limit']:.1f}× the memory limit of {r['limit'] / GIB:.2f} GiB",
        f"  in memory: {r['refused'] or 'not refused'}",
        f"  chunks={r['chunks']!r}: blocks of {r['chunk_shape']}, {r['blocks']} tasks, {r['threads']} threads, "
        f"compressor {r['compressor']}, {r['stored_bytes'] / GB:.2f} GB stored",
        f"  medians of {len(r['rounds'])} rounds (after {r['warmup']} uncounted), the three written in turn "
        "(best round in brackets):",
    ] + [f"  {label:<26} {t[k] / GB:5.2f} ({tb[k] / GB:.2f}) GB/s to the page cache, "
         f"{t[k + '_synced'] / GB:5.2f} ({tb[k + '_synced'] / GB:.2f}) GB/s to disk" for label, k in rows] + [
        f"  Jacobian / constants floor: {q['constants']:.2f} (page cache), {qs['constants']:.2f} (disk)"
        "   [target ≥ 0.5]",
        f"  Jacobian / noise floor:     {q['noise']:.2f} (page cache), {qs['noise']:.2f} (disk)",
        f"  best rounds: Jacobian / constants {r['ratio_best']['constants']:.2f}, "
        f"/ noise {r['ratio_best']['noise']:.2f} (page cache)",
        f"  the blocks alone (computed, not written): {r['compute_only'] / GB:.2f} GB/s",
        f"  peak RSS {r['peak_rss'] / GIB:.2f} GiB = {r['peak_rss_over_limit']:.2f}× the limit   [target ≤ 1.5]"
        f" (at start {r['peak_rss_start'] / GIB:.2f} GiB)",
        f"  {len(r['checked'])} random blocks read back, max |error| against the factored entries "
        f"{r['max_abs_err']:.1e}",
        f"  in-memory factored route at D = {r['in_memory']['D']} ({r['in_memory']['bytes'] / GB:.2f} GB): "
        f"{r['in_memory']['bytes_per_s'] / GB:.2f} GB/s; the Jacobian to zarr / in memory: "
        f"{t['jacobian'] / r['in_memory']['bytes_per_s']:.2f}",
    ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/scale.py", description=__doc__.splitlines()[0])
    p.add_argument("--D", type=int, default=160, help="side of X (default 160: a 5.2 GB Jacobian)")
    p.add_argument("--limit", default="1G", help="memory limit (default 1G)")
    p.add_argument("--chunks", help="chunk size in dask's notation (default: jacobians.scale.suggested_chunks)")
    p.add_argument("--compressor", choices=("none", "default"), default="none",
                   help="zarr compressors: none, or zarr's default (zstd) (default none)")
    p.add_argument("--repeats", type=int, default=5, help="counted rounds of the three writes (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="uncounted rounds first (default 1)")
    p.add_argument("--blocks", type=int, default=4, help="random blocks to read back and check (default 4)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="dask threads (default: the cores)")
    p.add_argument("--dir", default=tempfile.gettempdir(), help="where the zarr stores go (default the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the zarr stores")
    p.add_argument("--json", help="also write the figures to this file")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        import dask.array  # noqa: F401
        import zarr  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"benchmarks/scale.py needs dask and zarr ({exc}): python -m pip install \".[scale]\"")
    r = run(args.D, args.limit, args.chunks, args.compressor, args.repeats, args.blocks, args.dir, args.keep,
            args.threads, args.warmup)
    print(report(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
