"""The command line: exit codes, one-line errors, and a formula parser that never evaluates code."""
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import jacobians as jx
from jacobians.__main__ import main
from jacobians.formula import FormulaError, build, parse_shape

ROOT = Path(__file__).resolve().parents[1]


def test_demo_list(capsys):
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    assert "chain" in out and "mlp" in out and "--sizes D=3,N=4" in out


def test_help_exits_0(capsys):
    assert main(["check", "--help"]) == 0
    assert "--shape" in capsys.readouterr().out


def test_check_the_issue_example(capsys):
    code = main(["check", "fro(W @ X)", "--shape", "W=3x3", "--shape", "X=3x5", "--wrt", "W"])
    out = capsys.readouterr().out
    assert code == 0
    assert "all routes agree: True" in out
    assert "d(W @ X)_cd/dW_ab = δ_ca X_bd" in out and "I_3 ⊗ Xᵀ" in out
    assert "cd,cdab->ab" in out


def test_check_every_variable_by_default(capsys):
    assert main(["check", "sum(tanh(X @ W + b) ** 2)", "--shape", "X=4x3", "--shape", "W=3x2",
                 "--shape", "b=2", "--no-explain"]) == 0
    out = capsys.readouterr().out
    assert "w.r.t. X, W, b" in out and "local Jacobians" not in out


def test_check_non_finite_exits_1(capsys):
    # log of standard-normal data: some entries are negative, the value and the numeric route are nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the core may also warn about the non-finite value
        assert main(["check", "sum(log(X))", "--shape", "X=3x3", "--no-explain"]) == 1
    assert "warning" in capsys.readouterr().out
    assert main(["check", "sum(log(X))", "--shape", "X=3x3", "--positive", "--no-explain"]) == 0


BAD = [
    (["check", "fro(W @", "--shape", "W=3x3"], "not a valid expression"),
    (["check", "fro(W @ Z)", "--shape", "W=3x3"], "unknown name 'Z'"),
    (["check", "frob(W)", "--shape", "W=3x3"], "unknown function 'frob'"),
    (["check", "W @ X", "--shape", "W=3x3", "--shape", "X=4x5"], r"matmul: shapes (3, 3) @ (4, 5)"),
    (["check", "W[0]", "--shape", "W=3x3"], "Subscript is not allowed"),
    (["check", "W.__class__", "--shape", "W=3x3"], "only the attribute .T"),
    (["check", "[w for w in W]", "--shape", "W=3x3"], "ListComp is not allowed"),
    (["check", "'abc'", "--shape", "W=3x3"], "only numbers"),
    (["check", "W ** W", "--shape", "W=3x3"], "literal number"),
    (["check", "2 * 3", "--shape", "W=3x3"], "involves no variable"),
    (["check", "fro(W)"], "declare the variables with --shape"),
    (["check", "fro(W)", "--shape", "W3x3"], "expected NAME=DIMS"),
    (["check", "fro(W)", "--shape", "W=3x0"], "positive integers"),
    (["check", "fro(W)", "--shape", "W=3x3", "--shape", "W=2"], "declared twice"),
    (["check", "fro(W)", "--shape", "W=3x3", "--wrt", "V"], "no variable 'V'"),
    (["check", "fro(W)", "--shape", "W=3x3", "--order", "sideways"], "not one of optimal"),
    (["check", "sum(W, axes=0)", "--shape", "W=3x3"], "unexpected keyword"),
    (["demo", "nope"], "unknown demo 'nope'"),
    (["demo", "--sizes", "D=0"], "positive integer"),
    (["demo", "--seed", "x"], "must be a whole number"),
    (["frobnicate"], "invalid choice"),
    ([], "give a command"),
]


@pytest.mark.parametrize("argv,msg", BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_bad_command_lines_exit_2_with_one_line(argv, msg, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("python -m jacobians")
    assert msg in captured.err


def test_formula_never_runs_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    for text in (f"__import__('os').system('touch {marker}')", f"exec('open(\"{marker}\", \"w\")')",
                 "().__class__.__bases__[0].__subclasses__()", "lambda: 0", "W if W else W"):
        assert main(["check", text, "--shape", "W=2x2"]) == 2
    assert not marker.exists()
    assert capsys.readouterr().out == ""


def test_formula_builds_the_same_values_as_numpy():
    rng = np.random.default_rng(0)
    W = jx.var(rng.standard_normal((3, 3)), name="W")
    X = jx.var(rng.standard_normal((3, 5)), name="X")
    y = build("sum(tanh(W @ X) ** 2, axis=0) / 2 - -mean(X.T, axis=1)", {"W": W, "X": X})
    expected = (np.tanh(W.value @ X.value) ** 2).sum(axis=0) / 2 + X.value.T.mean(axis=1)
    np.testing.assert_allclose(y.value, expected, rtol=1e-12)
    assert build("fro(W @ X)", {"W": W, "X": X}).parents[0].name == "W @ X"
    assert build("reshape(X, (5, 3))", {"X": X}).shape == (5, 3)


def test_parse_shape():
    assert parse_shape("X=3x5") == ("X", (3, 5))
    assert parse_shape("v=4") == ("v", (4,))
    assert parse_shape("s=scalar") == ("s", ())
    with pytest.raises(FormulaError, match="name of an op"):
        parse_shape("tanh=3")


def test_real_process_exit_codes():
    """The installed entry point, in a fresh interpreter: 0, then 2 with one stderr line."""
    ok = subprocess.run([sys.executable, "-m", "jacobians", "check", "fro(W @ X)", "--shape", "W=3x3",
                         "--shape", "X=3x5", "--wrt", "W", "--no-explain"],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "all routes agree: True" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "jacobians", "check", "fro(W @", "--shape", "W=3x3"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
