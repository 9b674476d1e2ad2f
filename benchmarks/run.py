"""Run the benchmarks: ``python benchmarks/run.py`` (``--tiny`` for a seconds-long check).

Writes ``benchmarks.json`` (raw), ``benchmarks.md`` (tables, targets) and,
with matplotlib, ``benchmarks.png`` (log-log plots) into ``--out``
(default ``benchmarks/results``), and prints the targets. Peers (JAX,
PyTorch, autograd) are used when installed: ``python -m pip install ".[peers]"``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # benchmark this checkout (and import the benchmarks package)
    sys.path.insert(0, ROOT)

from benchmarks import full_jacobians, hessians, machine, peers, report, sections  # noqa: E402
from benchmarks.timing import Progress  # noqa: E402

SECTIONS = ("orders", "construction", "jacobian", "gradient", "throughput", "hessians", "full", "depth")
MIB = 2**20


def _ints(text: str) -> tuple:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 8,16,32, got {text!r}") from None


def _sections(text: str) -> tuple:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in SECTIONS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny sizes and few repeats: checks that everything runs")
    p.add_argument("--sizes", type=_ints, help="D = N grid (default 8,16,32,48,64)")
    p.add_argument("--extended", type=_ints, help="larger grid for the cheap gradient routes (default 128,256,512,1024)")
    p.add_argument("--repeats", type=int, help="timed calls per measurement (default 5)")
    p.add_argument("--budget", type=float, help="seconds of timed calls per measurement, at least 3 calls (default 30)")
    p.add_argument("--sections", type=_sections, default=SECTIONS, help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--no-peers", action="store_true", help="skip JAX, PyTorch and autograd")
    p.add_argument("--no-plots", action="store_true", help="do not draw the PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"), help="output directory")
    return p


def _settings(args: argparse.Namespace) -> sections.Settings:
    tiny = args.tiny
    return sections.Settings(
        sizes=args.sizes or ((3,) if tiny else (8, 16, 32, 48, 64)),
        extended=args.extended if args.extended is not None else ((4, 6) if tiny else (128, 256, 512, 1024)),
        repeats=args.repeats or (1 if tiny else 5),
        budget=args.budget or (2.0 if tiny else 30.0),
        peers=not args.no_peers,
        chains=20 if tiny else 200,
        bandwidth_bytes=(8 if tiny else 256) * MIB,
    )


def _steps(s: sections.Settings, chosen: Sequence[str]) -> int:
    """How many progress steps the run will take (for the bar)."""
    n_peers_jac, n_peers_grad = 5, 3
    per = {"orders": 5, "construction": 6 * len(s.sizes),
           "jacobian": (8 + n_peers_jac) * len(s.sizes),
           "gradient": (8 + n_peers_grad) * len(s.sizes) + (2 + n_peers_grad) * len(s.extended) + 4,
           "throughput": 6 * len(s.sizes), "hessians": 72,
           "full": 4 * len(full_jacobians.SIZES), "depth": len(full_jacobians.LAYERS) + 3}
    return sum(per[c] for c in chosen)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the chosen sections, write JSON / Markdown / PNG, print the targets; 0 on success."""
    args = parser().parse_args(argv)
    s = _settings(args)
    chosen = [c for c in SECTIONS if c in args.sections]
    os.makedirs(args.out, exist_ok=True)
    s.progress = Progress(_steps(s, chosen) + 2, enabled=not args.quiet)
    t0 = time.perf_counter()
    s.progress.step("machine facts")
    meta = {"machine": machine.facts(), "peer_runtime": peers.runtime_facts(s.peers),
            "settings": {"sizes": list(s.sizes), "extended": list(s.extended), "repeats": s.repeats,
                         "budget": s.budget, "peers": s.peers,
                         "sections": chosen, "argv": list(argv if argv is not None else sys.argv[1:])}}
    s.progress.step("write bandwidth")
    meta["reference"] = {"bandwidth": machine.write_bandwidth(s.bandwidth_bytes)}
    res: dict = {"meta": meta}
    runners = {"orders": lambda: sections.orders(s),
               "construction": lambda: sections.construction(s, meta["reference"]["bandwidth"]),
               "jacobian": lambda: sections.jacobian(s), "gradient": lambda: sections.gradient(s),
               "throughput": lambda: sections.throughput(s), "hessians": lambda: hessians.hessians(s),
               "full": lambda: full_jacobians.full(s), "depth": lambda: full_jacobians.depth(s)}
    meta["section_seconds"] = {}
    for name in chosen:
        t1 = time.perf_counter()
        res[name] = runners[name]()
        meta["section_seconds"][name] = time.perf_counter() - t1
    s.progress.done()
    meta["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    meta["seconds"] = time.perf_counter() - t0
    res["targets"] = report.targets(res)
    res["references"] = report.references(res)
    png = None if args.no_plots else report.plot(res, os.path.join(args.out, "benchmarks.png"))
    meta["plot"] = os.path.basename(png) if png else ("disabled (--no-plots)" if args.no_plots
                                                       else "matplotlib is not installed (pip install '.[plot]')")
    md = report.markdown(res, os.path.basename(png) if png else None)
    if "hessians" in res:
        md += "\n" + hessians.markdown(res["hessians"])
        for t in hessians.targets(res["hessians"]):
            print(f"  hessian {t['case']} at n={t['n']} ({t['route']}): " + (t.get("detail", "") if t["met"] is None
                  else f"{t['to_floor']:.2f}× floor, {t['speedup_vs_jax']:.2f}× faster than JAX "
                  f"(JAX {t['jax_to_floor']:.2f}× floor), goal {t['goal']}: {'met' if t['met'] else 'NOT MET'}"))
        for t in hessians.hvp_targets(res["hessians"]):
            print(f"  one hvp ({t['route']}), {t['case']} at n={t['n']}: {t['to_jax']:.2f}× JAX's jvp(grad), goal ≤ 2×: "
                  f"{'met' if t['met'] else 'NOT MET'}")
    if "full" in res or "depth" in res:
        md += "\n" + full_jacobians.markdown(res)
        full_jacobians.print_targets(res)
    with open(os.path.join(args.out, "benchmarks.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)
    with open(os.path.join(args.out, "benchmarks.md"), "w") as f:
        f.write(md)
    print(f"results in {args.out} (benchmarks.json, benchmarks.md{', benchmarks.png' if png else ''}) "
          f"after {meta['seconds']:.0f} s")
    for t in res["targets"]:
        met = {True: "met", False: "NOT MET", None: "n/a"}[t["met"]]
        measured = "–" if t["measured"] is None else f"{t['measured']:.2f}"
        print(f"  {t['name']}: {measured} (goal {t['goal']}) {met} — {t['detail']}")
    for r in res["references"]:
        if r["ratio"] is not None:
            print(f"  {r['what']}: {report.fmt_time(r['measured_s'])} vs reference {report.fmt_time(r['reference_s'])}"
                  f" ({r['ratio']:.2f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
