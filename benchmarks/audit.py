"""Replay the adversarial audit: a catalogue of attacks on the API and the command line, and how each ended.

Five families of attempts, each attempt a small data item:

* ``cli-input``  bad (and borderline) command lines: shapes, seeds, sizes, plot
  directories, grammar corner cases, deep nesting, many axes, singular matrices;
* ``injection``  formulas that try to run code through ``python -m jacobians check``;
* ``memory``     API calls under ``jx.memory_limit(L)`` (explain, grad/jacobian on every
  method, hessian on every Hessian method, compare), their tracemalloc peak against L,
  and ``check`` on large shapes;
* ``limits``     bad values for ``set_memory_limit`` / ``memory_limit`` / the environment
  variable, and the per-thread (per-task) scoping of ``memory_limit``;
* ``graph``      immutability, forced cycles, chains of 10,000 ops, empty reductions,
  float32 overflow, one-route comparisons, many axes, singular det/logdet.

Every attempt runs in its own subprocess with a timeout (a command line as a user
types it; an API attempt as ``python benchmarks/audit.py --probe NAME ARGS``), a few
at a time, so a hang or a crash is counted instead of ending the run. Outcomes:

* clean       the expected result: for the command line an exit code the attempt
              allows (0 agree, 1 disagree or numerical failure, 2 bad input or too
              large), no traceback, at most one line on stderr for exit 1 and 2;
              for the API the expected value or a documented error with a message;
* traceback   a Python traceback, or an exception of a type the attempt does not allow;
* hang        the timeout passed;
* above limit an API call's tracemalloc peak exceeded the limit in force; a command line's
              peak RSS (wait4) exceeded a trivial run's + 2 × its limit + 128 MiB (the
              data, priced on its own, and one call), or numpy had to refuse an allocation
              the guard never priced ("Unable to allocate");
* wrong       anything else (wrong exit code, several stderr lines, a wrong value, an
              attack that ran), with the reason.

Every child runs under an address-space cap (2 × the default limit + 2 GiB) so that a
runaway allocation fails inside it rather than starving the attempts beside it.

Run: ``python benchmarks/audit.py [--quick] [--timeout 60] [--workers 3] [--family NAME]
[--match TEXT] [--verbose]``. It prints one table (attempts and outcomes per family, and
the total), then one line per attempt that was not clean. Exit status 0 when every
attempt is clean, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SCRIPT = os.path.abspath(__file__)
FAMILIES = ("cli-input", "injection", "memory", "limits", "graph")
OUTCOMES = ("clean", "traceback", "hang", "above limit", "wrong")
SLACK = 128 << 20             # RSS a command line may add to a trivial run's, beyond 2 × its memory limit
RESULT_TAG = "AUDIT-RESULT "  # the probe's verdict: the last stdout line of an API attempt
PWNED = "{pwn}"                # in an injection formula: a path the attack tries to create


# ====================================================================== the catalogue
@dataclass(frozen=True)
class Attempt:
    """One attack. A command-line attempt has ``argv``; an API attempt names a probe and its arguments."""

    family: str
    label: str
    argv: Tuple[str, ...] = ()          # python -m jacobians *argv
    codes: Tuple[int, ...] = (2,)       # the exit codes that count as clean
    probe: str = ""                     # a function of PROBES, run in a fresh interpreter
    args: Tuple[Any, ...] = ()          # its JSON-able arguments
    env: Tuple[Tuple[str, str], ...] = ()
    sentinel: str = ""                  # a file the attack tries to create; it must not exist afterwards
    core: bool = False                  # part of the --quick selection


def _short(text: str, width: int = 70) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else f"{text[:width - 20]}…({len(text):,} chars)"


def cli(family: str, *argv: str, codes: Sequence[int] = (2,), label: str = "", env: Optional[Dict[str, str]] = None,
        core: bool = False, sentinel: str = "") -> Attempt:
    """A command-line attempt; its label is the command line (long arguments abbreviated)."""
    shown = label or " ".join(shlex.quote(_short(a)) for a in argv) or "(no arguments)"
    if env:
        shown = " ".join(f"{k}={v}" for k, v in env.items()) + " " + shown
    return Attempt(family, shown, argv=tuple(argv), codes=tuple(codes), env=tuple((env or {}).items()),
                   core=core, sentinel=sentinel)


def api(family: str, probe: str, *args: Any, core: bool = False) -> Attempt:
    """An API attempt: ``probe(*args)`` in a fresh interpreter."""
    shown = f"{probe}(" + ", ".join(_short(json.dumps(a, ensure_ascii=False), 50) for a in args) + ")"
    return Attempt(family, shown, probe=probe, args=tuple(args), core=core)


def shape_of(n: int, axes: int = 2) -> str:
    return "x".join([str(n)] * axes)


# ---------------------------------------------------------------- cli-input
ISSUE_CLI = [  # (argv, exit codes): the audit's command lines, as the issue lists them
    (["check", "fro(X)", "--shape", "X=100000x100000"], (2,)),
    (["check", "fro(X)", "--shape", "X=99999999999999999999"], (2,)),
    (["check", "fro(X)", "--shape", "X=3x3", "--seed", "-1"], (2,)),
    (["demo", "--seed", "-5"], (2,)),
    (["demo", "--sizes", "D=1000000"], (2,)),
    (["demo", "--plot", "/etc/passwd"], (2,)),
    (["demo", "--plot", "/proc/jx"], (2,)),
    (["check", "det(X - X)", "--shape", "X=3x3"], (1,)),        # singular: a numerical failure
    (["check", "logdet(X - X)", "--shape", "X=3x3"], (1,)),
    (["check", "sum(X, axis=1.5)", "--shape", "X=3x3"], (2,)),
    (["check", "reshape(X, (9.0,))", "--shape", "X=3x3"], (2,)),
    (["check", "fro([1, 2])"], (2,)),
    (["check", "fro(X)", "--shape", "X=\uff13x\uff13"], (2,)),    # full-width digits
    (["check", "fro(X)", "--shape", "X=\u0663x\u0663"], (2,)),    # Arabic-Indic digits
    (["check", "X * 1" + "0" * 400, "--shape", "X=2"], (2,)),      # a number beyond float64
]
BAD_SHAPES = ["X=0x3", "X=-3x3", "X=3.0x3", "X=3e2", "X=3\u00d73", "X=3x3x", "X=", "X=1_000", "X=\u00b3",
              "X=3x\u0663", "X=18446744073709551616", "X=99999999999999999999x2", "X=100000x100000x100000",
              "sum=3x3"]
BAD_SEEDS = ["-1", "1.5", "", "\uff13", "\u00b2", "9223372036854775808"]
BAD_DEMO_SIZES = [("chain", "D=0"), ("chain", "D=1.5"), ("chain", "D=\uff13"), ("chain", "D=\u0663"),
                  ("chain", "D=\u00b2"), ("chain", "Q=3"), ("chain", "D=99999999999999999999"),
                  ("mlp", "m=100000000"), ("conv", "H=100000,W=100000"), ("hessian", "n=100000")]
GOOD_FORMULAS = ["fro(X @ X)", "sum(tanh(X) ** 2)", "logsumexp(X)", "tanh(X)", "X @ X"]
GRAMMAR = [  # (formula, --shape, exit codes): the grammar is a whitelist; data that breaks an op is exit 1
    ("sum(X, axis=99)", "X=3x3", (2,)), ("sum(X, axis=(0, 0))", "X=3x3", (2,)), ("sum(X, axis=True)", "X=3x3", (2,)),
    ("reshape(X, (10,))", "X=3x3", (2,)), ("reshape(X, (-2,))", "X=3x3", (2,)), ("reshape(X, (-1,))", "X=3x3", (0,)),
    ("fro([1, 2])", "X=3x3", (2,)), ("fro(X, 1, 2, 3)", "X=3x3", (2,)), ("sum(X, foo=1)", "X=3x3", (2,)),
    ("X @ X", "X=3x4", (2,)), ("X ** X", "X=3x3", (2,)), ("X ** 2", "X=3x3", (0,)), ("X < 2", "X=3x3", (2,)),
    ("X / 0", "X=3x3", (1,)), ("log(X)", "X=3x3", (1,)), ("X * 1e400", "X=2", (1, 2)),
    ("1e308 * X * 1e308", "X=2", (1,)), ("", "X=3x3", (2,)), ("fro(X", "X=3x3", (2,)), ("Y", "X=3x3", (2,)),
    ("inv(X - X)", "X=3x3", (1,)), ("solve(X - X, X)", "X=3x3", (1,)),
]


def _nested(depth: int, head: str, tail: str, inner: str = "X") -> str:
    return head * depth + inner + tail * depth


def cli_input_attempts() -> List[Attempt]:
    """The issue's command lines, then variants: nesting, axes, shapes, seeds, sizes, plot dirs, grammar, sizes."""
    fam = "cli-input"
    out = [cli(fam, *argv, codes=codes, core=True) for argv, codes in ISSUE_CLI]
    for depth, codes in ((10_000, (2,)), (900, (0,)), (3000, (0, 2))):   # 900: the former N⁴ hang
        out.append(cli(fam, "check", "--shape", "X=2", "--no-explain", "--", "-" * depth + "X", codes=codes,
                       core=depth in (900, 10_000), label=f"check --shape X=2 --no-explain -- \"$('-'*{depth})X\""))
    for depth, head, tail in ((150, "(", ")"), (1000, "(", ")"), (300, "tanh(", ")"), (2000, "tanh(", ")"),
                              (3000, "[", "]")):
        out.append(cli(fam, "check", "--shape", "X=2", "--no-explain", "--", _nested(depth, head, tail),
                       codes=(0, 2), label=f"check --shape X=2 --no-explain -- {head!r}*{depth} X {tail!r}*{depth}"))
    for axes in (16, 33, 65):  # the issue's many-axes inputs: fro(X) reduces; tanh(X)'s Jacobian has 2·axes
        for formula, axes_needed in (("fro(X)", axes), ("tanh(X)", 2 * axes)):
            out.append(cli(fam, "check", formula, "--shape", f"X={shape_of(1, axes)}", "--no-explain",
                           codes=(0,) if axes_needed <= 64 else (2,), core=axes == 33 and formula == "fro(X)",
                           label=f"check {formula} --shape X=1x…(×{axes}) --no-explain"))
    out += [cli(fam, "check", "fro(X)", "--shape", spec) for spec in BAD_SHAPES]
    out += [cli(fam, "check", "fro(X)", "--shape", "X=3x3", "--seed", s) for s in BAD_SEEDS]
    out += [cli(fam, "demo", "--seed", s) for s in BAD_SEEDS[:4]]
    out.append(cli(fam, "check", "fro(X)", "--shape", "X=3x3", "--seed", "9223372036854775807", "--no-explain",
                   codes=(0,)))
    out += [cli(fam, "demo", name, "--sizes", sizes) for name, sizes in BAD_DEMO_SIZES]
    out += [cli(fam, "demo", name, codes=(0,)) for name in ("chain", "mlp", "conv", "hessian")]
    out += [cli(fam, "demo", "--list", codes=(0,)), cli(fam, "demo", "nosuchdemo"), cli(fam, "nosuchcommand"),
            cli(fam), cli(fam, "check"), cli(fam, "check", "fro(X)", "--shape", "X=3", "--order", "random"),
            cli(fam, "check", "fro(X)", "--shape", "X=3", "--wrt", "Z"),
            cli(fam, "check", "fro(X)", "--shape", "X=3", "--shape", "X=3"),
            cli(fam, "check", "fro(W @ X)", "--shape", "W=3x4", "--shape", "X=5x5"),
            cli(fam, "check", "fro(W @ X)", "--shape", "W=3x4", "--shape", "X=4x5", "--wrt", "W", codes=(0,)),
            cli(fam, "check", "fro(X)", "--shape", "X=3", env={"JACOBIANS_MEMORY_LIMIT": "lots"}, codes=(1, 2)),
            cli(fam, "check", "fro(X)", "--shape", "X=3", env={"JACOBIANS_MEMORY_LIMIT": "1"}),
            cli(fam, "demo", "--plot", "/dev/null"), cli(fam, "demo", "--plot", "/etc/passwd/sub")]
    out += [cli(fam, "check", f, "--shape", s, codes=c) for f, s, c in GRAMMAR]
    out.append(cli(fam, "check", "log(X)", "--shape", "X=3x3", "--positive", codes=(0,)))
    for formula in GOOD_FORMULAS:  # valid formulas at growing sizes: they must agree (a big Jacobian may be refused)
        for n in (2, 7, 40):
            codes = (0,) if n < 40 or y_is_scalar(formula) else (0, 2)
            out.append(cli(fam, "check", formula, "--shape", f"X={shape_of(n)}", "--no-explain", codes=codes,
                           core=(n == 7 and formula == "fro(X @ X)")))
    for order in ("reverse", "naive"):
        out.append(cli(fam, "check", "sum(tanh(X @ W) ** 2)", "--shape", "X=4x5", "--shape", "W=5x3",
                       "--order", order, codes=(0,)))
    return out


def y_is_scalar(formula: str) -> bool:
    return formula.startswith(("fro(", "sum(", "logsumexp(", "mean("))


# ---------------------------------------------------------------- injection
INJECTIONS = [
    "__import__('os').system('touch {pwn}')", "__import__('os').system('id')", "().__class__.__bases__",
    "().__class__.__bases__[0].__subclasses__()", "X.__class__", "X.__init__.__globals__", "X.value",
    "(lambda: __import__('os').system('touch {pwn}'))()", "lambda x: x", "open('{pwn}', 'w')",
    "open('{pwn}', 'w').write('pwned')", "eval(\"open('{pwn}', 'w')\")", "exec(\"open('{pwn}', 'w')\")",
    "compile('1', 'x', 'eval')", "globals()", "vars()", "getattr(X, 'value')", "__builtins__",
    "__builtins__['open']('{pwn}', 'w')", "f\"{open('{pwn}', 'w')}\"", "(y := X)", "[x for x in (1, 2)]",
    "sum(x for x in (X,))", "{'a': X}", "X if X else X", "X[0]", "'abc'", "b'abc'", "sum.__globals__",
    "tanh.__code__", "fro(X).__reduce__()", "import os", "X; open('{pwn}', 'w')", "X\nopen('{pwn}', 'w')",
    "X ** __import__('os').system('touch {pwn}')", "sum(X, axis=__import__('os').system('touch {pwn}'))",
    "reshape(X, (__import__('os').getpid(),))", "sum(X, **{'axis': 0})", "sum(*[X])", "breakpoint()",
    "__class__", "a" * 5_000, "a" * 20_000,
    "\u0425 @ X",                                             # Cyrillic Ха, looks like X
    "\uff4f\uff50\uff45\uff4e('{pwn}', 'w')",                 # full-width 'open' (NFKC-normalised to open)
    "__\uff49\uff4d\uff50\uff4f\uff52\uff54__('os').system('touch {pwn}')",
    "\U0001d44b.__class__",                                   # mathematical italic X
    "sum(X, axis=sum(X))", "(tanh if X else exp)(X)", "[tanh][0](X)",
]
NULL_BYTES = ["X\x00", "open\x00('{pwn}', 'w')", "fro(X)\x00; open('{pwn}', 'w')"]


def injection_attempts(scratch: str) -> List[Attempt]:
    """Formulas that try to run code; each must be refused (exit 2, one line) and its file never created."""
    fam, out = "injection", []
    for i, template in enumerate(INJECTIONS):
        pwn = os.path.join(scratch, f"pwned-{i}")
        out.append(cli(fam, "check", "--shape", "X=3x3", "--", template.replace(PWNED, pwn), codes=(2,), sentinel=pwn,
                       core=i in (0, 2, 9, 19), label="check --shape X=3x3 -- " + shlex.quote(_short(template))))
    for i, template in enumerate(NULL_BYTES):  # argv cannot carry a NUL: build() gets them directly
        out.append(api(fam, "null_byte_formula", template.replace(PWNED, os.path.join(scratch, f"pwned-nul-{i}")),
                       core=i == 0))
    return out


# ---------------------------------------------------------------- memory
MEMORY_CASES = [  # (graph, n: X is n×n, limit)
    ("fro(X @ X)", 60, "200M"), ("fro(X @ X)", 300, "20M"), ("tanh(X)", 60, "20M"), ("tanh(X)", 60, "200M"),
    ("tanh(X)", 300, "20M"),
    ("softmax(X @ W)", 300, "20M"),
]
MEMORY_CLI = [  # (formula, shapes, JACOBIANS_MEMORY_LIMIT or None)
    ("fro(X @ X)", ["X=1000x1000"], None), ("tanh(X)", ["X=300x300"], None), ("fro(X @ X)", ["X=1000x1000"], "200M"),
    ("tanh(X)", ["X=300x300"], "200M"), ("softmax(X @ W)", ["X=300x300", "W=300x300"], None),
    ("sum(tanh(X @ X))", ["X=500x500"], "20M"), ("X @ X", ["X=300x300"], None), ("fro(X @ X)", ["X=3000x3000"], "20M"),
    ("kron(X, X)", ["X=100x100"], None), ("outer(X, X)", ["X=100000"], None),
]


def memory_attempts() -> List[Attempt]:
    """Every route of explain / grad / jacobian / hessian / compare under a limit; check on large shapes."""
    import jacobians as jx
    from jacobians.second_order import HESSIAN_METHODS

    fam, out = "memory", []
    calls = [("explain", "optimal")] + [("derivative", m) for m in jx.METHODS] + \
            [("hessian", m) for m in HESSIAN_METHODS] + [("compare", "optimal"), ("compare", 2)]
    for graph, n, limit in MEMORY_CASES:
        for call, method in calls:
            core = n == 300 and graph != "softmax(X @ W)" and (call, method) in (("explain", "optimal"),
                                                                                  ("derivative", "auto"))
            out.append(api(fam, "memory_call", call, graph, n, method, limit, core=core))
    for formula, shapes, limit in MEMORY_CLI:
        argv = ["check", formula, *[a for s in shapes for a in ("--shape", s)]]
        out.append(cli(fam, *argv, codes=(0, 1, 2), env={"JACOBIANS_MEMORY_LIMIT": limit} if limit else None,
                       core=formula == "fro(X @ X)" and limit is None))
    return out


# ---------------------------------------------------------------- limits
BAD_LIMITS = ["'1e400'", "1.5", "-1", "0", "'lots'", "True", "nan", "inf", "'-1'", "'0.5'", "'1e19'", "'\uff14G'",
              "'12 parsecs'", "np.int64(-1)", "1j", "b'4G'"]
GOOD_LIMITS = [("'4G'", 4 << 30), ("'1.5K'", 1536), ("2.0", 2), ("' 512 MiB '", 512 << 20), ("np.int64(4096)", 4096)]


def limit_attempts() -> List[Attempt]:
    """Bad byte counts through every door (set, context, environment); scoping per thread and per task."""
    fam, out = "limits", []
    for value in BAD_LIMITS:
        for door in ("set", "context"):
            out.append(api(fam, "bad_limit", door, value, core=door == "set" and value in ("'1e400'", "1.5")))
        if value.startswith("'"):
            out.append(api(fam, "bad_limit", "env", value))
    for value, expected in GOOD_LIMITS:
        for door in ("set", "context"):
            out.append(api(fam, "good_limit", door, value, expected))
    out += [api(fam, "threads", "1M", "2M", core=True), api(fam, "threads", "3G", "1K"),
            api(fam, "threads_see_global", "3M"), api(fam, "tasks", "1M", "2M"),
            api(fam, "nested", "1M", "2M"), api(fam, "nested", "2M", "1M"),
            api(fam, "restored_after_error", "1M"), api(fam, "context_beats_set", "1M", "2M")]
    return out


# ---------------------------------------------------------------- graph
def graph_attempts() -> List[Attempt]:
    """Immutability, cycles, long chains, empty reductions, overflow, one-route compare, axes, singular matrices."""
    import jacobians as jx
    from jacobians.second_order import HESSIAN_METHODS

    fam, out = "graph", []
    grads = [f"grad:{m}" for m in jx.METHODS]
    for node in ("var", "tanh", "reshape", "matmul"):
        for attack in ("setflags", "assign", "base", "as_strided"):
            out.append(api(fam, "immutable", node, attack, core=node == "var" and attack == "setflags"))
    out.append(api(fam, "var_copies_its_input"))
    for loop, calls in (("through-op", grads + ["jacobian:auto", "explain", "compare"] +
                         [f"hessian:{m}" for m in HESSIAN_METHODS]),
                        ("intermediate", grads), ("self", ["grad:vjp", "grad:factored"])):
        out += [api(fam, "cycle", loop, call, core=loop == "through-op" and call == "grad:vjp") for call in calls]
    for op, methods in (("neg", jx.METHODS), ("tanh", jx.METHODS), ("scale", ("vjp", "factored")),
                        ("add", ("vjp", "factored"))):
        out += [api(fam, "chain", op, m, 10_000, core=op == "neg" and m in ("auto", "factored")) for m in methods]
    out += [api(fam, "chain", "neg", f"hessian:{m}", 10_000) for m in HESSIAN_METHODS]
    out.append(api(fam, "chain", "neg", "compare", 10_000))
    for fn in ("mean", "variance", "std", "average"):
        for shape, axis in (((0, 3), None), ((3, 0), 1), ((0, 3), 1)):
            out.append(api(fam, "empty_reduction", fn, list(shape), axis, core=fn == "mean" and axis is None))
    for dtype, expr in (("float32", "x * 1e300"), ("float32", "1e300 * x"), ("float32", "x / 1e-300"),
                        ("float32", "x + 1e300"), ("float32", "x * 1e39"), ("float32", "jx.exp(x * 100)"),
                        ("float32", "x * 3e38 * 10"), ("float64", "x * 1e300 * 1e300")):
        out.append(api(fam, "overflow_warns", dtype, expr, core=expr == "x * 1e300" and dtype == "float32"))
    for routes in (["vjp"], ["explicit"], ["numeric"], ["factored"], ["vjp", "numeric"], ["explicit", "factored"],
                   None, [], ["bogus"]):
        out.append(api(fam, "compare_routes", routes, core=routes == ["vjp"]))
    for n in (16, 33):
        for call in ("grad", "compare", "jacobian:factored", "jacobian:explicit", "jacobian:vjp", "jacobian:auto"):
            out.append(api(fam, "many_axes", n, call, core=n == 33 and call in ("grad", "compare")))
    out += [api(fam, "many_axes", n, "grad") for n in (20, 40)]
    for op in ("det", "logdet"):
        for route in grads + [f"hessian:{m}" for m in HESSIAN_METHODS] + ["explain", "compare"]:
            out.append(api(fam, "singular", op, route, core=route == "grad:factored"))
    return out


def catalogue(scratch: str, quick: bool, families: Sequence[str]) -> List[Attempt]:
    """The attempts of the chosen families (only the core ones with --quick)."""
    builders = {"cli-input": cli_input_attempts, "injection": lambda: injection_attempts(scratch),
                "memory": memory_attempts, "limits": limit_attempts, "graph": graph_attempts}
    attempts = [a for fam in families for a in builders[fam]()]
    return [a for a in attempts if a.core] if quick else attempts


# ====================================================================== the probes (run in a child interpreter)
PROBES: Dict[str, Callable[..., Tuple[str, str]]] = {}


def probe(fn: Callable[..., Tuple[str, str]]) -> Callable[..., Tuple[str, str]]:
    """Register an API probe. It returns (outcome, detail); an exception it does not expect escapes."""
    PROBES[fn.__name__] = fn
    return fn


def _value(text: str) -> Any:
    """A test value written as a tiny Python literal (with np. and float specials): '1.5', "'4G'", 'nan'."""
    import numpy as np

    return eval(text, {"__builtins__": {}}, {"np": np, "nan": float("nan"), "inf": float("inf")})  # our own table


def _message(exc: BaseException) -> bool:
    return bool(str(exc).strip())


@probe
def null_byte_formula(formula: str) -> Tuple[str, str]:
    import numpy as np

    import jacobians as jx
    from jacobians.formula import FormulaError, build

    pwn = re.search(r"'(/[^']*)'", formula)
    try:
        build(formula, {"X": jx.var(np.ones((3, 3)), name="X")})
        outcome = ("wrong", "accepted a formula with a NUL byte")
    except FormulaError as exc:
        outcome = ("clean", f"FormulaError: {exc}")
    if pwn and os.path.exists(pwn.group(1)):
        return "wrong", f"the attack ran: {pwn.group(1)} exists"
    return outcome


def _memory_graph(graph: str, n: int):
    import numpy as np

    import jacobians as jx
    from jacobians.formula import build

    rng = np.random.default_rng(0)
    names = [v for v in ("X", "W") if re.search(rf"\b{v}\b", graph)]
    variables = {v: jx.var(rng.standard_normal((n, n)) / np.sqrt(n), name=v) for v in names}
    return build(graph, variables), variables["X"]


@probe
def memory_call(call: str, graph: str, n: int, method: Any, limit: str) -> Tuple[str, str]:
    """One call under memory_limit(limit): returns or refuses with a documented error; peak ≤ limit."""
    import tracemalloc

    import jacobians as jx
    from jacobians.memory import parse_bytes

    y, x = _memory_graph(graph, n)
    run = {"explain": lambda: str(jx.explain(y, x)),
           "derivative": lambda: jx.grad(y, x, method=method) if y.size == 1 else jx.jacobian(y, x, method=method),
           "hessian": lambda: jx.hessian(y, x, method=method),
           "compare": lambda: str(jx.compare(y, x, order=method))}[call]
    nbytes = parse_bytes(limit)
    tracemalloc.start()
    try:
        with jx.memory_limit(nbytes):
            run()
        ended = "returned"
    except jx.JacobianTooLarge:
        ended = "refused: JacobianTooLarge"
    except (ValueError, TypeError) as exc:
        if not _message(exc):
            return "wrong", f"{type(exc).__name__} without a message"
        ended = f"refused: {type(exc).__name__}: {_short(str(exc), 90)}"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if peak > nbytes:
        return "above limit", f"{ended}; tracemalloc peak {peak:,} B = {peak / nbytes:.2f} × the limit {limit}"
    return "clean", f"{ended}; peak {peak / nbytes:.0%} of {limit}"


@probe
def bad_limit(door: str, text: str) -> Tuple[str, str]:
    """A value that is not a byte count must raise ValueError through every door and change nothing."""
    from jacobians.memory import get_memory_limit, memory_limit, parse_bytes, set_memory_limit

    value, before = _value(text), get_memory_limit()
    try:
        if door == "set":
            set_memory_limit(value)
        elif door == "context":
            with memory_limit(value):
                pass
        elif door == "parse":
            parse_bytes(value)
        else:
            os.environ["JACOBIANS_MEMORY_LIMIT"] = value
            get_memory_limit()
        return "wrong", f"accepted; the limit is now {get_memory_limit():,} bytes"
    except ValueError as exc:
        if not _message(exc):
            return "wrong", "ValueError without a message"
        os.environ.pop("JACOBIANS_MEMORY_LIMIT", None)
        after = get_memory_limit()
        if after != before:
            return "wrong", f"refused, but the limit changed from {before:,} to {after:,}"
        return "clean", f"ValueError: {_short(str(exc), 80)}"


@probe
def good_limit(door: str, text: str, expected: int) -> Tuple[str, str]:
    from jacobians.memory import get_memory_limit, memory_limit, set_memory_limit

    before = get_memory_limit()
    if door == "set":
        set_memory_limit(_value(text))
        inside = get_memory_limit()
        set_memory_limit(None)
    else:
        with memory_limit(_value(text)):
            inside = get_memory_limit()
    after = get_memory_limit()
    if inside != expected or after != before:
        return "wrong", f"limit {inside:,} (expected {expected:,}); after: {after:,} (before: {before:,})"
    return "clean", f"{inside:,} bytes, then restored"


@probe
def threads(a: str, b: str) -> Tuple[str, str]:
    """A worker thread and the main thread each in their own memory_limit: each sees its own value."""
    import threading

    from jacobians.memory import get_memory_limit, memory_limit, parse_bytes

    before, seen = get_memory_limit(), {}
    inside, release = threading.Event(), threading.Event()

    def worker() -> None:
        with memory_limit(a):
            inside.set()
            release.wait(10)
            seen["worker"] = get_memory_limit()

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(10)
    with memory_limit(b):
        seen["main"] = get_memory_limit()
    release.set()
    t.join(10)
    want = {"worker": parse_bytes(a), "main": parse_bytes(b)}
    if seen != want or get_memory_limit() != before:
        return "wrong", f"seen {seen}, expected {want}; after: {get_memory_limit():,} (before {before:,})"
    return "clean", f"seen {seen}, then restored"


@probe
def threads_see_global(a: str) -> Tuple[str, str]:
    import threading

    from jacobians.memory import get_memory_limit, parse_bytes, set_memory_limit

    set_memory_limit(a)
    seen = []
    t = threading.Thread(target=lambda: seen.append(get_memory_limit()))
    t.start()
    t.join(10)
    set_memory_limit(None)
    return ("clean", "a new thread sees set_memory_limit") if seen == [parse_bytes(a)] else \
        ("wrong", f"a new thread saw {seen}, expected {parse_bytes(a)}")


@probe
def tasks(a: str, b: str) -> Tuple[str, str]:
    """Two asyncio tasks, each inside its own memory_limit, interleaved."""
    import asyncio

    from jacobians.memory import get_memory_limit, memory_limit, parse_bytes

    before = get_memory_limit()

    async def one(limit: str) -> int:
        with memory_limit(limit):
            await asyncio.sleep(0.01)
            return get_memory_limit()

    async def both():
        return await asyncio.gather(one(a), one(b))

    seen = asyncio.run(both())
    want = [parse_bytes(a), parse_bytes(b)]
    if list(seen) != want or get_memory_limit() != before:
        return "wrong", f"tasks saw {seen}, expected {want}; after: {get_memory_limit():,}"
    return "clean", f"tasks saw {seen}"


@probe
def nested(a: str, b: str) -> Tuple[str, str]:
    from jacobians.memory import get_memory_limit, memory_limit, parse_bytes

    before = get_memory_limit()
    with memory_limit(a):
        with memory_limit(b):
            inner = get_memory_limit()
        outer = get_memory_limit()
    if (inner, outer, get_memory_limit()) != (parse_bytes(b), parse_bytes(a), before):
        return "wrong", f"inner {inner:,}, outer {outer:,}, after {get_memory_limit():,} (before {before:,})"
    return "clean", "inner, outer and after as set"


@probe
def restored_after_error(a: str) -> Tuple[str, str]:
    from jacobians.memory import get_memory_limit, memory_limit

    before = get_memory_limit()
    try:
        with memory_limit(a):
            raise KeyError("boom")
    except KeyError:
        pass
    after = get_memory_limit()
    return ("clean", "restored") if after == before else ("wrong", f"after an error: {after:,}, before {before:,}")


@probe
def context_beats_set(a: str, b: str) -> Tuple[str, str]:
    """Inside memory_limit(a), set_memory_limit(b) is the process setting; the block's value wins until it ends."""
    from jacobians.memory import get_memory_limit, memory_limit, parse_bytes, set_memory_limit

    with memory_limit(a):
        set_memory_limit(b)
        inside = get_memory_limit()
    after = get_memory_limit()
    set_memory_limit(None)
    if (inside, after) != (parse_bytes(a), parse_bytes(b)):
        return "wrong", f"inside {inside:,} (want {parse_bytes(a):,}), after {after:,} (want {parse_bytes(b):,})"
    return "clean", "the block wins, then the process setting"


@probe
def immutable(kind: str, attack: str) -> Tuple[str, str]:
    """A node's value cannot be written: not by setflags, assignment, through its base, or an as_strided view."""
    import numpy as np

    import jacobians as jx

    x = jx.var(np.arange(6.0).reshape(2, 3), name="x")
    node = {"var": x, "tanh": jx.tanh(x), "reshape": x.reshape(3, 2), "matmul": x @ x.T}[kind]
    saved = np.array(node.value, copy=True)
    try:
        if attack == "setflags":
            node.value.setflags(write=True)
        elif attack == "assign":
            node.value[...] = 42.0
        elif attack == "as_strided":
            np.lib.stride_tricks.as_strided(node.value, writeable=True)[...] = 42.0
        else:  # every array under the value: make it writeable, then write
            b = node.value.base
            while isinstance(b, np.ndarray):
                b.setflags(write=True)
                b[...] = 42.0
                b = b.base
        refused = False
    except ValueError:
        refused = True
    if not np.array_equal(node.value, saved) or node.value.flags.writeable:
        return "wrong", f"the value of a {kind} node was changed by {attack} (immutability bypass)"
    if not refused and attack != "base":
        return "wrong", f"{attack} on a {kind} node neither raised nor changed anything"
    return "clean", f"{attack}: refused" if refused else f"{attack}: the value is unchanged"


@probe
def var_copies_its_input() -> Tuple[str, str]:
    import numpy as np

    import jacobians as jx

    a = np.ones(3)
    x = jx.var(a, name="x")
    a[0] = 5.0
    return ("clean", "var holds a copy") if x.value[0] == 1.0 else ("wrong", "writing the input changed the var")


def _derivative(call: str, y, x):
    """Run 'grad:METHOD', 'jacobian:METHOD', 'hessian:METHOD', 'explain' or 'compare' on (y, x)."""
    import jacobians as jx

    what, _, method = call.partition(":")
    if what == "grad":
        return jx.grad(jx.sum(y) if y.size != 1 else y, x, method=method)
    if what == "jacobian":
        return jx.jacobian(y, x, method=method)
    if what == "hessian":
        return jx.hessian(jx.sum(y) if y.size != 1 else y, x, method=method)
    if what == "explain":
        return str(jx.explain(y, x))
    return jx.compare(jx.sum(y) if y.size != 1 else y, x)


@probe
def cycle(loop: str, call: str) -> Tuple[str, str]:
    """A cycle forced past the immutability guard: GraphCycle (or, for a leaf's own loop, a finite answer)."""
    import numpy as np

    import jacobians as jx

    x = jx.var(np.ones(2), name="x")
    h = jx.tanh(x)
    y = jx.sin(h)
    if loop == "through-op":
        object.__setattr__(x, "parents", (y,))
    elif loop == "intermediate":
        object.__setattr__(h, "parents", (y,))
    else:
        object.__setattr__(x, "parents", (x,))
    try:
        with jx.memory_limit("200M"):
            _derivative(call, y, x)
    except jx.graph.GraphCycle as exc:
        return "clean", f"GraphCycle: {_short(str(exc), 80)}"
    if loop == "self":  # a var is a leaf: its forced parents may be ignored
        return "clean", "returned (the var is a leaf)"
    return "wrong", "returned on a cyclic graph without GraphCycle"


@probe
def chain(op: str, call: str, length: int) -> Tuple[str, str]:
    """A chain of `length` ops: the gradient must come back right, with no RecursionError."""
    import numpy as np

    import jacobians as jx

    x0 = np.array([0.3, -0.2, 0.5])
    x = jx.var(x0, name="x")
    y, v, slope = x, x0.copy(), np.ones(3)
    for _ in range(length):
        if op == "neg":
            y = -y
            slope = -slope
        elif op == "tanh":
            y = jx.tanh(y)
            v = np.tanh(v)
            slope = slope * (1 - v * v)
        elif op == "scale":
            y = y * 1.0001
            slope = slope * 1.0001
        else:
            y = y + 1.0
    l = jx.sum(y)
    what = call.partition(":")[0]
    if what == "hessian":
        H = jx.hessian(l, x, method=call.partition(":")[2])
        linear = np.allclose(H, 0, atol=1e-6)
        return ("clean", "zero Hessian") if linear else ("wrong", "the Hessian of a linear chain is not 0")
    if what == "compare":
        c = jx.compare(l, x)
        return ("clean", f"compare ok={c.ok}") if c.ok is not False else ("wrong", f"routes disagree:\n{c}")
    g = jx.grad(l, x, method=call)
    rtol = 1e-5 if call == "numeric" else 1e-9
    if not np.allclose(g, slope, rtol=rtol, atol=1e-12):
        return "wrong", f"gradient {g} != {slope}"
    return "clean", "gradient right"


@probe
def empty_reduction(fn: str, shape: List[int], axis: Optional[int]) -> Tuple[str, str]:
    """A reduction over no entries is a clear ValueError (never ZeroDivisionError); otherwise it differentiates."""
    import warnings

    import numpy as np

    import jacobians as jx

    x = jx.var(np.zeros(tuple(shape)), name="E")
    reduced = [shape[a] for a in (range(len(shape)) if axis is None else [axis])]
    empty = int(np.prod(reduced)) == 0
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = getattr(jx, fn)(x, axis=axis)
            g = jx.grad(jx.sum(y), x)
    except ValueError as exc:
        if empty and _message(exc):
            return "clean", f"ValueError: {_short(str(exc), 80)}"
        return "wrong", f"ValueError on a non-empty reduction: {exc}"
    if empty:
        said = "; ".join(sorted({f"{w.category.__name__}: {w.message}" for w in caught})) or "no warning"
        return "wrong", f"returned {np.asarray(y.value).ravel()[:1]} for a reduction over no entries ({said})"
    return ("clean", "differentiated") if g.shape == x.shape else ("wrong", f"gradient shape {g.shape}")


@probe
def overflow_warns(dtype: str, expr: str) -> Tuple[str, str]:
    """A constant that overflows the graph's dtype gives a NonFiniteWarning."""
    import warnings

    import numpy as np

    import jacobians as jx

    x = jx.var(np.ones(3, dtype=dtype), name="x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = eval(expr, {"__builtins__": {}}, {"x": x, "jx": jx})  # an expression of our own table
    kinds = sorted({w.category.__name__ for w in caught})
    if any(issubclass(w.category, jx.NonFiniteWarning) for w in caught):
        return "clean", f"NonFiniteWarning (value {y.value.ravel()[0]})"
    return "wrong", f"no NonFiniteWarning; value {y.value.ravel()[0]}, warnings: {kinds or 'none'}"


@probe
def compare_routes(routes: Optional[List[str]]) -> Tuple[str, str]:
    """compare with one route has nothing to compare (ok is None, not False); an unknown route is a ValueError."""
    import numpy as np

    import jacobians as jx
    from jacobians.compare import ROUTES

    x = jx.var(np.array([1.0, 2.0, 3.0]), name="x")
    try:
        c = jx.compare(jx.sum(x * x), x, routes=routes)
    except ValueError as exc:
        bad = routes is not None and (not routes or any(r not in ROUTES for r in routes))
        return ("clean", f"ValueError: {_short(str(exc), 80)}") if bad and _message(exc) else \
            ("wrong", f"ValueError for routes={routes}: {exc}")
    if c.ok is False:
        return "wrong", f"ok is False:\n{c}"
    if routes is not None and len(set(routes)) == 1 and "nothing to compare" not in str(c):
        return "wrong", "one route, but the table does not say there is nothing to compare"
    return "clean", f"ok={c.ok}"


@probe
def many_axes(n: int, call: str) -> Tuple[str, str]:
    """x with n unit axes: grad and compare work; a Jacobian with more than 64 axes is a clear ValueError."""
    import numpy as np

    import jacobians as jx

    x = jx.var(np.ones((1,) * n) * 0.5, name="x")
    y = jx.tanh(x)
    if call == "grad":
        g = jx.grad(jx.sum(y), x)
        return ("clean", "grad") if g.shape == x.shape else ("wrong", f"grad shape {g.shape}")
    if call == "compare":
        c = jx.compare(jx.sum(y), x)
        return ("clean", f"compare: {', '.join(c.results)}") if c.results and c.ok is not False else \
            ("wrong", f"compare ran nothing or disagreed:\n{c}")
    method = call.partition(":")[2]
    try:
        J = jx.jacobian(y, x, method=method)
    except ValueError as exc:
        if 2 * n > 64 and "64" in str(exc):
            return "clean", f"ValueError: {_short(str(exc), 80)}"
        return "wrong", f"ValueError: {exc}"
    want = np.full((1,) * (2 * n), 1 - np.tanh(0.5) ** 2)
    return ("clean", "jacobian") if J.shape == want.shape and np.allclose(J, want) else ("wrong", f"shape {J.shape}")


@probe
def singular(op: str, route: str) -> Tuple[str, str]:
    """det/logdet at a singular matrix: a value (warned if not finite) or an error that names the op."""
    import warnings

    import numpy as np

    import jacobians as jx

    A = jx.var(np.zeros((3, 3)), name="A")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = getattr(jx, op)(A)
        try:
            r = _derivative(route, y, A)
        except (np.linalg.LinAlgError, ValueError, TypeError) as exc:
            if re.search(rf"\b{op}\b", str(exc)):
                return "clean", f"{type(exc).__name__}: {_short(str(exc), 80)}"
            return "wrong", f"{type(exc).__name__} does not name {op}: {_short(str(exc), 100)}"
    warned = any(issubclass(w.category, jx.NonFiniteWarning) for w in caught)
    if isinstance(r, np.ndarray) and not np.all(np.isfinite(r)) and not warned:
        return "wrong", "a non-finite derivative without a NonFiniteWarning"
    return "clean", "returned" + (" (with a NonFiniteWarning)" if warned else "")


def run_probe(name: str, args_json: str) -> int:
    """The child side of an API attempt: run the probe and print its verdict as the last stdout line."""
    import traceback

    try:
        outcome, detail = PROBES[name](*json.loads(args_json))
    except Exception as exc:  # an exception the probe does not allow: shown, and counted as a traceback
        traceback.print_exc()
        outcome, detail = "traceback", f"{type(exc).__name__}: {_short(' '.join(str(exc).split()), 160)}"
    print(RESULT_TAG + json.dumps({"outcome": outcome, "detail": detail}), flush=True)
    return 0


# ====================================================================== running and classifying
@dataclass
class Finished:
    """What one subprocess did."""

    code: Optional[int]   # None: killed at the timeout
    out: str
    err: str
    seconds: float
    peak_rss: int         # bytes (the kernel's ru_maxrss)


@dataclass
class Result:
    attempt: Attempt
    outcome: str
    detail: str
    seconds: float
    first_err: str = ""


@dataclass(frozen=True)
class Budget:
    """The memory a command line may use: its interpreter, twice the limit (the data, priced on its own
    against the limit, and one call within it) and ``SLACK`` for what a trivial run does not show (modules
    another path imports, allocator slack). Every child is also capped at ``cap`` bytes of address space,
    so a runaway allocation fails in its own process instead of starving the machine."""

    baseline: int          # peak RSS of a trivial `check`
    default_limit: int     # the library's limit with JACOBIANS_MEMORY_LIMIT unset
    cap: int

    def allowed(self, env: Sequence[Tuple[str, str]]) -> int:
        from jacobians.memory import parse_bytes

        text = dict(env).get("JACOBIANS_MEMORY_LIMIT")
        try:
            limit = parse_bytes(text) if text else self.default_limit
        except ValueError:
            limit = self.default_limit
        return self.baseline + 2 * limit + SLACK


# run argv[1:] with an address-space cap (argv[1]), by exec: the pid, and so the rusage, stay the child's
CAPPED = ("import os, resource, sys; cap = int(sys.argv[1]); "
          "resource.setrlimit(resource.RLIMIT_AS, (cap, cap)); os.execv(sys.argv[2], sys.argv[2:])")


def run_process(cmd: List[str], env: Dict[str, str], timeout: float, cwd: str, cap: int = 0) -> Finished:
    """Run cmd with its output in files (no pipe to fill), killing it at the timeout; its peak RSS from wait4."""
    if cap:
        cmd = [sys.executable, "-c", CAPPED, str(cap), *cmd]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+b") as out, tempfile.TemporaryFile("w+b") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                killed = True
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Finished(None if killed else proc.returncode, out.read().decode("utf-8", "replace"),
                        err.read().decode("utf-8", "replace"), seconds, usage.ru_maxrss * 1024)


def child_env(extra: Sequence[Tuple[str, str]]) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JACOBIANS_MEMORY_LIMIT"}
    env.update(PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8", **dict(extra))
    return env


def measure_budget(scratch: str, timeout: float) -> Budget:
    """The baseline RSS of a trivial check and the default limit, each from a child process."""
    env = child_env(())
    trivial = run_process([sys.executable, "-m", "jacobians", "check", "fro(X)", "--shape", "X=2", "--no-explain"],
                          env, timeout, scratch)
    limit = run_process([sys.executable, "-c", "from jacobians.memory import get_memory_limit as g; print(g())"],
                        env, timeout, scratch)
    if trivial.code != 0 or limit.code != 0:
        raise SystemExit(f"audit: the library does not run: {_first_line(trivial.err + limit.err)}")
    default = int(limit.out.split()[-1])
    return Budget(trivial.peak_rss, default, cap=2 * default + (2 << 30))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def classify_cli(a: Attempt, f: Finished, budget: Budget) -> Tuple[str, str]:
    """The outcome of a command-line attempt from its exit code, output, peak RSS and side effects."""
    if a.sentinel and os.path.exists(a.sentinel):
        return "wrong", f"the attack ran: {a.sentinel} was created"
    if "uid=" in f.out:
        return "wrong", "the attack ran: `id` printed"
    ended = f"killed after {f.seconds:.0f} s" if f.code is None else f"exit {f.code}"
    if f.peak_rss > budget.allowed(a.env):
        return "above limit", (f"{ended}; peak RSS {_gib(f.peak_rss)} > {_gib(budget.allowed(a.env))} "
                               "(interpreter + 2 × the limit + slack)")
    if "Unable to allocate" in f.err + f.out:
        return "above limit", f"{ended}: numpy refused an allocation the guard never priced"
    if f.code is None:
        return "hang", f"{ended} (peak RSS {_gib(f.peak_rss)})"
    if "Traceback (most recent call last)" in f.err + f.out:
        return "traceback", ended
    if f.code not in (0, 1, 2):
        return "wrong", f"{ended} (killed by a signal, or an unexpected status)"
    lines = [line for line in f.err.splitlines() if line.strip()]
    if f.code in (1, 2) and len(lines) > 1:
        return "wrong", f"{ended} with {len(lines)} lines on stderr"
    if f.code not in a.codes:
        return "wrong", f"{ended}, expected {' or '.join(map(str, a.codes))}"
    return "clean", f"{ended}, peak RSS {_gib(f.peak_rss)}"


def classify_api(f: Finished) -> Tuple[str, str]:
    """The outcome of an API attempt from the probe's verdict line (or its absence)."""
    if f.code is None:
        return "hang", f"killed after {f.seconds:.0f} s"
    tagged = [line[len(RESULT_TAG):] for line in f.out.splitlines() if line.startswith(RESULT_TAG)]
    verdict = tagged[-1] if tagged else None
    if verdict is not None:
        v = json.loads(verdict)
        return v["outcome"], v["detail"]
    last = next((line for line in reversed(f.err.splitlines()) if line.strip()), "")
    if "Traceback (most recent call last)" in f.err:
        return "traceback", f"the probe died: {last.strip()}"
    return "wrong", f"the probe died with exit {f.code} and no verdict ({last.strip() or 'no stderr'})"


def run_attempt(a: Attempt, timeout: float, scratch: str, budget: Budget) -> Result:
    """Run one attempt in its own capped subprocess and classify it."""
    if a.probe:
        cmd = [sys.executable, SCRIPT, "--probe", a.probe, json.dumps(list(a.args))]
    else:
        cmd = [sys.executable, "-m", "jacobians", *a.argv]
    f = run_process(cmd, child_env(a.env), timeout, scratch, cap=budget.cap)
    outcome, detail = classify_api(f) if a.probe else classify_cli(a, f, budget)
    first = "" if a.probe and outcome == "clean" else _first_line(f.err)
    return Result(a, outcome, detail, f.seconds, first)


# ====================================================================== the report
def table(results: List[Result], families: Sequence[str]) -> str:
    """One row per family and a total: attempts and how many ended each way."""
    head = ["family", "attempts", "clean", "tracebacks", "hangs", "above limit", "wrong"]
    rows = []
    for fam in list(families) + ["total"]:
        rs = [r for r in results if fam == "total" or r.attempt.family == fam]
        if not rs and fam != "total":
            continue
        rows.append([fam, len(rs)] + [sum(r.outcome == o for r in rs) for o in OUTCOMES])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    lines = [fmt(head), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows[:-1]] + [fmt(["-" * w for w in widths]), fmt(rows[-1])]
    return "\n".join(lines)


def findings(results: List[Result]) -> List[str]:
    """One line per attempt that did not end clean."""
    lines = []
    for r in results:
        if r.outcome != "clean":
            err = f" | stderr: {_short(r.first_err, 160)}" if r.first_err else ""
            lines.append(f"[{r.attempt.family}] {r.attempt.label} -> {r.outcome.upper()}: {r.detail}{err}")
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the core attempts only (about 40)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before an attempt counts as a hang")
    p.add_argument("--workers", type=int, default=3, help="attempts run at once (default 3)")
    p.add_argument("--family", action="append", choices=FAMILIES, help="run only this family (repeatable)")
    p.add_argument("--match", default="", help="run only attempts whose label contains this text")
    p.add_argument("--verbose", action="store_true", help="print every attempt, not only the findings")
    p.add_argument("--probe", nargs=2, metavar=("NAME", "ARGS"), help=argparse.SUPPRESS)  # the child side
    args = p.parse_args(argv)
    if args.probe:
        return run_probe(*args.probe)

    families = args.family or list(FAMILIES)
    scratch = tempfile.mkdtemp(prefix="jx-audit-")
    try:
        attempts = [a for a in catalogue(scratch, args.quick, families) if args.match in a.label]
        start = time.perf_counter()
        budget = measure_budget(scratch, args.timeout)
        with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
            results = list(pool.map(lambda a: run_attempt(a, args.timeout, scratch, budget), attempts))
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"audit replay: {len(results)} attempts{' (--quick)' if args.quick else ''}, "
          f"{args.workers} at a time, timeout {args.timeout:g} s, wall time {wall:.1f} s")
    print(f"default memory limit {_gib(budget.default_limit)}; a command line may peak at its interpreter "
          f"({_gib(budget.baseline)}) + 2 × its limit + {SLACK >> 20} MiB; every child is capped at "
          f"{_gib(budget.cap)} of address space")
    print()
    print(table(results, families))
    if args.verbose:
        print()
        for r in results:
            print(f"{r.outcome:<11} {r.seconds:6.1f} s  [{r.attempt.family}] {r.attempt.label}: {r.detail}")
    bad = findings(results)
    if bad:
        print()
        print(f"not clean ({len(bad)}):")
        for line in bad:
            print("  " + line)
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
