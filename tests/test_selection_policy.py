"""Tie and kink policies: the derivative where the function has none, the same on every exact route.

Each expected gradient or Jacobian below is written out by hand from the policy
stated in the op's docstring; the explicit, factored and VJP routes must all
give exactly it.
"""
import re

import numpy as np
import pytest

import jacobians as jx
from jacobians.ops import arithmetic, elementwise, losses, selection
from jacobians.registry import declared_in

ROUTES = ("explicit", "factored", "vjp")


def assert_jacobian(y, x, expected):
    for method in ROUTES:
        np.testing.assert_allclose(jx.jacobian(y, x, method=method), expected, rtol=0, atol=1e-15,
                                   err_msg=f"route {method}")


def assert_grad(l, x, expected):
    for method in ROUTES:
        np.testing.assert_allclose(jx.grad(l, x, method=method), expected, rtol=0, atol=1e-15,
                                   err_msg=f"route {method}")


@pytest.mark.parametrize("module", [elementwise, arithmetic, selection, losses], ids=lambda m: m.__name__)
def test_each_policy_is_one_line_of_its_module_docstring(module):
    """The docstring's "* op: policy" lines are exactly the ops' ``policy`` fields (docs/ops.md shows the latter)."""
    lines = set(re.findall(r"^\* (\w+): (.*)$", module.__doc__, re.M))
    ops = [n for n in jx.registered_ops() if declared_in(n) == module.__name__]
    assert lines == {(n, jx.get_op(n).policy) for n in ops if jx.get_op(n).policy}


# ------------------------------------------------------------ maximum, minimum
def test_maximum_and_minimum_split_ties_equally():
    a, b = jx.var([1.0, 2.0, 3.0]), jx.var([2.0, 2.0, 2.0])
    assert_jacobian(jx.maximum(a, b), a, np.diag([0.0, 0.5, 1.0]))
    assert_jacobian(jx.maximum(a, b), b, np.diag([1.0, 0.5, 0.0]))
    assert_jacobian(jx.minimum(a, b), a, np.diag([1.0, 0.5, 0.0]))
    assert_jacobian(jx.minimum(a, b), b, np.diag([0.0, 0.5, 1.0]))


def test_maximum_tie_shares_add_up_over_a_broadcast():
    a = jx.var([[1.0, 2.0, 3.0], [2.0, 0.0, 2.0]])
    b = jx.var([2.0, 2.0, 2.0])  # broadcast over the two rows
    y = jx.sum(jx.maximum(a, b))
    assert_grad(y, a, [[0.0, 0.5, 1.0], [0.5, 0.0, 0.5]])
    assert_grad(y, b, [1.0 + 0.5, 0.5 + 1.0, 0.0 + 0.5])  # per column: row 0 share + row 1 share


def test_maximum_of_x_with_itself_is_x():  # both shares reach the same leaf: ½ + ½
    x = jx.var([1.0, -2.0])
    assert_jacobian(jx.maximum(x, x), x, np.eye(2))
    assert_jacobian(jx.minimum(x, x), x, np.eye(2))


# ------------------------------------------------------------------ max, min
def test_max_and_min_split_ties_equally_among_tied_entries():
    x = jx.var([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    third = 1.0 / 3.0
    assert_jacobian(jx.max(x, axis=1), x, [[[0, 0.5, 0.5], [0, 0, 0]], [[0, 0, 0], [third] * 3]])
    assert_grad(jx.max(x), x, [[0, 0.5, 0.5], [0, 0, 0]])
    assert_grad(jx.min(x), x, [[1.0, 0, 0], [0, 0, 0]])
    assert_grad(jx.sum(jx.min(x, axis=1, keepdims=True)), x, [[1.0, 0, 0], [third] * 3])
    assert_grad(jx.sum(jx.max(x, axis=0)), x, [[0, 1.0, 1.0], [1.0, 0, 0]])


def test_max_over_a_tuple_of_axes_with_ties():
    x = jx.var(np.array([[[5.0, 1.0], [5.0, 0.0]], [[2.0, 2.0], [0.0, 2.0]]]))  # (2, 2, 2)
    y = jx.max(x, axis=(1, 2))  # [5, 2]: two tied fives, three tied twos
    third = 1.0 / 3.0
    expected = np.zeros((2, 2, 2, 2))
    expected[0, 0] = [[0.5, 0.0], [0.5, 0.0]]
    expected[1, 1] = [[third, third], [0.0, third]]
    assert_jacobian(y, x, expected)


# ---------------------------------------------------------------------- clip
def test_clip_is_one_on_the_closed_interval():
    x = jx.var([-1.0, 0.0, 0.5, 1.0, 2.0])
    assert_jacobian(jx.clip(x, 0.0, 1.0), x, np.diag([0.0, 1.0, 1.0, 1.0, 0.0]))
    assert_jacobian(jx.clip(x, None, 0.5), x, np.diag([1.0, 1.0, 1.0, 0.0, 0.0]))
    assert_jacobian(jx.clip(x, 1.0, None), x, np.diag([0.0, 0.0, 0.0, 1.0, 1.0]))


def test_clip_with_array_bounds_at_the_bounds_and_crossed_bounds():
    x = jx.var([0.0, 1.0, 2.0, 3.0])
    lo, hi = np.array([0.0, 2.0, 0.0, 5.0]), np.array([1.0, 3.0, 2.0, 4.0])  # last: a_min > a_max
    y = jx.clip(x, lo, hi)
    np.testing.assert_array_equal(y.value, np.clip(x.value, lo, hi))
    assert_jacobian(y, x, np.diag([1.0, 0.0, 1.0, 0.0]))


# -------------------------------------------------------- elementwise kinks
@pytest.mark.parametrize("fn,x,expected", [
    (jx.sign, [-1.0, 0.0, 2.0], [0.0, 0.0, 0.0]),
    (jx.floor, [-1.0, 0.0, 2.0], [0.0, 0.0, 0.0]),
    (jx.ceil, [-1.0, 0.0, 2.0], [0.0, 0.0, 0.0]),
    (jx.round, [-0.5, 0.5, 1.5], [0.0, 0.0, 0.0]),
    (jx.trunc, [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]),
    (jx.relu, [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    (jx.abs, [-1.0, 0.0, 2.0], [-1.0, 0.0, 1.0]),
    (lambda v: jx.leaky_relu(v, 0.1), [-1.0, 0.0, 2.0], [0.1, 0.1, 1.0]),
    (lambda v: jx.elu(v, 2.0), [0.0, 2.0], [2.0, 1.0]),
], ids=["sign", "floor", "ceil", "round", "trunc", "relu", "abs", "leaky_relu", "elu"])
def test_elementwise_kinks(fn, x, expected):
    x = jx.var(x)
    assert_jacobian(fn(x), x, np.diag(expected))


def test_selu_at_zero_takes_the_negative_branch():
    x = jx.var([0.0])
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    for method in ROUTES:
        np.testing.assert_allclose(jx.jacobian(jx.selu(x), x, method=method), [[scale * alpha]], rtol=1e-15)


def test_hypot_and_arctan2_at_the_origin_are_zero():
    a, b = jx.var([0.0, 3.0]), jx.var([0.0, 4.0])
    assert_jacobian(jx.hypot(a, b), a, np.diag([0.0, 0.6]))
    assert_jacobian(jx.hypot(a, b), b, np.diag([0.0, 0.8]))
    assert_jacobian(jx.arctan2(a, b), a, np.diag([0.0, 4.0 / 25.0]))
    assert_jacobian(jx.arctan2(a, b), b, np.diag([0.0, -3.0 / 25.0]))


def test_mod_at_its_jumps_takes_the_piece_that_starts_there():
    a, b = jx.var([6.0, -6.0, 7.0]), jx.var([3.0, 3.0, -2.0])
    y = jx.mod(a, b)
    assert y.value.tolist() == [0.0, 0.0, -1.0]
    assert_jacobian(y, a, np.eye(3))
    assert_jacobian(y, b, np.diag([-2.0, 2.0, 4.0]))  # -floor(a/b): floor(7/-2) = -4


# --------------------------------------------------------------------- losses
def test_hinge_kink_has_derivative_zero():
    s = jx.var([1.0, -1.0, 0.5, 2.0])
    labels = [1, -1, 1, -1]  # y·s = 1, 1, 0.5, -2: two at the kink
    assert_grad(jx.hinge(s, labels), s, [0.0, 0.0, -0.25, 0.25])


def test_kl_div_where_p_is_zero():
    logq, p = jx.var(np.log([0.5, 0.5])), jx.var([0.0, 1.0])
    assert float(jx.kl_div(logq, p).value) == pytest.approx(np.log(2) / 2)
    assert_grad(jx.kl_div(logq, p), p, [0.0, (0.0 + 1.0 - np.log(0.5)) / 2])
    assert_grad(jx.kl_div(logq, p), logq, [0.0, -0.5])


# ---------------------------------------------------------------------- where
def test_where_with_a_broadcast_condition():
    cond = np.array([[True], [False], [True]])  # (3, 1): whole rows
    a = jx.var([1.0, 2.0, 3.0, 4.0])  # (4,), broadcast over the rows
    b = jx.var(np.arange(12.0).reshape(3, 4))
    y = jx.where(cond, a, b)
    np.testing.assert_array_equal(y.value, np.where(cond, a.value, b.value))
    Ja = np.zeros((3, 4, 4))
    Ja[0], Ja[2] = np.eye(4), np.eye(4)
    Jb = np.zeros((3, 4, 3, 4))
    Jb[1, :, 1, :] = np.eye(4)
    assert_jacobian(y, a, Ja)
    assert_jacobian(y, b, Jb)
    assert_grad(jx.sum(y), a, [2.0, 2.0, 2.0, 2.0])


def test_where_condition_wider_than_both_branches():
    cond = np.array([[True, False], [False, True], [True, True]])  # (3, 2)
    a, b = jx.var([5.0, 6.0]), jx.var([[1.0], [2.0], [3.0]])  # (2,) and (3, 1)
    y = jx.where(cond, a, b)
    assert y.shape == (3, 2)
    assert_grad(jx.sum(y), a, [2.0, 2.0])
    assert_grad(jx.sum(y), b, [[1.0], [1.0], [0.0]])


# ----------------------------------------------------------------------- sort
def test_sort_ties_follow_the_stable_argsort():
    x = jx.var([2.0, 1.0, 2.0, 0.0])  # stable order: 3, 1, 0, 2
    expected = np.zeros((4, 4))
    expected[[0, 1, 2, 3], [3, 1, 0, 2]] = 1.0
    assert_jacobian(jx.sort(x), x, expected)


def test_sort_along_the_first_axis_scatters_back():
    x = jx.var([[3.0, 0.0], [1.0, 2.0]])
    w = np.array([[10.0, 20.0], [30.0, 40.0]])
    # sorted along axis 0: column 0 takes rows (1, 0), column 1 rows (0, 1)
    assert_grad(jx.sum(jx.sort(x, axis=0) * w), x, [[30.0, 20.0], [10.0, 40.0]])


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("call,error,message", [
    (lambda x: jx.where(np.array([1, 0, 1]), x, 0.0), TypeError, r"where: the condition must be a boolean array"),
    (lambda x: jx.where(np.ones(2, bool), x, 0.0), ValueError, r"where: condition \(2,\), a \(3,\) and b \(\) do not"),
    (lambda x: jx.where(x, x, x), TypeError, r"where: the condition must be a constant"),
    (lambda x: jx.clip(x, None, None), ValueError, r"clip: a_min and a_max are both None"),
    (lambda x: jx.clip(x, np.zeros(2), 1.0), ValueError, r"clip: x \(3,\), a_min \(2,\) and a_max \(\) do not"),
    (lambda x: jx.clip(x, x, 1.0), TypeError, r"clip: a_min must be a constant"),
    (lambda x: jx.max(x, axis=1), ValueError, r"max: axis 1 is out of range"),
    (lambda x: jx.min(jx.var(np.ones((2, 0))), axis=1), ValueError, r"min: cannot reduce the empty axis 1"),
    (lambda x: jx.sort(jx.var(1.0)), ValueError, r"sort: needs at least one axis"),
    (lambda x: jx.hypot(x, np.ones(2)), ValueError, r"hypot: shapes \(3,\) and \(2,\) do not broadcast"),
    (lambda x: jx.gelu(x, approximate="fast"), ValueError, r"gelu: approximate must be 'none' or 'tanh'"),
    (lambda x: jx.leaky_relu(x, x), TypeError, r"leaky_relu: negative_slope must be a constant number"),
    (lambda x: jx.binary_cross_entropy(x, np.ones(2)), ValueError,
     r"binary_cross_entropy: input shape \(3,\) and target shape \(2,\) differ"),
    (lambda x: jx.nll(jx.var(np.zeros((2, 3))), [0, 3]), ValueError, r"nll: integer labels must lie in \[0, 3\)"),
    (lambda x: jx.nll(jx.var(np.zeros((2, 3))), [0.0, 1.0]), TypeError, r"nll: labels must be integer"),
    (lambda x: jx.nll(jx.var(np.zeros((2, 3))), [0, 1, 2]), ValueError, r"nll: labels of shape \(3,\) do not fit"),
    (lambda x: jx.huber(x, x, delta=0.0), ValueError, r"huber: delta must be positive"),
    (lambda x: jx.hinge(x, [0, 1, 1]), ValueError, r"hinge: labels must be -1 or \+1"),
    (lambda x: jx.kl_div(x, np.ones((3, 1))), ValueError, r"kl_div: input \(log q\) shape \(3,\) and target"),
])
def test_bad_input_names_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call(jx.var([0.2, 0.4, 0.6]))
