"""What the numbers were measured on, and the machine's own yardsticks.

* :func:`facts` — CPU count and model, memory, load, Python, numpy and its BLAS,
  opt_einsum, the peers' versions, the commit of jacobians;
* :func:`write_bandwidth` — bytes per second of ``ndarray.fill`` into a
  preallocated (already faulted-in) array, and of a fill into fresh memory
  (where the kernel must first map and zero every page);
* :func:`gemm_rate` — FLOP/s of a float64 square matrix product.

>>> bw = write_bandwidth(2**20, repeats=2)
>>> bw["prefaulted_bytes_per_s"] > 0 and bw["fresh_bytes_per_s"] > 0
True
>>> gemm_rate(64, repeats=2)["flops_per_s"] > 0
True
"""
from __future__ import annotations

import contextlib
import datetime
import importlib
import io
import mmap
import os
import platform
import subprocess
import sys
from typing import Dict, Optional, Tuple

import numpy as np

from .timing import measure

__all__ = ["facts", "write_bandwidth", "gemm_rate", "peer_versions"]

PEERS = ("jax", "jaxlib", "torch", "autograd", "matplotlib")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_bytes() -> Optional[int]:
    """Physical memory in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _blas() -> Dict[str, object]:
    """numpy's BLAS/LAPACK build configuration (name, version, OpenBLAS settings)."""
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.25
        deps = cfg.get("Build Dependencies", {})
        return {k: deps.get(k, {}) for k in ("blas", "lapack")}
    except TypeError:  # older numpy prints only
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            np.show_config()
        return {"text": buf.getvalue()}


def _threadpools() -> object:
    """The BLAS and OpenMP libraries loaded in this process, with their kernel (architecture) and thread counts.

    From threadpoolctl (the peers extra); a sentence saying how to get it otherwise.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl is not installed (python -m pip install '.[peers]')"
    keys = ("user_api", "internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")
    return [{k: pool[k] for k in keys if k in pool} for pool in threadpool_info()]


def peer_versions() -> Dict[str, Optional[str]]:
    """Version of each optional peer package, None when it is not installed."""
    out: Dict[str, Optional[str]] = {}
    for name in PEERS:
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:
            out[name] = None
    return out


def _git_commit(root: str) -> Optional[str]:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "jacobians", "benchmarks"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return res.stdout.strip() + (" (with uncommitted changes)" if dirty else "") if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


_MAPS: Dict[int, Tuple[mmap.mmap, np.ndarray]] = {}  # one private anonymous mapping per floor size


def fresh_fill(shape: Tuple[int, ...]) -> None:
    """The fresh-memory write floor: fill an array of ``shape`` (float64) on pages faulted in for this call.

    Each size has one private anonymous mapping (huge pages advised from 4 MiB,
    as numpy asks for its arrays). A call fills it and then hands its pages
    back to the kernel (``MADV_DONTNEED``), so the next call faults in and
    zeroes every page again: fresh memory each time, as a route's new result is.

    Two simpler floors are unstable on this project's virtual machines.
    ``np.empty(shape).fill(1.0)`` is fresh memory only sometimes: glibc raises
    its mmap threshold after a large block is freed, so it may reuse pages
    already mapped and fill 4-5x faster. A new ``mmap`` per call was the floor
    until 2026-12: paired with a call that leaves the kernel's recently freed
    pages in use (JAX, whose allocator keeps them; or, before it was fixed, any
    transform result kept alive by a reference cycle), it landed on pages the
    host had reclaimed and took several times longer, by an amount that varied
    from run to run. Refaulting one mapping does not depend on what ran before.
    """
    n = max(int(np.prod(shape)), 1)
    if n not in _MAPS:
        buf = mmap.mmap(-1, n * 8, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # private, as malloc maps
        if n * 8 >= 1 << 22 and hasattr(mmap, "MADV_HUGEPAGE"):
            buf.madvise(mmap.MADV_HUGEPAGE)  # as numpy asks for every array of 4 MiB or more
        _MAPS[n] = (buf, np.frombuffer(buf, dtype=np.float64, count=n))
    buf, a = _MAPS[n]
    a.fill(1.0)
    buf.madvise(mmap.MADV_DONTNEED)  # the pages go back: the next call faults in zeroed ones


PRETOUCH = 4 << 30  # bytes a section that times against the write floor writes once first (see pretouch)


def pretouch(tiny: bool = False) -> int:
    """Write min(PRETOUCH, RAM/4) bytes once and free them; the bytes written (0 for a tiny run).

    On a virtual machine whose host backs guest memory on first use (this
    project's Firecracker VMs), the first write to never-used memory costs ~3 s
    per GiB, and a floor call (:func:`fresh_fill`) or a result that lands there
    runs 10-40x slower than the same call on backed memory: a fact about the VM,
    which a ratio to the floor must not depend on
    (``python benchmarks/full_jacobians.py --stability seed1 --size 96`` with and without ``--pretouch 4``).
    """
    n = 0 if tiny else min(PRETOUCH, (memory_bytes() or 0) // 4)
    if n:
        fresh_fill((n // 8,))
    return n


def facts() -> Dict[str, object]:
    """Machine and software facts recorded with every run."""
    import opt_einsum

    jx = importlib.import_module("jacobians")
    root = os.path.dirname(os.path.dirname(os.path.abspath(jx.__file__)))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": _cpu_model(),
        "memory_bytes": memory_bytes(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numpy_blas": _blas(),
        "threadpools": _threadpools(),
        "opt_einsum": opt_einsum.__version__,
        "jacobians": getattr(jx, "__version__", "?"),
        "jacobians_path": os.path.dirname(jx.__file__),
        "jacobians_commit": _git_commit(root),
        "peers": peer_versions(),
        "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                                                  "OPENBLAS_VERBOSE", "MKL_NUM_THREADS", "XLA_FLAGS") if k in os.environ},
    }


def write_bandwidth(nbytes: int, repeats: int = 7) -> Dict[str, float]:
    """Write bandwidth of this machine, measured two ways (bytes per second).

    ``prefaulted``: ``ndarray.fill`` of an array whose pages are already mapped —
    the yardstick the construction ratios divide by. ``fresh``: a fill of a
    newly allocated array, which also pays the kernel's page faults (mapping
    and zeroing every page) — what a freshly allocated Jacobian pays.
    """
    n = max(int(nbytes) // 8, 1)
    buf = np.empty(n)
    buf.fill(0.0)  # fault every page in
    pre = measure(lambda: buf.fill(1.0), repeats=repeats, warmup=1, budget=10.0)
    del buf

    def fresh() -> None:
        a = np.empty(n)
        a.fill(1.0)

    fr = measure(fresh, repeats=repeats, warmup=1, budget=10.0)
    return {"bytes": n * 8, "prefaulted_bytes_per_s": n * 8 / pre.median, "fresh_bytes_per_s": n * 8 / fr.median,
            "prefaulted": pre.as_dict(), "fresh": fr.as_dict()}


def gemm_rate(n: int, repeats: int = 5, budget: float = 30.0) -> Dict[str, object]:
    """FLOP/s (2n³ per product) of a float64 n×n @ n×n product into a preallocated output."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    out = np.empty((n, n))
    t = measure(lambda: np.matmul(a, b, out=out), repeats=repeats, warmup=1, budget=budget)
    return {"n": n, "flops": 2 * n**3, "flops_per_s": 2 * n**3 / t.median, "timing": t.as_dict()}
