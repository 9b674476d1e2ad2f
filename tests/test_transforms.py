"""The JAX-style transforms: grad, value_and_grad, jacobian, vjp, jvp over pytrees.

Structures are checked against JAX's conventions (described, not imported):
the gradient w.r.t. a dict is a dict, a tuple of argnums gives a tuple, the
Jacobian of a tuple output w.r.t. tuple argnums is a tuple (outputs) of tuples
(arguments) with leaves of shape ``out.shape + in.shape``. Values are checked
against ``jx.jacobian`` contractions and central differences; the MLP's
gradient against ``jax.grad`` of the same function body, stored in
tests/data/numpy_corpus_reference.npz by benchmarks/jax_references.py.
"""
from __future__ import annotations

import json
import os
from typing import Dict

import numpy as np
import pytest

import jacobians as jx

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "numpy_corpus_reference.npz")


# ---------------------------------------------------------------- helpers
def central(f, args, k, h=1e-6):
    """d f(*args) / d args[k] by central differences; f returns one array; shape out.shape + in.shape."""
    args = [np.asarray(a, dtype=np.float64) for a in args]
    f0 = np.asarray(f(*args))
    J = np.zeros(f0.shape + args[k].shape)
    for idx in np.ndindex(*args[k].shape):
        plus, minus = list(args), list(args)
        e = np.zeros_like(args[k])
        e[idx] = h
        plus[k], minus[k] = args[k] + e, args[k] - e
        J[(...,) + idx] = (np.asarray(f(*plus)) - np.asarray(f(*minus))) / (2 * h)
    return J


def contract_in(J, t):
    """J · t: sum over the input axes (the trailing t.ndim axes of J)."""
    return np.tensordot(J, t, axes=t.ndim) if t.ndim else J * t


def contract_out(ct, J):
    """ctᵀ J: sum over the output axes (the leading ct.ndim axes of J)."""
    return np.tensordot(ct, J, axes=ct.ndim) if ct.ndim else ct * J


RNG = np.random.default_rng(20240611)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((4, 2))
V = RNG.standard_normal(3)


def two_outputs(a, b, v):
    """A tuple output: a matrix and a vector, from three arguments."""
    return np.tanh(a @ b), np.sin(v) @ a


# ---------------------------------------------------------------- the MLP, against jax.grad
def loss(params, X, y):
    """Softmax cross-entropy of a two-layer MLP (relu, then tanh), with an L2 penalty; plain numpy."""
    h1 = np.maximum(X @ params["W1"] + params["b1"], 0)
    h2 = np.tanh(h1 @ params["W2"] + params["b2"])
    z = h2 @ params["W3"]
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    penalty = sum(np.sum(params[k] ** 2) for k in ("W1", "W2", "W3"))
    return -np.mean(np.sum(y * logp, axis=1)) + 1e-3 * penalty


def mlp_inputs(rng):
    """Parameters (a dict), data and one-hot labels for ``loss`` (benchmarks/jax_references.py draws them)."""
    params = {
        "W1": rng.standard_normal((4, 6)) / 2, "b1": rng.standard_normal(6) / 4,
        "W2": rng.standard_normal((6, 5)) / 2, "b2": rng.standard_normal(5) / 4,
        "W3": rng.standard_normal((5, 3)) / 2,
    }
    X = rng.standard_normal((8, 4))
    y = np.eye(3)[rng.integers(0, 3, size=8)]
    return params, X, y


def load_reference(path: str) -> Dict[str, np.ndarray]:
    """The arrays of the reference file by key (it stores one vector and a JSON index of offsets and shapes)."""
    with np.load(path) as data:
        values, index = data["values"], json.loads(str(data["index"]))
    return {k: values[o:o + int(np.prod(shape))].reshape(shape) for k, (o, shape) in index.items()}


def stored_mlp():
    if not os.path.exists(REFERENCE):
        pytest.fail(f"{REFERENCE} is missing: run python benchmarks/jax_references.py (needs jax)")
    d = load_reference(REFERENCE)
    pre = "transforms/mlp/"
    params = {k[len(pre + "params/"):]: v for k, v in d.items() if k.startswith(pre + "params/")}
    grad = {k[len(pre + "grad/"):]: v for k, v in d.items() if k.startswith(pre + "grad/")}
    return params, d[pre + "X"], d[pre + "y"], float(d[pre + "value"]), grad


def test_mlp_gradient_w_r_t_a_dict_equals_jax_grad_of_the_same_function():
    params, X, y, value, ref = stored_mlp()
    g = jx.grad(loss)(params, X, y)
    assert isinstance(g, dict) and sorted(g) == sorted(params) == ["W1", "W2", "W3", "b1", "b2"]
    for k in params:
        assert g[k].shape == params[k].shape and g[k].dtype == np.float64
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
    v, g2 = jx.value_and_grad(loss)(params, X, y)
    np.testing.assert_allclose(v, value, rtol=1e-12)
    for k in params:
        np.testing.assert_array_equal(g2[k], g[k])


@pytest.mark.parametrize("method", [m for m in jx.METHODS if m != "numeric"])
def test_mlp_gradient_is_the_same_on_every_exact_route(method):
    params, X, y, _, ref = stored_mlp()
    g = jx.grad(loss, method=method)(params, X, y)
    for k in params:
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=f"{method}: {k}")


def test_mlp_gradient_on_the_numeric_route_is_close():
    params, X, y, _, ref = stored_mlp()
    g = jx.grad(loss, method="numeric")(params, X, y)
    for k in params:
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-5, atol=1e-8, err_msg=k)


# ---------------------------------------------------------------- grad: structures
def test_grad_of_one_argument_is_an_array_of_its_shape():
    g = jx.grad(lambda a, b: np.sum(np.tanh(a @ b)))(A, B)
    assert isinstance(g, np.ndarray) and g.shape == A.shape
    np.testing.assert_allclose(g, central(lambda a: np.sum(np.tanh(a @ B)), [A], 0), rtol=1e-7, atol=1e-9)


def test_grad_with_argnums_tuple_is_a_tuple_in_the_order_asked():
    f = lambda a, b, v: np.sum(np.sin(v @ a @ b))
    g = jx.grad(f, argnums=(2, 0))(A, B, V)
    assert isinstance(g, tuple) and len(g) == 2
    assert g[0].shape == V.shape and g[1].shape == A.shape
    np.testing.assert_allclose(g[0], central(f, [A, B, V], 2), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(g[1], central(f, [A, B, V], 0), rtol=1e-7, atol=1e-9)


def test_argnums_one_tuple_gives_a_one_tuple_and_negative_argnums_count_from_the_end():
    f = lambda a, b: np.sum(a @ b)
    (g,) = jx.grad(f, argnums=(1,))(A, B)
    np.testing.assert_array_equal(g, jx.grad(f, argnums=-1)(A, B))
    np.testing.assert_allclose(g, np.tile(A.sum(axis=0)[:, None], (1, 2)), rtol=1e-12)


def test_grad_w_r_t_nested_pytree_mirrors_lists_tuples_dicts_and_none():
    params = {"layers": [(A, V), (B, None)], "scale": np.array(2.0)}

    def f(p):
        (a, v), (b, _) = p["layers"]
        return p["scale"] * np.sum(np.sin(v @ a @ b))

    g = jx.grad(f)(params)
    assert sorted(g) == ["layers", "scale"]
    assert isinstance(g["layers"], list) and len(g["layers"]) == 2
    assert isinstance(g["layers"][0], tuple) and isinstance(g["layers"][1], tuple)
    assert g["layers"][1][1] is None
    assert g["layers"][0][0].shape == A.shape and g["layers"][0][1].shape == V.shape
    assert g["layers"][1][0].shape == B.shape and g["scale"].shape == ()
    flat = lambda a, v, b, s: s * np.sum(np.sin(v @ a @ b))
    args = [A, V, B, np.array(2.0)]
    for got, k in ((g["layers"][0][0], 0), (g["layers"][0][1], 1), (g["layers"][1][0], 2), (g["scale"], 3)):
        np.testing.assert_allclose(got, central(flat, args, k), rtol=1e-7, atol=1e-9)


def test_grad_w_r_t_a_namedtuple_is_a_namedtuple_as_in_jax():
    import collections

    Params = collections.namedtuple("Params", "W b")
    g = jx.grad(lambda p: np.sum(np.tanh(A @ p.W + p.b)))(Params(B, np.zeros(2)))
    assert isinstance(g, Params) and g.W.shape == B.shape and g.b.shape == (2,)


def test_arguments_not_differentiated_and_keyword_arguments_pass_through():
    seen = {}

    def f(a, b, scale=1.0):
        seen["b"] = type(b)
        return scale * np.sum(a @ b)

    g = jx.grad(f)(A, B, scale=3.0)
    assert seen["b"] is np.ndarray  # only argnums become vars
    np.testing.assert_allclose(g, 3.0 * np.tile(B.sum(axis=1), (3, 1)), rtol=1e-12)


def test_output_independent_of_the_argument_gives_zeros():
    g = jx.grad(lambda a, b: np.sum(b ** 2))(A, B)
    assert g.shape == A.shape and not g.any()


def test_scalar_python_float_argument():
    g = jx.grad(lambda x: x * x * x)(2.0)
    assert np.shape(g) == () and float(g) == pytest.approx(12.0)


# ---------------------------------------------------------------- has_aux, value_and_grad
def test_has_aux_returns_the_gradient_and_the_aux_untouched():
    def f(a):
        return np.sum(a ** 2), {"note": "hi", "count": 3}

    g, aux = jx.grad(f, has_aux=True)(A)
    np.testing.assert_allclose(g, 2 * A, rtol=1e-12)
    assert aux == {"note": "hi", "count": 3}


def test_has_aux_of_an_intermediate_is_an_array_as_in_jax():
    def f(a):
        h = np.tanh(a)
        return np.sum(h), h

    _, aux = jx.grad(f, has_aux=True)(A)
    assert isinstance(aux, np.ndarray)


def test_value_and_grad_gives_the_value_and_the_same_gradient():
    f = lambda a, b: np.sum(np.tanh(a @ b) ** 2)
    v, g = jx.value_and_grad(f, argnums=(0, 1))(A, B)
    assert isinstance(v, np.ndarray) and v.shape == ()
    assert float(v) == pytest.approx(float(np.sum(np.tanh(A @ B) ** 2)), rel=1e-14)
    g2 = jx.grad(f, argnums=(0, 1))(A, B)
    for x, y in zip(g, g2):
        np.testing.assert_array_equal(x, y)


def test_value_and_grad_with_aux_nests_as_jax_does():
    (v, aux), g = jx.value_and_grad(lambda a: (np.sum(a), "aux"), has_aux=True)(A)
    assert float(v) == pytest.approx(A.sum()) and aux == "aux"
    np.testing.assert_array_equal(g, np.ones_like(A))


def test_value_dependent_control_flow_is_followed():
    def f(x):
        total = 0.0
        for i in range(x.shape[0]):
            row = np.sum(x[i] ** 2)
            total = total + (row if row.item() > 1.0 else 10.0 * row)
        return total

    x = np.array([[2.0, 0.0], [0.1, 0.2]])
    np.testing.assert_allclose(jx.grad(f)(x), [[4.0, 0.0], [2.0, 4.0]], rtol=1e-12)


# ---------------------------------------------------------------- jacobian: structures and values
def test_jacobian_of_tuple_output_w_r_t_tuple_argnums_is_a_tuple_of_tuples():
    J = jx.jacobian(two_outputs, argnums=(0, 2))(A, B, V)
    outs = two_outputs(A, B, V)
    ins = {0: A, 2: V}
    assert isinstance(J, tuple) and len(J) == 2
    for i, row in enumerate(J):
        assert isinstance(row, tuple) and len(row) == 2
        for j, k in enumerate((0, 2)):
            assert row[j].shape == outs[i].shape + ins[k].shape
            ref = central(lambda a, b, v: two_outputs(a, b, v)[i], [A, B, V], k)
            np.testing.assert_allclose(row[j], ref, rtol=1e-7, atol=1e-9, err_msg=f"output {i}, argnum {k}")


def test_jacobian_of_tuple_output_w_r_t_one_argnum_is_a_tuple_of_arrays():
    J = jx.jacobian(two_outputs)(A, B, V)
    assert isinstance(J, tuple) and [j.shape for j in J] == [(3, 2, 3, 4), (4, 3, 4)]


def test_jacobian_dict_output_outside_dict_input_inside():
    def f(p):
        return {"u": np.sin(p["a"]) @ p["b"], "s": np.sum(p["a"] ** 2)}

    J = jx.jacobian(f)({"a": A, "b": B})
    assert sorted(J) == ["s", "u"] and sorted(J["u"]) == sorted(J["s"]) == ["a", "b"]
    assert J["u"]["a"].shape == (3, 2, 3, 4) and J["u"]["b"].shape == (3, 2, 4, 2)
    assert J["s"]["a"].shape == (3, 4) and J["s"]["b"].shape == (4, 2)
    np.testing.assert_allclose(J["s"]["a"], 2 * A, rtol=1e-12)
    assert not J["s"]["b"].any()
    np.testing.assert_allclose(J["u"]["b"], central(lambda a, b: np.sin(a) @ b, [A, B], 1), rtol=1e-7, atol=1e-9)


def test_jacobian_of_a_scalar_function_is_its_gradient():
    f = lambda a, b: np.sum(np.tanh(a @ b))
    np.testing.assert_allclose(jx.jacobian(f)(A, B), jx.grad(f)(A, B), rtol=1e-12)


# ---------------------------------------------------------------- vjp
def test_vjp_matches_the_jacobian_contracted_with_the_cotangent():
    out, pull = jx.vjp(two_outputs, A, B, V)
    ref_out = two_outputs(A, B, V)
    for o, r in zip(out, ref_out):
        assert isinstance(o, np.ndarray)
        np.testing.assert_allclose(o, r, rtol=1e-14)
    ct = (RNG.standard_normal(out[0].shape), RNG.standard_normal(out[1].shape))
    cts = pull(ct)
    assert isinstance(cts, tuple) and len(cts) == 3
    J = jx.jacobian(two_outputs, argnums=(0, 1, 2))(A, B, V)
    for k, x in enumerate((A, B, V)):
        ref = contract_out(ct[0], J[0][k]) + contract_out(ct[1], J[1][k])
        assert cts[k].shape == x.shape
        np.testing.assert_allclose(cts[k], ref, rtol=1e-10, atol=1e-12)
        # and from outside: d <ct, f> / d x_k by central differences
        num = central(lambda a, b, v: np.sum(ct[0] * two_outputs(a, b, v)[0]) + np.sum(ct[1] * two_outputs(a, b, v)[1]),
                      [A, B, V], k)
        np.testing.assert_allclose(cts[k], num, rtol=1e-6, atol=1e-8)


def test_vjp_over_dict_primal_and_dict_output():
    def f(p):
        return {"y": p["a"] @ p["b"], "n": np.sum(p["a"] ** 2)}

    p = {"a": A, "b": B}
    out, pull = jx.vjp(f, p)
    ct = {"y": np.ones((3, 2)), "n": np.array(0.5)}
    (g,) = pull(ct)
    assert sorted(g) == ["a", "b"]
    np.testing.assert_allclose(g["a"], np.ones((3, 2)) @ B.T + A, rtol=1e-12)
    np.testing.assert_allclose(g["b"], A.T @ np.ones((3, 2)), rtol=1e-12)


def test_vjp_refuses_a_cotangent_of_another_structure():
    _, pull = jx.vjp(two_outputs, A, B, V)
    with pytest.raises(ValueError, match="structure"):
        pull(np.ones((3, 2)))


def test_vjp_refuses_a_cotangent_of_another_size():
    _, pull = jx.vjp(lambda a: a * 2.0, A)
    with pytest.raises(ValueError):
        pull(np.ones(5))


def test_vjp_refuses_a_transposed_cotangent():
    _, pull = jx.vjp(lambda a: a * 2.0, A)
    with pytest.raises(ValueError):
        pull(np.ones((4, 3)))


# ---------------------------------------------------------------- jvp
def test_jvp_matches_the_jacobian_contracted_with_the_tangents_and_central_differences():
    t = (RNG.standard_normal(A.shape), RNG.standard_normal(B.shape), RNG.standard_normal(V.shape))
    out, tout = jx.jvp(two_outputs, (A, B, V), t)
    J = jx.jacobian(two_outputs, argnums=(0, 1, 2))(A, B, V)
    h = 1e-6
    plus = two_outputs(*(x + h * dx for x, dx in zip((A, B, V), t)))
    minus = two_outputs(*(x - h * dx for x, dx in zip((A, B, V), t)))
    assert isinstance(tout, tuple) and len(tout) == 2
    for i in range(2):
        np.testing.assert_allclose(out[i], two_outputs(A, B, V)[i], rtol=1e-14)
        ref = sum(contract_in(J[i][k], t[k]) for k in range(3))
        assert tout[i].shape == out[i].shape
        np.testing.assert_allclose(tout[i], ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(tout[i], (plus[i] - minus[i]) / (2 * h), rtol=1e-6, atol=1e-8)


def test_jvp_over_a_dict_primal():
    p, t = {"a": A, "b": B}, {"a": np.ones_like(A), "b": np.zeros_like(B)}
    out, tout = jx.jvp(lambda q: np.sum(np.tanh(q["a"] @ q["b"])), (p,), (t,))
    g = jx.grad(lambda q: np.sum(np.tanh(q["a"] @ q["b"])))(p)
    assert float(tout) == pytest.approx(float(np.sum(g["a"])), rel=1e-12)


def test_jvp_of_an_output_that_ignores_the_input_is_zero():
    out, tout = jx.jvp(lambda a, b: np.sin(b), (A, B), (np.ones_like(A), np.zeros_like(B)))
    assert tout.shape == B.shape and not tout.any()


def test_jvp_errors_name_the_problem():
    with pytest.raises(ValueError, match="1 primals but 2 tangents"):
        jx.jvp(np.sin, (A,), (A, A))
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        jx.jvp(lambda a: np.sin(a), (A,), (A.T,))
    with pytest.raises(ValueError, match="structure"):
        jx.jvp(lambda p: np.sum(p["a"]), ({"a": A},), (A,))


# ---------------------------------------------------------------- float32
def test_float32_is_preserved_by_every_transform():
    a, b = A.astype(np.float32), B.astype(np.float32)
    f = lambda a, b: np.sum(np.tanh(a @ b))
    g = jx.grad(f, argnums=(0, 1))(a, b)
    assert [x.dtype for x in g] == [np.float32, np.float32]
    v, g0 = jx.value_and_grad(f)(a, b)
    assert v.dtype == np.float32 and g0.dtype == np.float32
    J = jx.jacobian(lambda a, b: np.tanh(a @ b))(a, b)
    assert J.dtype == np.float32 and J.shape == (3, 2, 3, 4)
    out, pull = jx.vjp(lambda a, b: np.tanh(a @ b), a, b)
    assert out.dtype == np.float32 and all(c.dtype == np.float32 for c in pull(np.ones((3, 2), np.float32)))
    out, tout = jx.jvp(lambda a, b: np.tanh(a @ b), (a, b), (np.ones_like(a), np.zeros_like(b)))
    assert out.dtype == np.float32 and tout.dtype == np.float32
    np.testing.assert_allclose(g[0], jx.grad(f)(A, B), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- errors
def test_argnums_out_of_range_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"argnums=2 does not name a positional argument of a call with 2"):
        jx.grad(lambda a, b: np.sum(a @ b), argnums=2)(A, B)
    with pytest.raises(ValueError, match=r"argnums=\(0, -3\)"):
        jx.jacobian(lambda a, b: a @ b, argnums=(0, -3))(A, B)
    with pytest.raises(ValueError, match="argnums"):
        jx.value_and_grad(lambda a: np.sum(a), argnums=1)(A)


def test_grad_of_a_non_scalar_output_is_a_type_error_pointing_to_jacobian():
    with pytest.raises(TypeError, match=r"must return a scalar.*shape \(3, 2\).*jx.jacobian"):
        jx.grad(lambda a, b: a @ b)(A, B)


def test_grad_on_nodes_returns_a_node_and_array_transforms_refuse_them_by_name():
    a = jx.var(A)
    g = jx.grad(lambda a: np.sum(a ** 3))(a)  # a node: the gradient graph, differentiable again
    assert isinstance(g, jx.Node)
    np.testing.assert_allclose(g.value, 3 * A ** 2)
    np.testing.assert_allclose(jx.jacobian(jx.sum(g), a), 6 * A)  # d/dA Σ 3A² = 6A, by hand
    with pytest.raises(TypeError, match=r"argument a is a node"):
        jx.jvp(lambda a: np.sum(a), (a,), (np.ones_like(A),))
    with pytest.raises(TypeError, match=r"argument p\['w'\] is a node"):
        jx.vjp(lambda p: np.sum(p["w"]), {"w": jx.var(A)})


def test_has_aux_without_a_pair_and_a_non_function_are_type_errors():
    with pytest.raises(TypeError, match="has_aux=True needs f to return a pair"):
        jx.grad(lambda a: np.sum(a), has_aux=True)(A)
    with pytest.raises(TypeError, match="expected a function"):
        jx.value_and_grad(3)(A)


def test_nodes_first_still_mean_the_node_api():
    W = jx.var(A, name="W")
    l = jx.sum(W ** 2)
    np.testing.assert_allclose(jx.grad(l, W), 2 * A, rtol=1e-12)
    assert jx.jacobian(W * 2.0, W).shape == A.shape + A.shape


def test_an_argument_named_twice_in_argnums_gets_its_gradient_twice():
    g = jx.grad(lambda a, b: np.sum(a * a * b), argnums=(0, 0, 1))(A, 2 * A)
    np.testing.assert_allclose(g[0], 4 * A * A)  # d/da Σ a² b = 2 a b, b = 2A
    np.testing.assert_allclose(g[1], 4 * A * A)
    np.testing.assert_allclose(g[2], A * A)
