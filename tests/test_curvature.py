"""explain(l, x, hessian=True): the Gauss–Newton and curvature parts, each against closed forms in numpy."""
import numpy as np
import pytest

import jacobians as jx
from jacobians.curvature import loss_input, split_hessian

X = np.array([[1.0, 2.0], [0.5, -1.0], [-1.5, 0.5], [2.0, 1.0]])
t = np.array([0.5, -0.5, 1.0, 0.0])


def test_one_neuron_parts_match_their_closed_forms():
    w = jx.var([0.3, -0.4], name="w")
    s_node = jx.tanh(X @ w)
    split = jx.explain(jx.sum((s_node - t) ** 2), w, hessian=True)
    assert split.u is s_node
    s = np.tanh(X @ w.value)
    J = (1 - s ** 2)[:, None] * X                         # du_i/dw_a
    gn = J.T @ (2 * np.eye(4)) @ J                          # H_u = 2I
    curv = np.einsum("i,ia,ib->ab", 2 * (s - t) * -2 * s * (1 - s ** 2), X, X)   # g_i ∂²u_i
    assert np.allclose(split.gauss_newton, gn) and np.allclose(split.curvature, curv)
    assert np.allclose(split.hessian, gn + curv)
    text = str(split)
    assert "Gauss–Newton Jᵀ H_u J  ‖·‖_F = 15.32, eigenvalues in [4.424, 14.67] (positive semi-definite)" in text
    assert "(negative semi-definite)" in text and "Hessian: yes" in text


def test_mlp_split_matches_einsums_written_here():
    rng = np.random.default_rng(1)
    Xm, T, W2 = rng.standard_normal((5, 3)), rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    W1 = jx.var(rng.standard_normal((3, 4)) / 2, name="W1")
    out = jx.tanh(Xm @ W1) @ W2
    split = split_hessian(jx.sum((out - T) ** 2), W1)
    assert split.u is out
    A = np.tanh(Xm @ W1.value)
    J = np.einsum("ib,bj,ia->ijab", 1 - A ** 2, W2, Xm).reshape(10, 12)
    gn = 2 * J.T @ J
    G = 2 * (A @ W2 - T) @ W2.T                              # dl/dA
    curv = np.einsum("ib,ia,ic,bd->abcd", G * -2 * A * (1 - A ** 2), Xm, Xm, np.eye(4)).reshape(12, 12)
    assert np.allclose(split.gauss_newton, gn) and np.allclose(split.curvature, curv)
    assert np.linalg.eigvalsh(gn).min() > -1e-10             # Gauss–Newton is positive semi-definite


@pytest.mark.parametrize("make,expect", [
    (lambda Z: jx.cross_entropy(Z, np.array([0, 1, 1])), "Z"),
    (lambda Z: jx.mse(Z, np.zeros((3, 2))), "Z"),
    (lambda Z: jx.mean(jx.abs(jx.tanh(Z) - 1.0)), "tanh"),
    (lambda Z: jx.fro(Z @ np.ones((2, 2)) - 1.0), "matmul"),
])
def test_the_default_split_is_the_input_of_the_loss(make, expect):
    Z = jx.var(np.random.default_rng(0).standard_normal((3, 2)), name="Z")
    u = loss_input(make(Z), Z)
    assert (u.name if expect == "Z" else u.op.name) == expect


def test_no_loss_splits_at_l_itself_and_says_so():
    A = np.array([[1.0, 2.0], [0.0, 3.0]])
    x = jx.var([1.0, -1.0], name="x")
    split = jx.explain(x @ (A @ x), x, hessian=True)
    assert not split.gauss_newton.any() and np.allclose(split.curvature, A + A.T)
    assert "pass at=u" in str(split)
    with pytest.raises(ValueError, match="at= must be a node"):
        jx.explain(x @ (A @ x), x, hessian=True, at=jx.var([1.0]))
