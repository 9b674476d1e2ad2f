"""Demo ``conv``: the Jacobians of a 2-D convolution, and why its VJP is the transposed convolution.

Y = conv2d(X, W) (a cross-correlation, as PyTorch; stride 1, no padding) with
X of shape (1, C, H, W) and a kernel W of shape (O, C, kh, kw). The demo prints

* dY/dX, an 8-axis tensor that is almost all zeros: each output entry reads one
  kh×kw window of each input channel, so dY[0,o,i,j]/dX[0,c,h,w] = W[o,c,h−i,w−j]
  inside the window and 0 outside — matricized, a doubly block-Toeplitz matrix,
  drawn tap by tap; the form keeps it as a delta and two 0/1 selection tensors,
  S[i,a,h] = [h = i + a];
* dY/dW: dY[0,o,i,j]/dW[o',c,a,b] = δ_oo' X[0,c,i+a,j+b], zero off the δ;
* the VJP w.r.t. X, G ↦ Σ G·dY/dX, three ways: contracting the dense Jacobian,
  the toolkit's hand-written VJP, and the full convolution of G (zero-padded by
  kernel − 1) with the flipped kernel, computed here with plain numpy loops;
  and the VJP w.r.t. W, the correlation of X with G.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, TextIO, Tuple

import numpy as np

import jacobians as jx

from ..index_form import index_form
from ..ops.nn import selection
from . import Arrays, DemoError, DemoResult, Printer, matrix, named, write_pictures

NAME = "conv"
SUMMARY = "conv2d: the delta (Toeplitz) structure of dY/dX and dY/dW; its VJP is the transposed convolution"
SIZES: Dict[str, int] = {"C": 2, "H": 4, "W": 5, "O": 2, "kh": 2, "kw": 3}
TOL = 1e-10


def footprint(sizes: Dict[str, int], plot: bool = False) -> Tuple[Arrays, Arrays]:
    """The arrays run() makes, from the sizes alone: (data and values, dense Jacobians it keeps)."""
    C, H, W, O, kh, kw = (sizes[k] for k in ("C", "H", "W", "O", "kh", "kw"))
    if kh > H or kw > W:
        raise DemoError(f"--sizes: the kernel {kh}×{kw} must fit the input {H}×{W} (kh ≤ H, kw ≤ W)")
    Ho, Wo = H - kh + 1, W - kw + 1
    data = [("X", (1, C, H, W)), ("Y, G and G ⊙ Y", (3, O, Ho, Wo)), ("G zero-padded", (O, H + kh - 1, W + kw - 1)),
            ("the three VJPs w.r.t. X", (3, C, H, W)), ("the kernel and its gradients", (4, O, C, kh, kw)),
            ("the window", (H, W))]
    dense = [("dY/dX", (1, O, Ho, Wo, 1, C, H, W)),
             ("dY/dW and two copies of its off-diagonal blocks", (3, O, Ho, Wo, O, C, kh, kw))]
    return data, dense


def build(C: int, H: int, W: int, O: int, kh: int, kw: int, seed: int):
    """The input X (1, C, H, W), the kernel K (O, C, kh, kw), Y = conv2d(X, K) and a cotangent G of Y's shape."""
    rng = np.random.default_rng(seed)
    X = jx.var(rng.standard_normal((1, C, H, W)), name="X")
    K = jx.var(rng.standard_normal((O, C, kh, kw)), name="W")
    Y = named(jx.conv2d(X, K), "Y")
    G = rng.standard_normal(Y.shape)
    return X, K, Y, G


def full_convolution(G: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Σ_(o,a,b) Gpad[n,o,h+a,w+b] Kflip[o,c,a,b]: G zero-padded by kernel − 1, the kernel flipped, o ↔ c."""
    kh, kw = K.shape[2:]
    Gp = np.pad(G, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    Kf = K[:, :, ::-1, ::-1]
    H, W = Gp.shape[2] - kh + 1, Gp.shape[3] - kw + 1
    out = np.zeros((G.shape[0], K.shape[1], H, W))
    for h in range(H):
        for w in range(W):
            out[:, :, h, w] = np.einsum("noab,ocab->nc", Gp[:, :, h:h + kh, w:w + kw], Kf)
    return out


def correlation(X: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Σ_(n,i,j) G[n,o,i,j] X[n,c,i+a,j+b]: the kernel's gradient, X correlated with G."""
    Ho, Wo = G.shape[2:]
    kh, kw = X.shape[2] - Ho + 1, X.shape[3] - Wo + 1
    out = np.zeros((G.shape[1], X.shape[1], kh, kw))
    for a in range(kh):
        for b in range(kw):
            out[:, :, a, b] = np.einsum("noij,ncij->oc", G, X[:, :, a:a + Ho, b:b + Wo])
    return out


def _tap_letter(a: int, b: int, kw: int) -> str:
    return chr(ord("A") + a * kw + b)


def toeplitz_pattern(J: np.ndarray, K: np.ndarray, o: int, c: int):
    """Rows (i,j) × columns (h,w) of dY[0,o,i,j]/dX[0,c,h,w], each nonzero drawn as the letter of its tap.

    Returns the text lines and the largest |J − W[o,c,h−i,w−j]| over the slice (0 outside the window).
    """
    kh, kw = K.shape[2:]
    S = J[0, o, :, :, 0, c]  # (H', W', H, W)
    Ho, Wo, H, W = S.shape
    worst, lines = 0.0, []
    for i in range(Ho):
        for j in range(Wo):
            groups = []
            for h in range(H):
                cells = ""
                for w in range(W):
                    a, b = h - i, w - j
                    inside = 0 <= a < kh and 0 <= b < kw
                    want = K[o, c, a, b] if inside else 0.0
                    worst = max(worst, abs(float(S[i, j, h, w]) - want))
                    cells += _tap_letter(a, b, kw) if S[i, j, h, w] != 0 else "."
                groups.append(cells)
            lines.append(f"    (i,j)=({i},{j})  " + " ".join(groups))
    return lines, worst


def run(sizes: Dict[str, int], seed: int, plot_dir: Optional[Path], out: TextIO) -> DemoResult:
    C, H, W, O, kh, kw = (sizes[k] for k in ("C", "H", "W", "O", "kh", "kw"))
    p = Printer(out)
    res = DemoResult()
    if kh > H or kw > W:
        raise DemoError(f"--sizes: the kernel {kh}×{kw} must fit the input {H}×{W} (kh ≤ H, kw ≤ W)")
    X, K, Y, G = build(C, H, W, O, kh, kw, seed)
    Xv, Kv, Yv = X.value, K.value, Y.value
    Ho, Wo = Yv.shape[2:]
    res.values.update(X=Xv, W=Kv, Y=Yv, G=G)

    def agree(key: str, got: np.ndarray, want: np.ndarray, tol: float = TOL) -> str:
        return res.agree(key, got, want, tol)

    p.title("A 2-D convolution: a sparse 8-axis Jacobian, kept as deltas and selection tensors")
    p(f"X has shape {Xv.shape} = (N, C, H, W), the kernel W {Kv.shape} = (O, C, kh, kw), standard normal (seed {seed}).")
    p("Y = jx.conv2d(X, W), a cross-correlation as in PyTorch (stride 1, no padding):")
    p("    Y[n,o,i,j] = Σ_(c,a,b) W[o,c,a,b] X[n,c,i+a,j+b]")
    p(f"Y has shape {Yv.shape}: H' = H − kh + 1 = {Ho}, W' = W − kw + 1 = {Wo}.")

    # -------------------------------------------------------------- 1
    p.section("1. dY/dX: which entries are nonzero, and why")
    J = jx.jacobian(Y, X)
    res.values["dY_dX"] = J
    p(f"jx.jacobian(Y, X).shape = {J.shape} = Y.shape + X.shape, {J.size} entries.")
    p("Output (n,o,i,j) reads input (n',c,h,w) only when n' = n and the input lies in its window,")
    p("h = i + a and w = j + b for a tap 0 ≤ a < kh, 0 ≤ b < kw; the entry is then the tap's weight:")
    p("    dY[n,o,i,j]/dX[n',c,h,w] = δ_nn' W[o,c,h−i,w−j]   (0 outside the window)")
    p("The op's form says the same with a delta and one 0/1 selection tensor per spatial axis,")
    p("S1[i,a,h] = [h = i + a], S2[j,b,w] = [w = j + b] (stride, padding and dilation only change S):")
    p(f"    dY_nmij/dX_pchw = {index_form(Y, X, 'nmij', 'pchw').text_rhs()}")
    S1 = selection(Ho, kh, H, 1, 0, 1)
    i1 = min(1, Ho - 1)
    p(f"S1 has shape {S1.shape} (i, a, h); for output row i = {i1} its taps a = 0..{kh - 1} pick input rows "
      f"{i1}..{i1 + kh - 1}:")
    p(matrix(S1[i1]))
    nnz = int(np.count_nonzero(J))
    expect = Yv.size * C * kh * kw
    res.values["nnz_dY_dX"] = np.array(nnz)
    p(f"Nonzero entries: {nnz} of {J.size} — every one of the {Yv.size} outputs reads C·kh·kw = "
      f"{C * kh * kw} inputs: {Yv.size}·{C * kh * kw} = {expect}.")
    res.ok &= nnz == expect
    p()
    p(f"The slice dY[0,0,i,j]/dX[0,0,h,w] (output channel 0, input channel 0), matricized: rows (i,j),")
    p(f"columns (h,w) in groups of W = {W} (one group per input row h); tap (a,b) of W[0,0] is drawn as a letter:")
    for a in range(kh):
        p("    " + ", ".join(f"{_tap_letter(a, b, kw)} = W[0,0,{a},{b}] = {Kv[0, 0, a, b]: .4f}" for b in range(kw)))
    lines, worst = toeplitz_pattern(J, Kv, 0, 0)
    for line in lines:
        p(line)
    res.discrepancies["toeplitz"] = worst
    res.ok &= worst == 0.0
    p("Each row is the kernel laid into the input at offset (i,j); moving one output column shifts it one")
    p("input column, one output row shifts it a whole group: a doubly block-Toeplitz matrix, constant")
    j1 = min(1, Wo - 1)
    p(f"along its diagonals. The window of output (0,{j1}), as an H×W picture (W[0,0] at rows 0.., columns {j1}..):")
    p(matrix(J[0, 0, 0, j1, 0, 0]))
    window = np.zeros((H, W))
    window[0:kh, j1:j1 + kw] = Kv[0, 0]
    p(f"  against W[0,0] placed at (0,{j1}) in zeros: {agree('window', J[0, 0, 0, j1, 0, 0], window, 0.0)}")

    # -------------------------------------------------------------- 2
    p.section("2. dY/dW: block diagonal in the output channel")
    JW = jx.jacobian(Y, K)
    res.values["dY_dW"] = JW
    p(f"jx.jacobian(Y, W).shape = {JW.shape} = Y.shape + W.shape.")
    p("    dY[n,o,i,j]/dW[o',c,a,b] = δ_oo' X[n,c,i+a,j+b]")
    p(f"    dY_nmij/dW_ocab = {index_form(Y, K, 'nmij', 'ocab').text_rhs()}")
    p("Output channel o depends only on its own filter W[o] (the δ); within it, the derivative by tap")
    b1 = min(1, kw - 1)
    p(f"(a,b) is the input shifted by (a,b). For o = o' = 0, c = 0, tap (0,{b1}): X[0,0,i,j+{b1}] over (i,j):")
    p(matrix(JW[0, 0, :, :, 0, 0, 0, b1]))
    p(f"  against X[0,0,0:{Ho},{b1}:{b1 + Wo}]: "
      f"{agree('shifted', JW[0, 0, :, :, 0, 0, 0, b1], Xv[0, 0, 0:Ho, b1:b1 + Wo], 0.0)}")
    other = np.ones((O, O), dtype=bool) & ~np.eye(O, dtype=bool)  # (o, o') with o ≠ o'
    off = float(np.abs(JW.transpose(1, 4, 0, 2, 3, 5, 6, 7)[other]).max()) if O > 1 else 0.0
    p(f"  every entry with o ≠ o' is zero: max |dY[n,o,i,j]/dW[o',c,a,b]| over o ≠ o' = {off:.1f}")
    res.discrepancies["off_block"] = off
    res.ok &= off == 0.0
    p(f"Nonzero entries: {int(np.count_nonzero(JW))} of {JW.size}.")

    # -------------------------------------------------------------- 3
    p.section("3. The VJP w.r.t. X is the transposed (full) convolution")
    p("For a cotangent G of Y's shape (standard normal here), the VJP contracts G with the Jacobian:")
    p("    (G·dY/dX)[n,c,h,w] = Σ_(o,i,j) G[n,o,i,j] W[o,c,h−i,w−j]")
    p("Substituting a' = kh−1−(h−i), b' = kw−1−(w−j) turns it into a correlation of G, zero-padded by")
    p(f"kh−1 = {kh - 1} rows and kw−1 = {kw - 1} columns on each side, with the flipped kernel, o and c swapped:")
    p("    = Σ_(o,a',b') Gpad[n,o,h+a',w+b'] W[o,c,kh−1−a',kw−1−b']   — the full convolution of G with W")
    by_jacobian = np.tensordot(G, J, axes=Y.ndim)
    l = named(jx.sum(Y * G), "l")  # Σ G ⊙ Y: its gradient is the VJP
    by_vjp = jx.grad(l, X, method="vjp")
    by_full = full_convolution(G, Kv)
    res.values.update(vjp_x=by_vjp, full_conv=by_full)
    p()
    p("the full convolution, computed here with numpy (pad, flip, slide), channel c = 0:")
    p(matrix(by_full[0, 0]))
    p("the toolkit's hand-written VJP, jx.grad(sum(G ⊙ Y), X, method='vjp'), channel c = 0:")
    p(matrix(by_vjp[0, 0]))
    p(f"  the hand-written VJP against the full convolution:        {agree('vjp_vs_full', by_vjp, by_full)}")
    p(f"  Σ G·dY/dX from the dense Jacobian against the same:       {agree('jacobian_vs_full', by_jacobian, by_full)}")
    p()
    p("And w.r.t. the kernel: (G·dY/dW)[o,c,a,b] = Σ_(n,i,j) G[n,o,i,j] X[n,c,i+a,j+b], X correlated with G.")
    by_vjp_w = jx.grad(l, K, method="vjp")
    by_corr = correlation(Xv, G)
    res.values.update(vjp_w=by_vjp_w, corr_w=by_corr)
    p(f"  the hand-written VJP against that correlation (numpy):   {agree('vjp_w_vs_corr', by_vjp_w, by_corr)}")
    p(f"  Σ G·dY/dW from the dense Jacobian against the same:       "
      f"{agree('jacobian_w_vs_corr', np.tensordot(G, JW, axes=Y.ndim), by_corr)}")

    # -------------------------------------------------------------- 4
    p.section("4. Every route on l = Σ G ⊙ Y")
    c = jx.compare(l, [X, K])
    res.ok &= c.ok
    p(str(c))

    if plot_dir is not None:
        pictures = [
            ("conv_dY_dX.png", J, Y, X, "dY/dX for Y = conv2d(X, W): doubly block-Toeplitz, taps of W on diagonals"),
            ("conv_dY_dW.png", JW, Y, K, "dY/dW = δ_oo' X[n,c,i+a,j+b]: block diagonal in the output channel"),
        ]
        write_pictures(pictures, plot_dir, res, p)
    return res
