"""Findings from reviewing 7508935..b9a6267 (share_factors), kept as regression tests: a shared factor is
summed out only where the sum R is smaller than the result."""
import tracemalloc

import numpy as np

import jacobians as jx
from jacobians.elimination import share_factors
from jacobians.factored import plan_factored


def _gated_sum(n=300):
    """y = s ⊙ (A x + B x): two products s_i A_ij and s_i B_ij share s, but the rest of each (A, B) already
    covers every axis of the result, so the sum R = A + B is as large as the Jacobian itself."""
    rng = np.random.default_rng(0)
    A, B = jx.const(rng.standard_normal((n, n))), jx.const(rng.standard_normal((n, n)))
    s = jx.const(rng.standard_normal(n))
    x = jx.var(rng.standard_normal(n), name="x")
    return s * (A @ x + B @ x), x, s.value[:, None] * (A.value + B.value)


def test_shared_factor_sums_are_smaller_than_the_result():
    y, x, want = _gated_sum()
    np.testing.assert_allclose(jx.jacobian(y, x, method="factored"), want, rtol=1e-12, atol=1e-12)
    p = plan_factored(y, x)
    pieces, held = share_factors([([o.value for o in r.operands], r.coef, prep)
                                  for r, prep in zip(p.products, p.prepared)], y.dtype)
    assert held < y.size * x.size * y.dtype.itemsize  # nothing merged here: held is 0


def test_sharing_does_not_raise_the_peak_of_a_full_jacobian():
    y, x, _ = _gated_sum()
    jx.jacobian(y, x, method="factored")  # plans and caches warmed
    tracemalloc.start()
    try:
        jx.jacobian(y, x, method="factored")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.5 * y.size * x.size * y.dtype.itemsize
