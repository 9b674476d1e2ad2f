"""The two seed questions, checked against closed forms from Frobenius calculus.

Seed 1: X (D×N), W = X Xᵀ, Y = W X.  l = ‖Y‖_F² gives, with W held fixed,
dl/dW = 2 Y Xᵀ and dl/dX = 2 Wᵀ Y; l = ‖Y‖_F gives dl/dY = Y / ‖Y‖_F; the total
dl/dX through W is 2 (Y XᵀX + X Yᵀ X + W Y) (from dY = dX XᵀX + X dXᵀ X + W dX).
Seed 2: the dense layer Z = X W + 1 bᵀ, A = σ(Z), C = Σ (A - T)²:
with Δ = 2 (A - T) ⊙ A ⊙ (1 - A), dC/dW = Xᵀ Δ and dC/db = 1ᵀ Δ.
D ≠ N throughout so a transposed index cannot hide.
"""
import numpy as np
import pytest

import jacobians as jx

D, N = 4, 6


def assert_close(actual, expected, rtol=1e-7):
    """Normwise relative agreement (central differences err on tiny entries in absolute terms)."""
    err = np.abs(actual - expected).max() / np.abs(expected).max()
    assert actual.shape == expected.shape and err <= rtol, f"relative error {err:.2e} > {rtol:.0e}"


@pytest.fixture
def seed1():
    Xv = np.random.default_rng(3).standard_normal((D, N))
    X = jx.var(Xv, name="X")
    W = X @ X.T
    Y = W @ X
    return Xv, X, W, Y


@pytest.mark.parametrize("method", jx.METHODS)
def test_squared_norm_gradient_wrt_W_is_2YXt(seed1, method):
    Xv, X, W, Y = seed1
    l = jx.sum(Y * Y)
    G = jx.grad(l, W, method=method)
    assert_close(G, 2 * Y.value @ Xv.T)


@pytest.mark.parametrize("method", jx.METHODS)
def test_squared_norm_partial_wrt_X_with_W_fixed_is_2WtY(seed1, method):
    Xv, X, W, Y = seed1
    l = jx.fro(Y) ** 2
    G = jx.grad(l, X, method=method, hold=[W])
    assert_close(G, 2 * W.value.T @ Y.value)


@pytest.mark.parametrize("method", jx.METHODS)
def test_norm_gradient_wrt_Y_is_Y_over_norm(seed1, method):
    _, X, W, Y = seed1
    l = jx.fro(Y)
    assert_close(jx.grad(l, Y, method=method), Y.value / np.linalg.norm(Y.value))


@pytest.mark.parametrize("method", jx.METHODS)
@pytest.mark.parametrize("order", jx.ORDERS)
def test_total_gradient_through_W(seed1, method, order):
    Xv, X, W, Y = seed1
    l = jx.sum(Y * Y)
    Yv, Wv = Y.value, W.value
    closed = 2 * (Yv @ Xv.T @ Xv + Xv @ Yv.T @ Xv + Wv @ Yv)
    assert_close(jx.grad(l, X, method=method, order=order), closed)


def test_chain_rule_contracts_the_4_tensor_back_to_a_matrix(seed1):
    """dl/dW_ab = Σ_cd dl/dY_cd dY_cd/dW_ab, written out with np.einsum."""
    Xv, X, W, Y = seed1
    l = jx.fro(Y)
    dY_dW = jx.jacobian(Y, W)
    assert dY_dW.shape == (D, N, D, D)
    # the index formula dY_cd/dW_ab = δ_ca X_bd, built independently
    expected = np.einsum("ca,bd->cdab", np.eye(D), Xv)
    np.testing.assert_allclose(dY_dW, expected, atol=0)
    dl_dY = jx.grad(l, Y)
    contracted = np.einsum("cd,cdab->ab", dl_dY, dY_dW)
    np.testing.assert_allclose(contracted, jx.grad(l, W), rtol=1e-12)
    np.testing.assert_allclose(contracted, Y.value @ Xv.T / np.linalg.norm(Y.value), rtol=1e-12)


@pytest.mark.parametrize("method", jx.METHODS)
def test_dense_layer_gradients(method):
    rng = np.random.default_rng(5)
    m, n, k = 5, 3, 2
    Xv, Tv = rng.standard_normal((m, n)), rng.uniform(0, 1, (m, k))
    W = jx.var(rng.standard_normal((n, k)), name="W")
    b = jx.var(rng.standard_normal(k), name="b")
    Z = Xv @ W + b  # numpy array on the left, a (k,) bias broadcast over m rows
    A = jx.sigmoid(Z)
    C = jx.sum((A - Tv) ** 2)
    Av = 1 / (1 + np.exp(-(Xv @ W.value + b.value)))
    delta = 2 * (Av - Tv) * Av * (1 - Av)
    gW, gb = jx.grad(C, [W, b], method=method)
    assert_close(gW, Xv.T @ delta)
    assert_close(gb, delta.sum(axis=0))


def test_dense_layer_bias_jacobian_is_ones_over_rows():
    """dZ[r,c]/db[j] = δ_cj for every row r: the 1_m in z = x ω + 1_m b."""
    b = jx.var(np.zeros(3), name="b")
    Z = np.ones((4, 2)) @ np.ones((2, 3)) + b
    J = jx.jacobian(Z, b)
    np.testing.assert_array_equal(J, np.broadcast_to(np.eye(3), (4, 3, 3)))


def test_compare_on_seed1_reports_agreement(seed1):
    _, X, W, Y = seed1
    c = jx.compare(jx.fro(Y), [X, W])
    assert c.ok
    assert set(c.seconds) == {"explicit", "vjp", "numeric", "factored"}
    assert c.discrepancies[("explicit", "vjp")][1] < 1e-12
    assert c.jacobian_bytes == D * N * D * N * 8  # dY/dX, the largest local Jacobian
    assert "all routes agree: True" in str(c)
