"""A corpus of unmodified numpy functions, differentiated by ``jx.grad`` and compared with ``jax.grad``.

Each function below is plain numpy, written as a user would (``import numpy as
np``, ndarray methods, ``@``, Python control flow). The test runs it through
``jx.grad(f, argnums=...)`` on fixed inputs and requires one of two outcomes:

* the gradient equals the one ``jax.grad`` computed for the same function body
  run with ``jax.numpy`` in float64 (rtol 1e-10, atol 1e-12), or
* a ``TypeError`` whose message names a numpy function (or ndarray method) the
  body calls: jacobians has no op for it yet and says so.

Anything else fails: a wrong gradient, a gradient of the wrong shape or dtype,
another exception. So a function that raises today and computes after an op
lands is then checked against its reference with no change here. The few
functions that break the rule today are listed in ``KNOWN_BUGS`` (expected
failures, left out of the counts); each passes as soon as its bug is fixed.

The inputs and the JAX gradients live in ``tests/data/numpy_corpus_reference.npz``,
written by ``benchmarks/jax_references.py`` (JAX is needed only to regenerate
that file, never to run this test). After adding a function here, rerun the
script.
"""
from __future__ import annotations

import ast
import inspect
import json
import os
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np
import pytest

import jacobians as jx

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "numpy_corpus_reference.npz")
RTOL, ATOL = 1e-10, 1e-12
MIN_MATCHES = 20


@dataclass(frozen=True)
class Case:
    """One corpus function: its argument shapes (or a maker of arguments) and the arguments differentiated."""

    f: Callable[..., Any]
    shapes: Tuple[Tuple[int, ...], ...]
    argnums: Union[int, Tuple[int, ...]] = 0
    make: Optional[Callable[[np.random.Generator], Tuple[np.ndarray, ...]]] = None

    def inputs(self, rng: np.random.Generator) -> Tuple[np.ndarray, ...]:
        """Fresh inputs (used by benchmarks/jax_references.py; the test reads the stored ones)."""
        if self.make is not None:
            return tuple(np.asarray(a, dtype=np.float64) for a in self.make(rng))
        return tuple(rng.standard_normal(s) for s in self.shapes)


CORPUS: Dict[str, Case] = {}


def corpus(*shapes: Tuple[int, ...], argnums: Union[int, Tuple[int, ...]] = 0,
           make: Optional[Callable[[np.random.Generator], Tuple[np.ndarray, ...]]] = None):
    """Register the function below in the corpus; the function itself is returned unchanged."""
    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        assert f.__name__ not in CORPUS, f.__name__
        CORPUS[f.__name__] = Case(f, shapes, argnums, make)
        return f

    return register


def _onehot(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.eye(k)[rng.integers(0, k, size=n)]


# ====================================================================== the corpus
# ---------------------------------------------------------------- issue reproducers and ndarray methods
@corpus((3, 4), (3, 2), argnums=(0, 1))
def transpose_dot(w, x):
    return np.sum(np.tanh(w.T.dot(x)))


@corpus((4, 3))
def sum_method(x):
    return (x ** 2).sum()


@corpus((4, 3))
def mean_method_axis0(x):
    return np.sum(x.mean(axis=0) ** 2)


@corpus((5, 3), (3, 2), argnums=(0, 1))
def dot_method(x, w):
    return np.sum(np.sin(x.dot(w)))


@corpus((2, 3, 4))
def sum_axis_tuple(x):
    return np.sum(np.sum(x ** 3, axis=(0, 2)) ** 2)


@corpus((3, 4), (4, 2), (2,), argnums=(0, 1, 2))
def np_dot(a, b, c):
    return np.sum(np.dot(np.dot(a, b), c) ** 2)


@corpus((3, 4))
def tanh_exp_log(x):
    return np.sum(np.log(1.0 + np.exp(np.tanh(x))))


@corpus((3, 3))
def linalg_inv(a):
    return np.sum(np.linalg.inv(a + 3.0 * np.eye(3)) ** 2)


@corpus((2, 3), (3, 4), (2, 4), argnums=(0, 1, 2))
def einsum_three(a, b, c):
    return np.einsum("ij,jk,ik->", a, b, c) + np.sum(np.einsum("ij,ik->jk", a, c) ** 2)


@corpus((2, 3), (3, 4), argnums=(0, 1))
def matmul_and_at(a, b):
    c = np.matmul(a, b)
    return np.sum((c @ b.T) ** 2)


@corpus((4, 3))
def dot_T(x):
    return np.sum((x.T @ x) ** 2)


@corpus((2, 3, 4), (4, 2, 3), argnums=(0, 1))
def np_transpose(x, y):
    return np.sum(np.transpose(x, (2, 0, 1)) * y) + np.sum(x.transpose(1, 0, 2) ** 2)


@corpus((2, 6), (4, 2), argnums=(0, 1))
def np_reshape(x, w):
    return np.sum(np.reshape(x, (3, 4)) @ w) + np.sum(np.sin(x.reshape(4, 3)))


@corpus((3, 4))
def relu_maximum(x):
    return np.sum(np.maximum(x, 0) ** 2)


@corpus((3, 4), (3, 4), argnums=(0, 1))
def where_positive(x, y):
    return np.sum(np.where(x > 0, x, 0) * y)


@corpus((2, 3), (4, 3), argnums=(0, 1))
def np_concatenate(x, y):
    return np.sum(np.sin(np.concatenate([x, 2.0 * y], axis=0)) * np.arange(18.0).reshape(6, 3))


@corpus((3, 4))
def np_max(x):
    return np.sum(np.max(x, axis=1) ** 2) + np.max(x)


@corpus((3, 4))
def np_min_keepdims(x):
    return np.sum((x - np.min(x, axis=0, keepdims=True)) ** 2)


@corpus((3, 3))
def linalg_det(a):
    return np.linalg.det(a + 2.0 * np.eye(3))


@corpus((3,), (4,), argnums=(0, 1))
def np_outer(u, v):
    return np.sum(np.sin(np.outer(u, v)))


@corpus((3, 3))
def np_trace(x):
    return np.trace(x @ x) + np.trace(np.exp(x))


@corpus(make=lambda rng: (rng.standard_normal((4, 3)), _onehot(rng, 4, 3)))
def softmax_cross_entropy(z, t):
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    p = e / np.sum(e, axis=1, keepdims=True)
    return -np.mean(np.sum(t * np.log(p), axis=1))


@corpus((5,))
def logsumexp_by_hand(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


@corpus(argnums=(0, 1, 2, 3), make=lambda rng: (
    rng.standard_normal((3, 5)) / 2, rng.standard_normal(5) / 4, rng.standard_normal((5, 2)) / 2,
    rng.standard_normal(2) / 4, rng.standard_normal((6, 3)), rng.standard_normal((6, 2))))
def mlp(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - Y) ** 2)


# ---------------------------------------------------------------- value-dependent Python control flow
@corpus((3, 4))
def branch_on_value(x):
    if x.sum().item() > 0:
        return np.sum(np.sin(x) * x)
    return np.sum(np.cos(x) ** 2)


@corpus(argnums=(0, 1), make=lambda rng: (
    rng.standard_normal((3, 3)) / 2, rng.standard_normal((3, 2)) / 2, rng.standard_normal((4, 2))))
def rnn_loop(W, U, xs):
    h = np.zeros(3)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
        if np.max(np.abs(h)).item() > 0.8:  # damp a saturated state, decided on the value
            h = h * 0.5
    return np.sum(h ** 2)


# ---------------------------------------------------------------- elementwise
@corpus((3, 4))
def sigmoid_by_hand(x):
    return np.sum(1.0 / (1.0 + np.exp(-x)))


@corpus(make=lambda rng: (rng.uniform(0.5, 2.0, (3, 4)),))
def sqrt_log_power(x):
    return np.sum(np.sqrt(x) * np.log(x) + x ** 1.5 + np.power(x, 3) / np.square(x))


@corpus((3, 4), (3, 4), argnums=(0, 1))
def binary_ufuncs(x, y):
    return np.sum(np.arctan2(x, y) + np.hypot(x, y) + np.logaddexp(x, y))


@corpus(make=lambda rng: (rng.uniform(-0.9, 0.9, (3, 4)),))
def trig_and_inverse(x):
    return np.sum(np.arcsin(x) * np.cos(x) + np.arctan(x) + np.sinh(x) * np.log1p(x) - np.expm1(x))


@corpus(make=lambda rng: (rng.uniform(0.3, 1.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4)),))
def abs_and_sign(x):
    return np.sum(np.abs(x) ** 3 + np.sign(x) * x)


@corpus(make=lambda rng: (rng.uniform(-0.8, 0.8, (3, 4)) + np.array([0.0, 2.0, 0.0, -2.0]),))
def clip_values(x):
    return np.sum(np.clip(x, -1.0, 1.0) ** 2 + x)


@corpus((6,))
def sinc_function(x):
    return np.sum(np.sinc(x) ** 2)


# ---------------------------------------------------------------- reductions and scans
@corpus((3, 4))
def cumsum_axis1(x):
    return np.sum(np.cumsum(x, axis=1) ** 2)


@corpus(make=lambda rng: (rng.uniform(0.5, 1.5, (3, 4)),))
def prod_axis0(x):
    return np.sum(np.prod(x, axis=0)) + np.prod(x)


@corpus((4, 5))
def std_and_var(x):
    return np.sum(np.std(x, axis=0)) + np.var(x) + np.sum(x.var(axis=1, ddof=1))


@corpus((3, 4))
def linalg_norm(x):
    return np.linalg.norm(x) + np.sum(np.linalg.norm(x, axis=1) ** 3)


@corpus(argnums=(0, 1), make=lambda rng: (rng.standard_normal(5), rng.uniform(0.5, 1.5, 5)))
def weighted_average(x, w):
    return np.average(x ** 2, weights=w)


@corpus((4, 5))
def sort_then_diff(x):
    return np.sum(np.diff(np.sort(x, axis=1), axis=1) ** 2)


@corpus((3, 4))
def cumprod_rows(x):
    return np.sum(np.cumprod(1.0 + 0.1 * x, axis=1))


# ---------------------------------------------------------------- shape, indexing and joining
@corpus((3, 4), (3, 4), argnums=(0, 1))
def roll_and_flip(x, w):
    return np.sum(np.roll(x, 1, axis=0) * w) + np.sum(np.flip(x, axis=1) * w ** 2)


@corpus((3, 4), (3, 4), argnums=(0, 1))
def fliplr_flipud(x, w):
    return np.sum(np.fliplr(x) * w) + np.sum(np.flipud(x) * w ** 2)


@corpus((3, 4))
def rot90_rotation(x):
    return np.sum(np.rot90(x) * np.arange(12.0).reshape(4, 3))


@corpus((4, 4))
def triu_tril(x):
    return np.sum(np.triu(x) ** 2) + np.sum(np.tril(x, -1) * 3.0)


@corpus((4, 4))
def diag_extract(x):
    return np.sum(np.diag(x) ** 2) + np.sum(np.diagonal(x, 1))


@corpus((4, 5))
def index_and_slice(x):
    return np.sum(x[0] * x[1]) + np.sum(x[:, 1:] * x[:, :-1]) + np.sum(x[np.array([0, 2, 2]), 3] ** 2)


@corpus((2, 3), (2, 3), argnums=(0, 1))
def stack_and_split(x, y):
    a, b = np.split(np.stack([x, y ** 2], axis=1), 2, axis=1)
    return np.sum(a * b) + np.sum(np.vstack([x, y]) ** 2) + np.sum(np.hstack([y, x]) * np.arange(12.0).reshape(2, 6))


@corpus((2, 3))
def tile_repeat_pad(x):
    return np.sum(np.tile(x, (2, 1)) ** 2 * 0.5) + np.sum(np.repeat(x, 2, axis=1) * 3.0) \
        + np.sum(np.pad(x, 1) ** 3)


@corpus((2, 3))
def expand_squeeze(x):
    y = np.expand_dims(x, 0) * np.ones((4, 1, 1))
    return np.sum(np.squeeze(y[:1], axis=0) ** 2) + np.sum(np.swapaxes(y, 0, 2) * 2.0)


# ---------------------------------------------------------------- linear algebra
@corpus((3, 3), (3, 2), argnums=(0, 1))
def linalg_solve(a, b):
    return np.sum(np.linalg.solve(a + 3.0 * np.eye(3), b) ** 2)


@corpus((3, 3))
def linalg_slogdet(a):
    sign, logdet = np.linalg.slogdet(a @ a.T + np.eye(3))
    return sign * logdet


@corpus((3, 3))
def linalg_cholesky(a):
    L = np.linalg.cholesky(a @ a.T + np.eye(3))
    return np.sum(L * np.arange(9.0).reshape(3, 3))


@corpus((3, 3))
def linalg_eigh(a):
    w, v = np.linalg.eigh(a + a.T)
    return np.sum(w ** 3) + np.sum(v ** 4)


@corpus((4, 3))
def linalg_svd_values(x):
    return np.sum(np.linalg.svd(x, compute_uv=False) ** 2 * np.array([3.0, 2.0, 1.0]))


@corpus((3, 3))
def linalg_matrix_power(a):
    return np.sum(np.linalg.matrix_power(a, 3))


@corpus((3, 3), (3, 2), argnums=(0, 1))
def linalg_multi_dot(a, b):
    return np.sum(np.linalg.multi_dot([a, a, b]))


@corpus((2, 3), (3, 2), argnums=(0, 1))
def kron_tensordot(a, b):
    return np.sum(np.kron(a, b) ** 2) + np.tensordot(a, b, axes=([0, 1], [1, 0]))


@corpus((4, 3), (4, 3), argnums=(0, 1))
def np_cross(a, b):
    return np.sum(np.cross(a, b) ** 2)


@corpus((6,))
def fft_power(x):
    return np.sum(np.abs(np.fft.fft(x)) ** 2 * np.arange(6.0))


@corpus((4,))
def polyval_coefficients(p):
    return np.sum(np.polyval(p, np.linspace(-1.0, 1.0, 5)) ** 2)


# ---------------------------------------------------------------- more numpy semantics: N-D, batches, defaults
@corpus((2, 3, 4), (5, 4, 6), argnums=(0, 1))
def dot_of_nd_arrays(a, b):
    return np.sum(np.sin(np.dot(a, b)))


@corpus((2, 3), (4, 2), (2, 3), (4, 3), argnums=(0, 1, 2, 3))
def outer_and_inner_of_matrices(a, b, c, d):
    return np.sum(np.sin(np.outer(a, b))) + np.sum(np.cos(np.inner(c, d)))


@corpus((2, 3, 4), (4, 5), (3,), argnums=(0, 1, 2))
def matmul_batched_and_vectors(a, b, v):
    return np.sum(np.sin(a @ b)) + np.sin(v @ a[0] @ b @ b.T @ a[1].T @ v)


@corpus((2, 3, 4))
def transpose_3d_defaults(x):
    return np.sum(x.T * np.arange(24.0).reshape(4, 3, 2)) + np.sum(np.transpose(x) ** 3)


@corpus((3, 3, 2))
def trace_3d(a):
    return np.sum(np.trace(a) ** 2)


@corpus((2, 3, 3), (3,), argnums=(0, 1))
def linalg_batched(a, b):
    m = a + 3.0 * np.eye(3)
    return np.sum(np.linalg.inv(m) ** 2) + np.sum(np.linalg.det(m) ** 2) + np.sum(np.linalg.solve(m[0], b) ** 2)


@corpus((3, 3))
def slogdet_negative_determinant(a):
    sign, logdet = np.linalg.slogdet(a - 2.0 * np.eye(3))
    return sign * logdet + logdet


@corpus((4, 3))
def svd_reconstruction(x):
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return np.sum((u * s) @ vt * np.arange(12.0).reshape(4, 3)) + np.sum(s ** 3)


@corpus((4, 3))
def pinv_rectangular(x):
    return np.sum(np.linalg.pinv(x) ** 2)


@corpus((4, 4))
def eigvalsh_and_matrix_power(a):
    return np.sum(np.linalg.eigvalsh(a + a.T) ** 3) + np.sum(np.linalg.matrix_power(a + 4.0 * np.eye(4), -2))


@corpus((3, 4))
def clip_one_sided_and_array_bounds(x):
    return np.sum(np.clip(x, None, 0.5) ** 2) + np.sum(np.clip(x, -0.3 * np.ones(4), 0.4 * np.ones(4)) ** 3)


@corpus((3, 4))
def boolean_mask_index(x):
    return np.sum(x[x > 0] ** 2) + np.sum(x[np.where(x < 0)] ** 3)


@corpus((3, 4))
def steps_newaxis_ellipsis(x):
    return np.sum(x[::-1, ::2] * np.arange(6.0).reshape(3, 2)) + np.sum(x[:, None, :] * x[None, :, :]) \
        + np.sum(x[..., 1] ** 2)


@corpus((3, 4))
def take_columns(x):
    return np.sum(np.take(x, np.array([0, 2, 2]), axis=1) ** 2)


@corpus(make=lambda rng: (rng.standard_normal((4, 3)), _onehot(rng, 4, 3)))
def pick_by_argmax(z, t):
    rows = np.arange(z.shape[0])
    return np.sum(z[rows, np.argmax(t, axis=1)] ** 2) + z[0, np.argmax(z[0])]


@corpus((3, 4))
def power_with_array_exponent(x):
    return np.sum(np.power(2.0, x))


@corpus((3, 4))
def layer_norm(x):
    mu = np.mean(x, axis=1, keepdims=True)
    var = np.var(x, axis=1, keepdims=True)
    return np.sum((x - mu) / np.sqrt(var + 1e-5) * np.arange(12.0).reshape(3, 4))


@corpus((3, 2), (4, 2), (4, 2), argnums=(0, 1, 2))
def attention(q, k, v):
    s = q @ k.T / np.sqrt(q.shape[1])
    a = np.exp(s - s.max(axis=1, keepdims=True))
    a = a / a.sum(axis=1, keepdims=True)
    return np.sum((a @ v) ** 2)


@corpus((2, 3, 4), (2, 4, 5), (3, 3), argnums=(0, 1, 2))
def einsum_batched_trace_ellipsis(a, b, c):
    return np.sum(np.einsum("bij,bjk->bik", a, b) ** 2) + np.einsum("ii->", c) + np.sum(np.einsum("ii->i", c) ** 2) \
        + np.sum(np.einsum("...ij->...ji", a) * np.arange(24.0).reshape(2, 4, 3))


@corpus((2, 3, 4), (3,), argnums=(0, 1))
def moveaxis_broadcast_to(x, v):
    return np.sum(np.moveaxis(x, 0, -1) * np.arange(24.0).reshape(3, 4, 2)) \
        + np.sum(np.broadcast_to(v, (4, 3)) * np.arange(12.0).reshape(4, 3))


@corpus((3, 4))
def reverse_and_flat_cumsum(x):
    return np.sum(np.cumsum(x[:, ::-1], axis=1)[:, ::-1] ** 2) + np.sum(np.cumsum(x) ** 2)


@corpus((3, 4))
def sort_axis0_repeat_roll(x):
    return np.sum(np.sort(x, axis=0) * np.arange(12.0).reshape(3, 4)) + np.sum(np.repeat(x, np.array([1, 2, 3]), axis=0) ** 2) \
        + np.sum(np.roll(x, (1, 2), axis=(0, 1)) * np.arange(12.0).reshape(3, 4))


@corpus((2, 3), (2, 3), argnums=(0, 1))
def concatenate_flat_and_stack_last(x, y):
    return np.sum(np.concatenate([x, y], axis=None) * np.arange(12.0)) \
        + np.sum(np.stack([x, y ** 2], axis=-1) * np.arange(12.0).reshape(2, 3, 2))


@corpus((6, 2))
def split_at_indices(x):
    a, b, c = np.split(x, [1, 4])
    return np.sum(a) + np.sum(b ** 2) + np.sum(c ** 3)


@corpus((3, 5))
def diff_twice(x):
    return np.sum(np.diff(x, n=2, axis=1) ** 2)


@corpus((3, 4), (3, 4), argnums=(0, 1))
def maximum_minimum_of_two_arrays(x, y):
    return np.sum(np.maximum(x, y) * np.minimum(x, y ** 2))


@corpus((3, 4))
def rounding_is_flat(x):
    return np.sum(np.round(x) * x + np.floor(x) + np.ceil(x) * x)


@corpus((3, 4))
def ndarray_methods(x):
    return x.var() + x.std(axis=0).sum() + x.prod() + x.cumsum(axis=0).sum() + x.ravel().dot(np.arange(12.0)) \
        + np.sum(x.clip(-0.5, 0.5) ** 2) + np.sum(x.swapaxes(0, 1) * np.arange(12.0).reshape(4, 3)) \
        + x.max() + np.sum(x.min(axis=1) ** 2)


@corpus((3, 4))
def astype_float64(x):
    return np.sum(x.astype(np.float64) ** 2)


@corpus((3, 4))
def max_equality_mask(x):
    return np.sum(x * (x == np.max(x, axis=1, keepdims=True)))


@corpus((3, 4))
def spectral_norm(x):
    return np.linalg.norm(x, 2)


@corpus((3, 4))
def pad_edge_mode(x):
    return np.sum(np.pad(x, ((1, 0), (0, 2)), mode="edge") * np.arange(24.0).reshape(4, 6))


@corpus((3, 4))
def array_of_nodes(x):
    return np.sum(np.array([np.sum(x), np.max(x)]) ** 2)


@corpus((3, 4))
def zeros_like_start(x):
    total = np.zeros_like(x)
    for k in range(3):
        total = total + x ** k
    return np.sum(total)


# ====================================================================== the test
def load_reference(path: str) -> Dict[str, np.ndarray]:
    """The arrays of the reference file by key (it stores one vector and a JSON index of offsets and shapes)."""
    with np.load(path) as data:
        values, index = data["values"], json.loads(str(data["index"]))
    return {k: values[o:o + int(np.prod(shape))].reshape(shape) for k, (o, shape) in index.items()}


try:  # a missing or outdated file fails the tests that need it, not the import (the script imports this module)
    DATA = load_reference(REFERENCE)
except (OSError, KeyError, ValueError):
    DATA = {}


def stored(name: str) -> Tuple[Tuple[np.ndarray, ...], Tuple[np.ndarray, ...]]:
    """The stored inputs and JAX gradients of one corpus function."""
    case = CORPUS[name]
    nargs = len(inspect.signature(case.f).parameters)
    nums = (case.argnums,) if isinstance(case.argnums, int) else case.argnums
    keys = [f"corpus/{name}/x{i}" for i in range(nargs)] + [f"corpus/{name}/grad{k}" for k in nums]
    missing = [k for k in keys if k not in DATA]
    if not DATA:
        pytest.fail(f"{REFERENCE} is missing or unreadable: run python benchmarks/jax_references.py (needs jax)")
    if missing:
        pytest.fail(f"{name}: no stored reference ({missing[0]}); rerun python benchmarks/jax_references.py")
    return (tuple(DATA[f"corpus/{name}/x{i}"] for i in range(nargs)),
            tuple(DATA[f"corpus/{name}/grad{k}"] for k in nums))


_OPERATORS = {ast.Add: "numpy.add", ast.Sub: "numpy.subtract", ast.Mult: "numpy.multiply", ast.Div: "numpy.divide",
              ast.Pow: "numpy.power", ast.MatMult: "numpy.matmul", ast.USub: "numpy.negative"}


def numpy_names(f: Callable[..., Any]) -> set:
    """The numpy functions and ndarray methods the body of f calls, as a TypeError would name them.

    ``np.linalg.inv(...)`` gives ``numpy.linalg.inv``, ``x.dot(...)`` gives
    ``ndarray.dot``, ``x[0]`` gives ``__getitem__``, ``x ** y`` gives ``numpy.power``
    (the decorator is not read).
    """
    (fdef,) = ast.parse(textwrap.dedent(inspect.getsource(f))).body
    names = set()

    def chain(node: ast.AST) -> Optional[str]:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id == "np" and parts:
            return "numpy." + ".".join(reversed(parts))
        return None

    for stmt in fdef.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Attribute):
                full = chain(node)
                names.add(full if full is not None else f"ndarray.{node.attr}")
            elif isinstance(node, ast.Subscript):
                names.add("__getitem__")
            elif isinstance(node, (ast.BinOp, ast.UnaryOp)) and type(node.op) in _OPERATORS:
                names.add(_OPERATORS[type(node.op)])
    return names


def names_one_of(message: str, used: set) -> bool:
    """The message names a function of ``used``: qualified anywhere, or an op refusing in its own name ("average: ...")."""
    if any(n in message for n in used):
        return True
    if {"numpy.array", "numpy.asarray"} & used and "cannot become a numpy array" in message:
        return True  # np.array([node, ...]) is refused by the node's __array__
    head = message.split(":", 1)[0].strip()
    return any(n.rsplit(".", 1)[-1] == head for n in used if n.startswith("numpy."))


def run(name: str) -> Tuple[str, str]:
    """Differentiate one corpus function: ("match", "") or ("typeerror", message); fails on anything else."""
    case = CORPUS[name]
    args, refs = stored(name)
    for a, s in zip(args, case.shapes):
        assert a.shape == s, f"{name}: stored input of shape {a.shape}, the corpus says {s}; regenerate the npz"
    try:
        g = jx.grad(case.f, argnums=case.argnums)(*args)
    except TypeError as exc:
        message = str(exc)
        used = numpy_names(case.f)
        assert names_one_of(message, used), (
            f"{name}: TypeError that names none of the numpy functions the body uses ({sorted(used)}): {message}")
        return "typeerror", message
    grads = (g,) if isinstance(case.argnums, int) else g
    assert isinstance(grads, tuple) and len(grads) == len(refs), f"{name}: got {type(g).__name__} {g!r}"
    for k, (got, ref) in enumerate(zip(grads, refs)):
        assert isinstance(got, np.ndarray), f"{name}: gradient {k} is {type(got).__name__}, not an ndarray"
        assert got.shape == ref.shape and got.dtype == np.float64, (
            f"{name}: gradient {k} has shape {got.shape} {got.dtype}, JAX's {ref.shape} float64")
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name}: gradient {k} differs from jax.grad's")
    return "match", ""


# Functions on which jacobians breaks the rule today (a wrong gradient, or an error that is not a TypeError
# naming the function). They stay in the corpus, marked as expected failures, so they pass the moment the
# bug is fixed; they are left out of the counts below.
KNOWN_BUGS = {



    "spectral_norm": "np.linalg.norm(x, 2) of a matrix raises ValueError, not a TypeError",
    "pad_edge_mode": "np.pad(..., mode='edge') raises ValueError, not a TypeError",
}


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30
    assert set(KNOWN_BUGS) <= set(CORPUS)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_BUGS[n], strict=False)) if n in KNOWN_BUGS else n
    for n in sorted(CORPUS)])
def test_gradient_matches_jax_or_raises_a_typeerror_naming_the_function(name):
    run(name)


def test_summary():
    outcomes = {name: run(name) for name in sorted(CORPUS) if name not in KNOWN_BUGS}
    matches = sorted(n for n, (o, _) in outcomes.items() if o == "match")
    raises = sorted(n for n, (o, _) in outcomes.items() if o == "typeerror")
    print(f"\nnumpy corpus: {len(CORPUS)} functions: {len(matches)} match jax.grad, {len(raises)} raise a "
          f"TypeError naming the function, {len(KNOWN_BUGS)} known bugs")
    for n in raises:
        print(f"  raises  {n}: {outcomes[n][1][:100]}")
    for n, why in KNOWN_BUGS.items():
        print(f"  bug     {n}: {why}")
    assert len(matches) + len(raises) == len(CORPUS) - len(KNOWN_BUGS)
    assert len(matches) >= MIN_MATCHES, f"only {len(matches)} of {len(CORPUS)} functions match jax.grad"


def test_every_reference_in_the_file_belongs_to_a_corpus_function():
    names = {k.split("/")[1] for k in DATA if k.startswith("corpus/")}
    assert names == set(CORPUS), f"stale or missing references: {sorted(names ^ set(CORPUS))}"


def test_the_name_check_reads_the_body():
    assert {"numpy.linalg.inv", "numpy.sum", "numpy.eye", "numpy.add"} <= numpy_names(linalg_inv)
    assert {"ndarray.T", "ndarray.dot", "numpy.tanh"} <= numpy_names(transpose_dot)
    assert "__getitem__" in numpy_names(index_and_slice) and "numpy.power" in numpy_names(index_and_slice)
    assert not any("standard_normal" in n for n in numpy_names(transpose_dot))  # the decorator is not read
    assert names_one_of("numpy.fliplr is not differentiable", {"numpy.fliplr"})
    assert names_one_of("average: weights are constants", {"numpy.average"})
    assert not names_one_of("'Node' object is not subscriptable", {"numpy.sum"})
