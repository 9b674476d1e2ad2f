"""Bad input is refused when the node is built, with a message naming the op and shapes."""
import numpy as np
import pytest

import jacobians as jx


def test_matmul_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(3, 4\) @ \(3, 4\).*transpose"):
        jx.var(np.ones((3, 4))) @ np.ones((3, 4))


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(3, 4\) and \(3,\) do not broadcast"):
        jx.var(np.ones((3, 4))) + np.ones(3)


@pytest.mark.parametrize("fn,shape,msg", [
    (jx.inv, (2, 3), "inv: needs a square matrix"),
    (jx.det, (3,), "det: needs a square matrix"),
    (jx.trace, (3,), "trace: needs a matrix"),
])
def test_square_ops_refuse_rectangles(fn, shape, msg):
    with pytest.raises(ValueError, match=msg):
        fn(jx.var(np.ones(shape)))


def test_grad_of_non_scalar_says_use_jacobian():
    with pytest.raises(ValueError, match="use jx.jacobian"):
        jx.grad(jx.var(np.ones((2, 2))) * 2, jx.var(np.ones(1)))


def test_bad_method_and_order_list_the_valid_ones():
    x = jx.var(np.ones(2))
    with pytest.raises(ValueError, match="explicit, vjp, numeric"):
        jx.jacobian(x * 2, x, method="magic")
    with pytest.raises(ValueError, match="optimal, reverse, forward, naive"):
        jx.jacobian(x * 2, x, order="sideways")


def test_node_exponent_refused_with_alternative():
    x = jx.var(np.ones(2))
    with pytest.raises(TypeError, match="exp"):
        x ** x


def test_reshape_and_axis_errors():
    x = jx.var(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape an input of shape \(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        jx.sum(x, axis=2)


def test_cross_entropy_label_errors():
    z = jx.var(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"integer labels must lie in \[0, 4\)"):
        jx.cross_entropy(z, [0, 1, 4])
    with pytest.raises(ValueError, match="one-hot rows of shape"):
        jx.cross_entropy(z, np.ones((2, 4)))


def test_compare_never_calls_nan_gradients_agreeing():
    X = jx.var(-np.ones((2, 2)), name="X")  # log of negative numbers: l is NaN
    with pytest.warns(Warning):
        l = jx.sum(jx.log(X))
    c = jx.compare(l, X)
    # the analytic routes apply 1/x = -1; central differences of NaN are NaN
    assert np.isnan(c.results["numeric"][0]).all()
    assert not c.ok
    for pair, (_, rel) in c.discrepancies.items():
        assert (rel == float("inf")) == ("numeric" in pair)


def test_compare_skips_a_numeric_route_too_slow_to_finish():
    from jacobians.compare import NUMERIC_MAX_ENTRIES

    A = jx.var(np.full((200, 101), 0.01), name="A")  # 20,200 entries: 40,400 forward passes
    assert A.size > NUMERIC_MAX_ENTRIES
    l = jx.sum(A * A)
    with jx.memory_limit("64M"):  # the explicit route's 3.3 GB local Jacobian is refused too
        c = jx.compare(l, A)
    assert "numeric" not in c.results and "forward passes" in c.skipped["numeric"]
    assert "memory limit" in c.skipped["explicit"]
    assert c.ok and "numeric" in str(c) and "skipped" in str(c)
    np.testing.assert_allclose(c.results["vjp"][0], 2 * A.value)  # closed form
