"""jx.explain: its formulas are checked against independent routes, not against itself.

Index forms are evaluated and compared with central differences for every op
case; Kronecker/vec claims are rebuilt here with np.kron and compared with the
Jacobian; FLOPs are recomputed with opt_einsum directly.
"""
import re

import numpy as np
import opt_einsum as oe
import pytest

import jacobians as jx
from jacobians.graph import local_jacobian
from jacobians.index_form import index_form
from jacobians.vec_forms import vec_form

from op_cases import CASES, draw
from test_factored import materialize

D, N = 3, 5


def _named(node, name):
    node._name = name
    return node


@pytest.fixture
def seed1():
    X = jx.var(np.random.default_rng(2).standard_normal((D, N)), name="X")
    Xt = _named(X.T, "Xᵀ")
    W = _named(X @ Xt, "W")
    Y = _named(W @ X, "Y")
    l = _named(jx.fro(Y), "l")
    return X, Xt, W, Y, l


def test_seed1_derivation_text(seed1):
    X, Xt, W, Y, l = seed1
    text = str(jx.explain(l, W))
    assert "dY_cd/dW_ab = δ_ca X_bd" in text
    assert "dl/dY_cd = Y_cd / l" in text
    assert "dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab" in text
    assert "cd,cdab->ab" in text
    assert f"(3, 5) + (3, 3) = (3, 5, 3, 3)" in text
    assert f"I_{D} ⊗ Xᵀ" in text and f"Xᵀ ⊗ I_{D}" in text  # row-major and column-major
    assert "row-major" in text and "column-major" in text and "ravel" in text


def test_flops_match_opt_einsum(seed1):
    X, Xt, W, Y, l = seed1
    d = jx.explain(l, W)
    eq = d.paths[0].equation
    _, info = oe.contract_path(eq, (D, N), (D, N, D, D), shapes=True)
    assert d.plan.flops == info.opt_cost
    assert f"{info.opt_cost:,} FLOPs" in str(d)
    assert sum(s.flops for s in d.paths[0].steps) == info.opt_cost


def test_three_paths_to_X_and_their_sum(seed1):
    X, Xt, W, Y, l = seed1
    d = jx.explain(l, X)
    routes = [" → ".join(n.name for n in p.nodes) for p in d.paths]
    assert sorted(routes) == sorted(["X → Xᵀ → W → Y → l", "X → W → Y → l", "X → Y → l"])
    # each path's einsum over its local Jacobians (the direct partial of each edge), summed over the
    # paths, is the gradient (central differences)
    total = 0
    for p in d.paths:
        operands = [local_jacobian(c, q) for c, q in zip(p.nodes[:0:-1], p.nodes[-2::-1])]
        total = total + np.einsum(p.equation, *operands)
    np.testing.assert_allclose(total, jx.grad(l, X, method="numeric"), rtol=1e-6, atol=1e-8)
    assert "3 paths" in str(d) and "dW_ef/dXᵀ_cd" in str(d)


def test_hold_cuts_paths(seed1):
    X, Xt, W, Y, l = seed1
    d = jx.explain(l, X, hold=[W])
    assert len(d.paths) == 1 and "held fixed" in str(d) and "W" in str(d).split("held fixed")[1]


def test_independent_and_identity(seed1):
    X, Xt, W, Y, l = seed1
    z = jx.var(np.ones(2), name="z")
    assert "does not depend on" in str(jx.explain(l, z))
    assert "identity" in str(jx.explain(X, X))


def test_bad_arguments(seed1):
    X, Xt, W, Y, l = seed1
    with pytest.raises(TypeError, match="one node"):
        jx.explain(l, [X, W])
    with pytest.raises(TypeError, match="wrt must be a node"):
        jx.explain(l, "X")
    with pytest.raises(ValueError, match="optimal, reverse"):
        jx.explain(l, X, order="sideways")


def test_callable_after_the_submodule_is_imported(seed1):
    """``import jacobians.explain`` binds the module to jx.explain; calls must still work."""
    import jacobians.explain as module  # noqa: F401

    X, Xt, W, Y, l = seed1
    assert "δ_ca X_bd" in str(jx.explain(l, W))


# ---------------------------------------------------------------- every op
def _case_nodes(case):
    rng = np.random.default_rng(0)
    leaves = [jx.var(draw(s, case.domain, rng), name=f"x{i}") for i, s in enumerate(case.shapes)]
    return case.call(*leaves), leaves


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_index_form_evaluates_to_the_jacobian(case):
    """Every op's index form (explain covers every op) against central differences, materialized with eye."""
    y, leaves = _case_nodes(case)
    for x in leaves:
        d = jx.explain(y, x)
        for loc in d.locals:  # every edge: the op itself, and (vdot, outer) the reshapes in front of it
            form = index_form(loc.child, loc.parent)
            assert form is not None and loc.index is not None and loc.text() in str(d)
            J = jx.jacobian(loc.child, loc.parent, method="numeric")
            for dense in (materialize(form.form, loc.child.shape, loc.parent.shape), form.dense()):
                err = np.abs(dense - J).max() / max(1.0, np.abs(J).max())
                assert err < 1e-6, f"{form}: relative error {err:.1e}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_vec_form_is_the_matricized_jacobian(case):
    y, leaves = _case_nodes(case)
    for x in leaves:
        v = vec_form(y, x)
        if v is None:
            continue
        J = jx.jacobian(y, x, method="numeric").reshape(y.size, x.size)
        assert np.abs(v.matrix - J).max() / max(1.0, np.abs(J).max()) < 1e-6


def _col_major(J, out_shape, in_shape):
    """J matricized with column-major vec on both sides."""
    no, ni = len(out_shape), len(in_shape)
    axes = list(reversed(range(no))) + [no + k for k in reversed(range(ni))]
    return J.transpose(axes).reshape(int(np.prod(out_shape)), int(np.prod(in_shape)))


def test_matmul_kronecker_forms_in_both_conventions():
    rng = np.random.default_rng(4)
    A = jx.var(rng.standard_normal((3, 4)), name="A")
    B = jx.var(rng.standard_normal((4, 2)), name="B")
    Y = A @ B
    JA, JB = jx.jacobian(Y, A), jx.jacobian(Y, B)
    # row-major (numpy): I ⊗ Bᵀ and A ⊗ I;  column-major (textbook): Bᵀ ⊗ I and I ⊗ A
    np.testing.assert_allclose(JA.reshape(6, 12), np.kron(np.eye(3), B.value.T))
    np.testing.assert_allclose(JB.reshape(6, 8), np.kron(A.value, np.eye(2)))
    np.testing.assert_allclose(_col_major(JA, (3, 2), (3, 4)), np.kron(B.value.T, np.eye(3)))
    np.testing.assert_allclose(_col_major(JB, (3, 2), (4, 2)), np.kron(np.eye(2), A.value))
    text = str(jx.explain(jx.sum(Y), A))
    assert "I_3 ⊗ Bᵀ" in text and "Bᵀ ⊗ I_3" in text
    text = str(jx.explain(jx.sum(Y), B))
    assert "A ⊗ I_2" in text and "I_2 ⊗ A" in text


def test_inverse_and_transpose_forms_in_both_conventions():
    rng = np.random.default_rng(5)
    A = jx.var(np.eye(3) * 2 + 0.3 * rng.standard_normal((3, 3)), name="A")
    Ai = np.linalg.inv(A.value)
    J = jx.jacobian(jx.inv(A), A)
    np.testing.assert_allclose(J.reshape(9, 9), -np.kron(Ai, Ai.T), atol=1e-12)  # −(Y ⊗ Yᵀ)
    np.testing.assert_allclose(_col_major(J, (3, 3), (3, 3)), -np.kron(Ai.T, Ai), atol=1e-12)  # −(A⁻ᵀ ⊗ A⁻¹)

    def commutation(r, s):  # K vec_c(M) = vec_c(Mᵀ) for M of shape r×s (Magnus–Neudecker)
        K = np.zeros((r * s, r * s))
        for i in range(r):
            for j in range(s):
                K[i * s + j, j * r + i] = 1
        return K

    X = jx.var(rng.standard_normal((2, 3)), name="X")
    J = jx.jacobian(X.T, X)
    M = rng.standard_normal((2, 3))
    assert np.allclose(commutation(2, 3) @ M.ravel(order="F"), M.T.ravel(order="F"))
    np.testing.assert_array_equal(J.reshape(6, 6), commutation(3, 2))  # row-major: K_{3,2}
    np.testing.assert_array_equal(_col_major(J, (3, 2), (2, 3)), commutation(2, 3))
    v = vec_form(X.T, X)
    assert "K_{3,2}" in v.row_major and "K_{2,3}" in v.col_major


def test_bias_broadcast_is_ones_kron_identity():
    b = jx.var(np.zeros(3), name="b")
    Z = jx.add(np.ones((4, 3)), b)
    v = vec_form(Z, b)
    np.testing.assert_array_equal(jx.jacobian(Z, b).reshape(12, 3), np.kron(np.ones((4, 1)), np.eye(3)))
    assert "1_4 ⊗ I_3" in v.row_major and "I_3 ⊗ 1_4" in v.col_major


# ---------------------------------------------------------------- renderings
def test_markdown_and_latex_renderings(seed1):
    X, Xt, W, Y, l = seed1
    d = jx.explain(l, X)
    md = d._repr_markdown_()
    assert md.count("$") % 2 == 0 and r"\delta_{ea}" in md and "`gh,ghef,efcd,cdab->ab`" in md
    assert r"\otimes" in md and r"\partial" in md
    tex = d._repr_latex_()
    assert tex.startswith("$$\\begin{array}") and tex.endswith("\\end{array}$$")
    body = re.sub(r"\\[{}]", "", tex)
    assert body.count("{") == body.count("}")
    for raw in ("\x01", "\x02", "\x03", "\x04"):
        assert raw not in md and raw not in tex and raw not in str(d)


def test_latex_formulas_are_typeset_by_mathtext(seed1):
    """Every math fragment of the Markdown parses with matplotlib's TeX subset."""
    mathtext = pytest.importorskip("matplotlib.mathtext")
    X, Xt, W, Y, l = seed1
    parser = mathtext.MathTextParser("path")
    for frag in re.findall(r"\$([^$]+)\$", jx.explain(l, X)._repr_markdown_()):
        parser.parse("$" + frag.replace(r"\operatorname{vec}", r"\mathrm{vec}") + "$")
