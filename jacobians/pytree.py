"""Pytrees, as JAX has them: nested dicts, lists and tuples whose leaves are arrays (or numbers).

``flatten`` lists the leaves (dict keys in sorted order, as JAX does) with a
path for each, for messages (``['W1']``, ``[0][1]``); ``unflatten`` rebuilds the
same structure around new leaves. None is an empty subtree.

>>> leaves, tree = flatten({"b": 1.0, "W": [2.0, (3.0, None)]})
>>> leaves, [paths for paths in tree.paths]
([2.0, 3.0, 1.0], ["['W'][0]", "['W'][1][0]", "['b']"])
>>> unflatten(tree, [20.0, 30.0, 10.0])
{'W': [20.0, (30.0, None)], 'b': 10.0}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, List, Tuple

__all__ = ["TreeDef", "flatten", "unflatten", "tree_map"]


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree: ``kind`` is "leaf", "none", "dict", "list" or "tuple"."""

    kind: str
    keys: Tuple[Any, ...] = ()
    children: Tuple["TreeDef", ...] = ()
    cls: Any = None  # a namedtuple's class

    @property
    def paths(self) -> List[str]:
        """One path string per leaf, in leaf order."""
        if self.kind == "leaf":
            return [""]
        out = []
        for key, child in zip(self.keys, self.children):
            step = f"[{key!r}]" if self.kind == "dict" else f".{key}" if self.kind == "namedtuple" else f"[{key}]"
            out += [step + p for p in child.paths]
        return out

    @property
    def num_leaves(self) -> int:
        return 1 if self.kind == "leaf" else sum(c.num_leaves for c in self.children)


def flatten(tree: Any) -> Tuple[List[Any], TreeDef]:
    """The leaves of ``tree`` and its structure."""
    if tree is None:
        return [], TreeDef("none")
    cls = None
    if isinstance(tree, dict):
        keys = tuple(sorted(tree))
        kind = "dict"
        items = [tree[k] for k in keys]
    elif isinstance(tree, tuple) and hasattr(tree, "_fields"):  # a namedtuple: a container, as in JAX
        keys, kind, items, cls = tuple(tree._fields), "namedtuple", list(tree), type(tree)
    elif isinstance(tree, (list, tuple)):
        keys = tuple(range(len(tree)))
        kind = "list" if isinstance(tree, list) else "tuple"
        items = list(tree)
    else:
        return [tree], TreeDef("leaf")
    leaves: List[Any] = []
    children = []
    for item in items:
        sub, d = flatten(item)
        leaves += sub
        children.append(d)
    return leaves, TreeDef(kind, keys, tuple(children), cls)


def unflatten(tree: TreeDef, leaves: List[Any]) -> Any:
    """``tree``'s structure around ``leaves`` (as many as it has)."""
    return _build(tree, iter(leaves))


def _build(d: TreeDef, it: Iterator[Any]) -> Any:
    # a module-level recursion, not a closure that names itself: such a closure is a reference cycle, which
    # would keep ``leaves`` (results of any size) alive until the garbage collector's next pass
    if d.kind == "leaf":
        return next(it)
    if d.kind == "none":
        return None
    items = [_build(c, it) for c in d.children]
    if d.kind == "dict":
        return dict(zip(d.keys, items))
    if d.kind == "namedtuple":
        return d.cls(*items)
    return items if d.kind == "list" else tuple(items)


def tree_map(fn: Any, tree: Any) -> Any:
    """``tree`` with ``fn`` applied to every leaf."""
    leaves, d = flatten(tree)
    return unflatten(d, [fn(x) for x in leaves])
