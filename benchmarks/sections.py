"""The benchmark sections; each returns a JSON-ready dict.

* :func:`orders` — the A·B·C·D chain and the optimal-plan property on random chains;
* :func:`construction` — local Jacobians built, as a fraction of write bandwidth;
* :func:`jacobian` — full dY/dX of seed 1, ``Y = (X Xᵀ) X`` with D = N;
* :func:`gradient` — dl/dX for ``l = ‖Y‖_F``: time, peak memory, growth exponents;
* :func:`throughput` — dense chain contraction as a fraction of GEMM.

Every route computes from the input array (forward pass included), and every
result is checked against a closed form before its time is reported.

>>> s = Settings(sizes=(3,), extended=(), repeats=1, peers=False, chains=3)
>>> out = gradient(s)
>>> out["routes"]["vjp route"]["by_size"][0]["rel_error"] < 1e-12
True
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import jacobians as jx
from jacobians import memory
from jacobians.graph import local_jacobian

from . import machine, peers
from .timing import Progress, fit_exponent, measure, measure_paired, median, peak_bytes

__all__ = ["Settings", "orders", "construction", "jacobian", "gradient", "throughput", "closed_jacobian",
           "closed_gradient"]

EXPLICIT = ("optimal", "reverse", "forward", "naive")
NAIVE_NOTE = ("planned only: its FLOPs are those of one unoptimized einsum; executing it hands that step to "
              "opt_einsum, which contracts pairwise, so its time would say nothing about the plan")
MIB = 2**20
FIT_FROM = 32  # growth exponents are fitted from this size up: below it fixed overheads dominate


@dataclass
class Settings:
    """What to run: the size grid D = N, repeats, budgets, and which extras."""

    sizes: Tuple[int, ...] = (8, 16, 32, 48, 64)
    extended: Tuple[int, ...] = (128, 256, 512, 1024)  # cheap gradient routes only
    repeats: int = 5
    budget: float = 30.0  # seconds of timed calls per measurement (at least 3 calls)
    peers: bool = True
    chains: int = 200  # random chains for the optimal-plan property
    bandwidth_bytes: int = 256 * MIB
    seed: int = 0
    progress: Progress = field(default_factory=lambda: Progress(1, enabled=False))

    def data(self, D: int) -> np.ndarray:
        return np.random.default_rng(self.seed + D).standard_normal((D, D))


# ------------------------------------------------------------------ seed 1 and its closed forms
def seed1(Xv: np.ndarray):
    """X (a var), W = X Xᵀ, Y = W X."""
    X = jx.var(Xv, name="X")
    W = X @ X.T
    return X, W, W @ X


def closed_jacobian(Xv: np.ndarray) -> np.ndarray:
    """dY_cd/dX_ab = δ_ca (XᵀX)_bd + X_cb X_ad + W_ca δ_db, from dY = dX XᵀX + X dXᵀ X + W dX.

    >>> Xv = np.arange(6.0).reshape(2, 3)
    >>> X, W, Y = seed1(Xv)
    >>> np.allclose(closed_jacobian(Xv), jx.jacobian(Y, X))
    True
    """
    D, N = Xv.shape
    W = Xv @ Xv.T
    return (np.einsum("ca,bd->cdab", np.eye(D), Xv.T @ Xv) + np.einsum("cb,ad->cdab", Xv, Xv)
            + np.einsum("ca,db->cdab", W, np.eye(N)))


def closed_gradient(Xv: np.ndarray) -> np.ndarray:
    """dl/dX = G XᵀX + X Gᵀ X + W G with G = Y / ‖Y‖_F (Frobenius calculus)."""
    W = Xv @ Xv.T
    Y = W @ Xv
    G = Y / np.sqrt(np.sum(Y * Y))
    return G @ (Xv.T @ Xv) + Xv @ (G.T @ Xv) + W @ G


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300))


def _time_route(s: Settings, call: Optional[Callable[[], object]], to_numpy: Callable, reference: np.ndarray,
                note: str = "", traced: bool = False, extra: Optional[dict] = None) -> dict:
    """Warm up (under tracemalloc when ``traced``), time, then check the last result."""
    row: dict = dict(extra or {})
    if call is None:
        row["skipped"] = note
        return row
    box: dict = {}

    def run() -> None:
        box["r"] = call()

    try:
        if traced:
            t0 = time.perf_counter()
            row["peak_bytes"] = peak_bytes(call)
            warm = [time.perf_counter() - t0]
            t = measure(run, repeats=s.repeats, warmup=0, budget=s.budget)
            t.warmup = warm
        else:
            t = measure(run, repeats=s.repeats, warmup=1, budget=s.budget)
    except memory.JacobianTooLarge as exc:
        row["skipped"] = str(exc).split(". Use")[0]
        return row
    except Exception as exc:  # a broken route is reported, and the run goes on
        row["skipped"] = row["failed"] = f"failed with {type(exc).__name__}: {exc}"[:300]
        return row
    row.update(t.as_dict())
    row["rel_error"] = _rel(to_numpy(box.pop("r")), reference)
    return row


def _ours(kind: str, Xv: np.ndarray, method: str, order: str = "optimal") -> Callable[[], np.ndarray]:
    if method == "jit":  # jx.jit(jx.grad(l)): traced once here, outside the timed calls (as jax.jit compiles)
        g = jx.jit(jx.grad(lambda X: jx.fro((X @ X.T) @ X)))
        g(Xv)
        return lambda: g(Xv)

    def call() -> np.ndarray:
        X, W, Y = seed1(Xv)
        if kind == "jacobian":
            return jx.jacobian(Y, X, method=method, order=order)
        return jx.grad(jx.fro(Y), X, method=method, order=order)

    return call


def _our_routes(kind: str, Xv: np.ndarray, s: Settings) -> Dict[str, dict]:
    """name -> {call, note, plan facts} for the explicit orders, vjp, numeric, factored."""
    X, W, Y = seed1(Xv)
    target = Y if kind == "jacobian" else jx.fro(Y)
    out: Dict[str, dict] = {}
    for order in EXPLICIT:
        p = jx.plan(target, X, order)
        facts = {"kind": "ours", "flops": p.flops, "largest_local_jacobian_bytes": p.largest_operand_bytes,
                 "largest_intermediate": p.largest_intermediate}
        note = ""
        call: Optional[Callable] = _ours(kind, Xv, "explicit", order)
        if order == "naive":
            call, note = None, NAIVE_NOTE
        out[f"explicit ({order})"] = {"call": call, "note": note, "facts": facts}
    out["vjp route"] = {"call": _ours(kind, Xv, "vjp"), "note": "", "facts": {"kind": "ours"}}
    out["numeric"] = {"call": _ours(kind, Xv, "numeric"), "note": "", "facts": {"kind": "ours"}}
    if "factored" in getattr(jx, "METHODS", ()):
        out["factored"] = {"call": _ours(kind, Xv, "factored"), "note": "", "facts": {"kind": "ours"}}
    else:
        out["factored"] = {"call": None, "facts": {"kind": "ours"},
                           "note": "method='factored' is not in jx.METHODS of this version; the row fills in "
                                   "when the factored route lands"}
    return out


def _add(routes: Dict[str, dict], name: str, kind: str, row: dict, D: int) -> None:
    entry = routes.setdefault(name, {"kind": kind, "by_size": []})
    row["D"] = D
    entry["by_size"].append(row)


def _exponents(routes: Dict[str, dict], lo: int, hi: int, key: str = "median_s", label: str = "exponent") -> None:
    for entry in routes.values():
        pts = [(r["D"], r.get(key)) for r in entry["by_size"] if lo <= r["D"] <= hi and "skipped" not in r]
        entry[label] = fit_exponent([p[0] for p in pts], [p[1] for p in pts])


# ------------------------------------------------------------------ 0. orders
def orders(s: Settings) -> dict:
    """The A·B·C·D example (planned, executed, checked) and the property on random chains."""
    rng = np.random.default_rng(s.seed)
    A = rng.standard_normal((256, 256))
    B = rng.standard_normal((256, 4))
    C = rng.standard_normal((4, 256))
    Dm = rng.standard_normal((256, 256))
    x = jx.var(rng.standard_normal(256), name="x")
    y = A @ (B @ (C @ (Dm @ x)))
    ABCD = A @ B @ C @ Dm
    abcd: Dict[str, dict] = {}
    for order in EXPLICIT:
        s.progress.step(f"orders: A·B·C·D {order}")
        p = jx.plan(y, x, order)
        row = {"flops": p.flops, "path": [list(step) for step in p.paths[0]],
               "largest_intermediate": p.largest_intermediate}
        if order != "naive":
            box = {}
            t = measure(lambda: box.update(J=p.execute()), repeats=s.repeats, warmup=1, budget=s.budget)
            row.update(t.as_dict())
            row["rel_error"] = _rel(box["J"], ABCD)
        else:
            row["skipped"] = "planned only"
        abcd[order] = row
    s.progress.step("orders: random chains")
    ratios, violations, lengths = [], 0, []
    t0 = time.perf_counter()
    for _ in range(s.chains):
        k = int(rng.integers(1, 31))  # 1 … 30 local Jacobians
        sizes = rng.integers(1, 65, size=k + 1)
        cols = int(rng.choice([0, 1, 3]))
        xv = jx.var(np.ones((sizes[0], cols) if cols else sizes[0]))
        yv = xv
        for rows, inner in zip(sizes[1:], sizes[:-1]):
            yv = np.ones((rows, inner)) @ yv
        f = {o: jx.plan(yv, xv, o).flops for o in ("optimal", "reverse", "forward")}
        best_pure = min(f["reverse"], f["forward"])
        violations += f["optimal"] > best_pure
        ratios.append(f["optimal"] / best_pure)
        lengths.append(k)
    return {"abcd": abcd,
            "abcd_gain": abcd["reverse"]["flops"] / abcd["optimal"]["flops"],
            "random_chains": {"count": s.chains, "max_operands": max(lengths, default=0),
                              "violations": int(violations), "max_ratio": max(ratios, default=None),
                              "median_ratio": float(np.median(ratios)) if ratios else None,
                              "min_ratio": min(ratios, default=None),
                              "seconds": time.perf_counter() - t0}}


# ------------------------------------------------------------------ 1. construction
@contextlib.contextmanager
def recycled_zeros(nbytes: int) -> Iterator[None]:
    """What-if: ``memory.zeros`` hands out one pre-faulted buffer (zeroed by ``fill``) instead of fresh pages.

    Not what the library does; it isolates the cost of the kernel's page faults.
    Only safe while each result is dropped before the next call.
    """
    pool = np.empty(nbytes, dtype=np.uint8)
    pool.fill(0)
    original = memory.zeros

    def zeros(shape, dtype, what):
        n = memory.check_bytes(shape, dtype, what)
        if n > pool.nbytes:
            return original(shape, dtype, what)
        a = pool[:n].view(dtype).reshape(tuple(int(d) for d in shape))
        a.fill(0)
        return a

    memory.zeros = zeros
    try:
        yield
    finally:
        memory.zeros = original


def _construction_cases(Xv: np.ndarray):
    D = Xv.shape[0]
    X = jx.var(Xv, name="X")
    Xt = X.T
    W = X @ Xt
    Y = W @ X
    S = W + D * np.eye(D)
    return [("matmul, left input: dY/dW", Y, W), ("matmul, right input: dY/dX", Y, X),
            ("transpose: dXᵀ/dX", Xt, X), ("tanh: dT/dY", jx.tanh(Y), Y), ("inv: dS⁻¹/dS", jx.inv(S), S)]


def construction(s: Settings, bandwidth: Dict[str, float]) -> dict:
    """Each local Jacobian of seed 1 (and tanh, inv) built alone, against a fill of as many bytes.

    Each build is paired with ``fill`` of a preallocated (faulted-in) array of
    the same size, timed right after it; the fraction is the median over pairs
    of fill time / build time — the share of write bandwidth the build reaches.
    """
    rows: List[dict] = []
    biggest = max(s.sizes, default=1) ** 4 * 8
    fill_buffer = np.empty(biggest // 8)
    fill_buffer.fill(0.0)
    for D in s.sizes:
        Xv = s.data(D)
        nbytes = D**4 * 8
        target = fill_buffer[: nbytes // 8]

        def fill() -> None:
            target.fill(1.0)

        for name, child, parent in _construction_cases(Xv):
            s.progress.step(f"construction D={D} {name}")
            fresh, ref, ratios = measure_paired(lambda: local_jacobian(child, parent), fill, repeats=s.repeats,
                                                budget=s.budget)
            with recycled_zeros(nbytes):
                rec, _, rec_ratios = measure_paired(lambda: local_jacobian(child, parent), fill,
                                                    repeats=s.repeats, budget=s.budget)
            rows.append({"op": name, "D": D, "bytes": nbytes, "fresh": fresh.as_dict(), "fill": ref.as_dict(),
                         "fresh_fraction": median(ratios), "recycled": rec.as_dict(),
                         "recycled_fraction": median(rec_ratios)})
        s.progress.step(f"construction D={D} einsum with identity")
        eye = np.eye(D)
        ein, ref, ratios = measure_paired(lambda: np.einsum("ca,bd->cdab", eye, Xv), fill, repeats=s.repeats,
                                          budget=s.budget)
        rows.append({"op": "reference: np.einsum with an identity (dY/dW)", "D": D, "bytes": nbytes,
                     "fresh": ein.as_dict(), "fill": ref.as_dict(), "fresh_fraction": median(ratios)})
    del fill_buffer
    return {"bandwidth": bandwidth, "rows": rows}


# ------------------------------------------------------------------ 2. full Jacobian
def jacobian(s: Settings) -> dict:
    """Full dY/dX (shape D×D×D×D) by every route, D = N over the grid."""
    routes: Dict[str, dict] = {}
    for D in s.sizes:
        Xv = s.data(D)
        ref = closed_jacobian(Xv)
        for name, r in _our_routes("jacobian", Xv, s).items():
            s.progress.step(f"jacobian D={D} {name}")
            _add(routes, name, "ours", _time_route(s, r["call"], np.asarray, ref, r["note"], extra=r["facts"]), D)
        s.progress.step(f"jacobian D={D} closed form")
        _add(routes, "closed form (numpy einsum)", "reference",
             _time_route(s, lambda: closed_jacobian(Xv), np.asarray, ref), D)
        for name, route in peers.jacobian_routes(Xv, s.peers).items():
            s.progress.step(f"jacobian D={D} {name}")
            _add(routes, name, "peer", _time_route(s, route.call, route.to_numpy, ref, route.note), D)
    _exponents(routes, FIT_FROM, max(s.sizes, default=0))
    return {"sizes": list(s.sizes), "routes": routes}


# ------------------------------------------------------------------ 3. gradient
def gradient(s: Settings) -> dict:
    """dl/dX for l = ‖(X Xᵀ) X‖_F: time and (numpy routes) peak memory; cheap routes also on a larger grid."""
    routes: Dict[str, dict] = {}
    for D in s.sizes:
        Xv = s.data(D)
        ref = closed_gradient(Xv)
        for name, r in _our_routes("gradient", Xv, s).items():
            s.progress.step(f"gradient D={D} {name}")
            _add(routes, name, "ours", _time_route(s, r["call"], np.asarray, ref, r["note"], traced=True,
                                                   extra=r["facts"]), D)
        s.progress.step(f"gradient D={D} closed form")
        _add(routes, "closed form (numpy)", "reference",
             _time_route(s, lambda: closed_gradient(Xv), np.asarray, ref, traced=True), D)
        for name, route in peers.gradient_routes(Xv, s.peers).items():
            s.progress.step(f"gradient D={D} {name}")
            traced = name.startswith("autograd")  # numpy underneath: tracemalloc sees it
            _add(routes, name, "peer", _time_route(s, route.call, route.to_numpy, ref, route.note, traced), D)
    for D in s.extended:
        Xv = s.data(D)
        ref = closed_gradient(Xv)
        s.progress.step(f"gradient D={D} vjp route")
        _add(routes, "vjp route", "ours", _time_route(s, _ours("gradient", Xv, "vjp"), np.asarray, ref,
                                                      traced=True), D)
        s.progress.step(f"gradient D={D} closed form")
        _add(routes, "closed form (numpy)", "reference",
             _time_route(s, lambda: closed_gradient(Xv), np.asarray, ref, traced=True), D)
        for name, route in peers.gradient_routes(Xv, s.peers).items():
            s.progress.step(f"gradient D={D} {name}")
            traced = name.startswith("autograd")
            _add(routes, name, "peer", _time_route(s, route.call, route.to_numpy, ref, route.note, traced), D)
    paired = _paired_gradients(s)
    top = max(s.sizes, default=0)
    _exponents(routes, FIT_FROM, top)
    _exponents(routes, FIT_FROM, top, "peak_bytes", "memory_exponent")
    if s.extended:
        _exponents(routes, min(s.extended), max(s.extended), label="exponent_large")
    for entry in routes.values():
        for r in entry["by_size"]:
            if "peak_bytes" in r and r.get("largest_local_jacobian_bytes"):
                r["peak_over_largest_local"] = r["peak_bytes"] / r["largest_local_jacobian_bytes"]
    return {"sizes": list(s.sizes), "extended": list(s.extended), "routes": routes, "paired": paired}


GRADIENT_GOALS = {"jax.grad (jit)": 1.5, "closed form (numpy)": 1.05}  # issue #14: at the smallest / largest D


def _paired_gradients(s: Settings) -> List[dict]:
    """Our gradient (graph building included) against jax.grad (jit) at the smallest D and against the
    hand-written numpy formula at the largest, call by call: the median of the pairs' time ratios."""
    out: List[dict] = []
    small, large = min(s.sizes, default=None), max(s.extended or s.sizes, default=None)
    for D, vs in ((small, "jax.grad (jit)"), (large, "closed form (numpy)")):
        if D is None:
            continue
        Xv = s.data(D)
        if vs == "closed form (numpy)":
            other: Optional[Callable[[], object]] = lambda Xv=Xv: closed_gradient(Xv)  # noqa: E731
        else:
            other = peers.gradient_routes(Xv, s.peers)[vs].call
        for method in ("auto", "factored", "jit"):
            s.progress.step(f"gradient D={D} {method} paired with {vs}")
            row = {"D": D, "route": method, "vs": vs, "goal": GRADIENT_GOALS[vs]}
            if other is None:
                row["skipped"] = f"{vs} is not available"
            else:
                t, o, ratios = measure_paired(_ours("gradient", Xv, method), other, repeats=max(s.repeats, 3),
                                              budget=s.budget)
                row.update(ours_s=t.median, other_s=o.median, ratio=median([1 / r for r in ratios]))
                row["met"] = row["ratio"] <= row["goal"]
            out.append(row)
    return out


# ------------------------------------------------------------------ 4. throughput
def throughput(s: Settings) -> dict:
    """Planned FLOPs per second of explicit contractions, over this machine's GEMM rate at the same size.

    Two chains, each call paired with an n×n GEMM (n = D²) timed right after
    it: seed 1's dY/dX (three paths of local Jacobians with D⁴ entries) and a
    dense chain ``y = A₃ A₂ A₁ x`` with x of length n and dense n×n constants.
    A call is ``jx.jacobian`` on a graph built beforehand (planning, building
    the local Jacobians, contracting). The fraction is the median over pairs
    of (chain FLOP/s) / (GEMM FLOP/s).
    """
    rows: List[dict] = []
    for D in s.sizes:
        n = D * D
        rng = np.random.default_rng(s.seed + n)
        ga, gb = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        gout = np.empty((n, n))
        gemm_flops = 2 * n**3

        def gemm() -> None:
            np.matmul(ga, gb, out=gout)

        Xv = s.data(D)
        mats = [rng.standard_normal((n, n)) / math.sqrt(n) for _ in range(3)]
        xv = rng.standard_normal(n)

        def dense():
            x = jx.var(xv, name="x")
            return mats[2] @ (mats[1] @ (mats[0] @ x)), x

        def seed():
            X, _, Y = seed1(Xv)
            return Y, X

        chains = [("seed 1 dY/dX", seed, closed_jacobian(Xv)),
                  ("dense chain A₃A₂A₁ (n = D²)", dense, mats[2] @ mats[1] @ mats[0])]
        for chain, build, ref in chains:
            y0, x0 = build()  # the graph is built once: this section times planning and contraction only
            for order in ("optimal", "reverse", "forward"):
                s.progress.step(f"throughput D={D} {chain.split(' (')[0]} {order}")
                flops = jx.plan(y0, x0, order).flops
                box: dict = {}

                def call(order=order, y0=y0, x0=x0):
                    box["J"] = jx.jacobian(y0, x0, order=order)

                t, g, ratios = measure_paired(call, gemm, repeats=s.repeats, budget=s.budget)
                fractions = [r * flops / gemm_flops for r in ratios]
                rows.append({"chain": chain, "order": order, "D": D, "flops": flops, "timing": t.as_dict(),
                             "median_s": t.median, "gemm_timing": g.as_dict(),
                             "gemm_flops_per_s": gemm_flops / g.median, "flops_per_s": flops / t.median,
                             "fraction_of_gemm": median(fractions),
                             "rel_error": _rel(box.pop("J").reshape(ref.shape), ref)})
            del y0, x0
        del mats, ga, gb, gout
    return {"rows": rows}
