"""``check_grad``: a practitioner's hand-written gradient against exact and numeric references, per parameter.

``jx.check_grad(f, grad_f, *args)`` runs ``f`` on vars (so ``f`` may be plain
numpy code), computes the gradient on the fastest exact route (the ops' VJPs)
and by central differences, and compares the user's ``grad_f(*args)`` with
them leaf by leaf of the argument pytree: the largest absolute and relative
errors, the worst entries (index, user's value, reference), the tolerance used.
It warns when a kink (relu, abs, max, clip, a norm at 0, …) lies within the
finite-difference step of an input, where the numeric reference means little,
and it advises float64 when the inputs are float32. ``jx.assert_grad`` raises an
AssertionError carrying the same report, for pytest.

>>> import numpy as np, jacobians as jx
>>> def loss(W, X):
...     return np.sum((X @ W) ** 2) / X.shape[0]
>>> def my_grad(W, X):                      # forgot the 1/B
...     return 2 * X.T @ (X @ W)
>>> X = np.arange(6.0).reshape(3, 2); W = np.ones((2, 2))
>>> r = jx.check_grad(loss, my_grad, W, X)
>>> r.ok, r.params[0].path, round(r.params[0].rel_error, 3)
(False, 'W', 2.0)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import api
from .graph import ancestors
from .node import Node
from .numeric import jacobian_numeric
from .pytree import flatten
from .transforms import run_on_vars

__all__ = ["check_grad", "assert_grad", "GradReport", "ParamReport", "KinkWarning", "NUMERIC_STEP"]

NUMERIC_STEP = np.finfo(np.float64).eps ** (1.0 / 3.0)  # the numeric route's relative step


class KinkWarning(UserWarning):
    """An input sits within the finite-difference step of a kink: the numeric reference is unreliable there."""


@dataclass
class ParamReport:
    """One leaf of the differentiated arguments: the user's gradient against the references."""

    path: str
    shape: Tuple[int, ...]
    abs_error: float  # max |user − exact|
    rel_error: float  # max |user − exact| / max |exact|
    numeric_error: float  # max |user − numeric| / max |numeric|
    tolerance: Tuple[float, float]  # (rtol, atol)
    worst: List[Tuple[Tuple[int, ...], float, float]] = field(default_factory=list)  # (index, user, exact)
    problem: str = ""  # a structural problem (shape, missing leaf), when there is one

    @property
    def ok(self) -> bool:
        rtol, atol = self.tolerance
        return not self.problem and self.abs_error <= atol + rtol * self._scale

    _scale: float = 1.0

    def line(self) -> str:
        mark = "ok " if self.ok else "BAD"
        if self.problem:
            return f"  {mark} {self.path:<16} {self.problem}"
        return (f"  {mark} {self.path:<16} {str(self.shape):<12} max abs {self.abs_error:.2e}  rel {self.rel_error:.2e}"
                f"  (numeric {self.numeric_error:.1e})")


@dataclass
class GradReport:
    """What :func:`check_grad` found: one :class:`ParamReport` per leaf, and warnings."""

    params: List[ParamReport]
    warnings: List[str] = field(default_factory=list)
    rtol: float = 1e-6
    atol: float = 1e-10

    @property
    def ok(self) -> bool:
        """Every parameter's gradient matches the exact reference within the tolerance."""
        return all(p.ok for p in self.params)

    def __str__(self) -> str:
        bad = [p for p in self.params if not p.ok]
        head = (f"check_grad: {'all ' + str(len(self.params)) + ' parameters agree' if not bad else str(len(bad)) + ' of ' + str(len(self.params)) + ' parameters disagree'}"
                f" with the exact gradient (rtol {self.rtol:g}, atol {self.atol:g})")
        lines = [head] + [p.line() for p in self.params]
        for p in bad:
            if p.worst:
                lines.append(f"  worst entries of {p.path}: " + "; ".join(
                    f"{list(i)} yours {u:.6g}, exact {e:.6g}" for i, u, e in p.worst))
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<GradReport ok={self.ok}: {len(self.params)} parameters, {len(self.warnings)} warnings>"

    def _repr_markdown_(self) -> str:
        rows = ["| | parameter | shape | max abs error | rel error | vs numeric |", "|---|---|---|---|---|---|"]
        for p in self.params:
            rows.append(f"| {'✓' if p.ok else '✗'} | `{p.path}` | {p.shape} | "
                        + (f"{p.problem} | | |" if p.problem else
                           f"{p.abs_error:.2e} | {p.rel_error:.2e} | {p.numeric_error:.1e} |"))
        notes = [f"\n> {w}" for w in self.warnings]
        return f"**check_grad: {'ok' if self.ok else 'mismatch'}** (rtol {self.rtol:g}, atol {self.atol:g})\n\n" \
            + "\n".join(rows) + "".join(notes) + "\n"


# ------------------------------------------------------------------ kinks
def _near(a: np.ndarray, b: Any, h: np.ndarray) -> bool:
    return bool(np.any(np.abs(np.asarray(a, float) - np.asarray(b, float)) <= 2 * h))


def _kinks(out: Node) -> List[str]:
    """Ops in the graph whose input lies within the finite-difference step of their kink."""
    found = []
    for n in ancestors(out):
        if n.op is None:
            continue
        name = n.op.name
        xs = [p.value.astype(np.float64) for p in n.parents]
        h = NUMERIC_STEP * np.maximum(1.0, np.abs(xs[0])) if xs else 0.0
        hit = False
        if name in ("relu", "abs", "sign", "leaky_relu", "hinge"):
            hit = _near(xs[0], 0.0, h)
        elif name in ("maximum", "minimum") and len(xs) == 2:
            hit = _near(*np.broadcast_arrays(xs[0], xs[1]), h)
        elif name == "clip":
            hit = any(_near(xs[0], n.params[k], h) for k in ("a_min", "a_max") if n.params.get(k) is not None)
        elif name in ("max", "min"):  # a near-tie at the extreme of a reduced slice
            axes = n.params.get("axis", n.params.get("axes"))
            axes = tuple(range(xs[0].ndim)) if axes is None else (axes,) if np.ndim(axes) == 0 else tuple(axes)
            v = np.moveaxis(xs[0], axes, tuple(range(-len(axes), 0)))
            v = v.reshape(v.shape[:v.ndim - len(axes)] + (-1,))
            v = np.sort(v if name == "max" else -v, axis=-1)
            hit = v.shape[-1] > 1 and bool(np.any(v[..., -1] - v[..., -2] <= 2 * NUMERIC_STEP
                                                  * np.maximum(1.0, np.abs(v[..., -1]))))
        elif name == "sort":
            v = np.sort(xs[0], axis=n.params.get("axis", -1))
            hit = bool(np.any(np.abs(np.diff(v, axis=n.params.get("axis", -1))) <= 2 * NUMERIC_STEP))
        elif name in ("fro", "norm"):
            hit = float(np.sqrt(np.sum(xs[0] ** 2))) <= 2 * NUMERIC_STEP
        elif name in ("floor", "ceil", "round", "trunc", "mod"):
            hit = _near(xs[0], np.round(xs[0]), h)
        if hit:
            found.append(f"{name} ({n.name}) has an input within the finite-difference step of its kink; "
                         "the numeric reference is unreliable there (the exact one follows the documented "
                         "subgradient); move the input off the kink to compare with central differences")
    return found


# ------------------------------------------------------------------ the check
def _worst(user: np.ndarray, ref: np.ndarray, k: int = 3) -> List[Tuple[Tuple[int, ...], float, float]]:
    diff = np.abs(user - ref).ravel()
    idx = np.argsort(diff)[::-1][:k]
    return [(tuple(int(i) for i in np.unravel_index(j, ref.shape)), float(user.flat[j]), float(ref.flat[j]))
            for j in idx if diff[j] > 0]


def _compare(path: str, user: Any, exact: np.ndarray, numeric: np.ndarray, rtol: float, atol: float) -> ParamReport:
    tol = (rtol, atol)
    if user is None:
        return ParamReport(path, exact.shape, np.inf, np.inf, np.inf, tol, problem="missing from grad_f's result")
    u = np.asarray(user, dtype=np.float64)
    if u.shape != exact.shape:
        hint = " (transposed?)" if u.shape == exact.shape[::-1] else ""
        return ParamReport(path, exact.shape, np.inf, np.inf, np.inf, tol,
                           problem=f"shape {u.shape}, the parameter's is {exact.shape}{hint}")
    if not np.all(np.isfinite(u)):
        return ParamReport(path, exact.shape, np.inf, np.inf, np.inf, tol, problem="holds NaN or Inf",
                           worst=_worst(np.nan_to_num(u), exact))
    scale = float(np.max(np.abs(exact))) if exact.size else 0.0
    abs_err = float(np.max(np.abs(u - exact))) if u.size else 0.0
    nscale = float(np.max(np.abs(numeric))) if numeric.size else 0.0
    num_err = (float(np.max(np.abs(u - numeric))) if u.size else 0.0) / max(nscale, 1e-300)
    r = ParamReport(path, exact.shape, abs_err, abs_err / max(scale, 1e-300), num_err, tol, _worst(u, exact))
    r._scale = scale
    return r


def check_grad(f: Callable[..., Any], grad_f: Callable[..., Any], *args: Any,
               argnums: Union[int, Sequence[int]] = 0, rtol: Optional[float] = None,
               atol: Optional[float] = None, numeric: bool = True, **kwargs: Any) -> GradReport:
    """Check ``grad_f(*args)`` (a pytree like the ``argnums`` arguments) against the gradient of scalar ``f``.

    The exact reference is the ops' VJPs; central differences (float64) are
    reported beside it. ``rtol`` defaults to 1e-6 (1e-3 when an input is
    float32), ``atol`` to 1e-10 · (1 + max |exact|) per parameter.
    """
    out, _, inputs, single = run_on_vars(f, args, kwargs, argnums, False, "check_grad")
    if not isinstance(out, Node) or out.size != 1:
        raise TypeError(f"check_grad: f must return a scalar node (a loss), got {type(out).__name__} "
                        f"{getattr(out, 'shape', '')}; reduce it first (np.sum, np.mean)")
    single_precision = any(x.dtype == np.float32 for xs, _ in inputs for x in xs)
    rtol = rtol if rtol is not None else (1e-3 if single_precision else 1e-6)
    user = grad_f(*args, **kwargs)
    user_trees = (user,) if single else tuple(user) if isinstance(user, (tuple, list)) else (user,)
    reports: List[ParamReport] = []
    for (xs, d), tree in zip(inputs, user_trees + (None,) * (len(inputs) - len(user_trees))):
        leaves, du = flatten(tree) if tree is not None else ([], None)
        if du is not None and du != d:
            names = [x.name for x in xs]
            reports += [ParamReport(n, x.shape, np.inf, np.inf, np.inf, (rtol, atol or 0.0),
                                    problem=f"grad_f's result has another structure ({du.kind}) than the argument")
                        for n, x in zip(names, xs)]
            continue
        for k, x in enumerate(xs):
            exact = np.asarray(api.grad(out, x, method="vjp"), dtype=np.float64)
            num = jacobian_numeric(out, x).reshape(x.shape) if numeric else exact
            a = atol if atol is not None else 1e-10 * (1.0 + float(np.max(np.abs(exact), initial=0.0)))
            reports.append(_compare(x.name, leaves[k] if k < len(leaves) else None, exact, num, rtol, a))
    notes = _kinks(out)
    if single_precision:
        notes.append("inputs are float32: float32 round-off limits agreement to about 1e-3; check in float64 "
                     "(np.float64 inputs) to see errors below that")
    for w in notes:
        warnings.warn(w, KinkWarning if "kink" in w else UserWarning, stacklevel=2)
    return GradReport(reports, notes, rtol, atol if atol is not None else 1e-10)


def assert_grad(f: Callable[..., Any], grad_f: Callable[..., Any], *args: Any, **kwargs: Any) -> GradReport:
    """:func:`check_grad`, raising an AssertionError with its report when a parameter disagrees (for pytest).

    >>> import numpy as np, jacobians as jx
    >>> jx.assert_grad(lambda x: np.sum(np.sin(x)), lambda x: np.cos(x), np.linspace(0, 1, 4)).ok
    True
    """
    report = check_grad(f, grad_f, *args, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))
    return report
