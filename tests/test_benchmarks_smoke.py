"""The benchmark suite at tiny sizes, so it cannot rot. Never asserts a timing."""
import doctest
import importlib
import json
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SECTIONS = ("orders", "construction", "jacobian", "gradient", "throughput")
ROUTES_JACOBIAN = ["explicit (optimal)", "explicit (reverse)", "explicit (forward)", "vjp route",
                   "numeric", "factored", "jax.jacrev (jit)", "jax.jacfwd (jit)", "torch.func.jacrev",
                   "torch.func.jacfwd", "autograd.jacobian"]
ROUTES_GRADIENT = ["explicit (optimal)", "explicit (reverse)", "explicit (forward)", "vjp route", "numeric",
                   "factored", "jax.grad (jit)", "torch.func.grad", "autograd.grad"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiny", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def _positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _rows_ok(routes, names):
    for name in names:
        entry = routes[name]
        assert entry["by_size"], name
        for row in entry["by_size"]:
            if "skipped" in row:  # a missing peer, a plan too big to run, or (factored only) a failure says why
                assert row["skipped"].strip(), name
                assert "failed" not in row or name == "factored", (name, row["failed"])
                continue
            assert _positive(row["median_s"]) and all(_positive(t) for t in row["times_s"]), name
            assert row["rel_error"] < 1e-6, (name, row["rel_error"])


def test_tiny_run_writes_every_section(tiny_run):
    out, stdout = tiny_run
    res = json.loads((out / "benchmarks.json").read_text())
    assert set(SECTIONS) <= set(res)
    m = res["meta"]["machine"]
    assert m["cpu_count"] >= 1 and m["numpy"] and "blas" in m["numpy_blas"] and "peers" in m
    bw = res["meta"]["reference"]["bandwidth"]
    assert _positive(bw["prefaulted_bytes_per_s"]) and _positive(bw["fresh_bytes_per_s"])

    abcd = res["orders"]["abcd"]
    assert abcd["optimal"]["flops"] == 1_572_864 and abcd["reverse"]["flops"] == abcd["forward"]["flops"] == 34_603_008
    assert res["orders"]["random_chains"]["violations"] == 0

    con = res["construction"]["rows"]
    assert {r["op"].split(":")[0] for r in con} >= {"matmul, left input", "transpose", "tanh", "inv"}
    assert all(_positive(r["fresh_fraction"]) and r["bytes"] > 0 for r in con)

    _rows_ok(res["jacobian"]["routes"], ROUTES_JACOBIAN)
    naive = res["jacobian"]["routes"]["explicit (naive)"]["by_size"][0]
    assert naive["flops"] > res["jacobian"]["routes"]["explicit (optimal)"]["by_size"][0]["flops"]
    _rows_ok(res["gradient"]["routes"], ROUTES_GRADIENT)
    grad = res["gradient"]["routes"]
    assert all(_positive(r["peak_bytes"]) for r in grad["explicit (reverse)"]["by_size"])
    assert {r["D"] for r in grad["vjp route"]["by_size"]} == {3, 4, 6}  # main and larger grid
    assert grad["vjp route"].get("exponent_large") is not None

    thr = res["throughput"]
    assert all(_positive(r["gemm_flops_per_s"]) and r["rel_error"] < 1e-9 for r in thr["rows"])
    assert {r["chain"] for r in thr["rows"]} == {"seed 1 dY/dX", "dense chain A₃A₂A₁ (n = D²)"}
    assert all(_positive(r["fraction_of_gemm"]) for r in thr["rows"])

    names = {t["name"] for t in res["targets"]}
    paired = res["gradient"]["paired"]
    routes = {"auto": "method='auto', graph included", "jit": "jx.jit(jx.grad(l)), traced once"}
    timed = {f"gradient at D={r['D']} ({routes[r['route']]})" for r in paired
             if r["route"] in routes and "ratio" in r}  # against jax.grad only where JAX is installed
    assert "gradient at D=6 (method='auto', graph included)" in timed
    assert "gradient at D=6 (jx.jit(jx.grad(l)), traced once)" in timed
    assert names == {"local Jacobian construction (≥ 32 MiB)", "dense chain contraction (D ≥ 48)",
                     "explicit gradient peak memory", "optimal plan FLOPs"} | timed
    assert {(r["D"], r["route"], r["vs"]) for r in paired} >= {(6, "auto", "closed form (numpy)"),
                                                                (6, "factored", "closed form (numpy)"),
                                                                (6, "jit", "closed form (numpy)")}
    assert all(_positive(r["ratio"]) for r in paired if "ratio" in r)
    assert "results in" in stdout and "optimal plan FLOPs" in stdout


def test_tiny_run_markdown_has_every_table(tiny_run):
    out, _ = tiny_run
    md = (out / "benchmarks.md").read_text()
    for heading in ("## Targets", "## 0. Contraction orders", "## 1. Local Jacobian construction",
                    "## 2. Full Jacobian dY/dX", "## 3. Gradient dl/dX", "Peak memory",
                    "## 4. Dense chain contraction throughput", "## Reference figures"):
        assert heading in md, heading
    for route in ROUTES_JACOBIAN + ["closed form (numpy einsum)"]:
        assert f"| {route} |" in md, route
    pytest.importorskip("matplotlib")
    png = out / "benchmarks.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "](benchmarks.png)" in md


def test_tiny_run_full_jacobians_and_deep_chains(tiny_run):
    out, stdout = tiny_run
    res = json.loads((out / "benchmarks.json").read_text())
    full = res["full"]
    assert {(r["graph"], r["D"]) for r in full["rows"]} == {(g, D) for g in ("seed 1 dY/dX", "MLP dY/dW1",
                                                                           "softmax(XW) dY/dW", "attention dY/dWq")
                                                              for D in (4, 6)}
    for r in full["rows"]:
        assert r["shape"] == [r["D"]] * 4 and r["rel_error"] < 1e-9, r["graph"]
        assert all(_positive(r[k]) for k in ("median_s", "floor_s", "to_floor", "graph_s", "plan_s", "execute_s"))
        assert r["stability"] >= 1 and len(r["after_gemm_s"]) == 3 and r["strategy"] == "products"
    assert all(c["closed_vs_vjp"] < 1e-9 and c["factored_vs_vjp"] < 1e-9 for c in full["checks"].values())
    depth = res["depth"]
    assert {(r["family"], r["n"]) for r in depth["rows"]} == {("MLP chain", 2), ("MLP chain", 4),
                                                              ("elementwise chain", 20), ("sum of products", 5)}
    assert all(_positive(r["plan_s"]) and r["over_best_pure"] <= 1.0 for r in depth["rows"])
    deep = depth["deep_jacobian"]
    assert deep["layers"] == 4 and deep["rel_error"] < 1e-9 and deep["vjp_rel_error"] < 1e-9
    assert _positive(deep["median_s"]) and ("jax_s" in deep) == ("jax" not in deep)
    md = (out / "benchmarks.md").read_text()
    assert "## Factored full Jacobians against the write floor" in md and "## Deep graphs" in md
    assert "attention dY/dWq, D=6: factored / floor" in stdout and "sum of products (5): plan time" in stdout


@pytest.mark.parametrize("name", ["timing", "machine", "peers", "sections", "report", "full_jacobians"])
def test_benchmark_module_examples_run(name):
    sys.path.insert(0, str(ROOT))
    try:
        mod = importlib.import_module(f"benchmarks.{name}")
    finally:
        sys.path.remove(str(ROOT))
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_planning_benchmark_runs_and_optimal_is_never_above_a_pure_order():
    sys.path.insert(0, str(ROOT))
    try:
        planning = importlib.import_module("benchmarks.planning")
    finally:
        sys.path.remove(str(ROOT))
    rows = planning.run(repeats=1)
    assert {r["family"] for r in rows} == {f for f, _, _ in planning.FAMILIES}
    assert all(r["over_best_pure"] <= 1.0 for r in rows)  # planned FLOPs, not time


def test_full_jacobians_profile_prints_the_plan_and_the_top_lines(capsys):
    sys.path.insert(0, str(ROOT))
    try:
        full_jacobians = importlib.import_module("benchmarks.full_jacobians")
    finally:
        sys.path.remove(str(ROOT))
    assert full_jacobians.main(["--profile", "attention", "--size", "4", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "attention, D = 4: strategy 'products'" in out and "->abcd" in out and "tottime" in out
