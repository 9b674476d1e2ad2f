"""Second review of jx.jit, after the fixes 56efdc8, f2f66bd and daee5cf: each test asserts the correct behaviour.
15 of them failed there (the nuclear norm's rank mask, numpy warnings on the fast path, static arguments by
keyword or default, closures over an enclosing transform's vars, outputs aliasing a later view, the warning
filters of two tracing threads); they are kept as regression tests. The others check what tests/test_jit.py and tests/test_jit_review.py
do not (second order outside jit at and away from the kinks after the sign-based masks, float32 and broadcasting,
the fast path's inputs, static arguments through partials and bound methods, two threads tracing at once).

Every expected value comes from a route that never replays: numpy closed forms, central differences, or
``jx.grad(l, x, method="vjp")`` / ``jx.hvp`` on a graph built without jit.
"""
import functools
import sys
import threading
import warnings

import numpy as np
import pytest

import jacobians as jx


def _vjp_grad(loss, *arrays, wrt=0):
    xs = [jx.var(a) for a in arrays]
    return jx.grad(loss(*xs), xs[wrt], method="vjp")


def _central_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _central_hessian(f, x, h=1e-4):
    n = x.size
    H = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        up = _central_grad(f, (x.ravel() + e).reshape(x.shape), 1e-5)
        down = _central_grad(f, (x.ravel() - e).reshape(x.shape), 1e-5)
        H[:, i] = ((up - down) / (2 * h)).ravel()
    return H


# ===============================================================================================================
# BUGS
# ===============================================================================================================

# ---------------------------------------------------------------------------------------------------------------
# 1. The nuclear norm's form still takes its mask from the trace's values: reductions._nuc_polar, on nodes, keeps
#    the singular values above a tolerance with `keep = (s.value > tol)` (a numpy constant inside a node
#    expression, not an array factor that _replayable recomputes). A gradient traced at a rank-deficient matrix
#    replays that rank on every later matrix, and vice versa.

def _rank2(rng):
    u, _, vt = np.linalg.svd(rng.standard_normal((3, 3)))
    return (u[:, :2] * [2.0, 1.0]) @ vt[:2]


@pytest.mark.parametrize("direction", ["trace-rank-deficient", "replay-rank-deficient"])
def test_nuclear_norm_gradient_replays_the_new_rank(direction):
    rng = np.random.default_rng(1)
    low, full = _rank2(rng), rng.standard_normal((3, 3))
    trace, new = (low, full) if direction == "trace-rank-deficient" else (full, low)
    g = jx.jit(jx.grad(lambda x: jx.norm(x, "nuc")))
    g(trace)
    u, s, vt = np.linalg.svd(new)
    r = int(np.sum(s > s[0] * 3 * np.finfo(float).eps))
    want = u[:, :r] @ vt[:r]  # the policy: U Vᵀ on the nonzero singular values
    np.testing.assert_allclose(_vjp_grad(lambda x: jx.norm(x, "nuc"), new), want, atol=1e-12)
    np.testing.assert_allclose(g(new), want, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# 2. The fast path's finiteness check `math.isfinite(np.add.reduce(a, axis=None))` overflows on finite data whose
#    sum exceeds the float range, and numpy's overflow RuntimeWarning reaches the caller (under -W error, or
#    pytest's filterwarnings=error, the call raises). jx.var and the function without jit do not warn.

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_finite_inputs_are_accepted_without_a_warning(dtype):
    big = np.array([0.9, 0.9, -0.9]) * np.finfo(dtype).max
    big = big.astype(dtype)
    f = jx.jit(lambda x: jx.sum(x * 0.5))
    f(np.ones(3, dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jx.var(big)  # the eager route: no warning
        out = f(big)
    np.testing.assert_allclose(out, np.sum(big.astype(np.float64) * 0.5), rtol=1e-6)


def test_inf_and_minus_inf_are_refused_naming_the_argument_without_a_numpy_warning():
    # +inf and -inf in one array sum to nan with numpy's "invalid value encountered in reduce" RuntimeWarning,
    # raised before the refusal (under -W error the caller gets that RuntimeWarning instead of the ValueError)
    f = jx.jit(lambda x, y: jx.sum(x * y))
    x = np.arange(3.0)
    f(x, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"argument \[0\]\[0\].*NaN or ±Inf"):
            f(np.array([np.inf, -np.inf, 0.0]), x)


# ---------------------------------------------------------------------------------------------------------------
# 3. Jitted._positional (used whenever static_argnums is set) calls BoundArguments.apply_defaults(), so every
#    *non-static* parameter left at its default becomes a dynamic argument: a traced var. An `axis=0` default is
#    then a node (sum(axis=node) fails), an integer exponent is refused by power, and a float default turns a
#    float32 computation into float64. Without static_argnums the same defaults reach f as Python values.

def test_static_argnums_leaves_other_defaults_as_python_values():
    def f(x, n, axis=0):
        return jx.sum(jx.sum(x, axis=axis) ** n)

    X = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(jx.jit(f, static_argnums=1)(X, 2), np.sum(X.sum(axis=0) ** 2))


def test_static_argnums_keeps_float32_with_a_float_default():
    def f(x, n, eps=1e-3):
        return jx.sum(x ** n) + eps

    x = np.array([1.0, 2.0], np.float32)
    assert f(jx.var(x), 2).dtype == np.float32  # the eager route: the default joins the float32 graph
    assert jx.jit(f, static_argnums=1)(x, 2).dtype == np.float32


def test_static_argnums_with_a_keyword_only_default_after_varargs():
    def f(x, *rest, k=2):
        return jx.sum(x ** k) + len(rest)

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(jx.jit(f, static_argnums=(1, 2))(x, "a", "b"), 7.0)


# ---------------------------------------------------------------------------------------------------------------
# 4. Static arguments "may be passed by keyword" (docs/jit.md), but _positional reads inspect.signature(fun):
#    the function jx.grad returns is (*args, **kwargs) (transforms._grad_fn sets __name__ and __doc__, no
#    __wrapped__), so jit(grad(f), static_argnums=1) called with k=... fails with "static_argnums names argument
#    1, but the call has 1 positional argument(s)". grad(f)(x, k=3) itself works.

def test_a_static_argument_by_keyword_through_grad():
    def p(x, k):
        return jx.sum(x ** k)

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(jx.grad(p)(x, k=3), 3 * x ** 2)
    g = jx.jit(jx.grad(p), static_argnums=1)
    np.testing.assert_allclose(g(x, 2), 2 * x)
    np.testing.assert_allclose(g(x, k=3), 3 * x ** 2)


# ---------------------------------------------------------------------------------------------------------------
# 5. Program._output copies an output only if it is (a view of) an input or of an *earlier* output: an output
#    returned before the array it is a view of (z.T before z) is not copied, so the two alias each other.

@pytest.mark.parametrize("order", ["view-first", "dict"])
def test_outputs_do_not_alias_when_the_view_comes_first(order):
    if order == "view-first":
        f = jx.jit(lambda x: (lambda z: (z.T, z))(x * 2.0))
    else:
        f = jx.jit(lambda x: (lambda z: {"b": z, "a": z.T})(x * 2.0))  # pytree order: "a" (the view) first
    f(np.ones((2, 3)))
    out = f(np.arange(6.0).reshape(2, 3))
    a, b = (out["a"], out["b"]) if isinstance(out, dict) else out
    b[0, 1] = -1.0  # writing one output must not change another
    np.testing.assert_array_equal(a, (np.arange(6.0).reshape(2, 3) * 2.0).T)


# ---------------------------------------------------------------------------------------------------------------
# 6. A jitted function called on *arrays* while it closes over nodes (of an enclosing trace or transform) traces
#    its own program, in which those nodes are not inputs: they become constants with their current values, and
#    the result is returned as a plain array. Inside another jit the replay is frozen; inside jx.grad the
#    dependence is dropped. (The fix made jx.grad(f) build nodes while tracing; jx.jit(f) still does not.)

def test_a_jitted_closure_over_traced_nodes_is_not_frozen():
    def outer(x):
        inner = jx.jit(lambda y: jx.sum(y * x))
        return inner(np.ones(2)) * x  # (Σx) x

    f = jx.jit(outer)
    f(np.array([1.0, 2.0]))
    x = np.array([3.0, 5.0])
    np.testing.assert_allclose(f(x), np.sum(x) * x)


def test_a_jitted_closure_inside_grad_keeps_its_dependence():
    def loss(x):
        inner = jx.jit(lambda y: jx.sum(y * x))
        return inner(np.ones(2)) * jx.sum(x)  # (Σx)², gradient 2 Σx

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(jx.grad(loss)(x), 2 * np.sum(x) * np.ones(2))


# ---------------------------------------------------------------------------------------------------------------
# 7. Still missed by the _grad_fn fix: grad(f) called on arrays while f closes over nodes of an enclosing *plain*
#    transform (no jit) takes the array route (nodes = has_nodes(args) or is_tracing() is False) and returns a
#    numpy constant: the outer gradient silently drops that path, and jit(grad(outer)) and grad(outer) disagree.

def test_grad_inside_grad_closing_over_the_outer_argument():
    def outer(x):
        inner = jx.grad(lambda w: jx.sum(w * x * x))(np.ones(2))  # = x²
        return jx.sum(inner * x)  # Σ x³, gradient 3 x²

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(jx.jit(jx.grad(outer))(x), 3 * x ** 2)  # the traced route is right
    np.testing.assert_allclose(jx.grad(outer)(x), 3 * x ** 2)


# ---------------------------------------------------------------------------------------------------------------
# 8. second_order._node_form and gradient_graph silence AmbiguousBroadcastWarning with warnings.catch_warnings(),
#    which saves and restores the process-wide filter list: two threads tracing at once interleave the saves and
#    restores, and an `ignore AmbiguousBroadcastWarning` filter is left installed for good (every later
#    ambiguous broadcast in the process is silent). The tracing state was made per-thread; this is not.

def test_two_threads_tracing_leave_the_warning_filters_as_they_were():
    rng = np.random.default_rng(0)
    errors = []

    def work(k, stop):
        try:
            for _ in range(60):
                if stop.is_set():
                    return
                if k == 0:
                    f = jx.jit(jx.grad(lambda x: jx.sum(jx.hypot(x, 1.0 + x * x))))
                else:
                    f = jx.jit(jx.grad(lambda x: jx.sum(jx.std(x, axis=1))))
                x = rng.standard_normal((2, 3))
                f(x)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    interval = sys.getswitchinterval()
    with warnings.catch_warnings():  # restores the filters for the other tests whatever happens here
        before = list(warnings.filters)
        sys.setswitchinterval(1e-6)
        try:
            stop = threading.Event()
            threads = [threading.Thread(target=work, args=(k, stop)) for k in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(interval)
        after = list(warnings.filters)
        leaked = [f for f in after if f not in before]
        assert not errors
        assert leaked == [], f"filters left installed: {leaked}"


# ===============================================================================================================
# CHECKED AND FINE
# ===============================================================================================================

# ---------------------------------------------------------------------------------------------------------------
# Second order outside jit after the sign-based masks: ordinary points against central differences of numpy
# closed forms, all three Hessian routes and jx.hvp agree.

SMOOTH = {
    "fro": (lambda x: jx.fro(x), lambda x: np.sqrt(np.sum(x * x)), np.array([[1.0, 2.0], [-0.5, 3.0]])),
    "norm": (lambda x: jx.norm(x), np.linalg.norm, np.array([1.0, 2.0, -0.5])),
    "norm-rows": (lambda x: jx.sum(jx.norm(x, axis=1)), lambda x: np.sum(np.linalg.norm(x, axis=1)),
                  np.array([[1.0, 2.0], [-0.5, 3.0]])),
    "std-ddof1": (lambda x: jx.sum(jx.std(x, axis=0, ddof=1)), lambda x: np.sum(np.std(x, axis=0, ddof=1)),
                  np.array([[1.0, 2.0, 4.0], [-0.5, 3.0, 0.0]])),
    "hypot": (lambda x: jx.sum(jx.hypot(x, 1.0 - x)), lambda x: np.sum(np.hypot(x, 1.0 - x)),
              np.array([0.3, -1.2, 2.0])),
    "arctan2": (lambda x: jx.sum(jx.arctan2(x, 2.0 * x + 1.0)), lambda x: np.sum(np.arctan2(x, 2.0 * x + 1.0)),
                np.array([0.3, -1.2, 2.0])),
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_second_order_away_from_the_kinks_matches_central_differences(name):
    f, fn, x0 = SMOOTH[name]
    x = jx.var(x0)
    l = f(x)
    np.testing.assert_allclose(jx.grad(l, x), _central_grad(fn, x0), atol=1e-8)
    want = _central_hessian(fn, x0)
    v = np.linspace(-1.0, 1.0, x0.size).reshape(x0.shape)
    for method in ("factored", "explicit", "hvp"):
        H = jx.hessian(l, x, method=method).reshape(x0.size, x0.size)
        np.testing.assert_allclose(H, want, atol=1e-5, err_msg=f"{name} {method}")
    np.testing.assert_allclose(jx.hvp(l, x, v).ravel(), want @ v.ravel(), atol=1e-5)


AT_KINK = {
    # at the kink the gradient is the subgradient 0 (docs/ops.md) and the Hessian block of the kinked slice is 0
    # on every route, with no warning (as before the fix)
    "fro": (lambda x: jx.fro(x), [np.zeros((2, 2))]),
    "norm": (lambda x: jx.norm(x), [np.zeros(3)]),
    "norm-rows": (lambda x: jx.sum(jx.norm(x, axis=1)), [np.array([[0.0, 0.0], [1.0, 2.0]])]),
    "std-rows": (lambda x: jx.sum(jx.std(x, axis=1)), [np.array([[2.0, 2.0], [1.0, 3.0]])]),
    "hypot": (lambda a, b: jx.sum(jx.hypot(a, b)), [np.array([0.0, 1.0]), np.array([0.0, 2.0])]),
    "arctan2": (lambda a, b: jx.sum(jx.arctan2(a, b)), [np.array([0.0, 1.0]), np.array([0.0, 2.0])]),
}
AT_KINK_HESSIAN = {  # the expected Hessian w.r.t. the first argument, from the closed forms off the kinked entries
    "fro": np.zeros((4, 4)),
    "norm": np.zeros((3, 3)),
    "norm-rows": np.block([[np.zeros((2, 2)), np.zeros((2, 2))],
                           [np.zeros((2, 2)), (np.eye(2) - np.outer([1, 2], [1, 2]) / 5.0) / np.sqrt(5.0)]]),
    "std-rows": np.zeros((4, 4)),  # row 2: std of two entries is |a - b|/2, piecewise linear
    "hypot": np.diag([0.0, 4.0 / 5.0 ** 1.5]),  # ∂²/∂a² √(a² + b²) = b²/r³
    "arctan2": np.diag([0.0, -2 * 1.0 * 2.0 / 25.0]),  # ∂²/∂a² atan2(a, b) = -2ab/r⁴
}


@pytest.mark.parametrize("name", sorted(AT_KINK))
def test_first_and_second_order_at_the_kinks_follow_the_policy(name):
    f, args = AT_KINK[name]
    xs = [jx.var(a) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        l = f(*xs)
        for x in xs:
            np.testing.assert_allclose(jx.grad(l, x), jx.grad(l, x, method="vjp"), atol=1e-15)
        g0 = jx.grad(l, xs[0])
        assert np.all(g0.ravel()[np.flatnonzero(args[0].ravel() == args[0].ravel()[0])] == 0.0)
        n = args[0].size
        for method in ("factored", "explicit", "hvp"):
            H = jx.hessian(l, xs[0], method=method).reshape(n, n)
            np.testing.assert_allclose(H, AT_KINK_HESSIAN[name], atol=1e-12, err_msg=f"{name} {method}")
        v = np.ones(args[0].shape)
        np.testing.assert_allclose(jx.hvp(l, xs[0], v).ravel(), AT_KINK_HESSIAN[name] @ v.ravel(), atol=1e-12)


def _hypot_atan2_closed(name, a, b):
    A, B = np.broadcast_arrays(a, b)
    r2 = A * A + B * B
    safe = np.where(r2 == 0, 1.0, r2)
    if name == "hypot":
        y = np.sqrt(safe)
        da, db = np.where(r2 == 0, 0.0, A / y), np.where(r2 == 0, 0.0, B / y)
    else:
        da, db = np.where(r2 == 0, 0.0, B / safe), np.where(r2 == 0, 0.0, -A / safe)

    def reduce(g, shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape))))
        return g.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1), keepdims=True).reshape(shape)

    return reduce(da, np.shape(a)), reduce(db, np.shape(b))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["hypot", "arctan2"])
def test_hypot_and_arctan2_broadcast_with_a_zero_entry_in_and_out_of_jit(name, dtype):
    op = getattr(jx, name)
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 1)).astype(dtype), rng.standard_normal(4).astype(dtype)
    a[0, 0], b[0] = 0.0, 0.0  # one entry at a = b = 0
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    g = jx.jit(jx.grad(lambda a, b: jx.sum(op(a, b) * 1.5), argnums=(0, 1)))
    for a_, b_ in ((a, b), (2 * a + 1, b[::-1].copy()), (a, np.zeros(4, dtype))):
        want = [1.5 * w for w in _hypot_atan2_closed(name, a_.astype(float), b_.astype(float))]
        A, B = jx.var(a_), jx.var(b_)
        l = jx.sum(op(A, B) * 1.5)
        eager = (jx.grad(l, A), jx.grad(l, B))
        replay = g(a_, b_)
        for got in (eager, replay):
            assert got[0].dtype == dtype and got[0].shape == (3, 1) and got[1].shape == (4,)
            np.testing.assert_allclose(got[0], want[0], **tol)
            np.testing.assert_allclose(got[1], want[1], **tol)
        assert jx.hessian(l, A, method="factored").dtype == dtype
    assert g.traces == 1


# ---------------------------------------------------------------------------------------------------------------
# The fast path and its inputs.

def test_fast_path_inputs_follow_var_rules():
    f = jx.jit(lambda x, y: jx.sum(x * y))
    x = np.arange(3.0)
    assert f(x, 2.0) == 6.0 and f(x, 3.0) == 9.0 and f.traces == 1  # an ndarray and a Python scalar
    assert f(np.array(2.0), np.array(3.0)) == 6.0 and f(np.array(4.0), np.array(3.0)) == 12.0  # 0-d
    assert f(np.arange(3), np.arange(3)) == 5.0  # integers: float64
    n = f.traces
    assert f(np.arange(3.0), np.arange(3.0)) == 5.0 and f.traces == n  # the same float64 program
    assert f(np.ones(3, np.float16), np.ones(3, np.float16)).dtype == np.float32
    z = np.arange(24.0).reshape(4, 6)
    assert f(z[::2, 1::2].T[1], z[1::2, ::2].T[2]) == np.sum(z[::2, 1::2].T[1] * z[1::2, ::2].T[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    h = jx.jit(lambda x: jx.sum(x @ x))
    h(np.ones((2, 2)))
    assert h(m) == np.sum(np.asarray(m) @ np.asarray(m))
    assert type(jx.jit(lambda x: x * 2)(m)) is np.ndarray
    with pytest.raises(TypeError, match="masked arrays"):
        h(np.ma.masked_array(np.ones((2, 2)), mask=np.eye(2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused_on_the_fast_path_naming_the_argument(bad):
    f = jx.jit(lambda x, y: jx.sum(x * y))
    x = np.arange(3.0)
    f(x, x)  # the fast path now holds a program for this signature
    y = np.array([1.0, bad, 2.0])
    with pytest.raises(ValueError, match=r"argument \[0\]\[1\].*NaN or ±Inf"):
        f(x, y)
    with pytest.raises(ValueError, match=r"argument \[0\]\[0\].*NaN or ±Inf"):
        f(y, x)
    assert f(x, x) == 5.0 and f.traces == 1


# ---------------------------------------------------------------------------------------------------------------
# Static arguments through partials, bound methods and jit(jit(f)).

def test_static_arguments_through_partials_bound_methods_and_nested_jit():
    x = np.array([1.0, 2.0, 3.0])

    def p(x, k):
        return jx.sum(x ** k)

    part = jx.jit(functools.partial(p, k=3))
    np.testing.assert_allclose(part(x), np.sum(x ** 3))
    fixed_x = jx.jit(functools.partial(p, x), static_argnums=0)
    np.testing.assert_allclose([fixed_x(2), fixed_x(3)], [np.sum(x ** 2), np.sum(x ** 3)])

    class Model:
        def __init__(self, w):
            self.w = w

        def loss(self, x, k):
            return jx.sum((x * self.w) ** k)

    m = jx.jit(Model(2.0).loss, static_argnums=1)
    np.testing.assert_allclose([m(x, 2), m(x, k=2), m(x, 3)], [np.sum((2 * x) ** 2)] * 2 + [np.sum((2 * x) ** 3)])
    assert m.traces == 2
    nested = jx.jit(jx.jit(p, static_argnums=1), static_argnums=1)
    np.testing.assert_allclose([nested(x, 2), nested(x, k=3)], [np.sum(x ** 2), np.sum(x ** 3)])
    np.testing.assert_allclose(jx.grad(jx.jit(p, static_argnums=1))(x, 2), 2 * x)


# ---------------------------------------------------------------------------------------------------------------
# Two threads jitting and replaying different functions at once get their own right numbers.

def test_two_threads_jitting_different_functions_get_right_numbers():
    results, errors = {}, []
    barrier = threading.Barrier(2, timeout=5)
    rng = np.random.default_rng(7)
    data = {0: rng.standard_normal((5, 3)), 1: rng.standard_normal((5, 3))}
    losses = {0: lambda x: jx.sum(jx.norm(x, axis=1)), 1: lambda x: jx.sum(jx.tanh(x) ** 2)}

    def work(k):
        try:
            def slow(x):  # both traces are open at the same time
                barrier.wait()
                return losses[k](x)

            g = jx.jit(jx.grad(slow))
            g(np.ones((5, 3)))
            results[k] = [g(data[k] * s) for s in (1.0, 2.0)]
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(2):
        for s, got in zip((1.0, 2.0), results[k]):
            np.testing.assert_allclose(got, _vjp_grad(losses[k], data[k] * s), rtol=1e-12)
