"""Teaching demos, one module each: ``python -m jacobians demo [NAME]``.

Every demo module defines ``NAME``, ``SUMMARY``, ``SIZES`` (the size names and
their defaults, in order), ``footprint(sizes, plot) -> (data, dense)`` (the arrays
it will make, as (what, shape) pairs, from the sizes alone) and
``run(sizes, seed, plot_dir, out) -> DemoResult``. :func:`run_demo` prices the
footprint with the memory guard before the demo allocates anything, so sizes
too large for memory are refused in milliseconds (:class:`jacobians.JacobianTooLarge`).

>>> sorted(DEMOS)
['chain', 'conv', 'hessian', 'mlp']
>>> parse_sizes("D=2,N=5", {"D": 3, "N": 4})
{'D': 2, 'N': 5}
>>> parse_sizes("2x5", {"D": 3, "N": 4})
{'D': 2, 'N': 5}
"""
from __future__ import annotations

import contextlib
import importlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from .. import memory
from ..formula import FormulaError, dimension
from ..node import Node

__all__ = ["DEMOS", "DEFAULT", "DemoResult", "get_demo", "parse_sizes", "run_demo", "price"]

Arrays = Sequence[Tuple[str, Tuple[int, ...]]]  # (what, shape) of arrays a demo makes

# name -> module; the first is the default (the README's ``python -m jacobians demo``)
DEMOS: Dict[str, str] = {
    "chain": "jacobians.demos.chain",
    "mlp": "jacobians.demos.mlp",
    "conv": "jacobians.demos.conv",
    "hessian": "jacobians.demos.hessian",
}
DEFAULT = "chain"


class DemoError(ValueError):
    """A bad demo name or size specification (the CLI prints it on one line and exits 2)."""


@dataclass
class DemoResult:
    """What a demo computed: named arrays (for tests), discrepancies, whether all checks passed, plots."""

    values: Dict[str, np.ndarray] = field(default_factory=dict)
    discrepancies: Dict[str, float] = field(default_factory=dict)
    ok: bool = True
    plots: List[Path] = field(default_factory=list)

    def agree(self, key: str, got: np.ndarray, want: np.ndarray, tol: float = 1e-10) -> str:
        """Record max |got - want| under ``key``; the line to print, flagged when above tol · scale."""
        d = max_diff(got, want)
        self.discrepancies[key] = d
        ok = d <= tol * max(1.0, float(np.max(np.abs(want))))
        self.ok &= ok
        return f"max |difference| = {d:.1e}" + ("" if ok else "   <-- DISAGREE")


def get_demo(name: str) -> ModuleType:
    """The demo module called ``name``; the error lists the available demos."""
    if name not in DEMOS:
        raise DemoError(f"unknown demo {name!r}; available: {', '.join(DEMOS)} (see python -m jacobians demo --list)")
    return importlib.import_module(DEMOS[name])


def parse_sizes(text: str, defaults: Dict[str, int]) -> Dict[str, int]:
    """Sizes from ``"D=3,N=5"`` (any subset, by name) or ``"3x5"`` / ``"3,5"`` (all, in order)."""
    sizes = dict(defaults)
    items = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    expected = ", ".join(f"{k}={v}" for k, v in defaults.items())
    if items and all("=" not in t for t in items):
        items = [t for part in items for t in part.split("x")]
        if len(items) != len(defaults):
            raise DemoError(f"--sizes {text!r}: give {len(defaults)} sizes ({', '.join(defaults)}), "
                            f"e.g. --sizes {'x'.join(str(v) for v in defaults.values())}")
        items = [f"{k}={v}" for k, v in zip(defaults, items)]
    for item in items:
        key, _, value = item.partition("=")
        if key not in defaults:
            raise DemoError(f"--sizes: unknown size {key!r}; this demo's sizes are {expected}")
        try:
            sizes[key] = dimension(value, f"--sizes {key}", f"{key}={defaults[key]}")
        except FormulaError as exc:
            raise DemoError(str(exc)) from None
    return sizes


def run_demo(name: str = DEFAULT, sizes: Optional[Dict[str, int]] = None, seed: int = 0,
             plot_dir: Optional[Path] = None, out: Optional[TextIO] = None) -> DemoResult:
    """Run one demo, printing to ``out`` (default stdout); returns what it computed.

    >>> import io
    >>> res = run_demo("chain", sizes={"D": 2, "N": 3}, out=io.StringIO())
    >>> res.ok, res.values["dY_dW"].shape
    (True, (2, 3, 2, 2))
    """
    import sys

    mod = get_demo(name)
    full = dict(mod.SIZES)
    full.update(sizes or {})
    data, dense = mod.footprint(full, plot_dir is not None)
    with price(name, data, dense):  # before the demo allocates anything: sizes too large are refused here
        if plot_dir is not None:
            plot_dir = Path(plot_dir)
            plot_dir.mkdir(parents=True, exist_ok=True)
        return mod.run(full, seed, plot_dir, out or sys.stdout)


@contextlib.contextmanager
def price(name: str, data: Arrays, dense: Arrays) -> Iterator[int]:
    """Price a demo's arrays from their shapes (float64), before any is made; a context that holds the data.

    Each array must fit the memory limit (:func:`jacobians.memory.check_bytes`, which
    raises :class:`jacobians.JacobianTooLarge` naming it, its shape and bytes); so must
    the data and values together, and — beside them — the dense arrays (explicit
    Jacobians) together, since the demo keeps them. Inside the block the data's bytes
    are reserved (:func:`jacobians.memory.reserve`): the library's own calls are priced
    beside them.

    >>> with price("chain", [("X", (3, 4))], [("dY/dW", (3, 4, 3, 3))]) as held:
    ...     held
    96
    >>> with memory.memory_limit("1M"), price("chain", [("X", (10, 10))], [("dY/dW", (100, 100, 100))]):
    ...     pass
    Traceback (most recent call last):
    ...
    jacobians.memory.JacobianTooLarge: demo chain: dY/dW: the explicit array of shape (100, 100, 100) ...
    """
    f64 = np.float64
    for what, shape in list(data) + list(dense):
        memory.check_bytes(shape, f64, f"demo {name}: {what}")
    together = lambda arrays: sum(math.prod(shape) for _, shape in arrays)  # noqa: E731
    if len(data) > 1:
        memory.check_bytes((together(data),), f64, f"demo {name}: its data and values together "
                           f"({', '.join(what for what, _ in data)}), flattened")
    held = together(data) * np.dtype(f64).itemsize
    with memory.reserve(held, f"demo {name}: its data and values"):
        if len(dense) == 1:
            memory.check_bytes(dense[0][1], f64, f"demo {name}: {dense[0][0]}, beside its data")
        elif dense:
            memory.check_bytes((together(dense),), f64, f"demo {name}: the dense arrays it keeps together "
                               f"({', '.join(what for what, _ in dense)}), flattened")
        yield held


# ------------------------------------------------------------ shared helpers
def named(node: Node, name: str) -> Node:
    """Give an op's result a name for printing (derivations say W, not matmul#7)."""
    return node.named(name)


def matrix(A: np.ndarray, indent: int = 6) -> str:
    """A fixed-point rendering of an array, indented (the tests read the numbers back)."""
    text = np.array2string(np.asarray(A, dtype=np.float64), precision=4, floatmode="fixed", suppress_small=True,
                           max_line_width=110, sign=" ")
    return "\n".join(" " * indent + line for line in text.splitlines())


def write_pictures(pictures, plot_dir: Path, res: DemoResult, p: "Printer") -> None:
    """Draw each (file name, J, y node, x node, title) with jx.plot_jacobian into ``plot_dir``."""
    from ..plot import plot_jacobian

    for fname, J, yn, xn, title in pictures:
        path = plot_dir / fname
        plot_jacobian(J, yn.shape, xn.shape, out_name=yn.name, in_name=xn.name, path=path,
                      title=f"{title}\nshape {yn.shape} + {xn.shape}")
        res.plots.append(path)
    p()
    p("Pictures written: " + ", ".join(str(q) for q in res.plots))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


class Printer:
    """print() to one stream, with headings and numbered sections."""

    def __init__(self, out: TextIO):
        self.out = out

    def __call__(self, text: str = "") -> None:
        print(text, file=self.out)

    def title(self, text: str) -> None:
        self(text)
        self("=" * len(text))

    def section(self, text: str) -> None:
        self()
        self(text)
        self("-" * len(text))
