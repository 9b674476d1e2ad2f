"""check_grad against hand-written gradients: 40 wrong ones it must flag, 20 correct ones it must pass.

The models are the ones practitioners differentiate by hand (linear and ridge
regression, a two-layer MLP with a dict of parameters, softmax cross-entropy,
a deep linear net, logistic regression, models with relu, abs, max and hinge
kinks). Each gradient function takes a ``bug`` keyword naming one mistake
people make: a wrong sign, a missing 1/B or 2, a transposed weight, a sum over
the wrong axis, a wrong broadcast sum, swapped parameters, a missing term, a
wrong activation derivative. ``pytest -s`` prints the counts.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import jacobians as jx

RNG = np.random.default_rng(1234)
N, D, H, K, C = 8, 3, 4, 2, 3  # batch, inputs, hidden units, regression outputs, classes
X = RNG.standard_normal((N, D))
y = RNG.standard_normal(N)
Y = RNG.standard_normal((N, K))
T = np.eye(C)[RNG.integers(0, C, size=N)]  # one-hot labels
signs = np.where(RNG.standard_normal(N) > 0, 1.0, -1.0)  # ±1 labels


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ====================================================================== models and hand-written gradients
# ---------------------------------------------------------------- linear regression: (w, b), mean squared error
def linreg(w, b, X, y):
    r = X @ w + b - y
    return np.mean(r ** 2)


def linreg_grad(w, b, X, y, bug=None):
    B = X.shape[0]
    r = X @ w + b - y
    if bug == "residual missing b":
        r = X @ w - y
    if bug == "residual adds y":
        r = X @ w + b + y
    gw, gb = 2 * X.T @ r / B, 2 * np.sum(r) / B
    if bug == "sign":
        gw, gb = -gw, -gb
    if bug == "missing 1/B":
        gw, gb = 2 * X.T @ r, 2 * np.sum(r)
    if bug == "missing 2":
        gw, gb = X.T @ r / B, np.sum(r) / B
    if bug == "b missing 1/B":
        gb = 2 * np.sum(r)
    if bug == "swapped w and b":
        return gb, gw
    return gw, gb


# ---------------------------------------------------------------- ridge: w only, lam a constant
def ridge(w, X, y, lam):
    return np.sum((X @ w - y) ** 2) + lam * np.sum(w ** 2)


def ridge_grad(w, X, y, lam, bug=None):
    r = X @ w - y
    data, reg = 2 * X.T @ r, 2 * lam * w
    if bug == "missing the penalty term":
        reg = 0.0
    if bug == "penalty missing 2":
        reg = lam * w
    if bug == "penalty sign":
        reg = -2 * lam * w
    if bug == "data term missing 2":
        data = X.T @ r
    if bug == "broadcast sum of the data term":
        data = np.full(w.shape, 2 * np.sum(X * r[:, None]))
    return data + reg


# ---------------------------------------------------------------- two-layer tanh MLP, a dict of parameters
def mlp(params, X, Y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.sum((out - Y) ** 2) / (2 * X.shape[0])


def mlp_grad(params, X, Y, bug=None):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    B = X.shape[0]
    z = X @ W1 + b1
    h = np.tanh(z)
    out = h @ W2 + b2
    G = (out - Y) / B
    if bug == "missing 1/B":
        G = out - Y
    if bug == "extra 1/2":
        G = (out - Y) / (2 * B)
    dh = {"tanh' as 1 - h": 1 - h, "tanh' missing": 1.0, "tanh' of the pre-activation": 1 - z ** 2}.get(bug, 1 - h ** 2)
    Gz = G @ W2.T * dh
    g = {"W1": X.T @ Gz, "b1": Gz.sum(axis=0), "W2": h.T @ G, "b2": G.sum(axis=0)}
    if bug == "sign of W1":
        g["W1"] = -g["W1"]
    if bug == "W2 transposed":
        g["W2"] = G.T @ h
    if bug == "b1 summed over axis 1":
        g["b1"] = Gz.sum(axis=1)
    if bug == "b2 mean instead of sum":
        g["b2"] = G.mean(axis=0)
    if bug == "b1 broadcast sum":
        g["b1"] = np.full(b1.shape, Gz.sum())
    if bug == "swapped W1 and W2":
        g["W1"], g["W2"] = g["W2"], g["W1"]
    if bug == "swapped b1 and b2":
        g["b1"], g["b2"] = g["b2"], g["b1"]
    if bug == "b2 left out":
        del g["b2"]
    return g


# ---------------------------------------------------------------- softmax cross-entropy: (W, b), W square (D == C)
def softmax_ce(W, b, X, T):
    z = X @ W + b
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(T * logp, axis=1))


def softmax_ce_grad(W, b, X, T, bug=None):
    z = X @ W + b
    e = np.exp(z - z.max(axis=1, keepdims=True))
    P = e / e.sum(axis=1, keepdims=True)
    if bug == "softmax normalized over axis 0":
        P = e / e.sum(axis=0, keepdims=True)
    B = X.shape[0]
    G = {"sign": T - P, "forgot T": P, "missing 1/B": (P - T) * B}.get(bug, P - T) / B
    gW, gb = X.T @ G, G.sum(axis=0)
    if bug == "W transposed":
        gW = gW.T
    if bug == "b summed over axis 1":
        gb = G.sum(axis=1)
    if bug == "b keepdims":
        gb = G.sum(axis=0, keepdims=True)
    if bug == "b broadcast sum":
        gb = np.full(b.shape, G.sum())
    return gW, gb


# ---------------------------------------------------------------- deep linear net: two square matrices in a dict
def deep_linear(p, X, Y3):
    R = X @ p["A"] @ p["B"] - Y3
    return np.sum(R ** 2) / (2 * X.shape[0])


def deep_linear_grad(p, X, Y3, bug=None):
    n = X.shape[0]
    R = (X @ p["A"] @ p["B"] - Y3) / n
    gA, gB = X.T @ R @ p["B"].T, (X @ p["A"]).T @ R
    if bug == "swapped A and B":
        gA, gB = gB, gA
    if bug == "A transposed":
        gA = gA.T
    if bug == "B missing 1/B":
        gB = gB * n
    if bug == "A missing the factor B":
        gA = X.T @ R
    return {"A": gA, "B": gB}


# ---------------------------------------------------------------- logistic regression with ±1 labels
def logistic(w, X, s):
    return np.mean(np.log1p(np.exp(-s * (X @ w))))


def logistic_grad(w, X, s, bug=None):
    m = s * (X @ w)
    d = {"sigmoid(m) for sigmoid(-m)": sigmoid(m), "missing the label": sigmoid(-m) / s}.get(bug, sigmoid(-m))
    g = -X.T @ (s * d) / X.shape[0]
    return -g if bug == "sign" else g


# ---------------------------------------------------------------- relu MLP (pre-activations away from 0)
def relu_mlp(params, X, y):
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    return np.mean((h @ params["w2"] - y) ** 2)


def relu_mlp_grad(params, X, y, bug=None):
    z = X @ params["W1"] + params["b1"]
    h = np.maximum(z, 0)
    r = 2 * (h @ params["w2"] - y) / X.shape[0]
    mask = 1.0 if bug == "relu' forgot the mask" else (z > 0)
    Gz = np.outer(r, params["w2"]) * mask
    return {"W1": X.T @ Gz, "b1": Gz.sum(axis=0), "w2": h.T @ r}


# ---------------------------------------------------------------- lasso (w away from 0)
def lasso(w, X, y, lam):
    return 0.5 * np.mean((X @ w - y) ** 2) + lam * np.sum(np.abs(w))


def lasso_grad(w, X, y, lam, bug=None):
    reg = lam * (np.abs(w) if bug == "abs' as abs" else np.sign(w))
    return X.T @ (X @ w - y) / X.shape[0] + reg


# ---------------------------------------------------------------- correct only: more models with kinks and pytrees
def hinge(w, X, s, lam):
    return np.mean(np.maximum(0, 1 - s * (X @ w))) + 0.5 * lam * np.sum(w ** 2)


def hinge_grad(w, X, s, lam):
    active = (1 - s * (X @ w)) > 0
    return -X.T @ (s * active) / X.shape[0] + lam * w


def huber(w, X, y):
    r = X @ w - y
    return np.sum(np.where(np.abs(r) < 1.0, 0.5 * r ** 2, np.abs(r) - 0.5))


def huber_grad(w, X, y):
    r = X @ w - y
    return X.T @ np.where(np.abs(r) < 1.0, r, np.sign(r))


def l1_regression(w, X, y):
    return np.mean(np.abs(X @ w - y))


def l1_regression_grad(w, X, y):
    return X.T @ np.sign(X @ w - y) / X.shape[0]


def max_score(W, X):
    return np.sum(np.max(X @ W, axis=1))


def max_score_grad(W, X):
    S = X @ W
    return X.T @ (S == S.max(axis=1, keepdims=True)).astype(float)


def factorization(U, V, M):
    return np.sum((U @ V.T - M) ** 2)


def factorization_grad(U, V, M):
    R = U @ V.T - M
    return 2 * R @ V, 2 * R.T @ U


def quadratic(x, A):
    return x @ A @ x


def quadratic_grad(x, A):
    return (A + A.T) @ x


def log_det(S):
    return np.log(np.linalg.det(S))


def log_det_grad(S):
    return np.linalg.inv(S).T


def gaussian_nll(mu, log_sigma, x):
    return np.sum(0.5 * ((x - mu) / np.exp(log_sigma)) ** 2 + log_sigma)


def gaussian_nll_grad(mu, log_sigma, x):
    z = (x - mu) / np.exp(log_sigma)
    return np.sum(-z / np.exp(log_sigma)), np.sum(1 - z ** 2)


def layers_net(layers, X):
    h = X
    for layer in layers:
        h = np.tanh(h @ layer["W"] + layer["b"])
    return np.sum(h ** 2)


def layers_net_grad(layers, X):
    hs = [X]
    for layer in layers:
        hs.append(np.tanh(hs[-1] @ layer["W"] + layer["b"]))
    G, out = 2 * hs[-1], [None] * len(layers)
    for i in reversed(range(len(layers))):
        Gz = G * (1 - hs[i + 1] ** 2)
        out[i] = {"W": hs[i].T @ Gz, "b": Gz.sum(axis=0)}
        G = Gz @ layers[i]["W"].T
    return out


def softplus_sum(x):
    return np.sum(np.log(1 + np.exp(x)))


def softplus_sum_grad(x):
    return sigmoid(x)


# ====================================================================== the parameters and data
w0 = RNG.standard_normal(D)
b0 = np.array(0.3)
lam = 0.7
P_MLP = {"W1": RNG.standard_normal((D, H)) / 2, "b1": RNG.standard_normal(H) / 4,
         "W2": RNG.standard_normal((H, K)) / 2, "b2": RNG.standard_normal(K) / 4}
W_CE, b_CE = RNG.standard_normal((D, C)), RNG.standard_normal(C) / 2
P_DEEP = {"A": RNG.standard_normal((D, D)), "B": RNG.standard_normal((D, D))}
Y3 = RNG.standard_normal((N, D))
P_RELU = {"W1": RNG.standard_normal((D, H)), "b1": RNG.standard_normal(H), "w2": RNG.standard_normal(H)}
w_lasso = RNG.uniform(0.2, 1.5, D) * np.array([1.0, -1.0, 1.0])
U0, V0, M0 = RNG.standard_normal((4, 2)), RNG.standard_normal((3, 2)), RNG.standard_normal((4, 3))
x_q, A_q = RNG.standard_normal(D), RNG.standard_normal((D, D))
S_spd = (lambda a: a @ a.T + np.eye(D))(RNG.standard_normal((D, D)))
x_obs = RNG.standard_normal(6)
LAYERS = [{"W": RNG.standard_normal((D, H)) / 2, "b": np.zeros(H)}, {"W": RNG.standard_normal((H, 2)) / 2,
                                                                       "b": RNG.standard_normal(2) / 4}]
W_max = RNG.standard_normal((D, 4))

# (model, hand-written gradient, args, argnums): the correct gradient is the one with bug=None
MODELS = {
    "linreg": (linreg, linreg_grad, (w0, b0, X, y), (0, 1)),
    "ridge": (ridge, ridge_grad, (w0, X, y, lam), 0),
    "mlp": (mlp, mlp_grad, (P_MLP, X, Y), 0),
    "softmax_ce": (softmax_ce, softmax_ce_grad, (W_CE, b_CE, X, T), (0, 1)),
    "deep_linear": (deep_linear, deep_linear_grad, (P_DEEP, X, Y3), 0),
    "logistic": (logistic, logistic_grad, (w0, X, signs), 0),
    "relu_mlp": (relu_mlp, relu_mlp_grad, (P_RELU, X, y), 0),
    "lasso": (lasso, lasso_grad, (w_lasso, X, y, lam), 0),
}

WRONG = [
    ("linreg", b) for b in ("sign", "missing 1/B", "missing 2", "b missing 1/B", "swapped w and b",
                            "residual missing b", "residual adds y")
] + [
    ("ridge", b) for b in ("missing the penalty term", "penalty missing 2", "penalty sign", "data term missing 2",
                           "broadcast sum of the data term")
] + [
    ("mlp", b) for b in ("sign of W1", "missing 1/B", "extra 1/2", "tanh' as 1 - h", "tanh' missing",
                         "tanh' of the pre-activation", "W2 transposed", "b1 summed over axis 1",
                         "b2 mean instead of sum", "b1 broadcast sum", "swapped W1 and W2", "swapped b1 and b2")
] + [
    ("softmax_ce", b) for b in ("sign", "forgot T", "missing 1/B", "softmax normalized over axis 0", "W transposed",
                                "b summed over axis 1", "b keepdims", "b broadcast sum")
] + [
    ("deep_linear", b) for b in ("swapped A and B", "A transposed", "B missing 1/B", "A missing the factor B")
] + [
    ("logistic", "sign"), ("logistic", "sigmoid(m) for sigmoid(-m)"), ("relu_mlp", "relu' forgot the mask"),
    ("lasso", "abs' as abs"),
]

CORRECT = [(name, model, grad, args, argnums) for name, (model, grad, args, argnums) in MODELS.items()] + [
    ("hinge", hinge, hinge_grad, (w0, X, signs, lam), 0),
    ("huber", huber, huber_grad, (w0, X, 2 * y), 0),
    ("l1_regression", l1_regression, l1_regression_grad, (w0, X, y), 0),
    ("max_score", max_score, max_score_grad, (W_max, X), 0),
    ("factorization", factorization, factorization_grad, (U0, V0, M0), (0, 1)),
    ("quadratic", quadratic, quadratic_grad, (x_q, A_q), 0),
    ("log_det", log_det, log_det_grad, (S_spd,), 0),
    ("gaussian_nll", gaussian_nll, gaussian_nll_grad, (np.array(0.2), np.array(-0.3), x_obs), (0, 1)),
    ("layers_net", layers_net, layers_net_grad, (LAYERS, X), 0),
    ("softplus_sum", softplus_sum, softplus_sum_grad, (X,), 0),
    ("mlp_float64_batch_of_one", mlp, mlp_grad, (P_MLP, X[:1], Y[:1]), 0),
    ("ridge_no_penalty", ridge, ridge_grad, (w0, X, y, 0.0), 0),
]


def check(model, grad, args, argnums, **bug):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = jx.check_grad(model, functools.partial(grad, **bug), *args, argnums=argnums)
    return report, [str(w.message) for w in caught]


# ====================================================================== the counts
def test_the_case_lists_have_the_promised_sizes():
    assert len(WRONG) == 40 and len(set(WRONG)) == 40
    assert len(CORRECT) == 20


def test_check_grad_flags_at_least_38_of_40_wrong_gradients():
    missed = []
    for name, bug in WRONG:
        model, grad, args, argnums = MODELS[name]
        report, _ = check(model, grad, args, argnums, bug=bug)
        if report.ok:
            missed.append(f"{name}: {bug}")
    caught = len(WRONG) - len(missed)
    print(f"\ncheck_grad flagged {caught}/{len(WRONG)} wrong gradients" + "".join(f"\n  missed {m}" for m in missed))
    assert caught >= 38, missed


def test_check_grad_passes_all_20_correct_gradients_without_warnings():
    alarms, warned = [], []
    for name, model, grad, args, argnums in CORRECT:
        report, messages = check(model, grad, args, argnums)
        if not report.ok:
            alarms.append(f"{name}:\n{report}")
        if messages:
            warned.append(f"{name}: {messages}")
    print(f"\ncheck_grad false alarms: {len(alarms)}/{len(CORRECT)} correct gradients"
          + "".join(f"\n  {a}" for a in alarms))
    assert not alarms, "\n".join(alarms)
    assert not warned, "\n".join(warned)


@pytest.mark.parametrize("name, bug", [w for w in WRONG if w[1] in ("W2 transposed", "b1 summed over axis 1",
                                                                     "b keepdims", "swapped w and b")])
def test_a_wrong_shape_is_reported_as_such(name, bug):
    model, grad, args, argnums = MODELS[name]
    report, _ = check(model, grad, args, argnums, bug=bug)
    bad = [p for p in report.params if not p.ok]
    assert bad and all(p.problem.startswith("shape") for p in bad), str(report)


def test_a_transposed_non_square_weight_is_named_as_probably_transposed():
    report, _ = check(mlp, mlp_grad, (P_MLP, X, Y), 0, bug="W2 transposed")
    (bad,) = [p for p in report.params if not p.ok]
    assert bad.path == "params['W2']" and "(transposed?)" in bad.problem
    assert "params['W2']" in str(report) and "transposed?" in str(report)


def test_a_missing_1_over_B_shows_as_a_relative_error_of_B_minus_1():
    report, _ = check(linreg, linreg_grad, (w0, b0, X, y), (0, 1), bug="missing 1/B")
    assert [p.path for p in report.params] == ["w", "b"]
    for p in report.params:
        assert p.rel_error == pytest.approx(N - 1, rel=1e-9)
        assert p.numeric_error == pytest.approx(N - 1, rel=1e-5)


def test_the_worst_entries_give_the_index_the_users_value_and_the_exact_one():
    report, _ = check(deep_linear, deep_linear_grad, (P_DEEP, X, Y3), 0, bug="A transposed")
    pa = report.params[0]
    assert pa.path == "p['A']" and not pa.ok and len(pa.worst) == 3
    exact = jx.grad(deep_linear)(P_DEEP, X, Y3)["A"]
    for index, user, ref in pa.worst:
        assert ref == pytest.approx(exact[index], rel=1e-12)
        assert user == pytest.approx(exact.T[index], rel=1e-12)
    assert "worst entries of p['A']" in str(report)


# ====================================================================== assert_grad, warnings, reports
def test_assert_grad_raises_an_assertion_error_carrying_the_report():
    with pytest.raises(AssertionError) as info:
        jx.assert_grad(mlp, functools.partial(mlp_grad, bug="missing 1/B"), P_MLP, X, Y)
    report = jx.check_grad(mlp, functools.partial(mlp_grad, bug="missing 1/B"), P_MLP, X, Y)
    assert str(info.value) == str(report)
    assert str(info.value).startswith("check_grad: 4 of 4 parameters disagree")
    ok = jx.assert_grad(mlp, mlp_grad, P_MLP, X, Y)
    assert ok.ok and isinstance(ok, jx.GradReport)


def test_a_kink_within_the_step_gives_a_kink_warning():
    x = np.array([0.0, 1.0, -2.0])
    with pytest.warns(jx.KinkWarning, match=r"maximum .* within the finite-difference step of its kink"):
        report = jx.check_grad(lambda x: np.sum(np.maximum(x, 0) ** 2), lambda x: 2 * np.maximum(x, 0), x)
    assert report.ok and any("kink" in w for w in report.warnings)
    with pytest.warns(jx.KinkWarning, match=r"abs"):
        jx.check_grad(lambda w: np.sum(np.abs(w)), lambda w: np.sign(w), np.array([1e-9, 1.0]))


def test_no_kink_warning_for_a_max_whose_maximum_is_unique():
    x = np.array([[1.0, 0.0], [3.0, 1.0 + 1e-9]])  # 1.0 and 1.0 + 1e-9 sit in different rows; each row's max is clear
    with warnings.catch_warnings():
        warnings.simplefilter("error", jx.KinkWarning)
        report = jx.check_grad(lambda x: np.sum(np.max(x, axis=1)), lambda x: np.array([[1.0, 0.0], [1.0, 0.0]]), x)
    assert report.ok


def test_no_kink_warning_away_from_the_kink():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = jx.check_grad(lambda x: np.sum(np.abs(x)), np.sign, np.array([0.5, -1.0, 2.0]))
    assert report.ok and not report.warnings


def test_float32_inputs_give_the_float64_advice_and_a_looser_tolerance():
    p32 = {k: v.astype(np.float32) for k, v in P_MLP.items()}
    with pytest.warns(UserWarning, match=r"inputs are float32.*float64"):
        report = jx.check_grad(mlp, mlp_grad, p32, X.astype(np.float32), Y.astype(np.float32))
    assert report.ok and report.rtol == 1e-3
    assert "rtol 0.001" in str(report) and any("float32" in w for w in report.warnings)
    with pytest.warns(UserWarning, match="float32"):
        bad = jx.check_grad(mlp, functools.partial(mlp_grad, bug="extra 1/2"), p32, X.astype(np.float32),
                            Y.astype(np.float32))
    assert not bad.ok


def test_str_and_markdown_name_every_parameter_path():
    report = jx.check_grad(layers_net, layers_net_grad, LAYERS, X)
    paths = ["layers[0]['W']", "layers[0]['b']", "layers[1]['W']", "layers[1]['b']"]
    assert [p.path for p in report.params] == paths
    text, md = str(report), report._repr_markdown_()
    for path in paths:
        assert path in text and f"`{path}`" in md
    assert text.startswith("check_grad: all 4 parameters agree")
    assert md.startswith("**check_grad: ok**") and md.count("| ✓ |") == 4

    bad = jx.check_grad(mlp, functools.partial(mlp_grad, bug="b2 left out"), P_MLP, X, Y)
    text, md = str(bad), bad._repr_markdown_()
    for path in ("params['W1']", "params['W2']", "params['b1']", "params['b2']"):
        assert path in text and f"`{path}`" in md
    assert md.startswith("**check_grad: mismatch**") and "✗" in md
    assert repr(bad) == "<GradReport ok=False: 4 parameters, 0 warnings>"


def test_tuple_argnums_paths_are_the_argument_names():
    report = jx.check_grad(softmax_ce, softmax_ce_grad, W_CE, b_CE, X, T, argnums=(0, 1))
    assert [p.path for p in report.params] == ["W", "b"] and report.ok


def test_a_non_scalar_f_is_refused():
    with pytest.raises(TypeError, match="f must return a scalar"):
        jx.check_grad(lambda w: X @ w, lambda w: X.T, w0)
