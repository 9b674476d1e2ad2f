"""``compare``: the routes side by side, with their discrepancies and costs.

All four routes run by default: explicit, vjp, numeric and factored. A route
whose result holds NaN or Inf never counts as agreeing with anything.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import memory
from .api import check_call, grad, jacobian
from .chain_rule import plan
from .node import Node

__all__ = ["compare", "Comparison", "tolerance", "discrepancy", "ROUTES", "DEFAULT_ROUTES"]

ROUTES = ("explicit", "vjp", "numeric", "factored")
DEFAULT_ROUTES = ROUTES
# The numeric route re-runs the graph twice per entry of x; by default compare
# skips it above this many entries (naming it in ``routes`` runs it anyway).
NUMERIC_MAX_ENTRIES = 20_000


def tolerance(dtype: np.dtype, pair: Tuple[str, str]) -> float:
    """Relative tolerance for a pair of routes at a dtype.

    Exact routes agree to round-off (1e-10 in float64, 1e-4 in float32); the
    numeric route carries O(h²) truncation error, so pairs with it get 1e-6
    (float64) or 1e-3 (float32, as the exact routes then carry float32 round-off).
    """
    single = np.dtype(dtype) == np.float32
    if "numeric" in pair:
        return 1e-3 if single else 1e-6
    return 1e-4 if single else 1e-10


def discrepancy(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    """(max |a - b|, max |a - b| / max(max |a|, max |b|)) — a normwise relative error.

    Non-finite entries in either array give (inf, inf): a NaN gradient agrees with nothing.
    """
    diff = scale = 0.0
    for pa, pb in zip(_blocks(a), _blocks(b)):
        if not (finite(pa) and finite(pb)):
            return float("inf"), float("inf")
        pa, pb = pa.astype(np.float64), pb.astype(np.float64)
        diff = max(diff, float(np.max(np.abs(pa - pb))))
        scale = max(scale, float(np.max(np.abs(pa))), float(np.max(np.abs(pb))))
    return diff, (diff / scale if scale > 0 else diff)


_BLOCK = 1 << 13  # entries looked at at once: no temporary the size of a Jacobian
_SCRATCH = 8 * _BLOCK * 8  # bytes the comparison of two results holds at once (copies, differences, masks)


def _blocks(a: np.ndarray) -> Iterator[np.ndarray]:
    flat = a.reshape(-1)
    for k in range(0, flat.size, _BLOCK):
        yield flat[k:k + _BLOCK]


def finite(a: np.ndarray) -> bool:
    """No NaN or ±Inf in ``a``, looked at block by block."""
    return all(bool(np.isfinite(b).all()) for b in _blocks(np.asarray(a)))


@dataclass
class Comparison:
    """The result of :func:`compare`. ``results[route][i]`` is the derivative w.r.t. ``wrt[i]``."""

    y: Node
    wrt: List[Node]
    results: Dict[str, List[np.ndarray]] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)
    discrepancies: Dict[Tuple[str, str], Tuple[float, float]] = field(default_factory=dict)
    tolerances: Dict[Tuple[str, str], float] = field(default_factory=dict)
    jacobian_bytes: int = 0
    flops: int = 0
    order: int = 1  # 2: the Hessian routes

    @property
    def ok(self) -> Optional[bool]:
        """True when every pair of routes that ran agrees within its tolerance; None when fewer than two ran."""
        if not self.discrepancies:
            return None
        return all(rel <= self.tolerances[pair] for pair, (_, rel) in self.discrepancies.items())

    @property
    def nonfinite(self) -> List[str]:
        """The routes whose result holds NaN or ±Inf (they agree with nothing)."""
        return [r for r, res in self.results.items() if not all(finite(a) for a in res)]

    def verdict(self) -> str:
        """One line: agree, disagree (naming NaN routes), or nothing to compare, and which checks did not run."""
        if self.ok is None:
            text = (f"nothing to compare: only {', '.join(self.results)} ran" if self.results else
                    "nothing to compare: no route ran")
        else:
            text = f"all routes agree: {self.ok}"
        if self.nonfinite:
            text += f" — NaN or Inf in the {', '.join(self.nonfinite)} route{'s' * (len(self.nonfinite) > 1)}"
        checks = ("numeric", "vjp") if self.order == 1 else ("numeric",)
        independent = [r for r in checks if r in self.skipped or r not in self.results]
        if independent and self.results:
            text += f"; the independent check{'s' * (len(independent) > 1)} {' and '.join(independent)} did not run"
        return text

    def __repr__(self) -> str:
        return (f"<Comparison of d{self.y.name}/d{', '.join(x.name for x in self.wrt)}: {self.verdict()}; "
                f"routes {', '.join(self.results)}>")

    def _repr_markdown_(self) -> str:
        rows = ["| route | time |", "|---|---|"]
        rows += [f"| {r} | {self.seconds[r] * 1e3:.3f} ms |" if r in self.seconds else
                 f"| {r} | skipped: {self.skipped.get(r, 'not requested')} |" for r in ROUTES]
        rows += ["", "| pair | max abs | max rel | tol | ok |", "|---|---|---|---|---|"]
        rows += [f"| {a} vs {b} | {ab:.2e} | {rel:.2e} | {self.tolerances[(a, b)]:.0e} | "
                 f"{'yes' if rel <= self.tolerances[(a, b)] else '**no**'} |"
                 for (a, b), (ab, rel) in self.discrepancies.items()]
        return f"**{self.verdict()}**\n\n" + "\n".join(rows) + "\n"

    def __str__(self) -> str:
        kind = "Hessian" if self.order == 2 else "gradient" if self.y.size == 1 else "Jacobian"
        names = ", ".join(x.name for x in self.wrt)
        ran = len(self.seconds)
        lines = [f"{kind} of {self.y.name} w.r.t. {names} ({self.y.dtype}): {ran} route{'s' * (ran != 1)}",
                 f"  {'route':<10}{'time':>12}",]
        for r in (ROUTES if self.order == 1 else tuple(self.results) + tuple(self.skipped)):
            if r in self.seconds:
                lines.append(f"  {r:<10}{self.seconds[r] * 1e3:>10.3f} ms")
            else:
                why = self.skipped.get(r, f"not requested: pass routes={ROUTES} for all four")
                lines.append(f"  {r:<10}{'skipped':>12}  ({why})")
        lines.append(f"  {'pair':<20}{'max abs':>12}{'max rel':>12}{'tol':>10}  ok")
        for pair, (ab, rel) in self.discrepancies.items():
            tol = self.tolerances[pair]
            lines.append(f"  {pair[0] + ' vs ' + pair[1]:<20}{ab:>12.2e}{rel:>12.2e}{tol:>10.0e}  "
                         f"{'yes' if rel <= tol else 'NO'}")
        if "explicit" in self.results and self.order == 1:
            lines.append(f"  largest explicit local Jacobian: {self.jacobian_bytes:,} bytes; planned FLOPs: {self.flops:,}")
        lines.append(f"  {self.verdict()}")
        return "\n".join(lines)


def compare(y: Node, wrt: Union[Node, Sequence[Node]], order: Union[str, int] = "optimal",
            routes: Optional[Sequence[str]] = None, hold: Sequence[Node] = ()) -> Comparison:
    """Run the routes for dy/dwrt (the gradient when y is a scalar) and compare them.

    ``order=2`` compares the Hessian routes instead (factored, explicit, hvp,
    numeric; :func:`jacobians.hessian`); a string is the contraction order.

    ``routes`` picks among ``ROUTES`` (explicit, vjp, numeric, factored); the
    default runs all four, except numeric when x has more than
    ``NUMERIC_MAX_ENTRIES`` entries (2 forward passes per entry). A route whose
    dense arrays would exceed the memory limit is skipped. The table says why.

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.random.default_rng(1).standard_normal((3, 5)), name="X")
    >>> l = jx.fro((X @ X.T) @ X)
    >>> c = jx.compare(l, X)
    >>> c.ok, sorted(c.results)
    (True, ['explicit', 'factored', 'numeric', 'vjp'])
    >>> c.discrepancies[("explicit", "factored")][1] < 1e-12
    True
    >>> jx.compare(l, X, routes=("vjp", "numeric")).ok     # any subset
    True
    """
    if order == 2:
        return _compare_hessians(y, wrt, routes, hold)
    xs = check_call("compare", y, wrt, "explicit", order)
    chosen = routes is not None
    routes = tuple(routes) if chosen else DEFAULT_ROUTES
    bad = [r for r in routes if r not in ROUTES]
    if bad:
        raise ValueError(f"compare: routes {bad} are not among {', '.join(ROUTES)}")
    out = Comparison(y, xs)
    if "explicit" in routes:  # the dense route's plan prices it; the other routes plan nothing here
        plans = [plan(y, x, order, hold) for x in xs]
        out.jacobian_bytes = max(p.largest_operand_bytes for p in plans)
        out.flops = sum(p.flops for p in plans)
    numeric_skip = None if chosen else _too_many_passes(xs, "forward passes")
    for route in routes:
        if route == "numeric" and numeric_skip:
            out.skipped[route] = numeric_skip
            continue
        t0 = time.perf_counter()
        try:
            with _keeping(out):
                if y.size == 1:
                    res = grad(y, xs, method=route, order=order, hold=hold)
                else:
                    res = jacobian(y, xs, method=route, order=order, hold=hold)
        except memory.JacobianTooLarge as exc:
            out.skipped[route] = str(exc).split(":")[0] + ": above the memory limit"
            continue
        except Exception as exc:  # a route that fails is reported, not fatal
            out.skipped[route] = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        out.seconds[route] = time.perf_counter() - t0
        out.results[route] = list(res)
    return _paired(out, ROUTES, y.dtype)


def _too_many_passes(xs: Sequence[Node], passes: str) -> Optional[str]:
    """Why the numeric route is skipped by default (2 ``passes`` per entry of wrt), or None when it is not."""
    entries = sum(x.size for x in xs)
    if entries <= NUMERIC_MAX_ENTRIES:
        return None
    return (f"{2 * entries:,} {passes} for {entries:,} entries of wrt, above {2 * NUMERIC_MAX_ENTRIES:,}; "
            "pass routes=[..., 'numeric'] to run it anyway")


def _paired(out: Comparison, order: Sequence[str], dtype: Any) -> Comparison:
    """Every pair of routes that ran (in ``order``): its worst discrepancy over the wrt, and its tolerance."""
    for a, b in combinations([r for r in order if r in out.results], 2):
        worst = (0.0, 0.0)
        for ga, gb in zip(out.results[a], out.results[b]):
            d = discrepancy(ga, gb)
            worst = (max(worst[0], d[0]), max(worst[1], d[1]))
        out.discrepancies[(a, b)] = worst
        out.tolerances[(a, b)] = tolerance(dtype, (a, b))
    return out


def _keeping(out: Comparison):  # type: ignore[no-untyped-def]
    """The next route runs beside the results kept so far (memory.reserve): the limit bounds the whole compare."""
    kept = sum(a.nbytes for res in out.results.values() for a in res) + _SCRATCH  # and room to compare them
    return memory.reserve(kept, f"compare: the results of {', '.join(out.results) or 'no route'} kept to compare")


def _compare_hessians(y: Node, wrt: Union[Node, Sequence[Node]], routes: Optional[Sequence[str]],
                      hold: Sequence[Node]) -> Comparison:
    """The Hessian routes side by side: one block per x (d²y/dx²)."""
    from .second_order import HESSIAN_METHODS, hessian

    xs = check_call("compare", y, wrt, "explicit", "optimal")
    chosen = routes is not None
    routes = tuple(routes) if chosen else HESSIAN_METHODS
    bad = [r for r in routes if r not in HESSIAN_METHODS]
    if bad:
        raise ValueError(f"compare(order=2): routes {bad} are not among {', '.join(HESSIAN_METHODS)}")
    out = Comparison(y, xs, order=2)
    numeric_skip = None if chosen else _too_many_passes(xs, "gradients")
    for route in routes:
        if route == "numeric" and numeric_skip:
            out.skipped[route] = numeric_skip
            continue
        t0 = time.perf_counter()
        try:
            with _keeping(out):
                out.results[route] = [hessian(y, x, method=route, hold=hold) for x in xs]
        except Exception as exc:  # a route that fails (too large, no second order, singular) is reported
            out.skipped[route] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        out.seconds[route] = time.perf_counter() - t0
    return _paired(out, HESSIAN_METHODS, y.dtype)
