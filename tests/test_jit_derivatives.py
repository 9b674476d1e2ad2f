"""jx.jit(jx.jacobian(f)) and jx.jit(jx.hessian(f)): factored derivatives as nodes, replayed on new data.

Every replay runs on data other than the trace's, so a factor frozen into the
program shows up as a wrong number. The references never replay: central
differences of the hand-written VJPs' gradient (the numeric route), the
hand-written VJPs' Jacobian (the vjp route) and closed forms.
"""
import gc
import weakref

import numpy as np
import pytest

import jacobians as jx
from jacobians.jacobian_node import NotReplayable
from jacobians.node import ConcretizationError
from jacobians.second_order import SecondOrderUnavailable

from op_cases import CASES, draw

SMALL = [c for c in CASES if np.prod(c.shapes[0]) <= 24]


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1.0)


def _loss(case, rest):
    def loss(x):
        y = case.call(x, *rest)
        y = y[0] if isinstance(y, (list, tuple)) else y
        return jx.sum(jx.sin(y)) if y.size > 1 else jx.sin(y)  # curvature through the op
    return loss


@pytest.mark.parametrize("case", SMALL, ids=lambda c: c.id)
def test_every_op_replays_its_hessian_on_new_data_against_central_differences(case):
    trace = [draw(s, case.domain, np.random.default_rng(0)) for s in case.shapes]
    new = [draw(s, case.domain, np.random.default_rng(1)) for s in case.shapes]
    loss = _loss(case, trace[1:])  # the other operands are constants of the program
    h = jx.jit(jx.hessian(loss))
    try:
        h(trace[0])
    except (SecondOrderUnavailable, NotReplayable, ConcretizationError) as exc:
        pytest.xfail(str(exc)[:200])
    got = h(new[0])
    assert h.traces == 1
    x = jx.var(new[0], name="x")
    want = jx.hessian(loss(x), x, method="numeric")
    assert got.shape == new[0].shape * 2
    assert _rel(got, want) < 1e-5, case.id


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_op_replays_its_jacobian_on_new_data_against_the_hand_written_vjps(case):
    trace = [draw(s, case.domain, np.random.default_rng(0)) for s in case.shapes]
    new = [draw(s, case.domain, np.random.default_rng(1)) for s in case.shapes]

    def f(x):
        y = case.call(x, *trace[1:])
        return y[0] if isinstance(y, (list, tuple)) else y

    J = jx.jit(jx.jacobian(f))
    try:
        J(trace[0])
    except (NotReplayable, ConcretizationError) as exc:
        pytest.xfail(str(exc)[:200])
    got = J(new[0])
    assert J.traces == 1
    x = jx.var(new[0], name="x")
    want = jx.jacobian(f(x), x, method="vjp")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11, err_msg=case.id)


def test_a_jacobian_of_a_tuple_output_and_tuple_argnums_nests_as_jax_does():
    J = jx.jit(jx.jacobian(lambda W, x: (np.tanh(W @ x), np.sum(W)), argnums=(0, 1)))
    rng = np.random.default_rng(8)
    J(rng.standard_normal((2, 3)), rng.standard_normal(3))
    W, x = rng.standard_normal((2, 3)), rng.standard_normal(3)
    (dy_dW, dy_dx), (ds_dW, ds_dx) = J(W, x)
    s = 1 - np.tanh(W @ x) ** 2
    np.testing.assert_allclose(dy_dW, np.einsum("i,ij,k->ijk", s, np.eye(2), x), atol=1e-14)
    np.testing.assert_allclose(dy_dx, s[:, None] * W, atol=1e-14)
    np.testing.assert_allclose(ds_dW, np.ones((2, 3)))
    np.testing.assert_allclose(ds_dx, np.zeros(3))
    assert J.traces == 1


def _logsumexp(x):
    return np.log(np.sum(np.exp(x)))


def test_logsumexp_replays_diag_p_minus_p_pt_in_a_few_steps_and_one_trace():
    h = jx.jit(jx.hessian(_logsumexp))
    rng = np.random.default_rng(4)
    h(rng.standard_normal(6))
    for _ in range(3):
        x = rng.standard_normal(6)
        p = np.exp(x) / np.exp(x).sum()
        np.testing.assert_allclose(h(x), np.diag(p) - np.outer(p, p), atol=1e-14)
    assert h.traces == 1
    prog = h.program(x)
    assert len(prog) <= 10  # exp, its sum, a few scalars, and one landing of two products
    assert "land_products" in str(prog)


def test_quadratic_form_with_a_as_an_argument_is_a_plus_a_transposed():
    h = jx.jit(jx.hessian(lambda x, A: x @ (A @ x)))
    rng = np.random.default_rng(5)
    h(rng.standard_normal(4), rng.standard_normal((4, 4)))
    A, x = rng.standard_normal((4, 4)), rng.standard_normal(4)
    np.testing.assert_allclose(h(x, A), A + A.T, atol=1e-14)


def test_a_hessian_that_does_not_depend_on_x_is_a_constant_of_the_program():
    rng = np.random.default_rng(6)
    X, T = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    h = jx.jit(jx.hessian(lambda W: np.sum((X @ W - T) ** 2)))
    W = rng.standard_normal((3, 2))
    H1 = h(W)
    assert len(h.program(W)) == 0  # 2 XᵀX ⊗ I: folded at the trace
    np.testing.assert_allclose(H1, 2 * np.einsum("ac,bd->abcd", X.T @ X, np.eye(2)), atol=1e-12)
    H1[...] = 0  # the caller owns the result: the next call is not changed by it
    np.testing.assert_allclose(h(W + 1), 2 * np.einsum("ac,bd->abcd", X.T @ X, np.eye(2)), atol=1e-12)


def test_mlp_blocks_for_a_pytree_replay_against_the_unjitted_hessian():
    rng = np.random.default_rng(7)
    X, T = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))

    def loss(p):
        return np.sum((np.tanh(X @ p["W1"]) @ p["W2"] - T) ** 2)

    h = jx.jit(jx.hessian(loss))
    p0 = {"W1": rng.standard_normal((3, 3)), "W2": rng.standard_normal((3, 2))}
    h(p0)
    p1 = {"W1": rng.standard_normal((3, 3)), "W2": rng.standard_normal((3, 2))}
    got, want = h(p1), jx.hessian(loss)(p1)
    for a in ("W1", "W2"):
        for b in ("W1", "W2"):
            assert got[a][b].shape == p1[a].shape + p1[b].shape
            assert _rel(got[a][b], want[a][b]) < 1e-12
    W1 = jx.var(p1["W1"], name="W1")
    numeric = jx.hessian(jx.sum((jx.tanh(X @ W1) @ p1["W2"] - T) ** 2), W1, method="numeric")
    assert _rel(got["W1"]["W1"], numeric) < 1e-6


def test_the_function_form_on_nodes_returns_the_hessian_as_a_node():
    x = jx.var(np.array([0.5, -1.0, 2.0]), name="x")
    H = jx.hessian(lambda v: np.sum(v ** 3))(x)
    assert isinstance(H, jx.Node)
    np.testing.assert_allclose(H.value, np.diag(6 * x.value))


def test_a_third_derivative_inside_jit_through_a_landed_hessian():
    # d/dx Σ_i ∂²/∂x_i² Σ sin³ = d/dx Σ (6 sin cos² − 3 sin³) = 6 cos³ − 21 sin² cos, elementwise
    f = jx.jit(jx.grad(lambda x: np.sum(jx.hessian(lambda v: np.sum(np.sin(v) ** 3))(x))))
    f(np.ones(3))
    x = np.array([0.3, -1.2, 2.0])
    np.testing.assert_allclose(f(x), 6 * np.cos(x) ** 3 - 21 * np.sin(x) ** 2 * np.cos(x), rtol=1e-12)
    assert f.traces == 1


def _s(x):  # u ↦ tanh(u)·u elementwise: its Jacobian is diag(s), s = tanh x + x (1 − tanh² x)
    t = np.tanh(x)
    return t + x * (1 - t ** 2)


def _closed_grad(x):  # ∇ Σ s² = 2 s s', s' = 2 (1 − tanh² x)(1 − x tanh x)
    t = np.tanh(x)
    return 2 * _s(x) * 2 * (1 - t ** 2) * (1 - x * t)


def test_a_loss_that_takes_a_jacobian_inside_is_differentiated_through_it():
    f = lambda x: np.sum(jx.jacobian(lambda u: np.tanh(u) * u)(x) ** 2)
    x = np.array([0.3, -0.5, 1.0])
    np.testing.assert_allclose(jx.grad(f)(x), _closed_grad(x), rtol=1e-12)
    g = jx.jit(jx.grad(f))
    g(x + 1)
    np.testing.assert_allclose(g(x), _closed_grad(x), rtol=1e-12)
    h = 1e-5  # the Hessian against central differences of the closed-form gradient
    want = np.stack([(_closed_grad(x + h * e) - _closed_grad(x - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
    for H in (jx.hessian(f)(x), jx.jit(jx.hessian(f))(x)):
        np.testing.assert_allclose(H, want, rtol=1e-7, atol=1e-8)


def test_only_the_factored_route_builds_a_hessian_inside_jit():
    h = jx.jit(jx.hessian(_logsumexp, method="explicit"))
    with pytest.raises(ValueError, match="leave method at 'factored'"):
        h(np.ones(3))


def test_a_non_finite_factor_on_replay_warns_naming_it():
    h = jx.jit(jx.hessian(lambda x: np.sum(np.log(x) * x)))  # d² = 1/x on the diagonal
    h(np.ones(3))
    with pytest.warns(jx.NonFiniteWarning, match="a factor"):
        h(np.array([1.0, 0.0, 2.0]))


def test_a_hessian_past_the_memory_limit_is_refused_at_the_trace_naming_hvp():
    with jx.memory_limit(1 << 20):
        h = jx.jit(jx.hessian(_logsumexp))
        with pytest.raises(jx.JacobianTooLarge, match="hvp"):
            h(np.ones(1000))  # 8 MB of Hessian


@pytest.mark.parametrize("make", [
    lambda: jx.jit(jx.hessian(_logsumexp)),
    lambda: jx.jit(lambda x: np.exp(x)),
    lambda: jx.grad(lambda x: np.sum(x ** 2)),
    lambda: jx.hessian(_logsumexp),
], ids=["jit-hessian", "jit", "grad", "hessian"])
def test_a_result_is_freed_as_soon_as_the_caller_drops_it(make):
    f = make()
    f(np.ones(4))
    gc.disable()  # a reference cycle would keep the result until the collector's next pass
    try:
        r = f(np.ones(4))
        ref = weakref.ref(r)
        del r
        assert ref() is None
    finally:
        gc.enable()


def test_a_jitted_derivative_has_its_arguments_dtype_as_in_jax():
    x = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    y = np.array([1.0, 2.0, 3.0])  # float64: under jit an input, so the graph itself is float64
    s = 1 - np.tanh(x.astype(np.float64)) ** 2  # d tanh
    g = jx.jit(jx.grad(lambda x, y: np.sum(np.tanh(x) * y)))
    J = jx.jit(jx.jacobian(lambda x, y: np.tanh(x) * y))
    H = jx.jit(jx.hessian(lambda x, y: np.sum(np.tanh(x) * y)))
    for f in (g, J, H):
        f(x + 1, y + 1)  # traced on other data
    assert g(x, y).dtype == J(x, y).dtype == H(x, y).dtype == np.float32
    np.testing.assert_allclose(g(x, y), s * y, rtol=1e-6)
    np.testing.assert_allclose(J(x, y), np.diag(s * y), rtol=1e-6)
    np.testing.assert_allclose(H(x, y), np.diag(-2 * np.tanh(x.astype(np.float64)) * s * y), rtol=1e-6)


def test_hessian_has_aux_returns_the_aux_as_jax_does_jitted_or_not():
    def f(x):
        return np.sum(x ** 3), {"norm": np.sum(x ** 2)}

    for h in (jx.hessian(f, has_aux=True), jx.jit(jx.hessian(f, has_aux=True))):
        h(np.ones(3))
        x = np.array([1.0, -2.0, 0.5])
        H, aux = h(x)
        np.testing.assert_allclose(H, np.diag(6 * x))  # d²/dx² Σ x³
        np.testing.assert_allclose(aux["norm"], 5.25)
        assert isinstance(aux["norm"], np.ndarray)


@pytest.mark.parametrize("case", ["attention", "det-inv", "logsumexp-hessian"])
def test_differentiating_through_landings_with_shared_factors_scalars_and_ties_matches_jax(case):
    from tree_checks import jax_x64

    jax, jnp = jax_x64()
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 3))
    if case == "attention":  # products sharing a factor (merged when landed)
        arg = 0.5 * rng.standard_normal((3, 2))
        f = lambda W: np.sum(jx.jacobian(lambda W: jx.softmax((X @ W) @ (X @ W).T, axis=1) @ X)(W) ** 2)
        jf = lambda W: jnp.sum(jax.jacobian(lambda W: jax.nn.softmax((X @ W) @ (X @ W).T, axis=1) @ X)(W) ** 2)
    elif case == "det-inv":  # a factor without an index (det A) multiplies the products
        arg = rng.standard_normal((3, 3)) + 3 * np.eye(3)
        f = lambda A: np.sum(jx.jacobian(lambda A: np.linalg.det(A) * np.linalg.inv(A))(A) ** 2)
        jf = lambda A: jnp.sum(jax.jacobian(lambda A: jnp.linalg.det(A) * jnp.linalg.inv(A))(A) ** 2)
    else:  # diag(p) − p pᵀ: a tied product; its gradient and Hessian are third and fourth derivatives
        arg = rng.standard_normal(4)
        f = lambda x: np.sum(jx.hessian(lambda v: np.log(np.sum(np.exp(v))))(x) ** 2)
        jf = lambda x: jnp.sum(jax.hessian(lambda v: jnp.log(jnp.sum(jnp.exp(v))))(x) ** 2)
        np.testing.assert_allclose(jx.hessian(f)(arg), jax.hessian(jf)(arg), rtol=1e-9, atol=1e-12)
    want = jax.grad(jf)(arg)
    for g in (jx.grad(f), jx.jit(jx.grad(f))):
        np.testing.assert_allclose(g(arg), want, rtol=1e-9, atol=1e-12)
