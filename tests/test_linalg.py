"""Linear algebra policies: repeated eigenvalues, slogdet's sign, batch independence, sign conventions.

The op table (cases_linalg.py) checks every op's forms and VJPs on well-conditioned
inputs; here are the behaviours at the edges, each against central differences
of plain numpy (no sign convention applied) where a derivative is claimed.
"""
import numpy as np
import pytest

import jacobians as jx
from cases_linalg import separated_sv
from case import draw


def central(f, a, h=1e-6):
    """d f(a) / d a by central differences of a numpy function, shape f(a).shape + a.shape."""
    a = np.asarray(a, dtype=float)
    f0 = np.asarray(f(a))
    J = np.zeros(f0.shape + a.shape)
    for idx in np.ndindex(*a.shape):
        e = np.zeros_like(a)
        e[idx] = h
        J[(...,) + idx] = (np.asarray(f(a + e)) - np.asarray(f(a - e))) / (2 * h)
    return J


def sym_data(shape, seed=0):
    return draw(shape, "symmetric", np.random.default_rng(seed))


# ------------------------------------------------------------ repeated eigenvalues
def test_eigh_refuses_repeated_eigenvalues_naming_the_op_and_the_tolerance():
    with pytest.raises(ValueError, match=r"eigh: eigenvalues 2 and 2 are closer than gap_rtol=1e-06.*eigvalsh"):
        jx.eigh(jx.var(np.diag([1.0, 2.0, 2.0])))


def test_eigh_names_the_degenerate_matrix_of_a_stack():
    a = sym_data((3, 3, 3))
    a[2] = np.diag([5.0, 5.0, 1.0])
    with pytest.raises(ValueError, match=r"eigh: .* of matrix \(2,\) of the stack"):
        jx.eigh(jx.var(a))


def test_eigh_tolerance_is_relative_to_the_spread():
    gap = 1e-7  # spread 10: 1e-7 < 1e-6 × 10 refused; a looser gap_rtol accepts it
    a = np.diag([0.0, 10.0, 10.0 + gap])
    with pytest.raises(ValueError, match="eigh"):
        jx.eigh(a)
    w, V = jx.eigh(a, gap_rtol=1e-9)
    assert w.shape == (3,) and V.shape == (3, 3)
    jx.eigh(np.diag([0.0, 1.0, 1.0 + 1e-5]))  # 1e-5 ≥ 1e-6 × 1: accepted


def test_eigvalsh_allows_ties_and_is_exact_for_symmetric_functions_of_them():
    A = jx.var(np.diag([1.0, 2.0, 2.0]), name="A")
    w = jx.eigvalsh(A)
    np.testing.assert_allclose(w.value, [1.0, 2.0, 2.0])
    l = jx.sum(w * np.array([1.0, 3.0, 3.0]))  # symmetric in the tied pair: Σ c_k w_k with c_2 = c_3
    # l = tr(C A) for C = I + 2 P_(tied eigenspace): its gradient is sym(C) = diag(1, 3, 3)
    np.testing.assert_allclose(jx.grad(l, A), np.diag([1.0, 3.0, 3.0]), atol=1e-12)
    np.testing.assert_allclose(jx.grad(l, A, method="vjp"), np.diag([1.0, 3.0, 3.0]), atol=1e-12)
    f = lambda a: np.linalg.eigvalsh((a + a.T) / 2) @ [1.0, 3.0, 3.0]  # noqa: E731
    np.testing.assert_allclose(jx.grad(l, A), central(f, A.value), atol=1e-6)


def test_svd_refuses_repeated_or_zero_singular_values_unless_values_alone():
    with pytest.raises(ValueError, match=r"svd: singular values 2 and 2 are closer than gap_rtol"):
        jx.svd(jx.var(np.diag([2.0, 2.0, 1.0])))
    tall = np.array([[1.0, 0.0], [0.0, 1e-9], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"svd: singular values 1e-09 and 0 .*away from 0"):
        jx.svd(tall, full_matrices=False)
    assert jx.svd(np.diag([2.0, 2.0, 1.0]), compute_uv=False).shape == (3,)


def test_svd_full_matrices_of_a_non_square_matrix_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"svd: the full U of a non-square matrix of shape \(4, 3\).*"
                                         r"full_matrices=False"):
        jx.svd(jx.var(separated_sv((4, 3), np.random.default_rng(0))))
    with pytest.raises(ValueError, match=r"svd: the full Vᵀ .*\(2, 3\)"):
        jx.svd(np.ones((2, 3)))
    U, s, Vt = jx.svd(separated_sv((3, 3), np.random.default_rng(0)))  # square: full is thin
    assert U.shape == Vt.shape == (3, 3)


# ------------------------------------------------------------ slogdet
def test_slogdet_sign_is_a_constant_array_and_logabsdet_a_node():
    rng = np.random.default_rng(1)
    a = draw((3, 3, 3), "well_conditioned", rng)
    a[1, 0] *= -1  # one negative determinant
    A = jx.var(a, name="A")
    sign, lad = jx.slogdet(A)
    ref_sign, ref_lad = np.linalg.slogdet(a)
    assert isinstance(sign, np.ndarray) and not isinstance(sign, jx.Node)
    np.testing.assert_array_equal(sign, ref_sign)
    assert lad.op.name == "logdet" and lad.parents[0] is A
    np.testing.assert_allclose(lad.value, ref_lad, rtol=1e-12)
    # det = sign · exp(logabsdet): with the sign a constant, its gradient is det's (central differences)
    l = jx.sum(jx.exp(lad) * sign)
    np.testing.assert_allclose(jx.grad(l, A), central(lambda x: np.linalg.det(x).sum(), a), rtol=1e-6, atol=1e-8)
    assert sign.dtype == np.float64 and jx.slogdet(a.astype(np.float32))[0].dtype == np.float32


# ------------------------------------------------------------ batch independence
def _batched():
    rng = np.random.default_rng(3)
    wc = lambda *s: draw(s, "well_conditioned", rng)  # noqa: E731
    A0 = wc(3, 3, 3)  # solve's constant matrices: the stack, or matrix 1 for a single right-hand side
    return [
        ("inv", jx.inv, wc(3, 3, 3)),
        ("det", jx.det, wc(3, 3, 3)),
        ("logdet", jx.logdet, wc(3, 3, 3)),
        ("solve", lambda A: jx.solve(A, np.ones(3)), wc(3, 3, 3)),
        ("solve-B", lambda B: jx.solve(A0 if B.ndim == 3 else A0[1], B), rng.standard_normal((3, 3, 2))),
        ("cholesky", jx.cholesky, draw((3, 3, 3), "spd", rng)),
        ("eigh_w", lambda A: jx.eigh(A)[0], draw((3, 3, 3), "symmetric", rng)),
        ("eigh_v", lambda A: jx.eigh(A)[1], draw((3, 3, 3), "symmetric", rng)),
        ("eigvalsh", jx.eigvalsh, draw((3, 3, 3), "symmetric", rng)),
        ("svd_u", lambda A: jx.svd(A, full_matrices=False)[0], separated_sv((3, 4, 2), rng)),
        ("svd_s", lambda A: jx.svd(A, compute_uv=False), separated_sv((3, 2, 4), rng)),
        ("svd_vt", lambda A: jx.svd(A, full_matrices=False)[2], separated_sv((3, 2, 4), rng)),
        ("pinv", jx.pinv, separated_sv((3, 4, 2), rng)),
        ("matrix_power", lambda A: jx.matrix_power(A, -2), wc(3, 3, 3)),
    ]


@pytest.mark.parametrize("name,fn,data", _batched(), ids=[c[0] for c in _batched()])
def test_batch_elements_do_not_reach_each_other(name, fn, data):
    X = jx.var(data, name="X")
    Y = fn(X)
    nb = Y.shape[0]
    for method in ("explicit", "factored", "vjp"):
        J = jx.jacobian(Y, X, method=method)
        for a in range(nb):
            for s in range(nb):
                block = J[a][(slice(None),) * (Y.ndim - 1) + (s,)]
                if a != s:
                    assert not block.any(), f"{name} ({method}): output {a} reaches input {s}"
                else:
                    assert np.abs(block).max() > 0
    # and each matrix's block is the Jacobian of that matrix alone
    J = jx.jacobian(Y, X)
    single = jx.var(data[1])
    np.testing.assert_allclose(J[1][(slice(None),) * (Y.ndim - 1) + (1,)], jx.jacobian(fn(single), single),
                               rtol=1e-12, atol=1e-14)


def test_a_shared_matrix_reaches_every_batch_element_of_solve():
    rng = np.random.default_rng(4)
    A = jx.var(draw((3, 3), "well_conditioned", rng), name="A")
    B = rng.standard_normal((2, 3, 2))
    X = jx.solve(A, B)
    J = jx.jacobian(X, A)
    assert J.shape == (2, 3, 2, 3, 3) and np.abs(J[0]).max() > 0 and np.abs(J[1]).max() > 0
    f = lambda a: np.linalg.solve(a, B)  # noqa: E731
    np.testing.assert_allclose(J, central(f, A.value), rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------ sign conventions and invariant losses
def _raw_svd(a):
    return np.linalg.svd(a, full_matrices=False)  # numpy's own signs


@pytest.mark.parametrize("shape", [(4, 3), (2, 5), (2, 3, 3)])
def test_sum_of_singular_values_gradient(shape):
    a = separated_sv(shape, np.random.default_rng(5))
    A = jx.var(a, name="A")
    U, s, Vt = jx.svd(A, full_matrices=False)
    np.testing.assert_allclose(jx.grad(jx.sum(s), A), central(lambda x: _raw_svd(x)[1].sum(), a), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(jx.grad(jx.sum(s), A), U.value @ Vt.value, rtol=1e-10, atol=1e-12)  # U Vᵀ


@pytest.mark.parametrize("shape", [(4, 3), (2, 5), (3, 3)])
def test_reconstruction_through_u_s_vt_has_the_gradient_of_the_norm(shape):
    """‖U diag(σ) Vᵀ‖ = ‖A‖ whatever the signs: its gradient through the three factors is A / ‖A‖."""
    a = separated_sv(shape, np.random.default_rng(6))
    A = jx.var(a, name="A")
    U, s, Vt = jx.svd(A, full_matrices=False)
    l = jx.fro((U * jx.reshape(s, (1, -1))) @ Vt)
    for method in ("explicit", "factored", "vjp"):
        np.testing.assert_allclose(jx.grad(l, A, method=method), a / np.linalg.norm(a), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("shape", [(4, 3), (3, 5)])
def test_sign_invariant_loss_of_singular_vectors_matches_raw_numpy(shape):
    """Σ (U∘U) C + Σ (Vᵀ∘Vᵀ) D does not see the signs: numpy's own (unfixed) signs give its derivative."""
    rng = np.random.default_rng(7)
    a = separated_sv(shape, rng)
    k = min(shape)
    C, D = rng.standard_normal((shape[0], k)), rng.standard_normal((k, shape[1]))
    A = jx.var(a, name="A")
    U, s, Vt = jx.svd(A, full_matrices=False)
    l = jx.sum(U * U * C) + jx.sum(Vt * Vt * D)

    def f(x):
        u, _, vt = _raw_svd(x)
        return (u * u * C).sum() + (vt * vt * D).sum()
    np.testing.assert_allclose(jx.grad(l, A), central(f, a), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jx.grad(l, A, method="vjp"), central(f, a), rtol=1e-6, atol=1e-8)


def test_sign_invariant_loss_of_eigenvectors_matches_raw_numpy():
    """V diag(w²) Vᵀ · C summed: each eigenvector appears twice, so its sign cancels."""
    rng = np.random.default_rng(8)
    a = sym_data((2, 4, 4), seed=8)
    C = rng.standard_normal((2, 4, 4))
    A = jx.var(a, name="A")
    w, V = jx.eigh(A)
    l = jx.sum(jx.einsum("bik,bk,bjk->bij", V, w * w, V) * C)

    def f(x):
        ww, vv = np.linalg.eigh((x + np.swapaxes(x, -1, -2)) / 2)
        return (np.einsum("bik,bk,bjk->bij", vv, ww * ww, vv) * C).sum()
    G = jx.grad(l, A)
    np.testing.assert_allclose(G, central(f, a), rtol=1e-6, atol=1e-7)
    # A² with A read as its symmetric part: the gradient is sym(A C + C A)
    S = (C + np.swapaxes(C, -1, -2)) / 2
    np.testing.assert_allclose(G, (a @ S + S @ a + np.swapaxes(a @ S + S @ a, -1, -2)) / 2, rtol=1e-8, atol=1e-9)


def test_eigenvector_sign_convention_is_fixed_and_stable():
    a = sym_data((3, 3), seed=9)
    V = jx.eigh(a)[1].value
    big = np.take_along_axis(V, np.abs(V).argmax(0)[None], 0)
    assert (big > 0).all()
    V2 = jx.eigh(-(-a))[1].value  # the same matrix: the same vectors, bit for bit
    np.testing.assert_array_equal(V, V2)
    V32 = jx.eigh(a.astype(np.float32))[1].value  # float32 picks the same signs
    np.testing.assert_allclose(V32, V, atol=1e-5)


# ------------------------------------------------------------ the symmetric part
def test_cholesky_and_eigh_read_the_symmetric_part():
    rng = np.random.default_rng(10)
    s = draw((3, 3), "spd", rng)
    skew = np.triu(rng.standard_normal((3, 3)), 1)
    a = s + skew - skew.T  # symmetric part s
    np.testing.assert_allclose(jx.cholesky(a).value, np.linalg.cholesky(s), rtol=1e-12)
    np.testing.assert_allclose(jx.eigvalsh(a).value, np.linalg.eigvalsh(s), rtol=1e-12)
    A = jx.var(s, name="A")
    G = jx.grad(jx.sum(jx.cholesky(A) * np.arange(9.0).reshape(3, 3)), A)
    np.testing.assert_allclose(G, G.T, atol=1e-12)  # the gradient is a symmetric matrix


# ------------------------------------------------------------ misc behaviour and errors
def test_matrix_power_integer_exponent():
    A = jx.var(draw((2, 3, 3), "well_conditioned", np.random.default_rng(11)), name="A")
    np.testing.assert_allclose(jx.matrix_power(A, -3).value, np.linalg.matrix_power(A.value, -3), rtol=1e-12)
    assert not jx.jacobian(jx.matrix_power(A, 0), A).any()
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match="matrix_power: the exponent n must be an integer"):
            jx.matrix_power(A, bad)
    jx.matrix_power(A, np.int64(2))


@pytest.mark.parametrize("sa,sb", [((2, 3), (3, 2)), ((3,), (2, 2)), ((2, 2, 2), (3,)), ((1, 2), (3, 1)), ((), (2,))])
def test_kron_matches_numpy_for_any_ranks(sa, sb):
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    A = jx.var(a)
    Y = jx.kron(A, b)
    np.testing.assert_array_equal(Y.value, np.kron(a, b))
    if a.size:
        np.testing.assert_allclose(jx.jacobian(Y, A), central(lambda x: np.kron(x, b), a), atol=1e-8)


@pytest.mark.parametrize("call,msg", [
    (lambda: jx.cross(np.ones(2), np.ones(2)), r"cross: needs 3-vectors along axis -1, got shapes \(2,\) and \(2,\)"),
    (lambda: jx.cross(np.ones((2, 3)), np.ones((4, 3))),
     r"cross: the other axes .*\(2,\) and \(4,\), do not broadcast"),
    (lambda: jx.solve(np.ones((2, 3, 3)), np.ones((4, 3, 1))), r"solve: the batch axes .* \(2,\) and \(4,\)"),
    (lambda: jx.solve(np.eye(3), np.ones((2, 3))), r"solve: B must be a vector \(3,\) or a matrix"),
    (lambda: jx.inv(np.ones((2, 2, 3))), r"inv: needs a square matrix or a stack of them.*\(2, 2, 3\)"),
    (lambda: jx.cholesky(np.ones(3)), r"cholesky: needs a square matrix"),
    (lambda: jx.pinv(np.ones(3)), r"pinv: needs a matrix"),
    (lambda: jx.svd(np.ones(3)), r"svd: needs a matrix"),
    (lambda: jx.eigvalsh(np.ones((2, 3))), r"eigvalsh: needs a square matrix"),
])
def test_bad_shapes_are_refused_naming_the_op(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_each_policy_is_one_line_of_the_module_docstring():
    import re

    from jacobians.ops import linalg
    from jacobians.registry import declared_in

    lines = set(re.findall(r"^\* (\w+): (.*)$", linalg.__doc__, re.M))
    ops = [n for n in jx.registered_ops() if declared_in(n) == linalg.__name__]
    assert lines == {(n, jx.get_op(n).policy) for n in ops if jx.get_op(n).policy}
    assert {"eigh_v", "svd_u", "svd_vt", "cholesky"} <= {n for n, _ in lines}
