"""Regression tests for the adversarial audit's findings: no traceback, no unpriced allocation, no hang.

The command line is run in a subprocess (as a user runs it); each bad input must
end with exit code 1 or 2 and one line on stderr, never a Python traceback.
"""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

import jacobians as jx
from jacobians.formula import FormulaError, build, parse_shape
from jacobians.memory import memory_limit, parse_bytes, set_memory_limit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "jacobians", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("args,code", [
    (["check", "fro(X)", "--shape", "X=100000x100000"], 2),          # the data alone would be 74.5 GiB
    (["check", "fro(X)", "--shape", "X=99999999999999999999"], 2),
    (["check", "fro(X)", "--shape", "X=3x3", "--seed", "-1"], 2),
    (["demo", "--seed", "-5"], 2),
    (["demo", "--plot", "/etc/passwd"], 2),                           # a file, not a directory
    (["demo", "--plot", "/proc/jx"], 2),                              # cannot be created
    (["check", "det(X - X)", "--shape", "X=3x3"], 1),                 # singular: a numerical failure
    (["check", "sum(X, axis=1.5)", "--shape", "X=3x3"], 2),
    (["check", "fro(X)", "--shape", "X=\uff13x\uff13"], 2),           # full-width digits
    (["check", "fro(X)", "--shape", "X=\u0663x\u0663"], 2),           # Arabic-Indic digits
    (["check", "X * 1" + "0" * 400, "--shape", "X=2"], 2),            # a number beyond float64
    (["check", "--shape", "X=2", "--", "-" * 10_000 + "X"], 2),       # nesting beyond the parser (parsed)
    (["check", "fro([1, 2])"], 2),                                    # no variable
])
def test_cli_bad_input_is_one_line_never_a_traceback(args, code):
    r = _cli(*args)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert r.stderr.strip().count("\n") == 0 and "error:" in r.stderr


def test_cli_traceback_flag_shows_the_full_one():
    r = _cli("--traceback", "check", "det(X - X)", "--shape", "X=3x3")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_memory_limit_is_per_thread_and_restored_exactly():
    """The audit's own probe (benchmarks/audit.py: threads): a worker and the main thread each inside their
    own memory_limit see their own value, and both limits are restored afterwards."""
    from benchmarks.audit import threads

    outcome, detail = threads("1M", "2M")
    assert outcome == "clean", detail


@pytest.mark.parametrize("bad", ["1e400", 1.5, float("nan"), "12 parsecs", True])
def test_memory_limit_refuses_what_is_not_a_byte_count(bad):
    with pytest.raises(ValueError):
        set_memory_limit(bad)
    assert parse_bytes("1.5K") == 1536 and parse_bytes(2.0) == 2


def test_formula_grammar_is_strict():
    x = jx.var(np.ones((3, 3)), name="X")
    with pytest.raises(FormulaError, match="whole number"):
        build("sum(X, axis=1.5)", {"X": x})
    with pytest.raises(FormulaError, match="no variable"):
        build("fro([1, 2])", {})
    with pytest.raises(FormulaError):
        parse_shape("X=\uff13x3")


def test_compare_with_one_route_is_not_a_disagreement():
    x = jx.var(np.ones(3), name="x")
    c = jx.compare(jx.sum(x * x), x, routes=["vjp"])
    assert c.ok is None and "nothing to compare" in str(c)


def test_a_node_value_cannot_be_made_writable_again():
    x = jx.var(np.ones(3), name="x")
    for node in (x, jx.tanh(x), x.reshape(3, 1), x.T):
        with pytest.raises(ValueError):
            node.value.setflags(write=True)


@pytest.mark.parametrize("make", [jx.var, jx.const])
def test_a_var_or_const_buffer_cannot_be_reached_through_its_base(make):
    """The audit replay wrote through x.value.base: user data now lives in an immutable bytes buffer."""
    x = make(np.arange(4.0))
    base = x.value
    while isinstance(base.base, np.ndarray):
        base = base.base
        with pytest.raises(ValueError, match="WRITEABLE"):
            base.setflags(write=True)
    assert isinstance(base.base, bytes)
    assert x.reshape(2, 2).value.tolist() == [[0.0, 1.0], [2.0, 3.0]]


def test_compare_keeps_its_results_under_the_limit():
    """compare holds each route's result to compare them: the next route runs beside them, under one limit."""
    import tracemalloc

    X = jx.var(np.random.default_rng(0).standard_normal((30, 30)), name="X")
    y = jx.tanh(X)                              # dy/dX: 900² · 8 bytes = 6.2 MiB per route
    with memory_limit("16M") as limit:
        jx.compare(y, X)
        tracemalloc.start()
        try:
            c = jx.compare(y, X)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak <= limit and len(c.results) == 2
    assert all("above the memory limit" in why for why in c.skipped.values()) and c.ok


def test_a_numeric_route_that_would_take_hours_stops_with_its_estimate(monkeypatch):
    """Central differences on a large x: the pace of the first passes is extrapolated (a fake clock here,
    one second per reading), and the call stops with the estimate instead of running for hours."""
    from jacobians import numeric

    clock = iter(range(10**6))
    monkeypatch.setattr(numeric.time, "perf_counter", lambda: float(next(clock)))
    X = jx.var(np.ones((30, 30)), name="X")
    with pytest.raises(numeric.NumericTooSlow, match=r"1,800 passes .* about [\d,]+ s .* method='vjp'"):
        jx.grad(jx.fro(X @ X), X, method="numeric")
    with pytest.raises(numeric.NumericTooSlow, match="hessian"):
        jx.hessian(jx.fro(X @ X), X, method="numeric")


@pytest.mark.parametrize("fn", [jx.average, jx.variance, jx.std])
def test_averages_over_no_entries_are_a_clear_error_like_mean(fn):
    with pytest.raises(ValueError, match=f"{fn.__name__}: the mean over axes \\(1,\\) .* has no entries"):
        fn(jx.var(np.zeros((3, 0)), name="E"), axis=1)


@pytest.mark.parametrize("op", ["det", "logdet"])
def test_a_singular_matrix_in_explain_or_the_numeric_hessian_names_the_op(op):
    A = jx.var(np.zeros((3, 3)), name="A")
    with pytest.warns(jx.NonFiniteWarning) if op == "logdet" else contextlib.nullcontext():
        y = getattr(jx, op)(A)
    with pytest.raises(np.linalg.LinAlgError, match=f"{op} \\(Jacobian w.r.t. A\\) failed on A"):
        str(jx.explain(y, A))
    with pytest.raises(np.linalg.LinAlgError, match=f"{op} \\(VJP\\) failed on A"):
        jx.hessian(y, A, method="numeric")


def test_a_forced_cycle_is_detected_not_looped():
    x = jx.var(np.ones(2), name="x")
    y = jx.tanh(x)
    object.__setattr__(x, "parents", (y,))  # only possible on purpose, past the immutability guard
    for method in ("vjp", "factored", "explicit", "numeric"):
        with pytest.raises(jx.graph.GraphCycle, match="depends on itself"):
            jx.grad(jx.sum(y), x, method=method)


@pytest.mark.parametrize("method", ["vjp", "factored", "numeric", "auto"])
def test_a_chain_of_ten_thousand_ops_has_no_recursion_limit(method):
    x = jx.var(np.ones(3), name="x")
    y = x
    for _ in range(10_000):
        y = -y
    np.testing.assert_allclose(jx.grad(jx.sum(y), x, method=method), np.ones(3), rtol=1e-9)


@pytest.mark.parametrize("method", ["auto", "explicit", "vjp", "factored", "numeric"])
def test_gradient_wrt_a_scalar_var_has_shape_unit(method):
    x = jx.var(2.0, name="x")
    g = jx.grad(x * x, x, method=method)
    assert g.shape == () and abs(float(g) - 4.0) < 1e-6


@pytest.mark.parametrize("method", ["auto", "explicit", "vjp", "factored"])
def test_fro_at_zero_has_the_zero_subgradient_without_a_warning(method, recwarn):
    z = jx.var(np.zeros((2, 3)), name="z")
    np.testing.assert_array_equal(jx.grad(jx.fro(z), z, method=method), np.zeros((2, 3)))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_einsum_operands_aligned_by_labels_raise_no_broadcast_warning(recwarn):
    U = jx.var(np.eye(3), name="U")
    jx.einsum("ik,k,kj->ij", U, jx.var(np.ones(3), name="s"), U)
    assert not [w for w in recwarn if issubclass(w.category, jx.AmbiguousBroadcastWarning)]


def test_a_constant_that_overflows_a_float32_graph_warns_nonfinite():
    x = jx.var(np.ones(3, dtype=np.float32), name="x")
    with pytest.warns(jx.NonFiniteWarning, match="overflows"):
        x * 1e300


def test_a_singular_matrix_on_the_factored_route_names_the_op():
    A = jx.var(np.zeros((2, 2)), name="A")
    with pytest.raises(np.linalg.LinAlgError, match=r"det \(factored Jacobian w.r.t. A\) failed on A"):
        jx.grad(jx.det(A), A, method="factored")


@pytest.mark.parametrize("n", [16, 20, 33])
def test_many_axes_fall_back_or_explain(n):
    x = jx.var(np.ones((1,) * n), name="x")
    y = jx.tanh(x)
    assert jx.grad(jx.sum(y), x).shape == x.shape
    assert jx.compare(jx.sum(y), x).results  # survives whatever a route does
    if 2 * n > 64:
        with pytest.raises(ValueError, match="at most 64"):
            jx.jacobian(y, x)
    else:
        for method in ("factored", "explicit", "vjp"):
            assert jx.jacobian(y, x, method=method).shape == (1,) * (2 * n)


def test_mean_of_an_empty_axis_is_a_clear_error():
    with pytest.raises(ValueError, match="no entries"):
        jx.mean(jx.var(np.zeros((0, 3)), name="E"))
