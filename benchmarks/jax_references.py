"""Regenerate tests/data/numpy_corpus_reference.npz: JAX's gradients of the numpy corpus and of the transforms MLP.

    python -m pip install jax jaxlib      # only here; the tests never import jax
    python benchmarks/jax_references.py

The functions are the ones in tests/test_numpy_corpus.py (``CORPUS``) and
tests/test_transforms.py (``loss``). Each is run a second time with its
module's global ``np`` bound to ``jax.numpy``: the same function body, the same
code object, so the reference cannot drift from the function tested. JAX runs
in float64 (``jax_enable_x64``). Before differentiating, the script checks
that the jax.numpy run gives numpy's value, so a body that means something
else under jax.numpy is caught here rather than in the tests.

Inputs are drawn from a generator seeded by the function's name and stored
beside the gradients, so the tests read them instead of drawing them again.
The file holds one float64 vector ``values`` and a JSON ``index`` giving each
key's offset and shape (``load_reference`` in the tests unpacks it); the keys:

    corpus/<name>/x<i>       the i-th argument
    corpus/<name>/grad<k>    jax.grad w.r.t. argument k (one entry per argnum)
    transforms/mlp/...       the MLP's parameters, data and gradient (keys ``params/W1``, ``grad/W1``, ...)
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
import zlib
from typing import Any, Callable, Dict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "numpy_corpus_reference.npz")


def load(relpath: str) -> types.ModuleType:
    """Import a test module by path (tests/ is not a package)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    sys.path.insert(0, ROOT)
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(relpath))[0],
                                                  os.path.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def with_jax_numpy(module: types.ModuleType, jnp: Any) -> Dict[str, Callable[..., Any]]:
    """Every function defined in ``module``, rebuilt from its code object with ``np`` meaning ``jax.numpy``."""
    env = dict(vars(module))
    env["np"] = jnp
    rebuilt = {}
    for name, f in vars(module).items():
        if isinstance(f, types.FunctionType) and f.__module__ == module.__name__:
            rebuilt[name] = types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)
    env.update(rebuilt)
    return rebuilt


def save(arrays: Dict[str, np.ndarray]) -> None:
    """One float64 vector and a JSON index {key: [offset, shape]}: a few hundred small arrays in ~30 KB."""
    index, offset = {}, 0
    for key, a in arrays.items():
        index[key] = [offset, list(np.shape(a))]
        offset += int(np.size(a))
    values = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays.values()])
    np.savez_compressed(OUT, values=values, index=np.array(json.dumps(index, separators=(",", ":"))))


def seed(name: str) -> int:
    return zlib.crc32(name.encode())


def main() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    out: Dict[str, np.ndarray] = {}

    # ---------------------------------------------------------------- the corpus
    corpus = load("tests/test_numpy_corpus.py")
    jfuns = with_jax_numpy(corpus, jnp)
    for name, case in corpus.CORPUS.items():
        args = case.inputs(np.random.default_rng(seed(name)))
        jf = jfuns[name]
        value_np = np.asarray(case.f(*args), dtype=np.float64)
        value_jax = np.asarray(jf(*[jnp.asarray(a) for a in args]))
        if not np.allclose(value_np, value_jax, rtol=1e-12, atol=1e-12):
            raise SystemExit(f"{name}: numpy gives {value_np}, the same body with jax.numpy {value_jax}")
        nums = (case.argnums,) if isinstance(case.argnums, int) else tuple(case.argnums)
        grads = jax.grad(jf, argnums=nums)(*[jnp.asarray(a) for a in args])
        for i, a in enumerate(args):
            out[f"corpus/{name}/x{i}"] = a
        for k, g in zip(nums, grads):
            out[f"corpus/{name}/grad{k}"] = np.asarray(g, dtype=np.float64)

    # ---------------------------------------------------------------- the transforms MLP
    tr = load("tests/test_transforms.py")
    params, X, y = tr.mlp_inputs(np.random.default_rng(seed("transforms/mlp")))
    jloss = with_jax_numpy(tr, jnp)["loss"]
    jparams = {k: jnp.asarray(v) for k, v in params.items()}
    value_jax = float(jloss(jparams, jnp.asarray(X), jnp.asarray(y)))
    if not np.isclose(float(tr.loss(params, X, y)), value_jax, rtol=1e-12):
        raise SystemExit("loss: numpy and jax.numpy disagree on the value")
    g = jax.grad(jloss)(jparams, jnp.asarray(X), jnp.asarray(y))
    out["transforms/mlp/X"], out["transforms/mlp/y"] = X, y
    out["transforms/mlp/value"] = np.asarray(value_jax)
    for k in params:
        out[f"transforms/mlp/params/{k}"] = params[k]
        out[f"transforms/mlp/grad/{k}"] = np.asarray(g[k], dtype=np.float64)

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save(out)
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(corpus.CORPUS)} corpus functions + the MLP, "
          f"{len(out)} arrays, {os.path.getsize(OUT) / 1024:.1f} KB (jax {jax.__version__})")


if __name__ == "__main__":
    main()
