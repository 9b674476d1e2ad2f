"""Every registered op, checked through the one table in op_cases.py."""
import numpy as np
import pytest

import jacobians as jx
from jacobians.check import JacobianMismatch, check_node
from jacobians.form import broadcast_factored
from jacobians.registry import Op, apply
from jacobians.vjp_route import backward

from op_cases import CASES, draw


def _leaves(case, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    arrays = [draw(s, case.domain, rng).astype(dtype) for s in case.shapes]
    return arrays, [jx.var(a, name=f"x{i}") for i, a in enumerate(arrays)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_forward_matches_numpy(case):
    arrays, leaves = _leaves(case)
    y = case.call(*leaves)
    assert y.op.name == case.op
    np.testing.assert_allclose(y.value, case.reference(*arrays), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_jacobian_shape_is_out_plus_in(case):
    _, leaves = _leaves(case)
    y = case.call(*leaves)
    for x in leaves:
        assert jx.jacobian(y, x).shape == y.shape + x.shape


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_jacobian_matches_central_differences(case):
    _, leaves = _leaves(case)
    y = case.call(*leaves)
    for x in leaves:
        J = jx.jacobian(y, x)
        N = jx.jacobian(y, x, method="numeric")
        np.testing.assert_allclose(J, N, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_vjp_matches_contracted_jacobian(case):
    _, leaves = _leaves(case)
    y = case.call(*leaves)
    rng = np.random.default_rng(7)
    for x in leaves:
        g = rng.standard_normal(y.shape)
        J = jx.jacobian(y, x)
        expected = np.tensordot(g, J, axes=y.ndim)
        np.testing.assert_allclose(backward(y, x, g), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_kept_on_exact_routes(case):
    _, leaves = _leaves(case, dtype=np.float32)
    y = case.call(*leaves)
    assert y.dtype == np.float32
    for x in leaves:
        J32 = jx.jacobian(y, x)
        assert J32.dtype == np.float32
        assert jx.jacobian(y, x, method="vjp").dtype == np.float32
        N = jx.jacobian(y, x, method="numeric")  # always float64
        assert N.dtype == np.float64
        scale = max(np.abs(N).max(), 1.0)
        assert np.abs(J32 - N).max() <= 2e-3 * scale


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_checker_passes_every_op(case):
    _, leaves = _leaves(case)
    results = check_node(case.call(*leaves))
    assert results and all(r.shape_ok for r in results)


def test_every_registered_op_has_a_case():
    covered = {c.op for c in CASES}
    missing = sorted(set(jx.registered_ops()) - covered)
    assert not missing, f"ops with no case in tests/op_cases.py: {missing}"


def test_checker_catches_a_wrong_jacobian():
    # sin with the Jacobian of cos: a deliberately wrong rule, never registered
    wrong = Op("sin_wrong", np.sin, lambda s: tuple(s),
               forms=(lambda y, x: broadcast_factored(y.shape, x.shape, -np.sin(x), "-sin({x0})"),),
               vjps=(lambda g, y, x: g * np.cos(x),))
    x = jx.var(np.linspace(0.1, 1.0, 4))
    with pytest.raises(JacobianMismatch, match="sin_wrong"):
        check_node(apply(wrong, x))


def test_checker_catches_a_wrong_vjp():
    wrong = Op("sin_bad_vjp", np.sin, lambda s: tuple(s),
               forms=(lambda y, x: broadcast_factored(y.shape, x.shape, np.cos(x), "cos({x0})"),),
               vjps=(lambda g, y, x: g * np.cos(x) + 1e-3,))
    x = jx.var(np.linspace(0.1, 1.0, 4))
    with pytest.raises(JacobianMismatch, match="VJP"):
        check_node(apply(wrong, x))


def test_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        jx.register(jx.get_op("matmul"))


def test_relu_derivative_at_zero_is_zero():
    x = jx.var([-1.0, 0.0, 2.0])
    assert jx.grad(jx.sum(jx.relu(x)), x).tolist() == [0.0, 0.0, 1.0]
    assert "relu'(0) = 0" in jx.relu.__doc__
