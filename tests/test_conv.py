"""``demo conv`` against an independent numpy convolution; conv forwards against direct loops;
the tie and kink policies of the nn and reductions ops (max-pool ties, norms at 0, products with zeros).
"""
import io
import itertools
import re
import warnings

import numpy as np
import pytest

import jacobians as jx
from jacobians.demos import run_demo
from printed import printed_matrix

ROUTES = ("explicit", "vjp", "factored")


# ------------------------------------------------------------------ independent references
def conv_direct(x, w, stride=1, padding=0, dilation=1):
    """Y[n,o,i..] = Σ_(c, taps) W[o,c,tap] X[n,c,i·s + tap·d − p] by scalar loops over every index (0 outside X)."""
    d = x.ndim - 2
    s, p, dl = ((v,) * d if np.ndim(v) == 0 else tuple(v) for v in (stride, padding, dilation))
    k = w.shape[2:]
    out = [(n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for n, kk, ss, pp, dd in zip(x.shape[2:], k, s, p, dl)]
    y = np.zeros([x.shape[0], w.shape[0]] + out)
    for n, o, c in itertools.product(range(x.shape[0]), range(w.shape[0]), range(x.shape[1])):
        for pos in itertools.product(*map(range, out)):
            for tap in itertools.product(*map(range, k)):
                src = tuple(i * ss + a * dd - pp for i, a, ss, dd, pp in zip(pos, tap, s, dl, p))
                if all(0 <= h < m for h, m in zip(src, x.shape[2:])):
                    y[(n, o) + pos] += w[(o, c) + tap] * x[(n, c) + src]
    return y


def conv_windows(x, w):
    """Stride 1, no padding: every window by numpy's sliding_window_view, one einsum."""
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))  # (N, C, H', W', kh, kw)
    return np.einsum("ncijab,ocab->noij", win, w)


def transposed_conv(g, w, in_shape):
    """The adjoint of stride-1 valid correlation: each G[n,o,i,j] · W[o] added onto X's window at (i,j)."""
    out = np.zeros(in_shape)
    kh, kw = w.shape[2:]
    for n, o, i, j in itertools.product(*map(range, g.shape)):
        out[n, :, i:i + kh, j:j + kw] += g[n, o, i, j] * w[o]
    return out


# ------------------------------------------------------------------ the demo
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = io.StringIO()
    res = run_demo("conv", out=out, plot_dir=tmp_path_factory.mktemp("conv_plots"))
    return res, out.getvalue()


def test_demo_conv_agrees(demo):
    res, text = demo
    assert res.ok and "all routes agree: True" in text and "DISAGREE" not in text
    assert "dY[n,o,i,j]/dX[n',c,h,w] = δ_nn' W[o,c,h−i,w−j]" in text
    assert "dY_nmij/dX_pchw = Σ_kl δ_np W_mckl S1_ikh S2_jlw" in text
    assert "dY[n,o,i,j]/dW[o',c,a,b] = δ_oo' X[n,c,i+a,j+b]" in text
    assert "Nonzero entries: 216 of 720" in text
    assert "(i,j)=(1,1)  ..... .ABC. .DEF. ....." in text  # the doubly block-Toeplitz pattern, tap by tap
    diffs = [float(d) for d in re.findall(r"max \|difference\| = (\S+)", text)]
    assert len(diffs) >= 6 and max(diffs) < 1e-12


def test_demo_conv_numbers_against_an_independent_convolution(demo):
    res, text = demo
    v = res.values
    X, W, G = v["X"], v["W"], v["G"]
    assert X.shape == (1, 2, 4, 5) and W.shape == (2, 2, 2, 3)
    rng = np.random.default_rng(0)  # the demo's data: seed 0, X then W then G
    np.testing.assert_array_equal(X, rng.standard_normal((1, 2, 4, 5)))
    np.testing.assert_allclose(v["Y"], conv_windows(X, W), rtol=1e-12, atol=1e-12)
    # dY/dX: W[o,c,h−i,w−j] inside the window, 0 outside; dY/dW: δ_oo' X[n,c,i+a,j+b]
    JX = np.zeros((1, 2, 3, 3, 1, 2, 4, 5))
    JW = np.zeros((1, 2, 3, 3, 2, 2, 2, 3))
    for o, c, i, j, a, b in itertools.product(range(2), range(2), range(3), range(3), range(2), range(3)):
        JX[0, o, i, j, 0, c, i + a, j + b] = W[o, c, a, b]
        JW[0, o, i, j, o, c, a, b] = X[0, c, i + a, j + b]
    np.testing.assert_array_equal(v["dY_dX"], JX)
    np.testing.assert_array_equal(v["dY_dW"], JW)
    # the VJP w.r.t. X is the transposed convolution; w.r.t. W the correlation of X with G
    gx = transposed_conv(G, W, X.shape)
    np.testing.assert_allclose(v["vjp_x"], gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v["full_conv"], gx, rtol=1e-12, atol=1e-12)
    gw = np.einsum("noij,ncijab->ocab", G, np.lib.stride_tricks.sliding_window_view(X, (2, 3), axis=(2, 3)))
    np.testing.assert_allclose(v["vjp_w"], gw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v["corr_w"], gw, rtol=1e-12, atol=1e-12)
    printed = printed_matrix(text, "computed here with numpy (pad, flip, slide), channel c = 0:", (4, 5))
    np.testing.assert_allclose(printed, gx[0, 0], atol=1e-4)


def test_demo_conv_writes_its_pictures(demo):
    from test_demos import assert_pictures

    assert_pictures(*demo, count=2)


def test_demo_conv_other_sizes():
    out = io.StringIO()
    res = run_demo("conv", sizes={"C": 1, "H": 3, "W": 6, "O": 3, "kh": 3, "kw": 1}, seed=4, out=out)
    assert res.ok and res.values["dY_dX"].shape == (1, 3, 1, 6, 1, 1, 3, 6)
    np.testing.assert_allclose(res.values["vjp_x"], transposed_conv(res.values["G"], res.values["W"], (1, 1, 3, 6)),
                               rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ forwards against loops
@pytest.mark.parametrize("stride,padding,dilation", [
    (1, 0, 1), (2, 0, 1), (1, 1, 1), (2, 1, 1), (1, 0, 2), ((2, 1), (0, 2), (1, 2)), ((1, 3), 1, (2, 1)), (3, 2, 2),
])
def test_conv2d_forward_matches_direct_loops(stride, padding, dilation):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((2, 3, 2, 3))
    y = jx.conv2d(jx.var(x), w, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(y.value, conv_direct(x, w, stride, padding, dilation), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 0, 1), (1, 2, 1), (2, 1, 3), (3, 3, 2)])
def test_conv1d_forward_matches_direct_loops(stride, padding, dilation):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((2, 2, 9)), rng.standard_normal((3, 2, 3))
    y = jx.conv1d(jx.var(x), w, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(y.value, conv_direct(x, w, stride, padding, dilation), rtol=1e-12, atol=1e-12)


def test_conv_jacobian_stays_a_form_of_small_factors():
    """No factor of the conv forms is an im2col matrix: each is an operand or a per-axis 0/1 selection tensor."""
    rng = np.random.default_rng(3)
    X, W = jx.var(rng.standard_normal((2, 3, 6, 7))), jx.var(rng.standard_normal((4, 3, 3, 2)))
    y = jx.conv2d(X, W, stride=(2, 1), padding=1, dilation=(1, 2))
    for i, x in enumerate((X, W)):
        F = y.op.form(i, y.value, X.value, W.value, **y.params)
        (term,) = F.terms
        other, *S = term.factors
        assert other.value.shape == (W.shape if i == 0 else X.shape)  # the other operand itself
        for m, f in enumerate(S):  # (output length, kernel length, input length) along spatial axis m
            assert f.value.shape in ((y.shape[2 + m], W.shape[2 + m], X.shape[2 + m]),
                                     (y.shape[2 + m], X.shape[2 + m], W.shape[2 + m]))
            assert set(np.unique(f.value)) <= {0.0, 1.0}
            assert (f.value.sum(axis=2 if i == 0 else 1) <= 1).all()  # a tap reads one input (or none: padding)
        assert len(term.deltas) == 1  # the batch (input) or the output channel (kernel)
        assert sum(f.value.size for f in term.factors) * 20 < y.size * x.size  # nothing the size of the Jacobian


# ------------------------------------------------------------------ pooling policies
def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order():
    x = jx.var(np.array([[[[1.0, 3.0, 2.0, 2.0],
                           [3.0, 0.0, 2.0, 2.0]]]]))
    y = jx.max_pool2d(x, 2)
    assert y.value.ravel().tolist() == [3.0, 2.0]
    for route in ROUTES:
        J = jx.jacobian(y, x, method=route)
        assert J[0, 0, 0, 0].tolist() == [[[[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]
        assert J[0, 0, 0, 1].tolist() == [[[[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]
    assert "first maximum" in jx.max_pool2d.__doc__


def test_max_pool_overlapping_windows_add_their_shares():
    x = jx.var(np.array([[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]]))
    y = jx.max_pool2d(x, 2, stride=1)  # both windows pick the 5
    for route in ROUTES + ("auto",):
        assert jx.grad(jx.sum(y), x, method=route).tolist() == [[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]]


def test_avg_pool_weights_each_window_entry_equally():
    x = jx.var(np.arange(12.0).reshape(1, 1, 3, 4))
    y = jx.avg_pool2d(x, (2, 3), stride=1)
    J = jx.jacobian(y, x)
    assert J.shape == (1, 1, 2, 2, 1, 1, 3, 4)
    np.testing.assert_allclose(J[0, 0, 1, 0, 0, 0], np.pad(np.full((2, 3), 1 / 6), ((1, 0), (0, 1))))


# ------------------------------------------------------------------ reductions: zeros, kinks, ties
def _others(x, k):
    return np.prod(np.delete(x, k))


@pytest.mark.parametrize("row", [[2.0, -3.0, 0.5, 4.0], [2.0, 0.0, 0.5, 4.0], [0.0, -3.0, 0.0, 4.0], [0.0] * 4])
def test_prod_gradient_is_the_product_of_the_others_even_with_zeros(row):
    x = jx.var(np.array(row))
    want = [_others(np.array(row), k) for k in range(4)]
    for route in ROUTES:
        assert jx.grad(jx.prod(x), x, method=route).tolist() == pytest.approx(want, abs=0)


def test_cumprod_with_zeros():
    v = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    x = jx.var(v)
    want = np.zeros((5, 5))
    for i, p in itertools.product(range(5), range(5)):
        if p <= i:
            want[i, p] = np.prod(np.delete(v[:i + 1], p))
    for route in ROUTES:
        np.testing.assert_array_equal(jx.jacobian(jx.cumprod(x), x, method=route), want)


@pytest.mark.parametrize("ord_,axis", [(None, None), (2, None), (1, None), (np.inf, None), ("fro", (0, 1)),
                                       ("nuc", (0, 1)), (2, 1), (np.inf, 0)])
def test_norm_at_zero_has_gradient_zero_and_no_warning(ord_, axis):
    z = jx.var(np.zeros((2, 3)) if axis is not None else np.zeros(3 if ord_ not in ("fro", "nuc") else (2, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = jx.norm(z, ord_, axis)
        for route in ROUTES:
            J = jx.jacobian(y, z, method=route)
            assert not J.any() and np.isfinite(J).all()


def test_norm_inf_splits_ties_like_max():
    x = jx.var([3.0, -3.0, 1.0, 3.0])
    for route in ROUTES:
        assert jx.grad(jx.norm(x, np.inf), x, method=route).tolist() == pytest.approx([1 / 3, -1 / 3, 0.0, 1 / 3])


def test_nuc_norm_of_a_rank_deficient_matrix_uses_the_nonzero_singular_values():
    u = np.array([[1.0], [2.0], [2.0]]) / 3
    v = np.array([[0.6, 0.8]])
    A = jx.var(4.0 * u @ v)  # rank 1, σ = 4
    assert float(jx.norm(A, "nuc").value) == pytest.approx(4.0)
    for route in ROUTES:
        np.testing.assert_allclose(jx.grad(jx.norm(A, "nuc"), A, method=route), u @ v, atol=1e-7)


def test_std_of_a_constant_slice_has_gradient_zero():
    x = jx.var([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J = jx.jacobian(jx.std(x, axis=1), x)
    assert not J[0].any() and J[1, 1].any()


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call,msg", [
    (lambda: jx.conv2d(jx.var(np.ones((1, 2, 4, 4))), np.ones((3, 3, 2, 2))), r"conv2d: .*2 channels.*expects 3"),
    (lambda: jx.conv2d(jx.var(np.ones((2, 4, 4))), np.ones((3, 2, 2, 2))), r"conv2d: .*\(N, C, H, W\)"),
    (lambda: jx.conv2d(jx.var(np.ones((1, 1, 2, 2))), np.ones((1, 1, 3, 3))), r"conv2d: a window .* does not fit"),
    (lambda: jx.conv2d(jx.var(np.ones((1, 1, 4, 4))), np.ones((1, 1, 2, 2)), stride=0), r"conv2d: stride"),
    (lambda: jx.conv1d(jx.var(np.ones((1, 1, 4))), np.ones((1, 1, 2)), padding=(1, 1)), r"conv1d: padding"),
    (lambda: jx.max_pool2d(jx.var(np.ones((1, 4, 4))), 2), r"max_pool2d: .*\(N, C, H, W\)"),
    (lambda: jx.avg_pool2d(jx.var(np.ones((1, 1, 2, 2))), 3), r"avg_pool2d: a window"),
    (lambda: jx.norm(jx.var(np.ones((2, 3))), 2), r"norm: .*matrix norms supported are ord=None, 'fro' and 'nuc'"),
    (lambda: jx.norm(jx.var(np.ones(3)), 3), r"norm: .*vector norms supported"),
    (lambda: jx.norm(jx.var(np.ones((2, 3, 4))), 1), r"norm: .*1 or 2 axes"),
    (lambda: jx.variance(jx.var(np.ones(3)), ddof=3), r"variance: ddof=3 leaves no degrees of freedom"),
    (lambda: jx.std(jx.var(np.ones(3)), ddof=-1), r"std: ddof must be a non-negative"),
    (lambda: jx.average(jx.var(np.ones((2, 3))), axis=1, weights=[1.0, 2.0]), r"average: weights of shape \(2,\)"),
    (lambda: jx.average(jx.var(np.ones(2)), weights=[1.0, -1.0]), r"average: .*sum to a nonzero"),
    (lambda: jx.diff(jx.var(np.ones(3)), n=3), r"diff: n=3 differences"),
    (lambda: jx.cumsum(jx.var(np.ones((2, 3))), axis=2), r"cumsum: axis 2 is out of range"),
])
def test_bad_input_names_the_op(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
