"""Contraction orders: same results, FLOPs as planned, shared products, memory, the optimal-plan property."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jacobians as jx
from jacobians.kernel import pairwise
from jacobians.graph import local_jacobian

PURE = ("reverse", "forward")


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-300)


def _seed1(D=4, N=5, seed=0):
    X = jx.var(np.random.default_rng(seed).standard_normal((D, N)), name="X")
    W = X @ X.T
    return X, W, W @ X


def _cases():
    """(name, y, x, hold) covering chains, several paths, held nodes, vectors and a scalar loss."""
    rng = np.random.default_rng(7)
    X, W, Y = _seed1()
    v = jx.var(rng.standard_normal(6), name="v")
    A, B = rng.standard_normal((2, 6, 6))
    M = jx.var(rng.standard_normal((3, 4)), name="M")
    H = jx.tanh(M @ rng.standard_normal((4, 2)))
    return [
        ("seed1 dY/dX", Y, X, ()),
        ("seed1 dY/dX, W held", Y, X, (W,)),
        ("seed1 dl/dX", jx.fro(Y), X, ()),
        ("seed1 dl/dW", jx.sum(Y * Y), W, ()),
        ("vector chain", jx.tanh(A @ jx.sin(B @ v)), v, ()),
        ("reuse", jx.exp(v) * jx.sin(v) + v * v, v, ()),
        ("layer loss", jx.cross_entropy(H @ rng.standard_normal((2, 3)), [0, 2, 1]), M, ()),
    ]


@pytest.mark.parametrize("name,y,x,hold", _cases(), ids=[c[0] for c in _cases()])
def test_every_order_gives_the_same_jacobian(name, y, x, hold):
    ref = jx.jacobian(y, x, method="vjp", hold=hold)
    for order in jx.ORDERS:
        p = jx.plan(y, x, order, hold=hold)
        J = p.execute()
        assert J.shape == y.shape + x.shape and J.flags.c_contiguous
        assert _rel(J, ref) < 1e-12, order
        np.testing.assert_array_equal(J, jx.jacobian(y, x, method="explicit", order=order, hold=hold))
        assert p.flops > 0 and p.largest_intermediate > 0 and p.largest_operand > 0
        if y.size == 1:
            np.testing.assert_array_equal(jx.grad(y, x, method="explicit", order=order, hold=hold), J.reshape(x.shape))


@pytest.mark.parametrize("name,y,x,hold", _cases(), ids=[c[0] for c in _cases()])
def test_optimal_plan_is_never_above_either_pure_order(name, y, x, hold):
    flops = {o: jx.plan(y, x, o, hold=hold).flops for o in jx.ORDERS}
    assert flops["optimal"] <= min(flops["reverse"], flops["forward"])


def _abcd():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((256, 256))
    B = rng.standard_normal((256, 4))
    C = rng.standard_normal((4, 256))
    D = rng.standard_normal((256, 256))
    x = jx.var(rng.standard_normal(256), name="x")
    return (A, B, C, D), x, A @ (B @ (C @ (D @ x)))


def test_abcd_optimal_contracts_as_ab_times_cd():
    """J = A·B·C·D: (AB)(CD) costs 3 · 256·4·256 multiply-adds; a pure order pays one 256³ product."""
    (A, B, C, D), x, y = _abcd()
    plans = {o: jx.plan(y, x, o) for o in jx.ORDERS}
    mac = 256 * 4 * 256
    assert plans["optimal"].flops == 2 * 3 * mac == 1_572_864                     # ≈ 1.6e6
    assert plans["reverse"].flops == plans["forward"].flops == 2 * (2 * mac + 256**3) == 34_603_008  # ≈ 3.5e7
    assert plans["naive"].flops == 4 * (256**4 * 4)  # one loop over all five indices, 4 ops per point
    # operands run from the y end: J(A), J(B), J(C), J(D); (0, 1) = AB, then (0, 1) = CD, then the two
    assert plans["optimal"].paths == [[(0, 1), (0, 1), (0, 1)]]
    assert plans["optimal"].largest_intermediate == 256 * 256
    ABCD = A @ B @ C @ D
    for order in PURE + ("optimal",):  # naive would loop 256⁴ times: planned only
        assert _rel(plans[order].execute(), ABCD) < 1e-12


def test_naive_plans_one_einsum_and_executes_to_the_same_result():
    x = jx.var(np.random.default_rng(0).standard_normal((3, 2)), name="x")
    y = np.ones((2, 3)) @ jx.tanh(np.arange(9.0).reshape(3, 3) @ x)
    p = jx.plan(y, x, "naive")
    assert p.paths == [[(0, 1, 2)]] and len(p.terms[0].steps) == 1
    assert p.flops > jx.plan(y, x, "optimal").flops
    np.testing.assert_allclose(p.execute(), jx.jacobian(y, x, method="vjp"), rtol=1e-12)


def test_naive_on_a_long_chain_runs_in_reasonable_time():
    """31 matrix nodes, 62 index labels: the one naive step is contracted pairwise by opt_einsum."""
    x = jx.var(np.ones((2, 2)), name="x")
    y = x
    for _ in range(30):
        y = np.full((2, 2), 0.5) @ y
    assert jx.plan(y, x, "naive").flops > 2**60
    np.testing.assert_allclose(jx.jacobian(y, x, order="naive"), jx.jacobian(y, x, order="optimal"), rtol=1e-12)


def test_paths_sharing_a_product_compute_it_once():
    """dl/dY·dY/dW is on both X→Xᵀ→W→Y→l and X→W→Y→l: reverse order contracts it once."""
    X, W, Y = _seed1(6, 6)
    l = jx.fro(Y)
    p = jx.plan(l, X, "reverse")
    assert [t.reused for t in p.terms] == [[False, False, False], [True, False], [False]]
    assert p.flops == sum(f for t in p.terms for f, r in zip(t.step_flops, t.reused) if not r)
    assert p.flops < sum(t.flops for t in p.terms)
    assert "reuse a product" in str(p)


def test_reverse_gradient_builds_each_local_jacobian_once(monkeypatch):
    import jacobians.chain_rule as cr

    built = []

    def counting(child, parent):
        built.append((child.id, parent.id))
        return local_jacobian(child, parent)

    monkeypatch.setattr(cr, "local_jacobian", counting)
    X, W, Y = _seed1(4, 4)
    jx.grad(jx.fro(Y), X, method="explicit", order="reverse")
    assert len(built) == len(set(built)) == 6  # l←Y, Y←W, W←Xᵀ, Xᵀ←X, W←X, Y←X


@pytest.mark.parametrize("order", ["reverse", "optimal"])
def test_explicit_gradient_peak_memory_is_about_one_local_jacobian(order):
    X, W, Y = _seed1(20, 20)
    l = jx.fro(Y)
    largest = jx.plan(l, X, order).largest_operand_bytes  # 20⁴ · 8 bytes
    tracemalloc.start()
    try:
        jx.grad(l, X, method="explicit", order=order)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 1.25 * largest, f"peak {peak:,} bytes vs largest local Jacobian {largest:,}"


@pytest.mark.parametrize("eq,sa,sb", [
    ("abcd,cdef->abef", (2, 3, 4, 5), (4, 5, 6, 7)),   # out+in layouts: views only
    ("cdef,abcd->efab", (4, 5, 6, 7), (2, 3, 4, 5)),   # the operands in opt_einsum's popped order
    ("abcd,cdef->efab", (2, 3, 4, 5), (4, 5, 6, 7)),   # output wants b's free axes first: roles swapped
    ("ab,ba->", (3, 4), (4, 3)),                       # a full inner product
    ("a,b->ab", (3,), (4,)),                           # an outer product
    ("abc,cb->a", (2, 3, 4), (4, 3)),                  # shared axes in a different order
    ("ab,bc->abc", (2, 3), (3, 4)),                    # a batch index: a batched matmul
    ("zab,zbc->zca", (5, 2, 3), (5, 3, 4)),            # a batched matmul, transposed out
    ("ab,cd->", (2, 3), (4, 5)),                       # labels in one operand only: summed first
    ("aa,ab->b", (3, 3), (3, 4)),                      # a repeated label: einsum
])
def test_pairwise_step_matches_einsum(eq, sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose(pairwise(eq, a, b), np.einsum(eq, a, b), rtol=1e-12, atol=1e-12)


def test_a_broadcast_product_lands_in_its_planned_order_so_the_next_step_copies_nothing():
    """edb · eba -> edba, then edba · ec -> abcd (the Gauss–Newton term of an MLP Hessian): the multiply's
    result is laid out e-first as planned, and the product views it as (dba × e); numpy's own layout for
    the multiply (d-first here) made the next step copy all of edba."""
    rng = np.random.default_rng(0)
    edb, eba, ec = rng.standard_normal((16, 8, 8)), rng.standard_normal((16, 8, 8)), rng.standard_normal((16, 8))
    made = pairwise("edb,eba->edba", edb.transpose(1, 0, 2).copy().transpose(1, 0, 2), eba)
    assert made.flags.c_contiguous
    tracemalloc.start()
    try:
        got = pairwise("edba,ec->abcd", made, ec)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(got, np.einsum("edb,eba,ec->abcd", edb, eba, ec), rtol=1e-12, atol=1e-12)
    assert peak < 1.5 * got.nbytes, f"peak {peak:,} bytes for a {got.nbytes:,}-byte product: an operand was copied"


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 48), min_size=2, max_size=31),
       cols=st.sampled_from([0, 1, 3]))
def test_optimal_flops_never_above_pure_orders_for_random_chains(sizes, cols):
    """y = M_k ⋯ M_1 x with constant M_i of random sizes: up to 30 local Jacobians, planned only."""
    x = jx.var(np.ones((sizes[0], cols) if cols else sizes[0]), name="x")
    y = x
    for rows, inner in zip(sizes[1:], sizes[:-1]):
        y = np.ones((rows, inner)) @ y
    plans = {o: jx.plan(y, x, o) for o in ("optimal",) + PURE}
    assert len(plans["optimal"].terms) == 1 and len(plans["optimal"].terms[0].operands) == len(sizes) - 1
    assert plans["optimal"].flops <= min(plans["reverse"].flops, plans["forward"].flops)


def _deep_chain(n):
    x = jx.var(np.ones(3), name="x")
    y = x
    for _ in range(n):
        y = -y
    return jx.sum(y), x


def test_optimal_planning_of_a_deep_chain_counts_three_path_evaluations(monkeypatch):
    """A 2000-op chain: one chain order (greedy past DP_MAX) and the two pure orders, each evaluated once."""
    import jacobians.chain_rule as cr

    calls = []
    original = cr.oe.contract_path

    def counting(*args, **kwargs):
        calls.append(len(args) - 1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cr.oe, "contract_path", counting)
    l, x = _deep_chain(2000)
    p = jx.plan(l, x, "optimal")
    assert calls == [2001, 2001, 2001]  # 2001 local Jacobians, three candidate orders, nothing else
    assert len(p.terms) == 1 and len(p.terms[0].steps) == 2000
    assert p.flops <= min(jx.plan(l, x, o).flops for o in ("reverse", "forward"))


def test_chain_dp_finds_the_matrix_chain_optimum():
    """(10×100)(100×5)(5×50): ((AB)C) costs 7,500 multiply-adds against 75,000 for (A(BC))."""
    from jacobians.chain_rule import chain_order

    assert chain_order([10, 100, 5, 50]) == [(0, 1), (0, 1)]   # A·B first, then with C
    assert chain_order([50, 5, 100, 10]) == [(1, 2), (0, 1)]   # B·C first


def test_optimal_accumulation_takes_the_cheaper_direction():
    """Past MAX_PATHS the plan accumulates node by node; "optimal" plans both directions and keeps the cheaper.

    y = Σ_i (A_i x) ⊙ (B_i x) with x of length 8 and y of length 8: 100 paths, and
    forward accumulation (columns dn/dx) is the cheaper one here.
    """
    rng = np.random.default_rng(0)
    x = jx.var(rng.standard_normal(8), name="x")
    y = None
    for _ in range(50):
        t = (rng.standard_normal((8, 8)) @ x) * (rng.standard_normal((8, 8)) @ x)
        y = t if y is None else y + t
    plans = {o: jx.plan(y, x, o) for o in ("optimal",) + PURE}
    assert all(p.strategy == "accumulate" for p in plans.values())
    assert plans["forward"].flops < plans["reverse"].flops
    assert plans["optimal"].flops == plans["forward"].flops and plans["optimal"].order == "forward"
    np.testing.assert_allclose(plans["optimal"].execute(), jx.jacobian(y, x, method="vjp"), rtol=1e-10)


@pytest.mark.parametrize("D,N,ratio", [(4, 4, 0.70), (64, 96, 0.67)])
def test_seed_one_gets_the_cross_country_order_that_forward_accumulation_gives(D, N, ratio):
    """Seed 1, Y = (X Xᵀ) X: three paths from X, two of them through W = X Xᵀ. Node-by-node forward
    accumulation forms dW/dX once for both; "optimal" takes it, about a third fewer FLOPs than either pure
    order. Counted from the plans (opt_einsum's FLOPs), never timed; D=64, N=96 is only planned.
    """
    X = jx.var(np.ones((D, N)), name="X")
    Y = (X @ X.T) @ X
    best = jx.plan(Y, X)
    pure = min(jx.plan(Y, X, o).flops for o in PURE)
    assert best.strategy == "accumulate" and best.order == "forward"
    assert best.flops == sum(fl for _eq, _edge, fl in best.steps) <= ratio * pure
    if D == 4:
        np.testing.assert_allclose(best.execute(), jx.jacobian(Y, X, method="vjp"), rtol=1e-12)


@pytest.mark.parametrize("rows,cols", [(256, 256), (130, 300), (300, 97)])
@pytest.mark.parametrize("add", [False, True])
def test_a_transposed_copy_goes_block_by_block_and_keeps_every_entry(rows, cols, add):
    """kernel.transfer between matrices whose fastest axes differ (a transposed source, or a broadcast column):
    whole blocks in one ufunc call, the rows and columns past the last block directly; every entry lands."""
    from jacobians.kernel import transfer

    rng = np.random.default_rng(rows + cols)
    A = rng.standard_normal((cols, rows))
    D = rng.standard_normal((rows, cols))
    want = D + A.T if add else A.T.copy()
    transfer(D, A.T, add=add)
    np.testing.assert_array_equal(D, want)
    v = rng.standard_normal((rows, 1))
    Z = np.zeros((rows, cols))
    transfer(Z, v, add=add)
    np.testing.assert_array_equal(Z, np.broadcast_to(v, Z.shape))
