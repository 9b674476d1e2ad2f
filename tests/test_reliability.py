"""Bad input, dtypes, graph semantics and determinism: every behaviour of docs/reliability.md.

Expected values come from numpy written out here (closed forms), from central
differences, or from another route — never from the route under test.
"""
import os
import warnings

import numpy as np
import pytest

import jacobians as jx
from jacobians.node import AmbiguousBroadcastWarning, NonFiniteWarning


def _rel(a, b):
    return np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-300)


# ------------------------------------------------------------- non-numeric data
@pytest.mark.parametrize("data", [
    ["a", "b"], np.array([1, "x"], dtype=object), None, {"a": 1}, object(), b"bytes",
    np.array(["2020-01-01"], dtype="datetime64[D]"), (i for i in range(3)),
], ids=["strings", "object-array", "None", "dict", "object", "bytes", "datetime", "generator"])
def test_non_numeric_data_is_refused_naming_the_var(data):
    with pytest.raises(TypeError, match=r"var\(w\): .*not numeric data.*pass numbers"):
        jx.var(data, name="w")


def test_non_numeric_constant_is_refused():
    x = jx.var(np.ones(2), name="x")
    with pytest.raises(TypeError, match=r"add: operand 2 \(a constant\): .*not numeric data"):
        x + np.array(["a", "b"])


def test_ragged_lists_and_masked_arrays_are_refused():
    with pytest.raises(TypeError, match=r"var\(r\): could not turn list into a numeric array.*rectangular"):
        jx.var([1.0, [2.0, 3.0]], name="r")
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    with pytest.raises(TypeError, match=r"masked arrays are not supported.*filled"):
        jx.var(masked)


def test_var_of_a_node_or_of_nodes_is_refused_with_the_fix():
    x = jx.var(np.ones(2), name="x")
    with pytest.raises(TypeError, match=r"got the node x.*x\.value"):
        jx.var(x)
    with pytest.raises(TypeError, match="containing nodes"):
        jx.var([x, x])


# ----------------------------------------------------------------- numeric dtypes
@pytest.mark.parametrize("data", [np.array([1, 2, 3]), np.array([1, 2, 3], dtype=np.uint8),
                                  [1, 2, 3], np.array([True, False, True])])
def test_integer_and_boolean_data_become_float64(data):
    x = jx.var(data, name="x")
    assert x.dtype == np.float64
    np.testing.assert_array_equal(x.value, np.asarray(data, dtype=np.float64))
    g = jx.grad(jx.sum(x * x), x)  # d Σx²/dx = 2x
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, 2 * np.asarray(data, dtype=np.float64))


def test_float16_becomes_float32_and_extended_precision_is_refused():
    assert jx.var(np.ones(2, dtype=np.float16)).dtype == np.float32
    if np.dtype(np.longdouble).itemsize > 8:  # platforms where longdouble is real extended precision
        with pytest.raises(TypeError, match="extended precision.*float64"):
            jx.var(np.ones(2, dtype=np.longdouble))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        jx.var([1.0], dtype=np.float16)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        jx.const([1.0], dtype=int)


@pytest.mark.parametrize("data", [1 + 2j, np.array([1.0, 2.0], dtype=np.complex128), [1j, 2.0]])
def test_complex_input_is_refused(data):
    with pytest.raises(TypeError, match=r"complex input .* not supported.*real and imaginary"):
        jx.var(data)
    with pytest.raises(TypeError, match="complex input"):
        jx.var(np.ones(2)) * np.asarray(data)


# ---------------------------------------------------------------- NaN and Inf
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_a_var_is_refused_naming_it_and_the_entry(bad):
    data = np.ones((2, 3))
    data[1, 2] = bad
    with pytest.raises(ValueError, match=r"var\(W\): the data contain NaN or ±Inf \(1 of 6 entries, the first "
                                         r"at index \(1, 2\).*np\.nan_to_num"):
        jx.var(data, name="W")


def test_nan_in_a_constant_is_refused():
    x = jx.var(np.ones(3), name="x")
    with pytest.raises(ValueError, match=r"multiply: operand 2 \(a constant\): the data contain NaN \(1 of 3"):
        x * np.array([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match=r"const\(T\): the data contain NaN"):
        jx.const([np.nan], name="T")


def test_inf_mask_in_a_constant_is_allowed_and_differentiates():
    """A -inf mask before a softmax: masked entries get probability 0 and zero derivative;
    the rest is the softmax of the unmasked entries, Jacobian diag(s) - s sᵀ."""
    xv = np.array([0.3, -1.2, 0.8, 0.1])
    mask = np.array([0.0, -np.inf, 0.0, 0.0])
    x = jx.var(xv, name="x")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWarning)  # -inf propagated, not created: no warning
        s = jx.softmax(x + mask)
    keep = [0, 2, 3]
    e = np.exp(xv[keep] - xv[keep].max())
    sk = e / e.sum()
    closed = np.zeros((4, 4))
    closed[np.ix_(keep, keep)] = np.diag(sk) - np.outer(sk, sk)
    for method in jx.METHODS:
        J = jx.jacobian(s, x, method=method)
        assert np.isfinite(J).all(), method
        np.testing.assert_allclose(J, closed, atol=1e-9, err_msg=method)


# ------------------------------------------------------------ outside the domain
@pytest.mark.parametrize("fn,data,entry", [
    (jx.log, [2.0, -1.0], "nan"), (jx.log, [0.0, 1.0], "-inf"), (jx.sqrt, [4.0, -4.0], "nan"),
    (lambda v: jx.exp(v), [1.0, 1000.0], "inf"),
])
def test_finite_input_turned_non_finite_warns_naming_op_and_node(fn, data, entry):
    x = jx.var(data, name="x")
    with pytest.warns(NonFiniteWarning) as record:
        y = fn(x)
    msg = str(record[0].message)
    assert y.op.name in msg and "x (2,)" in msg and y.name in msg and f"({entry})" in msg
    assert record[0].filename == os.path.abspath(__file__)  # the warning points at the user's line


def test_logdet_of_a_singular_matrix_warns():
    A = jx.var([[1.0, 2.0], [2.0, 4.0]], name="A")
    with pytest.warns(NonFiniteWarning, match=r"logdet: finite inputs A \(2, 2\) gave non-finite output"):
        jx.logdet(A)


def test_non_finite_warning_can_be_made_an_error():
    x = jx.var([-1.0], name="x")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWarning)
        with pytest.raises(NonFiniteWarning, match="log"):
            jx.log(x)


@pytest.mark.parametrize("build,names", [
    (lambda A, b: jx.inv(A), ["inv (forward)", "A (2, 2)"]),
    (lambda A, b: jx.solve(A, b), ["solve (forward)", "A (2, 2)", "b (2,)"]),
])
def test_singular_matrix_raises_naming_the_op_and_inputs(build, names):
    A = jx.var([[1.0, 2.0], [2.0, 4.0]], name="A")
    b = jx.var([1.0, 1.0], name="b")
    with pytest.raises(ValueError) as info:
        build(A, b)
    assert isinstance(info.value, np.linalg.LinAlgError)  # still catchable as numpy's error
    msg = str(info.value)
    assert all(n in msg for n in names) and "Singular matrix" in msg and "identity" in msg


# ------------------------------------------------------------ ambiguous broadcast
@pytest.mark.parametrize("op", [jx.add, jx.subtract, jx.multiply, jx.divide])
def test_vector_against_square_matrix_warns(op):
    M = jx.var(np.full((3, 3), 2.0), name="M")
    b = jx.var([1.0, 2.0, 3.0], name="b")
    with pytest.warns(AmbiguousBroadcastWarning, match=r"operand 2 of shape \(3,\) is broadcast against shape "
                                                       r"\(3, 3\).*\(1, 3\).*\(3, 1\)") as record:
        op(M, b)
    assert record[0].filename == os.path.abspath(__file__)


def test_vector_plus_column_warns():
    with pytest.warns(AmbiguousBroadcastWarning, match=r"shape \(3,\) is broadcast against shape \(3, 3\)"):
        jx.var(np.ones(3)) + np.ones((3, 1))


@pytest.mark.parametrize("a,b", [((3, 3), (1, 3)), ((3, 3), (3, 1)), ((4, 3), (3,)), ((3, 3), ()),
                                 ((3, 3), (3, 3)), ((2, 3), (1,)), ((3,), (3,))])
def test_unambiguous_broadcasts_do_not_warn(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AmbiguousBroadcastWarning)
        jx.var(np.ones(a)) + jx.var(np.ones(b))
        jx.var(np.ones(b)) * np.ones(a)


def test_matmul_and_solve_with_vectors_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", AmbiguousBroadcastWarning)
        v = jx.var(np.ones(3))
        jx.var(np.eye(3)) @ v
        v @ np.eye(3)
        jx.solve(2 * np.eye(3), v)


def test_ambiguous_broadcast_keeps_numpys_meaning():
    """Z = M + b with b (n,) against M (n, n): numpy adds b[j] to column j, dZ[i,j]/db[k] = δ_jk."""
    M = jx.var(np.arange(9.0).reshape(3, 3), name="M")
    b = jx.var([10.0, 20.0, 30.0], name="b")
    with pytest.warns(AmbiguousBroadcastWarning):
        Z = M + b
    np.testing.assert_array_equal(Z.value, M.value + b.value[None, :])
    closed = np.broadcast_to(np.eye(3)[None, :, :], (3, 3, 3))
    for method in jx.METHODS:
        np.testing.assert_allclose(jx.jacobian(Z, b, method=method), closed, atol=1e-9, err_msg=method)


# -------------------------------------------------------------- graph semantics
def test_nodes_are_immutable_so_no_cycle_can_be_made():
    x = jx.var(np.ones(3), name="x")
    y = jx.tanh(x)
    for attr, value in [("parents", (y,)), ("value", np.zeros(3)), ("op", jx.get_op("exp")), ("params", {}),
                        ("kind", "var"), ("id", 0)]:
        with pytest.raises(AttributeError, match=rf"node {y.name}: '{attr}' cannot be changed.*no cycle"):
            setattr(y, attr, value)
    with pytest.raises(AttributeError, match="immutable"):
        del y.parents
    with pytest.raises(ValueError, match="read-only"):
        y.value[0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        x.value[...] = 0.0
    assert y.parents == (x,) and x.parents == ()
    np.testing.assert_array_equal(y.value, np.tanh(np.ones(3)))


def test_node_parameters_are_read_only():
    z = jx.var(np.zeros((2, 3)), name="z")
    s = jx.sum(z, axis=1)
    with pytest.raises(TypeError):
        s.params["axes"] = (0,)
    ce = jx.cross_entropy(z, [0, 2])
    t = ce.params["t"]  # the one-hot targets, an array parameter
    with pytest.raises(ValueError, match="read-only"):
        t[0, 0] = 5.0


def test_only_the_display_name_can_change():
    x = jx.var(np.ones(2))
    y = jx.exp(x)
    y._name = "y"
    assert y.name == "y" and repr(y).startswith("<Node y:")


def test_mixing_nodes_from_two_graphs():
    """Graphs are eager and nodes immutable: nodes built separately combine into a third graph,
    and the first two are unchanged."""
    rng = np.random.default_rng(4)
    xv, wv = rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    x = jx.var(xv, name="x")
    a = jx.tanh(x)  # graph 1
    w = jx.var(wv, name="w")
    b = w * w  # graph 2
    ga_before = jx.grad(jx.sum(a), x)
    l = jx.sum(a @ b)  # both graphs in one expression
    # d/dx Σ tanh(x) B = (1 - tanh²x) ⊙ (1 Bᵀ) ;  d/dw Σ A (w⊙w) = 2 w ⊙ (Aᵀ 1)
    ones = np.ones((3, 4))
    closed_x = (1 - np.tanh(xv) ** 2) * (ones @ (wv * wv).T)
    closed_w = 2 * wv * (np.tanh(xv).T @ ones)
    for method in jx.METHODS:
        gx, gw = jx.grad(l, [x, w], method=method)
        assert _rel(gx, closed_x) < 1e-6 and _rel(gw, closed_w) < 1e-6, method
    assert a.parents == (x,) and b.parents == (w, w)
    np.testing.assert_array_equal(jx.grad(jx.sum(a), x), ga_before)


def test_mixing_float32_and_float64_graphs_promotes_to_float64():
    a = jx.var(np.ones(2, dtype=np.float32))
    b = jx.var(np.ones(2))
    y = a * b
    assert y.dtype == np.float64
    assert jx.jacobian(y, a).dtype == np.float64


@pytest.mark.parametrize("method", jx.METHODS)
def test_wrt_not_in_the_graph_gives_zeros_of_the_right_shape(method):
    x = jx.var(np.ones((2, 3)), name="x")
    other = jx.var(np.ones((4, 1)), name="other")
    y = jx.tanh(x)
    l = jx.sum(y)
    J = jx.jacobian(y, other, method=method)
    g = jx.grad(l, other, method=method)
    assert J.shape == (2, 3, 4, 1) and g.shape == (4, 1)
    assert not J.any() and not g.any()


# ---------------------------------------------------------------------- dtypes
def _float32_graph(dtype):
    rng = np.random.default_rng(6)
    X = jx.var(rng.standard_normal((3, 4)).astype(dtype), name="X")
    W = jx.var(rng.standard_normal((4, 2)).astype(dtype), name="W")
    data = rng.standard_normal((3, 2))  # float64 numpy data mixed in
    H = jx.tanh(X @ W + data) * 0.5 + 1  # Python scalars mixed in
    return jx.mse(H, np.zeros((3, 2))), X, W


def test_float32_graph_stays_float32_with_float64_data_mixed_in():
    l, X, W = _float32_graph(np.float32)
    assert l.dtype == np.float32
    l64, X64, W64 = _float32_graph(np.float64)
    for method in jx.METHODS:
        g = jx.grad(l, [X, W], method=method)
        J = jx.jacobian(l, W, method=method)
        want = np.float64 if method == "numeric" else np.float32  # differences are always float64
        assert g[0].dtype == g[1].dtype == J.dtype == want, method
        ref = jx.grad(l64, [X64, W64], method="vjp")  # the same graph in float64
        assert _rel(g[0], ref[0]) < 1e-3 and _rel(g[1], ref[1]) < 1e-3, method


def test_integer_constants_take_the_graph_dtype():
    x = jx.var(np.ones(3, dtype=np.float32))
    assert (x * np.arange(3)).dtype == np.float32 and (x + True).dtype == np.float32


def test_compare_states_dtype_suited_tolerances():
    l32, X32, _ = _float32_graph(np.float32)
    l64, X64, _ = _float32_graph(np.float64)
    c32, c64 = jx.compare(l32, X32), jx.compare(l64, X64)
    assert c32.ok and c64.ok
    assert c32.tolerances[("explicit", "vjp")] > c64.tolerances[("explicit", "vjp")]
    assert c32.tolerances[("explicit", "numeric")] > c64.tolerances[("explicit", "numeric")]
    table = str(c32)
    assert "float32" in table and "tol" in table and f"{c32.tolerances[('explicit', 'vjp')]:.0e}" in table


# ------------------------------------------------------------------ determinism
def _seed_graph():
    rng = np.random.default_rng(8)
    X = jx.var(rng.standard_normal((4, 3)), name="X")
    M = jx.var(np.eye(3) * 2 + 0.2 * rng.standard_normal((3, 3)), name="M")
    W = X @ X.T  # several paths from X to the output
    Y = jx.softmax(W @ X @ jx.inv(M), axis=0)
    return Y, jx.logsumexp(Y) + jx.logdet(M), [X, M]


@pytest.mark.parametrize("method", jx.METHODS)
def test_every_route_is_bit_identical_across_calls_and_rebuilds(method):
    orders = jx.ORDERS if method == "explicit" else ("optimal",)
    Y, l, xs = _seed_graph()
    Y2, l2, xs2 = _seed_graph()  # the same graph built again
    for order in orders:
        first = [jx.jacobian(Y, x, method=method, order=order) for x in xs]
        grads = jx.grad(l, xs, method=method, order=order)
        for _ in range(2):
            again = [jx.jacobian(Y, x, method=method, order=order) for x in xs]
            for a, b in zip(first, again):
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (method, order)
            for a, b in zip(grads, jx.grad(l, xs, method=method, order=order)):
                assert a.tobytes() == b.tobytes(), (method, order)
        for a, b in zip(first, [jx.jacobian(Y2, x, method=method, order=order) for x in xs2]):
            assert a.tobytes() == b.tobytes(), (method, order, "rebuilt")
