"""Review 4 of jx.jit(jx.jacobian(f)) / jx.jit(jx.hessian(f)) (land_products, form_factor, probes and flags)
and of benchmarks/machine.py:fresh_fill.

Does not repeat tests/test_jit_review3.py. Every replay runs on data other than the trace's. References are
JAX (x64), closed forms, or jacobians' method="vjp" route (the hand-written VJPs, independent of the forms).
"""
import gc
import mmap
import resource
import time
import tracemalloc

import numpy as np
import pytest

import jacobians as jx
from jacobians.node import active_vars, is_tracing
from tree_checks import close_trees, jax_x64, nonfinite_warnings

jax = jnp = None  # JAX (x64), set by _jax() in each test that takes it as its reference


def _jax():
    global jax, jnp  # (module-level lambdas read jnp too)
    jax, jnp = jax_x64()
    return jax, jnp


def _rng(seed):
    return np.random.default_rng(seed)


# ============================================================================ bugs (fail on the current code)
def test_jit_jacobian_warns_when_a_threaded_gemm_in_the_landing_overflows():
    # dy/dx of A (B x) is the one product A B, landed by a GEMM that BLAS splits over threads. The inputs and
    # the factors (A, B: the inputs themselves) are finite; an overflow computed by a BLAS worker thread never
    # raises numpy's floating-point flag in this thread, so the replay's "flagged" check is skipped and an
    # infinite Jacobian comes back silently. Unjitted, the same Jacobian warns (checked below).
    n = 256
    f = lambda A, B, x: A @ (B @ x)
    J = jx.jit(jx.jacobian(f, argnums=2))
    rng = _rng(0)
    A, B, x = rng.standard_normal((n, n)), rng.standard_normal((n, n)), rng.standard_normal(n)
    J(A, B, x)
    for i, j in [(0, 0), (n // 2, n // 3), (n - 1, n - 1)]:  # where the inf lands: in each part of the GEMM
        A2, B2 = A.copy(), B.copy()
        A2[i, :], B2[:, j] = 1e200, 1e200
        _, plain = nonfinite_warnings(lambda: jx.jacobian(f, argnums=2)(A2, B2, x))
        assert plain, "the unjitted Jacobian warns"
        out, ws = nonfinite_warnings(lambda: J(A2, B2, x + 1.0))
        assert np.isinf(out[i, j])
        assert ws, f"no NonFiniteWarning for the replayed Jacobian whose entry {(i, j)} overflowed to inf"


def test_a_nested_jacobian_is_differentiated_through_on_every_hessian_route():
    # (first found refused, with advice that failed the same way; the landing now has a form)
    jax, jnp = _jax()
    f = lambda x: np.sum(jx.jacobian(lambda u: np.tanh(u) * u)(x))
    jf = lambda x: jnp.sum(jax.jacobian(lambda u: jnp.tanh(u) * u)(x))
    x = np.array([0.3, -0.5, 1.0])
    want = jax.hessian(jf)(x)
    for method in ("factored", "explicit", "hvp", "numeric"):
        np.testing.assert_allclose(jx.hessian(f, method=method)(x), want, rtol=1e-6, atol=1e-8, err_msg=method)
    np.testing.assert_allclose(jx.jacobian(f, method="numeric")(x), jax.grad(jf)(x), rtol=1e-6, atol=1e-8)


# ============================================================================ passing checks kept
def test_has_aux_nested_outputs_and_tuple_argnums_nest_as_jax():
    jax, jnp = _jax()
    f = lambda x, y: ((np.sin(x) * y[0], {"a": x * y}), [np.sum(x)])
    jf = lambda x, y: ((jnp.sin(x) * y[0], {"a": x * y}), [jnp.sum(x)])
    J = jx.jit(jx.jacobian(f, argnums=(0, 1), has_aux=True))
    J(np.ones(3), np.ones(3))
    x, y = _rng(1).standard_normal((2, 3))
    close_trees(J(x, y), jax.jacobian(jf, argnums=(0, 1), has_aux=True)(x, y))


@pytest.mark.parametrize("argnums", [0, (0,), (1, 0)])
def test_dict_argument_and_tuple_output_nest_as_jax(argnums):
    jax, jnp = _jax()
    f = lambda p, y: ({"a": np.sin(p["w"]) * y[0]}, np.sum(y ** 3) * p["c"])
    jf = lambda p, y: ({"a": jnp.sin(p["w"]) * y[0]}, jnp.sum(y ** 3) * p["c"])
    J = jx.jit(jx.jacobian(f, argnums=argnums))
    J({"w": np.ones(2), "c": np.array(1.0)}, np.ones(2))
    p, y = {"w": np.array([0.4, -1.2]), "c": np.array(0.7)}, np.array([1.5, -0.3])
    close_trees(J(p, y), jax.jacobian(jf, argnums=argnums)(p, y))


def test_hessian_of_a_dict_of_scalar_outputs_with_dict_argument_and_tuple_argnums():
    jax, jnp = _jax()
    f = lambda p, y: {"a": np.sum(np.sin(p["w"]) * y), "b": [np.sum(y ** 3) * p["c"]]}
    jf = lambda p, y: {"a": jnp.sum(jnp.sin(p["w"]) * y), "b": [jnp.sum(y ** 3) * p["c"]]}
    H = jx.jit(jx.hessian(f, argnums=(0, 1)))
    H({"w": np.ones(2), "c": np.array(1.0)}, np.ones(2))
    p, y = {"w": np.array([0.4, -1.2]), "c": np.array(0.7)}, np.array([1.5, -0.3])
    close_trees(H(p, y), jax.hessian(jf, argnums=(0, 1))(p, y))


@pytest.mark.parametrize("kind", ["jacobian-vector", "jacobian-scalar", "hessian", "output-is-other-arg"])
def test_arguments_f_does_not_use_give_zeros_of_jax_shapes(kind):
    jax, jnp = _jax()
    f, jf, T, JT = {
        "jacobian-vector": (lambda x, y: np.sin(x), lambda x, y: jnp.sin(x), jx.jacobian, jax.jacobian),
        "jacobian-scalar": (lambda x, y: np.sum(np.sin(x)), lambda x, y: jnp.sum(jnp.sin(x)), jx.jacobian, jax.jacobian),
        "hessian": (lambda x, y: np.sum(np.sin(x)), lambda x, y: jnp.sum(jnp.sin(x)), jx.hessian, jax.hessian),
        "output-is-other-arg": (lambda x, y: np.sum(y ** 2), lambda x, y: jnp.sum(y ** 2), jx.hessian, jax.hessian),
    }[kind]
    J = jx.jit(T(f, argnums=(0, 1)))
    J(np.ones(3), np.ones((2, 2)))
    x, y = _rng(2).standard_normal(3), _rng(3).standard_normal((2, 2))
    close_trees(J(x, y), JT(jf, argnums=(0, 1))(x, y))


def test_outputs_that_are_the_input_or_constants():
    jax, jnp = _jax()
    f = lambda x: (x, np.ones(2), 3.0 * np.ones((2, 2)), 2.0)
    jf = lambda x: (x, jnp.ones(2), 3.0 * jnp.ones((2, 2)), 2.0)
    J = jx.jit(jx.jacobian(f))
    J(np.ones(3))
    x = _rng(4).standard_normal(3)
    close_trees(J(x), jax.jacobian(jf)(x))
    H = jx.jit(jx.hessian(lambda x: (np.sum(x), 1.0)))
    H(np.ones(3))
    close_trees(H(x), jax.hessian(lambda x: (jnp.sum(x), 1.0))(x))


@pytest.mark.parametrize("case", ["indep", "ident", "quad", "linear", "constout", "H_indep"])
def test_a_result_fixed_at_the_trace_is_not_corrupted_by_the_caller_writing_to_it(case):
    A = np.array([[1.0, 2.0], [0.0, 3.0]])
    J = {"indep": jx.jit(jx.jacobian(lambda x, y: np.sin(x), argnums=1)),
         "ident": jx.jit(jx.jacobian(lambda x, y: x)),
         "quad": jx.jit(jx.hessian(lambda x, y: x @ (A @ x))),
         "linear": jx.jit(jx.jacobian(lambda x, y: A @ x)),
         "constout": jx.jit(jx.jacobian(lambda x, y: np.ones(2))),
         "H_indep": jx.jit(jx.hessian(lambda x, y: np.sum(np.sin(x)), argnums=1))}[case]
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    r = J(x, y)
    before = r.copy()
    r[...] = 99.0
    np.testing.assert_array_equal(J(x + 1, y + 1), before)


def _attention(Wq, X, Wk, Wv, softmax):
    S = (X @ Wq) @ (X @ Wk).T
    return softmax(S) @ (X @ Wv)


def _np_softmax(S):
    E = np.exp(S - np.max(S, axis=1, keepdims=True))
    return E / np.sum(E, axis=1, keepdims=True)


def test_attention_jacobian_wrt_wq_with_shared_factors_replays_on_new_data():
    jax, jnp = _jax()
    f = lambda Wq, X, Wk, Wv: _attention(Wq, X, Wk, Wv, _np_softmax)
    jf = lambda Wq, X, Wk, Wv: _attention(Wq, X, Wk, Wv, lambda S: jax.nn.softmax(S, axis=1))
    shapes = [(3, 2), (4, 3), (3, 2), (3, 2)]
    J = jx.jit(jx.jacobian(f))
    J(*[_rng(5).standard_normal(s) for s in shapes])
    assert "land_products" in str(J.program(*[np.ones(s) for s in shapes]))
    for seed in (6, 7, 8):
        args = [_rng(seed + 10 * k).standard_normal(s) for k, s in enumerate(shapes)]
        close_trees(J(*args), jax.jacobian(jf)(*args))
    assert J.traces == 1


def test_attention_with_wq_on_both_sides_replays_on_new_data():
    jax, jnp = _jax()
    f = lambda Wq, X: jx.softmax((X @ Wq) @ (X @ Wq).T, axis=1) @ X
    jf = lambda Wq, X: jax.nn.softmax((X @ Wq) @ (X @ Wq).T, axis=1) @ X
    J = jx.jit(jx.jacobian(f))
    J(np.ones((3, 2)), np.ones((4, 3)))
    Wq, X = _rng(9).standard_normal((3, 2)), _rng(10).standard_normal((4, 3))
    close_trees(J(Wq, X), jax.jacobian(jf)(Wq, X))


_IDX = np.array([2, 0, 2, 1])
_CASES = {
    "relu": (lambda x: np.maximum(x, 0) * x, lambda x: jnp.maximum(x, 0) * x, [(5,)]),
    "gather-dup": (lambda x: x[_IDX] * x[_IDX[::-1]], lambda x: x[_IDX] * x[_IDX[::-1]], [(3,)]),
    "gather-2d": (lambda x: x[_IDX, :] ** 2, lambda x: x[_IDX, :] ** 2, [(3, 2)]),
    "take": (lambda x: np.take(x, _IDX) * np.sum(x), lambda x: jnp.take(x, _IDX) * jnp.sum(x), [(3,)]),
    "clip": (lambda x: np.clip(x, -0.5, 0.5) * x, lambda x: jnp.clip(x, -0.5, 0.5) * x, [(5,)]),
    "abs-max": (lambda x: np.abs(x) * np.max(x, axis=0), lambda x: jnp.abs(x) * jnp.max(x, axis=0), [(3, 2)]),
    "sort": (lambda x: np.sort(x, axis=0) * x, lambda x: jnp.sort(x, axis=0) * x, [(3, 2)]),
    "reshape-T-broadcast": (
        lambda x: np.broadcast_to(np.tanh(x.reshape(3, 2).T)[:, None, :], (2, 4, 3)).reshape(6, 4) ** 2,
        lambda x: jnp.broadcast_to(jnp.tanh(x.reshape(3, 2).T)[:, None, :], (2, 4, 3)).reshape(6, 4) ** 2, [(6,)]),
    "einsum-diag": (lambda A: np.einsum("ii->i", A) * np.sin(A[0]), lambda A: jnp.einsum("ii->i", A) * jnp.sin(A[0]),
                    [(3, 3)]),
    "einsum-trace": (lambda A: np.einsum("ii", A @ A) * A, lambda A: jnp.einsum("ii", A @ A) * A, [(3, 3)]),
    "einsum-iij": (lambda A: np.einsum("iij->ij", A) ** 2, lambda A: jnp.einsum("iij->ij", A) ** 2, [(2, 2, 3)]),
    "einsum-ii,i": (lambda A, x: np.einsum("ii,i->i", A, x) * x, lambda A, x: jnp.einsum("ii,i->i", A, x) * x,
                    [(3, 3), (3,)]),
    "inv": (lambda A: np.linalg.inv(A) @ A.T, lambda A: jnp.linalg.inv(A) @ A.T, [(3, 3)]),
    "det": (lambda A: np.linalg.det(A) * A, lambda A: jnp.linalg.det(A) * A, [(3, 3)]),
    "solve": (lambda A, b: np.linalg.solve(A, b) * b, lambda A, b: jnp.linalg.solve(A, b) * b, [(3, 3), (3,)]),
    "0d": (lambda x: np.sin(x) * x, lambda x: jnp.sin(x) * x, [()]),
    "1x1": (lambda x: np.tanh(x @ x), lambda x: jnp.tanh(x @ x), [(1, 1)]),
}


@pytest.mark.parametrize("name", sorted(set(_CASES) - {"take", "1x1", "gather-2d"}))  # (JAX's time)
def test_jacobian_replays_match_jax(name):
    jax, jnp = _jax()
    f, jf, shapes = _CASES[name]
    J = jx.jit(jx.jacobian(f, argnums=tuple(range(len(shapes)))))
    J(*[_rng(11 + k).standard_normal(s) for k, s in enumerate(shapes)])
    args = [_rng(21 + k).standard_normal(s) for k, s in enumerate(shapes)]  # other signs, argmax, order
    close_trees(J(*args), jax.jacobian(jf, argnums=tuple(range(len(shapes))))(*args))


@pytest.mark.parametrize("name", ["gather-dup", "sort", "0d"])  # (JAX's time)
def test_hessian_replays_match_jax(name):
    jax, jnp = _jax()
    f, jf, shapes = _CASES[name]
    nums = tuple(range(len(shapes)))
    H = jx.jit(jx.hessian(lambda *a: np.sum(f(*a) ** 2), argnums=nums))
    H(*[_rng(11 + k).standard_normal(s) for k, s in enumerate(shapes)])
    args = [_rng(21 + k).standard_normal(s) for k, s in enumerate(shapes)]
    close_trees(H(*args), jax.hessian(lambda *a: jnp.sum(jf(*a) ** 2), argnums=nums)(*args), atol=1e-8)


@pytest.mark.parametrize("name", ["prod-one-zero", "prod-two-zeros", "cumprod-zero", "maximum-tie", "relu-0",
                                  "clip-edges", "bool-mask", "fancy-2d", "at-set", "at-add", "norm-1", "norm-inf"])
def test_first_order_replays_across_kinks_and_zeros(name):
    jax, jnp = _jax()
    mask, idx = np.array([True, False, True, True]), np.array([1, 3, 1])
    f, x0, x1, ref = {
        "prod-one-zero": (lambda x: np.prod(x) * x, np.arange(1.0, 5.0), np.array([1.0, 0.0, 3.0, 4.0]),
                          lambda x: jnp.prod(x) * x),
        "prod-two-zeros": (lambda x: np.prod(x) * x, np.arange(1.0, 5.0), np.array([0.0, 0.0, 3.0, 4.0]),
                           lambda x: jnp.prod(x) * x),
        "cumprod-zero": (lambda x: np.cumprod(x), np.arange(1.0, 5.0), np.array([1.0, 0.0, 3.0, 4.0]),
                         lambda x: jnp.cumprod(x)),
        "maximum-tie": (lambda x: np.maximum(x, 0.5), np.arange(1.0, 5.0), np.array([0.5, 0.0, 3.0, 0.5]), None),
        "relu-0": (lambda x: jx.relu(x) * x, np.arange(1.0, 5.0), np.array([0.0, -1.0, 3.0, 0.0]), None),
        "clip-edges": (lambda x: np.clip(x, -1, 1) * x, np.array([0.1, 2.0, 3.0, 4.0]), np.array([-1.0, 1.0, 0.3, 5.0]),
                       None),
        "bool-mask": (lambda x: x[mask] * np.sum(x), np.ones(4), np.array([0.3, -1.0, 2.0, 0.5]), None),
        "fancy-2d": (lambda x: x[[0, 1], [1, 2]] * x[0, 0], np.ones((2, 3)), _rng(30).standard_normal((2, 3)), None),
        "at-set": (lambda x: x.at[idx].set(x[0] ** 2) * x, np.ones(4), np.array([0.3, -1.0, 2.0, 0.5]), None),
        "at-add": (lambda x: x.at[idx].add(x[0] ** 2) * x, np.ones(4), np.array([0.3, -1.0, 2.0, 0.5]), None),
        "norm-1": (lambda x: np.linalg.norm(x, 1) * x, np.array([1.0, 2.0, 3.0]), np.array([-1.0, 2.0, -3.0]), None),
        "norm-inf": (lambda x: np.linalg.norm(x, np.inf) * x, np.array([1.0, 2.0, 3.0]), np.array([-4.0, 2.0, -3.0]),
                     None),
    }[name]
    J = jx.jit(jx.jacobian(f))
    J(x0)
    want = jax.jacobian(ref)(x1) if ref is not None else jx.jacobian(f, method="vjp")(x1)
    close_trees(J(x1), want, atol=1e-12)


def test_float32_end_to_end_values_and_dtypes():
    X = _rng(31).standard_normal((4, 3)).astype(np.float32)
    f = lambda W: np.tanh((X @ W) * np.max(X @ W, axis=0))
    W = _rng(32).standard_normal((3, 2)).astype(np.float32)
    J = jx.jit(jx.jacobian(f))
    J(np.ones((3, 2), np.float32))
    r = J(W)
    assert r.dtype == np.float32
    want = jx.jacobian(lambda W: np.tanh((X.astype(float) @ W) * np.max(X.astype(float) @ W, axis=0)),
                       method="vjp")(W.astype(float))  # float64, the hand-written VJPs
    np.testing.assert_allclose(r, want, rtol=1e-4, atol=1e-5)
    H = jx.jit(jx.hessian(lambda w: np.sum(np.tanh(w * w[0]) ** 2)))
    H(np.ones(3, np.float32))
    w = W[:, 0].copy()
    r = H(w)
    assert r.dtype == np.float32
    want = jx.hessian(lambda w: np.sum(np.tanh(w * w[0]) ** 2), method="numeric")(w.astype(float))
    np.testing.assert_allclose(r, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", ["fortran", "negative-strides", "read-only"])
def test_replays_on_non_contiguous_and_read_only_inputs(layout):
    jax, jnp = _jax()
    f = lambda A, B: jx.softmax(A @ B.T @ A, axis=1) @ np.linalg.inv(B + 3 * np.eye(3))
    jf = lambda A, B: jax.nn.softmax(A @ B.T @ A, axis=1) @ jnp.linalg.inv(B + 3 * jnp.eye(3))
    J = jx.jit(jx.jacobian(f, argnums=(0, 1)))
    J(np.ones((3, 3)) + np.eye(3), np.ones((3, 3)))
    A0, B0 = _rng(33).standard_normal((3, 3)), _rng(34).standard_normal((3, 3))
    A, B = {"fortran": lambda: (np.asfortranarray(A0), np.asfortranarray(B0)),
            "negative-strides": lambda: (A0[::-1].copy()[::-1], B0[:, ::-1].copy()[:, ::-1]),
            "read-only": lambda: (A0.copy(), B0.copy())}[layout]()
    if layout == "read-only":
        A.flags.writeable = B.flags.writeable = False
    close_trees(J(A, B), jax.jacobian(jf, argnums=(0, 1))(A0, B0))
    assert J.traces == 1


def test_many_replays_hold_no_memory_and_add_no_traces():
    H = jx.jit(jx.hessian(lambda x: np.sum(np.tanh(x) ** 3)))
    xs = [_rng(40 + k).standard_normal(50) for k in range(5)]
    for i in range(50):
        H(xs[i % 5])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(500):
            H(xs[i % 5])
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, grown
    assert H.traces == 1


def test_a_plan_past_max_products_is_refused_by_name_and_leaves_nothing_behind():
    def f(x):
        for _ in range(8):
            x = x * np.sin(x) + x
        return np.outer(x, x)

    J = jx.jit(jx.jacobian(f))
    with pytest.raises(ValueError, match="exceed max_products.*dense route cannot be replayed"):
        J(np.ones(3))
    assert not is_tracing() and not active_vars() and J.traces == 0
    x = np.array([0.3, -0.2, 0.1])
    assert jx.jacobian(f)(x).shape == (3, 3, 3)  # unjitted, the dense route
    g = jx.jit(jx.jacobian(np.sin))
    np.testing.assert_allclose(g(x), np.diag(np.cos(x)))


def test_a_singular_replay_then_a_good_one():
    jax, jnp = _jax()
    J = jx.jit(jx.jacobian(lambda A: np.linalg.inv(A)))
    J(2 * np.eye(2))
    with pytest.raises(np.linalg.LinAlgError, match="inv"):
        J(np.ones((2, 2)))
    assert np.geterrcall() is None and np.geterr()["over"] == "warn"
    A = _rng(50).standard_normal((2, 2))
    close_trees(J(A), jax.jacobian(jnp.linalg.inv)(A))
    assert J.traces == 1


def test_an_exception_in_the_trace_then_a_good_call():
    calls = [0]

    def f(x):
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom")
        return np.sin(x)

    J = jx.jit(jx.jacobian(f))
    with pytest.raises(RuntimeError):
        J(np.ones(3))
    assert not is_tracing() and not active_vars()
    x = np.array([0.3, -0.2, 0.1])
    np.testing.assert_allclose(J(x), np.diag(np.cos(x)))
    assert isinstance(jx.jacobian(np.sin)(x), np.ndarray)


def test_jacobian_of_grad_and_closures_and_products_with_the_jacobian_inside_jit():
    jax, jnp = _jax()
    f = lambda x: np.sum(np.tanh(x) ** 3 * np.max(x))
    jf = lambda x: jnp.sum(jnp.tanh(x) ** 3 * jnp.max(x))
    J = jx.jit(jx.jacobian(jx.grad(f)))
    J(np.arange(1.0, 4.0))
    x, a, v = _rng(60).standard_normal((3, 3))
    close_trees(J(x), jax.hessian(jf)(x), atol=1e-12)
    g = jx.jit(lambda x, a: jx.jacobian(lambda u: u * a + np.sin(a) * u ** 2)(x))
    g(np.ones(3), np.ones(3))
    close_trees(g(x, a), jax.jacobian(lambda u: u * a + jnp.sin(a) * u ** 2)(x), atol=1e-12)
    p = jx.jit(lambda x, v: jx.jacobian(lambda u: np.tanh(u) * np.sum(u))(x) @ v)
    p(np.ones(3), np.ones(3))
    close_trees(p(x, v), jax.jacobian(lambda u: jnp.tanh(u) * jnp.sum(u))(x) @ v, atol=1e-12)


# ---------------------------------------------------------------------------- benchmarks/machine.py:fresh_fill
def _minflt():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _rss():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize("nbytes", [800_000, 16 << 20])  # below and above the huge-page threshold (4 MiB)
def test_fresh_fill_faults_in_zeroed_pages_on_every_call(nbytes):
    from benchmarks import machine

    n = nbytes // 8
    machine.fresh_fill((n,))
    buf, a = machine._MAPS[n]
    assert not np.any(a)  # handed back: the next reader sees zero-filled pages
    page = mmap.PAGESIZE if nbytes < 4 << 20 else 2 << 20
    for _ in range(3):
        f0 = _minflt()
        machine.fresh_fill((n,))
        assert _minflt() - f0 >= 0.9 * nbytes / page  # every page faulted in again
        assert not np.any(a)


def test_fresh_fill_is_slower_than_refilling_hot_memory_and_does_not_grow():
    from benchmarks import machine

    n = (32 << 20) // 8
    hot = np.zeros(n)

    def best(fn):
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    machine.fresh_fill((n,))
    hot.fill(1.0)
    r0 = _rss()
    fresh = best(lambda: machine.fresh_fill((n,)))
    warm = best(lambda: hot.fill(1.0))
    assert fresh > 1.2 * warm, (fresh, warm)
    maps = len(machine._MAPS)
    for _ in range(20):
        machine.fresh_fill((n,))
    assert len(machine._MAPS) == maps
    assert _rss() - r0 < 8 << 20  # the mapping's pages went back
