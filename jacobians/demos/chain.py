"""Demo ``chain`` (the default): dY/dW is a 4-tensor, so how does the chain rule give back a matrix?

X is D×N (D ≠ N, so a transposed index cannot hide), W = X Xᵀ, Y = W X and
l = ‖Y‖_F (then ‖Y‖_F²). The demo prints the 4-tensor dY/dW with its index
formula, the contraction dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab that turns it
back into a matrix, the Frobenius-calculus shortcuts Y Xᵀ/‖Y‖_F and 2 Y Xᵀ
beside it, and the partial dl/dX with W held fixed (2 Wᵀ Y) beside the total
dl/dX, path by path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, TextIO, Tuple

import numpy as np

import jacobians as jx

from ..index_form import index_form
from ..vec_forms import vec_form
from . import Arrays, DemoResult, Printer, matrix, named, write_pictures

NAME = "chain"
SUMMARY = "seed 1: W = X Xᵀ, Y = W X, l = ‖Y‖_F — the 4-tensor dY/dW and the contraction that gives a matrix"
SIZES: Dict[str, int] = {"D": 3, "N": 4}
TOL = 1e-10  # exact routes agree to round-off


def footprint(sizes: Dict[str, int], plot: bool = False) -> Tuple[Arrays, Arrays]:
    """The arrays run() makes, from the sizes alone: (data and values, dense Jacobians it keeps)."""
    D, N = sizes["D"], sizes["N"]
    data = [("X", (D, N)), ("W = X Xᵀ", (D, D)), ("Y = W X", (D, N)),
            ("the gradients dl/dW and dl/dX", (8, D, max(D, N)))]
    dense = [("dY/dW and the same tensor from its index formula", (2, D, N, D, D))]
    if plot:
        dense += [("dY/dX (for --plot)", (D, N, D, N)), ("dW/dX (for --plot)", (D, D, D, N))]
    return data, dense


def build(D: int, N: int, seed: int):
    """The seed's graph on standard-normal data: (X, Xᵀ, W, Y)."""
    X = jx.var(np.random.default_rng(seed).standard_normal((D, N)), name="X")
    Xt = named(X.T, "Xᵀ")
    W = named(X @ Xt, "W")
    Y = named(W @ X, "Y")
    return X, Xt, W, Y


def run(sizes: Dict[str, int], seed: int, plot_dir: Optional[Path], out: TextIO) -> DemoResult:
    D, N = sizes["D"], sizes["N"]
    p = Printer(out)
    res = DemoResult()
    X, Xt, W, Y = build(D, N, seed)
    Xv, Wv, Yv = X.value, W.value, Y.value
    l = named(jx.fro(Y), "l")
    res.values.update(X=Xv, W=Wv, Y=Yv)

    def agree(key: str, got: np.ndarray, want: np.ndarray, tol: float = TOL) -> str:
        return res.agree(key, got, want, tol)

    p.title("Seed 1: dY/dW is a 4-tensor. How does the chain rule give back a matrix?")
    p(f"Data: X is D×N = {D}×{N}, standard normal (seed {seed})."
      + ("" if D != N else "  (D = N: a transposed index could hide; try --sizes D=3,N=4)"))
    p()
    p("The graph, node by node:")
    for node, how in ((X, "the data, a leaf"), (W, "W = X Xᵀ"), (Y, "Y = W X"), (l, "l = ‖Y‖_F, a scalar")):
        p(f"  {node.name:<3} shape {str(node.shape):<8} {how}")

    # -------------------------------------------------------------- 1
    p.section("1. dY/dW is a 4-tensor")
    J = jx.jacobian(Y, W)
    res.values["dY_dW"] = J
    p(f"jx.jacobian(Y, W).shape = {J.shape} = Y.shape + W.shape: one entry for every pair")
    p("(output entry Y_cd, input entry W_ab). Since Y_cd = Σ_e W_ce X_ed, the matmul's index formula is")
    form = index_form(Y, W, "cd", "ab")
    p(f"    dY_cd/dW_ab = {form.text_rhs()}")
    p("    (δ_ca is 1 when c = a, else 0: W's row a only reaches Y's row a)")
    built = np.einsum("ca,bd->cdab", np.eye(D), Xv)
    p(f"The same tensor from the formula, np.einsum('ca,bd->cdab', I, X): {agree('formula', J, built, 0.0)}")
    v = vec_form(Y, W)  # None above the size vec_forms checks its matrices at
    if v is not None:
        p(f"Matricized, J.reshape({D * N}, {D * D}) is dvec(Y)/dvec(W) = {v.row_text} in numpy's row-major vec")
        p(f"(the column-major vec of textbooks writes it {v.col_text}).")
    else:
        p(f"Matricized, J.reshape({D * N}, {D * D}) is dvec(Y)/dvec(W) = I_{D} ⊗ Xᵀ in numpy's row-major vec")
        p("(the vec form is derived and checked for smaller sizes only; try --sizes D=3,N=4).")

    # -------------------------------------------------------------- 2
    p.section("2. The chain rule contracts it back to a matrix")
    p("    dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab")
    p("dl/dY carries the indices (c,d) and dY/dW carries (c,d,a,b). The repeated pair c,d is")
    p("summed away and (a,b) is left: rank 2 + 4 − 2·2 = 2, a matrix shaped like W. This is")
    p("not a matrix product of a rank-2 and a rank-4 tensor (that would keep 4 indices); it is a")
    p("double contraction — for each (a,b), the Frobenius product dl/dY : dY/dW_ab.")
    p("With the formula: Σ_cd dl/dY_cd δ_ca X_bd = Σ_d dl/dY_ad X_bd = (dl/dY · Xᵀ)_ab.")

    gY = jx.grad(l, Y)
    G1 = np.einsum("cd,cdab->ab", gY, J)
    res.values["dl_dW"] = G1
    p()
    p("l = ‖Y‖_F:  dl/dY = Y / ‖Y‖_F, so dl/dW = Y Xᵀ / ‖Y‖_F")
    p("  by the chain rule, np.einsum('cd,cdab->ab', dl/dY, dY/dW):")
    p(matrix(G1))
    p("  Frobenius calculus, Y Xᵀ / ‖Y‖_F:")
    shortcut = Yv @ Xv.T / np.linalg.norm(Yv)
    p(matrix(shortcut))
    p(f"  {agree('dl_dW', G1, shortcut)}")
    p(f"  derived by the toolkit, jx.derive(l, W) (deltas eliminated): dl/dW = {jx.derive(l, W).expression}")

    l2 = named(jx.fro(Y) ** 2, "l")
    gY2 = jx.grad(l2, Y)
    G2 = np.einsum("cd,cdab->ab", gY2, J)
    res.values["dl2_dW"] = G2
    p()
    p("l = ‖Y‖_F²:  dl = 2 Y : dY = 2 Y : (dW X) = 2 Y Xᵀ : dW, so dl/dW = 2 Y Xᵀ")
    p("  by the chain rule:")
    p(matrix(G2))
    p("  Frobenius calculus, 2 Y Xᵀ:")
    p(matrix(2 * Yv @ Xv.T))
    p(f"  {agree('dl2_dW', G2, 2 * Yv @ Xv.T)}")
    l2_sum = named(jx.sum(Y * Y), "l")  # the same ‖Y‖_F², written as Σ Y⊙Y so the derivation reads simply
    p(f"  derived by the toolkit, jx.derive(sum(Y * Y), W): dl/dW = {jx.derive(l2_sum, W).expression}")

    # -------------------------------------------------------------- 3
    p.section("3. dl/dX for l = ‖Y‖_F²: W held fixed, or W = X Xᵀ followed")
    p("X reaches Y along three paths:  X → Y (Y = W X),  X → W → Y (X as W's left factor)")
    p("and X → Xᵀ → W → Y (its right factor). 'The gradient w.r.t. X' depends on which count.")
    partial = jx.grad(l2, X, hold=[W])
    total = jx.grad(l2, X)
    no_right = jx.grad(l2, X, hold=[Xt])  # cuts only X → Xᵀ → W
    res.values.update(dl2_dX_partial=partial, dl2_dX_total=total)
    p()
    p("partial, W held fixed — jx.grad(l, X, hold=[W]), the direct path only:")
    p(matrix(partial))
    p("  Frobenius calculus with dW = 0, dl = 2 Y : W dX = 2 Wᵀ Y : dX, so 2 Wᵀ Y:")
    p(matrix(2 * Wv.T @ Yv))
    p(f"  {agree('partial', partial, 2 * Wv.T @ Yv)}")
    p()
    p("total — jx.grad(l, X), all three paths:")
    p(matrix(total))
    closed = 2 * (Wv.T @ Yv + Yv @ Xv.T @ Xv + Xv @ Yv.T @ Xv)
    p("  dY = W dX + dX Xᵀ X + X dXᵀ X gives 2 (Wᵀ Y + Y Xᵀ X + X Yᵀ X):")
    p(matrix(closed))
    p(f"  {agree('total', total, closed)}")
    p()
    p("The difference is the paths through W (G = dl/dW = 2 Y Xᵀ, dW = dX Xᵀ + X dXᵀ):")
    left, right = no_right - partial, total - no_right
    p(f"  X → W → Y       contributes G X  = 2 Y Xᵀ X   {agree('left', left, 2 * Yv @ Xv.T @ Xv)}")
    p(f"  X → Xᵀ → W → Y  contributes Gᵀ X = 2 X Yᵀ X   {agree('right', right, 2 * Xv @ Yv.T @ Xv)}")

    # -------------------------------------------------------------- 4
    p.section("4. Three routes: explicit 4-tensors, hand-written VJPs, central differences")
    c = jx.compare(l, [X, W])
    res.ok &= c.ok
    p(str(c))

    # -------------------------------------------------------------- 5
    p.section("5. The derivation, as jx.explain(l, W) writes it")
    p(str(jx.explain(l, W)))
    p()
    p("jx.explain(l, X) writes out all three paths; python -m jacobians demo mlp is the second seed.")

    if plot_dir is not None:
        pictures = [
            ("chain_dY_dW.png", J, Y, W, f"dY/dW = I_{D} ⊗ Xᵀ: {D} diagonal blocks, each Xᵀ"),
            ("chain_dY_dX_total.png", jx.jacobian(Y, X), Y, X, "dY/dX, total: dense (three paths summed)"),
            ("chain_dW_dX.png", jx.jacobian(W, X), W, X,
             f"dW/dX for W = X Xᵀ: I_{D} ⊗ X + (X ⊗ I_{D}) K, the two paths X → W and X → Xᵀ → W"),
        ]
        write_pictures(pictures, plot_dir, res, p)
    return res
