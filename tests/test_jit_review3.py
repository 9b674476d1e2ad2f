"""Review of jx.jit(jx.hessian(f)) / jx.jit(jx.jacobian(f)) (land_products, probes, unflatten).

Every replay runs on data other than the trace's. References are JAX (x64),
closed forms, or the unjitted transform where only a shape/dtype/convention is
compared (never a value computed by the code under test).
"""
import collections
import threading

import numpy as np
import pytest

import jacobians as jx
from tree_checks import close_trees, jax_x64, nonfinite_warnings

jax = jnp = None  # JAX (x64), set by _jax() in each test that takes it as its reference


def _jax():
    global jax, jnp  # (module-level lambdas read jnp too)
    jax, jnp = jax_x64()
    return jax, jnp


# ----------------------------------------------------------------------------- bugs (fail on the current code)
def test_jit_hessian_of_a_one_element_output_keeps_its_leading_axis_as_unjitted_and_jax():
    jax, jnp = _jax()
    f = lambda x: np.sum(x ** 3, keepdims=True)  # output shape (1,)
    h = jx.jit(jx.hessian(f))
    h(np.array([1.0, 2.0, 3.0]))
    x = np.array([0.5, -1.0, 2.0])
    want = jax.hessian(lambda x: jnp.sum(x ** 3, keepdims=True))(x)  # (1, 3, 3)
    assert jx.hessian(f)(x).shape == (1, 3, 3)  # the unjitted transform agrees with JAX
    got = h(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want)


def test_jit_jacobian_replay_warns_when_finite_factors_overflow_to_inf():
    J = jx.jit(jx.jacobian(lambda x, y: np.exp(x) * np.exp(y)))  # diag(exp(x) exp(y)): exp(400)² overflows
    J(np.zeros(2), np.zeros(2))
    big = np.array([400.0, 0.0])
    out, ws = nonfinite_warnings(lambda: J(big, big))
    assert np.isinf(out[0, 0])  # finite inputs, an infinite result ...
    assert ws, "no NonFiniteWarning for a replayed Jacobian that overflowed"


def test_jit_hessian_replay_warns_when_a_cross_block_overflows_to_inf():
    h = jx.jit(jx.hessian(lambda x, y: np.sum(np.exp(x)) * np.sum(np.exp(y)), argnums=(0, 1)))
    h(np.zeros(2), np.zeros(2))
    big = np.array([400.0, 0.0])
    out, ws = nonfinite_warnings(lambda: h(big, big))
    assert np.isinf(out[0][1][0, 0])  # exp(400) exp(400)
    assert ws, "no NonFiniteWarning for a replayed Hessian block that overflowed"


def test_jit_hessian_wrt_a_float32_argument_is_float32_as_unjitted_and_jax():
    jax, jnp = _jax()
    f = lambda x, y: np.sum(np.tanh(x) * y) ** 2
    x = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    y = np.array([1.0, 2.0, 3.0])
    want = jax.hessian(lambda x, y: jnp.sum(jnp.tanh(x) * y) ** 2)(x, y)
    assert want.dtype == np.float32 and jx.hessian(f)(x, y).dtype == np.float32
    h = jx.jit(jx.hessian(f))
    h(x, y)
    assert h(2 * x, 2 * y).dtype == np.float32


def test_jit_jacobian_too_large_message_names_the_argument_as_unjitted():
    f = lambda W: np.tanh(W)
    with jx.memory_limit("1M"):
        with pytest.raises(jx.JacobianTooLarge) as plain:
            jx.jacobian(f)(np.ones(1000))
        with pytest.raises(jx.JacobianTooLarge) as jitted:
            jx.jit(jx.jacobian(f))(np.ones(1000))
    assert "/dW" in str(plain.value)
    assert "/dW" in str(jitted.value), str(jitted.value)[:120]  # says "dtanh#../dreshape#..": an internal node


def test_jit_hessian_of_a_function_with_two_outputs_nests_as_jax():
    jax, jnp = _jax()
    x = np.array([0.5, 1.0, 2.0])
    want = jax.hessian(lambda x: (jnp.sum(x ** 3), jnp.sum(jnp.sin(x))))(x)
    got = jx.jit(jx.hessian(lambda x: (np.sum(x ** 3), np.sum(np.sin(x)))))(x)  # not "too many values to unpack"
    assert isinstance(got, tuple) and len(got) == 2
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])


def test_hessian_of_a_vector_output_is_out_shape_plus_in_shape_twice_as_jax():
    jax, jnp = _jax()
    x = np.array([0.3, -0.5, 1.0])
    want = jax.hessian(lambda x: jnp.sin(x) * jnp.sum(x ** 2))(x)
    for h in (jx.hessian(lambda x: np.sin(x) * np.sum(x ** 2)), jx.jit(jx.hessian(lambda x: np.sin(x) * np.sum(x ** 2)))):
        h(x + 1)
        got = h(x)
        assert got.shape == (3, 3, 3)
        np.testing.assert_allclose(got, want, atol=1e-13)


def test_jit_hessian_of_a_one_tuple_output_nests_as_jax():
    jax, jnp = _jax()
    x = np.array([0.5, 1.0, 2.0])
    want = jax.hessian(lambda x: (jnp.sum(x ** 3),))(x)  # a tuple holding one (3, 3) block
    got = jx.jit(jx.hessian(lambda x: (np.sum(x ** 3),)))(x)
    assert isinstance(got, tuple) and len(got) == 1
    np.testing.assert_allclose(got[0], want[0])


# ----------------------------------------------------------------------------- passing checks kept
def test_hessian_argnums_with_a_dict_argument_nests_and_replays_as_jax():
    jax, jnp = _jax()
    f = lambda p, y: np.sum(np.sin(p["a"]) * np.sum(y ** 2)) + np.sum(np.tanh(p["a"]) ** 2)
    jf = lambda p, y: jnp.sum(jnp.sin(p["a"]) * jnp.sum(y ** 2)) + jnp.sum(jnp.tanh(p["a"]) ** 2)
    h = jx.jit(jx.hessian(f, argnums=(0, 1)))
    h({"a": np.array([0.1, 0.2])}, np.array([1.0, 2.0, 3.0]))
    p, y = {"a": np.array([0.5, -1.0])}, np.array([0.3, 0.2, -0.1])
    close_trees(h(p, y), jax.hessian(jf, argnums=(0, 1))(p, y))
    assert h.traces == 1


def test_hessian_argnums_naming_one_argument_twice_gives_its_block_four_times():
    f = lambda x, y: np.sum(np.sin(x)[:, None] * y ** 2)
    h = jx.jit(jx.hessian(f, argnums=(0, 0)))
    h(np.ones(2), np.ones((2, 3)))
    x, y = np.array([0.3, -1.2]), np.arange(6.0).reshape(2, 3)
    want = np.diag(-np.sin(x) * (y ** 2).sum(1))
    got = h(x, y)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(got[i][j], want, atol=1e-12)
    got[0][0][...] = 7.0  # the four blocks are separate arrays
    np.testing.assert_allclose(got[1][1], want, atol=1e-12)


def test_one_jitted_function_returning_value_grad_and_hessian_replays_all_three():
    jax, jnp = _jax()
    f = lambda x: np.sum(np.tanh(x) ** 3)
    jf = lambda x: jnp.sum(jnp.tanh(x) ** 3)
    g = jx.jit(lambda x: (f(x), jx.grad(f)(x), jx.hessian(f)(x)))
    g(np.ones(3))
    x = np.array([0.4, -0.9, 1.3])
    close_trees(g(x), (jf(x), jax.grad(jf)(x), jax.hessian(jf)(x)))


def test_hessian_inside_jit_closing_over_a_traced_argument_is_not_frozen():
    h = jx.jit(lambda x, a: jx.hessian(lambda v: np.sum(a * v ** 3))(x))
    h(np.ones(3), np.ones(3))
    x, a = np.array([0.5, -1.0, 2.0]), np.array([3.0, -2.0, 0.5])
    np.testing.assert_allclose(h(x, a), np.diag(6 * a * x))


def test_hessian_at_an_intermediate_node_inside_jit():
    h = jx.jit(lambda x: jx.hessian(lambda v: np.sum(v ** 3))(np.sin(x)))
    h(np.zeros(3))
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(h(x), np.diag(6 * np.sin(x)), atol=1e-14)


@pytest.mark.parametrize("name", ["max", "sort", "abs", "maximum", "clip"])
def test_piecewise_hessians_follow_the_new_argmax_or_order_on_replay(name):
    jax, jnp = _jax()
    fs = {
        "max": (lambda x: np.max(x) ** 3 * np.sum(x), lambda x: jnp.max(x) ** 3 * jnp.sum(x)),
        "sort": (lambda x: np.sum(np.sort(x) * np.arange(3.0) * x), lambda x: jnp.sum(jnp.sort(x) * jnp.arange(3.0) * x)),
        "abs": (lambda x: np.sum(np.abs(x) ** 3 * x), lambda x: jnp.sum(jnp.abs(x) ** 3 * x)),
        "maximum": (lambda x: np.sum(np.maximum(x, 0.1) ** 3), lambda x: jnp.sum(jnp.maximum(x, 0.1) ** 3)),
        "clip": (lambda x: np.sum(np.clip(x, -0.5, 0.5) ** 2 * x), lambda x: jnp.sum(jnp.clip(x, -0.5, 0.5) ** 2 * x)),
    }
    f, jf = fs[name]
    h = jx.jit(jx.hessian(f))
    h(np.array([1.0, -2.0, 0.3]))
    x = np.array([-0.2, 0.7, -1.5])  # other signs, another argmax, another order
    close_trees(h(x), jax.hessian(jf)(x))


def test_third_derivative_as_the_jitted_hessian_of_a_gradient_dot_v():
    jax, jnp = _jax()
    v = np.array([0.3, -1.1, 0.7])
    f = lambda x: np.sum(np.sin(x) ** 2 * np.cos(x))
    jf = lambda x: jnp.sum(jnp.sin(x) ** 2 * jnp.cos(x))
    h = jx.jit(jx.hessian(lambda x: jx.grad(f)(x) @ v))
    h(np.zeros(3))
    x = np.array([0.5, -1.0, 2.0])
    close_trees(h(x), jax.hessian(lambda x: jax.grad(jf)(x) @ v)(x), atol=1e-11)


def test_jacobian_with_products_sharing_a_factor_replays_as_jax():
    jax, jnp = _jax()
    X = np.random.default_rng(2).standard_normal((4, 3))
    J = jx.jit(jx.jacobian(lambda W: (X @ W) @ (X @ W).T))
    J(np.eye(3))
    W = np.random.default_rng(3).standard_normal((3, 3))
    close_trees(J(W), jax.jacobian(lambda W: (X @ W) @ (X @ W).T)(W), atol=1e-11)


def test_jacobian_has_aux_replays_the_aux_on_new_data():
    jax, jnp = _jax()
    J = jx.jit(jx.jacobian(lambda x: (np.sin(x) * x, {"s": np.sum(x ** 2)}), has_aux=True))
    J(np.ones(3))
    x = np.array([0.5, -1.0, 2.0])
    j, aux = J(x)
    wj, waux = jax.jacobian(lambda x: (jnp.sin(x) * x, {"s": jnp.sum(x ** 2)}), has_aux=True)(x)
    close_trees((j, aux), (wj, waux))


def test_static_argument_before_the_differentiated_one():
    h = jx.jit(jx.hessian(lambda n, x: np.sum(x ** n), argnums=1), static_argnums=0)
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(h(3, x), np.diag(6 * x))
    np.testing.assert_allclose(h(4, x), np.diag(12 * x ** 2))
    np.testing.assert_allclose(h(3, 2 * x), np.diag(12 * x))
    assert h.traces == 2


def test_concurrent_calls_of_one_jitted_hessian_get_their_own_numbers():
    h = jx.jit(jx.hessian(lambda x: np.log(np.sum(np.exp(x)))))
    xs = [np.random.default_rng(s).standard_normal(5) for s in range(6)]
    bad, barrier = [], threading.Barrier(len(xs))

    def work(x):
        barrier.wait()
        p = np.exp(x) / np.exp(x).sum()
        for _ in range(20):
            if not np.allclose(h(x), np.diag(p) - np.outer(p, p), atol=1e-13):
                bad.append(x)

    ts = [threading.Thread(target=work, args=(x,)) for x in xs]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad and h.traces == 1


def test_a_replay_under_a_lowered_memory_limit_is_refused():
    f = lambda x: np.log(np.sum(np.exp(x)))
    h = jx.jit(jx.hessian(f))
    h(np.zeros(400))  # 1.2 MiB Hessian
    with jx.memory_limit("1M"):
        with pytest.raises(jx.JacobianTooLarge):
            h(np.ones(400))


@pytest.mark.parametrize("x, y", [(np.ones(2), np.zeros(0)), (np.ones((2, 0)), np.ones(3)), (np.array(1.0), np.ones((1, 1)))],
                         ids=["empty-y", "empty-x", "0d-x"])
def test_empty_and_0d_blocks_have_jax_shapes(x, y):
    jax, jnp = _jax()
    f = lambda x, y: np.sum(np.sin(x)) * (np.sum(y ** 2) + 1.0)
    jf = lambda x, y: jnp.sum(jnp.sin(x)) * (jnp.sum(y ** 2) + 1.0)
    h = jx.jit(jx.hessian(f, argnums=(0, 1)))
    h(x, y)
    close_trees(h(2 * x, 2 * y), jax.hessian(jf, argnums=(0, 1))(2 * x, 2 * y))


def test_a_jacobian_equal_to_an_input_is_a_fresh_array():
    A = np.arange(9.0).reshape(3, 3)
    J = jx.jit(jx.jacobian(lambda x, A: A @ x))
    J(np.ones(3), A + 1)
    r = J(np.ones(3), A)
    np.testing.assert_array_equal(r, A)
    r[...] = 0
    assert A[2, 2] == 8.0


def test_float32_in_float32_out():
    x = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    h = jx.jit(jx.hessian(lambda x: np.sum(np.tanh(x) ** 2)))
    J = jx.jit(jx.jacobian(lambda x: np.tanh(x) * x))
    h(x), J(x)
    assert h(2 * x).dtype == np.float32 and J(2 * x).dtype == np.float32


def test_namedtuple_argument_nests_as_jax():
    jax, jnp = _jax()
    P = collections.namedtuple("P", "w b")
    f = lambda p: np.sum(np.tanh(p.w * p.b) ** 2)
    h = jx.jit(jx.hessian(f))
    h(P(np.array([0.5, 1.0]), np.array(0.3)))
    p = P(np.array([-0.5, 2.0]), np.array(-0.7))
    got = h(p)
    assert type(got) is P and type(got.w) is P
    close_trees(got, jax.hessian(lambda p: jnp.sum(jnp.tanh(p.w * p.b) ** 2))(p))


@pytest.mark.parametrize("name", ["norm0", "abs0", "maxtie", "sorttie"])
def test_replays_at_a_kink_match_the_hand_written_vjps_policy(name):
    f, xk = {
        "norm0": (lambda x: x * np.linalg.norm(x), np.zeros(3)),
        "abs0": (lambda x: np.abs(x) * x, np.array([0.0, 1.0, -1.0])),
        "maxtie": (lambda x: np.max(x) * x, np.array([1.0, 1.0, 0.0])),
        "sorttie": (lambda x: np.sort(x) * x, np.array([1.0, 1.0, 0.0])),
    }[name]
    J = jx.jit(jx.jacobian(f))
    J(np.array([0.3, -0.7, 1.1]))
    np.testing.assert_allclose(J(xk), jx.jacobian(f, method="vjp")(xk), atol=1e-15)
