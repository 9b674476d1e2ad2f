"""Review of jx.jit (commit 23e8f38): each test asserts the correct behaviour. All of them failed on that
commit (frozen kink masks, slogdet's sign, transforms on arrays closing over traced nodes, jit of jit, static
arguments by keyword, the tracing flag shared across threads, shared or aliased outputs); they are kept as
regression tests.

Every replay runs on data other than the trace's, and every expected value comes from a route that never
replays: numpy closed forms or ``jx.grad(l, x, method="vjp")`` on a graph built without jit.
"""
import collections
import threading
import warnings

import numpy as np
import pytest

import jacobians as jx
from jacobians.node import ConcretizationError


def _vjp_grad(loss, *arrays, wrt=0):
    xs = [jx.var(a) for a in arrays]
    return jx.grad(loss(*xs), xs[wrt], method="vjp")


def _replay(fun, trace_args, new_args):
    """fun jitted, traced on trace_args, replayed on new_args (non-finite warnings silenced: the number is checked)."""
    f = jx.jit(fun)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jx.NonFiniteWarning)
        f(*trace_args)
        out = f(*new_args)
    assert f.traces == 1
    return out


# ---------------------------------------------------------------------------------------------------------------
# 1. Masks taken from the trace's values inside node forms are frozen into the program (silently wrong gradients).
#    reductions._masked_ratio (std, norm ord=2) and arithmetic._over (hypot, arctan2) build `num / den * mask` with
#    `mask = den.value > 0` as a constant node; linalg._fro_inverse picks `1/y` or 0 by `y.value != 0` at the trace.

KINK_CASES = {
    # name: (loss, trace data with a kink, new data without one)
    "norm-rows": (lambda x: jx.sum(jx.norm(x, axis=1)),
                  [np.array([[0.0, 0.0], [1.0, 1.0]])], [np.array([[3.0, 4.0], [1.0, 1.0]])]),
    "norm-all": (lambda x: jx.norm(x), [np.zeros(3)], [np.array([1.0, 2.0, 2.0])]),
    "std-rows": (lambda x: jx.sum(jx.std(x, axis=1)),
                 [np.array([[1.0, 1.0], [1.0, 2.0]])], [np.array([[1.0, 3.0], [1.0, 2.0]])]),
    "hypot": (lambda a, b: jx.sum(jx.hypot(a, b)),
              [np.array([0.0, 1.0]), np.array([0.0, 1.0])], [np.array([3.0, 1.0]), np.array([4.0, 1.0])]),
    "arctan2": (lambda a, b: jx.sum(jx.arctan2(a, b)),
                [np.array([0.0, 1.0]), np.array([0.0, 1.0])], [np.array([3.0, 1.0]), np.array([4.0, 1.0])]),
}


@pytest.mark.parametrize("name", sorted(KINK_CASES))
def test_a_gradient_traced_at_a_kink_is_right_away_from_it(name):
    loss, trace, new = KINK_CASES[name]
    got = _replay(jx.grad(loss), trace, new)
    np.testing.assert_allclose(got, _vjp_grad(loss, *new), rtol=1e-12, atol=1e-12, err_msg=name)


REPLAY_AT_KINK = {
    # name: (loss, trace data away from the kink, new data at it); the policy there is the subgradient 0
    "fro": (lambda x: jx.fro(x), [np.ones((2, 2))], [np.zeros((2, 2))]),
    "norm-rows": (lambda x: jx.sum(jx.norm(x, axis=1)),
                  [np.array([[3.0, 4.0], [1.0, 1.0]])], [np.array([[0.0, 0.0], [1.0, 1.0]])]),
    "std-rows": (lambda x: jx.sum(jx.std(x, axis=1)),
                 [np.array([[1.0, 3.0], [1.0, 2.0]])], [np.array([[2.0, 2.0], [1.0, 2.0]])]),
    "hypot": (lambda a, b: jx.sum(jx.hypot(a, b)),
              [np.array([3.0, 1.0]), np.array([4.0, 1.0])], [np.array([0.0, 1.0]), np.array([0.0, 1.0])]),
}


@pytest.mark.parametrize("name", sorted(REPLAY_AT_KINK))
def test_a_gradient_replayed_at_a_kink_follows_the_policy_not_nan(name):
    loss, trace, new = REPLAY_AT_KINK[name]
    got = _replay(jx.grad(loss), trace, new)
    want = _vjp_grad(loss, *new)
    assert np.isfinite(want).all()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_hessian_vector_product_traced_at_a_kink_is_right_away_from_it():
    # d/dx (∇‖x‖ · v) = (v − x̂ (x̂·v)) / ‖x‖
    hvp = jx.jit(lambda x, v: jx.grad(lambda x: jx.sum(jx.grad(lambda x: jx.norm(x))(x) * v))(x))
    hvp(np.zeros(3), np.ones(3))
    x, v = np.array([1.0, 2.0, 2.0]), np.array([1.0, 0.0, -1.0])
    n = np.linalg.norm(x)
    np.testing.assert_allclose(hvp(x, v), (v - x / n * (x @ v / n)) / n, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# 2. slogdet's sign is a numpy array computed from the trace's value (linalg.slogdet reads y.parents[0].value):
#    neither refused nor recomputed, it is replayed as a constant.

def test_slogdet_sign_is_not_frozen_at_the_trace():
    A_pos, A_neg = np.diag([2.0, 1.0]), np.diag([-2.0, 1.0])
    f = jx.jit(lambda A: jx.slogdet(A))
    try:
        f(A_pos)
    except ConcretizationError:
        return  # refusing the value read is also correct
    sign, logabs = f(A_neg)
    assert float(sign) == -1.0
    np.testing.assert_allclose(logabs, np.log(2.0))


def test_a_determinant_from_slogdet_has_the_new_sign():
    f = jx.jit(lambda A: jx.slogdet(A)[0] * jx.exp(jx.slogdet(A)[1]))
    try:
        f(np.eye(2))
    except ConcretizationError:
        return
    np.testing.assert_allclose(f(np.diag([-2.0, 1.0])), -2.0)


# ---------------------------------------------------------------------------------------------------------------
# 3. A transform called on plain arrays inside a trace, whose function closes over the traced inputs, runs the
#    array route (transforms._grad_fn: nodes = has_nodes(args) is False) and reads .value: its result is a frozen
#    numpy constant, with no ConcretizationError.

def test_grad_inside_jit_closing_over_an_input_is_not_frozen():
    f = jx.jit(lambda x: jx.grad(lambda w: jx.sum(w * x))(np.ones(3)))  # d/dw Σ w x = x
    f(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(f(np.array([4.0, 5.0, 6.0])), [4.0, 5.0, 6.0])


def test_value_and_grad_inside_jit_closing_over_an_input_is_not_frozen():
    f = jx.jit(lambda x: x * jx.value_and_grad(lambda w: jx.sum(w * x))(np.ones(2))[0])  # x Σx
    f(np.array([1.0, 2.0]))
    np.testing.assert_allclose(f(np.array([4.0, 5.0])), [36.0, 45.0])


def test_jacobian_inside_jit_closing_over_an_input_is_refused_or_right():
    f = jx.jit(lambda x: jx.jacobian(lambda w: w * x)(np.ones(2)))
    try:
        f(np.array([1.0, 2.0]))
    except (ConcretizationError, TypeError):
        return  # a refusal is fine; a frozen constant is not
    np.testing.assert_allclose(f(np.array([4.0, 5.0])), np.diag([4.0, 5.0]))


# ---------------------------------------------------------------------------------------------------------------
# 4. Composition with a jitted function: jit.Jitted._split refuses node arguments, so grad(jit(f)) and a jitted
#    function called inside another trace crash (JAX inlines them).

def test_grad_of_a_jitted_function():
    h = jx.jit(lambda x: jx.sum(jx.sin(x)))
    x = np.array([0.3, -1.2])
    np.testing.assert_allclose(jx.grad(h)(x), np.cos(x), rtol=1e-12)


def test_a_jitted_function_called_inside_another_trace():
    h = jx.jit(lambda x: jx.sum(x ** 2))
    f = jx.jit(lambda x: h(x) * x)
    f(np.ones(2))
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(f(x), 5.0 * x)


def test_jit_of_a_jitted_function_keeps_its_own_static_argnums():
    # Jitted.__init__ calls functools.update_wrapper(self, fun), which copies fun.__dict__ (the inner Jitted's
    # fun, static_argnums, _cache, ...) over the new object's attributes
    inner = jx.jit(lambda x, k: jx.sum(x ** k))
    outer = jx.jit(inner, static_argnums=1)
    assert outer.static_argnums == (1,)
    np.testing.assert_allclose(outer(np.array([1.0, 2.0]), 3), 9.0)


def test_jit_of_a_callable_object_calls_the_object():
    class Model:  # an ordinary callable whose attributes happen to share names with Jitted's
        def __init__(self):
            self.fun = lambda x: x * 100.0
            self.who = "a model"

        def __call__(self, x):
            return jx.sum(x * 2.0)

    np.testing.assert_allclose(jx.jit(Model())(np.ones(2)), 4.0)


# ---------------------------------------------------------------------------------------------------------------
# 5. static_argnums only looks at positional arguments: a static argument left at its default or passed by
#    keyword raises "static_argnums names argument 1, but the call has 1 positional argument(s)".

def test_a_static_argument_left_at_its_default():
    f = jx.jit(lambda x, k=2: jx.sum(x ** k), static_argnums=1)
    np.testing.assert_allclose(f(np.array([1.0, 2.0])), 5.0)


def test_a_static_argument_passed_by_keyword():
    f = jx.jit(lambda x, k=2: jx.sum(x ** k), static_argnums=1)
    np.testing.assert_allclose(f(np.array([1.0, 2.0]), k=3), 9.0)


# ---------------------------------------------------------------------------------------------------------------
# 6. node._tracing is one process-wide counter: while one thread traces, every other thread's .item(),
#    comparisons and second derivatives behave as if traced (ConcretizationError, SecondOrderUnavailable).

def test_tracing_in_one_thread_does_not_change_another_thread():
    inside, release = threading.Event(), threading.Event()

    def slow(x):
        inside.set()
        release.wait(5)
        return x * 2

    t = threading.Thread(target=lambda: jx.jit(slow)(np.ones(2)))
    t.start()
    try:
        assert inside.wait(5)
        assert jx.sum(jx.var([1.0, 2.0])).item() == 3.0
        assert (jx.var([1.0, 2.0]) > 1.5).tolist() == [False, True]
        H = jx.hessian(lambda x: jx.sum(jx.relu(x) * x))(np.array([1.0, -2.0]))
        np.testing.assert_allclose(H, [[2.0, 0.0], [0.0, 0.0]])
    finally:
        release.set()
        t.join()


# ---------------------------------------------------------------------------------------------------------------
# 7. Aliasing of outputs. Program.run returns a recorded non-node output as the very same object on every call,
#    and outputs from one node (z, z.T, z.reshape) are views of one array.

def test_a_numpy_output_is_not_shared_between_calls():
    f = jx.jit(lambda x: (jx.sum(x), np.zeros(2)))
    first = f(np.ones(2))[1]
    first[0] = 5.0  # the caller owns its output
    np.testing.assert_array_equal(f(np.ones(2))[1], [0.0, 0.0])


def test_outputs_do_not_alias_each_other():
    f = jx.jit(lambda x: (lambda z: (z, z.T))(x * 2.0))
    f(np.ones((2, 3)))
    a, b = f(np.arange(6.0).reshape(2, 3))
    a[0, 1] = -1.0  # writing one output must not change another
    np.testing.assert_array_equal(b, (np.arange(6.0).reshape(2, 3) * 2.0).T)


# ---------------------------------------------------------------------------------------------------------------
# Checked and fine (kept as regression tests): keys and retracing, pytrees, dtypes, argnums, aux, bind.

def test_signatures_kwargs_scalars_and_pytrees_retrace_exactly_when_needed():
    f = jx.jit(lambda x, *, s: jx.sum(x * s))
    assert f(np.ones(2), s=2.0) == 4.0 and f(np.ones(2), s=3.0) == 6.0 and f.traces == 1
    g = jx.jit(lambda x: x * 2)
    g(2.0), g(np.array(3.0)), g(5)  # Python float, 0-d array, int: one float64 signature
    assert g.traces == 1
    assert g(np.float32(2.0)).dtype == np.float32 and g.traces == 2
    g(np.array([2.0]))
    assert g.traces == 3
    NT = collections.namedtuple("NT", "a b")
    h = jx.jit(lambda t: t.a * 2 + (0.0 if t.b is None else t.b))
    np.testing.assert_allclose(h(NT(np.ones(2), None)), [2.0, 2.0])
    np.testing.assert_allclose(h(NT(np.ones(2), np.ones(2))), [3.0, 3.0])
    assert h.traces == 2
    assert type(jx.jit(lambda t: t)(NT(np.ones(1), np.zeros(1)))) is NT


def test_grad_argnums_aux_and_float32_on_new_data():
    rng = np.random.default_rng(3)
    A0, b0, A1, b1 = rng.standard_normal((3, 3)), rng.standard_normal(3), rng.standard_normal((3, 3)), \
        rng.standard_normal(3)

    def loss(A, b):
        y = jx.tanh(A @ b)
        return jx.sum(y ** 2), {"y": y, "n": 3}

    vg = jx.jit(jx.value_and_grad(loss, argnums=(1, 0), has_aux=True))
    vg(A0, b0)
    (value, aux), (gb, gA) = vg(A1, b1)
    y = np.tanh(A1 @ b1)
    np.testing.assert_allclose(value, np.sum(y ** 2))
    np.testing.assert_allclose(aux["y"], y)
    assert aux["n"] == 3
    np.testing.assert_allclose(gb, _vjp_grad(lambda A, b: loss(A, b)[0], A1, b1, wrt=1), rtol=1e-12)
    np.testing.assert_allclose(gA, _vjp_grad(lambda A, b: loss(A, b)[0], A1, b1, wrt=0), rtol=1e-12)
    g32 = jx.jit(jx.grad(lambda x: jx.sum(jx.softmax(x, axis=1) * np.arange(4.0)) + jx.norm(x)))
    g32(A0[:, :2].repeat(2, 1).astype(np.float32))
    assert g32(rng.standard_normal((3, 4)).astype(np.float32)).dtype == np.float32


def test_bound_einsums_match_np_einsum_on_strided_operands():
    from jacobians.kernel import bind

    rng = np.random.default_rng(4)
    cases = [("ij,jk->ki", [(2, 3), (3, 4)]), ("bij,bjk->bki", [(5, 2, 3), (5, 3, 4)]),
             ("bij,jk->kib", [(5, 2, 3), (3, 4)]), ("ij,jk->ik", [(2, 1), (1, 4)]), ("ii->i", [(3, 3)]),
             ("iij,jk->ik", [(3, 3, 2), (2, 4)]), (",ij->ji", [(), (2, 3)]), ("abc,acd->db", [(2, 3, 4), (2, 4, 5)]),
             ("ab,cd->cadb", [(2, 3), (4, 5)]), ("ij,jk,kl->li", [(2, 3), (3, 4), (4, 5)]),
             ("ij,jk->ik", [(0, 3), (3, 4)]), ("jik,kil->jli", [(2, 5, 3), (3, 5, 4)])]
    for eq, shapes in cases:
        xs = [rng.standard_normal(tuple(2 * d for d in s))[tuple(slice(None, None, 2) for _ in s)] for s in shapes]
        np.testing.assert_allclose(bind(eq, shapes)(*xs), np.einsum(eq, *xs), rtol=1e-12, atol=1e-12, err_msg=eq)
