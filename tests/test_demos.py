"""The demos print the right formulas and numbers that agree with closed forms computed here.

Closed forms come from Frobenius calculus and matrix backpropagation, written in
numpy in this file; the printed matrices are read back and compared with them.
"""
import io
import re

import numpy as np
import pytest

from jacobians.demos import DEMOS, DemoError, get_demo, parse_sizes, run_demo
from printed import printed_matrix



def _run(name, **kw):
    out = io.StringIO()
    res = run_demo(name, out=out, **kw)
    return res, out.getvalue()


@pytest.fixture(scope="module")
def chain():
    return _run("chain")


def test_chain_prints_the_4_tensor_and_its_formula(chain):
    res, text = chain
    assert res.ok
    assert "(3, 4, 3, 3) = Y.shape + W.shape" in text
    assert "dY_cd/dW_ab = δ_ca X_bd" in text
    assert "dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab" in text
    assert "rank 2 + 4 − 2·2 = 2" in text
    assert "I_3 ⊗ Xᵀ" in text and "Xᵀ ⊗ I_3" in text
    assert "all routes agree: True" in text
    assert "DISAGREE" not in text


def test_chain_numbers_agree_with_frobenius_calculus(chain):
    res, text = chain
    X = np.random.default_rng(0).standard_normal((3, 4))  # the demo's data: seed 0, D×N
    W = X @ X.T
    Y = W @ X
    np.testing.assert_allclose(res.values["dY_dW"], np.einsum("ca,bd->cdab", np.eye(3), X), atol=0)
    np.testing.assert_allclose(res.values["dl_dW"], Y @ X.T / np.linalg.norm(Y), rtol=1e-12)
    np.testing.assert_allclose(res.values["dl2_dW"], 2 * Y @ X.T, rtol=1e-12)
    np.testing.assert_allclose(res.values["dl2_dX_partial"], 2 * W.T @ Y, rtol=1e-12)
    np.testing.assert_allclose(res.values["dl2_dX_total"], 2 * (W.T @ Y + Y @ X.T @ X + X @ Y.T @ X), rtol=1e-12)
    # the matrices on screen, read back
    printed = printed_matrix(text, "by the chain rule, np.einsum('cd,cdab->ab', dl/dY, dY/dW):", (3, 3))
    np.testing.assert_allclose(printed, Y @ X.T / np.linalg.norm(Y), atol=1e-4)
    printed = printed_matrix(text, "the direct path only:", (3, 4))
    np.testing.assert_allclose(printed, 2 * W.T @ Y, atol=1e-4)
    # every printed discrepancy is round-off
    diffs = [float(d) for d in re.findall(r"max \|difference\| = (\S+)", text)]
    assert len(diffs) >= 7 and max(diffs) < 1e-10


def test_chain_shows_the_shortcut_derived_by_delta_elimination(chain):
    _, text = chain  # the closed forms of Frobenius calculus, found by jx.derive
    assert "jx.derive(l, W) (deltas eliminated): dl/dW = (1/l) Y Xᵀ" in text
    assert "jx.derive(sum(Y * Y), W): dl/dW = 2 Y Xᵀ" in text


def test_chain_path_contributions_are_named(chain):
    _, text = chain
    assert "X → W → Y       contributes G X  = 2 Y Xᵀ X" in text
    assert "X → Xᵀ → W → Y  contributes Gᵀ X = 2 X Yᵀ X" in text
    assert "2 Wᵀ Y" in text


def test_chain_sizes_and_seed():
    res, text = _run("chain", sizes={"D": 2, "N": 5}, seed=7)
    X = np.random.default_rng(7).standard_normal((2, 5))
    Y = X @ X.T @ X
    assert "(2, 5, 2, 2)" in text and res.ok
    np.testing.assert_allclose(res.values["dl2_dW"], 2 * Y @ X.T, rtol=1e-12)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    return _run("mlp", plot_dir=tmp_path_factory.mktemp("mlp_plots"))


def test_mlp_prints_the_contractions(mlp):
    res, text = mlp
    assert res.ok and "all routes agree: True" in text
    assert "dŷ_cd/dz_ab = δ_ca δ_db σ'(z)_cd" in text
    assert "C'(ŷ) ⊙ σ'(z)" in text
    assert "dz_cd/dw_pq = Σ_e dx_ce/dw_pq · ω_ed" in text
    assert "rank 4 + 2 − 2 = 4" in text
    assert "8 of its 64 entries are nonzero" in text


def test_mlp_numbers_agree_with_backpropagation_in_matrix_form(mlp):
    res, text = mlp
    v = res.values
    a, t, w, om, b = v["a"], v["t"], v["w"], v["om"], v["b"]
    x = np.tanh(a @ w)
    z = x @ om + np.ones((a.shape[0], 1)) @ b
    yhat = 1 / (1 + np.exp(-z))
    delta = 2 * (yhat - t) * yhat * (1 - yhat)
    np.testing.assert_allclose(v["dC_dz"], delta, rtol=1e-10)
    np.testing.assert_allclose(v["dC_dω"], x.T @ delta, rtol=1e-10)
    np.testing.assert_allclose(v["dC_db"], delta.sum(axis=0, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(v["dC_dw"], a.T @ ((delta @ om.T) * (1 - x ** 2)), rtol=1e-10)
    # dŷ/dz is diagonal: δ_ca δ_db σ'(z_ab)
    m, k = z.shape
    np.testing.assert_allclose(v["dyhat_dz"].reshape(m * k, m * k), np.diag((yhat * (1 - yhat)).ravel()), atol=1e-15)
    # dz/dw = (∂x/∂w) ω, with x = tanh(a w): dx_ce/dw_pq = (1 − x_ce²) a_cp δ_eq
    dx_dw = np.einsum("ce,cp,eq->cepq", 1 - x ** 2, a, np.eye(w.shape[1]))
    np.testing.assert_allclose(v["dz_dw"], np.einsum("cepq,ed->cdpq", dx_dw, om), rtol=1e-10, atol=1e-15)
    printed = printed_matrix(text, "C'(ŷ) ⊙ σ'(z) = 2 (ŷ − t) ⊙ ŷ ⊙ (1 − ŷ):", delta.shape)
    np.testing.assert_allclose(printed, delta, atol=1e-4)


def assert_pictures(res, text, count):
    """The demo wrote ``count`` PNG files and named each one in its output."""
    assert len(res.plots) == count
    for path in res.plots:
        assert path.read_bytes()[:4] == b"\x89PNG" and str(path) in text


def test_mlp_writes_its_pictures(mlp):
    assert_pictures(*mlp, count=4)


def test_every_demo_declares_its_interface():
    for name in DEMOS:
        mod = get_demo(name)
        assert mod.NAME == name and mod.SUMMARY and mod.SIZES and callable(mod.run)


@pytest.mark.parametrize("spec,msg", [
    ("D=0", "positive integer"), ("Q=3", "unknown size 'Q'"), ("3x4x5", "give 2 sizes"), ("D=x", "positive integer"),
])
def test_bad_sizes(spec, msg):
    with pytest.raises(DemoError, match=msg):
        parse_sizes(spec, {"D": 3, "N": 4})


def test_unknown_demo_lists_the_demos():
    with pytest.raises(DemoError, match="available: chain, mlp"):
        get_demo("nope")
