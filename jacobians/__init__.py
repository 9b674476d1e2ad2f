"""jacobians — the tensors of backpropagation, made real.

Every op builds its full Jacobian as an ndarray of shape ``out.shape + in.shape``;
the chain rule is an einsum contraction planned by opt_einsum; hand-written VJPs
and central differences check it.

>>> import numpy as np, jacobians as jx
>>> X = jx.var(np.random.default_rng(0).standard_normal((4, 3)), name="X")
>>> W = X @ X.T; Y = W @ X; l = jx.fro(Y)
>>> jx.jacobian(Y, W).shape, jx.grad(l, X).shape
((4, 3, 4, 4), (4, 3))
"""
from .api import METHODS
from .transforms import grad, hessian, jacobian, jvp, value_and_grad, vjp
from .second_order import gradient_graph, hvp
from .jit import jit
from .chain_rule import ORDERS, Plan, plan
from .checking import GradReport, KinkWarning, assert_grad, check_grad
from .compare import Comparison, compare
from .derive import derive  # function imports after their submodules: jx.derive is the function
from .explain import explain
from .memory import JacobianTooLarge, check_plan, get_memory_limit, memory_limit, set_memory_limit
from .node import AmbiguousBroadcastWarning, Node, NonFiniteWarning, const, var
from .ops import *  # noqa: F401,F403  every jx.<op>
from .ops import __all__ as _ops_all
from .registry import Op, get_op, register, registered_ops

__version__ = "0.1.0"

# Public names whose modules load on first use (matplotlib stays optional).
_LAZY = {
    "plot_jacobian": "jacobians.plot",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jacobians' has no attribute {name!r}")


__all__ = [
    "Node", "var", "const", "jacobian", "grad", "value_and_grad", "vjp", "jvp", "hessian", "hvp", "gradient_graph", "jit",
    "check_grad", "assert_grad", "GradReport", "KinkWarning", "plan", "Plan", "compare", "Comparison", "explain", "derive",
    "METHODS", "ORDERS", "JacobianTooLarge", "set_memory_limit", "get_memory_limit", "memory_limit", "check_plan",
    "NonFiniteWarning", "AmbiguousBroadcastWarning",
    "Op", "register", "get_op", "registered_ops", *_ops_all,
]
