"""Command line.

    python -m jacobians demo [NAME] [--sizes D=3,N=4] [--seed 0] [--plot DIR]
    python -m jacobians demo --list
    python -m jacobians check "fro(W @ X)" --shape W=3x3 --shape X=3x5 --wrt W

Exit codes: 0 when every check agrees; 1 when routes disagree or a numerical
failure stops them (a singular matrix, a non-finite result); 2 for a bad command
line or a request too large for memory. Errors are one line on stderr that says
what and how to fix it; ``--traceback`` shows Python's full traceback instead.
numpy's own RuntimeWarnings are silenced; the library's warnings appear once, at
the end of a run that ends without an error (an error's one line replaces them,
carrying what they said unless it says it already).

Sizes are priced before anything is allocated: a demo's data and the Jacobians it
keeps (``--sizes``), the check's data (``--shape``) and, while the formula is
built, each value of it (at most 1/16 of the memory limit: ``check`` holds every
value, and its routes several more copies of each).
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import numpy as np

from .memory import human_bytes

EXIT_OK, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2
VALUE_SHARE = 16  # check: one value of the formula may take at most 1/16 of the memory limit


class UsageError(Exception):
    """A bad command line; main() prints it on one line and returns 2."""


def _too_large(exc: BaseException, advice: str) -> UsageError:
    """A JacobianTooLarge as one command-line line: what, its shape and size, the limit, and what to do."""
    what, shape, nbytes, limit = (getattr(exc, k, None) for k in ("what", "shape", "nbytes", "limit"))
    if not what or not limit:
        return UsageError(str(exc))
    return UsageError(f"{what}: an array of shape {shape} would need {human_bytes(nbytes)}, above the memory limit of "
                      f"{human_bytes(limit)}; {advice}, or raise the limit with the environment variable "
                      "JACOBIANS_MEMORY_LIMIT (e.g. JACOBIANS_MEMORY_LIMIT=16G)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print the usage block and exit
        raise UsageError(f"{message} (see {self.prog} --help)")


def _seed(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) >= 2**63:
        raise argparse.ArgumentTypeError(f"seed {text!r} must be a whole number from 0 to 2**63 - 1")
    return int(text)


def _parser() -> _Parser:
    top = _Parser(prog="python -m jacobians", description="Explicit Jacobians: teaching demos and a formula checker.")
    top.add_argument("--traceback", action="store_true", help="on an error, show Python's full traceback")
    sub = top.add_subparsers(dest="command", metavar="{demo,check}")

    demo = sub.add_parser("demo", help="run a teaching demo (default: the first seed question)",
                          description="Run a teaching demo. Exit 0 when every number agrees, 1 when not.")
    demo.add_argument("name", nargs="?", default=None, help="which demo (see --list); default: chain")
    demo.add_argument("--list", action="store_true", help="list the demos and their sizes")
    demo.add_argument("--sizes", default="", help="sizes, by name (D=3,N=5) or all in order (3x5)")
    demo.add_argument("--seed", type=_seed, default=0, help="seed of the random data (default 0)")
    demo.add_argument("--plot", metavar="DIR", type=Path, default=None,
                      help="write the demo's Jacobian pictures (PNG) into DIR (needs matplotlib: pip install .[plot])")

    check = sub.add_parser(
        "check", help="build a formula from the ops and compare its four derivative routes",
        description="Build FORMULA from the toolkit's ops (parsed safely, never eval'd) on random data, print "
                    "the explicit/vjp/numeric/factored comparison and the derivation. Exit 0 when the routes "
                    "agree, 1 when not, 2 for a bad formula or shape.")
    check.add_argument("formula", help='e.g. "fro(W @ X)", "sum(tanh(X @ W) ** 2)", "W @ X.T"')
    check.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                       help="declare a variable, e.g. --shape X=3x5 (v=4: a vector, s=scalar); repeat per variable")
    check.add_argument("--wrt", action="append", default=[], metavar="NAME",
                       help="differentiate with respect to NAME (repeatable; default: every declared variable)")
    check.add_argument("--seed", type=_seed, default=0, help="seed of the random values (default 0)")
    check.add_argument("--positive", action="store_true",
                       help="draw values in [0.5, 2] instead of standard normal (for log, sqrt, …)")
    check.add_argument("--order", default="optimal", help="contraction order: optimal, reverse, forward, naive")
    check.add_argument("--no-explain", action="store_true", help="print only the comparison table")
    return top


# ------------------------------------------------------------------ demo
def _demo(args: argparse.Namespace) -> int:
    from .demos import DEFAULT, DEMOS, DemoError, get_demo, parse_sizes, run_demo

    if args.list:
        print("demos (python -m jacobians demo NAME):")
        for name in DEMOS:
            mod = get_demo(name)
            sizes = ",".join(f"{k}={v}" for k, v in mod.SIZES.items())
            print(f"  {name:<6}{' (default)' if name == DEFAULT else '          '}  --sizes {sizes:<18} {mod.SUMMARY}")
        return EXIT_OK
    name = args.name or DEFAULT
    try:
        mod = get_demo(name)
        sizes = parse_sizes(args.sizes, mod.SIZES) if args.sizes else dict(mod.SIZES)
    except DemoError as exc:
        raise UsageError(str(exc)) from None
    if args.plot is not None:
        from .plot import MISSING_MATPLOTLIB

        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(f"--plot: {MISSING_MATPLOTLIB}") from None
        if args.plot.exists() and not args.plot.is_dir():
            raise UsageError(f"--plot {args.plot}: it is a file; give a directory for the pictures")
        try:
            args.plot.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--plot {args.plot}: cannot create that directory ({exc.strerror}); "
                             "give a writable directory") from None
    from .memory import JacobianTooLarge

    try:
        result = run_demo(name, sizes, args.seed, args.plot)  # prices the demo's arrays before making them
    except DemoError as exc:
        raise UsageError(str(exc)) from None
    except JacobianTooLarge as exc:
        defaults = ",".join(f"{k}={v}" for k, v in mod.SIZES.items())
        raise _too_large(exc, f"use smaller --sizes (the defaults are {defaults})") from None
    return EXIT_OK if result.ok else EXIT_DISAGREE


# ------------------------------------------------------------------ check
CHECK_NUMERIC_BUDGET = 20.0  # seconds for check's numeric route: the whole command stays well under a minute


def _check(args: argparse.Namespace) -> int:
    from jacobians import numeric

    previous = numeric.TIME_BUDGET
    numeric.TIME_BUDGET = min(previous, CHECK_NUMERIC_BUDGET)
    try:
        return _run_check(args)
    finally:
        numeric.TIME_BUDGET = previous


def _run_check(args: argparse.Namespace) -> int:
    import jacobians as jx

    from .formula import MAX_AXES, FormulaError, NumericalFailure, build, parse_shape

    if args.order not in jx.ORDERS:
        raise UsageError(f"--order {args.order!r} is not one of {', '.join(jx.ORDERS)}")
    rng = np.random.default_rng(args.seed)
    limit = jx.memory.get_memory_limit()
    budget = max(limit // VALUE_SHARE, 1)
    why = (f"the {human_bytes(budget)} the check command allows one value (1/{VALUE_SHARE} of the memory limit of "
           f"{human_bytes(limit)}: it holds every value and its routes several copies of each); use smaller --shape "
           "sizes, or raise the limit with the environment variable JACOBIANS_MEMORY_LIMIT (e.g. 16G)")
    variables = {}
    try:
        for spec in args.shape:
            name, shape = parse_shape(spec)
            if name in variables:
                raise FormulaError(f"--shape {spec!r}: {name} is declared twice")
            try:
                with jx.memory.memory_limit(budget):  # the data are values of the formula too
                    jx.memory.check_bytes(shape, np.float64, f"--shape {spec}: the data of {name}")
            except jx.JacobianTooLarge as exc:
                raise FormulaError(f"{exc.what} would be an array of shape {exc.shape} ({human_bytes(exc.nbytes)}), "
                                   f"above {why}") from None
            value = rng.uniform(0.5, 2.0, shape) if args.positive else rng.standard_normal(shape)
            variables[name] = jx.var(value, name=name)
        if not variables:
            raise FormulaError('declare the variables with --shape, e.g. --shape W=3x3 --shape X=3x5')
        for w in args.wrt:
            if w not in variables:
                raise FormulaError(f"--wrt {w}: no variable {w!r}; declared: {', '.join(variables)}")
        y = build(args.formula, variables, budget=(budget, why))  # each large value priced before it is made
    except FormulaError as exc:
        raise UsageError(str(exc)) from None
    wrt = [variables[w] for w in (args.wrt or variables)]
    for x in wrt:
        if y.ndim + x.ndim > MAX_AXES:
            raise UsageError(f"the Jacobian d{_short(y.name)}/d{x.name} would have {y.ndim} + {x.ndim} = "
                             f"{y.ndim + x.ndim} axes, but numpy arrays have at most {MAX_AXES} axes; reduce the "
                             "formula to a scalar (e.g. sum(...) or fro(...)) or declare fewer axes with --shape")

    print(f"{y.name}: shape {y.shape}, from " + ", ".join(f"{n} {v.shape}" for n, v in variables.items())
          + f" ({'uniform [0.5, 2]' if args.positive else 'standard normal'}, seed {args.seed})")
    value_finite = bool(np.all(np.isfinite(y.value)))
    if not value_finite:
        print("warning: the formula's value is not finite on this data (log or sqrt of a negative? try --positive)")
    try:
        c = jx.compare(y, wrt, order=args.order)
    except jx.JacobianTooLarge as exc:
        raise _too_large(exc, "use smaller --shape sizes") from None
    print(c)
    failed, too_big = {}, {}  # routes that failed on the data; routes that ran out of memory or time
    for r, skipped in c.skipped.items():
        if skipped.startswith("failed: "):
            reason = _first_sentence(skipped[len("failed: "):])
            (too_big if reason.startswith(_RESOURCE) else failed)[r] = reason
    if args.traceback and failed and c.ok is None:  # --traceback: the failing route's own traceback
        (jx.grad if y.size == 1 else jx.jacobian)(y, wrt, method=next(iter(failed)), order=args.order)
    nonfinite = c.nonfinite
    other = "another --seed" if args.positive else "--positive or another --seed"  # other data
    failures = (f"; the {_routes(failed)} failed ({next(iter(failed.values()))})" if failed else "")
    if not value_finite:
        raise NumericalFailure(
            f"{_short(y.name)} is not finite on this data ({_bad_entries(y.value)}), so its derivatives are meaningless"
            f"{failures}. The data is outside the formula's domain (log, sqrt and logdet need positive values, "
            f"inv and solve a non-singular matrix): try {other}, or change the formula")
    if nonfinite:
        raise NumericalFailure(
            f"the {_routes(nonfinite)} gave non-finite derivatives of {_short(y.name)} on this data, so the routes "
            f"cannot be said to agree{failures}. Try {other}, or a formula that is differentiable on this data")
    if failed and c.ok is None:
        raise NumericalFailure(
            f"the {_routes(failed)} failed on this data ({next(iter(failed.values()))}), so there is nothing to "
            f"compare (see the table above). Try {other}, or change the formula")
    if not c.results or c.ok is None:
        ran = (f"only the {_routes(list(c.results))} ran, the others are" if c.results else
               "no route could run, each is")
        first = f" ({next(iter(too_big.values()))})" if too_big else ""
        raise UsageError(f"{ran} above the memory limit or too slow{first} (see the table above), so there is "
                         "nothing to compare: use smaller --shape sizes, or raise the limit with the environment "
                         "variable JACOBIANS_MEMORY_LIMIT (e.g. 16G)")
    if not args.no_explain:
        try:
            for x in wrt:
                print()
                print(jx.explain(y, x, order=args.order))
        except jx.JacobianTooLarge as exc:
            raise _too_large(exc, "use smaller --shape sizes, or pass --no-explain for the table only") from None
    return EXIT_OK if c.ok else EXIT_DISAGREE


# a route that failed for want of memory or time: the request is too large (exit 2), not a numerical failure
_RESOURCE = ("MemoryError", "JacobianTooLarge", "NumericTooSlow", "HessianTooSlow")


def _first_sentence(text: str) -> str:
    """Up to the first '. ' that starts a new sentence (not the one in 'w.r.t. X')."""
    return re.split(r"\.\s+(?=[A-Z][a-z])", text, maxsplit=1)[0]


def _short(name: str, width: int = 60) -> str:
    """A formula's name for a one-line message: long ones abbreviated."""
    return name if len(name) <= width else f"{name[:width - 1]}…"


def _routes(names) -> str:  # noqa: ANN001
    names = list(names)
    return f"{', '.join(names)} route{'s' * (len(names) > 1)}"


def _bad_entries(value: np.ndarray) -> str:
    """'-inf', or 'nan in 3 of 9 entries, inf in 1'."""
    if value.size == 1:
        return str(float(value.reshape(-1)[0]))
    nan, inf = int(np.isnan(value).sum()), int(np.isinf(value).sum())
    parts = ([f"nan in {nan:,}"] if nan else []) + ([f"±inf in {inf:,}"] if inf else [])
    return f"{' and '.join(parts)} of its {value.size:,} entries"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class _Warnings:
    """The library's warnings of one run, held until it ends: printed (once each) after a run without an
    error; folded into an error's one line otherwise, unless the error says the same already."""

    def __init__(self) -> None:
        self.held: List[tuple] = []  # (category, one-line text)

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        self.held.append((category, " ".join(str(message).split())))

    def flush(self) -> None:
        for _, text in self.held:
            print(f"warning: {text}", file=sys.stderr)
        self.held = []

    def folded(self, error: str, covers_nonfinite: bool = False) -> str:
        """The error's line with what the held warnings said (their first clause), unless it covers it."""
        from .node import NonFiniteWarning

        notes = [text.split("; ")[0] for cat, text in self.held
                 if not (covers_nonfinite and issubclass(cat, NonFiniteWarning))]
        self.held = []
        return error + "".join(f" (warned before: {n})" for n in notes)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]); returns the exit code.

    >>> main(["demo", "--list"])
    demos (python -m jacobians demo NAME):
      chain  (default)  --sizes D=3,N=4 ...
      mlp ...
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    command = next((f" {a}" for a in argv if a in ("demo", "check")), "")
    debug = "--traceback" in argv
    from .formula import NumericalFailure
    from .memory import JacobianTooLarge

    held = _Warnings()
    prefix = f"python -m jacobians{command}: error:"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("once")
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="numpy")
        shown = warnings.showwarning
        warnings.showwarning = held.show
        try:
            args = parser.parse_args(argv)
            if args.command == "demo":
                code = _demo(args)
            elif args.command == "check":
                code = _check(args)
            else:
                raise UsageError("give a command: demo or check (see python -m jacobians --help)")
            held.flush()
            return code
        except SystemExit as exc:  # --help
            held.flush()
            return int(exc.code or 0)
        except (UsageError, JacobianTooLarge, RecursionError, MemoryError) as exc:
            if debug:
                held.flush()
                raise
            print(held.folded(f"{prefix} {_one_line(exc)}"), file=sys.stderr)
            return EXIT_USAGE
        except NumericalFailure as exc:  # the data makes the formula fail: a singular matrix, a non-finite value
            if debug:
                held.flush()
                raise
            print(held.folded(f"{prefix} {_one_line(exc)}", covers_nonfinite=True), file=sys.stderr)
            return EXIT_DISAGREE
        except Exception as exc:  # a numerical failure (singular matrix, ...) or a bug: one line, exit 1
            if debug:
                held.flush()
                raise
            print(held.folded(f"{prefix} {type(exc).__name__}: {_one_line(exc)} (rerun with --traceback for "
                              "details)"), file=sys.stderr)
            return EXIT_DISAGREE
        finally:
            warnings.showwarning = shown


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):  # `... | head` closes the pipe: end quietly, as command-line tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
