"""The factored route: every op's form against the generated dense Jacobian, graphs against the dense route.

The factored forms are materialized here independently of jacobians/dense.py and
jacobians/elimination.py: each delta becomes an identity matrix and np.einsum
multiplies everything out.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jacobians as jx
from jacobians.compare import ROUTES
from jacobians.derive import derive
from jacobians.factored import MAX_PRODUCTS, plan_factored
from jacobians.form import Factor, Factored, Product, check_factored
from jacobians.registry import Op
from jacobians.vjp_route import backward

from op_cases import CASES, draw
from test_graph import GRAPHS
from test_orders import _cases as order_cases


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300) if a.size else 0.0


def materialize(F: Factored, out_shape, in_shape) -> np.ndarray:
    """Σ_terms coef · einsum(factors, one np.eye per delta, ones on axes in neither)."""
    sizes = dict(zip(F.out + F.inp, tuple(out_shape) + tuple(in_shape)))
    for t in F.terms:
        for f in t.factors:
            sizes.update(zip(f.labels, np.shape(f.value)))
        for _ in t.deltas:  # an index summed inside the op may appear in deltas only: its length from its partner
            for a, b in t.deltas:
                sizes.setdefault(a, sizes.get(b))
                sizes.setdefault(b, sizes.get(a))
    J = np.zeros(tuple(out_shape) + tuple(in_shape))
    if F.flat:  # δ(flat(out), flat(in))
        J += np.eye(math.prod(out_shape)).reshape(J.shape)
    for t in F.terms:
        subs = [f.labels for f in t.factors] + list(t.deltas)
        ops = [np.asarray(f.value, dtype=np.float64) for f in t.factors] + [np.eye(sizes[d[0]]) for d in t.deltas]
        for c in F.out + F.inp:
            if not any(c in s for s in subs):
                subs.append(c)
                ops.append(np.ones(sizes[c]))
        J += t.coef * (np.einsum(",".join(subs) + "->" + F.out + F.inp, *ops) if ops else 1.0)
    return J


def _leaves(case, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [jx.var(draw(s, case.domain, rng).astype(dtype), name=f"x{i}") for i, s in enumerate(case.shapes)]


def test_an_op_declares_one_form_and_one_vjp_per_input():
    with pytest.raises(ValueError, match="one of each per differentiable input"):
        Op("half", np.sin, lambda s: tuple(s), forms=(lambda y, x: None, lambda y, x: None),
           vjps=(lambda g, y, x: g,))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_generated_dense_jacobian_equals_the_form_materialized_with_eye(case):
    """The one generator (tied views, delta elimination) against an eye per delta."""
    leaves = _leaves(case)
    y = case.call(*leaves)
    values = [p.value for p in y.parents]
    for i, p in enumerate(y.parents):
        F = y.op.form(i, y.value, *values, **y.params)
        check_factored(F, y.shape, p.shape, f"op {y.op.name!r}")
        dense = y.op.jacobian(i, y.value, *values, **y.params)
        assert dense.shape == y.shape + p.shape and dense.dtype == y.dtype
        np.testing.assert_allclose(materialize(F, y.shape, p.shape), dense, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_factored_route_equals_dense_route_per_op(case):
    leaves = _leaves(case)
    y = case.call(*leaves)
    for x in leaves:
        J = jx.jacobian(y, x, method="factored")
        assert J.shape == y.shape + x.shape and J.flags.c_contiguous and J.dtype == y.dtype
        assert _rel(J, jx.jacobian(y, x)) < 1e-12
        assert plan_factored(y, x).strategy == ("reverse" if y.size == 1 else "products")


@pytest.mark.parametrize("case", [c for c in CASES if c.op in ("matmul", "tanh", "softmax", "add", "solve")],
                         ids=lambda c: c.id)
def test_float32_stays_float32(case):
    leaves = _leaves(case, dtype=np.float32)
    y = case.call(*leaves)
    for x in leaves:
        J = jx.jacobian(y, x, method="factored")
        assert J.dtype == np.float32
        assert _rel(J.astype(np.float64), jx.jacobian(y, x).astype(np.float64)) < 1e-5


def test_materialize_catches_a_wrong_factored_form():
    """The check above has teeth: δ on the wrong pair (δ_iq instead of δ_ip) is caught."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    wrong = Factored("ij", "pq", (Product((Factor(b, "pj", "{x1}"),), ("iq",)),))
    A = jx.var(a)
    dense = jx.jacobian(A @ b, A)
    assert _rel(materialize(wrong, (3, 3), (3, 3)), dense) > 0.1


def test_check_factored_names_the_op_and_what_is_wrong():
    F = Factored("ij", "p", (Product((), ("ip",)),))
    with pytest.raises(ValueError, match=r"op 'demo'.*out 'ij' and in 'p'.*\(2, 3\) \+ \(2, 2\)"):
        check_factored(F, (2, 3), (2, 2), "op 'demo'")
    G = Factored("i", "p", (Product((Factor(np.ones(3), "i", "w"),), ("ip",)),))
    with pytest.raises(ValueError, match="factor 'w' gives index i length 3"):
        check_factored(G, (2,), (2,), "op 'demo'")


# ------------------------------------------------------------------ graphs
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_graphs_of_test_graph_agree_with_dense(name):
    y, xs = GRAPHS[name]()
    for x in xs:
        F = jx.jacobian(y, x, method="factored")
        assert F.shape == y.shape + x.shape and F.flags.c_contiguous
        assert _rel(F, jx.jacobian(y, x)) < 1e-12
        assert _rel(F, jx.jacobian(y, x, method="vjp")) < 1e-12


@pytest.mark.parametrize("name,y,x,hold", order_cases(), ids=[c[0] for c in order_cases()])
def test_cases_of_test_orders_agree_with_dense(name, y, x, hold):
    F = jx.jacobian(y, x, method="factored", hold=hold)
    assert _rel(F, jx.jacobian(y, x, hold=hold)) < 1e-12
    if y.size == 1:
        np.testing.assert_array_equal(jx.grad(y, x, method="factored", hold=hold), F.reshape(x.shape))


def _seed1(D=4, N=6, seed=3):
    Xv = np.random.default_rng(seed).standard_normal((D, N))
    X = jx.var(Xv, name="X")
    W = X @ X.T
    return Xv, X, W, W @ X


def test_seed1_full_jacobian_and_gradients():
    Xv, X, W, Y = _seed1()
    for wrt, hold in ((X, ()), (W, ()), (X, (W,))):
        assert _rel(jx.jacobian(Y, wrt, method="factored", hold=hold), jx.jacobian(Y, wrt, hold=hold)) < 1e-12
    l = jx.sum(Y * Y)
    Yv, Wv = Y.value, W.value
    closed = 2 * (Yv @ Xv.T @ Xv + Xv @ Yv.T @ Xv + Wv @ Yv)
    assert _rel(jx.grad(l, X, method="factored"), closed) < 1e-12
    assert _rel(jx.grad(l, W, method="factored"), 2 * Yv @ Xv.T) < 1e-12
    assert _rel(jx.grad(jx.fro(Y), Y, method="factored"), Yv / np.linalg.norm(Yv)) < 1e-12


def _seed2(n=4, m=5, k=3, seed=5):
    """Two dense layers: Z1 = X W1 + b1, A1 = σ(Z1), Z2 = A1 W2 + b2, C = Σ (σ(Z2) - T)²."""
    rng = np.random.default_rng(seed)
    X = jx.const(rng.standard_normal((m, n)), name="X")
    W1 = jx.var(rng.standard_normal((n, k)), name="W1")
    b1 = jx.var(rng.standard_normal(k), name="b1")
    W2 = jx.var(rng.standard_normal((k, 2)), name="W2")
    b2 = jx.var(rng.standard_normal(2), name="b2")
    Z1 = X @ W1 + b1
    A1 = jx.sigmoid(Z1)
    Z2 = A1 @ W2 + b2
    A2 = jx.sigmoid(Z2)
    D = A2 - rng.uniform(0, 1, (m, 2))
    return dict(X=X, W1=W1, b1=b1, W2=W2, b2=b2, Z1=Z1, A1=A1, Z2=Z2, A2=A2, D=D, C=jx.sum(D ** 2))


def test_seed2_dense_layer_jacobians_and_gradients():
    g = _seed2()
    for wrt in ("W1", "b1", "W2", "b2"):
        assert _rel(jx.jacobian(g["Z2"], g[wrt], method="factored"), jx.jacobian(g["Z2"], g[wrt])) < 1e-12
        assert _rel(jx.grad(g["C"], g[wrt], method="factored"), jx.grad(g["C"], g[wrt], method="vjp")) < 1e-12
    A2, D = g["A2"].value, g["D"].value
    delta = 2 * D * A2 * (1 - A2)
    assert _rel(jx.grad(g["C"], g["W2"], method="factored"), g["A1"].value.T @ delta) < 1e-12
    assert _rel(jx.grad(g["C"], g["b2"], method="factored"), delta.sum(axis=0)) < 1e-12


# ------------------------------------------------ random graphs (property)
def _random_graph(data):
    """A random program on one variable: elementwise ops, products with constants and itself,
    transposes, broadcasting adds, products of earlier nodes, softmax and keepdims sums."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    m, n = data.draw(st.integers(1, 4), label="m"), data.draw(st.integers(1, 4), label="n")
    x = jx.var(rng.standard_normal((m, n)), name="x")
    pool = [x]
    for _ in range(data.draw(st.integers(1, 6), label="steps")):
        a = data.draw(st.sampled_from(pool), label="operand")
        kind = data.draw(st.sampled_from(["tanh", "sin", "sigmoid", "square", "neg", "T", "matmul_r", "matmul_l",
                                          "gram", "bias_row", "bias_col", "mul", "add", "softmax", "sum_keep",
                                          "log_softmax"]), label="op")
        r, c = a.shape
        if kind in ("tanh", "sin", "sigmoid"):
            b = getattr(jx, kind)(a)
        elif kind == "square":
            b = a ** 2
        elif kind == "neg":
            b = -a
        elif kind == "T":
            b = a.T
        elif kind == "matmul_r":
            b = a @ rng.standard_normal((c, data.draw(st.integers(1, 4), label="k")))
        elif kind == "matmul_l":
            b = rng.standard_normal((data.draw(st.integers(1, 4), label="k"), r)) @ a
        elif kind == "gram":
            b = a @ a.T
        elif kind == "bias_row":
            b = a + rng.standard_normal((1, c))
        elif kind == "bias_col":
            b = rng.standard_normal((r, 1)) * a
        elif kind in ("mul", "add"):
            same = [p for p in pool if p.shape == a.shape]
            other = data.draw(st.sampled_from(same), label="other")
            b = a * other if kind == "mul" else a + other
        elif kind == "softmax":
            b = jx.softmax(a, axis=data.draw(st.integers(0, 1), label="axis"))
        elif kind == "log_softmax":
            b = jx.log_softmax(a, axis=data.draw(st.integers(0, 1), label="axis"))
        else:
            b = jx.sum(a, axis=data.draw(st.integers(0, 1), label="axis"), keepdims=True)
        pool.append(b)
    return x, pool[-1]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_graphs_agree_with_dense_and_vjp(data):
    """Normwise, with a floor of 1 on the scale: a Jacobian that is 0 up to round-off (softmax
    along a length-1 axis) is 0 on one route and 1e-17 on another."""
    def close(a, b):
        return np.abs(a - b).max() <= 1e-11 * max(np.abs(a).max(), np.abs(b).max(), 1.0)

    x, y = _random_graph(data)
    F = jx.jacobian(y, x, method="factored")
    assert close(F, jx.jacobian(y, x)) and close(F, jx.jacobian(y, x, method="vjp"))
    l = jx.sum(y * y)
    assert close(jx.grad(l, x, method="factored"), jx.grad(l, x, method="vjp"))


# ------------------------------------------------------ plan and fallback
def test_deltas_between_free_indices_are_scattered_not_multiplied():
    """tanh∘sin of a 5×4 matrix: one product, δ on both axis pairs, operands of 20 entries only."""
    X = jx.var(np.random.default_rng(0).standard_normal((5, 4)), name="X")
    y = jx.tanh(jx.sin(X))
    p = plan_factored(y, X)
    (r,) = p.products
    assert len(r.ties) == 2 and all(o.value.size == 20 for o in r.operands)
    assert "scatter on axes 0=2 1=3" in str(p)
    assert _rel(p.execute(), jx.jacobian(y, X)) < 1e-14


def test_too_many_products_fall_back_to_the_dense_route():
    x = jx.var(np.linspace(0.2, 0.9, 3), name="x")
    y = x
    for _ in range(7):  # 2**7 = 128 paths, one product each
        y = y * jx.sin(y)
    p = plan_factored(y, x)
    assert p.strategy == "dense" and f"max_products={MAX_PRODUCTS}" in p.reason and "128 products" in p.reason
    assert "falls back to the dense route" in str(p)
    assert _rel(jx.jacobian(y, x, method="factored"), jx.jacobian(y, x, method="vjp")) < 1e-12
    assert plan_factored(y, x, max_products=200).strategy == "products"
    assert _rel(plan_factored(y, x, max_products=200).execute(), jx.jacobian(y, x, method="vjp")) < 1e-12
    assert "not derived" in str(derive(jx.sum(y), x))


def test_gradient_through_a_reshape_never_builds_the_flat_identity():
    """A flatten is δ(flat(i), flat(j)): the sweep reshapes G instead of building a 4096² 0/1 matrix."""
    X = jx.var(np.random.default_rng(0).standard_normal((64, 64)), name="X")
    l = jx.sum(jx.tanh(jx.reshape(X, (32, 128))) ** 2)
    F = jx.get_op("reshape").form(0, np.zeros((32, 128)), X.value, shape=(32, 128))
    assert F.flat and not F.terms
    previous = jx.set_memory_limit(1 << 20)  # 1 MiB: the 0/1 matrix would need 128 MiB
    try:
        G = jx.grad(l, X, method="factored")
    finally:
        jx.set_memory_limit(previous)
    assert _rel(G, jx.grad(l, X, method="vjp")) < 1e-14


def test_identity_independent_and_held():
    x = jx.var(np.ones((2, 3)), name="x")
    b = jx.var(np.ones(4), name="b")
    np.testing.assert_array_equal(jx.jacobian(x, x, method="factored").reshape(6, 6), np.eye(6))
    assert not jx.jacobian(jx.tanh(x), b, method="factored").any()
    h = jx.tanh(x)
    assert not jx.jacobian(h * 2, x, method="factored", hold=[h]).any()


def test_gradient_flops_scale_as_D_cubed():
    """Planned FLOPs of dl/dX for seed 1 and dC/dW1 for seed 2 grow 8× per doubling of D (D³, not D⁴)."""
    def seed1(D):
        _, X, W, Y = _seed1(D, D)
        return jx.fro(Y), X

    def seed2(D):
        rng = np.random.default_rng(0)
        W1 = jx.var(rng.standard_normal((D, D)), name="W1")
        A = jx.sigmoid(rng.standard_normal((D, D)) @ W1 + rng.standard_normal((1, D)))
        return jx.sum((A @ rng.standard_normal((D, D)) - 1.0) ** 2), W1

    for build in (seed1, seed2):
        f16, f32 = (plan_factored(*build(D)).flops for D in (16, 32))
        assert 7 <= f32 / f16 <= 9, (build.__name__, f16, f32)
        d16, d32 = (jx.plan(*build(D)).flops for D in (16, 32))
        assert d32 / d16 >= 14  # the dense route: D⁴


# ----------------------------------------------------------------- derive
def _evaluate(d, arrays, G=None):
    """Σ coef · einsum(term.einsum, operands looked up by name) — the derived expression, executed."""
    total = 0.0
    for t in d.terms:
        ops = [G if n == "G" else arrays[n] for n in t.operands]
        total = total + t.coef * np.einsum(t.einsum, *ops)
    return total


def test_derive_gives_the_vjp_shortcut_of_seed1():
    Xv, X, W, Y = _seed1()
    names = {W: "W", Y: "Y"}
    d = derive(Y, W, names=names)
    (t,) = d.terms
    assert (t.einsum, t.operands, t.matrix) == ("ad,bd->ab", ("G", "X"), "G Xᵀ")
    assert str(d).splitlines()[0] == "Σ G·dY/dW = G Xᵀ"
    G = np.random.default_rng(1).standard_normal(Y.shape)
    np.testing.assert_allclose(_evaluate(d, {"X": Xv}, G), backward(Y, W, G), rtol=1e-12)
    assert derive(jx.sum(Y * Y), X, hold=[W], names=names).expression == "2 Wᵀ Y"
    l = jx.fro(Y)
    assert derive(l, W, names={**names, l: "l"}).expression == "(1/l) Y Xᵀ"


def test_derive_total_gradient_of_seed1_is_the_closed_form():
    Xv, X, W, Y = _seed1()
    l = jx.sum(Y * Y)
    d = derive(l, X, names={W: "W", Y: "Y"})
    assert sorted(t.matrix for t in d.terms) == sorted(["X Yᵀ X", "Y Xᵀ X", "Wᵀ Y"])
    assert all(t.coef == 2 for t in d.terms)
    arrays = {"X": Xv, "Xᵀ": Xv.T, "W": W.value, "Y": Y.value}
    np.testing.assert_allclose(_evaluate(d, arrays), jx.grad(l, X, method="vjp"), rtol=1e-12)


def test_derive_dense_layer_gradients():
    g = _seed2()
    names = {g[k]: k for k in ("Z1", "A1", "Z2", "A2", "D")}
    dW2 = derive(g["C"], g["W2"], names=names)
    assert dW2.expression == "2 A1ᵀ (D ⊙ σ'(Z2))"
    db2 = derive(g["C"], g["b2"], names=names)
    assert db2.expression == "2 · 1ᵀ (D ⊙ σ'(Z2))"
    A2 = g["A2"].value
    arrays = {"A1": g["A1"].value, "D": g["D"].value, "σ'(Z2)": A2 * (1 - A2)}
    for d, wrt in ((dW2, "W2"), (db2, "b2")):
        np.testing.assert_allclose(_evaluate(d, arrays), jx.grad(g["C"], g[wrt], method="vjp"), rtol=1e-12)


def test_derive_identity_and_trace():
    A = jx.var(np.eye(3), name="A")
    assert derive(jx.trace(A), A).expression == "I"
    assert derive(A, A).expression == "G"
    assert derive(jx.tanh(A), jx.var(np.ones(2))).expression == "0"


# ---------------------------------------------------------------- compare
def test_compare_has_a_fourth_row():
    _, X, W, Y = _seed1()
    c = jx.compare(jx.fro(Y), [X, W])  # all four routes by default
    assert c.ok and set(c.seconds) == set(ROUTES)
    assert c.discrepancies[("explicit", "factored")][1] < 1e-12
    assert "factored" in str(c) and "4 routes" in str(c)
    three = jx.compare(jx.fro(Y), X, routes=("explicit", "vjp", "numeric"))
    assert "factored" not in three.results and "not requested" in str(three)
    with pytest.raises(ValueError, match="not among explicit, vjp, numeric, factored"):
        jx.compare(jx.fro(Y), X, routes=["magic"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_derived_vjp_equals_the_hand_written_vjp(case):
    """The VJP that delta elimination reads off each form, against the op's own hand-written VJP."""
    from jacobians.elimination import derived_vjp

    leaves = _leaves(case)
    y = case.call(*leaves)
    values = [p.value for p in y.parents]
    g = np.random.default_rng(3).standard_normal(y.shape)
    for i, v in enumerate(values):
        F = y.op.form(i, y.value, *values, **y.params)
        hand = y.op.vjp(i, g, y.value, *values, **y.params)
        np.testing.assert_allclose(derived_vjp(F, g, y.shape, v.shape), np.reshape(hand, v.shape),
                                   rtol=1e-10, atol=1e-12)


def test_a_product_past_52_labels_stays_factored():
    """A 60-layer tanh MLP: the one product along the chain names more than 52 indices.

    It is planned as a whole and run pairwise (each step well under numpy's 52
    letters) instead of falling back to the dense route; the Jacobian is checked
    against the hand-written VJPs and central differences.
    """
    rng = np.random.default_rng(3)
    x = jx.var(0.1 * rng.standard_normal(6), name="x")
    h = x
    for _ in range(60):  # orthogonal weights: the Jacobian neither vanishes nor explodes
        h = jx.tanh(np.linalg.qr(rng.standard_normal((6, 6)))[0] @ h)
    p = plan_factored(h, x)
    assert p.strategy == "products", p.reason
    assert len(set(p.prepared[0].eq) - set(",->")) > 52  # the whole product's own labels
    J = p.execute()
    assert _rel(J, jx.jacobian(h, x, method="vjp")) < 1e-12
    assert _rel(J, jx.jacobian(h, x, method="numeric")) < 1e-6
    l = jx.sum(h * h)
    assert plan_factored(l, x).strategy == "reverse"
    assert _rel(jx.grad(l, x, method="factored"), jx.grad(l, x, method="vjp")) < 1e-12


def test_kernel_steps_past_52_labels_reach_numpy_renamed():
    """A trace and a diagonal step whose labels are opt_einsum symbols past the 52 letters."""
    import opt_einsum as oe

    from jacobians.kernel import contract, pairwise

    a, b = oe.get_symbol(60), oe.get_symbol(61)
    M = np.arange(9.0).reshape(3, 3)
    v = np.array([1.0, 2.0, 3.0])
    assert contract(f"{a}{a}->", [M]) == np.trace(M)
    np.testing.assert_array_equal(pairwise(f"{a}{a},{a}{b}->{b}", M, M), np.diag(M) @ M)
    np.testing.assert_array_equal(contract(f"{a}{b},{b}->{a}", [M, v]), M @ v)


def test_products_sharing_a_factor_are_summed_before_it_multiplies_them():
    """Attention's dY/dWq: two products end in ``…, X_ia -> ijab``; they are summed over (i, j, b) first, so the
    D⁴ result is written by one product, and it still equals the vjp route (one pull-back per entry)."""
    from jacobians.elimination import share_factors

    rng = np.random.default_rng(3)
    D = 5
    X, Wk, Wv = (rng.standard_normal((D, D)) for _ in range(3))
    Wq = jx.var(rng.standard_normal((D, D)), name="Wq")
    K, V = X @ Wk, X @ Wv
    Y = jx.softmax((X @ Wq) @ K.T / np.sqrt(D), axis=-1) @ V
    p = plan_factored(Y, Wq)
    assert p.strategy == "products" and len(p.products) == 2
    pieces, held = share_factors([([o.value for o in r.operands], r.coef, prep)
                                  for r, prep in zip(p.products, p.prepared)], Y.dtype)
    assert len(pieces) == 1 and held == D ** 3 * 8
    J = jx.jacobian(Y, Wq, method="factored")
    np.testing.assert_allclose(J, jx.jacobian(Y, Wq, method="vjp"), rtol=1e-12, atol=1e-13)
