"""Composite graphs across every route and order; graph semantics."""
import numpy as np
import pytest

import jacobians as jx
from jacobians.chain_rule import MAX_PATHS


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300)


def _graphs():
    rng = np.random.default_rng(11)
    A = rng.standard_normal((3, 5))

    def mlp():
        X = jx.var(rng.standard_normal((4, 3)), name="X")
        W1 = jx.var(rng.standard_normal((3, 5)), name="W1")
        H = jx.tanh(X @ W1 + np.linspace(-1, 1, 5))
        return jx.cross_entropy(H @ A.T, [0, 2, 1, 1]), [X, W1]

    def attention_like():
        Q = jx.var(rng.standard_normal((3, 2)), name="Q")
        K = jx.var(rng.standard_normal((4, 2)), name="K")
        S = jx.softmax(Q @ K.T / np.sqrt(2.0), axis=1)
        return S @ rng.standard_normal((4, 3)), [Q, K]

    def linalg_mix():
        M = jx.var(np.eye(3) * 2 + 0.2 * rng.standard_normal((3, 3)), name="M")
        v = jx.var(rng.standard_normal(3), name="v")
        return jx.logdet(M) * jx.sum(jx.solve(M, v)) + jx.trace(jx.inv(M) @ M.T), [M, v]

    def reuse():
        x = jx.var(rng.uniform(0.5, 1.5, (2, 3)), name="x")
        a = jx.exp(x) * x
        b = jx.log(a + x ** 2) - jx.sqrt(x)
        return jx.mean(a * b, axis=0), [x]

    return {"mlp": mlp, "attention": attention_like, "linalg": linalg_mix, "reuse": reuse}


GRAPHS = _graphs()


@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize("order", jx.ORDERS)
def test_all_routes_agree(name, order):
    y, xs = GRAPHS[name]()
    for x in xs:
        E = jx.jacobian(y, x, order=order)
        V = jx.jacobian(y, x, method="vjp")
        N = jx.jacobian(y, x, method="numeric")
        assert E.shape == y.shape + x.shape
        assert E.flags.c_contiguous
        assert _rel(E, V) < 1e-10
        assert _rel(E, N) < 1e-6


def test_many_paths_fall_back_to_accumulation_and_agree():
    x = jx.var(np.linspace(0.2, 0.9, 3), name="x")
    y = x
    for _ in range(8):  # 2**8 = 256 paths > MAX_PATHS
        y = y * jx.sin(y)
    p = jx.plan(y, x)
    assert p.strategy == "accumulate" and 2**8 > MAX_PATHS
    for order in ("reverse", "forward"):
        assert _rel(jx.jacobian(y, x, order=order), jx.jacobian(y, x, method="vjp")) < 1e-10
    assert _rel(jx.jacobian(y, x), jx.jacobian(y, x, method="numeric")) < 1e-6


def test_intermediate_wrt_holds_other_paths_fixed():
    Xv = np.random.default_rng(0).standard_normal((4, 3))
    X = jx.var(Xv, name="X")
    W = X @ X.T
    Y = W @ X
    J = jx.jacobian(Y, W)  # only the W → Y edge: dY_cd/dW_ab = δ_ca X_bd
    np.testing.assert_array_equal(J, np.einsum("ca,bd->cdab", np.eye(4), Xv))
    np.testing.assert_allclose(jx.jacobian(Y, W, method="numeric"), J, atol=1e-8)


def test_unrelated_wrt_gives_zeros_of_the_right_shape():
    a = jx.var(np.ones((2, 3)))
    b = jx.var(np.ones(4))
    y = jx.tanh(a)
    for method in jx.METHODS:
        J = jx.jacobian(y, b, method=method)
        assert J.shape == (2, 3, 4) and not J.any()


def test_jacobian_of_a_node_by_itself_is_identity():
    x = jx.var(np.ones((2, 3)))
    for method in ("explicit", "vjp"):
        np.testing.assert_array_equal(jx.jacobian(x, x, method=method).reshape(6, 6), np.eye(6))
    np.testing.assert_allclose(jx.jacobian(x, x, method="numeric").reshape(6, 6), np.eye(6), atol=1e-9)


def test_user_arrays_never_modified():
    Xv = np.random.default_rng(0).standard_normal((3, 4))
    keep = Xv.copy()
    X = jx.var(Xv)
    Xv[0, 0] = 99.0  # the var holds a copy
    assert X.value[0, 0] == keep[0, 0]
    Xv[0, 0] = keep[0, 0]
    T = np.ones((3, 4))
    l = jx.mse(jx.tanh(X), T)
    for m in jx.METHODS:
        jx.grad(l, X, method=m)
    np.testing.assert_array_equal(Xv, keep)
    np.testing.assert_array_equal(T, np.ones((3, 4)))
    assert not X.value.flags.writeable


def test_numpy_on_the_left_gives_nodes():
    W = jx.var(np.ones((3, 2)))
    data = np.ones((4, 3))
    onehot = np.eye(2)[[0, 1, 1, 0]]
    for expr in (data @ W, np.ones((4, 2)) - data @ W, onehot * jx.log_softmax(data @ W), 2.0 / W):
        assert isinstance(expr, jx.Node)
    assert (onehot * jx.log_softmax(data @ W)).parents[0].kind == "const"


def test_operators_and_attributes():
    x = jx.var(np.arange(1.0, 7.0).reshape(2, 3), name="x")
    y = (-x + 1) * 2 / x ** 2 - x.T.T
    assert y.name.startswith("subtract") and y.shape == (2, 3) and x.name == "x"
    np.testing.assert_allclose(y.value, (-x.value + 1) * 2 / x.value**2 - x.value)
    assert x.reshape(3, 2).shape == (3, 2) and x.sum(axis=1).shape == (2,) and x.mean().shape == ()


def test_chain_plan_is_one_contraction_and_orders_agree():
    x = jx.var(np.random.default_rng(1).standard_normal(6), name="x")
    A, B = np.random.default_rng(2).standard_normal((2, 6, 6))
    y = jx.tanh(A @ jx.sin(B @ x))
    plans = {o: jx.plan(y, x, o) for o in jx.ORDERS}
    assert all(len(p.terms) == 1 for p in plans.values())
    assert plans["optimal"].flops <= min(plans["reverse"].flops, plans["forward"].flops)
    ref = plans["naive"].execute()
    for p in plans.values():
        np.testing.assert_allclose(p.execute(), ref, rtol=1e-12)
    assert "einsum" in str(plans["optimal"]) and "flops" in str(plans["optimal"])


def test_float32_graph_stays_float32():
    X = jx.var(np.ones((2, 3), dtype=np.float32))
    l = jx.fro(2.0 * X @ X.T + 1)
    assert l.dtype == np.float32
    assert jx.grad(l, X).dtype == np.float32
    assert jx.grad(l, X, method="vjp").dtype == np.float32
    assert jx.grad(l, X, method="numeric").dtype == np.float64
    assert jx.compare(l, X).ok
