"""A property test of the formula command line: random formulas, shapes, Unicode and sizes.

Whatever the input, ``python -m jacobians check`` ends with exit code 0, 1 or 2,
prints no traceback, and finishes (each example is bounded in size).
"""
import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jacobians.__main__ import main

ATOMS = ["X", "W", "1.5", "2", "-X", "X.T", "0"]
UNARY = ["tanh", "exp", "log", "sqrt", "fro", "sum", "mean", "relu", "inv", "det", "logdet", "softmax", "abs",
         "sin", "nosuchop", "__import__"]
BINARY = ["+", "-", "*", "/", "@", "**"]
NOISE = ["", " ", "(", ")", ",", "axis=1", "axis=1.5", "′", "٣", "\u00a0", "'x'", "[1, 2]", "lambda: 0", ";"]


@st.composite
def formulas(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(ATOMS))
    kind = draw(st.sampled_from(["unary", "binary", "noise"]))
    a = draw(formulas(depth=depth - 1))
    if kind == "unary":
        return f"{draw(st.sampled_from(UNARY))}({a})"
    if kind == "binary":
        return f"({a} {draw(st.sampled_from(BINARY))} {draw(formulas(depth=depth - 1))})"
    return a + draw(st.sampled_from(NOISE))


shapes = st.sampled_from(["3x3", "2x3", "3", "1x1", "scalar", "0x2", "３x3", "3x٣", "x", "3x3x3", "100000x100000"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formula=formulas(), sx=shapes, sw=shapes, seed=st.sampled_from(["0", "1", "-1", "x"]))
def test_check_never_tracebacks(formula, sx, sw, seed):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", formula, "--shape", f"X={sx}", "--shape", f"W={sw}", "--seed", seed, "--no-explain"])
    assert code in (0, 1, 2)
    assert "Traceback" not in err.getvalue() and "Traceback" not in out.getvalue()
    if code == 2:  # one line for the error (the library's own warnings, once each, may precede it)
        errors = [ln for ln in err.getvalue().splitlines() if ln and not ln.startswith("warning:")]
        assert len(errors) == 1 and "error:" in errors[0]
