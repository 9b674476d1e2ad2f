"""Formulas from the command line, built with the toolkit's ops — parsed with ``ast``, never ``eval``.

The grammar is a whitelist of Python expression syntax:

* numbers, and the names declared with ``--shape NAME=3x4``;
* ``+ - * / @`` between expressions, ``**`` with a constant exponent, unary ``-``;
* ``.T`` (transpose);
* calls of the toolkit's ops by name — ``fro(W @ X)``, ``sum(X, axis=0)``,
  ``reshape(X, (2, 6))`` — whose extra arguments are literal numbers or tuples;
  where an op means integers (shapes, axes, counts: :data:`INTEGER_PARAMS`) they
  must be integer literals, so ``reshape(X, (9.0,))`` is refused like
  ``sum(X, axis=1.5)``.

A numerical failure of the data (``inv(X - X)``: a singular matrix) is a
:class:`NumericalFailure`, not a bad formula. ``build(..., budget=)`` prices
every large value before an op computes it.

Anything else (attributes, subscripts, lambdas, comprehensions, strings…)
is refused with a :class:`FormulaError` naming the piece of the formula.

>>> import numpy as np, jacobians as jx
>>> W = jx.var(np.eye(3), name="W"); X = jx.var(np.ones((3, 5)), name="X")
>>> l = build("fro(W @ X)", {"W": W, "X": X})
>>> l.name, l.shape, l.parents[0].name
('fro(W @ X)', (), 'W @ X')
>>> parse_shape("X=3x5")
('X', (3, 5))
"""
from __future__ import annotations

import ast
import re
import inspect
from contextlib import nullcontext
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from . import memory, ops
from .graph import ancestors
from .node import Node

__all__ = ["FormulaError", "NumericalFailure", "FUNCTIONS", "INTEGER_PARAMS", "build", "parse_shape", "dimension",
           "MAX_FORMULA", "MAX_AXES", "MAX_DIMENSION"]

MAX_FORMULA = 10_000  # characters
MAX_AXES = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32  # numpy's NPY_MAXDIMS
MAX_DIMENSION = 2**63 - 1  # the largest length numpy's index type (intp) holds


class FormulaError(ValueError):
    """A formula or shape specification that cannot be built; the message says which part and why."""


class NumericalFailure(ArithmeticError):
    """The data makes the formula fail numerically (a singular matrix, a non-finite result): not a bad
    formula — the command line exits 1 for it, 2 for a :class:`FormulaError`."""


FUNCTIONS: Dict[str, Any] = {name: getattr(ops, name) for name in ops.__all__}

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.MatMult: lambda a, b: a @ b,
}
_ALLOWED = "numbers, the names given with --shape, + - * / @, ** with a constant exponent, .T and calls of the ops"

# Parameters of the ops that mean integers (axes, shapes, counts, offsets, indices): a literal given
# for one must be an int or a tuple of ints — never 1.5, 9.0 or True.
INTEGER_PARAMS = frozenset({
    "axis", "axes", "axis1", "axis2", "source", "destination", "shape", "n", "k", "offset", "shift", "repeats",
    "reps", "indices_or_sections", "kernel_size", "stride", "padding", "dilation", "pad_width", "indices", "index",
})


def dimension(text: str, what: str, example: str) -> int:
    """A length typed on the command line: ASCII digits only, at least 1, at most :data:`MAX_DIMENSION`.

    The one checker for ``--shape`` and the demos' ``--sizes``; ``what`` names the
    argument in the message, ``example`` shows a good value.

    >>> dimension("12", "--sizes D", "D=3")
    12
    >>> dimension("\uff13", "--sizes D", "D=3")
    Traceback (most recent call last):
    ...
    jacobians.formula.FormulaError: --sizes D: '３' must be a positive integer written with the digits 0-9, e.g. D=3
    """
    if not re.fullmatch(r"[0-9]+", text) or int(text) == 0:  # [0-9], not \d or isdigit(): no '３', '٣' or '²'
        raise FormulaError(f"{what}: {text!r} must be a positive integer written with the digits 0-9, e.g. {example}")
    if int(text) > MAX_DIMENSION:
        raise FormulaError(f"{what}: {text} is longer than any array can be (numpy's limit is {MAX_DIMENSION:,}, "
                           f"2**63 - 1); give a small size, e.g. {example}")
    return int(text)


def parse_shape(spec: str) -> Tuple[str, Tuple[int, ...]]:
    """``"X=3x5"`` -> ``("X", (3, 5))``; ``"v=4"`` is a vector, ``"s=scalar"`` a scalar.

    >>> parse_shape("s=scalar"), parse_shape("v=4")
    (('s', ()), ('v', (4,)))
    """
    name, eq, dims = spec.partition("=")
    name, dims = name.strip(), dims.strip().lower()
    if not eq or not name.isidentifier():
        raise FormulaError(f"--shape {spec!r}: expected NAME=DIMS, e.g. X=3x5 (or v=4 for a vector, s=scalar)")
    if name in FUNCTIONS:
        raise FormulaError(f"--shape {spec!r}: {name!r} is the name of an op; pick another variable name")
    if dims in ("scalar", "()"):
        return name, ()
    parts = dims.split("x")
    if len(parts) > MAX_AXES:
        raise FormulaError(f"--shape {spec[:40]!r}…: {len(parts)} axes, but numpy arrays have at most {MAX_AXES} "
                           f"axes; declare at most {MAX_AXES} dimensions, e.g. {name}=3x5")
    try:
        shape = tuple(dimension(d, f"--shape {spec!r}", f"{name}=3x5") for d in parts)
    except FormulaError as exc:
        raise FormulaError(f"{exc} (dimensions must be positive integers joined by x)") from None
    return name, shape


def _integers(node: ast.AST, text: str, param: str, call: ast.AST) -> Any:
    """The literal for an op's integer parameter ``param`` of ``call``: an int or a tuple of ints, as written."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = None
    flat = value if isinstance(value, (tuple, list)) else (value,)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        raise FormulaError(f"in {_src(text, call)!r}: {param} must be a whole number or a tuple of whole numbers, "
                           f"written as integer literals such as 2 or (3, 3), not {_src(text, node)}")
    return tuple(value) if isinstance(value, list) else value


def _positional(fn: Any) -> List[str]:
    """The names of ``fn``'s positional parameters, up to a ``*args``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - every op is a Python function
        return []
    names = []
    for p in params:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            break
        names.append(p.name)
    return names


def _literal(node: ast.AST, text: str) -> Any:
    """A literal number or tuple of numbers (for axis=, shapes, exponents)."""
    try:
        value = ast.literal_eval(node)
    except ValueError:
        raise FormulaError(f"{_src(text, node)!r} must be a literal number or tuple of numbers here") from None
    flat = value if isinstance(value, (tuple, list)) else (value,)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise FormulaError(f"{_src(text, node)!r} must be a literal number or tuple of numbers here")
    return tuple(value) if isinstance(value, list) else value


def _src(text: str, node: ast.AST) -> str:
    return ast.get_source_segment(text, node) or type(node).__name__


def _name(result: Any, text: str, node: ast.AST) -> Any:
    """Name an op's result after its source text, so derivations read 'W @ X', not 'matmul#7'."""
    if isinstance(result, Node) and result.kind == "op" and result._name is None:
        result.named(_src(text, node))
    return result


class _Builder:
    def __init__(self, text: str, variables: Mapping[str, Node], budget: Optional[Tuple[int, str]] = None):
        self.text = text
        self.variables = dict(variables)
        self.budget = budget

    def fail(self, node: ast.AST, why: str) -> FormulaError:
        return FormulaError(f"in {_src(self.text, node)!r}: {why}")

    def visit(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise self.fail(node, f"only numbers are allowed as constants; use {_ALLOWED}")
            try:
                return float(node.value)
            except OverflowError:
                raise self.fail(node, "the number is too large for a float64") from None
        if isinstance(node, ast.Name):
            if node.id in self.variables:
                return self.variables[node.id]
            if node.id in FUNCTIONS:
                raise self.fail(node, f"{node.id} is an op; call it, e.g. {node.id}(X)")
            declared = ", ".join(self.variables) or "none"
            raise FormulaError(f"unknown name {node.id!r} in the formula; declare it with --shape {node.id}=3x4 "
                               f"(declared: {declared})")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                base = self.visit(node.left)
                return self.op(node, lambda: base ** _literal(node.right, self.text))
            if type(node.op) not in _BINOPS:
                raise self.fail(node, f"the operator {type(node.op).__name__} is not allowed; use {_ALLOWED}")
            a, b = self.visit(node.left), self.visit(node.right)
            return self.op(node, lambda: _BINOPS[type(node.op)](a, b))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self.visit(node.operand)
            return self.op(node, lambda: -v if isinstance(node.op, ast.USub) else v)
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise self.fail(node, f"only the attribute .T (transpose) is allowed, not .{node.attr}")
            v = self.visit(node.value)
            return self.op(node, lambda: FUNCTIONS["transpose"](v))
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"{type(node).__name__} is not allowed in a formula; use {_ALLOWED}")

    def call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            fn = _src(self.text, node.func)
            raise FormulaError(f"unknown function {fn!r} in the formula; the ops are: {', '.join(sorted(FUNCTIONS))}")
        names = _positional(FUNCTIONS[node.func.id])
        args = []
        for i, a in enumerate(node.args):
            if isinstance(a, ast.Starred):
                raise self.fail(node, "*args are not allowed")
            param = names[i] if i < len(names) else None
            if param in INTEGER_PARAMS:
                args.append(_integers(a, self.text, param, node))
            else:
                args.append(_literal(a, self.text) if isinstance(a, (ast.Tuple, ast.List)) else self.visit(a))
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(node, "**kwargs are not allowed")
            kwargs[kw.arg] = (_integers(kw.value, self.text, kw.arg, node) if kw.arg in INTEGER_PARAMS
                              else _literal(kw.value, self.text))
        return self.op(node, lambda: FUNCTIONS[node.func.id](*args, **kwargs))

    def op(self, node: ast.AST, make) -> Any:
        try:
            # the library prices an op's large output before computing it: against the budget, here
            with memory.memory_limit(self.budget[0]) if self.budget else nullcontext():
                result = make()
        except FormulaError:
            raise
        except memory.JacobianTooLarge as exc:
            if not self.budget:
                raise
            raise self.fail(node, f"{exc.what} would be an array of shape {exc.shape} "
                                  f"({memory.human_bytes(exc.nbytes)}), above {self.budget[1]}") from None
        except np.linalg.LinAlgError as exc:  # the data, not the formula: a singular matrix
            raise NumericalFailure(f"in {_src(self.text, node)!r}: {' '.join(str(exc).split())}") from exc
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:  # shape errors name the op and shapes
            msg = str(exc).strip("'\"")
            if "maximum supported dimension" in msg:  # numpy's own words for more than MAX_AXES axes
                msg = (f"numpy arrays have at most {MAX_AXES} axes ({msg}); use fewer axes, e.g. reshape the "
                       "variable first")
            raise self.fail(node, msg) from None
        return _name(result, self.text, node)


def build(text: str, variables: Mapping[str, Node], budget: Optional[Tuple[int, str]] = None) -> Node:
    """Build the node for formula ``text`` from ``variables`` (name -> node), safely.

    ``budget=(nbytes, why)``: while the ops run, the memory limit is ``nbytes``, so
    an op whose output would be larger (above 2**20 entries, the outputs the library
    prices) is refused before it is computed, with a :class:`FormulaError` that ends
    "above {why}". A singular matrix in the forward pass raises :class:`NumericalFailure`.
    """
    if len(text) > MAX_FORMULA:
        raise FormulaError(f"formula of {len(text):,} characters is longer than {MAX_FORMULA:,}; build such a graph "
                           "in Python with the jx ops")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (RecursionError, MemoryError):
        raise FormulaError(f"formula {text[:40]!r}… is nested too deeply") from None
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise FormulaError(f"formula {text!r} is not a valid expression ({exc.msg}{where})") from None
    try:
        result = _Builder(text.strip(), variables, budget).visit(tree.body)
    except RecursionError:
        raise FormulaError(f"formula {text[:40]!r}… is nested too deeply") from None
    if not isinstance(result, Node) or not any(n.kind == "var" for n in ancestors(result)):
        raise FormulaError(f"formula {text!r} involves no variable; use the names declared with --shape")
    return result
