"""Demo ``mlp``: the second seed — a layer ``z = x ω + 1_m b``, an activation, a cost ``C = 1ᵀ C(ŷ) 1``.

The learner's two worries, made concrete:

* "C'(ŷ) ⊙ ∂ŷ/∂w multiplies a matrix by a 4-tensor" — it is a contraction with
  the diagonal Jacobian dŷ_cd/dz_ab = δ_ca δ_db σ'(z_ab), and the deltas
  collapse it to the Hadamard product of two matrices, C'(ŷ) ⊙ σ'(z);
* "(∂x/∂w) ω multiplies a 4-tensor by a matrix" — it is a contraction of one
  index pair, Σ_e dx_ce/dw_pq ω_ed, rank 4 + 2 − 2 = 4.

Then the gradients for ω and b against the VJP route, central differences
and the matrix formulas of backpropagation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, TextIO, Tuple

import numpy as np

import jacobians as jx

from ..index_form import index_form
from . import Arrays, DemoResult, Printer, matrix, named, write_pictures

NAME = "mlp"
SUMMARY = ("seed 2: z = x ω + 1_m b, ŷ = σ(z), C = 1ᵀ C(ŷ) 1 — 'Hadamard with a 4-tensor' and '(∂x/∂w) ω' "
           "as contractions")
SIZES: Dict[str, int] = {"m": 4, "n0": 3, "n1": 5, "n2": 2}
TOL = 1e-10


def footprint(sizes: Dict[str, int], plot: bool = False) -> Tuple[Arrays, Arrays]:
    """The arrays run() makes, from the sizes alone: (data and values, dense Jacobians it keeps)."""
    m, n0, n1, n2 = sizes["m"], sizes["n0"], sizes["n1"], sizes["n2"]
    data = [("a, the data", (m, n0)), ("t, the targets", (m, n2)), ("1_m", (m, 1)),
            ("w, ω and b", (n0 * n1 + n1 * n2 + n2,)),
            ("a w, x = tanh(a w) and the backpropagation temporaries", (5, m, n1)),
            ("x ω, 1_m b, z, ŷ, ŷ − t, C(ŷ), dC/dŷ, σ'(z) and Δ", (12, m, n2))]
    dense = [("dŷ/dz", (m, n2, m, n2)), ("dx/dw", (m, n1, n0, n1)),
             ("dz/dw and (∂x/∂w) ω", (2, m, n2, n0, n1)), ("dz/db and 1_m ⊗ I", (2, m, n2, n2))]
    return data, dense


def build(m: int, n0: int, n1: int, n2: int, seed: int):
    """The network on random data; returns a dict of its named nodes."""
    rng = np.random.default_rng(seed)
    a = jx.const(rng.standard_normal((m, n0)), name="a")  # the data feeding the first layer
    t = jx.const(rng.uniform(0, 1, (m, n2)), name="t")  # targets
    w = jx.var(rng.standard_normal((n0, n1)) / np.sqrt(n0), name="w")
    om = jx.var(rng.standard_normal((n1, n2)) / np.sqrt(n1), name="ω")
    b = jx.var(0.1 * rng.standard_normal((1, n2)), name="b")  # a row vector, as in the seed
    ones_m = jx.const(np.ones((m, 1)), name="1_m")
    x = named(jx.tanh(a @ w), "x")  # the previous layer's output depends on w
    z = named(x @ om + ones_m @ b, "z")
    yhat = named(jx.sigmoid(z), "ŷ")
    Cmat = named((yhat - t) ** 2, "C(ŷ)")  # elementwise cost
    C = named(jx.const(np.ones(m), name="1ᵀ") @ Cmat @ jx.const(np.ones(n2), name="1"), "C")
    return dict(a=a, t=t, w=w, om=om, b=b, ones_m=ones_m, x=x, z=z, yhat=yhat, Cmat=Cmat, C=C)


def run(sizes: Dict[str, int], seed: int, plot_dir: Optional[Path], out: TextIO) -> DemoResult:
    m, n0, n1, n2 = sizes["m"], sizes["n0"], sizes["n1"], sizes["n2"]
    p = Printer(out)
    res = DemoResult()
    g = build(m, n0, n1, n2, seed)
    a, t, w, om, b, x, z, yhat, C = (g[k] for k in ("a", "t", "w", "om", "b", "x", "z", "yhat", "C"))
    av, tv, xv, zv, yv, omv = a.value, t.value, x.value, z.value, yhat.value, om.value
    res.values.update(a=av, t=tv, w=w.value, om=omv, b=b.value, x=xv, z=zv, yhat=yv)

    def agree(key: str, got: np.ndarray, want: np.ndarray, tol: float = TOL) -> str:
        return res.agree(key, got, want, tol)

    p.title("Seed 2: a layer z = x ω + 1_m b, an activation, a cost C = 1ᵀ C(ŷ) 1")
    p(f"Sizes m={m} rows, n0={n0} inputs, n1={n1} hidden units, n2={n2} outputs; random data (seed {seed}).")
    p()
    p("The graph, node by node:")
    rows = [
        ("a", a, "data (constant)"), ("w", w, "first-layer weights"), ("x", x, "x = tanh(a w), depends on w"),
        ("ω", om, "output weights"), ("b", b, "bias, a row vector; 1_m is a column of ones"),
        ("z", z, "z = x ω + 1_m b"), ("ŷ", yhat, "ŷ = σ(z), the activation"),
        ("C(ŷ)", g["Cmat"], "C(ŷ) = (ŷ − t)², the cost of each entry"), ("C", C, "C = 1ᵀ C(ŷ) 1, a scalar"),
    ]
    for name, node, how in rows:
        p(f"  {name:<5} shape {str(node.shape):<8} {how}")

    # -------------------------------------------------------------- 1
    p.section("1. 'C'(ŷ) ⊙ ∂ŷ/∂w': a Hadamard product with a 4-tensor is a contraction")
    gy = jx.grad(C, yhat)
    dCdy = 2 * (yv - tv)
    p("dC/dŷ is a matrix shaped like ŷ: with C = Σ_cd (ŷ_cd − t_cd)², dC/dŷ = C'(ŷ) = 2 (ŷ − t).")
    p(f"  jx.grad(C, ŷ) against 2 (ŷ − t): {agree('dC_dyhat', gy, dCdy)}")
    Jyz = jx.jacobian(yhat, z)
    res.values["dyhat_dz"] = Jyz
    form = index_form(yhat, z, "cd", "ab")
    nz = int(np.count_nonzero(Jyz))
    p(f"dŷ/dz is a 4-tensor of shape {Jyz.shape}, and the activation acts entry by entry:")
    p(f"    dŷ_cd/dz_ab = {form.text_rhs()}  =  δ_ca δ_db σ'(z_ab)")
    p(f"  {nz} of its {Jyz.size} entries are nonzero, all where (c,d) = (a,b): matricized it is")
    p(f"  the diagonal matrix diag(vec σ'(z)) of size {m * n2}×{m * n2}.")
    p()
    p("The chain rule contracts the matrix with the 4-tensor over the pair (c,d):")
    p("    dC/dz_ab = Σ_cd dC/dŷ_cd · dŷ_cd/dz_ab = Σ_cd C'(ŷ)_cd δ_ca δ_db σ'(z_ab) = C'(ŷ)_ab σ'(z_ab)")
    p("The deltas keep one term of the double sum per entry, so the result is the Hadamard")
    p("product of two matrices, C'(ŷ) ⊙ σ'(z). That is the operation the learner wanted:")
    p("'scale every entry of the 4-tensor by the matching entry of the matrix' is this contraction.")
    Delta_contracted = np.einsum("cd,cdab->ab", gy, Jyz)
    sig_prime = yv * (1 - yv)
    Delta = dCdy * sig_prime
    res.values["dC_dz"] = Delta_contracted
    p("  np.einsum('cd,cdab->ab', dC/dŷ, dŷ/dz):")
    p(matrix(Delta_contracted))
    p("  C'(ŷ) ⊙ σ'(z) = 2 (ŷ − t) ⊙ ŷ ⊙ (1 − ŷ):")
    p(matrix(Delta))
    p(f"  {agree('hadamard', Delta_contracted, Delta)}")

    # -------------------------------------------------------------- 2
    p.section("2. '(∂x/∂w) ω': a rank-4 tensor times a rank-2 tensor")
    Jxw = jx.jacobian(x, w)
    Jzw = jx.jacobian(z, w)
    res.values.update(dx_dw=Jxw, dz_dw=Jzw)
    p(f"x = tanh(a w) depends on w, so dx/dw has shape {Jxw.shape} = x.shape + w.shape, and ω has {omv.shape}.")
    p("z_cd = Σ_e x_ce ω_ed + b_d gives")
    p("    dz_cd/dw_pq = Σ_e dx_ce/dw_pq · ω_ed")
    p("one index pair (e: x's column, ω's row) is summed: rank 4 + 2 − 2 = 4, shape "
      f"{Jzw.shape} = z.shape + w.shape.")
    p("So '(∂x/∂w) ω' is right once read as 'contract the x-column index of the 4-tensor with")
    p("ω's row index'. It is the chain rule through the matmul's Jacobian, dz_cd/dx_ae = "
      f"{index_form(z.parents[0], x, 'cd', 'ae').text_rhs()}:")
    p("    Σ_ae δ_ca ω_ed dx_ae/dw_pq = Σ_e ω_ed dx_ce/dw_pq.")
    by_hand = np.einsum("cepq,ed->cdpq", Jxw, omv)
    p(f"  np.einsum('cepq,ed->cdpq', dx/dw, ω) against jx.jacobian(z, w): {agree('dz_dw', by_hand, Jzw)}")
    Jzb = jx.jacobian(z, b)
    res.values["dz_db"] = Jzb
    p(f"And 1_m b: dz/db has shape {Jzb.shape}; dz_cd/db_0e = δ_de for every row c — the 1_m copies b to")
    p(f"each row, and the matricized form is 1_{m} ⊗ I_{n2}: "
      f"{agree('dz_db', Jzb.reshape(m * n2, n2), np.kron(np.ones((m, 1)), np.eye(n2)), 0.0)}")

    # -------------------------------------------------------------- 3
    p.section("3. The gradients, four ways")
    p("Backpropagation in matrix form, with Δ = dC/dz = C'(ŷ) ⊙ σ'(z) from section 1:")
    p("    dC/dω = xᵀ Δ      dC/db = 1_mᵀ Δ      dC/dw = aᵀ ((Δ ωᵀ) ⊙ (1 − x²))")
    closed = {"ω": xv.T @ Delta, "b": np.ones((1, m)) @ Delta, "w": av.T @ ((Delta @ omv.T) * (1 - xv ** 2))}
    routes = {r: dict(zip(("w", "ω", "b"), jx.grad(C, [w, om, b], method=r))) for r in jx.METHODS}
    for key in ("ω", "b"):
        res.values[f"dC_d{key}"] = routes["explicit"][key]
        p()
        p(f"dC/d{key}, explicit route (contracted local Jacobians):")
        p(matrix(routes["explicit"][key]))
        formula = "xᵀ Δ" if key == "ω" else "1_mᵀ Δ"
        p(f"  {'against ' + formula + ':':<32}{agree(f'closed_{key}', routes['explicit'][key], closed[key])}")
        p(f"  {'against the VJP route:':<32}{agree(f'vjp_{key}', routes['explicit'][key], routes['vjp'][key])}")
        p(f"  {'against central differences:':<32}"
          f"{agree(f'numeric_{key}', routes['explicit'][key], routes['numeric'][key], 1e-6)}")
    res.values["dC_dw"] = routes["explicit"]["w"]
    p()
    p(f"dC/dw (through x): against aᵀ ((Δ ωᵀ) ⊙ (1 − x²)): {agree('closed_w', routes['explicit']['w'], closed['w'])}")
    p()
    c = jx.compare(C, [w, om, b])
    res.ok &= c.ok
    p(str(c))

    if plot_dir is not None:
        pictures = [
            ("mlp_dyhat_dz.png", Jyz, yhat, z, f"dŷ/dz = diag(vec σ'(z)): one nonzero per row"),
            ("mlp_dx_dw.png", Jxw, x, w, "dx/dw for x = tanh(a w)"),
            ("mlp_dz_dw.png", Jzw, z, w, "dz/dw = Σ_e dx_ce/dw_pq ω_ed: (∂x/∂w) ω"),
            ("mlp_dz_db.png", Jzb, z, b, f"dz/db = 1_{m} ⊗ I_{n2}: the bias reaches every row"),
        ]
        write_pictures(pictures, plot_dir, res, p)
    return res
