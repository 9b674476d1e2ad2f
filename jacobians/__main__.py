"""Command line.

    python -m jacobians demo [NAME] [--sizes D=3,N=4] [--seed 0] [--plot DIR]
    python -m jacobians demo --list
    python -m jacobians check "fro(W @ X)" --shape W=3x3 --shape X=3x5 --wrt W

Exit codes: 0 when every check agrees; 1 when routes disagree or a numerical
failure stops them (a singular matrix, a non-finite result); 2 for a bad command
line or a request too large for memory. Errors are one line on stderr that says
what and how to fix it; ``--traceback`` shows Python's full traceback instead.
numpy's own RuntimeWarnings are silenced; the library's warnings appear once.
"""
from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import numpy as np

EXIT_OK, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line; main() prints it on one line and returns 2."""


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
    try:
        result = run_demo(name, sizes, args.seed, args.plot)
    except DemoError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK if result.ok else EXIT_DISAGREE


# ------------------------------------------------------------------ check
def _check(args: argparse.Namespace) -> int:
    import jacobians as jx

    from .formula import FormulaError, build, parse_shape

    if args.order not in jx.ORDERS:
        raise UsageError(f"--order {args.order!r} is not one of {', '.join(jx.ORDERS)}")
    rng = np.random.default_rng(args.seed)
    variables = {}
    try:
        for spec in args.shape:
            name, shape = parse_shape(spec)
            if name in variables:
                raise FormulaError(f"--shape {spec!r}: {name} is declared twice")
            jx.memory.check_bytes(shape, np.float64, f"--shape {spec}: the data of {name}")
            value = rng.uniform(0.5, 2.0, shape) if args.positive else rng.standard_normal(shape)
            variables[name] = jx.var(value, name=name)
        if not variables:
            raise FormulaError('declare the variables with --shape, e.g. --shape W=3x3 --shape X=3x5')
        y = build(args.formula, variables)
    except FormulaError as exc:
        raise UsageError(str(exc)) from None
    for w in args.wrt:
        if w not in variables:
            raise UsageError(f"--wrt {w}: no variable {w!r}; declared: {', '.join(variables)}")
    wrt = [variables[w] for w in (args.wrt or variables)]

    print(f"{y.name}: shape {y.shape}, from " + ", ".join(f"{n} {v.shape}" for n, v in variables.items())
          + f" ({'uniform [0.5, 2]' if args.positive else 'standard normal'}, seed {args.seed})")
    if not np.all(np.isfinite(y.value)):
        print("warning: the formula's value is not finite on this data (log or sqrt of a negative? try --positive)")
    try:
        c = jx.compare(y, wrt, order=args.order)
        print(c)
        if not args.no_explain:
            for x in wrt:
                print()
                print(jx.explain(y, x, order=args.order))
    except jx.JacobianTooLarge as exc:
        raise UsageError(str(exc)) from None
    if not c.results:
        raise UsageError("no route could run (see the table above): use smaller --shape sizes")
    finite = all(np.all(np.isfinite(r)) for rs in c.results.values() for r in rs)
    if not finite:
        print("warning: some route gave non-finite derivatives, so the routes cannot be said to agree")
    return EXIT_OK if c.ok and finite else EXIT_DISAGREE


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


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
    from .memory import JacobianTooLarge

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("once")
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="numpy")
        shown = warnings.showwarning
        warnings.showwarning = _warning_line
        try:
            args = parser.parse_args(argv)
            if args.command == "demo":
                return _demo(args)
            if args.command == "check":
                return _check(args)
            raise UsageError("give a command: demo or check (see python -m jacobians --help)")
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        except (UsageError, JacobianTooLarge, RecursionError, MemoryError) as exc:
            if debug:
                raise
            print(f"python -m jacobians{command}: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        except Exception as exc:  # a numerical failure (singular matrix, ...) or a bug: one line, exit 1
            if debug:
                raise
            print(f"python -m jacobians{command}: error: {type(exc).__name__}: {_one_line(exc)} "
                  "(rerun with --traceback for details)", file=sys.stderr)
            return EXIT_DISAGREE
        finally:
            warnings.showwarning = shown


if __name__ == "__main__":
    if hasattr(signal, "SIGPIPE"):  # `... | head` closes the pipe: end quietly, as command-line tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
