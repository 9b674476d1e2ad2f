"""The memory guard: refusals priced from shapes, before anything large is allocated.

"Before anything large" is shown with tracemalloc (numpy reports its buffers to it):
the peak of new allocations during a refused call stays in kilobytes while the
refused array is 128 TB and each input is 32 MB. Timing is never asserted.
"""
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import jacobians as jx
from jacobians import memory
from jacobians.memory import JacobianTooLarge, check_plan, memory_limit

N = 2000  # the size: dY/dA of a 2000×2000 matmul has 2000⁴ entries (128 TB)
SMALL = 2**20  # 1 MiB: every refused call below must stay under this peak


def _peak(fn):
    """(exception raised or None, peak bytes newly allocated while fn ran)."""
    tracemalloc.start()
    try:
        fn()
        err = None
    except JacobianTooLarge as exc:
        err = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return err, peak


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(0)
    Av, Bv = rng.standard_normal((N, N)), rng.standard_normal((N, N))
    A, B = jx.var(Av, name="A"), jx.var(Bv, name="B")
    Y = A @ B
    return Av, Bv, A, B, Y, jx.fro(Y)


def test_big_gradient_by_vjp_matches_closed_form(big):
    Av, Bv, A, B, Y, l = big
    G = jx.grad(l, A, method="vjp")
    AB = Av @ Bv  # d‖AB‖_F/dA = (AB) Bᵀ / ‖AB‖_F, computed here with numpy alone
    np.testing.assert_allclose(G, AB @ Bv.T / np.linalg.norm(AB), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("order", jx.ORDERS)
@pytest.mark.parametrize("wrt", ["A", "B"])
def test_big_gradient_explicit_refuses_before_allocating(big, order, wrt):
    _, _, A, B, Y, l = big
    x = A if wrt == "A" else B
    err, peak = _peak(lambda: jx.grad(l, x, method="explicit", order=order))
    assert isinstance(err, JacobianTooLarge) and isinstance(err, MemoryError)
    assert peak < SMALL, f"{peak} bytes allocated before refusing"
    assert err.shape == (N, N, N, N) and err.nbytes == N**4 * 8 and err.limit == memory.get_memory_limit()
    msg = str(err)
    assert "matmul" in msg and Y.name in msg  # the op and the node
    assert f"({N}, {N}, {N}, {N})" in msg and f"{N**4 * 8} bytes" in msg  # the shape and the bytes
    assert "memory limit of" in msg  # the limit
    assert 'method="vjp"' in msg and "set_memory_limit" in msg and "JACOBIANS_MEMORY_LIMIT" in msg  # what to do


def test_every_route_refuses_the_full_big_jacobian_before_allocating(big):
    _, _, A, _, Y, _ = big
    for method in jx.METHODS:  # explicit, vjp, numeric (and any later route)
        err, peak = _peak(lambda: jx.jacobian(Y, A, method=method))
        assert isinstance(err, JacobianTooLarge), method
        assert peak < SMALL, (method, peak)
        assert err.nbytes == N**4 * 8  # the full Jacobian (or an intermediate of its size)


def test_check_plan_prices_the_whole_plan_first():
    """Forward order would build the affordable 50 MB dH/dA before meeting the 2 GB dY/dH;
    check_plan prices both from shapes, so its refusal allocates nothing large."""
    n, m = 50, 2000
    rng = np.random.default_rng(1)
    A = jx.var(rng.standard_normal((n, n)), name="A")
    H = jx.tanh(A)
    Y = H @ rng.standard_normal((n, m))
    p = jx.plan(jx.fro(Y), A, "forward")
    assert check_plan(p) == (2 * n * m * n * n + n ** 4) * 8  # dY/dH, dH/dA and their product, live at once
    with memory_limit(100 * 2**20):  # 100 MiB: dH/dA (50 MB) fits, dY/dH (2 GB) does not
        err, peak = _peak(lambda: check_plan(p))
    assert isinstance(err, JacobianTooLarge) and peak < SMALL
    assert err.shape == (n, m, n, n) and "local Jacobian of matmul" in str(err) and Y.name in str(err)


def test_check_plan_covers_node_by_node_accumulation():
    x = jx.var(np.linspace(0.1, 0.9, 30), name="x")
    y = x
    for _ in range(8):  # 2⁸ paths: the plan accumulates node by node
        y = y * jx.sin(y)
    for order in ("reverse", "forward"):
        p = jx.plan(y, x, order)
        assert p.strategy == "accumulate"
        assert check_plan(p) == 3 * 30 * 30 * 8  # a partial, a local Jacobian and their product at once
        with memory_limit(30 * 30 * 8 - 1):
            with pytest.raises(JacobianTooLarge, match=r"\(30, 30\)"):
                check_plan(p)


def test_compare_skips_the_unaffordable_route_and_says_so():
    rng = np.random.default_rng(2)
    Av, Bv = rng.standard_normal((30, 30)), rng.standard_normal((30, 30))
    A = jx.var(Av, name="A")
    l = jx.fro(A @ Bv)
    with memory_limit("1M"):  # dY/dA is 30⁴ · 8 B = 6.2 MiB; gradients are 7 KiB
        c = jx.compare(l, A)
    assert "explicit" in c.skipped and "explicit" not in c.results
    assert {"vjp", "numeric"} <= set(c.results)  # the routes that build no Jacobian of dY/dA still run
    assert c.ok  # the two routes that ran agree
    table = str(c)
    assert "skipped" in table and "above the memory limit" in table and "matmul" in table
    AB = Av @ Bv
    np.testing.assert_allclose(c.results["vjp"][0], AB @ Bv.T / np.linalg.norm(AB), rtol=1e-10)


def test_set_memory_limit_changes_the_limit_and_returns_the_previous():
    x = jx.var(np.ones((20, 20)), name="x")
    y = jx.tanh(x)  # dy/dx: 20⁴ · 8 = 1,280,000 bytes
    before = memory.get_memory_limit()
    previous = jx.set_memory_limit(1_279_999)
    try:
        assert memory.get_memory_limit() == 1_279_999
        with pytest.raises(JacobianTooLarge, match="1280000 bytes"):
            jx.jacobian(y, x)
        assert jx.set_memory_limit(1_280_000) == 1_279_999  # the result fits, not beside what the call holds
        with pytest.raises(JacobianTooLarge, match="1280000 bytes.* beside the .* the call already holds"):
            jx.jacobian(y, x)
        assert jx.set_memory_limit(1_600_000) == 1_280_000
        assert jx.jacobian(y, x).shape == (20, 20, 20, 20)
    finally:
        jx.set_memory_limit(previous)
    assert memory.get_memory_limit() == before


@pytest.mark.parametrize("text,expected", [
    ("4096", 4096), ("4K", 4096), ("4 KiB", 4096), ("4kb", 4096), ("1.5M", 3 * 2**19), ("2G", 2 * 2**30),
    ("1T", 2**40), ("1e6", 10**6), (12345, 12345),
])
def test_byte_counts_are_parsed(text, expected):
    assert memory.parse_bytes(text) == expected
    with memory_limit(text) as limit:
        assert limit == expected == memory.get_memory_limit()


@pytest.mark.parametrize("bad", [0, -5, True, "lots", "4X", "", "-1G"])
def test_bad_limits_are_refused_with_the_valid_forms(bad):
    with pytest.raises(ValueError, match="set_memory_limit"):
        jx.set_memory_limit(bad)


def test_environment_variable_sets_the_limit(monkeypatch):
    monkeypatch.setenv("JACOBIANS_MEMORY_LIMIT", "1M")
    assert memory.get_memory_limit() == 2**20
    x = jx.var(np.ones((40, 40)))
    with pytest.raises(JacobianTooLarge, match=r"limit of 1\.0 MiB"):
        jx.jacobian(jx.tanh(x), x)  # 40⁴ · 8 B = 19.5 MiB
    with memory_limit("1G"):  # set_memory_limit wins over the environment
        assert jx.jacobian(jx.tanh(x), x).shape == (40, 40, 40, 40)
    monkeypatch.setenv("JACOBIANS_MEMORY_LIMIT", "plenty")
    with pytest.raises(ValueError, match="JACOBIANS_MEMORY_LIMIT='plenty' is not a byte count"):
        memory.get_memory_limit()


def test_environment_variable_read_by_a_fresh_process():
    code = ("import numpy as np, jacobians as jx\n"
            "x = jx.var(np.ones((8, 8)))\n"
            "try:\n    jx.jacobian(jx.tanh(x), x)\nexcept jx.JacobianTooLarge as e:\n    print('refused', e.limit)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, JACOBIANS_MEMORY_LIMIT="16K", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "16384"]  # 8⁴ · 8 = 32 KiB > 16 KiB


def test_default_limit_is_a_quarter_of_memory(monkeypatch):
    monkeypatch.delenv("JACOBIANS_MEMORY_LIMIT", raising=False)
    with memory_limit(None):
        limit = memory.get_memory_limit()
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory.DEFAULT_FRACTION == 0.25
    assert 0 < limit <= physical * 0.25
    if memory._cgroup_limit() is None:  # no container limit: exactly a quarter of RAM
        assert limit == int(physical * 0.25)


def test_memory_limit_context_restores_after_an_error():
    before = memory.get_memory_limit()
    with pytest.raises(JacobianTooLarge):
        with memory_limit(8):
            memory.zeros((2,), np.float64, "two doubles")
    assert memory.get_memory_limit() == before


def _graphs():
    """Graphs whose peaks once went above the limit: Y * Y (one node twice), four paths that keep local
    Jacobians for later paths, and products added through strided views."""
    rng = np.random.default_rng(7)
    x = jx.var(rng.standard_normal((21, 14)), name="x")
    s = jx.softmax(x, axis=-1)
    yield "sum(softmax(x)²)", jx.sum(s * s), x
    h = x * jx.sin(x)
    h = h * jx.sin(h)
    yield "four paths", jx.sum(rng.standard_normal((17, 21)) @ h * 2.0), x
    yield "matmul(sin(x) x)", rng.standard_normal((13, 21)) @ (x * jx.sin(x)), x
    X = jx.var(rng.standard_normal((12, 12)), name="X")
    yield "seed 1 dY/dX (forward accumulation)", (X @ X.T) @ X, X


@pytest.mark.parametrize("name,y,x", list(_graphs()), ids=[g[0] for g in _graphs()])
@pytest.mark.parametrize("route", ["explicit", "factored", "vjp", "numeric"])
def test_the_limit_bounds_the_whole_call(name, y, x, route):
    """Under the tightest limit a route accepts (found by bisection), tracemalloc's peak of what the call
    allocates stays below the limit: the limit bounds the call, not only each array."""
    call = (lambda: jx.grad(y, x, method=route)) if y.size == 1 else (lambda: jx.jacobian(y, x, method=route))
    call()  # caches warm, as in use
    lo, hi = 1 << 10, 1 << 28
    while hi - lo > lo // 32:
        mid = (lo + hi) // 2
        with memory_limit(mid):
            err, _ = _peak(call)
        lo, hi = (mid, hi) if err else (lo, mid)
    with memory_limit(hi):
        err, peak = _peak(call)
    assert err is None and peak <= hi, (route, peak, hi)
    with memory_limit(lo):
        with pytest.raises(JacobianTooLarge):
            call()


def test_forward_accumulation_of_seed_one_holds_two_jacobians_and_a_block():
    """dY/dX for Y = (X Xᵀ) X plans node-by-node forward accumulation. The partial dW/dX, at its last use,
    takes the product dY/dW · dW/dX in its own memory, one block of 1/16 of the columns at a time, and x's
    own contribution is added in place last: at most the partial, one local Jacobian and a block are live,
    2 + 1/16 × the result (it was 3× with a separate product, 5× before that), measured by tracemalloc,
    not timed; the values against the hand-written VJPs."""
    X = jx.var(np.random.default_rng(0).standard_normal((24, 24)), name="X")
    Y = (X @ X.T) @ X
    assert jx.plan(Y, X).strategy == "accumulate"
    result = 24 ** 4 * 8
    err, peak = _peak(lambda: jx.jacobian(Y, X, method="explicit"))
    assert err is None and peak <= (2 + 1 / 16 + 0.02) * result, peak / result
    np.testing.assert_allclose(jx.jacobian(Y, X, method="explicit"), jx.jacobian(Y, X, method="vjp"), atol=1e-12)
