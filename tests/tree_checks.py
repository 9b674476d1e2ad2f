"""Shared checks for the jit reviews: pytrees compared leaf by leaf with JAX's, and NonFiniteWarnings caught."""
import warnings

import numpy as np

import jacobians as jx


def jax_x64():
    """(jax, jax.numpy) with float64 on, for the tests that take JAX as their reference; they skip where it
    is not installed (CI installs the core only)."""
    import pytest

    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax, jax.numpy


def close_trees(got, want, rtol=1e-9, atol=1e-10):
    """Same pytree structure (JAX's tree_util) and, leaf by leaf, the same shapes and values."""
    import pytest

    jax = pytest.importorskip("jax")  # JAX's pytree utilities: the reference structure
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def nonfinite_warnings(fn):
    """fn()'s result and the NonFiniteWarnings it raised (every one recorded)."""
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in ws if issubclass(w.category, jx.NonFiniteWarning)]
