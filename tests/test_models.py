"""The models practitioners write, natively: sliced attention heads, concatenation, a hinge-loss classifier,
batched linear algebra and a small CNN layer — every route's gradient against central differences."""
import numpy as np
import pytest

import jacobians as jx

ROUTES = ("auto", "factored", "explicit", "vjp")


def _check(loss, params, routes=ROUTES, rtol=1e-6):
    leaves = {k: jx.var(v, name=k) for k, v in params.items()}
    l = loss(**leaves)
    for name, x in leaves.items():
        N = jx.grad(l, x, method="numeric")
        for route in routes:
            G = jx.grad(l, x, method=route)
            assert np.abs(G - N).max() <= rtol * max(1.0, np.abs(N).max()), (name, route)


def test_multi_head_attention_with_sliced_heads_and_concatenation():
    rng = np.random.default_rng(0)
    T, d, heads = 4, 6, 2
    X = rng.standard_normal((T, d))

    def loss(Wq, Wk, Wv):
        Q, K, V = X @ Wq, X @ Wk, X @ Wv
        outs = []
        for h in range(heads):
            s = slice(h * d // heads, (h + 1) * d // heads)
            A = jx.softmax(Q[:, s] @ K[:, s].T / np.sqrt(d // heads), axis=-1)
            outs.append(A @ V[:, s])
        return jx.sum(jx.concatenate(outs, axis=1) ** 2) + jx.sum(Q[0] * K[-1])  # first and last tokens

    _check(loss, {k: 0.3 * rng.standard_normal((d, d)) for k in ("Wq", "Wk", "Wv")}, routes=("auto", "vjp", "factored"))


def test_hinge_loss_linear_classifier():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((8, 3)), rng.choice([-1.0, 1.0], 8)

    def loss(w, b):
        return jx.hinge(X @ w + b, y) + 0.1 * jx.sum(w * w)

    w = rng.standard_normal(3)
    b = np.array(0.05)
    margins = y * (X @ w + b)
    assert np.min(np.abs(margins - 1)) > 1e-3  # off the kink, where central differences mean something
    _check(loss, {"w": w, "b": b})


def test_batched_linear_algebra():
    rng = np.random.default_rng(2)
    A = np.eye(3) * 3 + 0.3 * rng.standard_normal((2, 3, 3))
    B = rng.standard_normal((2, 3, 2))

    def loss(A, B):
        return jx.sum(jx.solve(A, B) ** 2) + jx.sum(jx.logdet(A)) + jx.sum(jx.inv(A) @ B)

    _check(loss, {"A": A, "B": B})


def test_a_small_cnn_layer():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 6, 6))
    labels = np.array([1, 0])

    def loss(w, b, V):
        h = jx.tanh(jx.conv2d(x, w, padding=1) + b[:, None, None])    # (2, 2, 6, 6)
        p = jx.avg_pool2d(h, 2)                                     # (2, 2, 3, 3)
        return jx.cross_entropy(p.reshape(2, 18) @ V, labels)

    _check(loss, {"w": 0.5 * rng.standard_normal((2, 1, 3, 3)), "b": 0.1 * rng.standard_normal(2),
                  "V": 0.3 * rng.standard_normal((18, 3))}, routes=("auto", "vjp", "factored"))


def test_the_same_models_through_the_numpy_front_end():
    """A layer written with `import numpy as np` and a dict of parameters, as jax.grad takes it."""
    rng = np.random.default_rng(4)
    X, T = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}

    def loss(p, X, T):
        Z = np.maximum(X @ p["W"] + p["b"], 0.0)
        return np.mean(np.concatenate([Z, Z[:, :1]], axis=1) ** 2) - np.mean(T * Z)

    g = jx.grad(loss)(params, X, T)
    for k in params:
        def f(v, k=k):
            q = dict(params, **{k: v})
            return loss({kk: np.asarray(vv) for kk, vv in q.items()}, X, T)
        num = np.zeros_like(params[k])
        h = 1e-6
        for idx in np.ndindex(num.shape):
            e = np.zeros_like(num)
            e[idx] = h
            num[idx] = (f(params[k] + e) - f(params[k] - e)) / (2 * h)
        np.testing.assert_allclose(g[k], num, rtol=1e-6, atol=1e-8)
