"""Op cases of the linalg family (the fields are in case.py; op_cases.py joins the tables).

Batched stacks (2, 3, 3), solve's broadcasting right-hand sides, non-square svd
and pinv; every domain well conditioned: matrices far from singular, symmetric
ones with eigenvalues apart, singular values apart and away from 0.
"""
import numpy as np

import jacobians as jx
from case import Case, draw  # noqa: F401


def separated_sv(shape, rng):
    """Matrices (..., m, n) with singular values 3, 2, 1, ... (+ a little noise) and random singular vectors."""
    *batch, m, n = shape
    k = min(m, n)
    out = np.empty(shape)
    for b in np.ndindex(*batch):
        u = np.linalg.qr(rng.standard_normal((m, k)))[0]
        v = np.linalg.qr(rng.standard_normal((n, k)))[0]
        s = np.arange(k, 0, -1) + 0.1 * rng.uniform(size=k)
        out[b] = (u * s) @ v.T
    return out


def _flip(u):
    """The sign convention: each column's entry of largest magnitude positive (±1 per column)."""
    idx = np.argmax(np.abs(u), axis=-2)[..., None, :]
    return np.sign(np.take_along_axis(u, idx, axis=-2))


def _eigh_v(a):
    v = np.linalg.eigh(a)[1]
    return v * _flip(v)


def _svd_u(a):
    u = np.linalg.svd(a, full_matrices=False)[0]
    return u * _flip(u)


def _svd_vt(a):
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    return vt * np.swapaxes(_flip(u), -1, -2)


def _kron(a, b):
    return np.kron(a, b)


CASES = [
    # inv, det, logdet, slogdet: stacks of matrices
    Case("inv", jx.inv, ((2, 3, 3),), np.linalg.inv, domain="well_conditioned", note="batched"),
    Case("det", jx.det, ((2, 3, 3),), np.linalg.det, domain="well_conditioned", note="batched"),
    Case("logdet", jx.logdet, ((2, 3, 3),), lambda a: np.log(np.abs(np.linalg.det(a))), domain="well_conditioned",
         note="batched"),
    Case("logdet", lambda a: jx.slogdet(a)[1], ((2, 3, 3),), lambda a: np.linalg.slogdet(a)[1],
         domain="well_conditioned", note="slogdet"),
    # solve: batched, broadcast right-hand sides as numpy allows
    Case("solve", jx.solve, ((2, 3, 3), (3,)), np.linalg.solve, domain="well_conditioned", note="batched-vector"),
    Case("solve", jx.solve, ((2, 3, 3), (3, 2)), np.linalg.solve, domain="well_conditioned", note="batched-matrix"),
    Case("solve", jx.solve, ((2, 3, 3), (2, 3, 4)), np.linalg.solve, domain="well_conditioned", note="batched-both"),
    Case("solve", jx.solve, ((3, 3), (2, 3, 2)), np.linalg.solve, domain="well_conditioned", note="broadcast-A"),
    Case("solve", jx.solve, ((2, 1, 3, 3), (3, 3, 2)), np.linalg.solve, domain="well_conditioned",
         note="broadcast-both"),
    # cholesky, eigh, eigvalsh
    Case("cholesky", jx.cholesky, ((3, 3),), np.linalg.cholesky, domain="spd"),
    Case("cholesky", jx.cholesky, ((2, 4, 4),), np.linalg.cholesky, domain="spd", note="batched"),
    Case("eigh_w", lambda a: jx.eigh(a)[0], ((3, 3),), lambda a: np.linalg.eigh(a)[0], domain="symmetric"),
    Case("eigh_w", lambda a: jx.eigh(a)[0], ((2, 4, 4),), lambda a: np.linalg.eigh(a)[0], domain="symmetric",
         note="batched"),
    Case("eigh_v", lambda a: jx.eigh(a)[1], ((3, 3),), _eigh_v, domain="symmetric"),
    Case("eigh_v", lambda a: jx.eigh(a)[1], ((2, 4, 4),), _eigh_v, domain="symmetric", note="batched"),
    Case("eigvalsh", jx.eigvalsh, ((2, 3, 3),), np.linalg.eigvalsh, domain="symmetric", note="batched"),
    # svd: singular values alone, U, σ, Vᵀ, tall, wide, square, batched
    Case("svd_s", lambda a: jx.svd(a, compute_uv=False), ((4, 3),), lambda a: np.linalg.svd(a, compute_uv=False),
         domain=separated_sv, note="values-tall"),
    Case("svd_s", lambda a: jx.svd(a, compute_uv=False), ((2, 2, 3),),
         lambda a: np.linalg.svd(a, compute_uv=False), domain=separated_sv, note="values-wide-batched"),
    Case("svd_s", lambda a: jx.svd(a)[1], ((3, 3),), lambda a: np.linalg.svd(a)[1], domain=separated_sv,
         note="square"),
    Case("svd_u", lambda a: jx.svd(a, full_matrices=False)[0], ((4, 3),), _svd_u, domain=separated_sv, note="tall"),
    Case("svd_u", lambda a: jx.svd(a, full_matrices=False)[0], ((2, 3),), _svd_u, domain=separated_sv, note="wide"),
    Case("svd_u", lambda a: jx.svd(a)[0], ((2, 3, 3),), _svd_u, domain=separated_sv, note="square-batched"),
    Case("svd_vt", lambda a: jx.svd(a, full_matrices=False)[2], ((4, 2),), _svd_vt, domain=separated_sv,
         note="tall"),
    Case("svd_vt", lambda a: jx.svd(a, full_matrices=False)[2], ((2, 2, 4),), _svd_vt, domain=separated_sv,
         note="wide-batched"),
    Case("svd_vt", lambda a: jx.svd(a)[2], ((3, 3),), _svd_vt, domain=separated_sv, note="square"),
    # pinv: tall, wide, batched
    Case("pinv", jx.pinv, ((4, 3),), np.linalg.pinv, domain=separated_sv, note="tall"),
    Case("pinv", jx.pinv, ((2, 4),), np.linalg.pinv, domain=separated_sv, note="wide"),
    Case("pinv", jx.pinv, ((2, 3, 2),), np.linalg.pinv, domain=separated_sv, note="batched"),
    # matrix_power: positive, negative (through inv), zero
    Case("matrix_power", lambda a: jx.matrix_power(a, 3), ((3, 3),), lambda a: np.linalg.matrix_power(a, 3),
         domain="well_conditioned"),
    Case("matrix_power", lambda a: jx.matrix_power(a, -2), ((2, 3, 3),), lambda a: np.linalg.matrix_power(a, -2),
         domain="well_conditioned", note="negative-batched"),
    Case("matrix_power", lambda a: jx.matrix_power(a, 1), ((2, 2),), lambda a: np.linalg.matrix_power(a, 1),
         domain="well_conditioned", note="one"),
    Case("matrix_power", lambda a: jx.matrix_power(a, 0), ((3, 3),), lambda a: np.linalg.matrix_power(a, 0),
         domain="well_conditioned", note="zero"),
    # kron, cross
    Case("kron", jx.kron, ((2, 3), (3, 2)), _kron),
    Case("kron", jx.kron, ((3,), (2, 2)), _kron, note="mixed-rank"),
    Case("kron", jx.kron, ((2, 1), (1, 3)), _kron, note="unit-axes"),
    Case("kron", jx.kron, ((2,), (3,)), _kron, note="vectors"),
    Case("cross", jx.cross, ((4, 3), (4, 3)), np.cross),
    Case("cross", jx.cross, ((3,), (2, 3)), np.cross, note="broadcast"),
    Case("cross", lambda a, b: jx.cross(a, b, axis=0), ((3, 2), (3, 2)), lambda a, b: np.cross(a, b, axis=0),
         note="axis0"),
]
