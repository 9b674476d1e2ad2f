"""Jacobians in blocks (jacobians.scale): every block equals the in-memory factored Jacobian.

The block computation is numpy only and is tested without dask; the lazy dask
array (threaded scheduler, a 2-worker LocalCluster, zarr) only where the
``scale`` extra is installed, skipped otherwise.
"""
import inspect
import itertools
import sys

import numpy as np
import pytest

import jacobians as jx
from jacobians import memory
from jacobians.api import jacobian
from jacobians.factored import jacobian_factored
from jacobians.scale import INSTALL, block, normalize, plan_blocks, suggested_chunks

TOL = 1e-12


# ------------------------------------------------------------------ cases
def seed1():
    X = jx.var(np.random.default_rng(1).standard_normal((4, 3)), name="X")
    W = X @ X.T
    return W @ X, X


def mlp(wrt):
    rng = np.random.default_rng(2)
    A = jx.const(rng.standard_normal((5, 3)), name="A")
    W1 = jx.var(rng.standard_normal((3, 4)), name="W1")
    b1 = jx.var(rng.standard_normal(4), name="b1")
    W2 = jx.var(rng.standard_normal((4, 2)), name="W2")
    out = jx.tanh(A @ W1 + b1) @ W2
    return out, {"W1": W1, "b1": b1, "W2": W2}[wrt]


def softmax():
    S = jx.var(np.random.default_rng(3).standard_normal((4, 5)), name="S")
    return jx.softmax(S, axis=1), S


def conv(wrt):
    rng = np.random.default_rng(4)
    x = jx.var(rng.standard_normal((2, 2, 5, 4)), name="x")
    w = jx.var(rng.standard_normal((3, 2, 3, 2)), name="w")
    y = jx.conv2d(x, w, padding=1, stride=(2, 1))
    return y, {"x": x, "w": w}[wrt]


def chain():  # 2⁷ products: the factored plan falls back, blocks take the VJP route
    x = jx.var(np.linspace(0.2, 0.9, 5), name="x")
    y = x
    for _ in range(7):
        y = y * jx.sin(y)
    return y, x


def reshape():  # δ(flat, flat): the VJP route too
    S = jx.var(np.random.default_rng(5).standard_normal((4, 3)), name="S")
    return jx.tanh(jx.reshape(S, (3, 4))), S


def identity():
    X = jx.var(np.arange(6.0).reshape(2, 3), name="X")
    return X, X


def scalar():
    Y, X = seed1()
    return jx.fro(Y), X


def independent():
    a = jx.var(np.ones(3), name="a")
    return jx.tanh(jx.var(np.ones((2, 2)), name="b")), a


CASES = {
    "seed1": seed1, "mlp-W1": lambda: mlp("W1"), "mlp-b1": lambda: mlp("b1"), "mlp-W2": lambda: mlp("W2"),
    "softmax": softmax, "conv-x": lambda: conv("x"), "conv-w": lambda: conv("w"), "chain": chain,
    "reshape": reshape, "identity": identity, "scalar": scalar, "independent": independent,
}
MAIN = ["seed1", "mlp-W1", "mlp-b1", "softmax", "conv-x", "conv-w"]


def uneven(shape, seed=0):
    """Per-axis block lengths, unequal wherever the axis allows (dask's explicit chunk notation)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in shape:
        cuts = sorted(rng.choice(np.arange(1, n), size=min(2, n - 1), replace=False).tolist()) if n > 2 else []
        edges = [0] + cuts + [n]
        out.append(tuple(b - a for a, b in zip(edges, edges[1:])) or (n,))
    return tuple(out)


def blocks_of(chunks):
    starts = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in chunks]
    for idx in itertools.product(*[range(len(c)) for c in chunks]):
        yield tuple((int(s[i]), int(s[i + 1])) for s, i in zip(starts, idx))


# ------------------------------------------------------ blocks: numpy only
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_block_equals_the_factored_jacobian(name):
    y, x = CASES[name]()
    want = jacobian_factored(y, x)
    plan = plan_blocks(y, x)
    chunks = uneven(want.shape)
    got = np.empty_like(want)
    for ranges in blocks_of(chunks):
        cut = tuple(slice(a, b) for a, b in ranges)
        B = block(plan, ranges)
        assert B.shape == got[cut].shape and B.flags.c_contiguous
        got[cut] = B
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("name,route", [("seed1", "products"), ("softmax", "products"), ("conv-x", "products"),
                                        ("chain", "rows"), ("reshape", "rows"), ("scalar", "products"),
                                        ("identity", "products"), ("independent", "products")])
def test_route_per_case(name, route):
    y, x = CASES[name]()
    plan = plan_blocks(y, x)
    assert plan.route == route, plan.reason
    assert (plan.reason != "") == (route == "rows")


def test_method_vjp_takes_rows_and_agrees():
    y, x = softmax()
    plan = plan_blocks(y, x, method="vjp")
    assert plan.route == "rows"
    np.testing.assert_allclose(block(plan, ((1, 3), (0, 5), (0, 4), (2, 5))),
                               jacobian_factored(y, x)[1:3, :, :, 2:5], rtol=0, atol=TOL)


def test_hold_cuts_paths_in_blocks():
    X = jx.var(np.random.default_rng(1).standard_normal((4, 3)), name="X")
    W = X @ X.T
    Y = W @ X
    want = jacobian_factored(Y, X, hold=[W])
    ranges = ((0, 3), (1, 3), (1, 4), (0, 2))
    assert np.allclose(block(plan_blocks(Y, X, hold=[W]), ranges), want[tuple(slice(a, b) for a, b in ranges)])


def test_a_tied_product_misses_off_diagonal_blocks():
    """δ_ca ties Y's row to X's row: a block whose row ranges do not meet gets nothing from that product."""
    X = jx.var(np.random.default_rng(0).standard_normal((4, 3)), name="X")
    Y = jx.tanh(X)                         # δ_ca δ_db: every block off the diagonal is zero
    plan = plan_blocks(Y, X)
    assert not block(plan, ((0, 2), (0, 3), (2, 4), (0, 3))).any()
    B = block(plan, ((1, 3), (0, 3), (2, 4), (0, 3)))   # rows 1:3 against 2:4 meet at row 2 only
    assert np.count_nonzero(B) == 3 and np.allclose(B[1, :, 0, :], np.diag(1 - np.tanh(X.value[2]) ** 2))


def test_blocks_run_under_the_limit_of_the_plan():
    y, x = seed1()
    with memory.memory_limit("1K"):
        plan = plan_blocks(y, x)
    assert plan.limit == 1024
    assert block(plan, ((0, 2), (0, 2), (0, 2), (0, 2))).shape == (2, 2, 2, 2)      # 128 bytes
    with pytest.raises(memory.JacobianTooLarge):
        block(plan, ((0, 4), (0, 3), (0, 4), (0, 3)))                                 # 1152 bytes


def test_block_ranges_are_checked():
    y, x = seed1()
    with pytest.raises(ValueError, match="do not fit"):
        block(plan_blocks(y, x), ((0, 5), (0, 3), (0, 4), (0, 3)))


def test_explicit_and_numeric_methods_are_refused():
    y, x = seed1()
    with pytest.raises(ValueError, match="method='auto' or 'factored'"):
        plan_blocks(y, x, method="explicit")


def test_even_blocks_divide_every_axis():
    from jacobians.scale import even_blocks
    assert even_blocks((160,) * 4, 8, 128 * 2**20, (64,) * 4) == (80, 80, 40, 40)
    assert even_blocks((12, 10), 8, 8 * 24, (5, 5)) == (4, 5)        # 5 → 4 on the first axis; 6 × 5 > 24
    assert even_blocks((12, 10), 8, 8 * 60, (5, 5)) == (6, 10)       # grown while the block fits
    assert even_blocks((97, 10), 8, 2**10, (12, 10)) is None         # no divisor of 97 near 12


def test_suggested_chunks():
    assert suggested_chunks(2**30) == "128MiB" and suggested_chunks(2**33) == "128MiB"
    assert suggested_chunks(100 * 2**20) == "8MiB" and suggested_chunks(7) == "1B"


def test_without_dask_chunks_raise_an_import_error_naming_the_extra(monkeypatch):
    for mod in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "dask", None)   # import dask raises ImportError
    y, x = seed1()
    with pytest.raises(ImportError, match=r'pip install "jacobians\[scale\]"'):
        jacobian(y, x, chunks="1MiB")
    assert INSTALL == 'pip install "jacobians[scale]"'
    assert jacobian(y, x).shape == (4, 3, 4, 3)   # the in-memory route does not need dask


# ----------------------------------------------------------- the dask array
@pytest.fixture(scope="module")
def da():
    return pytest.importorskip("dask.array")


@pytest.mark.parametrize("name", MAIN + ["chain", "reshape", "scalar", "identity"])
def test_chunked_equals_factored_on_the_threaded_scheduler(da, name):
    y, x = CASES[name]()
    want = jacobian_factored(y, x)
    chunks = uneven(want.shape, seed=7)
    J = jacobian(y, x, chunks=chunks)
    assert isinstance(J, da.Array) and J.shape == want.shape and J.dtype == want.dtype and J.chunks == chunks
    np.testing.assert_allclose(J.compute(scheduler="threads"), want, rtol=0, atol=TOL)


def test_a_list_of_variables_gives_a_list_of_lazy_arrays(da):
    X = jx.var(np.random.default_rng(0).standard_normal((3, 4)), name="X")
    b = jx.var(np.random.default_rng(1).standard_normal(4), name="b")
    y = jx.tanh(X + b)
    J1, Jb = jacobian(y, [X, b], chunks="1KiB")
    W1, b1 = X, b
    assert np.allclose(J1.compute(), jacobian_factored(y, W1)) and np.allclose(Jb.compute(), jacobian_factored(y, b1))


@pytest.mark.parametrize("chunks", ["2KiB", "auto", 3, {0: 1}, -1])
def test_dask_chunk_notation(da, chunks):
    y, x = seed1()
    J = jacobian(y, x, chunks=chunks)
    assert J.chunks == normalize(chunks, (4, 3, 4, 3), np.float64)
    assert np.allclose(J.compute(), jacobian_factored(y, x))


def test_byte_sizes_give_regular_blocks_that_divide_the_axes(da):
    assert normalize("128MiB", (160,) * 4, np.float64) == ((80, 80), (80, 80), (40,) * 4, (40,) * 4)
    assert normalize("2KiB", (0, 3), np.float64) == ((0,), (3,))


def test_an_empty_jacobian(da):
    x = jx.var(np.ones((0, 3)), name="x")
    J = jacobian(jx.tanh(x), x, chunks="1KiB")
    assert J.shape == (0, 3, 0, 3) and J.compute().shape == (0, 3, 0, 3)


def test_a_block_above_the_limit_is_refused_when_asked_for(da):
    y, x = seed1()
    with memory.memory_limit("512"), pytest.raises(memory.JacobianTooLarge):
        jacobian(y, x, chunks=-1)        # one block of 1152 bytes


def test_a_jacobian_above_the_limit_computes_in_blocks_under_it(da):
    """In memory the guard refuses it; in blocks each task stays under the limit (taken into dask's threads)."""
    X = jx.var(np.random.default_rng(1).standard_normal((10, 10)), name="X")
    Y = (X @ X.T) @ X                    # 10⁴ entries, 80 kB
    with memory.memory_limit("64K"):
        with pytest.raises(memory.JacobianTooLarge):
            jacobian(Y, X)
        J = jacobian(Y, X, chunks="auto")            # 8 KiB blocks
        assert max(np.prod([max(c) for c in J.chunks]), 0) * 8 <= 8192
    with memory.memory_limit("1M"):
        want = jacobian_factored(Y, X)
    assert abs(float(J.sum().compute()) - want.sum()) <= 1e-9 * np.abs(want).sum()


def test_reductions_stay_blockwise(da):
    y, x = seed1()
    want = jacobian_factored(y, x)
    J = jacobian(y, x, chunks=uneven(want.shape, seed=3))
    assert abs(float(J.sum().compute()) - want.sum()) < 1e-10
    assert abs(float(da.sqrt((J ** 2).sum()).compute()) - np.linalg.norm(want)) < 1e-10
    ntk = da.tensordot(J, J, axes=((2, 3), (2, 3)))   # J Jᵀ over x's axes: the empirical NTK of Y
    np.testing.assert_allclose(ntk.compute(), np.tensordot(want, want, axes=((2, 3), (2, 3))), rtol=0, atol=1e-10)
    # every task of the sum reads one block: no task sees the whole Jacobian
    graph = dict(J.sum().__dask_graph__())
    assert len(graph) > J.npartitions


def test_zarr_round_trip(da, tmp_path):
    pytest.importorskip("zarr")
    y, x = conv("x")
    want = jacobian_factored(y, x)
    J = jacobian(y, x, chunks=uneven(want.shape, seed=5)[:4] + (2, 2, 5, 4))
    J = J.rechunk(tuple(max(c) for c in J.chunks))   # zarr takes regular chunks
    path = str(tmp_path / "J.zarr")
    J.to_zarr(path)
    back = da.from_zarr(path)
    assert back.shape == want.shape
    np.testing.assert_allclose(back.compute(), want, rtol=0, atol=TOL)


def test_zarr_streams_regular_chunks_without_rechunking(da, tmp_path):
    pytest.importorskip("zarr")
    y, x = seed1()
    J = jacobian(y, x, chunks=(2, 3, 2, 3))
    path = str(tmp_path / "seed1.zarr")
    J.to_zarr(path)
    np.testing.assert_allclose(da.from_zarr(path).compute(), jacobian_factored(y, x), rtol=0, atol=TOL)


@pytest.fixture(scope="module")
def client(da):
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize("name", MAIN + ["chain"])
def test_a_two_worker_cluster_equals_the_threaded_result(client, name):
    y, x = CASES[name]()
    want = jacobian_factored(y, x)
    J = jacobian(y, x, chunks=uneven(want.shape, seed=11))
    threaded = J.compute(scheduler="threads")
    on_cluster = client.compute(J).result()
    assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(on_cluster, threaded)
    np.testing.assert_allclose(on_cluster, want, rtol=0, atol=TOL)


@pytest.mark.skipif("chunks" not in inspect.signature(jx.jacobian).parameters,
                    reason="jx.jacobian (jacobians.transforms) does not pass chunks= on yet")
def test_jx_jacobian_takes_chunks(da):
    y, x = seed1()
    assert np.allclose(jx.jacobian(y, x, chunks=2).compute(), jacobian_factored(y, x))



def _refusal() -> str:
    y, x = seed1()
    with memory.memory_limit("1K"), pytest.raises(memory.JacobianTooLarge) as info:
        jacobian(y, x)
    return str(info.value)


@pytest.mark.skipif("chunks=" not in _refusal(), reason="jacobians/memory.py does not name chunks= in its refusal yet")
def test_the_refusal_names_chunks_with_a_suggested_size():
    msg = _refusal()
    assert f'chunks="{suggested_chunks(1024)}"' in msg and INSTALL in msg
