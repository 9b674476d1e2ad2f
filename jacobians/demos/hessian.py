"""Demo ``hessian``: d²l/dW² as a 4-tensor, its Kronecker form, a Newton step, and the two parts of a Hessian.

* Least squares l = ‖X W − T‖²_F: the Hessian w.r.t. W is a 4-tensor of shape
  W.shape + W.shape, ``d²l/dW_ab dW_cd = 2 (XᵀX)_ac δ_bd`` — matricized in
  numpy's row-major vec, ``2 XᵀX ⊗ I``. It does not depend on W, and one
  Newton step W − H⁻¹ g lands on the least-squares solution.
* A 2-layer tanh MLP, l = ‖tanh(X W1) W2 − T‖²: the second-order chain rule
  splits the Hessian w.r.t. W1 into the Gauss–Newton part Jᵀ H_out J (J the
  Jacobian of the network's output, H_out the Hessian of the loss w.r.t. that
  output) and the curvature part Σ_k g_k ∂²out_k (the output's own curvature,
  weighted by the loss's gradient). The first is positive semi-definite; the
  second is not, and it vanishes where the residual does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, TextIO, Tuple

import numpy as np

import jacobians as jx

from . import Arrays, DemoError, DemoResult, Printer, matrix, named

NAME = "hessian"
SUMMARY = "least squares: d²l/dW² = 2 XᵀX ⊗ I and a one-step Newton solve; an MLP's Gauss–Newton and curvature parts"
SIZES: Dict[str, int] = {"m": 6, "n": 3, "k": 2, "h": 4}
TOL = 1e-9
PER_OUTPUT = 256  # section 3 computes one Hessian per output entry up to m·k of these (each takes milliseconds)


def footprint(sizes: Dict[str, int], plot: bool = False) -> Tuple[Arrays, Arrays]:
    """The arrays run() makes, from the sizes alone: (data and values, dense Hessians and Jacobians it keeps)."""
    m, n, k, h = sizes["m"], sizes["n"], sizes["k"], sizes["h"]
    if n > m:  # XᵀX (n×n, rank ≤ m) would be singular: no Newton step, no unique least-squares solution
        raise DemoError(f"--sizes: n={n} features need at least as many samples (m={m} < n): XᵀX would be "
                        f"singular, so least squares has no unique solution for the Newton step; use m ≥ n, "
                        f"e.g. m={max(2 * n, 6)},n={n}")
    data = [("X", (m, n)), ("T, X W − T, its square, out − T, its square and dl/dout", (8, m, k)),
            ("X W1 and tanh(X W1)", (2, m, h)), ("W, W1, W2 and the gradients", (6, max(n, h), max(k, h)))]
    dense = [("d²l/dW², 2 XᵀX ⊗ I and the Newton system", (3, n * k, n * k)), ("dout/dW1", (m, k, n, h)),
             ("d²l/dout²", (m, k, m, k)), ("d²l/dW1², its Gauss–Newton and curvature parts, the numeric one",
                                          (4, n, h, n, h)),
             ("each output's own Hessian w.r.t. W1, stacked", (2, min(m * k, PER_OUTPUT), n * h, n * h))]
    return data, dense


def run(sizes: Dict[str, int], seed: int, plot_dir: Optional[Path], out: TextIO) -> DemoResult:
    m, n, k, h = sizes["m"], sizes["n"], sizes["k"], sizes["h"]
    p = Printer(out)
    res = DemoResult()
    rng = np.random.default_rng(seed)
    Xv, Tv = rng.standard_normal((m, n)), rng.standard_normal((m, k))
    res.values.update(X=Xv, T=Tv)

    p.title("The Hessian of a matrix function: d²l/dW² is a 4-tensor")
    p(f"Data: X is {m}×{n}, T is {m}×{k} (standard normal, seed {seed}); W is {n}×{k}.")
    p.section("1. Least squares: l = ‖X W − T‖²_F")
    W = jx.var(rng.standard_normal((n, k)), name="W")
    l = named(jx.sum((Xv @ W - Tv) ** 2), "l")
    H = jx.hessian(l, W)
    p(f"jx.hessian(l, W).shape = {H.shape} = W.shape + W.shape")
    p("Index form: d²l/dW_ab dW_cd = 2 (XᵀX)_ac δ_bd   (W's column b only meets column d = b)")
    res.values["H_ls"] = H
    p("  against 2 XᵀX ⊗ I built with numpy: " + res.agree("H vs 2 XᵀX ⊗ I", H.reshape(n * k, n * k),
                                                          np.kron(2 * Xv.T @ Xv, np.eye(k)), TOL))
    p("Matricized (row-major vec, n·k × n·k):")
    p(matrix(H.reshape(n * k, n * k)))
    c = jx.compare(l, W, order=2)
    p(f"Routes (factored, explicit, hvp, numeric): {c.verdict()}")
    res.ok &= bool(c.ok)
    p.section("2. One Newton step solves it")
    g = jx.grad(l, W)
    step = np.linalg.solve(H.reshape(n * k, n * k), g.ravel()).reshape(n, k)
    W1 = W.value - step
    Wls = np.linalg.lstsq(Xv, Tv, rcond=None)[0]
    res.values["newton"] = W1
    p("W − H⁻¹ g (the Hessian matricized, g = dl/dW flattened the same way) against numpy's lstsq: "
      + res.agree("Newton step vs lstsq", W1, Wls, 1e-8))
    p("The Hessian does not depend on W: l is quadratic, so its second-order model is exact.")

    p.section("3. A 2-layer tanh MLP: Gauss–Newton part and curvature part")
    W1n = jx.var(rng.standard_normal((n, h)) / np.sqrt(n), name="W1")
    W2v = rng.standard_normal((h, k)) / np.sqrt(h)
    out_ = named(jx.tanh(Xv @ W1n) @ W2v, "out")
    loss = named(jx.sum((out_ - Tv) ** 2), "l")
    Hfull = jx.hessian(loss, W1n)
    J = jx.jacobian(out_, W1n)                                  # (m, k) + W1.shape
    Hout = jx.hessian(loss, out_)                              # (m, k) + (m, k): 2 δ δ
    gout = jx.grad(loss, out_)                                 # (m, k): 2 (out − T)
    GN = np.einsum("ijab,ijkl,klcd->abcd", J, Hout, J, optimize=True)
    curvature = Hfull - GN
    if m * k <= PER_OUTPUT:  # each output's own Hessian, weighted by the loss's gradient
        second = np.stack([jx.hessian(out_.reshape(-1)[q], W1n) for q in range(m * k)]).reshape((m, k) + Hfull.shape)
        weighted, how = np.einsum("ij,ijabcd->abcd", gout, second), "from each output's own Hessian"
    else:  # the same sum in one Hessian: of Σ g ⊙ out, with g held constant
        weighted = jx.hessian(jx.sum(jx.const(gout, name="g") * out_), W1n)
        how = (f"as the Hessian of Σ g ⊙ out with g held constant ({m * k} outputs; one Hessian each up to "
               f"{PER_OUTPUT})")
    res.values.update(H_mlp=Hfull, GN=GN, curvature=curvature)
    p(f"H = d²l/dW1² has shape {Hfull.shape}. With J = d out/dW1 {J.shape}, H_out = d²l/dout² {Hout.shape}"
      f" and g = dl/dout {gout.shape}:")
    p("  H = Σ J_ij,ab H_out,ij,kl J_kl,cd  +  Σ_ij g_ij d²out_ij/dW1_ab dW1_cd")
    p("      (Gauss–Newton, Jᵀ H_out J)       (curvature, Σ g ∂²out)")
    p(f"  the curvature part {how}: " + res.agree("curvature", curvature, weighted, TOL))
    N = jx.hessian(loss, W1n, method="numeric")
    p("  H against central differences of the gradient: " + res.agree("H vs numeric", Hfull, N, 1e-5))
    ev = lambda M: np.linalg.eigvalsh(M.reshape(n * h, n * h))  # noqa: E731
    p(f"  eigenvalues: Gauss–Newton min {ev(GN).min():.3g} (≥ 0: Jᵀ·2I·J is positive semi-definite), "
      f"curvature min {ev(curvature).min():.3g}, H min {ev(Hfull).min():.3g}")
    p(f"  ‖Gauss–Newton‖ = {np.linalg.norm(GN):.3g}, ‖curvature‖ = {np.linalg.norm(curvature):.3g}: the curvature "
      "part is weighted by the residual out − T and vanishes at a perfect fit.")
    res.ok &= bool(ev(GN).min() > -1e-10)
    p()
    p(f"all checks agree: {res.ok}")
    return res
