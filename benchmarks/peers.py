"""The same two computations in JAX, PyTorch and HIPS autograd (each optional).

Seed 1: ``Y = (X Xᵀ) X`` and ``l = ‖Y‖_F = sqrt(Σ Y²)``, float64 everywhere
(JAX runs with ``jax_enable_x64``). A route is a zero-argument callable that
runs the whole computation from the input array (forward included) and
returns the result; ``to_numpy`` turns that result into an ndarray. When a
package is missing the route has ``call=None`` and a note saying why.

>>> import numpy as np
>>> routes = gradient_routes(np.eye(2), enabled=False)
>>> sorted(routes)[:2], routes["jax.grad (jit)"].call is None
(['autograd.grad', 'jax.grad (jit)'], True)
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np

__all__ = ["Route", "jacobian_routes", "gradient_routes", "runtime_facts"]

MISSING = "{pkg} is not installed (python -m pip install '.[peers]'; torch: pip install torch==2.13.0 is the CPU build)"


@dataclass
class Route:
    """One way to compute a result: ``call()`` runs it, ``to_numpy`` converts what it returns."""

    name: str
    call: Optional[Callable[[], Any]]
    to_numpy: Callable[[Any], np.ndarray] = np.asarray
    note: str = ""


def _have(pkg: str) -> bool:
    return importlib.util.find_spec(pkg) is not None


def _skip(name: str, note: str) -> Route:
    return Route(name, None, note=note)


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jax, jnp


def runtime_facts(enabled: bool = True) -> Dict[str, object]:
    """Thread counts and devices the peers run with (only for installed peers)."""
    out: Dict[str, object] = {}
    if not enabled:
        return out
    if _have("torch"):
        import torch

        out["torch_threads"] = torch.get_num_threads()
    if _have("jax"):
        jax, _ = _jax()
        out["jax_devices"] = [str(d) for d in jax.devices()]
    return out


def jacobian_routes(Xv: np.ndarray, enabled: bool = True) -> Dict[str, Route]:
    """Full dY/dX of ``Y = (X Xᵀ) X`` in each peer: reverse and forward mode."""
    names = ["jax.jacrev (jit)", "jax.jacfwd (jit)", "torch.func.jacrev", "torch.func.jacfwd", "autograd.jacobian"]
    if not enabled:
        return {n: _skip(n, "peers disabled (--no-peers)") for n in names}
    routes: Dict[str, Route] = {}
    if _have("jax"):
        jax, jnp = _jax()
        xj = jnp.asarray(Xv)

        def f_jax(X):
            return (X @ X.T) @ X

        for name, mode in zip(names[:2], (jax.jacrev, jax.jacfwd)):
            fn = jax.jit(mode(f_jax))
            routes[name] = Route(name, lambda fn=fn: fn(xj).block_until_ready())
    else:
        routes.update({n: _skip(n, MISSING.format(pkg="jax")) for n in names[:2]})
    if _have("torch"):
        import torch

        xt = torch.from_numpy(np.array(Xv, dtype=np.float64))

        def f_torch(X):
            return (X @ X.T) @ X

        for name, mode in zip(names[2:4], (torch.func.jacrev, torch.func.jacfwd)):
            fn = mode(f_torch)
            routes[name] = Route(name, lambda fn=fn: fn(xt), lambda r: r.detach().numpy())
    else:
        routes.update({n: _skip(n, MISSING.format(pkg="torch")) for n in names[2:4]})
    if _have("autograd"):
        import autograd
        import autograd.numpy as anp

        def f_ag(X):
            return anp.dot(anp.dot(X, X.T), X)

        jac = autograd.jacobian(f_ag)
        routes[names[4]] = Route(names[4], lambda: jac(Xv))
    else:
        routes[names[4]] = _skip(names[4], MISSING.format(pkg="autograd"))
    return routes


def gradient_routes(Xv: np.ndarray, enabled: bool = True) -> Dict[str, Route]:
    """dl/dX of ``l = sqrt(Σ ((X Xᵀ) X)²)`` in each peer (reverse mode, the usual gradient)."""
    names = ["jax.grad (jit)", "torch.func.grad", "autograd.grad"]
    if not enabled:
        return {n: _skip(n, "peers disabled (--no-peers)") for n in names}
    routes: Dict[str, Route] = {}
    if _have("jax"):
        jax, jnp = _jax()
        xj = jnp.asarray(Xv)

        def l_jax(X):
            Y = (X @ X.T) @ X
            return jnp.sqrt(jnp.sum(Y * Y))

        g = jax.jit(jax.grad(l_jax))
        routes[names[0]] = Route(names[0], lambda: g(xj).block_until_ready())
    else:
        routes[names[0]] = _skip(names[0], MISSING.format(pkg="jax"))
    if _have("torch"):
        import torch

        xt = torch.from_numpy(np.array(Xv, dtype=np.float64))

        def l_torch(X):
            Y = (X @ X.T) @ X
            return torch.sqrt(torch.sum(Y * Y))

        gt = torch.func.grad(l_torch)
        routes[names[1]] = Route(names[1], lambda: gt(xt), lambda r: r.detach().numpy())
    else:
        routes[names[1]] = _skip(names[1], MISSING.format(pkg="torch"))
    if _have("autograd"):
        import autograd
        import autograd.numpy as anp

        def l_ag(X):
            Y = anp.dot(anp.dot(X, X.T), X)
            return anp.sqrt(anp.sum(Y * Y))

        ga = autograd.grad(l_ag)
        routes[names[2]] = Route(names[2], lambda: ga(Xv))
    else:
        routes[names[2]] = _skip(names[2], MISSING.format(pkg="autograd"))
    return routes
