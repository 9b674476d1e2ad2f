"""Property-based tests: random graphs of 2–8 ops over random shapes, every route in jx.METHODS.

A graph is drawn op by op. Each op takes the newest node (and sometimes an
earlier node, giving several paths) and is picked only among ops whose domain
the current values satisfy with a margin (log of values above 0.25, inv of a
diagonally dominant matrix, exp of values below 3, no relu/abs near their
kinks), so inputs stay well-conditioned under the small perturbations that
finite differences make. Shapes have 1 to 3 axes of length 1 to 4 (1-sized
and non-square dimensions included) or are scalars.

Properties checked on every graph:

* every route agrees with every other (exact routes to round-off, the numeric
  route to central-difference accuracy) and each Jacobian has shape
  ``out.shape + in.shape``;
* the Jacobian applied to a random direction equals the directional central
  difference, computed by rebuilding the graph from perturbed inputs — a check
  independent of every route;
* running a route leaves the user's arrays and every node value unchanged, and
  running it again gives bit-identical results;
* a float32 graph gives float32 Jacobians on the exact routes, agreeing with the
  same graph in float64.

The runs are reproducible: derandomize=True fixes the examples for a given
hypothesis version. JACOBIANS_PROPERTY_SCALE (default 1) multiplies the number
of examples, e.g. for a longer nightly run.
"""
from __future__ import annotations

import functools
import itertools
import math
import os
import warnings
from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jacobians as jx
from jacobians.node import AmbiguousBroadcastWarning, NonFiniteWarning

SCALE = float(os.environ.get("JACOBIANS_PROPERTY_SCALE", "1"))


def _settings(examples: int) -> settings:
    return settings(max_examples=max(1, int(examples * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------ the recipe
@dataclass
class Step:
    """One op of a graph: ``build(nodes)`` makes it from the nodes so far (by index)."""

    text: str
    build: Callable[[list], jx.Node]
    ops: int = 1  # op nodes this step creates
    constants: Tuple[np.ndarray, ...] = ()


class Recipe:
    """Inputs and steps; :meth:`build` replays them on any input values. (A plain class, so
    that hypothesis reports a failing graph with the readable ``repr`` below.)"""

    def __init__(self, inputs: List[np.ndarray]) -> None:
        self.inputs = inputs
        self.steps: List[Step] = []

    def build(self, inputs=None, dtype=None):
        values = self.inputs if inputs is None else inputs
        leaves = [jx.var(v if dtype is None else v.astype(dtype), name=f"x{i}") for i, v in enumerate(values)]
        nodes = list(leaves)
        with warnings.catch_warnings():
            warnings.simplefilter("error", NonFiniteWarning)  # well-conditioned inputs never make one
            warnings.simplefilter("ignore", AmbiguousBroadcastWarning)  # broadcasts here are deliberate
            for s in self.steps:
                nodes.append(s.build(nodes))
        return nodes[-1], leaves, nodes

    def __repr__(self) -> str:
        head = ", ".join(f"x{i}{v.shape}" for i, v in enumerate(self.inputs))
        body = "; ".join(f"n{len(self.inputs) + k} = {s.text}" for k, s in enumerate(self.steps))
        return f"Recipe({head}: {body})"


# ------------------------------------------------------------------ the op menu
def _pick(rng, seq):
    seq = list(seq)
    return seq[int(rng.integers(len(seq)))]


def _coin(rng):
    return bool(rng.integers(2))


def _unary(name, fn, ok):
    return name, ok, lambda rng, i, nodes: Step(f"{name}(n{i})", lambda ns: fn(ns[i]))


def _finite_margin(lo=None, hi=None, away=None):
    def ok(x, nodes):
        v = x.value
        return ((lo is None or v.min() > lo) and (hi is None or np.abs(v).max() < hi)
                and (away is None or np.abs(v).min() > away))
    return ok


ALWAYS = _finite_margin()
SQUARE = lambda x, nodes: x.ndim == 2 and x.shape[0] == x.shape[1]  # noqa: E731


def _well_conditioned(x, nodes):
    return SQUARE(x, nodes) and np.linalg.cond(x.value) < 20 and abs(np.linalg.det(x.value)) > 1e-2


def _linalg(name, fn):
    """A square-matrix op; a matrix that is not well-conditioned is first shifted to x + k I
    with k above every Gershgorin radius (diagonally dominant), a second op."""
    def make(rng, i, nodes):
        if _well_conditioned(nodes[i], nodes):
            return Step(f"{name}(n{i})", lambda ns: fn(ns[i]))
        c = (1.5 + float(np.abs(nodes[i].value).sum(axis=1).max())) * np.eye(nodes[i].shape[0])
        return Step(f"{name}(n{i} + {c[0, 0]:.3g} I)", lambda ns: fn(ns[i] + c), ops=2, constants=(c,))
    return make


def _const_like(rng, shape, scale=1.0):
    return scale * rng.standard_normal(shape)


def _step_binary_const(rng, i, nodes):
    x = nodes[i]
    op = _pick(rng, ["add", "subtract", "multiply"])
    shape = _pick(rng, [x.shape, (), tuple(1 if k % 2 else d for k, d in enumerate(x.shape)), x.shape[1:]])
    c = _const_like(rng, shape)
    fn = getattr(jx, op)
    if _coin(rng):
        return Step(f"{op}(n{i}, C{c.shape})", lambda ns: fn(ns[i], c), constants=(c,))
    return Step(f"{op}(C{c.shape}, n{i})", lambda ns: fn(c, ns[i]), constants=(c,))


def _step_divide_const(rng, i, nodes):
    shape = _pick(rng, [nodes[i].shape, ()])
    c = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape)
    return Step(f"divide(n{i}, C{c.shape})", lambda ns: ns[i] / c, constants=(c,))


def _step_reciprocal(rng, i, nodes):
    return Step(f"divide(1.5, n{i})", lambda ns: 1.5 / ns[i])


def _partners(i, nodes, fits):
    return [j for j in range(i) if fits(nodes[j])]


def _step_binary_node(rng, i, nodes):
    x = nodes[i]

    def fits(y):
        try:
            return tuple(np.broadcast_shapes(x.shape, y.shape)) in (x.shape, y.shape)
        except ValueError:
            return False

    j = _pick(rng, _partners(i, nodes, fits))
    ops = ["add", "subtract", "multiply"] + (["divide"] if np.abs(nodes[j].value).min() > 0.3 else [])
    op = _pick(rng, ops)
    fn = getattr(jx, op)
    return Step(f"{op}(n{i}, n{j})", lambda ns: fn(ns[i], ns[j]))


def _can_binary_node(x, nodes):
    i = len(nodes) - 1
    for y in nodes[:i]:
        try:
            if tuple(np.broadcast_shapes(x.shape, y.shape)) in (x.shape, y.shape):
                return True
        except ValueError:
            pass
    return False


def _step_power(rng, i, nodes):
    x = nodes[i]
    choices = [2, 3] if np.abs(x.value).max() < 4 else []
    if x.value.min() > 0.25:
        choices += [-0.5, 1.5]
    p = _pick(rng, choices)
    return Step(f"n{i} ** {p}", lambda ns: ns[i] ** p)


def _can_power(x, nodes):
    return np.abs(x.value).max() < 4 or x.value.min() > 0.25


def _step_matmul_const(rng, i, nodes):
    x = nodes[i]
    if _coin(rng):  # x @ C
        k = x.shape[-1]
        cshape = _pick(rng, [(k, int(rng.integers(1, 5))), (k,)])
        c = _const_like(rng, cshape, 1 / math.sqrt(k))
        return Step(f"n{i} @ C{c.shape}", lambda ns: ns[i] @ c, constants=(c,))
    k = x.shape[0]  # C @ x
    cshape = _pick(rng, [(int(rng.integers(1, 5)), k), (k,)])
    c = _const_like(rng, cshape, 1 / math.sqrt(k))
    return Step(f"C{c.shape} @ n{i}", lambda ns: c @ ns[i], constants=(c,))


def _step_gram(rng, i, nodes):
    if _coin(rng):
        return Step(f"n{i} @ n{i}.T", lambda ns: ns[i] @ ns[i].T, ops=2)
    return Step(f"n{i}.T @ n{i}", lambda ns: ns[i].T @ ns[i], ops=2)


def _step_matmul_node(rng, i, nodes):
    x = nodes[i]
    fits = lambda y: y.ndim in (1, 2) and y.shape[0] == x.shape[-1]  # noqa: E731
    j = _pick(rng, _partners(i, nodes, fits))
    return Step(f"n{i} @ n{j}", lambda ns: ns[i] @ ns[j])


def _can_matmul_node(x, nodes):
    return x.ndim in (1, 2) and any(y.ndim in (1, 2) and y.shape[0] == x.shape[-1] for y in nodes[:-1])


def _step_shift(rng, i, nodes):
    x = nodes[i].value  # x + k I with k above every Gershgorin radius: diagonally dominant
    k = 1.5 + float(np.abs(x).sum(axis=1).max())
    c = k * np.eye(x.shape[0])
    return Step(f"n{i} + {k:.3g} I", lambda ns: ns[i] + c, constants=(c,))


def _step_solve(rng, i, nodes):
    x = nodes[i]
    if _well_conditioned(x, nodes) and _coin(rng):  # solve(x, b)
        b = _const_like(rng, _pick(rng, [(x.shape[0],), (x.shape[0], int(rng.integers(1, 4)))]))
        return Step(f"solve(n{i}, C{b.shape})", lambda ns: jx.solve(ns[i], b), constants=(b,))
    n = x.shape[0]
    A = 2 * np.eye(n) + 0.3 * rng.standard_normal((n, n)) / math.sqrt(n)
    return Step(f"solve(C{A.shape}, n{i})", lambda ns: jx.solve(A, ns[i]), constants=(A,))


def _axis_step(name, fn, keepdims=False, allow_none=True, tuple_axes=False):
    def make(rng, i, nodes):
        x = nodes[i]
        axes = list(range(x.ndim)) + ([None] if allow_none else [])
        if tuple_axes and x.ndim >= 2:
            axes += list(itertools.combinations(range(x.ndim), 2))
        axis = _pick(rng, axes)
        if keepdims:
            kd = _coin(rng)
            return Step(f"{name}(n{i}, axis={axis}, keepdims={kd})", lambda ns: fn(ns[i], axis=axis, keepdims=kd))
        return Step(f"{name}(n{i}, axis={axis})", lambda ns: fn(ns[i], axis=axis))
    return make


def _step_transpose(rng, i, nodes):
    x = nodes[i]
    perm = [int(a) for a in rng.permutation(x.ndim)]
    return Step(f"transpose(n{i}, {tuple(perm)})", lambda ns: jx.transpose(ns[i], tuple(perm)))


@functools.lru_cache(maxsize=None)
def _factorizations(size, rank=3):
    """Every shape of 1 to ``rank`` axes with ``size`` entries."""
    out = [(size,)]
    if rank > 1:
        for d in range(1, size + 1):
            if size % d == 0:
                out += [(d,) + rest for rest in _factorizations(size // d, rank - 1)]
    return sorted(set(out))


def _step_reshape(rng, i, nodes):
    x = nodes[i]
    shape = _pick(rng, _factorizations(x.size))
    return Step(f"reshape(n{i}, {shape})", lambda ns: ns[i].reshape(shape))


def _step_mse(rng, i, nodes):
    t = _const_like(rng, nodes[i].shape)
    return Step(f"mse(n{i}, T)", lambda ns: jx.mse(ns[i], t), constants=(t,))


def _step_cross_entropy(rng, i, nodes):
    x = nodes[i]
    k = x.shape[-1]
    labels = rng.integers(0, k, x.shape[:-1])
    return Step(f"cross_entropy(n{i}, {labels.tolist()})", lambda ns: jx.cross_entropy(ns[i], labels),
                constants=(labels,))


HAS_AXES = lambda x, nodes: x.ndim >= 1  # noqa: E731
MATRIX_OR_VECTOR = lambda x, nodes: x.ndim in (1, 2)  # noqa: E731

# name, applicable(x, nodes), make(rng, i, nodes), weight. Ops that combine two
# nodes (several paths from an input to the output) weigh more; reductions to a
# scalar weigh less, so that most graphs keep a tensor output for a while.
MENU = [
    (*_unary("tanh", jx.tanh, ALWAYS), 1),
    (*_unary("sin", jx.sin, ALWAYS), 1),
    (*_unary("cos", jx.cos, ALWAYS), 1),
    (*_unary("sigmoid", jx.sigmoid, ALWAYS), 1),
    (*_unary("softplus", jx.softplus, _finite_margin(hi=30)), 1),
    (*_unary("negative", jx.negative, ALWAYS), 0.5),
    (*_unary("exp", jx.exp, lambda x, nodes: x.value.max() < 3), 1),
    (*_unary("square", jx.square, _finite_margin(hi=5)), 1),
    (*_unary("log", jx.log, _finite_margin(lo=0.25)), 2),
    (*_unary("sqrt", jx.sqrt, _finite_margin(lo=0.25)), 2),
    (*_unary("relu", jx.relu, _finite_margin(away=0.05)), 1),
    (*_unary("abs", jx.abs, _finite_margin(away=0.05)), 1),
    ("power", _can_power, _step_power, 1),
    ("binary-const", ALWAYS, _step_binary_const, 2),
    ("divide-const", ALWAYS, _step_divide_const, 1),
    ("reciprocal", _finite_margin(away=0.3), _step_reciprocal, 1),
    ("binary-node", _can_binary_node, _step_binary_node, 4),
    ("matmul-const", MATRIX_OR_VECTOR, _step_matmul_const, 2),
    ("matmul-node", _can_matmul_node, _step_matmul_node, 4),
    ("gram", lambda x, nodes: x.ndim == 2, _step_gram, 3),
    ("shift", SQUARE, _step_shift, 1),
    ("inv", SQUARE, _linalg("inv", jx.inv), 2),
    ("det", SQUARE, _linalg("det", jx.det), 1.5),
    ("logdet", SQUARE, _linalg("logdet", jx.logdet), 1.5),
    ("solve", lambda x, nodes: x.ndim in (1, 2), _step_solve, 1),
    (*_unary("trace", jx.trace, SQUARE), 1),
    (*_unary("fro", jx.fro, lambda x, nodes: float(np.sqrt((x.value ** 2).sum())) > 0.1), 0.5),
    ("sum", HAS_AXES, _axis_step("sum", jx.sum, keepdims=True, tuple_axes=True), 1),
    ("mean", HAS_AXES, _axis_step("mean", jx.mean, keepdims=True, tuple_axes=True), 1),
    ("logsumexp", HAS_AXES, _axis_step("logsumexp", jx.logsumexp), 1),
    ("softmax", HAS_AXES, _axis_step("softmax", jx.softmax, allow_none=False), 1.5),
    ("log_softmax", HAS_AXES, _axis_step("log_softmax", jx.log_softmax, allow_none=False), 1.5),
    ("transpose", lambda x, nodes: x.ndim >= 2, _step_transpose, 1.5),
    ("reshape", HAS_AXES, _step_reshape, 1.5),
    ("mse", ALWAYS, _step_mse, 0.3),
    ("cross_entropy", MATRIX_OR_VECTOR, _step_cross_entropy, 0.3),
]

RANKS = (0, 1, 1, 2, 2, 2, 3, 3)  # mostly matrices; scalars and rank-3 tensors too


@st.composite
def recipes(draw, max_ops: int = 8):
    """A random graph: 1 or 2 input arrays, then 2 to ``max_ops`` ops.

    Hypothesis draws the seed and the number of inputs; the seeded generator
    picks the number of ops, shapes (axes of length 1 to 4), ops and values, so
    that every example is a different graph.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shapes = [tuple(int(d) for d in rng.integers(1, 5, _pick(rng, RANKS))) for _ in range(draw(st.integers(1, 2)))]
    shapes = [(s[0], s[0]) if len(s) == 2 and _coin(rng) else s for s in shapes]  # square matrices for linalg
    inputs = [0.8 * rng.standard_normal(shape) for shape in shapes]
    recipe = Recipe(inputs)
    target = int(rng.integers(2, max_ops + 1))
    nodes = [jx.var(v) for v in inputs]
    ops = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AmbiguousBroadcastWarning)
        warnings.simplefilter("error", NonFiniteWarning)
        while ops < target:
            i = len(nodes) - 1
            options = [(make, weight) for _, ok, make, weight in MENU if ok(nodes[i], nodes)]
            weights = np.array([w for _, w in options])
            make = options[int(rng.choice(len(options), p=weights / weights.sum()))][0]
            step = make(rng, i, nodes)
            if ops + step.ops > target:
                continue
            node = step.build(nodes)
            assume(np.isfinite(node.value).all() and np.abs(node.value).max(initial=0) < 1e3)
            recipe.steps.append(step)
            nodes.append(node)
            ops += step.ops
    assume(_gently_curved(recipe, rng))
    return recipe


def _gently_curved(recipe, rng, h=1e-3):
    """Well-conditioned for finite differences: along a random direction, central differences
    with steps h and 2h agree (their gap is 3/4 of the O(h²) truncation error at 2h), so at the
    numeric route's step (about 6e-6) the truncation error is below 1e-9 of the derivative's scale.
    Uses only forward evaluations of the graph, none of the routes under test."""
    v = [rng.standard_normal(a.shape) for a in recipe.inputs]

    def slope(step):
        up, _, _ = recipe.build([a + step * d for a, d in zip(recipe.inputs, v)])
        down, _, _ = recipe.build([a - step * d for a, d in zip(recipe.inputs, v)])
        return (up.value - down.value) / (2 * step)

    try:
        d1, d2 = slope(h), slope(2 * h)
    except (Warning, ValueError):  # a perturbed input left an op's domain: not gently curved
        return False
    return float(np.abs(d1 - d2).max(initial=0)) <= 1e-3 * (1 + float(np.abs(d1).max(initial=0)))


# ------------------------------------------------------------------ checks
def _all_nodes(y):
    seen, stack, out = set(), [y], []
    while stack:
        n = stack.pop()
        if n.id not in seen:
            seen.add(n.id)
            out.append(n)
            stack.extend(n.parents)
    return out


def _gap(a, b):
    """(max |a - b|, max(max |a|, max |b|)) in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0, 0.0
    return float(np.abs(a - b).max()), float(max(np.abs(a).max(), np.abs(b).max()))


def _jacobians(y, leaves, method, order="optimal"):
    return jx.jacobian(y, leaves, method=method, order=order)


# Tolerances, normwise: exact routes differ by round-off only (contraction orders);
# central differences with h ≈ 6e-6 carry O(h²) truncation and O(ε|y|/h) rounding.
EXACT_RTOL = 1e-9
NUMERIC_RTOL, NUMERIC_ATOL = 1e-6, 1e-8


def _agree(a, b, exact, y_scale):
    diff, scale = _gap(a, b)
    if exact:
        return diff <= EXACT_RTOL * scale + 1e-13
    return diff <= NUMERIC_RTOL * scale + NUMERIC_ATOL * (1 + y_scale)


@_settings(1000)
@given(recipe=recipes(), order=st.sampled_from(jx.ORDERS), seed=st.integers(0, 2**16))
def test_routes_agree_shapes_and_directional_derivative(recipe, order, seed):
    y, leaves, _ = recipe.build()
    y_scale = float(np.abs(y.value).max(initial=0))
    results = {}
    for method in jx.METHODS:  # read now: a route added later is covered automatically
        Js = _jacobians(y, leaves, method, order)
        for J, x in zip(Js, leaves):
            assert J.shape == y.shape + x.shape, (method, J.shape, y.shape, x.shape)
            assert np.isfinite(J).all(), method
        results[method] = Js
    names = list(results)
    for a, b in itertools.combinations(names, 2):
        exact = "numeric" not in (a, b)
        for Ja, Jb, x in zip(results[a], results[b], leaves):
            assert _agree(Ja, Jb, exact, y_scale), (a, b, x.name, _gap(Ja, Jb))

    # J·v against the directional central difference of a graph rebuilt from x ± h v
    rng = np.random.default_rng(seed)
    v = [rng.standard_normal(x.shape) for x in leaves]
    h = 1e-5
    up, _, _ = recipe.build([a + h * d for a, d in zip(recipe.inputs, v)])
    down, _, _ = recipe.build([a - h * d for a, d in zip(recipe.inputs, v)])
    fd = (up.value - down.value) / (2 * h)
    for method, Js in results.items():
        Jv = sum(np.tensordot(J, d, axes=d.ndim) if d.ndim else J * d for J, d in zip(Js, v))
        diff, scale = _gap(Jv, fd)
        assert diff <= 1e-5 * scale + 1e-7 * (1 + y_scale), (method, diff, scale)


@_settings(400)
@given(recipe=recipes(), order=st.sampled_from(jx.ORDERS))
def test_routes_leave_inputs_unchanged_and_repeat_bit_identically(recipe, order):
    users = [a.copy() for a in recipe.inputs] + [c.copy() for s in recipe.steps for c in s.constants]
    y, leaves, _ = recipe.build()
    nodes = _all_nodes(y) + leaves
    values = [n.value.copy() for n in nodes]
    for method in jx.METHODS:
        first = _jacobians(y, leaves, method, order)
        again = _jacobians(y, leaves, method, order)
        for a, b in zip(first, again):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), method
        if y.size == 1:
            g1 = jx.grad(y, leaves, method=method, order=order)
            g2 = jx.grad(y, leaves, method=method, order=order)
            assert all(a.tobytes() == b.tobytes() for a, b in zip(g1, g2)), method
    now = list(recipe.inputs) + [c for s in recipe.steps for c in s.constants]
    for before, after in zip(users, now):
        assert before.tobytes() == after.tobytes()
        assert not isinstance(after, np.ndarray) or after.flags.writeable  # still the user's to change
    for n, before in zip(nodes, values):
        assert n.value.tobytes() == before.tobytes() and not n.value.flags.writeable, n.name


@_settings(200)
@given(recipe=recipes(max_ops=5))
def test_float32_graphs_stay_float32_on_exact_routes(recipe):
    y32, leaves32, _ = recipe.build(dtype=np.float32)
    y64, leaves64, _ = recipe.build()
    assert y32.dtype == np.float32
    reference = _jacobians(y64, leaves64, "vjp")
    for method in jx.METHODS:
        Js = _jacobians(y32, leaves32, method)
        for J, R in zip(Js, reference):
            assert J.dtype == (np.float64 if method == "numeric" else np.float32), method
            diff, scale = _gap(J, R)
            assert diff <= 2e-3 * scale + 1e-5, (method, diff, scale)
