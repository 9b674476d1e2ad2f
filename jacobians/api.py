"""``jacobian`` and ``grad`` of nodes: one entry point, every route.

* ``method="auto"`` (default) — the fastest exact route: ``"factored"`` for a
  Jacobian (it falls back to the dense route where it cannot apply, and
  :func:`jacobians.factored.plan_factored` says why), ``"vjp"`` for a gradient;
* ``method="explicit"`` — the dense teaching route: local Jacobians contracted
  by the planned einsum of :mod:`jacobians.chain_rule`;
* ``method="vjp"`` — only the hand-written VJPs (:mod:`jacobians.vjp_route`);
* ``method="numeric"`` — central differences in float64 (:mod:`jacobians.numeric`);
* ``method="factored"`` — the ops' factored Jacobians (deltas and small arrays),
  deltas eliminated, the rest contracted by opt_einsum (:mod:`jacobians.factored`);
  it falls back to the explicit route when the expansion would blow up.

Conventions: the Jacobian has shape ``y.shape + x.shape`` (as in JAX, PyTorch
and autograd). ``x`` may be an intermediate node: the result is the partial
derivative with x treated as an independent input, every path that does not
pass through x held fixed. If y does not depend on x the result is zeros of
the right shape.
"""
from __future__ import annotations

from typing import Any, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

from . import memory
from .chain_rule import ORDERS, Order, plan
from .factored import jacobian_factored
from .graph import between
from .node import Node, outside_trace
from .numeric import jacobian_numeric
from .vjp_route import backward, jacobian_vjp

__all__ = ["jacobian", "grad", "METHODS", "Method", "check_call", "held_nodes", "working"]

Method = Literal["auto", "explicit", "vjp", "numeric", "factored"]
METHODS: Tuple[Method, ...] = ("auto", "explicit", "vjp", "numeric", "factored")
Wrt = Union[Node, Sequence[Node]]


def check_call(fn: str, y: object, wrt: object, method: str, order: str) -> List[Node]:
    outside_trace(f"jx.{fn}(node, wrt)")
    if method not in METHODS:
        raise ValueError(f"{fn}: method={method!r} is not one of {', '.join(METHODS)}")
    if order not in ORDERS:
        raise ValueError(f"{fn}: order={order!r} is not one of {', '.join(ORDERS)}")
    if not isinstance(y, Node):
        raise TypeError(f"{fn}: the first argument must be a node made with jx ops, got {type(y).__name__}")
    xs = [wrt] if isinstance(wrt, Node) else list(wrt) if isinstance(wrt, (list, tuple)) else None
    if not xs or not all(isinstance(x, Node) for x in xs):
        raise TypeError(
            f"{fn}: wrt must be a node or a list of nodes (e.g. the jx.var you built {y.name} from), "
            f"got {type(wrt).__name__}"
        )
    for x in xs:
        if y.ndim + x.ndim > 64 and not (fn == "grad" and y.size == 1):
            raise ValueError(f"{fn}: the Jacobian d{y.name}/d{x.name} would have {y.ndim} + {x.ndim} axes; numpy "
                             "arrays have at most 64. Reduce y first (jx.sum) and use jx.grad, or pull one "
                             "cotangent back with jx.vjp")
    return xs


def held_nodes(fn: str, hold: object) -> Tuple[Node, ...]:
    held = (hold,) if isinstance(hold, Node) else tuple(hold)  # type: ignore[arg-type]
    if not all(isinstance(h, Node) for h in held):
        raise TypeError(f"{fn}: hold must be a node or a list of nodes to treat as constants")
    return held


def working(fn: str, y: Node, x: Node, method: str, hold: Sequence[Node], nodes: Optional[List[Node]] = None) -> Any:
    """Set aside the call's working set (memory.reserve): what a route holds per node between x and y —
    a cotangent; on the factored and explicit routes also the factor its form computes (f'(x)); two
    float64 values on the numeric route — so the limit bounds the call. ``nodes``: between(y, x, hold)."""
    nodes = between(y, x, hold) if nodes is None else nodes
    copies = 1 if method == "vjp" else 2  # a cotangent; or that and a factor (f'(x)) or two float64 values
    itemsize = 8 if method == "numeric" else None
    return memory.reserve(memory.working_set(nodes, copies, itemsize),
                          f"{fn} d{y.name}/d{x.name} ({method} route): the values, cotangents and temporaries "
                          f"of its {len(nodes)} nodes")


def _one_jacobian(y: Node, x: Node, method: Method, order: Order, hold: Sequence[Node]) -> np.ndarray:
    if method == "auto":
        method = "factored"
    with working("jacobian", y, x, method, hold):
        return _route(y, x, method, order, hold)


def _route(y: Node, x: Node, method: Method, order: Order, hold: Sequence[Node]) -> np.ndarray:
    if method == "explicit":
        return plan(y, x, order, hold).execute()
    if method == "vjp":
        return jacobian_vjp(y, x, hold)
    if method == "factored":
        return jacobian_factored(y, x, order, hold)
    return jacobian_numeric(y, x, hold)


def jacobian(y: Node, wrt: Wrt, method: Method = "auto", order: Order = "optimal",
             hold: Sequence[Node] = (), *, chunks: Optional[Any] = None) -> Union[np.ndarray, List[np.ndarray], Any]:
    """The full Jacobian dy/dx, an ndarray of shape ``y.shape + x.shape``.

    ``wrt`` is a node or a list of nodes (then a list of Jacobians). ``order``
    is the contraction order of the explicit route (see :mod:`jacobians.chain_rule`);
    the factored route plans its own and uses ``order`` only when it falls back.
    ``hold`` lists nodes treated as constants: the partial derivative with
    every path through them cut.

    ``chunks`` (dask's notation: a byte size such as ``"256MiB"``, ``"auto"``,
    or per-axis sizes) returns a lazy ``dask.array.Array`` instead, each block
    computed on its own from the factored products, for Jacobians larger than
    memory (:mod:`jacobians.scale`; needs ``pip install "jacobians[scale]"``).

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.random.default_rng(0).standard_normal((4, 3)), name="X")
    >>> W = X @ X.T
    >>> Y = W @ X
    >>> jx.jacobian(Y, W).shape          # rank 4: (4, 3) + (4, 4)
    (4, 3, 4, 4)
    >>> J = jx.jacobian(Y, X)            # total: through W and directly
    >>> np.allclose(J, jx.jacobian(Y, X, method="numeric"))
    True
    >>> np.allclose(J, jx.jacobian(Y, X, method="factored"))   # deltas and small arrays only
    True
    """
    xs = check_call("jacobian", y, wrt, method, order)
    if chunks is not None:
        from .scale import jacobian_chunked  # dask is imported only here: an optional extra
        out = [jacobian_chunked(y, x, chunks, method, order, held_nodes("jacobian", hold)) for x in xs]
        return out[0] if isinstance(wrt, Node) else out
    out = [_one_jacobian(y, x, method, order, held_nodes("jacobian", hold)) for x in xs]
    return out[0] if isinstance(wrt, Node) else out


def grad(l: Node, wrt: Wrt, method: Method = "auto", order: Order = "optimal",
         hold: Sequence[Node] = ()) -> Union[np.ndarray, List[np.ndarray]]:
    """The gradient dl/dx of a scalar node, an ndarray of shape ``x.shape``.

    ``method``, ``order`` and ``hold`` as in :func:`jacobian`.

    >>> import numpy as np, jacobians as jx
    >>> W = jx.var(np.eye(2), name="W"); X = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> Y = W @ X
    >>> G = jx.grad(jx.sum(Y * Y), W)
    >>> np.allclose(G, 2 * Y.value @ X.T)     # the Frobenius-calculus shortcut
    True
    >>> np.allclose(jx.grad(jx.sum(Y * Y), W, method="factored"), G)   # the same shortcut, derived
    True
    """
    xs = check_call("grad", l, wrt, method, order)
    if l.size != 1:
        raise ValueError(
            f"grad: {l.name} has shape {l.shape}, not a scalar; use jx.jacobian({l.name}, x) for the full "
            "Jacobian, or reduce it first (jx.sum, jx.mean, jx.fro)"
        )
    hold = held_nodes("grad", hold)
    out = []
    for x in xs:
        route = "vjp" if method == "auto" else method
        nodes = between(l, x, hold)
        with working("grad", l, x, route, hold, nodes):
            if route == "vjp":
                g = backward(l, x, np.ones(l.shape, dtype=l.dtype), hold, nodes)
            else:
                g = _route(l, x, route, order, hold)
        out.append(np.asarray(g.reshape(x.shape), order="C"))
    return out[0] if isinstance(wrt, Node) else out
