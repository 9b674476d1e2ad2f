"""Function transforms with JAX's conventions: ``grad(f)``, ``value_and_grad``, ``jacobian(f)``, ``vjp``, ``jvp``.

A transform runs ``f`` on vars made from its arguments and differentiates the
graph that running it built. So ``f`` is ordinary Python: written with
``import numpy as np`` (numpy's protocols dispatch to the ops), with
value-dependent control flow (``if loss > 1:`` on ``.item()``, loops whose length
depends on the data) — an advantage over tracing compilers, which see one
abstract trace. Arguments and outputs may be pytrees (nested dicts, lists,
tuples of arrays, :mod:`jacobians.pytree`); results mirror JAX's structure: the
gradient w.r.t. a dict is a dict, the Jacobian of a tuple output w.r.t. tuple
``argnums`` is a tuple (over outputs) of tuples (over arguments), each leaf of
shape ``out.shape + in.shape``. Derivatives come back as numpy arrays.

``jx.grad`` and ``jx.jacobian`` also take nodes, as before: a callable first
argument means a transform.

>>> import numpy as np, jacobians as jx
>>> def loss(params, X):
...     return np.mean(np.tanh(X @ params["W"] + params["b"]) ** 2)
>>> params = {"W": np.ones((3, 2)), "b": np.zeros(2)}
>>> g = jx.grad(loss)(params, np.eye(3))
>>> sorted(g), g["W"].shape
(['W', 'b'], (3, 2))

A gradient function called on *nodes* (``jx.grad(f)(x)`` with x a node, as
inside :func:`jacobians.jit.jit` or another transform) returns the gradient as
a node, built from the ops' forms (:func:`jacobians.second_order.gradient_graph`),
so transforms compose as JAX's do: ``jx.grad(jx.grad(f))`` is the second
derivative of a scalar function, and ``jx.jit(jx.grad(f))`` replays it.

>>> d2 = jx.grad(jx.grad(lambda x: x ** 3))
>>> float(d2(2.0))                         # 6 x
12.0
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

import numpy as np

from . import api
from .chain_rule import Order
from .elimination import derived_jvp
from .graph import ancestors, reaches
from .node import Node, active_vars, const, differentiating, is_tracing, outside_trace, var
from .pytree import TreeDef, flatten, unflatten
from .second_order import cast, gradient_graph, hessian_graph, jacobian_graph
from .sweep import forward_sweep
from .vjp_route import backward

__all__ = ["grad", "value_and_grad", "jacobian", "hessian", "vjp", "jvp", "run_on_vars", "push_tangents", "has_nodes"]

Argnums = Union[int, Sequence[int]]


# ------------------------------------------------------------------ running f on vars
def _argnums(argnums: Argnums, nargs: int, who: str) -> Tuple[Tuple[int, ...], bool]:
    single = np.ndim(argnums) == 0
    nums = (argnums,) if single else tuple(argnums)
    for k in nums:
        if not isinstance(k, (int, np.integer)) or not -nargs <= k < nargs:
            raise ValueError(f"{who}: argnums={argnums!r} does not name a positional argument of a call with "
                             f"{nargs} argument(s)")
    return tuple(int(k) % nargs for k in nums), single


def _arg_names(f: Callable[..., Any], n: int) -> List[str]:
    try:
        params = [p.name for p in inspect.signature(f).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[k] if k < len(params) else f"args[{k}]" for k in range(n)]


def _vars(tree: Any, name: str, who: str, nodes: bool) -> Tuple[List[Node], TreeDef, Any]:
    leaves, d = flatten(tree)
    xs = []
    for path, leaf in zip(d.paths, leaves):
        if isinstance(leaf, Node):
            if not nodes:
                raise TypeError(f"{who}: argument {name}{path} is a node; pass arrays to a transformed function "
                                "(it makes its own vars), or use jx.grad(node, wrt) on nodes; only jx.grad, "
                                "jx.value_and_grad, jx.jacobian and jx.hessian return their result as nodes (and so "
                                "run inside jx.jit)")
            # a node of its own per argument: the gradient w.r.t. this argument only, as a node of the leaf
            xs.append(_reshaped(leaf, leaf.shape).named(f"{name}{path}"))
        else:
            xs.append(var(leaf, name=f"{name}{path}"))
    return xs, d, unflatten(d, xs)


def _reshaped(x: Node, shape: Tuple[int, ...]) -> Node:
    """The node ``reshape(x, shape)``: to x's own shape, a node of its own per argument (an identity op)."""
    from .ops import reshape  # the ops layer sits above this module's imports

    return reshape(x, shape)


def _entries(y: Node) -> List[Node]:
    """The scalar entries of y, as nodes (a vector-valued f's Hessian is taken entry by entry)."""
    flat = _reshaped(y, (y.size,))
    return [flat[k] for k in range(y.size)]


def _stacked(blocks: List[Node], shape: Tuple[int, ...]) -> Node:
    """Blocks (one per entry of an output of ``shape``) as one node of shape ``shape + block.shape``."""
    from .ops import stack  # the ops layer sits above this module's imports

    one = blocks[0] if len(blocks) == 1 else stack(blocks)
    return _reshaped(one, shape + blocks[0].shape)


def has_nodes(args: Any) -> bool:
    """Whether any leaf of the pytree ``args`` is a node (a transform called inside a trace or another transform)."""
    return any(isinstance(leaf, Node) for leaf in flatten(args)[0])


def run_on_vars(f: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any], argnums: Argnums, has_aux: bool,
         who: str, nodes: bool = False):
    """Run f with vars in place of the differentiated arguments: (out, aux, [(vars, treedef) per argnum], single).

    With ``nodes``, a differentiated leaf that is already a node enters through a
    node of its own (an identity op on it), and aux keeps its nodes.
    """
    if not callable(f):
        raise TypeError(f"{who}: expected a function, got {type(f).__name__}")
    nums, single = _argnums(argnums, len(args), who)
    names = _arg_names(f, len(args))
    new_args = list(args)
    inputs = []
    made: Dict[int, Tuple[List[Node], TreeDef]] = {}
    for k in nums:  # an argument named twice (argnums=(0, 0)) gets one set of vars, so both gradients are its own
        if k not in made:
            xs, d, tree = _vars(args[k], names[k], who, nodes)
            new_args[k] = tree
            made[k] = (xs, d)
        inputs.append(made[k])
    with differentiating([x for xs, _ in made.values() for x in xs]):
        out = f(*new_args, **kwargs)
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"{who}: has_aux=True needs f to return a pair (output, aux), got {type(out).__name__}")
        out, aux = out
        if not nodes:
            aux = _value(aux, keep=True)  # nodes in aux come back as arrays, as in JAX; anything else as it was
    return out, aux, inputs, single


def _nodes(tree: Any) -> Tuple[List[Node], TreeDef]:
    leaves, d = flatten(tree)
    return [x if isinstance(x, Node) else const(x) for x in leaves], d


def _value(tree: Any, keep: bool = False) -> Any:
    leaves, d = flatten(tree)
    return unflatten(d, [x.value if isinstance(x, Node) else x if keep else np.asarray(x) for x in leaves])


def _per_input(inputs, single: bool, leaf: Callable[[Node], np.ndarray]) -> Any:
    """``leaf(x)`` for every var, in the structure of the differentiated arguments."""
    trees = tuple(unflatten(d, [leaf(x) for x in xs]) for xs, d in inputs)
    return trees[0] if single else trees


# ------------------------------------------------------------------ the transforms
def _grad_fn(f: Callable[..., Any], argnums: Argnums, has_aux: bool, method: api.Method, with_value: bool,
             who: str) -> Callable[..., Any]:
    def transformed(*args: Any, **kwargs: Any) -> Any:
        nodes = has_nodes((args, kwargs)) or is_tracing()  # inside a trace f may close over traced nodes
        if nodes and method not in ("auto", "factored"):
            raise ValueError(f"{who}: called on nodes, the gradient is built as a graph from the ops' forms (the "
                             f"factored route); method={method!r} cannot build one: leave method at 'auto'")
        out, aux, inputs, single = run_on_vars(f, args, kwargs, argnums, has_aux, who, nodes)
        (y,), _ = _nodes([out]) if not isinstance(out, Node) else ([out], None)
        if not nodes and reaches([y], active_vars()):  # f closes over an enclosing transform's vars: the
            nodes = True  # gradient stays in the graph, so the outer derivative reaches through it
        if y.size != 1:
            raise TypeError(f"{who}: f must return a scalar (shape () or one entry), got shape {y.shape}; "
                            "use jx.jacobian for a non-scalar output")
        if nodes:  # inside a trace or another transform: the gradient as a node, differentiable again
            grads = _per_input(inputs, single, lambda x: cast(gradient_graph(y, x), x.dtype))  # x's dtype, as JAX
            value: Any = _reshaped(y, ()) if y.ndim else y
        else:
            grads = _per_input(inputs, single, lambda x: api.grad(y, x, method=method))
            value = y.value.reshape(()) if y.ndim else y.value
        if with_value:
            return ((value, aux) if has_aux else value), grads
        return (grads, aux) if has_aux else grads

    transformed.__name__ = f"{who}({getattr(f, '__name__', 'f')})"
    transformed.__wrapped__ = f  # type: ignore[attr-defined]  # inspect.signature (jx.jit's static arguments) reads f's
    transformed.__doc__ = f"{who} of {getattr(f, '__name__', 'f')} w.r.t. argnums={argnums!r}."
    return transformed


def grad(fun: Any, wrt: Any = None, method: api.Method = "auto", order: Order = "optimal",
         hold: Sequence[Node] = (), *, argnums: Argnums = 0, has_aux: bool = False) -> Any:
    """``jx.grad(f, argnums=0, has_aux=False)``: the gradient function of a scalar f, as ``jax.grad``.

    With a node first (``jx.grad(l, W)``) it is the gradient of that node
    (:func:`jacobians.api.grad`); a second positional argument of a transform is argnums.

    >>> import numpy as np, jacobians as jx
    >>> jx.grad(lambda x, y: np.sum(x * y), argnums=(0, 1))(np.ones(2), np.arange(2.0))
    (array([0., 1.]), array([1., 1.]))
    """
    if isinstance(fun, Node):
        return api.grad(fun, wrt, method, order, hold)
    return _grad_fn(fun, argnums if wrt is None else wrt, has_aux, method, False, "grad")


def value_and_grad(fun: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False,
                   method: api.Method = "auto") -> Callable[..., Any]:
    """``(f(x), grad f(x))`` in one run, as ``jax.value_and_grad``; with has_aux, ``((f(x), aux), grad)``.

    >>> import numpy as np, jacobians as jx
    >>> v, g = jx.value_and_grad(lambda x: np.sum(x ** 2))(np.array([1.0, 2.0]))
    >>> float(v), g.tolist()
    (5.0, [2.0, 4.0])
    """
    return _grad_fn(fun, argnums, has_aux, method, True, "value_and_grad")


def jacobian(fun: Any, wrt: Any = None, method: api.Method = "auto", order: Order = "optimal",
             hold: Sequence[Node] = (), *, argnums: Argnums = 0, has_aux: bool = False, chunks: Any = None) -> Any:
    """``jx.jacobian(f, argnums=0)``: the full Jacobian function, leaves of shape ``out.shape + in.shape``.

    The result has f's output structure outside and the arguments' structure
    inside (a tuple over argnums when argnums is a tuple), as ``jax.jacobian``.
    With a node first it is the Jacobian of that node (:func:`jacobians.api.jacobian`).
    Called on nodes, or inside :func:`jacobians.jit.jit`, the leaves are nodes
    (:func:`jacobians.second_order.jacobian_graph`, factored route), so
    ``jx.jit(jx.jacobian(f))`` replays the Jacobian without planning it again.

    >>> import numpy as np, jacobians as jx
    >>> J = jx.jacobian(lambda W, x: np.tanh(W @ x))(np.ones((2, 3)), np.ones(3))
    >>> J.shape
    (2, 2, 3)
    """
    if isinstance(fun, Node):
        return api.jacobian(fun, wrt, method, order, hold, chunks=chunks)
    nums = argnums if wrt is None else wrt

    def transformed(*args: Any, **kwargs: Any) -> Any:
        nodes = has_nodes((args, kwargs)) or is_tracing()  # inside a trace f may close over traced nodes
        if nodes and (method not in ("auto", "factored") or chunks is not None):
            raise ValueError(f"jacobian: called on nodes (or inside jx.jit), the Jacobian is built as a node on the "
                             f"factored route; method={method!r}, chunks={chunks!r} cannot build one: leave method "
                             "at 'auto' and chunks at None")
        out, aux, inputs, single = run_on_vars(fun, args, kwargs, nums, has_aux, "jacobian", nodes)
        ys, d = _nodes(out)
        if not nodes and reaches(ys, active_vars()):  # f closes over an enclosing transform's vars
            nodes = True
        if nodes:  # the Jacobians as nodes, so jx.jit replays them
            jac = unflatten(d, [_per_input(inputs, single, lambda x: cast(jacobian_graph(y, x), x.dtype))
                                for y in ys])
        else:
            jac = unflatten(d, [_per_input(inputs, single, lambda x: api.jacobian(y, x, method, order, chunks=chunks))
                                for y in ys])
        return (jac, aux) if has_aux else jac

    transformed.__name__ = f"jacobian({getattr(fun, '__name__', 'f')})"
    transformed.__wrapped__ = fun  # type: ignore[attr-defined]  # jx.jit's static arguments read f's signature
    return transformed


def hessian(fun: Any, wrt: Any = None, method: str = "factored", hold: Sequence[Node] = (), *,
            argnums: Argnums = 0, has_aux: bool = False) -> Any:
    """``jx.hessian(f, argnums=0, has_aux=False)``: the Hessian function of f, as ``jax.hessian``.

    Leaves have shape ``out.shape + in.shape + in.shape`` (``in.shape + in.shape`` for a scalar f), with f's
    output structure outside; for tuple argnums (or pytree
    arguments) the blocks nest as JAX nests them: ``H[i][j]`` pairs argument
    leaves i and j. With ``has_aux`` f returns ``(output, aux)`` and the result is
    ``(H, aux)``. With a node first it is :func:`jacobians.second_order.hessian`.
    Called on nodes, or inside :func:`jacobians.jit.jit`, the blocks are nodes
    (:func:`jacobians.second_order.hessian_graph`, factored route), so
    ``jx.jit(jx.hessian(f))`` replays the Hessian without planning it again.

    >>> import numpy as np, jacobians as jx
    >>> H = jx.hessian(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0]))
    >>> H.tolist()
    [[6.0, 0.0], [0.0, 12.0]]
    """
    from .second_order import hessian as node_hessian

    if isinstance(fun, Node):
        return node_hessian(fun, wrt, method, hold)
    nums = argnums if wrt is None else wrt

    def transformed(*args: Any, **kwargs: Any) -> Any:
        nodes = has_nodes((args, kwargs)) or is_tracing()  # inside a trace f may close over traced nodes
        if nodes and method != "factored":
            raise ValueError(f"hessian: called on nodes (or inside jx.jit), the Hessian is built as a node on the "
                             f"factored route; method={method!r} cannot build one: leave method at 'factored'")
        out, aux, inputs, single = run_on_vars(fun, args, kwargs, nums, has_aux, "hessian", nodes)
        ys, d = _nodes(out)
        leaves = [x for xs, _ in inputs for x in xs]
        if not nodes and reaches(ys, active_vars()):  # f closes over an enclosing transform's vars
            nodes = True
        row = {x.id: k for k, x in enumerate(leaves)}

        def of(y: Node) -> Any:  # the nested blocks of one output, each y.shape + a.shape + b.shape
            blocks: Any = ()  # (no leaves: an empty structure, no block is asked for)
            if leaves and nodes:  # the blocks as nodes, so jx.jit replays them
                entries = [hessian_graph(_reshaped(y, ()), leaves)] if y.size == 1 else \
                    [hessian_graph(e, leaves) for e in _entries(y)]  # one entry at a time, stacked
                blocks = tuple(tuple(cast(_stacked([e[i][j] for e in entries], y.shape), a.dtype)
                                     for j in range(len(leaves))) for i, a in enumerate(leaves))
            elif leaves:
                blocks = node_hessian(y, leaves, method)
            return _per_input(inputs, single,
                              lambda a: _per_input(inputs, single, lambda b: blocks[row[a.id]][row[b.id]]))

        H = unflatten(d, [of(y) for y in ys])
        return (H, aux) if has_aux else H

    transformed.__name__ = f"hessian({getattr(fun, '__name__', 'f')})"
    transformed.__wrapped__ = fun  # type: ignore[attr-defined]  # jx.jit's static arguments read f's signature
    return transformed


def vjp(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Tuple[Any, ...]:
    """``(f(primals), vjp_fn)``: ``vjp_fn(cotangent)`` is the tuple of cotangents of the primals, as ``jax.vjp``.

    >>> import numpy as np, jacobians as jx
    >>> y, pull = jx.vjp(lambda A, B: A @ B, np.eye(2), np.arange(4.0).reshape(2, 2))
    >>> pull(np.ones((2, 2)))[0].tolist()          # G Bᵀ
    [[1.0, 5.0], [1.0, 5.0]]
    """
    outside_trace("jx.vjp(f, ...)")
    out, aux, inputs, _ = run_on_vars(fun, primals, {}, tuple(range(len(primals))), has_aux, "vjp")
    ys, d = _nodes(out)

    def vjp_fn(cotangent: Any) -> Tuple[Any, ...]:
        gs, dg = flatten(cotangent)
        if dg != d:
            raise ValueError(f"vjp: the cotangent's structure {dg} differs from the output's {d}")
        for y, g in zip(ys, gs):
            if np.shape(g) != y.shape:
                raise ValueError(f"vjp: the cotangent of an output of shape {y.shape} has shape {np.shape(g)}; "
                                 "give one of the output's shape")
        return _per_input(inputs, False, lambda x: sum(
            (backward(y, x, np.asarray(g, dtype=y.dtype)) for y, g in zip(ys, gs)),
            np.zeros(x.shape, dtype=x.dtype)))

    return (_value(out), vjp_fn, aux) if has_aux else (_value(out), vjp_fn)


def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> Tuple[Any, ...]:
    """``(f(primals), J·tangents)`` in forward mode, as ``jax.jvp``: tangents pushed through each op's form.

    No Jacobian is formed: each op's factored form contracts the incoming
    tangent (:func:`jacobians.elimination.derived_jvp`), node by node.

    >>> import numpy as np, jacobians as jx
    >>> y, t = jx.jvp(lambda x: np.sin(x) * 2, (np.zeros(3),), (np.ones(3),))
    >>> t.tolist()
    [2.0, 2.0, 2.0]
    """
    outside_trace("jx.jvp(f, ...)")
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents; give one tangent per primal")
    out, aux, inputs, _ = run_on_vars(fun, primals, {}, tuple(range(len(primals))), has_aux, "jvp")
    seeds: Dict[int, np.ndarray] = {}
    for (xs, d), t in zip(inputs, tangents):
        ts, dt = flatten(t)
        if dt != d:
            raise ValueError(f"jvp: a tangent's structure {dt} differs from its primal's {d}")
        for x, tv in zip(xs, ts):
            tv = np.asarray(tv, dtype=x.dtype)
            if tv.shape != x.shape:
                raise ValueError(f"jvp: tangent of {x.name} has shape {tv.shape}, the primal {x.shape}")
            seeds[x.id] = tv
    ys, d = _nodes(out)
    t_out = unflatten(d, push_tangents(ys, seeds))
    return (_value(out), t_out, aux) if has_aux else (_value(out), t_out)


def push_tangents(outputs: Sequence[Node], seeds: Dict[int, np.ndarray]) -> List[np.ndarray]:
    """Forward mode: the tangents of ``outputs`` when the nodes with ids in ``seeds`` move by those tangents.

    Each op's form contracts the tangent of its inputs (:func:`jacobians.elimination.derived_jvp`);
    an output no seed reaches gets zeros.
    """
    order: Dict[int, Node] = {}
    for y in outputs:
        for n in ancestors(y):
            order.setdefault(n.id, n)
    nodes = sorted(order.values(), key=lambda n: n.id)  # ids grow with creation: a topological order

    def push(child: Node, parent: Node, t: np.ndarray) -> np.ndarray:
        values = [q.value for q in child.parents]
        total = None
        for i, q in enumerate(child.parents):
            if q.id == parent.id:
                F = child.op.form(i, child.value, *values, **child.params)
                c = derived_jvp(F, t, child.shape, parent.shape, child.dtype)
                total = c if total is None else total + c
        return total

    tan = forward_sweep(nodes, seeds, push)
    return [np.array(tan[y.id], dtype=y.dtype) if y.id in tan else np.zeros(y.shape, y.dtype) for y in outputs]
