"""Display names: how a node or a factor of a form is written in a derivation.

A factor's name is a template over the op's inputs and output (``"tanh'({x0})"``);
filled with node names it reads ``tanh'(Z)``. An unnamed transpose of a matrix
reads as its parent transposed (``Xᵀ``), so ``G X`` derived through ``X.T``
still prints in matrix notation.
"""
from __future__ import annotations

from typing import Dict, Tuple

from .node import Node

__all__ = ["Sym", "Names", "node_sym", "factor_sym", "sym_text", "flip"]

Sym = Tuple[str, bool]  # (display name, transposed)
Names = Dict[int, str]  # node id -> display name


def node_sym(n: Node, names: Names) -> Sym:
    """The node's display name; an unnamed transpose of a matrix reads as its parent, transposed."""
    if n.id in names:
        return names[n.id], False
    if n._name is None and n.op is not None and n.op.name == "transpose" and n.ndim == 2:
        base, t = node_sym(n.parents[0], names)
        return base, not t
    return n.name, False


def sym_text(sym: Sym) -> str:
    """``X``, ``Xᵀ``, or ``(a b)ᵀ`` for a name that is not one word."""
    base, t = sym
    if not t:
        return base
    if base.endswith("ᵀ"):  # (Xᵀ)ᵀ = X
        return base[:-1]
    simple = base.replace("_", "").replace("#", "").isalnum() or base.endswith("⁻¹")
    return (base if simple else f"({base})") + "ᵀ"


def flip(sym: Sym) -> Sym:
    return sym[0], not sym[1]


def factor_sym(template: str, child: Node, names: Names) -> Sym:
    """A factor's name: the node itself for ``{x0}``/``{y}``, else the template filled with node names."""
    nodes = {f"x{k}": p for k, p in enumerate(child.parents)}
    nodes["y"] = child
    if template.startswith("{") and template.endswith("}") and template[1:-1] in nodes:
        return node_sym(nodes[template[1:-1]], names)
    try:
        return template.format(**{k: sym_text(node_sym(v, names)) for k, v in nodes.items()}), False
    except (KeyError, IndexError, ValueError):
        return template, False
