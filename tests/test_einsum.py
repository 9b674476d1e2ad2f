"""jx.einsum and its family (matmul, outer, inner, dot, vdot, tensordot, diagonal, trace).

Every case of tests/einsum_cases.py: the forward against np.einsum, every exact
route (explicit, factored, vjp) against central differences for every leaf, and
the VJP derived from the op's factored Jacobian against the hand-written one.
Central-difference Jacobians are computed once per (case, leaf) and shared.
"""
import functools
import re

import numpy as np
import pytest

import jacobians as jx

from einsum_cases import CASES, KNOWN_HARD, MAX_JACOBIAN, MAX_OPERAND, OPT_EINSUM_EQUATIONS, EinsumCase

ROUTES = ("explicit", "factored", "vjp")


def _close(J, N, rtol=1e-6, what=""):
    """Normwise: max |J - N| <= rtol * max(1, max |N|)."""
    J = np.asarray(J)
    assert J.shape == N.shape, f"{what}: shape {J.shape}, numeric {N.shape}"
    if N.size == 0:
        return
    scale = max(1.0, float(np.abs(N).max()))
    err = float(np.abs(J - N).max())
    assert err <= rtol * scale, f"{what}: max |J - N| = {err:.3e} > {rtol:g} * {scale:.3g}"


# ---------------------------------------------------------------- the table itself (needs numpy only)


def test_table_holds_both_lists():
    eqs = {c.eq for c in CASES}
    assert len(OPT_EINSUM_EQUATIONS) == 70
    assert set(OPT_EINSUM_EQUATIONS) <= eqs
    assert set(KNOWN_HARD) <= eqs
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_table_case_runs_in_numpy_within_budget(case):
    out = np.einsum(case.eq, *[np.ones(s) for s in case.shapes])
    assert len(case.leaf_of) == len(case.shapes)
    for i, (s, j) in enumerate(zip(case.shapes, case.leaf_of)):
        assert s == case.leaf_shapes[j], f"operand {i} shares leaf {j} but not its shape"
        n = int(np.prod(s))
        assert n <= MAX_OPERAND and out.size * n <= MAX_JACOBIAN, (i, s, out.shape)


# ---------------------------------------------------------------- einsum over the table


def _arrays(case: EinsumCase, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s)) for s in case.leaf_shapes]


@functools.lru_cache(maxsize=None)
def _built(case: EinsumCase):
    """(leaf arrays, leaves, y) for a case; built on first use, never at import."""
    arrays = _arrays(case)
    leaves = tuple(jx.var(a, name=f"x{j}") for j, a in enumerate(arrays))
    y = jx.einsum(case.eq, *(leaves[j] for j in case.leaf_of))
    return arrays, leaves, y


@functools.lru_cache(maxsize=None)
def _numeric(case: EinsumCase, j: int) -> np.ndarray:
    _, leaves, y = _built(case)
    return jx.jacobian(y, leaves[j], method="numeric")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_einsum_forward_matches_numpy(case):
    arrays, _, y = _built(case)
    expected = np.einsum(case.eq, *(arrays[j] for j in case.leaf_of))
    assert y.op.name == "einsum"
    assert y.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(y.value, expected, rtol=1e-12, atol=1e-12 * scale)


@pytest.mark.parametrize("method", ROUTES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_einsum_route_matches_numeric(case, method):
    _, leaves, y = _built(case)
    for j, x in enumerate(leaves):
        J = jx.jacobian(y, x, method=method)
        assert J.shape == y.shape + x.shape, f"leaf x{j}, {method}: {J.shape}"
        _close(J, _numeric(case, j), what=f"{case.eq} d/dx{j} {method}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_einsum_derived_vjp_equals_hand_vjp(case):
    from jacobians.elimination import derived_vjp

    _, leaves, y = _built(case)
    values = [p.value for p in y.parents]
    assert len(values) == len(case.shapes), "one parent per operand"
    g = np.random.default_rng(7).standard_normal(y.shape)
    hands, deriveds = [], []
    for i, v in enumerate(values):
        F = y.op.form(i, y.value, *values, **y.params)
        hand = np.asarray(y.op.vjp(i, g, y.value, *values, **y.params))
        derived = np.asarray(derived_vjp(F, g, y.shape, v.shape))
        assert hand.shape == v.shape and derived.shape == v.shape, (i, hand.shape, derived.shape, v.shape)
        atol = 1e-12 * max(1.0, float(np.abs(hand).max())) if hand.size else 1e-12
        np.testing.assert_allclose(derived, hand, rtol=1e-10, atol=atol, err_msg=f"operand {i}")
        hands.append(hand)
        deriveds.append(derived)
    # independent anchor: per leaf, the operands' VJPs summed are g · (numeric total Jacobian)
    for j in range(len(leaves)):
        anchor = np.tensordot(g, _numeric(case, j), axes=y.ndim)
        mine = [i for i, l in enumerate(case.leaf_of) if l == j]
        _close(sum(hands[i] for i in mine), anchor, what=f"hand VJP, leaf x{j}")
        _close(sum(deriveds[i] for i in mine), anchor, what=f"derived VJP, leaf x{j}")


# ---------------------------------------------------------------- one leaf for two operands


@pytest.mark.parametrize("method", ROUTES)
def test_einsum_same_leaf_for_two_operands(method):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 3))
    X = jx.var(A, name="X")
    Y = jx.einsum("ij,jk->ik", X, X)
    np.testing.assert_allclose(Y.value, A @ A, rtol=1e-12)
    N = jx.jacobian(Y, X, method="numeric")
    # d(XX)[i,k]/dX[p,q] = δ_ip X[q,k] + X[i,p] δ_qk: both paths, anchored by hand
    I = np.eye(3)
    np.testing.assert_allclose(N, np.einsum("ip,qk->ikpq", I, A) + np.einsum("ip,qk->ikpq", A, I), atol=1e-8)
    J = jx.jacobian(Y, X, method=method)
    assert J.shape == (3, 3, 3, 3)
    _close(J, N, what=f"XX {method}")

    v = rng.standard_normal(4)
    x = jx.var(v, name="x")
    s = jx.einsum("i,i->", x, x)
    assert s.shape == ()
    np.testing.assert_allclose(s.value, v @ v, rtol=1e-12)
    N = jx.jacobian(s, x, method="numeric")
    np.testing.assert_allclose(N, 2 * v, atol=1e-8)
    J = jx.jacobian(s, x, method=method)
    assert J.shape == (4,)
    _close(J, N, what=f"x.x {method}")


# ---------------------------------------------------------------- batched matmul

B, n, k, m = 2, 3, 4, 2
MATMUL_SHAPES = [
    pytest.param((B, n, k), (B, k, m), id="batch@batch"),
    pytest.param((n, k), (B, k, m), id="matrix@batch"),
    pytest.param((B, n, k), (k,), id="batch@vector"),
    pytest.param((k,), (B, k, m), id="vector@batch"),
    pytest.param((1, n, k), (B, k, m), id="broadcast-1@batch"),
    pytest.param((2, 1, n, k), (3, k, m), id="broadcast-4d@3d"),
]
MATMUL_CALLS = {
    "operator": lambda a, b: a @ b,
    "jx.matmul": lambda a, b: jx.matmul(a, b),
}


@pytest.mark.parametrize("call", list(MATMUL_CALLS))
@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_batched_matmul(sa, sb, call):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    leaves = (jx.var(a, name="a"), jx.var(b, name="b"))
    _forward_and_routes(MATMUL_CALLS[call](*leaves), "matmul", np.matmul(a, b), leaves, f"{sa}@{sb}")


def _forward_and_routes(y, name, expected, leaves, what):
    """y is the op ``name``, equals numpy's ``expected``, and every route agrees with central differences."""
    assert y.op.name == name
    expected = np.asarray(expected)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.value, expected, rtol=1e-12, atol=1e-12)
    for x in leaves:
        N = jx.jacobian(y, x, method="numeric")
        for method in ROUTES:
            J = jx.jacobian(y, x, method=method)
            assert J.shape == y.shape + x.shape, (x.name, method, J.shape)
            _close(J, N, what=f"{what} d/d{x.name} {method}")


# ---------------------------------------------------------------- the family: numpy names, numpy semantics

FAMILY = [
    # (id, function name, kwargs, shapes, numpy reference)
    ("outer", "outer", {}, ((3,), (4,)), np.outer),
    ("inner-1d", "inner", {}, ((4,), (4,)), np.inner),
    ("inner-2d", "inner", {}, ((2, 4), (3, 4)), np.inner),
    ("dot-1d1d", "dot", {}, ((4,), (4,)), np.dot),
    ("dot-2d2d", "dot", {}, ((3, 4), (4, 2)), np.dot),
    ("dot-2d1d", "dot", {}, ((3, 4), (4,)), np.dot),
    ("vdot", "vdot", {}, ((4,), (4,)), np.vdot),
    ("tensordot-axes1", "tensordot", {"axes": 1}, ((3, 4), (4, 2)), lambda a, b: np.tensordot(a, b, axes=1)),
    ("tensordot-axes-pairs", "tensordot", {"axes": ([1, 0], [0, 1])}, ((2, 3, 4), (3, 2, 5)),
     lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 1]))),
    ("diagonal-wide", "diagonal", {}, ((3, 4),), np.diagonal),
    ("diagonal-offset1-wide", "diagonal", {"offset": 1}, ((3, 4),), lambda a: np.diagonal(a, offset=1)),
    ("diagonal-offset1-tall", "diagonal", {"offset": 1}, ((4, 3),), lambda a: np.diagonal(a, offset=1)),
    ("trace-square", "trace", {}, ((3, 3),), np.trace),
    ("trace-wide", "trace", {}, ((3, 4),), np.trace),
]


@pytest.mark.parametrize("name,kwargs,shapes,reference", [pytest.param(*f[1:], id=f[0]) for f in FAMILY])
def test_family_member(name, kwargs, shapes, reference):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s) for s in shapes]
    leaves = [jx.var(a, name=f"x{i}") for i, a in enumerate(arrays)]
    _forward_and_routes(getattr(jx, name)(*leaves, **kwargs), name, reference(*arrays), leaves, f"{name}{kwargs}")


# ---------------------------------------------------------------- errors


def _mentions_shape(msg: str, shape) -> bool:
    """The shape (2, 3) written as (2, 3), (2,3), 2x3 or 2×3."""
    pats = [re.escape(str(tuple(shape))), re.escape(str(tuple(shape)).replace(" ", "")),
            r"\b" + r"\s*[x×]\s*".join(map(str, shape)) + r"\b"]
    return any(re.search(p, msg) for p in pats)


def test_einsum_shape_mismatch_names_einsum_and_both_shapes():
    rng = np.random.default_rng(0)
    A = jx.var(rng.standard_normal((2, 3)), name="A")
    Bm = jx.var(rng.standard_normal((4, 5)), name="B")
    with pytest.raises(ValueError) as err:
        jx.einsum("ij,jk->ik", A, Bm)
    msg = str(err.value)
    assert "einsum" in msg, msg
    assert _mentions_shape(msg, (2, 3)) and _mentions_shape(msg, (4, 5)), msg


def test_einsum_output_label_not_in_inputs():
    A = jx.var(np.random.default_rng(0).standard_normal((2, 3)), name="A")
    with pytest.raises(ValueError):
        jx.einsum("ij->k", A)


def test_einsum_repeated_label_of_unequal_sizes():
    A = jx.var(np.random.default_rng(0).standard_normal((2, 3)), name="A")
    with pytest.raises(ValueError):
        np.einsum("ii->i", A.value)  # numpy refuses it too
    with pytest.raises(ValueError):
        jx.einsum("ii->i", A)


@pytest.mark.parametrize("eq,count", [("ij,jk->ik", 1), ("ij,jk->ik", 3), ("ij->ji", 2)],
                         ids=["too-few", "too-many", "one-term-two-operands"])
def test_einsum_wrong_operand_count(eq, count):
    rng = np.random.default_rng(0)
    ops = [jx.var(rng.standard_normal((3, 3)), name=f"x{i}") for i in range(count)]
    with pytest.raises((ValueError, TypeError)):
        jx.einsum(eq, *ops)
