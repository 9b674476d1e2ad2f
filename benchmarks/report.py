"""Targets, the Markdown report and the log-log plots, all from the raw results dict.

>>> fmt_time(0.000123), fmt_time(1.5), fmt_bytes(3 * 2**20)
('0.123 ms', '1.50 s', '3.0 MiB')
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

__all__ = ["REFERENCE", "targets", "markdown", "plot", "fmt_time", "fmt_bytes"]

MIB = 2**20
FIT_FROM = 32  # as in sections.FIT_FROM (kept here so the report needs no jacobians import)
# Figures the issue quotes for this kind of machine (2 cores, float64), D = N = 64, in seconds.
REFERENCE = [
    ("jacobian", "jax.jacrev (jit)", 0.344, "full dY/dX, jax.jacrev (jit)"),
    ("jacobian", "torch.func.jacrev", 0.438, "full dY/dX, torch.func.jacrev"),
    ("jacobian", "autograd.jacobian", 0.923, "full dY/dX, autograd.jacobian"),
    ("jacobian", "explicit (optimal)", 1.7, "full dY/dX, dense chain of local Jacobians"),
    ("gradient", "vjp route", 1e-4, "gradient, VJP"),
    ("gradient", "explicit (reverse)", 0.056, "gradient, dense explicit reverse"),
]


def fmt_time(s: Optional[float]) -> str:
    if s is None:
        return "–"
    if s < 1e-3:
        return f"{s * 1e3:.3f} ms"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(n: Optional[float]) -> str:
    if n is None:
        return "–"
    for unit, scale in (("GiB", 2**30), ("MiB", MIB), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _fmt(x: Optional[float], digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _median(values: List[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def _row_at(entry: Optional[dict], D: int) -> Optional[dict]:
    if not entry:
        return None
    return next((r for r in entry["by_size"] if r["D"] == D), None)


# ------------------------------------------------------------------ targets
def _target(name: str, goal: str, detail: str, measured: Optional[float] = None,
            met: Optional[bool] = None) -> dict:
    """One row of the targets table; measured and met stay None when not measurable in this run."""
    return {"name": name, "goal": goal, "measured": measured, "met": met, "detail": detail}


# the paired gradient rows that are targets: the default call, graph included, and the traced-once replay
GRADIENT_TARGET_ROUTES = {"auto": "method='auto', graph included", "jit": "jx.jit(jx.grad(l)), traced once"}

def targets(res: dict) -> List[dict]:
    """Each target of the issue: goal, measured value, met (True/False/None when not measurable here)."""
    out: List[dict] = []
    con = res.get("construction")
    if con:
        name, goal = "local Jacobian construction (≥ 32 MiB)", "≥ 0.75 of write bandwidth"
        big = [r for r in con["rows"] if not r["op"].startswith("reference") and r["bytes"] >= 32 * MIB]
        if big:
            worst = min(big, key=lambda r: r["fresh_fraction"])
            rec = min(r["recycled_fraction"] for r in big)
            out.append(_target(name, goal,
                               f"worst {worst['op']} at D={worst['D']}; median "
                               f"{_median([r['fresh_fraction'] for r in big]):.2f}; "
                               f"what-if recycled buffer: worst {rec:.2f}",
                               worst["fresh_fraction"], worst["fresh_fraction"] >= 0.75))
        else:
            out.append(_target(name, goal, "no local Jacobian ≥ 32 MiB at these sizes"))
    thr = res.get("throughput")
    if thr:
        name, goal = "dense chain contraction (D ≥ 48)", "≥ 0.80 of GEMM rate"
        big = [r for r in thr["rows"] if r["D"] >= 48 and "fraction_of_gemm" in r]
        if big:
            worst = min(big, key=lambda r: r["fraction_of_gemm"])
            out.append(_target(name, goal,
                               f"worst {worst['chain']}, {worst['order']}, D={worst['D']}; median "
                               f"{_median([r['fraction_of_gemm'] for r in big]):.2f}, best "
                               f"{max(r['fraction_of_gemm'] for r in big):.2f}",
                               worst["fraction_of_gemm"], worst["fraction_of_gemm"] >= 0.80))
        else:
            out.append(_target(name, goal, "no size ≥ 48 in this run"))
    grad = res.get("gradient")
    if grad:
        name, goal = "explicit gradient peak memory", "≤ 1.25 × largest local Jacobian"
        ratios = [(r["peak_over_largest_local"], route, r["D"])
                  for route in ("explicit (reverse)", "explicit (optimal)")
                  for r in grad["routes"].get(route, {}).get("by_size", [])
                  if "peak_over_largest_local" in r and r["largest_local_jacobian_bytes"] >= MIB]
        fwd = [r["peak_over_largest_local"] for r in grad["routes"].get("explicit (forward)", {}).get("by_size", [])
               if "peak_over_largest_local" in r]
        if ratios:
            worst = max(ratios)
            out.append(_target(name, goal,
                               f"worst {worst[1]} at D={worst[2]}; forward order (not a target) up to "
                               f"{max(fwd, default=float('nan')):.2f}",
                               worst[0], worst[0] <= 1.25))
        else:
            out.append(_target(name, goal,
                               "no local Jacobian ≥ 1 MiB at these sizes (the graph and Python overhead dominate)"))
    for r in (grad or {}).get("paired", []):
        if r["route"] not in GRADIENT_TARGET_ROUTES or "ratio" not in r:
            continue
        out.append(_target(f"gradient at D={r['D']} ({GRADIENT_TARGET_ROUTES[r['route']]})",
                           f"≤ {r['goal']}× {r['vs']}",
                           f"paired: {fmt_time(r['ours_s'])} against {fmt_time(r['other_s'])}",
                           r["ratio"], r["met"]))
    orders = res.get("orders")
    if orders:
        rc = orders["random_chains"]
        ab = orders["abcd"]
        out.append(_target("optimal plan FLOPs", "≤ min(forward, reverse), chains ≤ 30 operands",
                           f"{rc['count']} random chains up to {rc['max_operands']} operands, "
                           f"{rc['violations']} above; A·B·C·D optimal {ab['optimal']['flops']:.3g} vs "
                           f"reverse {ab['reverse']['flops']:.3g}, forward {ab['forward']['flops']:.3g}",
                           rc["max_ratio"], rc["violations"] == 0))
    return out


def references(res: dict) -> List[dict]:
    """The issue's reference figures at D = 64 next to this run's."""
    rows = []
    for section, route, ref, label in REFERENCE:
        r = _row_at(res.get(section, {}).get("routes", {}).get(route), 64)
        measured = r.get("median_s") if r else None
        rows.append({"what": label, "route": route, "reference_s": ref, "measured_s": measured,
                     "ratio": None if measured is None else measured / ref,
                     "note": (r or {}).get("skipped", "" if r else "D = 64 not in this run")})
    return rows


# ------------------------------------------------------------------ markdown
def _threads(m: dict) -> str:
    """The BLAS kernel and thread count in use (threadpoolctl) and the thread environment variables.

    >>> _threads({"threadpools": [{"internal_api": "openblas", "version": "0.3", "architecture": "Haswell",
    ...                            "num_threads": 2}], "thread_env": {"OPENBLAS_NUM_THREADS": "2"}})
    'openblas 0.3, kernel Haswell, 2 threads; OPENBLAS_NUM_THREADS=2'
    """
    pools = m.get("threadpools")
    if isinstance(pools, list):
        text = "; ".join(f"{p.get('internal_api', '?')} {p.get('version', '')}, kernel {p.get('architecture', '?')}, "
                         f"{p.get('num_threads', '?')} threads" for p in pools) or "no BLAS or OpenMP pool loaded"
    else:
        text = str(pools or "not recorded")
    env = " ".join(f"{k}={v}" for k, v in (m.get("thread_env") or {}).items())
    return text + ("; " + env if env else "; no thread environment variables set")


def _machine(meta: dict) -> List[str]:
    m = meta["machine"]
    blas = m.get("numpy_blas", {}).get("blas", {})
    blas_txt = f"{blas.get('name', '?')} {blas.get('version', '')}".strip() if isinstance(blas, dict) else "?"
    peers = ", ".join(f"{k} {v}" for k, v in m["peers"].items() if v) or "none installed"
    ref = meta["reference"]
    lines = [
        f"- date {m['date']}; {m['cpu_model']}; {m['cpus_usable']} usable of {m['cpu_count']} CPUs; "
        f"{fmt_bytes(m['memory_bytes'])} RAM; load average at start {_loads(m.get('load_average_at_start'))}, "
        f"at end {_loads(meta.get('load_average_at_end'))}",
        f"- Python {m['python']}, numpy {m['numpy']} ({blas_txt}), opt_einsum {m['opt_einsum']}, "
        f"jacobians {m['jacobians']} ({m.get('jacobians_commit') or 'no git'}); peers: {peers}",
        f"- threads: {_threads(m)}",
        f"- write bandwidth (fill of a preallocated {fmt_bytes(ref['bandwidth']['bytes'])} array): "
        f"{ref['bandwidth']['prefaulted_bytes_per_s'] / 1e9:.1f} GB/s; into fresh memory "
        f"(page faults included): {ref['bandwidth']['fresh_bytes_per_s'] / 1e9:.1f} GB/s",
        f"- settings: sizes D = N ∈ {meta['settings']['sizes']}, larger grid for cheap gradient routes "
        f"{meta['settings']['extended']}, median of up to {meta['settings']['repeats']} timed calls after one "
        f"warm-up call (at least 3 unless fewer were asked), {meta['settings']['budget']} s budget per measurement",
    ]
    if meta.get("note"):
        lines.append(f"- note: {meta['note']}")
    return lines


def _loads(x) -> str:
    return "–" if not x else "/".join(f"{v:.2f}" for v in x)


def _route_table(section: dict, key: str, fmt, sizes: List[int], extra_cols: List[tuple]) -> List[str]:
    head = "| route | " + " | ".join(f"D={D}" for D in sizes) + "".join(f" | {c[0]}" for c in extra_cols) + " |"
    lines = [head, "|---" * (1 + len(sizes) + len(extra_cols)) + "|"]
    notes = []
    for name, entry in section["routes"].items():
        cells = []
        for D in sizes:
            r = _row_at(entry, D)
            if r is None:
                cells.append("")
            elif "skipped" in r:
                cells.append("planned only" if r["skipped"].startswith("planned only") else "skipped")
                if r["skipped"] not in notes:
                    notes.append(f"{name}: {r['skipped']}")
            else:
                cells.append(fmt(r.get(key)))
        extra = [c[1](entry) for c in extra_cols]
        lines.append(f"| {name} | " + " | ".join(cells) + "".join(f" | {e}" for e in extra) + " |")
    uniq = []
    for n in notes:
        if n not in uniq:
            uniq.append(n)
    return lines + ([""] + [f"- {n}" for n in uniq] if uniq else [])


def _flops_table(section: dict, sizes: List[int]) -> List[str]:
    """Planned FLOPs of each explicit order at each size (shared products counted once)."""
    lines = ["| planned FLOPs | " + " | ".join(f"D={D}" for D in sizes) + " |", "|---" * (1 + len(sizes)) + "|"]
    for name, entry in section["routes"].items():
        if not name.startswith("explicit"):
            continue
        cells = [f"{r['flops']:.3g}" if r and "flops" in r else "" for r in (_row_at(entry, D) for D in sizes)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _max_err(entry: dict) -> str:
    errs = [r["rel_error"] for r in entry["by_size"] if "rel_error" in r]
    return f"{max(errs):.0e}" if errs else "–"


def markdown(res: dict, plot_name: Optional[str] = None) -> str:
    """The whole report as Markdown: machine, targets, one table per section, reference figures."""
    meta = res["meta"]
    L: List[str] = ["# Benchmark results", ""] + _machine(meta) + [""]
    L += ["## Targets", "", "| target | goal | measured | met | detail |", "|---|---|---|---|---|"]
    for t in res.get("targets", []):
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        L.append(f"| {t['name']} | {t['goal']} | {_fmt(t['measured'])} | {met} | {t['detail']} |")
    L.append("")
    if plot_name:
        L += [f"![log-log plots]({plot_name})", ""]
    o = res.get("orders")
    if o:
        L += ["## 0. Contraction orders: J = A·B·C·D (A 256×256, B 256×4, C 4×256, D 256×256)", "",
              "| order | planned FLOPs | path | time | rel. error |", "|---|---|---|---|---|"]
        for order, r in o["abcd"].items():
            when = fmt_time(r["median_s"]) if "median_s" in r else r.get("skipped", "")
            err = f"{r['rel_error']:.0e}" if "rel_error" in r else "–"
            L.append(f"| {order} | {r['flops']:.3g} | {r['path']} | {when} | {err} |")
        rc = o["random_chains"]
        L += ["", f"Random chains y = M_k ⋯ M_1 x (k ≤ 30, sizes 1–64, planned only): {rc['count']} chains, "
                  f"{rc['violations']} where optimal is above min(forward, reverse); optimal / min(pure) "
                  f"median {_fmt(rc['median_ratio'], 3)}, best {_fmt(rc['min_ratio'], 4)}, worst "
                  f"{_fmt(rc['max_ratio'], 3)}.", ""]
    c = res.get("construction")
    if c:
        L += ["## 1. Local Jacobian construction (fraction of write bandwidth)", "",
              "Each build is paired with a fill of a preallocated array of the same size, timed right after it; "
              "the fraction is the median over pairs of fill time / build time. The what-if column serves "
              "`memory.zeros` from one pre-faulted buffer (not what the library does).", "",
              "| local Jacobian | D | bytes | time | GB/s | fill GB/s | fraction | what-if recycled buffer |",
              "|---|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            rec = f"{r['recycled_fraction']:.2f}" if "recycled_fraction" in r else "–"
            build_gbs = r["bytes"] / r["fresh"]["median_s"] / 1e9
            fill_gbs = r["bytes"] / r["fill"]["median_s"] / 1e9
            L.append(f"| {r['op']} | {r['D']} | {fmt_bytes(r['bytes'])} | {fmt_time(r['fresh']['median_s'])} | "
                     f"{build_gbs:.2f} | {fill_gbs:.2f} | {r['fresh_fraction']:.2f} | {rec} |")
        L.append("")
    j = res.get("jacobian")
    if j:
        L += ["## 2. Full Jacobian dY/dX of Y = (X Xᵀ) X, D = N (median time)", ""]
        L += _route_table(j, "median_s", fmt_time, j["sizes"],
                          [(f"growth exponent (D ≥ {FIT_FROM})", lambda e: _fmt(e.get("exponent"))),
                           ("max rel. error", _max_err)])
        L += [""] + _flops_table(j, j["sizes"]) + [""]
    g = res.get("gradient")
    if g:
        sizes = g["sizes"] + g["extended"]
        L += ["## 3. Gradient dl/dX, l = ‖(X Xᵀ) X‖_F (median time)", ""]
        L += _route_table(g, "median_s", fmt_time, sizes,
                          [(f"exponent (D ≥ {FIT_FROM})", lambda e: _fmt(e.get("exponent"))),
                           ("exponent larger grid", lambda e: _fmt(e.get("exponent_large"))),
                           ("max rel. error", _max_err)])
        L += [""] + _flops_table(g, g["sizes"])
        if g.get("paired"):
            L += ["", "Paired call by call (median of the pairs' time ratios; ours builds the graph in every call):",
                  "", "| D | route | against | ours | theirs | ratio | goal |", "|---|---|---|---|---|---|---|"]
            for r in g["paired"]:
                L.append(f"| {r['D']} | {r['route']} | {r['vs']} | {fmt_time(r.get('ours_s'))} | "
                         f"{fmt_time(r.get('other_s'))} | {_fmt(r.get('ratio'))} | ≤ {r['goal']} |"
                         if "ratio" in r else f"| {r['D']} | {r['route']} | {r['vs']} | {r['skipped']} | | | |")
        L += ["", "Peak memory (tracemalloc; JAX and PyTorch allocate outside it, so they are not shown):", ""]
        mem = {"sizes": sizes, "routes": {k: v for k, v in g["routes"].items()
                                          if any("peak_bytes" in r for r in v["by_size"])}}
        L += _route_table(mem, "peak_bytes", fmt_bytes, sizes,
                          [("memory exponent", lambda e: _fmt(e.get("memory_exponent"))),
                           ("peak / largest local Jacobian (≥ 1 MiB)", lambda e: _fmt(max(
                               (r["peak_over_largest_local"] for r in e["by_size"]
                                if "peak_over_largest_local" in r and r["largest_local_jacobian_bytes"] >= MIB),
                               default=None)))])
        L.append("")
    t = res.get("throughput")
    if t:
        L += ["## 4. Dense chain contraction throughput (planned FLOPs / time, over GEMM at n = D²)", "",
              "Each chain call is paired with an n×n GEMM timed right after it; the fraction is the median over "
              "pairs of the two FLOP rates.", "",
              "| chain | order | D | planned FLOPs | time | GFLOP/s | GEMM GFLOP/s | fraction |",
              "|---|---|---|---|---|---|---|---|"]
        for r in t["rows"]:
            L.append(f"| {r['chain']} | {r['order']} | {r['D']} | {r['flops']:.3g} | {fmt_time(r['median_s'])} | "
                     f"{r['flops_per_s'] / 1e9:.1f} | {r['gemm_flops_per_s'] / 1e9:.1f} | {r['fraction_of_gemm']:.2f} |")
        L.append("")
    L += ["## Reference figures (the issue's, same kind of machine, D = N = 64)", "",
          "| what | reference | this run | this run / reference |", "|---|---|---|---|"]
    for r in references(res):
        here = fmt_time(r["measured_s"]) if r["measured_s"] else (r["note"] or "–")
        L.append(f"| {r['what']} | {fmt_time(r['reference_s'])} | {here} | {_fmt(r['ratio'])} |")
    L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------ plots
def plot(res: dict, path: str) -> Optional[str]:
    """Log-log plots into ``path`` (PNG); returns None, with a reason, when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from cycler import cycler

    plt.rcParams["axes.prop_cycle"] = cycler(color=plt.get_cmap("tab20").colors)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.07, top=0.95, wspace=0.25, hspace=0.32)
    for ax, key, title in ((axes[0, 0], "jacobian", "full dY/dX: time"), (axes[0, 1], "gradient", "gradient dl/dX: time")):
        sec = res.get(key)
        if not sec:
            ax.set_visible(False)
            continue
        for name, entry in sec["routes"].items():
            pts = [(r["D"], r["median_s"]) for r in entry["by_size"] if "median_s" in r]
            if pts:
                style = "-o" if entry["kind"] == "ours" else ("--s" if entry["kind"] == "peer" else ":^")
                ax.plot(*zip(*pts), style, ms=3, lw=1, label=name)
        _guides(ax, sec, [("explicit (reverse)", 4), ("closed form (numpy)", 3)] if key == "gradient"
                else [("explicit (reverse)", 6), ("jax.jacrev (jit)", 5)])
        ax.set(xscale="log", yscale="log", xlabel="D = N", ylabel="seconds", title=title)
        _d_ticks(ax, sec["sizes"] + sec.get("extended", []))
        ax.legend(fontsize=6, ncol=2)
    sec = res.get("gradient")
    ax = axes[1, 0]
    if sec:
        for name, entry in sec["routes"].items():
            pts = [(r["D"], r["peak_bytes"]) for r in entry["by_size"] if "peak_bytes" in r]
            if pts:
                ax.plot(*zip(*pts), "-o", ms=3, lw=1, label=name)
        ax.set(xscale="log", yscale="log", xlabel="D = N", ylabel="peak bytes (tracemalloc)",
               title="gradient dl/dX: peak memory")
        _d_ticks(ax, sec["sizes"] + sec.get("extended", []))
        ax.legend(fontsize=6)
    else:
        ax.set_visible(False)
    ax = axes[1, 1]
    con = res.get("construction")
    if con:
        bw = con["bandwidth"]["prefaulted_bytes_per_s"]
        ops = []
        for r in con["rows"]:
            if r["op"] not in ops:
                ops.append(r["op"])
        for op in ops:
            pts = [(r["bytes"], r["bytes"] / r["fresh"]["median_s"] / 1e9) for r in con["rows"] if r["op"] == op]
            ax.plot(*zip(*pts), "-o", ms=3, lw=1, label=op.split(":")[0])
        ax.axhline(bw / 1e9, color="k", lw=1, label="write bandwidth (prefaulted fill)")
        ax.axhline(0.75 * bw / 1e9, color="k", lw=1, ls="--", label="target 0.75")
        ax.set(xscale="log", yscale="log", xlabel="bytes of the local Jacobian", ylabel="GB/s",
               title="local Jacobian construction")
        ax.legend(fontsize=6)
    else:
        ax.set_visible(False)
    from matplotlib.ticker import NullLocator

    for ax in axes.flat:
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost seconds and add nothing here
    fig.savefig(path, dpi=64)
    plt.close(fig)
    return path


def _d_ticks(ax, sizes) -> None:
    """Plain tick labels at the measured sizes on a log axis."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(sorted(set(sizes)))
    ax.set_xticklabels([str(d) for d in sorted(set(sizes))], fontsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _guides(ax, sec: dict, guides) -> None:
    """Dotted D^p lines through a route's time at its largest size, over the sizes it was run at."""
    for route, p in guides:
        pts = [(r["D"], r["median_s"]) for r in sec["routes"].get(route, {}).get("by_size", []) if "median_s" in r]
        if len(pts) < 2:
            continue
        (lo, _), (hi, t) = min(pts), max(pts)
        lo = max(lo, hi / 8)  # the asymptote, not the overhead-bound small sizes
        ax.plot([lo, hi], [t * (lo / hi) ** p, t], color="0.5", lw=0.8, ls=":")
        ax.annotate(f"D^{p}", (lo, t * (lo / hi) ** p), fontsize=7, color="0.3")
