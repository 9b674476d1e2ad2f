"""jx.jit: a trace recorded once and replayed, checked against routes that never replay.

Every replay runs on *new* data (drawn with another seed than the trace's), so a
value frozen into the program by mistake shows up as a wrong number:

* forwards against the op table's numpy references, and every einsum of the
  einsum table against ``np.einsum``;
* gradients (the forms' derived VJPs, replayed) against the hand-written VJPs'
  route, which shares no code with the forms;
* second derivatives (grad of grad, Hessian-vector products) against closed forms.
"""
import warnings

import numpy as np
import pytest

import jacobians as jx
from jacobians.jit import passes_through
from jacobians.node import ConcretizationError
from jacobians.second_order import SecondOrderUnavailable

from einsum_cases import CASES as EINSUM_CASES
from op_cases import CASES, draw


def _first(y):
    return y[0] if isinstance(y, (list, tuple)) else y


REFUSED = {"logdet-slogdet": "slogdet's sign"}  # a number out of the graph: refused while tracing, never frozen


def _traced(f, case):
    """f traced on the case's data drawn with seed 0; the data to replay it on (seed 1), or None where the
    op is refused while tracing (checked here)."""
    trace = [draw(s, case.domain, np.random.default_rng(0)) for s in case.shapes]
    if case.id in REFUSED:
        with pytest.raises(ConcretizationError, match=REFUSED[case.id]):
            f(*trace)
        return None
    f(*trace)  # every op: a form that compares values or is array-only numpy is replayed on arrays
    return [draw(s, case.domain, np.random.default_rng(1)) for s in case.shapes]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_op_replays_its_forward_on_new_data(case):
    f = jx.jit(lambda *xs: _first(case.call(*xs)))
    new = _traced(f, case)
    if new is None:
        return
    got = f(*new)
    assert f.traces == 1
    np.testing.assert_allclose(got, _first(case.reference(*new)), rtol=1e-10, atol=1e-12, err_msg=case.id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_op_replays_its_gradient_against_the_hand_written_vjps(case):
    def loss(*xs):
        y = _first(case.call(*xs))
        return jx.sum(jx.sin(y)) if y.size > 1 else jx.sin(y)

    g = jx.jit(jx.grad(loss))
    new = _traced(g, case)
    if new is None:
        return
    got = g(*new)
    x = [jx.var(a, name=f"x{i}") for i, a in enumerate(new)]
    want = jx.grad(loss(*x), x[0], method="vjp")
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11, err_msg=case.id)
    assert g.traces == 1


@pytest.mark.parametrize("case", EINSUM_CASES, ids=lambda c: c.id)
def test_every_einsum_replays_against_np_einsum(case):
    f = jx.jit(lambda *xs: jx.einsum(case.eq, *[xs[j] for j in case.leaf_of]))
    rng0, rng1 = np.random.default_rng(0), np.random.default_rng(1)
    f(*[rng0.standard_normal(s) for s in case.leaf_shapes])
    new = [rng1.standard_normal(s) for s in case.leaf_shapes]
    np.testing.assert_allclose(f(*new), np.einsum(case.eq, *[new[j] for j in case.leaf_of]), rtol=1e-12,
                               atol=1e-12)


def _seed1_loss(X):
    return jx.fro((X @ X.T) @ X)


def _seed1_gradient(X):  # Frobenius calculus, by hand
    W = X @ X.T
    G = W @ X / np.linalg.norm(W @ X)
    return G @ (X.T @ X) + X @ (G.T @ X) + W @ G


def test_a_gradient_is_traced_once_per_signature_and_replayed():
    g = jx.jit(jx.grad(_seed1_loss))
    rng = np.random.default_rng(0)
    for _ in range(3):
        X = rng.standard_normal((4, 3))
        np.testing.assert_allclose(g(X), _seed1_gradient(X), rtol=1e-12)
    assert g.traces == 1
    X5 = rng.standard_normal((5, 3))  # a new shape: a new trace
    np.testing.assert_allclose(g(X5), _seed1_gradient(X5), rtol=1e-12)
    X32 = X5.astype(np.float32)  # a new dtype: a new trace, and float32 stays float32
    assert g(X32).dtype == np.float32
    assert g.traces == 3


def test_the_replayed_gradient_keeps_only_real_work():
    """Steps counted, not timed: the gradient of ‖(X Xᵀ) X‖ replays as 3 forward products, the norm, its
    inverse guarded at 0 (sign s, s / (y + 1 − s): 4 scalar steps), the scaling of Y, 4 VJP products, one
    transpose and 2 sums; reshapes to a node's own shape, multiplies by a constant 1 and work on constants
    only are gone."""
    prog = jx.jit(jx.grad(_seed1_loss)).program(np.ones((4, 3)))
    ops = [name.split(" ")[0] for name in prog.names]
    assert len(prog) <= 16, str(prog)
    assert not {"reshape", "broadcast_to"} & set(ops), str(prog)
    assert ops.count("add") == 3  # the two sums of pulled-back products and the guard's y + (1 − s)


def test_identities_are_read_from_the_op_never_from_values():
    x = jx.var(np.ones((2, 2)))
    relu = jx.maximum(x, 0.0)  # equal to x at the trace, but not an identity
    assert passes_through(relu, {x.id}) is None
    assert passes_through(jx.reshape(x, (2, 2)), {x.id}) is x
    assert passes_through(jx.reshape(x, (4,)), {x.id}) is None
    w = jx.var(np.ones((2, 2)))
    assert passes_through(x * w, {x.id, w.id}) is None  # a varying 1 (an input) is not a constant
    assert passes_through(x * np.ones((2, 2)), {x.id}) is x
    assert passes_through(x * np.ones((3, 2, 2)), {x.id}) is None  # broadcasts: a new shape
    assert passes_through(jx.einsum("ab,ab->ab", np.ones((2, 2)), x), {x.id}) is x
    assert passes_through(jx.einsum("ab,ba->ab", np.ones((2, 2)), x), {x.id}) is None  # a transpose


def test_pytrees_kwargs_aux_and_static_arguments():
    def loss(params, X, *, scale):
        r = jx.tanh(X @ params["W"] + params["b"])
        return scale * jx.sum(r * r), {"r": r}

    vg = jx.jit(jx.value_and_grad(loss, has_aux=True))
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    X = rng.standard_normal((4, 3))
    (value, aux), grads = vg(params, X, scale=np.array(2.0))
    r = np.tanh(X @ params["W"] + params["b"])
    np.testing.assert_allclose(value, 2 * np.sum(r * r))
    np.testing.assert_allclose(aux["r"], r)
    dz = 4 * r * (1 - r * r)
    np.testing.assert_allclose(grads["W"], X.T @ dz)
    np.testing.assert_allclose(grads["b"], dz.sum(0))

    @jx.jit(static_argnums=1)
    def power_sum(x, k):
        return jx.sum(x ** k)

    x = np.array([1.0, 2.0])
    assert power_sum(x, 2) == 5.0 and power_sum(x, 3) == 9.0 and power_sum.traces == 2
    with pytest.raises(TypeError, match="static argument 1 .* not hashable"):
        power_sum(x, [2])


def test_a_value_taken_out_of_the_graph_while_tracing_is_refused():
    def branchy(x):
        s = jx.sum(x)
        return s * 2 if s.item() > 0 else s  # a branch jit would freeze

    with pytest.raises(ConcretizationError, match="jit is tracing.*static_argnums"):
        jx.jit(branchy)(np.ones(2))
    assert jx.grad(branchy)(np.ones(2)).tolist() == [2.0, 2.0]  # without jit, value-dependent Python is fine


def test_inputs_follow_var_rules_and_outputs_are_the_callers_own():
    f = jx.jit(lambda x: x)
    x = np.arange(3.0)
    out = f(x)
    out[0] = 99.0
    assert x[0] == 0.0  # a copy, never the caller's input
    assert f(np.array([1, 2])).dtype == np.float64  # integers become float64, as jx.var makes them
    with pytest.raises(ValueError, match=r"argument \[0\]\[0\].*NaN"):
        f(np.array([1.0, np.nan]))
    g = jx.jit(lambda x: jx.log(x))
    g(np.ones(2))
    with pytest.warns(jx.NonFiniteWarning, match="output 0 is non-finite"):
        g(np.array([1.0, -1.0]))


def test_a_singular_matrix_in_a_replay_names_the_op():
    f = jx.jit(lambda A: jx.inv(A))
    f(np.eye(2))
    with pytest.raises(np.linalg.LinAlgError, match=r"inv on \(2, 2\) failed in the replay"):
        f(np.zeros((2, 2)))


def test_a_replay_is_priced_against_the_memory_limit_in_force():
    f = jx.jit(lambda x: x * 2.0)
    f(np.ones((1100, 1000)))
    with jx.memory_limit(1 << 20):
        with pytest.raises(jx.JacobianTooLarge):
            f(np.ones((1100, 1000)))


def test_grad_of_grad_is_the_second_derivative():
    d2 = jx.grad(jx.grad(lambda x: jx.sum(jx.sin(x) * x)))  # f'' = 2 cos x − x sin x, for a scalar x
    for x in (0.3, 1.7):
        np.testing.assert_allclose(d2(x), 2 * np.cos(x) - x * np.sin(x), rtol=1e-12)


def test_a_jitted_hessian_vector_product_is_a_times_v_plus_a_transpose_times_v():
    def hvp(x, A, v):  # reverse over reverse: d/dx (∇f(x) · v)
        return jx.grad(lambda x: jx.sum(jx.grad(lambda x: x @ (A @ x))(x) * v))(x)

    f = jx.jit(hvp)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x, A, v = rng.standard_normal(4), rng.standard_normal((4, 4)), rng.standard_normal(4)
        np.testing.assert_allclose(f(x, A, v), (A + A.T) @ v, rtol=1e-12)
    assert f.traces == 1


def test_transforms_that_return_arrays_refuse_nodes_inside_jit():
    with pytest.raises(ConcretizationError, match=r"jx.jvp\(f, ...\) inside a function that jx.jit is tracing"):
        jx.jit(lambda x: jx.jvp(lambda x: x ** 3, (x,), (np.ones(2),))[1])(np.ones(2))
    with pytest.raises(ConcretizationError, match=r"jx.grad\(node, wrt\)"):
        jx.jit(lambda x: jx.grad(jx.sum(x ** 3), x))(np.ones(2))
    with pytest.raises(ValueError, match="method='vjp' cannot build one"):
        jx.jit(jx.grad(lambda x: jx.sum(x ** 3), method="vjp"))(np.ones(2))


def test_the_printed_program_lists_its_steps():
    text = str(jx.jit(lambda x: jx.sum(jx.tanh(x))).program(np.ones(3)))
    assert "1 input(s)" in text and "tanh(%0)" in text and "2 step(s)" in text


def test_no_warning_for_finite_replays():
    g = jx.jit(jx.grad(_seed1_loss))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g(np.ones((3, 3)) + np.eye(3))


def test_a_mask_from_a_comparison_inside_jit_is_refused():
    with pytest.raises(ConcretizationError, match="comparison.*jx.maximum"):
        jx.jit(lambda x: np.where(x > 0, x, 0.1 * x))(np.ones(2))
    with pytest.raises(ConcretizationError, match="argmax"):
        jx.jit(lambda x: x[x.argmax()])(np.ones(2))


def test_second_derivatives_through_a_replayed_comparison_are_refused_not_wrong():
    """relu's derivative compares values: under jit it is recomputed on arrays, so grad of grad through it says
    so; abs's sign is a piecewise-constant factor, whose derivative (zero) the replay keeps."""
    with pytest.raises(SecondOrderUnavailable, match="relu.*without jit"):
        jx.jit(jx.grad(jx.grad(lambda x: jx.relu(x) * x)))(np.array(1.0))
    d2 = jx.jit(jx.grad(jx.grad(lambda x: jx.abs(x) * x)))  # f' = 2|x|, f'' = 2 sign x
    assert d2(np.array(0.5)) == 2.0 and d2(np.array(-1.5)) == -2.0 and d2.traces == 1
