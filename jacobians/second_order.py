"""Second order: the gradient as a graph of ops, and Hessians as its Jacobian on every route.

Each op's form, evaluated on *nodes* instead of arrays (a form rule is numpy
code, and numpy's protocols turn it into ops), has factors that are nodes; the
VJP it implies (:mod:`jacobians.elimination`: an einsum of the cotangent and
the factors) is then built from ops too. Swept from a scalar l back to x, this
gives dl/dx as a node, :func:`gradient_graph`. Its Jacobian w.r.t. x is the
Hessian, on any first-order route:

* ``"factored"`` (the default): deltas eliminated, small factors contracted — the
  Hessian of ‖XW − T‖² w.r.t. W comes out as ``2 (XᵀX)_ac δ_bd`` without ever
  multiplying by a zero;
* ``"explicit"``: dense local Jacobians of the gradient graph, contracted by the
  planned einsum (the second-order chain rule ``Jᵀ H J + Σ g ∂²y``, unrolled);
* ``"hvp"``: one Hessian-vector product per basis direction, forward over
  reverse (tangents pushed through the gradient graph's forms);
* ``"numeric"``: central differences of the gradient, where the gradient at each
  shifted point is the hand-written VJPs' (independent of every form).

>>> import numpy as np, jacobians as jx
>>> A = np.array([[1.0, 2.0], [0.0, 3.0]])
>>> x = jx.var([1.0, -1.0], name="x")
>>> jx.hessian(x @ (A @ x), x)            # xᵀ A x: A + Aᵀ
array([[2., 2.],
       [2., 6.]])
"""
from __future__ import annotations

from typing import Any, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

from . import memory
from .api import jacobian
from .elimination import recipe
from .form import Factor, Factored, Product, axis_labels, broadcast_factored
from .graph import between
from .node import Node, const, is_tracing, outside_trace
from .registry import Op, apply, rule_broadcasts
from .sweep import reverse_sweep

__all__ = ["gradient_graph", "hessian_graph", "jacobian_graph", "hessian", "hvp", "HessianMethod", "HESSIAN_METHODS",
           "SecondOrderUnavailable"]

HessianMethod = Literal["factored", "explicit", "hvp", "numeric"]
HESSIAN_METHODS: Tuple[HessianMethod, ...] = ("factored", "explicit", "hvp", "numeric")


class SecondOrderUnavailable(TypeError):
    """An op's form rule does not run on nodes, so its second derivative cannot be built."""


def _ops():
    from . import ops  # the ops layer: einsum, reshape, broadcast_to (the gradient graph is made of them)

    return ops


def _factor_forward(y: np.ndarray, *xs: np.ndarray, of: Op, wrt: int, term: int, factor: int, params: tuple,
                    shape: Tuple[int, ...], piecewise: bool) -> np.ndarray:
    return np.asarray(of.form(wrt, y, *xs, **dict(params)).terms[term].factors[factor].value)


def _factor_form(i: int, y: np.ndarray, *xs: np.ndarray, of: Op, piecewise: bool, **_: Any) -> Factored:
    if not piecewise:
        raise SecondOrderUnavailable(
            f"op {of.name!r}: inside jx.jit its derivative is computed from its inputs' values with numpy (a mask "
            "from a comparison), so it cannot be differentiated again there; take second derivatives without jit "
            "(jx.hessian, jx.hvp)")
    return Factored(*axis_labels(y.ndim, xs[i].ndim), ())


# A factor of an op's form, computed again from the op's inputs on every replay of a recorded program. A factor
# the form made as an array from values (a mask, a sign, a sort permutation: ``piecewise``) is piecewise constant,
# so its derivative is zero, as it is for a constant factor outside jit; a whole form computed on arrays (its node
# version compares values) has no derivative here.
_FACTOR = Op("form_factor", _factor_forward, lambda *shapes, shape, **_: shape, forms=_factor_form,
             vjps=lambda i, g, y, *xs, **_: np.zeros(xs[i].shape, dtype=g.dtype),
             params=("of", "wrt", "term", "factor", "params", "shape", "piecewise"), broadcasts=False)


# A change of float dtype (a derivative takes its argument's dtype, as in JAX): the identity, cast.
_CAST = Op("astype", lambda x, dtype: x.astype(dtype), lambda shape, dtype: shape,
           forms=(lambda y, x, dtype: broadcast_factored(y.shape, x.shape),),
           vjps=(lambda g, y, x, dtype: np.asarray(g).astype(x.dtype),), params=("dtype",), broadcasts=False)


def cast(n: Node, dtype: Any) -> Node:
    """``n`` as ``dtype`` (a node; n itself when it has that dtype already)."""
    return n if n.dtype == np.dtype(dtype) else apply(_CAST, n, dtype=np.dtype(dtype))


def _replayable(F: Factored, child: Node, i: int, piecewise: bool) -> Factored:
    """F with each factor the form computed as an array made a node that computes it again from the inputs."""
    terms = []
    for t, term in enumerate(F.terms):
        factors = tuple(
            f if isinstance(f.value, Node) else
            Factor(apply(_FACTOR, child, *child.parents, of=child.op, wrt=i, term=t, factor=k,
                         params=tuple(child.params.items()), shape=np.shape(f.value), piecewise=piecewise),
                   f.labels, f.name)
            for k, f in enumerate(term.factors))
        terms.append(Product(factors, term.deltas, term.coef))
    return Factored(F.out, F.inp, tuple(terms), F.flat)


def _node_form(child: Node, i: int) -> Factored:
    """The form of d child / d parent_i with nodes for the op's inputs and output: factors become nodes.

    While jx.jit traces, a factor computed from values becomes a node that computes it again on every replay.
    """
    try:
        with rule_broadcasts():  # the form's own broadcasts are the op's business, not the user's
            if not is_tracing():
                return child.op.form(i, child, *child.parents, **child.params)
            try:
                return _replayable(child.op.form(i, child, *child.parents, **child.params), child, i, True)
            except Exception:  # the form compares values or is array-only numpy: the array form, replayed whole
                F = child.op.form(i, child.value, *[p.value for p in child.parents], **child.params)
                return _replayable(F, child, i, False)
    except SecondOrderUnavailable:
        raise
    except Exception as exc:  # a form rule written with array-only numpy (np.asarray, in-place writes, ...)
        raise SecondOrderUnavailable(
            f"op {child.op.name!r} ({child.name}): its form rule does not run on nodes ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160]}), so its second derivative is not available; use "
            "jx.hessian(..., method='numeric')") from None


def _pull_node(F: Factored, g: Node, out_shape: Tuple[int, ...], in_shape: Tuple[int, ...]) -> Node:
    """Σ_out g[out] F[out, in] built from ops (einsum, reshape, broadcast): the derived VJP, as a node."""
    ops = _ops()
    total: Optional[Node] = ops.reshape(g, in_shape) if F.flat else None
    for t, (coef, prep) in zip(F.terms, recipe(F, out_shape, in_shape, "vjp")):
        values: List[Any] = [g] + [f.value for f in t.factors]
        c: Any = coef
        for k in prep.scalars:  # factors without an index (1/‖A‖, det A) multiply the term
            c = values[k] * c
        if prep.comp is None:
            res: Any = const(np.ones(()), dtype=g.dtype) * c
        else:
            res = ops.einsum(prep.eq, *[values[k] for k in prep.keep]) * c
        res = ops.reshape(res, prep.shape)
        if prep.pairs:  # ties between input indices: land on the diagonal through identity factors
            dropped = {d for _, d in prep.pairs}
            kept = [a for a in range(len(in_shape)) if a not in dropped]
            res = ops.broadcast_to(res, tuple(in_shape[a] for a in kept))
            letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
            lab = {a: letters[a] for a in range(len(in_shape))}
            subs = ["".join(lab[a] for a in kept)] + [lab[k] + lab[d] for k, d in prep.pairs]
            eyes = [np.eye(in_shape[k]) for k, _ in prep.pairs]
            res = ops.einsum(",".join(subs) + "->" + "".join(lab[a] for a in range(len(in_shape))), res, *eyes)
        else:
            res = ops.broadcast_to(res, in_shape)
        total = res if total is None else total + res
    return total if total is not None else const(np.zeros(in_shape), dtype=g.dtype)


def gradient_graph(l: Node, x: Node, hold: Sequence[Node] = ()) -> Node:
    """dl/dx as a node of x's shape, built from ops: differentiate it again for second derivatives.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([1.0, 2.0], name="x")
    >>> g = gradient_graph(jx.sum(x ** 3), x)          # 3 x²
    >>> g.value.tolist(), jx.jacobian(g, x).tolist()   # and its Jacobian: diag(6 x)
    ([3.0, 12.0], [[6.0, 0.0], [0.0, 12.0]])
    """
    if not isinstance(l, Node) or l.size != 1:
        raise ValueError(f"gradient_graph: needs a scalar node, got {getattr(l, 'shape', type(l).__name__)}")
    if l.id == x.id:
        return const(np.ones(x.shape), dtype=x.dtype)
    nodes = between(l, x, hold)
    if not nodes:
        return const(np.zeros(x.shape), dtype=x.dtype)

    def pull(child: Node, parent: Node, g: Node) -> Node:
        total = None
        for i, q in enumerate(child.parents):
            if q.id == parent.id:
                c = _pull_node(_node_form(child, i), g, child.shape, parent.shape)
                total = c if total is None else total + c
        return total

    seed = const(np.ones(l.shape), dtype=l.dtype)
    with rule_broadcasts():  # the graph's broadcasts are built by the rules, not written by the user
        return _ops().reshape(reverse_sweep(nodes, l, x, seed, pull), x.shape)


def hessian_graph(l: Node, xs: Sequence[Node], hold: Sequence[Node] = ()) -> Tuple[Tuple[Node, ...], ...]:
    """The blocks d²l/dxi dxj of a scalar l as nodes (``H[i][j]`` of shape ``xi.shape + xj.shape``).

    The gradient graph's Jacobian on the factored route, its factors nodes, landed
    by one op (:func:`jacobians.jacobian_node.jacobian_node`): what ``jx.hessian(f)``
    builds on nodes or inside :func:`jacobians.jit.jit`, so a replay recomputes it.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([1.0, 2.0], name="x")
    >>> (H,), = hessian_graph(jx.sum(x ** 3), [x])
    >>> H.value.tolist()                                # diag(6 x)
    [[6.0, 0.0], [0.0, 12.0]]
    """
    if not isinstance(l, Node) or l.size != 1:
        raise ValueError(f"hessian_graph: needs a scalar node, got {getattr(l, 'shape', type(l).__name__)}")
    rows = []
    for a in xs:
        g = gradient_graph(l, a, hold)
        row = []
        for b in xs:
            what = f"hessian d²{l.name}/d{a.name}d{b.name} (factored route, as a node)"
            _price_hessian(a.shape + b.shape, l.dtype, what)
            row.append(jacobian_graph(g, b, hold, what))
        rows.append(tuple(row))
    return tuple(rows)


def jacobian_graph(y: Node, x: Node, hold: Sequence[Node] = (), what: str = "") -> Node:
    """dy/dx as a node of shape ``y.shape + x.shape``, on the factored route with the forms on nodes.

    A scalar y gives its gradient graph; otherwise the planned products land by one
    op (:func:`jacobians.jacobian_node.jacobian_node`). What ``jx.jacobian(f)`` and
    ``jx.hessian(f)`` build inside :func:`jacobians.jit.jit`.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([1.0, 2.0], name="x")
    >>> jacobian_graph(x ** 2, x).value.tolist()       # diag(2 x)
    [[2.0, 0.0], [0.0, 4.0]]
    """
    from .jacobian_node import jacobian_node

    if y.size == 1 and y.id != x.id:  # a gradient (x's size): the sweep's graph of ops
        flat = _ops().reshape(y, ()) if y.ndim else y
        return _ops().reshape(gradient_graph(flat, x, hold), y.shape + x.shape)
    return jacobian_node(y, x, _node_form, hold, what=what)  # (priced there, before anything is planned)


def _price_hessian(shape: Tuple[int, ...], dtype: Any, what: str) -> None:
    """The memory guard on a Hessian block; its refusal names jx.hvp, which never builds one."""
    try:
        memory.check_bytes(shape, dtype, what)
    except memory.JacobianTooLarge as exc:
        raise memory.JacobianTooLarge(f"{exc} For products with a vector use jx.hvp(l, x, v), which never builds "
                                      "the Hessian", exc.what, exc.shape, exc.nbytes, exc.limit) from None


def hvp(l: Node, x: Node, v: Any, hold: Sequence[Node] = ()) -> np.ndarray:
    """The Hessian-vector product (d²l/dx²)·v of a scalar l, shape x.shape, without forming the Hessian.

    Forward over reverse: the tangent v is pushed through the gradient graph's forms.

    >>> import numpy as np, jacobians as jx
    >>> x = jx.var([1.0, 2.0], name="x")
    >>> jx.hvp(jx.sum(x ** 3), x, np.array([1.0, 0.0])).tolist()
    [6.0, 0.0]
    """
    from .transforms import push_tangents

    outside_trace("jx.hvp(l, x, v)")
    v = np.asarray(v, dtype=x.dtype)
    if v.shape != x.shape:
        raise ValueError(f"hvp: v has shape {v.shape}, {x.name} has {x.shape}; give v of x's shape")
    g = gradient_graph(l, x, hold)
    return push_tangents([g], {x.id: v})[0]


def hessian(y: Node, x: Union[Node, Sequence[Node]], method: HessianMethod = "factored",
            hold: Sequence[Node] = ()) -> Any:
    """d²y/dx², shape ``y.shape + x.shape + x.shape``; for a list of xs a tuple of tuples of blocks.

    ``H[i][j]`` has shape ``y.shape + xi.shape + xj.shape``. ``method`` picks the
    route (module docstring). ``x`` may be an intermediate node, as for Jacobians.
    The memory guard prices every Hessian before it is built (``y.size · x.size²``
    entries); a refusal names ``jx.hvp``.
    """
    outside_trace("jx.hessian(y, x)")
    if method not in HESSIAN_METHODS:
        raise ValueError(f"hessian: method={method!r} is not one of {', '.join(HESSIAN_METHODS)}")
    if not isinstance(y, Node):
        raise TypeError(f"hessian: y must be a node (or use jx.hessian(f) for a function), got {type(y).__name__}")
    xs = [x] if isinstance(x, Node) else list(x)
    blocks = tuple(tuple(_block(y, a, b, method, tuple(hold)) for b in xs) for a in xs)
    return blocks[0][0] if isinstance(x, Node) else blocks


def _block(y: Node, a: Node, b: Node, method: HessianMethod, hold: Tuple[Node, ...]) -> np.ndarray:
    shape = y.shape + a.shape + b.shape
    _price_hessian(shape, y.dtype, f"hessian d²{y.name}/d{a.name}d{b.name}")
    if y.size != 1:  # one scalar output at a time
        H = memory.zeros(shape, y.dtype, f"hessian d²{y.name}/d{a.name}d{b.name}")
        rows = H.reshape((y.size,) + a.shape + b.shape)
        flat = _ops().reshape(y, (y.size,))
        for k in range(y.size):
            rows[k] = _block(flat[k], a, b, method, hold)
        return H
    nodes = list({n.id: n for v in (a, b) for n in between(y, v, hold)}.values())
    # the gradient graph: about four nodes, with their values and tangents, per node of y
    with memory.reserve(memory.working_set(nodes, copies=6, itemsize=8 if method == "numeric" else None,
                                           bookkeeping=4 * memory.BOOKKEEPING),
                        f"hessian d²{y.name}/d{a.name}d{b.name} ({method} route): the values, tangents and "
                        f"temporaries of the gradient graph over {len(nodes)} nodes"):
        return _scalar_block(y, a, b, method, hold, shape)


def _scalar_block(y: Node, a: Node, b: Node, method: HessianMethod, hold: Tuple[Node, ...],
                  shape: Tuple[int, ...]) -> np.ndarray:
    if method == "numeric":
        return _numeric_block(y, a, b, hold).reshape(shape)
    g = gradient_graph(y, a, hold)
    if method == "hvp":
        from .transforms import push_tangents

        H = memory.zeros(a.shape + b.shape, y.dtype, f"hessian d²{y.name}/d{a.name}d{b.name} (hvp route)")
        cols = H.reshape(a.size, b.size)
        e = np.zeros(b.size, dtype=b.dtype)
        for j in range(b.size):
            e[j] = 1
            cols[:, j] = push_tangents([g], {b.id: e.reshape(b.shape)})[0].ravel()
            e[j] = 0
        return H.reshape(shape)
    return np.asarray(jacobian(g, b, method=method), order="C").reshape(shape)


def _numeric_block(l: Node, a: Node, b: Node, hold: Sequence[Node]) -> np.ndarray:
    """d/db of dl/da by central differences (b shifted, the gradient w.r.t. a re-run by the VJPs, float64);
    a diagonal block when b is a."""
    from .numeric import Pace, gradient_at_shifted

    what = f"hessian d²{l.name}/d{a.name}" + ("²" if a.id == b.id else f"d{b.name}") + " (numeric route)"
    H = memory.zeros(a.shape + b.shape, np.float64, what)
    cols = H.reshape(a.size, b.size)
    b0 = b.value.astype(np.float64).ravel()
    h0 = np.finfo(np.float64).eps ** (1.0 / 3.0)
    pace = Pace(2 * b.size, what)
    for j in range(b.size):
        h = h0 * max(1.0, abs(b0[j]))
        e = np.zeros_like(b0)
        e[j] = h
        up = gradient_at_shifted(l, a, b, (b0 + e).reshape(b.shape), hold)
        down = gradient_at_shifted(l, a, b, (b0 - e).reshape(b.shape), hold)
        cols[:, j] = ((up - down) / (2 * h)).ravel()
        pace.tick(2)
    return H
