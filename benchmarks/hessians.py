"""Hessian benchmarks: the factored and hvp routes against jax.hessian, torch.func.hessian, autograd.hessian.

Four cases, each at growing size, each result checked before its time counts:

* ``xᵀAx`` w.r.t. x (n): the Hessian is A + Aᵀ;
* ``logsumexp(x)`` (N): diag(p) − p pᵀ;
* least squares ``‖X W − T‖²`` w.r.t. W (D×D): 2 XᵀX ⊗ I, D⁴ entries;
* a 2-layer tanh MLP ``‖tanh(X W1) W2 − T‖²`` w.r.t. W1 (D×D): checked against JAX (or, without JAX,
  against the numeric route at the smallest size).

Every route runs from the input arrays (graph building included), and
``jx.jit(jx.hessian(f))`` is timed as its own route, traced once beforehand as
JAX compiles once. Ratios are paired in one process: each route, ours and the
peers', is timed alternately with the write floor (``machine.fresh_fill`` of the
Hessian's shape: new pages on every call), JAX's compile time reported apart.
Ours against ``jax.hessian`` (jit) is the ratio of the two paired ratios to the
floor: timed alternately with JAX itself, our calls run several times slower
than alternately with the floor on this project's VMs (JAX's allocator keeps the
pages it frees, so a Hessian-sized result of ours then faults in pages the host
has reclaimed); that direct ratio is kept in the JSON as ``to_jax_alternating``.
Run ``python benchmarks/run.py --sections hessians``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import numpy as np

import jacobians as jx

from . import machine, peers
from .timing import measure, measure_paired, median, peak_bytes

__all__ = ["hessians", "targets", "hvp_targets", "markdown", "SIZES"]

SIZES = {"xAx": (256, 1024, 2048), "logsumexp": (128, 512, 1024), "least squares": (16, 32, 64), "mlp": (8, 16, 32)}
TINY = {"xAx": (8,), "logsumexp": (8,), "least squares": (3,), "mlp": (3,)}


def _data(case: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed + n)
    if case == "xAx":
        return {"A": rng.standard_normal((n, n)), "x": rng.standard_normal(n)}
    if case == "logsumexp":
        return {"x": rng.standard_normal(n)}
    if case == "least squares":
        return {"X": rng.standard_normal((2 * n, n)), "T": rng.standard_normal((2 * n, n)),
                "W": rng.standard_normal((n, n))}
    return {"X": rng.standard_normal((2 * n, n)), "W1": rng.standard_normal((n, n)) / np.sqrt(n),
            "W2": rng.standard_normal((n, n)) / np.sqrt(n), "T": rng.standard_normal((2 * n, n))}


def _loss(case: str, d: Dict[str, np.ndarray], lib):
    """The scalar loss as a function of the differentiated argument, written once for numpy-like ``lib``."""
    if case == "xAx":
        return lambda x: x @ (d["A"] @ x)
    if case == "logsumexp":
        return lambda x: lib.log(lib.sum(lib.exp(x)))
    if case == "least squares":
        return lambda W: lib.sum((d["X"] @ W - d["T"]) ** 2)
    return lambda W1: lib.sum((lib.tanh(d["X"] @ W1) @ d["W2"] - d["T"]) ** 2)


def _arg(case: str, d: Dict[str, np.ndarray]) -> np.ndarray:
    return d["x"] if case in ("xAx", "logsumexp") else d["W"] if case == "least squares" else d["W1"]


def _closed(case: str, d: Dict[str, np.ndarray]) -> Optional[np.ndarray]:
    if case == "xAx":
        return d["A"] + d["A"].T
    if case == "logsumexp":
        p = np.exp(d["x"] - d["x"].max())
        p /= p.sum()
        return np.diag(p) - np.outer(p, p)
    if case == "least squares":
        n = d["W"].shape[0]
        return np.einsum("ac,bd->abcd", 2 * d["X"].T @ d["X"], np.eye(n))
    return None


def _by_hand(case: str, d: Dict[str, np.ndarray]) -> Optional[Callable[[], np.ndarray]]:
    """The closed form written once with plain numpy, its input-dependent parts computed in the call: what a
    hand-written Hessian costs (xᵀAx: ``A + A.T``; logsumexp: −p pᵀ into a new array, then p added on its
    diagonal; least squares: 2 XᵀX ⊗ I as one broadcast product). None for the MLP (see _gemm_bound)."""
    if case == "xAx":
        A = d["A"]
        return lambda: A + A.T
    if case == "logsumexp":
        x = d["x"]

        def logsumexp_hessian() -> np.ndarray:
            p = np.exp(x - x.max())
            p /= p.sum()
            H = np.multiply(p[:, None], -p[None, :])
            H.reshape(-1)[:: x.size + 1] += p
            return H
        return logsumexp_hessian
    if case == "least squares":
        X, n = d["X"], d["W"].shape[0]
        eye = np.eye(n)
        return lambda: np.multiply((2 * X.T @ X)[:, None, :, None], eye[None, :, None, :])
    return None


def _consts(case: str, d: Dict[str, np.ndarray]) -> Dict[str, object]:
    """The data as constant nodes, made once outside the timed call, as every peer gets its data converted
    to its own arrays once (jnp.asarray, torch.as_tensor); the differentiated argument stays an array."""
    return {k: a if a is _arg(case, d) else jx.const(a, name=k) for k, a in d.items()}


def _ours(case: str, d: Dict[str, np.ndarray], method: str) -> Callable[[], np.ndarray]:
    f = _loss(case, _consts(case, d), np)
    return lambda: jx.hessian(f, method=method)(_arg(case, d))


def _ours_jit(case: str, d: Dict[str, np.ndarray]) -> Callable[[], np.ndarray]:
    """``jx.jit(jx.hessian(f))`` traced once here (outside the timed calls, as JAX compiles its own once): a call
    replays the factors' ops and lands the planned products. A Hessian that does not depend on the argument
    (xᵀAx, least squares) is a constant of the program, so a call copies it."""
    h = jx.jit(jx.hessian(_loss(case, _consts(case, d), np)))
    arg = _arg(case, d)
    h(arg)
    return lambda: h(arg)


def _gemm_bound(d: Dict[str, np.ndarray], floor: Callable[[], None], s) -> dict:
    """The MLP Hessian's Gauss–Newton term needs Σ_e Z[e, ab] Z[e, cd] with Z[e, ab] = X[e, a] tanh'(XW1)[e, b]:
    one (D², 2D) × (2D, D²) matrix product, written into a new D⁴ array. Timed alone (one ``np.matmul``, BLAS),
    paired with the floor: a lower bound for every route, whatever it does with the rest."""
    X, W1 = d["X"], d["W1"]
    s1 = 1 - np.tanh(X @ W1) ** 2
    Z = np.einsum("ea,eb->eab", X, s1).reshape(X.shape[0], -1)
    ZT = np.ascontiguousarray(Z.T)
    gemm = lambda: np.matmul(ZT, Z)  # noqa: E731
    t, f, ratios = measure_paired(gemm, floor, repeats=s.repeats, budget=s.budget)
    return {"median_s": t.median, "floor_s": f.median, "to_floor": median([1 / r for r in ratios]),
            "shape": [ZT.shape[0], ZT.shape[1], Z.shape[1]]}


def _peer(name: str, case: str, d: Dict[str, np.ndarray]):
    """(callable, to_numpy, compile seconds) for one peer, or None when it is not installed."""
    arg = _arg(case, d)
    if name == "jax.hessian (jit)" and peers._have("jax"):
        jax, jnp = peers._jax()
        dj = {k: jnp.asarray(v) for k, v in d.items()}
        f = _loss(case, dj, jnp)
        h = jax.jit(jax.hessian(f))
        a = jnp.asarray(arg)
        import time

        t0 = time.perf_counter()
        h(a).block_until_ready()
        compile_s = time.perf_counter() - t0
        return (lambda: h(a).block_until_ready()), np.asarray, compile_s
    if name == "torch.func.hessian" and peers._have("torch"):
        import torch

        dt = {k: torch.as_tensor(v) for k, v in d.items()}
        f = _loss(case, dt, torch)
        a = torch.as_tensor(arg)
        return (lambda: torch.func.hessian(f)(a)), (lambda t: t.detach().numpy()), 0.0
    if name == "autograd.hessian" and peers._have("autograd"):
        import autograd
        import autograd.numpy as anp

        f = _loss(case, d, anp)
        return (lambda: autograd.hessian(f)(arg)), np.asarray, 0.0
    return None


PEERS = ("jax.hessian (jit)", "torch.func.hessian", "autograd.hessian")


def _hvp_ours(case: str, d: Dict[str, np.ndarray], v: np.ndarray) -> Callable[[], np.ndarray]:
    """One Hessian-vector product from the input array: the graph, its gradient graph, one tangent pushed."""
    f = _loss(case, _consts(case, d), np)

    def call() -> np.ndarray:
        x = jx.var(_arg(case, d))
        return jx.hvp(f(x), x, v)

    return call


def _hvp_jit(case: str, d: Dict[str, np.ndarray], v: np.ndarray) -> Callable[[], np.ndarray]:
    """One product replayed by ``jx.jit``: reverse over reverse, d/dx (∇f(x) · v), traced once here (outside the
    timed calls, as JAX compiles its own once)."""
    f = _loss(case, _consts(case, d), np)
    h = jx.jit(lambda x, t: jx.grad(lambda x: jx.sum(jx.grad(f)(x) * t))(x))
    arg = _arg(case, d)
    h(arg, v)
    return lambda: h(arg, v)


def _hvp_jax(case: str, d: Dict[str, np.ndarray], v: np.ndarray):
    """JAX's forward-over-reverse product, jvp(grad(f)), jit-compiled (compile seconds apart), or None."""
    if not peers._have("jax"):
        return None
    jax, jnp = peers._jax()
    f = _loss(case, {k: jnp.asarray(a) for k, a in d.items()}, jnp)
    h = jax.jit(lambda a, t: jax.jvp(jax.grad(f), (a,), (t,))[1])
    a, t = jnp.asarray(_arg(case, d)), jnp.asarray(v)
    import time

    t0 = time.perf_counter()
    h(a, t).block_until_ready()
    return (lambda: h(a, t).block_until_ready()), time.perf_counter() - t0


def _hvp_row(case: str, d: Dict[str, np.ndarray], ref: Optional[np.ndarray], s, jit: bool = False) -> dict:
    """One product H·v by jx.hvp (or its jx.jit replay) against jvp(grad) in JAX, paired; checked against the
    Hessian first."""
    arg = _arg(case, d)
    v = np.random.default_rng(s.seed + 7).standard_normal(arg.shape)
    ours = _hvp_jit(case, d, v) if jit else _hvp_ours(case, d, v)
    got = np.asarray(ours())
    want = None if ref is None else (ref.reshape(arg.size, arg.size) @ v.ravel()).reshape(arg.shape)
    row = {"rel_error": None if want is None else float(np.abs(got - want).max() / max(np.abs(want).max(), 1.0))}
    jax_peer = _hvp_jax(case, d, v) if s.peers else None
    if jax_peer is None:
        row.update(median_s=measure(ours, repeats=s.repeats, budget=s.budget).median)
        return row
    t, tj, ratios = measure_paired(ours, jax_peer[0], repeats=s.repeats, budget=s.budget)  # JAX / ours
    row.update(median_s=t.median, jax_s=tj.median, to_jax=median([1 / r for r in ratios]), compile_s=jax_peer[1])
    return row


def hessians(s) -> dict:
    """Every case at every size: our routes and the peers, ratios to the floor and to JAX paired in one run."""
    tiny = max(s.sizes, default=8) <= 4
    sizes = TINY if tiny else SIZES
    pretouched = machine.pretouch(tiny)  # the floor's fresh pages then are backed ones (machine.pretouch)
    out: Dict[str, list] = {}
    for case, grid in sizes.items():
        rows = []
        for n in grid:
            d = _data(case, n, s.seed)
            shape = _arg(case, d).shape * 2
            floor = lambda: machine.fresh_fill(shape)  # noqa: E731  (new pages every call: the fresh-memory floor)
            ref = _closed(case, d)
            row: Dict[str, object] = {"n": n, "hessian_shape": list(shape), "routes": {}}
            jax_peer = _peer("jax.hessian (jit)", case, d) if s.peers else None
            if ref is None and jax_peer is not None:
                ref = np.asarray(jax_peer[0]())
            routes: Dict[str, Callable[[], object]] = {"factored": _ours(case, d, "factored"),
                                                       "factored_jit": _ours_jit(case, d)}
            if np.prod(_arg(case, d).shape) <= 256:
                routes["hvp"] = _ours(case, d, "hvp")
            for name, call in routes.items():
                s.progress.step(f"hessians {case} n={n} {name}")
                H = np.asarray(call())
                err = None if ref is None else float(np.abs(H - ref).max() / max(np.abs(ref).max(), 1.0))
                t, f, ratios = measure_paired(call, floor, repeats=s.repeats, budget=s.budget)  # floor / route
                entry = {"median_s": t.median, "floor_s": f.median, "to_floor": median([1 / r for r in ratios]),
                         "rel_error": err, "peak_bytes": peak_bytes(call)}
                if jax_peer is not None:  # route time / JAX time, pair by pair (see the module docstring)
                    _, _, jax_over_ours = measure_paired(call, jax_peer[0], repeats=s.repeats, budget=s.budget)
                    entry["to_jax_alternating"] = median([1 / r for r in jax_over_ours])
                row["routes"][name] = entry
            s.progress.step(f"hessians {case} n={n} hvp per product")
            row["hvp_product"] = _hvp_row(case, d, ref, s)
            s.progress.step(f"hessians {case} n={n} jitted hvp per product")
            row["hvp_jit"] = _hvp_row(case, d, ref, s, jit=True)
            for name in PEERS if s.peers else ():
                peer = jax_peer if name.startswith("jax") else _peer(name, case, d)
                if peer is None:
                    row["routes"][name] = {"note": "not installed"}
                    continue
                s.progress.step(f"hessians {case} n={n} {name}")
                call, to_numpy, compile_s = peer
                H = to_numpy(call())
                err = None if ref is None else float(np.abs(H - ref).max() / max(np.abs(ref).max(), 1.0))
                t, f, ratios = measure_paired(call, floor, repeats=s.repeats, budget=s.budget)
                row["routes"][name] = {"median_s": t.median, "floor_s": f.median,
                                       "to_floor": median([1 / r for r in ratios]), "rel_error": err,
                                       "compile_s": compile_s}
            hand = _by_hand(case, d)
            if hand is not None:  # plain numpy's cost for the closed form, checked first
                s.progress.step(f"hessians {case} n={n} numpy by hand")
                err = None if ref is None else float(np.abs(hand() - ref).max() / max(np.abs(ref).max(), 1.0))
                t, f, ratios = measure_paired(hand, floor, repeats=s.repeats, budget=s.budget)
                row["by_hand"] = {"median_s": t.median, "floor_s": f.median, "rel_error": err,
                                  "to_floor": median([1 / r for r in ratios])}
            if case == "mlp":  # a lower bound any route pays: the Gauss–Newton term's matrix product alone
                s.progress.step(f"hessians {case} n={n} Gauss–Newton GEMM alone")
                row["gemm"] = _gemm_bound(d, floor, s)
            jax_floor = row["routes"].get("jax.hessian (jit)", {}).get("to_floor")
            for name in routes:  # ours / JAX as the ratio of their paired ratios to the floor
                if jax_floor:
                    row["routes"][name]["to_jax"] = row["routes"][name]["to_floor"] / jax_floor
            rows.append(row)
        out[case] = rows
    return {"cases": out, "pretouched_bytes": pretouched}


HESSIAN_ROUTES = {"factored": "jx.hessian, graph built in the call", "factored_jit": "jx.jit(jx.hessian), traced once"}


def targets(sec: dict) -> List[dict]:
    """Per case at its largest size and per factored route (graph built in the call; jx.jit replay, traced once as
    JAX compiles once): ≥ 10× faster than JAX (or ≤ 1.5× the floor where JAX is within 10× of it), never above
    2× the floor; hvp: per product, compared in the table."""
    rows = []
    for case, grid in sec.get("cases", {}).items():
        last = grid[-1]
        jax = last["routes"].get("jax.hessian (jit)", {})
        jax_floor = jax.get("to_floor")
        for key, route in HESSIAN_ROUTES.items():
            fac = last["routes"].get(key)
            if fac is None:
                continue
            if fac.get("to_jax") is None or jax_floor is None:
                rows.append({"case": case, "n": last["n"], "route": route, "met": None, "detail": "JAX not run"})
                continue
            speedup = 1.0 / fac["to_jax"]
            goal = "≤ 1.5× floor" if jax_floor <= 10 else "≥ 10× faster than JAX"
            met = (fac["to_floor"] <= 1.5 if jax_floor <= 10 else speedup >= 10) and fac["to_floor"] <= 2.0
            rows.append({"case": case, "n": last["n"], "route": route, "met": bool(met), "goal": goal,
                         "speedup_vs_jax": speedup, "to_floor": fac["to_floor"], "jax_to_floor": jax_floor})
    return rows


HVP_ROUTES = {"hvp_product": "jx.hvp, graph included", "hvp_jit": "jx.jit replay, traced once"}


def hvp_targets(sec: dict) -> List[dict]:
    """Per case at its largest size: one product within 2× of JAX's jit-compiled jvp(grad), for jx.hvp (graph
    built in the call) and for its jx.jit replay (traced once, as JAX compiles once)."""
    rows = []
    for case, grid in sec.get("cases", {}).items():
        for key, route in HVP_ROUTES.items():
            h = grid[-1].get(key, {})
            if h.get("to_jax") is None:
                continue
            rows.append({"case": case, "n": grid[-1]["n"], "route": route, "to_jax": h["to_jax"],
                         "met": h["to_jax"] <= 2.0})
    return rows


def markdown(sec: dict) -> str:
    lines = ["## Hessians", "", "| case | n | route | time | × floor | × JAX | rel. error | peak |",
             "|---|---|---|---|---|---|---|---|"]
    for case, grid in sec.get("cases", {}).items():
        for row in grid:
            for name, e in row["routes"].items():
                if "median_s" not in e:
                    lines.append(f"| {case} | {row['n']} | {name} | {e.get('note', '')} | | | | |")
                    continue
                err = "–" if e["rel_error"] is None else f"{e['rel_error']:.1e}"
                to_jax = "–" if e.get("to_jax") is None else f"{e['to_jax']:.3g}"
                lines.append(f"| {case} | {row['n']} | {name} | {e['median_s'] * 1e3:.3g} ms | {e['to_floor']:.2f} | "
                             f"{to_jax} | {err} | {e.get('peak_bytes', 0) / 2**20:.1f} MiB |")
    lines += ["", "One Hessian-vector product against JAX's `jvp(grad(f))` (jit): `jx.hvp` builds the graph in every "
              "call; the jx.jit replay (reverse over reverse) was traced once beforehand:", "",
              "| case | n | route | ours | JAX jvp(grad) | × JAX (paired) | rel. error |", "|---|---|---|---|---|---|---|"]
    for case, grid in sec.get("cases", {}).items():
        for row in grid:
            for key, route in HVP_ROUTES.items():
                h = row.get(key)
                if not h:
                    continue
                err = "–" if h["rel_error"] is None else f"{h['rel_error']:.1e}"
                jax_t = "–" if h.get("jax_s") is None else f"{h['jax_s'] * 1e3:.3g} ms"
                ratio = "–" if h.get("to_jax") is None else f"{h['to_jax']:.3g}"
                lines.append(f"| {case} | {row['n']} | {route} | {h['median_s'] * 1e3:.3g} ms | {jax_t} | {ratio} | "
                             f"{err} |")
    for case, grid in sec.get("cases", {}).items():
        for row in grid:
            if row.get("by_hand"):
                h = row["by_hand"]
                lines += ["", f"{case}, n = {row['n']}: the closed form written with plain numpy takes "
                          f"{h['median_s'] * 1e3:.3g} ms, {h['to_floor']:.2f}× the floor."]
            if row.get("gemm"):
                g = row["gemm"]
                lines += ["", f"{case}, n = {row['n']}: the Gauss–Newton term's matrix product alone "
                          f"({g['shape'][0]}×{g['shape'][1]} by {g['shape'][1]}×{g['shape'][2]}, one np.matmul) takes "
                          f"{g['median_s'] * 1e3:.3g} ms, {g['to_floor']:.2f}× the floor: a lower bound for any route."]
    lines += ["", "| case | n | route | goal | × floor | JAX × floor | speed-up vs JAX | met |",
              "|---|---|---|---|---|---|---|---|"]
    for t in targets(sec):
        if t["met"] is None:
            lines.append(f"| {t['case']} | {t['n']} | {t['route']} | | | | | n/a ({t['detail']}) |")
        else:
            lines.append(f"| {t['case']} | {t['n']} | {t['route']} | {t['goal']} | {t['to_floor']:.2f} | "
                         f"{t['jax_to_floor']:.2f} | {t['speedup_vs_jax']:.2f}× | {'yes' if t['met'] else 'NO'} |")
    for t in hvp_targets(sec):
        lines.append(f"| {t['case']} | {t['n']} | {t['route']} | one hvp ≤ 2× JAX jvp(grad) | | | "
                     f"{1 / t['to_jax']:.2f}× | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"
