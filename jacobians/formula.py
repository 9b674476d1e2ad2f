"""Formulas from the command line, built with the toolkit's ops — parsed with ``ast``, never ``eval``.

The grammar is a whitelist of Python expression syntax:

* numbers, and the names declared with ``--shape NAME=3x4``;
* ``+ - * / @`` between expressions, ``**`` with a constant exponent, unary ``-``;
* ``.T`` (transpose);
* calls of the toolkit's ops by name — ``fro(W @ X)``, ``sum(X, axis=0)``,
  ``reshape(X, (2, 6))`` — whose extra arguments are literal numbers or tuples.

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
from typing import Any, Dict, Mapping, Tuple

from . import ops
from .graph import ancestors
from .node import Node

__all__ = ["FormulaError", "FUNCTIONS", "build", "parse_shape", "MAX_FORMULA"]

MAX_FORMULA = 10_000  # characters


class FormulaError(ValueError):
    """A formula or shape specification that cannot be built; the message says which part and why."""


FUNCTIONS: Dict[str, Any] = {name: getattr(ops, name) for name in ops.__all__}

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.MatMult: lambda a, b: a @ b,
}
_ALLOWED = "numbers, the names given with --shape, + - * / @, ** with a constant exponent, .T and calls of the ops"


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
    if not re.fullmatch(r"[0-9]+(x[0-9]+)*", dims) or any(int(d) == 0 for d in dims.split("x")):
        raise FormulaError(f"--shape {spec!r}: dimensions must be positive integers joined by x, e.g. {name}=3x5")
    return name, tuple(int(d) for d in dims.split("x"))


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
    def __init__(self, text: str, variables: Mapping[str, Node]):
        self.text = text
        self.variables = dict(variables)

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
        args = [_literal(a, self.text) if isinstance(a, (ast.Tuple, ast.List)) else self.visit(a) for a in node.args]
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(node, "**kwargs are not allowed")
            kwargs[kw.arg] = _literal(kw.value, self.text)
        return self.op(node, lambda: FUNCTIONS[node.func.id](*args, **kwargs))

    def op(self, node: ast.AST, make) -> Any:
        try:
            result = make()
        except FormulaError:
            raise
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:  # shape errors name the op and shapes
            msg = str(exc).strip("'\"")
            raise self.fail(node, msg) from None
        return _name(result, self.text, node)


def build(text: str, variables: Mapping[str, Node]) -> Node:
    """Build the node for formula ``text`` from ``variables`` (name -> node), safely."""
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
        result = _Builder(text.strip(), variables).visit(tree.body)
    except RecursionError:
        raise FormulaError(f"formula {text[:40]!r}… is nested too deeply") from None
    if not isinstance(result, Node) or not any(n.kind == "var" for n in ancestors(result)):
        raise FormulaError(f"formula {text!r} involves no variable; use the names declared with --shape")
    return result
