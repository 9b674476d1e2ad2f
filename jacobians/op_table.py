"""The table of every registered op, generated from the registry: docs/ops.md holds its output.

Each row: the op's name (``jx.<name>``), its index formula rendered from its
factored form on small example inputs, its kink or tie policy, and the module
that declares it. Every op runs on every route (explicit, factored, vjp,
numeric); the test suite checks each one against central differences.

``python -m jacobians.op_table`` prints the table; a test fails when
docs/ops.md is not up to date with the registry.

>>> print(markdown().splitlines()[0])
| op | index formula (from its form, on example inputs) | kink / tie policy | declared in |
"""
from __future__ import annotations

from .registry import declared_in, get_op, registered_ops

__all__ = ["markdown", "rows"]


def rows() -> list:
    """(name, formula, policy, module) for every registered op, sorted by name."""
    out = []
    for name in registered_ops():
        op = get_op(name)
        out.append((name, op.formula, op.policy or "smooth (no kink)", declared_in(name)))
    return out


def markdown() -> str:
    """The table as Markdown."""
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| op | index formula (from its form, on example inputs) | kink / tie policy | declared in |",
             "|---|---|---|---|"]
    lines += [f"| `{n}` | `{esc(f)}` | {esc(p)} | `{m}` |" for n, f, p, m in rows()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
