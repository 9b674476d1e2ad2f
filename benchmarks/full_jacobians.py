"""Factored full Jacobians against the write floor, and deep chains (issue #14, items 3 and 6).

* :func:`full` — ``jx.jacobian(y, x, method="factored")`` from the input arrays (graph building timed
  with it) for four graphs at D = 64 and 96: seed 1 ``(X Xᵀ) X`` (dY/dX), a 2-layer MLP
  ``W2 tanh(W1 X)`` (dY/dW1), a row-wise ``softmax(X W)`` (dY/dW) and attention
  ``softmax(Q Kᵀ/√D) V`` with ``Q, K, V = X Wq, X Wk, X Wv`` (dY/dWq). Each result is checked against
  its closed form (and each closed form against ``method="vjp"`` at D = 5) before its time counts.
  The yardstick is the write floor, ``machine.fresh_fill`` of the result's shape on newly mapped pages
  (fresh memory), timed call by call beside the route (``measure_paired``); stability is max/median of
  10 calls, each right after a 1024² matrix product in the same process. The time is split into
  building the graph, planning (``plan_factored``) and executing the plan.
* :func:`depth` — planning time and FLOPs of ``jx.plan(y, x, "optimal")`` on the MLP chain
  (width 16, 2 … 64 layers), a 2000-op elementwise chain and a sum of 50 products (the graph
  builders of :mod:`benchmarks.planning`), and the 64-layer chain's factored Jacobian against
  ``jax.jacrev`` (jit, compile excluded) when JAX is installed.

Run ``python benchmarks/run.py --sections full,depth``; profile one case with
``python benchmarks/full_jacobians.py --profile attention --size 96``; list one case's stability calls with
the kernel's page-fault counters with ``python benchmarks/full_jacobians.py --stability seed1 --size 96``.

>>> d = data(5)
>>> build, closed = GRAPHS[SHORT["attention"]]
>>> y, x = build(d)
>>> rel_error(jx.jacobian(y, x, method="factored"), closed(d)) < 1e-12
True
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # as a script: this checkout's jacobians and benchmarks
    sys.path.insert(0, ROOT)

import jacobians as jx  # noqa: E402
from jacobians.factored import plan_factored  # noqa: E402

from benchmarks import machine, peers, planning, sections  # noqa: E402
from benchmarks.report import fmt_bytes, fmt_time  # noqa: E402
from benchmarks.timing import measure, measure_paired, median, peak_bytes  # noqa: E402

__all__ = ["GRAPHS", "data", "rel_error", "full", "depth", "full_targets", "depth_targets", "markdown", "profile"]

SIZES, TINY_SIZES = (64, 96), (4, 6)
CHECK_D = 5  # every closed form is checked against method="vjp" at this size
STABILITY_CALLS, GEMM_N = 10, 1024
FLOOR_GOAL, STABILITY_GOAL = 1.3, 1.5
LAYERS, TINY_LAYERS = (2, 4, 8, 16, 32, 64), (2, 4)
CHAIN_OPS, PRODUCTS = (2000, 50), (20, 5)  # full run, tiny run
PLAN_GOALS = {"elementwise chain": 1.0, "MLP chain": 0.05, "sum of products": 0.05}  # seconds, largest size


# ------------------------------------------------------------------ the four graphs and their closed forms
def data(D: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """X (D×D, standard normal) and five D×D weights scaled by 1/√D."""
    rng = np.random.default_rng(seed + D)
    out = {"X": rng.standard_normal((D, D))}
    for k in ("W1", "W2", "Wq", "Wk", "Wv"):
        out[k] = rng.standard_normal((D, D)) / np.sqrt(D)
    return out


def _seed_one(d):
    X, _, Y = sections.seed1(d["X"])
    return Y, X


def _mlp(d):
    W1 = jx.var(d["W1"], name="W1")
    return d["W2"] @ jx.tanh(W1 @ d["X"]), W1


def _softmax(d):
    W = jx.var(d["W1"], name="W")
    return jx.softmax(d["X"] @ W, axis=-1), W


def _attention(d):
    Wq = jx.var(d["Wq"], name="Wq")
    X = d["X"]
    K, V = X @ d["Wk"], X @ d["Wv"]
    return jx.softmax((X @ Wq) @ K.T / np.sqrt(X.shape[1]), axis=-1) @ V, Wq


def _mlp_closed(d):  # dY_cd/dW1_ab = W2_ca (1 - A_ad²) X_bd, A = tanh(W1 X)
    A = np.tanh(d["W1"] @ d["X"])
    return np.einsum("ca,ad,bd->cdab", d["W2"], 1 - A * A, d["X"])


def _softmax_rows(Z):
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return E / E.sum(axis=-1, keepdims=True)


def _softmax_closed(d):  # dS_ij/dW_ab = X_ia S_ij (δ_jb - S_ib)
    X = d["X"]
    S = _softmax_rows(X @ d["W1"])
    return np.einsum("ia,ij,jb->ijab", X, S, np.eye(S.shape[1])) - np.einsum("ia,ij,ib->ijab", X, S, S)


def _attention_closed(d):  # dY_ij/dWq_ab = X_ia (Σ_k P_ik V_kj K_kb - Y_ij (P K)_ib) / √D
    X = d["X"]
    K, V = X @ d["Wk"], X @ d["Wv"]
    P = _softmax_rows((X @ d["Wq"]) @ K.T / np.sqrt(X.shape[1]))
    T = np.einsum("ik,kj,kb->ijb", P, V, K) - np.einsum("ij,ib->ijb", P @ V, P @ K)
    return np.einsum("ia,ijb->ijab", X, T) / np.sqrt(X.shape[1])


GRAPHS: Dict[str, Tuple[Callable, Callable]] = {  # name: (build (y, x) from data, closed-form dy/dx)
    "seed 1 dY/dX": (_seed_one, lambda d: sections.closed_jacobian(d["X"])),
    "MLP dY/dW1": (_mlp, _mlp_closed),
    "softmax(XW) dY/dW": (_softmax, _softmax_closed),
    "attention dY/dWq": (_attention, _attention_closed),
}
SHORT = {"seed1": "seed 1 dY/dX", "mlp": "MLP dY/dW1", "softmax": "softmax(XW) dY/dW", "attention": "attention dY/dWq"}


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got − want| / max |want|."""
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-300))


def _factored(build: Callable, d: Dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    """The timed call: the graph from the arrays, then the factored Jacobian."""
    def call() -> np.ndarray:
        y, x = build(d)
        return jx.jacobian(y, x, method="factored")
    return call


def _after_gemm(call: Callable[[], object], calls: int, n: int, seed: int) -> List[float]:
    """Times of ``calls`` calls, each right after an untimed n×n matrix product (BLAS threads just busy)."""
    A = np.random.default_rng(seed).standard_normal((n, n))
    times = []
    for _ in range(calls):
        A @ A
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _split(build: Callable, d: Dict[str, np.ndarray], s) -> Dict[str, float]:
    """Median seconds of the three parts: building the graph, plan_factored, executing the plan."""
    y, x = build(d)
    p = plan_factored(y, x)
    return {"graph_s": measure(lambda: build(d), repeats=s.repeats, budget=s.budget).median,
            "plan_s": measure(lambda: plan_factored(y, x), repeats=s.repeats, budget=s.budget).median,
            "execute_s": measure(p.execute, repeats=s.repeats, budget=s.budget).median,
            "strategy": p.strategy}




def full(s) -> dict:
    """Every graph at every size: checked, paired with the write floor, timed after GEMMs, split.

    First, memory is pretouched (:func:`machine.pretouch`): a D = 96 result (648 MiB) that lands on memory the
    VM's host has not backed makes one call 10-20x slower than the others, a fact about the VM, not about the
    route or its BLAS calls, which is what the stability target is about.
    """
    tiny = max(s.sizes, default=8) <= 4
    pretouch = machine.pretouch(tiny)
    checks = {}
    for name, (build, closed) in GRAPHS.items():  # the closed forms themselves, against the VJP route
        d = data(CHECK_D, s.seed)
        y, x = build(d)
        want = closed(d)
        checks[name] = {"D": CHECK_D, "closed_vs_vjp": rel_error(jx.jacobian(y, x, method="vjp"), want),
                        "factored_vs_vjp": rel_error(jx.jacobian(y, x, method="factored"), want)}
    rows = []
    for name, (build, closed) in GRAPHS.items():
        for D in TINY_SIZES if tiny else SIZES:
            s.progress.step(f"full {name} D={D}")
            d = data(D, s.seed)
            call = _factored(build, d)
            J = call()
            shape, nbytes = J.shape, J.nbytes
            err = rel_error(J, closed(d))
            del J
            floor = lambda: machine.fresh_fill(shape)  # noqa: E731  (new pages every call: the fresh-memory floor)
            t, f, ratios = measure_paired(call, floor, repeats=s.repeats, budget=s.budget)  # floor / route
            after = _after_gemm(call, 3 if tiny else STABILITY_CALLS, 64 if tiny else GEMM_N, s.seed)
            row = {"graph": name, "D": D, "shape": list(shape), "bytes": nbytes, "rel_error": err,
                   "median_s": t.median, "times_s": t.times, "floor_s": f.median,
                   "to_floor": median([1 / r for r in ratios]), "after_gemm_s": after,
                   "stability": max(after) / median(after), "peak_bytes": peak_bytes(call)}
            row.update(_split(build, d, s))
            rows.append(row)
    return {"rows": rows, "checks": checks, "gemm_n": 64 if tiny else GEMM_N, "pretouched_bytes": pretouch}


def full_targets(sec: dict) -> List[dict]:
    """Per graph and size: factored ≤ 1.3× the paired floor; max/median ≤ 1.5 after a GEMM."""
    out = []
    for r in sec.get("rows", []):
        out.append({"name": f"{r['graph']}, D={r['D']}: factored / floor", "goal": f"≤ {FLOOR_GOAL}",
                    "measured": r["to_floor"], "met": r["to_floor"] <= FLOOR_GOAL})
        out.append({"name": f"{r['graph']}, D={r['D']}: max / median after GEMM", "goal": f"≤ {STABILITY_GOAL}",
                    "measured": r["stability"], "met": r["stability"] <= STABILITY_GOAL})
    return out


# ------------------------------------------------------------------ deep graphs: planning, and one deep Jacobian
def _mlp_arrays(layers: int, width: int = 16) -> Tuple[np.ndarray, List[np.ndarray]]:
    """The draws of planning.mlp_chain, in its order (checked against it in :func:`_deep_jacobian`)."""
    rng = np.random.default_rng(layers)
    x = rng.standard_normal(width)
    return x, [rng.standard_normal((width, width)) / 4 for _ in range(layers)]


def _deep_jacobian(layers: int, s) -> dict:
    """The factored dy/dx of the MLP chain (graph included), checked, against jax.jacrev (jit) paired."""
    x0, Ws = _mlp_arrays(layers)

    def build():
        x = jx.var(x0, name="x")
        h = x
        for W in Ws:
            h = jx.tanh(W @ h)
        return h, x

    def ours():
        return jx.jacobian(*build(), method="factored")

    y, x = build()
    if not np.array_equal(y.value, planning.mlp_chain(layers)[0].value):
        raise RuntimeError("_mlp_arrays no longer draws what benchmarks.planning.mlp_chain draws")
    want, h = np.eye(x0.size), x0
    for W in Ws:  # closed form: Π diag(1 − h_k²) W_k
        h = np.tanh(W @ h)
        want = (1 - h * h)[:, None] * (W @ want)
    row = {"layers": layers, "rel_error": rel_error(ours(), want),
           "vjp_rel_error": rel_error(jx.jacobian(y, x, method="vjp"), want)}
    built = lambda: jx.jacobian(y, x, method="factored")  # noqa: E731
    row["graph_built_s"] = measure(built, repeats=s.repeats, budget=s.budget).median
    if not (s.peers and peers._have("jax")):
        row["median_s"] = measure(ours, repeats=s.repeats, budget=s.budget).median
        row["jax"] = "JAX not installed" if s.peers else "peers disabled (--no-peers)"
        return row
    jax, jnp = peers._jax()
    Wj = [jnp.asarray(W) for W in Ws]

    def f(v):
        for W in Wj:
            v = jnp.tanh(W @ v)
        return v

    jf, xj = jax.jit(jax.jacrev(f)), jnp.asarray(x0)
    t0 = time.perf_counter()
    Jj = np.asarray(jf(xj).block_until_ready())
    row["jax_compile_s"] = time.perf_counter() - t0
    row["jax_rel_error"] = rel_error(Jj, want)
    t, tj, ratios = measure_paired(ours, lambda: jf(xj).block_until_ready(), repeats=s.repeats, budget=s.budget)
    row.update(median_s=t.median, jax_s=tj.median, to_jax=median([1 / r for r in ratios]))
    return row


def depth(s) -> dict:
    """Planning time (graph built once) and planned FLOPs of every deep graph; the deepest MLP's Jacobian."""
    tiny = max(s.sizes, default=8) <= 4
    ops, products = PRODUCTS if tiny else CHAIN_OPS
    graphs = [("MLP chain", planning.mlp_chain, n) for n in (TINY_LAYERS if tiny else LAYERS)]
    graphs += [("elementwise chain", planning.elementwise_chain, ops), ("sum of products", planning.sum_of_products,
                                                                          products)]
    rows = []
    for family, build, n in graphs:
        s.progress.step(f"depth {family} {n}")
        y, x = build(n)
        t = measure(lambda: jx.plan(y, x, "optimal"), repeats=max(s.repeats, 3), budget=s.budget)
        flops = {o: jx.plan(y, x, o).flops for o in ("optimal", "reverse", "forward")}
        pure = min(flops["reverse"], flops["forward"])
        rows.append({"family": family, "n": n, "plan_s": t.median, "first_plan_s": t.warmup[0], "flops": flops,
                     "over_best_pure": flops["optimal"] / pure if pure else 1.0})
    s.progress.step("depth deep MLP Jacobian")
    return {"rows": rows, "deep_jacobian": _deep_jacobian(max(TINY_LAYERS if tiny else LAYERS), s)}


def depth_targets(sec: dict) -> List[dict]:
    """Each family's largest graph plans within its goal; optimal FLOPs never above the better pure order."""
    out = []
    for family, goal in PLAN_GOALS.items():
        r = max((r for r in sec.get("rows", []) if r["family"] == family), key=lambda r: r["n"], default=None)
        if r is not None:
            out.append({"name": f"{family} ({r['n']}): plan time, ms", "goal": f"< {goal * 1e3:g}",
                        "measured": r["plan_s"] * 1e3, "met": r["plan_s"] < goal})
    if sec.get("rows"):
        worst = max(r["over_best_pure"] for r in sec["rows"])
        out.append({"name": "optimal FLOPs / min(forward, reverse), worst graph", "goal": "≤ 1",
                    "measured": worst, "met": worst <= 1.0})
    return out


# ------------------------------------------------------------------ report
def _target_lines(targets: List[dict]) -> List[str]:
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    for t in targets:
        lines.append(f"| {t['name']} | {t['goal']} | {t['measured']:.3g} | {'yes' if t['met'] else 'NO'} |")
    return lines


def markdown(res: dict) -> str:
    """The ``full`` and ``depth`` sections of a result, as Markdown (what run.py appends to benchmarks.md)."""
    L: List[str] = []
    sec = res.get("full")
    if sec:
        L += ["## Factored full Jacobians against the write floor", "",
              "Graph building included. × floor: median over pairs of route / a fill of the result's shape on new pages (`machine.fresh_fill`); "
              f"stability: max / median of calls each right after a {sec['gemm_n']}² GEMM; after GEMM / time: "
              "their median over the median time; "
              "graph / plan / execute: medians of the parts timed apart.", "",
              "| graph | D | result | time | floor | × floor | stability | after GEMM / time | graph / plan / execute "
              "| peak | rel. error |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sec["rows"]:
            L.append(f"| {r['graph']} | {r['D']} | {fmt_bytes(r['bytes'])} | {fmt_time(r['median_s'])} | "
                     f"{fmt_time(r['floor_s'])} | {r['to_floor']:.2f} | {r['stability']:.2f} | "
                     f"{median(r['after_gemm_s']) / r['median_s']:.2f} | "
                     f"{fmt_time(r['graph_s'])} / {fmt_time(r['plan_s'])} / {fmt_time(r['execute_s'])} | "
                     f"{fmt_bytes(r['peak_bytes'])} | {r['rel_error']:.1e} |")
        worst = max(c["closed_vs_vjp"] for c in sec["checks"].values())
        L += ["", f"Closed forms against `method=\"vjp\"` at D = {CHECK_D}: worst rel. error {worst:.1e}.", ""]
        L += _target_lines(full_targets(sec)) + [""]
    sec = res.get("depth")
    if sec:
        L += ["## Deep graphs: planning time and FLOPs of jx.plan(y, x, \"optimal\")", "",
              "| graph | n | plan (median) | first plan | optimal FLOPs | reverse | forward | optimal / min(pure) |",
              "|---|---|---|---|---|---|---|---|"]
        for r in sec["rows"]:
            fl = r["flops"]
            L.append(f"| {r['family']} | {r['n']} | {fmt_time(r['plan_s'])} | {fmt_time(r['first_plan_s'])} | "
                     f"{fl['optimal']:.3g} | {fl['reverse']:.3g} | {fl['forward']:.3g} | {r['over_best_pure']:.3f} |")
        dj = sec["deep_jacobian"]
        jax_t = f"{fmt_time(dj['jax_s'])}, ×{dj['to_jax']:.2f} paired" if "jax_s" in dj else dj["jax"]
        L += ["", f"MLP chain of {dj['layers']} layers, full 16×16 Jacobian on the factored route: "
                  f"{fmt_time(dj['median_s'])} graph building included, "
                  f"{fmt_time(dj['graph_built_s'])} on a built graph; "
                  f"jax.jacrev (jit): {jax_t}; rel. error {dj['rel_error']:.1e} (closed form).", ""]
        L += _target_lines(depth_targets(sec)) + [""]
    return "\n".join(L)


def print_targets(res: dict) -> None:
    """One line per target of the two sections (run.py prints them after the others)."""
    targets = full_targets(res.get("full", {})) + depth_targets(res.get("depth", {}))
    for t in targets:
        print(f"  {t['name']}: {t['measured']:.3g} (goal {t['goal']}) {'met' if t['met'] else 'NOT MET'}")


# ------------------------------------------------------------------ profile one case
def profile(graph: str, D: int, top: int = 15) -> None:
    """The factored plan's products (each one contraction), then cProfile of one call (after a warm-up call),
    the top lines by own time."""
    import cProfile
    import pstats

    build = GRAPHS[SHORT.get(graph, graph)][0]
    d = data(D)
    p = plan_factored(*build(d))
    print(f"{graph}, D = {D}: strategy {p.strategy!r}, {len(getattr(p, 'prepared', None) or [])} product(s)")
    for prep in getattr(p, "prepared", None) or []:
        comp = prep.comp
        steps = "none" if comp is None else ", ".join(eq for _, eq in comp.steps)
        flops = 0 if comp is None else comp.flops
        print(f"  {prep.eq} → shape {prep.shape}: steps {steps}; {flops:.3g} FLOPs")
    plain_numpy_product(p)
    call = _factored(build, d)
    call()
    pr = cProfile.Profile()
    pr.enable()
    call()
    pr.disable()
    pstats.Stats(pr).strip_dirs().sort_stats("tottime").print_stats(top)


def plain_numpy_product(p, repeats: int = 7) -> None:
    """The plan's largest broadcast product (one step, nothing summed) written by numpy alone, outside the
    package: ``np.multiply`` of the two operands viewed in the output's order, into a new C-ordered array,
    paired with the fresh-memory floor of its shape. What numpy itself costs for the write that misses the
    floor target."""
    best = None
    for prep in getattr(p, "prepared", None) or []:
        comp = prep.comp
        if comp is None or len(comp.steps) != 1 or len(comp.steps[0][0]) != 2:
            continue
        eq = comp.steps[0][1]
        ins, out = eq.split("->")
        if any(c not in out for c in ins.replace(",", "")) or len(out) != len(prep.shape):
            continue  # something is summed: a matrix product, not a broadcast write
        if best is None or np.prod(prep.shape) > np.prod(best[1]):
            best = (eq, tuple(prep.shape))
    if best is None:
        return
    eq, shape = best
    ins, out = eq.split("->")
    size = dict(zip(out, shape))
    rng = np.random.default_rng(0)
    views = []
    for sub in ins.split(","):
        a = rng.standard_normal([size[c] for c in sub])
        perm = sorted(range(len(sub)), key=lambda k: out.index(sub[k]))
        views.append(a.transpose(perm).reshape([size[c] if c in sub else 1 for c in out]))
    t, f, ratios = measure_paired(lambda: np.multiply(views[0], views[1], order="C"),
                                  lambda: machine.fresh_fill(shape), repeats=repeats, budget=5)
    print(f"  plain numpy, np.multiply for {eq} into a new {shape} array: {fmt_time(t.median)} against the floor's "
          f"{fmt_time(f.median)}: {median([1 / r for r in ratios]):.2f}x the floor (paired)")


VMSTAT = ("compact_stall", "thp_fault_alloc", "thp_fault_fallback", "pgfault")


def vmstat() -> Dict[str, int]:
    """The kernel's counters of page faults, huge-page faults and compaction stalls (Linux; empty elsewhere)."""
    try:
        with open("/proc/vmstat") as f:
            pairs = (line.split() for line in f)
            return {k: int(v) for k, v in pairs if k in VMSTAT}
    except OSError:
        return {}


def stability(graph: str, D: int, calls: int = STABILITY_CALLS, seed: int = 0) -> List[dict]:
    """The stability measurement call by call (each right after a GEMM_N² GEMM), with what the kernel did during
    each call: page faults, huge pages faulted, huge-page faults that fell back to small pages, and direct
    compaction stalls (the process waiting while the kernel defragments memory for a huge page). A slow call
    with none of these is time the guest kernel does not see: on a virtual machine, the host backing guest
    memory on first touch (``--pretouch`` writes the same bytes twice first, and times both writes)."""
    build = GRAPHS[SHORT.get(graph, graph)][0]
    call = _factored(build, data(D, seed))
    A = np.random.default_rng(seed).standard_normal((GEMM_N, GEMM_N))
    rows = []
    for _ in range(calls):
        A @ A
        before = vmstat()
        t0 = time.perf_counter()
        call()
        t = time.perf_counter() - t0
        after = vmstat()
        rows.append({"s": t, **{k: after[k] - before[k] for k in after}})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(SHORT), help="the graph to profile")
    ap.add_argument("--stability", choices=sorted(SHORT), help="the graph whose stability calls to list, each with "
                    "the kernel's page-fault and compaction counters")
    ap.add_argument("--size", type=int, default=96, help="D (default 96)")
    ap.add_argument("--top", type=int, default=15, help="lines of the profile to print")
    ap.add_argument("--calls", type=int, default=STABILITY_CALLS, help="stability calls (default 10)")
    ap.add_argument("--pretouch", type=float, default=0.0, help="GiB to write once before the stability calls")
    args = ap.parse_args(argv)
    if not (args.profile or args.stability):
        ap.error("give --profile GRAPH or --stability GRAPH")
    if args.profile:
        profile(args.profile, args.size, args.top)
    if args.stability:
        if args.pretouch:  # the same bytes twice: the first write is the host backing the memory, if it is slow
            n = int(args.pretouch * 2**30) // 8
            for what in ("first", "second"):
                t0 = time.perf_counter()
                machine.fresh_fill((n,))
                print(f"pretouch {args.pretouch:g} GiB, {what} write: {time.perf_counter() - t0:.2f} s")
        rows = stability(args.stability, args.size, args.calls)
        med = median([r["s"] for r in rows])
        print(f"{SHORT[args.stability]} at D = {args.size}: {args.calls} calls, each right after a {GEMM_N}² GEMM")
        print("call | time | / median | " + " | ".join(VMSTAT))
        for k, r in enumerate(rows):
            print(f"{k} | {r['s'] * 1e3:.1f} ms | {r['s'] / med:.2f} | " + " | ".join(str(r.get(c, "–")) for c in VMSTAT))
        print(f"stability (max / median): {max(r['s'] for r in rows) / med:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
