"""Regression tests for the command-line findings: sizes priced before anything is allocated, ASCII-only
sizes, integer literals where integers are meant, at most 64 axes, singular matrices and non-finite
results as numerical failures (exit 1, one line), and a large kron refused before it is computed.

Each command line runs in a subprocess, as a user runs it: the exit code, exactly one line on stderr,
no traceback; the commands that used to allocate or compute for long run under a 30 s timeout.
"""
import io
import os
import subprocess
import sys

import pytest

import jacobians as jx
from jacobians.demos import DemoError, parse_sizes, run_demo
from jacobians.formula import MAX_AXES, FormulaError, dimension, parse_shape
from jacobians.memory import memory_limit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = 30  # seconds: a refusal comes in milliseconds; this only stops a regression from hanging the suite


def _cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("JACOBIANS_MEMORY_LIMIT", None)
    return subprocess.run([sys.executable, "-m", "jacobians", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def _one_error_line(r, code):
    """Exit ``code``, exactly one stderr line (the error), no traceback; returns that line."""
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("python -m jacobians") and "error:" in lines[0]
    return lines[0]


def _ones(axes):
    return "x".join(["1"] * axes)


# ------------------------------------------------------------------ 1, 2: demo sizes priced first
@pytest.mark.parametrize("name,sizes,shape", [
    ("conv", "H=100000,W=100000", "(1, 2, 100000, 100000)"),   # was numpy's "Unable to allocate 149. GiB"
    ("mlp", "m=100000000", "100000000"),                        # was 30 s and 23.5 GB RSS before refusing
    ("chain", "D=1000000", "(1000000, 1000000)"),
    ("hessian", "m=100000,n=100000", "(100000, 100000)"),
])
def test_demo_sizes_too_large_are_refused_before_allocating(name, sizes, shape):
    line = _one_error_line(_cli("demo", name, "--sizes", sizes, timeout=QUICK), 2)
    assert "Unable to allocate" not in line
    assert f"demo {name}:" in line and shape in line and "memory limit" in line
    assert "--sizes" in line and "JACOBIANS_MEMORY_LIMIT" in line  # what to do


def test_every_demo_is_priced_from_its_sizes_before_it_runs():
    # under a 1 MiB limit, sizes whose Jacobians need hundreds of MiB are refused before any array is made
    for name, sizes in (("chain", {"D": 40, "N": 50}), ("mlp", {"m": 2000}), ("conv", {"H": 40, "W": 40}),
                        ("hessian", {"m": 2000})):
        with memory_limit("1M"), pytest.raises(jx.JacobianTooLarge, match=f"demo {name}: .*shape"):
            run_demo(name, sizes=sizes, out=io.StringIO())


# ------------------------------------------------------------------ 3: --sizes digits
@pytest.mark.parametrize("value", ["\uff13", "\u0663", "\u00b2", "99999999999999999999", "0", "1.5", "-3", ""])
def test_demo_sizes_take_ascii_digits_only(value):
    line = _one_error_line(_cli("demo", "chain", "--sizes", f"D={value}"), 2)
    assert "--sizes D" in line and ("digits 0-9" in line or "2**63 - 1" in line)
    assert "invalid literal" not in line and "Maximum allowed dimension" not in line


def test_sizes_and_shapes_share_one_checker():
    for bad in ("\uff13", "\u0663", "\u00b2", "0", "99999999999999999999"):
        with pytest.raises(FormulaError):
            dimension(bad, "--sizes D", "D=3")
        with pytest.raises(DemoError):
            parse_sizes(f"D={bad}", {"D": 3, "N": 4})
        with pytest.raises(FormulaError):
            parse_shape(f"X={bad}x3")
    assert parse_sizes("D=12", {"D": 3, "N": 4}) == {"D": 12, "N": 4} and parse_shape("X=12x3") == ("X", (12, 3))


# ------------------------------------------------------------------ 4: integer literals
@pytest.mark.parametrize("formula", ["reshape(X, (9.0,))", "reshape(X, 9.0)", "sum(X, axis=1.5)", "sum(X, 1.0)",
                                     "transpose(X, (1.0, 0))", "sum(X, axis=True)", "matrix_power(X, 2.0)"])
def test_integer_parameters_need_integer_literals(formula):
    line = _one_error_line(_cli("check", formula, "--shape", "X=3x3", "--no-explain"), 2)
    assert "whole number" in line and "integer literals" in line


@pytest.mark.parametrize("formula", ["reshape(X, (9,))", "sum(X, 0)", "matrix_power(X, 2)", "sum(X ** 2.5)"])
def test_integer_literals_and_float_exponents_still_build(formula):
    r = _cli("check", formula, "--shape", "X=3x3", "--positive", "--no-explain")
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ------------------------------------------------------------------ 5: at most 64 axes
@pytest.mark.parametrize("formula,axes", [("tanh(X)", 33), ("fro(X)", 65), ("tanh(X)", 65)])
def test_more_axes_than_numpy_allows_is_bad_input(formula, axes):
    line = _one_error_line(_cli("check", formula, "--shape", f"X={_ones(axes)}", "--no-explain"), 2)
    assert f"at most {MAX_AXES} axes" in line


def test_a_scalar_of_many_axes_still_runs():
    r = _cli("check", "fro(X)", "--shape", f"X={_ones(33)}", "--no-explain")
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ------------------------------------------------------------------ 6, 7: numerical failures
@pytest.mark.parametrize("formula", ["inv(X - X)", "solve(X - X, X)", "det(X - X)", "fro(inv(X - X))"])
def test_a_singular_matrix_is_a_numerical_failure(formula):
    line = _one_error_line(_cli("check", formula, "--shape", "X=3x3"), 1)
    assert "Singular matrix" in line


def test_a_non_finite_result_is_one_line_not_a_warning_and_an_error():
    line = _one_error_line(_cli("check", "logdet(X - X)", "--shape", "X=3x3"), 1)
    assert "not finite" in line and "-inf" in line and "--positive" in line
    assert not line.startswith("warning")


def test_a_successful_run_still_shows_the_librarys_warning_once():
    r = _cli("check", "sum(X + v)", "--shape", "X=3x3", "--shape", "v=3", "--no-explain")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: add: operand 2 of shape (3,)")


def test_traceback_flag_shows_the_failing_routes_traceback():
    r = _cli("--traceback", "check", "det(X - X)", "--shape", "X=3x3")
    assert r.returncode != 0 and "Traceback" in r.stderr and "LinAlgError" in r.stderr


# ------------------------------------------------------------------ 8: kron refused before computing
@pytest.mark.parametrize("formula", ["kron(X, X)", "sum(kron(X, X))", "kron(X, X) + 1"])
def test_a_large_kron_is_refused_before_it_is_computed(formula):
    line = _one_error_line(_cli("check", formula, "--shape", "X=100x100", timeout=QUICK), 2)
    assert "(10000, 10000)" in line and "JACOBIANS_MEMORY_LIMIT" in line


def test_demo_hessian_refuses_more_features_than_samples():
    """n > m makes XᵀX singular: the Newton step has no unique answer, so the sizes are refused (exit 2),
    not run into a DISAGREE (exit 1)."""
    r = _cli("demo", "hessian", "--sizes", "m=5,n=8,k=2,h=3")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "m ≥ n" in r.stderr
    assert _cli("demo", "hessian", "--sizes", "m=8,n=8,k=2,h=3").returncode == 0
