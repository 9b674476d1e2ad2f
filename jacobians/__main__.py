"""Command line: ``python -m jacobians demo``."""
from __future__ import annotations

import sys

import numpy as np


def _demo() -> int:
    import jacobians as jx

    rng = np.random.default_rng(0)
    D, N = 3, 4
    X = jx.var(rng.standard_normal((D, N)), name="X")
    W = X @ X.T
    Y = W @ X
    l = jx.fro(Y)
    J = jx.jacobian(Y, W)
    print(f"X {X.shape}, W = X Xᵀ {W.shape}, Y = W X {Y.shape}, l = ‖Y‖_F")
    print(f"dY/dW has shape {J.shape}: dY_cd/dW_ab = δ_ca X_bd")
    G = np.einsum("cd,cdab->ab", jx.grad(l, Y), J)
    print("dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab =\n", G.round(4))
    print("Y Xᵀ / ‖Y‖_F =\n", (Y.value @ X.value.T / l.value).round(4))
    print(jx.compare(l, [X, W]))
    return 0


def main(argv: "list[str] | None" = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        return _demo()
    print("usage: python -m jacobians demo", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
