"""Indexing with numpy's semantics, the functional update .at[...], joining and splitting."""
import numpy as np
import pytest

import jacobians as jx

SHAPE = (3, 4, 5)
M2 = np.array([[True, False, True, False], [False, False, True, True], [True, False, False, False]])

# every kind of index, alone and mixed; numpy decides where the integer-array axes go
INDICES = [
    1, -1, (0, 2), (-1, -2, -3), slice(None), slice(1, None), slice(None, None, -1), (slice(None), slice(3, 0, -2)),
    (slice(None, None, 2), 1), (Ellipsis, 2), (1, Ellipsis), (None,), (None, 1, None), (Ellipsis, None),
    [0, 2, 2, 0], ([0, 0], [3, 3]), (slice(None), [1, 1, 3]), (0, slice(None), [4, 0, 4]),
    ([0, 2], slice(None), [1, 1]), (slice(None), [0, 3], [1, 4]), (slice(None), 2, [1, 1]), ([1], None, [2]),
    (slice(None), [0, 1], Ellipsis, [2, 2]), (np.array([[0], [2]]), np.array([1, 3, 3])),
    (Ellipsis, np.array([[4, 0], [0, 4]])), M2, (M2, [4, 0, 4, 1, 2]),
    (slice(None), np.array([True, False, True, True])),
    (0, np.ones((4, 5), dtype=bool)), np.zeros(SHAPE, dtype=bool), (slice(2, 2),), [], (np.int64(1), np.array(2)),
]


def _expected_jacobian(shape, index):
    """J[z, x] = 1 where entry z of X[index] is entry x of X: read off numpy itself."""
    size = int(np.prod(shape))
    where = np.arange(size).reshape(shape)[index]
    return (np.asarray(where)[..., None] == np.arange(size)).astype(float).reshape(np.shape(where) + tuple(shape))


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_getitem_follows_numpy_and_its_jacobian_picks_the_entries(index):
    Xv = np.arange(60.0).reshape(SHAPE)
    X = jx.var(Xv, name="X")
    Y = X[index]
    np.testing.assert_array_equal(Y.value, Xv[index])
    assert Y.op.name == "getitem"
    J = _expected_jacobian(SHAPE, index)
    np.testing.assert_array_equal(jx.jacobian(Y, X), J)
    np.testing.assert_array_equal(jx.jacobian(Y, X, method="factored"), J)
    if Y.size:
        W = np.random.default_rng(0).standard_normal(Y.shape)
        np.testing.assert_allclose(jx.grad(jx.sum(Y * W), X), np.tensordot(W, J, axes=Y.ndim), atol=1e-12)


@pytest.mark.parametrize("index", [i for i in INDICES if np.shape(np.arange(60).reshape(SHAPE)[i]) != ()], ids=repr)
def test_at_set_and_add_follow_numpy(index):
    rng = np.random.default_rng(1)
    Xv = rng.standard_normal(SHAPE)
    X = jx.var(Xv)
    part = Xv[index]
    v = rng.standard_normal(part.shape)
    expected_add = Xv.copy()
    np.add.at(expected_add, index, v)
    np.testing.assert_allclose(X.at[index].add(v).value, expected_add)
    where = np.arange(Xv.size).reshape(SHAPE)[index]
    if np.unique(where).size == where.size:  # numpy's own assignment is defined without repeats
        expected_set = Xv.copy()
        expected_set[index] = v
        np.testing.assert_array_equal(X.at[index].set(v).value, expected_set)


def test_repeated_indices_accumulate_in_the_gradient():
    x = jx.var([1.0, 2.0, 3.0], name="x")
    w = np.array([10.0, 20.0, 30.0, 40.0])
    y = jx.sum(x[[0, 0, 2, 0]] * w)
    assert float(y.value) == 10 + 20 + 90 + 40
    np.testing.assert_array_equal(jx.grad(y, x), [10.0 + 20.0 + 40.0, 0.0, 30.0])
    np.testing.assert_array_equal(jx.grad(y, x, method="factored"), [70.0, 0.0, 30.0])
    X = jx.var(np.ones((2, 3)))
    g = jx.grad(jx.sum(X[[1, 1, 1], [0, 2, 0]]), X)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 0.0], [2.0, 0.0, 1.0]])
    t = jx.grad(jx.sum(jx.take(X, [4, 4, 0])), X)
    np.testing.assert_array_equal(t, [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])


def test_at_add_repeats_add_up_and_at_set_lets_the_last_write_win():
    x = jx.var(np.zeros(3), name="x")
    v = jx.var([1.0, 2.0, 4.0], name="v")
    added = x.at[[0, 2, 0]].add(v)
    np.testing.assert_array_equal(added.value, [5.0, 0.0, 2.0])
    np.testing.assert_array_equal(jx.jacobian(added, v), [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    put = x.at[[0, 2, 0]].set(v)
    np.testing.assert_array_equal(put.value, [4.0, 0.0, 2.0])  # v[2] is written after v[0]
    for method in ("explicit", "factored", "vjp"):
        np.testing.assert_array_equal(jx.jacobian(put, v, method=method), [[0, 0, 1], [0, 0, 0], [0, 1, 0]])
        np.testing.assert_array_equal(jx.jacobian(put, x, method=method), np.diag([0.0, 1.0, 0.0]))


def test_at_leaves_its_input_unchanged_and_get_reads():
    X = jx.var(np.arange(6.0).reshape(2, 3), name="X")
    before = X.value.copy()
    Y = X.at[0, :2].set(-1.0)
    np.testing.assert_array_equal(X.value, before)
    assert Y.value.tolist() == [[-1.0, -1.0, 2.0], [3.0, 4.0, 5.0]]
    assert X.at[1].get().value.tolist() == [3.0, 4.0, 5.0]
    Z = jx.at_add(np.zeros(4), [1, 3], jx.var([2.0, 3.0]))  # a node placed into a constant array
    assert Z.value.tolist() == [0.0, 2.0, 0.0, 3.0]


def test_item_assignment_is_refused_naming_at():
    X = jx.var(np.zeros((2, 3)), name="X")
    with pytest.raises(TypeError, match=r"X\.at\[\.\.\.\]\.set"):
        X[0] = 1.0
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(X)
    with pytest.raises(TypeError, match="cannot be iterated"):
        for _ in X:
            pass
    assert len(X) == 2


def test_bad_indices_are_refused_before_any_computation():
    X = jx.var(np.zeros((2, 3)), name="X")
    with pytest.raises(IndexError, match="index 3 is out of range for axis 1 of length 3"):
        X[0, 3]
    with pytest.raises(ValueError, match=r"index -3 is out of range for axis 0 of length 2 \(input of shape \(2, 3"):
        X[[0, -3]]
    with pytest.raises(IndexError, match="too many indices"):
        X[0, 0, 0]
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not match"):
        X[np.array([True, False, True])]
    with pytest.raises(TypeError, match="is a node; indices are constants"):
        X[jx.var([0.0])]
    with pytest.raises(TypeError, match="not an index"):
        X[0.5]
    with pytest.raises(TypeError, match="bare True/False"):
        X[True]
    with pytest.raises(ValueError, match=r"at_set: values of shape \(3,\) do not broadcast .* shape \(2,\)"):
        X.at[:, 0].set(np.ones(3))
    with pytest.raises(IndexError, match="out of range"):
        jx.take(X, [6])
    with pytest.raises(ValueError, match="take_along_axis: indices of shape"):
        jx.take_along_axis(X, np.array([0, 1]), axis=1)


def test_index_arrays_are_copied():
    X = jx.var(np.arange(4.0), name="X")
    idx = np.array([0, 1])
    Y = X[idx]
    idx[0] = 3
    np.testing.assert_array_equal(jx.grad(jx.sum(Y), X), [1.0, 1.0, 0.0, 0.0])


def test_split_and_array_split_pieces():
    Xv = np.arange(14.0).reshape(2, 7)
    X = jx.var(Xv, name="X")
    for parts in (7, [2, 5], [-2], [3, 1]):
        pieces = jx.split(X, parts, axis=1)
        expected = np.split(Xv, parts, axis=1)
        assert [p.shape for p in pieces] == [e.shape for e in expected]
        for p, e in zip(pieces, expected):
            np.testing.assert_array_equal(p.value, e)
            assert p.op.name == "split"
    pieces = jx.array_split(X, 3, axis=-1)
    assert [p.value.tolist() for p in pieces] == [e.tolist() for e in np.array_split(Xv, 3, axis=-1)]
    weights = [1.0, 10.0, 100.0]
    total = sum(jx.sum(p) * w for p, w in zip(pieces, weights))
    np.testing.assert_array_equal(jx.grad(total, X), np.tile([1, 1, 1, 10, 10, 100, 100], (2, 1)))
    with pytest.raises(ValueError, match="does not divide into 3 equal pieces; use jx.array_split"):
        jx.split(X, 3, axis=1)
    with pytest.raises(ValueError, match="positive int"):
        jx.split(X, 0)


def test_joining_errors_name_the_shapes():
    a, b = jx.var(np.ones((2, 3))), jx.var(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"concatenate: shapes \(2, 3\), \(2, 4\) do not fit together along axis 0"):
        jx.concatenate([a, b])
    with pytest.raises(ValueError, match=r"stack: shapes \(2, 3\), \(2, 4\) differ"):
        jx.stack([a, b])
    with pytest.raises(TypeError, match="pass a list"):
        jx.concatenate(a)
    assert jx.concatenate([a, b], axis=1).shape == (2, 7)


def test_selection_factors_are_per_axis_never_the_whole_jacobian():
    X = jx.var(np.ones((30, 40)))
    for Y in (X[::2, [1, 2, 2]], jx.pad(X, 1), jx.flip(X), jx.roll(X, (1, 2), (0, 1)), jx.tile(X, (2, 3)),
              jx.repeat(X, 2, axis=0), jx.concatenate([X, X]), X.at[[1, 5]].set(0.0), X.at[2:].add(1.0)):
        F = Y.op.form(0, Y.value, *(p.value for p in Y.parents), **Y.params)
        for t in F.terms:
            for f in t.factors:
                assert f.value.size <= max(Y.shape) * max(X.shape) or f.value.shape == X.shape, (Y.op.name, f.name)


def test_float32_stays_float32():
    X = jx.var(np.ones((3, 4), dtype=np.float32))
    for Y in (X[[0, 0], 1:], X.at[0].set(2.0), jx.concatenate([X, X]), jx.pad(X, 1), jx.take(X, [1, 1], axis=1)):
        assert Y.dtype == np.float32
        assert jx.jacobian(Y, X).dtype == np.float32
        assert jx.jacobian(Y, X, method="factored").dtype == np.float32


def test_index_form_reads_as_rows_of_the_identity():
    X = jx.var(np.ones((3, 4)), name="X")
    assert str(jx.explain(X[::2, [3, 0, 3]], X)).count("I[idx]") >= 1
    F = jx.get_op("getitem").form(0, np.ones((2, 3)), np.ones((3, 4)), index=(slice(0, 3, 2), np.array([3, 0, 3])))
    assert F.formula(("X",)) == "dY[i,j]/dX[p,q] = I[0:3:2][i,p] I[idx][j,q]"
