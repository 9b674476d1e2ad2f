"""Trace once, replay: ``jx.jit(f)``, JAX's ``jit`` for graphs of ops.

The first call for a *signature* — the arguments' pytree structure, every
leaf's shape and dtype, and the values of the static arguments — runs ``f`` on
vars, as a transform does, and records the ops its outputs depend on as a
:class:`Program`: one step per op (its forward, the slots it reads, its
parameters). Every later call with that signature replays the forwards on the
new arrays: no nodes, no shape rules, no graph walks, no planning.

Derivatives come along because transforms compose: ``jx.grad(f)`` called on
nodes returns the gradient as a graph of ops (the forms' derived VJPs,
:func:`jacobians.second_order.gradient_graph`), so ``jx.jit(jx.grad(f))``
records forward and backward in one program, and a Hessian-vector product
(``jx.grad`` of ``grad(f)·v``) replays as one program too.

>>> import numpy as np, jacobians as jx
>>> def loss(W, X):
...     return np.sum((W @ X) ** 2)
>>> g = jx.jit(jx.grad(loss))
>>> W, X = np.eye(2), np.array([[1.0, 2.0], [3.0, 4.0]])
>>> np.allclose(g(W, X), 2 * (W @ X) @ X.T), g.traces     # dl/dW = 2 Y Xᵀ
(True, 1)
>>> np.allclose(g(2 * W, X), 2 * (2 * W @ X) @ X.T), g.traces   # same shapes: replayed
(True, 1)

Like ``jax.jit``, a replay assumes ``f`` is a pure function of its array
arguments:

* a number taken out of the graph while tracing (``node.item()``) raises
  :class:`~jacobians.node.ConcretizationError`, since a branch on it would be
  frozen; mark such an argument static (``static_argnums``) or do not jit;
* ``node.value`` read inside ``f`` and any Python side effect are frozen at
  the trace;
* numpy arrays that ``f`` closes over are constants of the program.

Inputs follow :func:`jacobians.var`'s rules (integers become float64, float32
stays float32, NaN or ±Inf is refused); an output that turns non-finite from
finite inputs warns with :class:`~jacobians.node.NonFiniteWarning`.
"""
from __future__ import annotations

import functools
import inspect
import math
import warnings
from typing import Any, Callable, Dict, Hashable, List, Sequence, Tuple, Union

import numpy as np

from . import memory
from .graph import ancestors, reaches
from .node import (Node, NonFiniteWarning, active_vars, describe_bad, differentiating, is_tracing, leaf_array, tracing,
                   user_stacklevel, var)
from .pytree import TreeDef, flatten, unflatten
from .transforms import has_nodes

__all__ = ["jit", "Jitted", "Program"]

Step = Tuple[Callable[..., Any], Tuple[int, ...], int, Tuple[int, ...]]  # (bound forward, reads, writes, drops)


class Program:
    """One recorded trace: the ops' forwards in order, over numbered slots.

    Slots ``0 … n_inputs-1`` hold the arguments' leaves, then come the
    constants, then one slot per op. Each step reads its input slots, writes
    its own, and drops the slots no later step reads (the replay holds no more
    than the trace did).
    """

    def __init__(self, inputs: Sequence[Node], outputs: Sequence[Any], out_tree: TreeDef, who: str) -> None:
        self.who = who
        slot: Dict[int, int] = {x.id: k for k, x in enumerate(inputs)}
        template: List[Any] = [None] * len(inputs)
        order: List[Node] = []
        seen = set(slot)
        for y in outputs:
            if isinstance(y, Node):
                for n in ancestors(y):
                    if n.id not in seen:
                        seen.add(n.id)
                        order.append(n)
        varying = set(slot)  # nodes whose value changes with the inputs; every other node is a constant
        for n in order:
            if any(p.id in varying for p in n.parents):
                varying.add(n.id)
        steps: List[Tuple[Node, Tuple[int, ...]]] = []
        constants = 0
        for n in order:
            if n.id not in varying:  # a var made inside f, a constant, or an op on constants only: its value
                slot[n.id] = len(template)
                template.append(n.value)
                constants += 1
        for n in order:
            if n.id not in varying:
                continue
            same = passes_through(n, varying)
            if same is not None:  # reshape to its own shape, a multiply by a constant 1, ...: no step
                slot[n.id] = slot[same.id]
                continue
            slot[n.id] = len(template)
            template.append(None)
            steps.append((n, tuple(slot[p.id] for p in n.parents)))
        self.out_tree = out_tree
        self.outputs: List[Tuple[bool, Any]] = [(True, slot[y.id]) if isinstance(y, Node) else (False, y)
                                                for y in outputs]
        # What a replay checks for NaN and ±Inf: each output; but for an output that a sum-of-products op made (a
        # landed Jacobian: large, its factors small), its factors, and the output itself only when a floating-point
        # overflow, invalid or divide flag rose during the replay. Constants were checked when they were recorded
        # and inputs when the call began: neither is read again.
        made = {slot[n.id]: ins for n, ins in steps if n.op.polynomial is not None and n.op.polynomial(**n.params)}
        stepped = {slot[n.id] for n, _ in steps}
        probes: Dict[int, str] = {}
        for o, (is_slot, k) in enumerate(self.outputs):
            if is_slot:
                for i in made.get(k, ()):
                    if i in stepped:
                        probes.setdefault(i, f"a factor (%{i}) of output {o}")
                if k in stepped and k not in made:
                    probes.setdefault(k, f"output {o}")
        self.probes = sorted(probes.items())
        self.flagged = sorted({k: f"output {o}" for o, (is_slot, k) in enumerate(self.outputs)
                               if is_slot and k in made}.items())
        live_to_end = {k for is_slot, k in self.outputs if is_slot} | set(probes)
        last: Dict[int, int] = {}
        for s, (_, ins) in enumerate(steps):
            for i in ins:
                last[i] = s
        used = {i for _, ins in steps for i in ins} | live_to_end
        for k in range(len(inputs), len(template)):
            if template[k] is not None and k not in used:  # folded into a constant, or an alias's source
                template[k] = None
                constants -= 1
        self.template = template
        self.n_inputs = len(inputs)
        self.n_constants = constants
        self.steps: List[Step] = [
            (n.op.bound([p.shape for p in n.parents], **n.params), ins, slot[n.id],
             tuple(sorted({i for i in ins if last[i] == s and i not in live_to_end and i >= len(inputs)})))
            for s, (n, ins) in enumerate(steps)]
        self.names = [f"{n.op.name} on {', '.join(str(p.shape) for p in n.parents)}" for n, _ in steps]
        self.text = [self._line(n, ins, slot[n.id]) for n, ins in steps]
        big = max((n for n, _ in steps), key=lambda n: n.size, default=None)
        self.largest = (big.shape, big.dtype) if big is not None and big.size > 1 << 20 else None

    @staticmethod
    def _line(n: Node, ins: Tuple[int, ...], out: int) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in n.params.items() if not isinstance(v, np.ndarray))
        args = ", ".join(f"%{i}" for i in ins) + (f"; {params}" if params else "")
        return f"%{out} = {n.op.name}({args})  {n.shape}"

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        head = (f"{self.who}: {self.n_inputs} input(s) %0…%{self.n_inputs - 1}, {self.n_constants} constant(s), "
                f"{len(self.steps)} step(s)")
        consts = [f"  %{k} = constant {np.shape(v)}" for k, v in enumerate(self.template)
                  if k >= self.n_inputs and v is not None]
        return "\n".join([head] + consts + ["  " + t for t in self.text])

    def run(self, leaves: Sequence[np.ndarray]) -> List[Any]:
        """Replay the steps on the input leaves; the outputs as arrays (or the non-node values recorded)."""
        if self.largest is not None:  # the memory limit may have dropped since the trace
            memory.check_bytes(self.largest[0], self.largest[1], f"the largest array of {self.who}")
        env = self.template.copy()
        env[:self.n_inputs] = leaves
        k = 0
        flag = _Raised()
        try:  # numpy's floating-point flags call ``flag`` instead of warning: an overflow is the replay's to report
            with np.errstate(over="call", invalid="call", divide="call", under="ignore", call=flag):
                for k, (forward, ins, out, free) in enumerate(self.steps):
                    n = len(ins)  # one and two inputs without building a list: most steps
                    env[out] = np.asarray(forward(env[ins[0]], env[ins[1]]) if n == 2 else
                                          forward(env[ins[0]]) if n == 1 else forward(*[env[i] for i in ins]))
                    if free:
                        for i in free:
                            env[i] = None
        except np.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(
                f"{self.who}: {self.names[k]} failed in the replay: {exc}. The matrix is singular or not finite "
                "for these inputs: make it invertible (e.g. add a small multiple of the identity) or reformulate"
            ) from exc
        with np.errstate(all="ignore"):  # an overflow of finite data is not the caller's warning
            if not all(math.isfinite(np.add.reduce(env[k], axis=None)) for k, _ in self.probes
                       if isinstance(env[k], np.ndarray) and env[k].dtype.kind == "f"):
                _warn_nonfinite(self.who, [(what, env[k]) for k, what in self.probes])
            elif flag.raised and self.flagged:  # finite factors, and still a product may have overflowed
                _warn_nonfinite(self.who, [(what, env[k]) for k, what in self.flagged])
        raw = [env[k] if is_slot else k for is_slot, k in self.outputs]
        if len(raw) == 1 and isinstance(raw[0], np.ndarray) and raw[0].flags.writeable and raw[0].base is None \
                and self.outputs[0][0] and not any(raw[0] is x for x in leaves):
            return raw  # the common case: one fresh array
        outs: List[Any] = []
        for i, ((is_slot, _), a) in enumerate(zip(self.outputs, raw)):
            if not isinstance(a, np.ndarray):
                outs.append(a)
                continue
            others = [b for j, b in enumerate(raw) if j != i and isinstance(b, np.ndarray)]
            # a fresh, writable array the caller owns: never a value recorded in the program (shared by every
            # call), a view of a constant, of the caller's own input, or memory another output also holds
            if not is_slot or not a.flags.writeable or any(a is x for x in leaves) or any(
                    np.may_share_memory(a, x) for x in (*leaves, *others)):
                a = np.array(a)
            outs.append(a)
        return outs


def _ones(n: Node) -> bool:
    return bool(np.all(n.value == 1))


def passes_through(n: Node, varying: set) -> Any:
    """The parent that ``n`` equals, entry for entry, whatever the inputs (None if there is none).

    Exact identities only, read from the op and its parameters, never from the
    values at the trace: a reshape or broadcast to the parent's own shape, a
    one-operand einsum that keeps its labels in order at scale 1, a product
    (``*`` or an einsum ``ab,ab->ab``) with, or a division by, a constant of
    ones that does not broadcast.
    """
    name, ps = n.op.name, n.parents
    if len(ps) == 1:
        p = ps[0]
        if p.shape != n.shape or p.dtype != n.dtype:
            return None
        if name in ("reshape", "broadcast_to"):
            return p
        eq = n.params.get("eq")
        if name in ("einsum", "transpose") and isinstance(eq, str) and n.params.get("scale", 1.0) == 1.0 \
                and not n.params.get("ones"):
            lhs, _, rhs = eq.partition("->")
            if lhs == rhs and len(set(lhs)) == len(lhs) and "." not in lhs:
                return p
        return None
    eq = n.params.get("eq")
    hadamard = name == "einsum" and isinstance(eq, str) and n.params.get("scale", 1.0) == 1.0 \
        and not n.params.get("ones") and len(ps) == 2 and len(set(eq.split("->")[0].split(",") + [eq.split("->")[1]])) == 1
    if (name in ("multiply", "divide") or hadamard) and len(ps) == 2:
        a, b = ps
        others = [(a, b)] + ([(b, a)] if name != "divide" else [])
        for keep, one in others:
            if one.id not in varying and keep.shape == n.shape and keep.dtype == n.dtype and _ones(one):
                return keep
    return None


class Jitted:
    """``f`` with a cache of recorded programs, one per signature; call it as ``f``.

    ``traces`` counts the programs recorded so far; :meth:`program` returns
    (and records, if needed) the one for given arguments.
    """

    def __init__(self, fun: Callable[..., Any], static_argnums: Tuple[int, ...]) -> None:
        self.fun = fun
        self.static_argnums = static_argnums
        self.who = f"jit({getattr(fun, '__name__', 'f')})"
        self._cache: Dict[Hashable, Program] = {}
        self._arrays: Dict[Hashable, Program] = {}  # calls with ndarray arguments only: keyed without a tree
        self._params = _positional_params(fun)  # a static argument may also come by keyword, or by default
        functools.update_wrapper(self, fun, updated=())  # the name and doc, never fun's own attributes

    @property
    def traces(self) -> int:
        """How many signatures have been traced (each one recorded once)."""
        return len(self._cache)

    def _statics(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
        """(static positional {index: value}, static keywords {name: value}, the other arguments, other kwargs)."""
        n = len(args)
        pos: Dict[int, Any] = {}
        kw: Dict[str, Any] = {}
        kwargs = dict(kwargs)
        for k in self.static_argnums:
            if -n <= k < n:
                pos[k % n] = args[k]
            elif 0 <= k < len(self._params) and self._params[k].name in kwargs \
                    and self._params[k].kind is not inspect.Parameter.POSITIONAL_ONLY:
                kw[self._params[k].name] = kwargs.pop(self._params[k].name)
            elif 0 <= k < len(self._params) and self._params[k].default is not inspect.Parameter.empty:
                continue  # left at its default: f uses it as it is, the same value on every call
            else:
                raise ValueError(f"{self.who}: static_argnums names argument {k}, but the call gives {n} positional "
                                 "argument(s) and it has no default")
        for where, value in [*pos.items(), *kw.items()]:
            try:
                hash(value)
            except TypeError:
                raise TypeError(f"{self.who}: static argument {where} ({type(value).__name__}) is not hashable; a "
                                "static argument keys the cache, so pass a tuple, a number or a string") from None
        dynamic = tuple(a for k, a in enumerate(args) if k not in pos)
        return pos, kw, dynamic, kwargs

    def _split(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
        pos, kw, dynamic, kwargs = self._statics(args, kwargs)
        leaves, tree = flatten((dynamic, kwargs))
        arrays = []
        for path, leaf in zip(tree.paths, leaves):
            if isinstance(leaf, Node):
                raise TypeError(f"{self.who}: argument {path} is a node; a jitted function takes arrays (it makes "
                                "its own vars)")
            arrays.append(leaf_array(leaf, f"{self.who}: argument {path}"))
        by_index = {k: kw[self._params[k].name] for k in self.static_argnums
                    if 0 <= k < len(self._params) and self._params[k].name in kw}
        key = (tuple(sorted({**pos, **by_index}.items())), tree, tuple((a.shape, a.dtype.str) for a in arrays))
        return key, arrays, (tree, pos, kw, len(args))

    def _trace(self, arrays: List[np.ndarray], how: tuple) -> Any:
        """f run on vars: its Program, or (when f closes over an enclosing transform's vars) its outputs as they
        are, nodes that must stay in the graph, wrapped in :class:`_Unjitted`."""
        tree, pos, kw, n = how
        xs = [var(a, name=f"args{p}") for p, a in zip(tree.paths, arrays)]
        dynamic, kwargs = unflatten(tree, xs)
        it = iter(dynamic)
        full = [pos[k] if k in pos else next(it) for k in range(n)]
        with tracing(), differentiating(xs):
            out = self.fun(*full, **kwargs, **kw)
        leaves, out_tree = flatten(out)
        if reaches(leaves, active_vars()):  # a closure over an outer transform's vars: not replayable
            return _Unjitted(out)
        return Program(xs, leaves, out_tree, self.who)

    def _lookup(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Tuple[Any, List[np.ndarray]]:
        key, arrays, how = self._split(args, kwargs)
        prog = self._cache.get(key)
        if prog is None:
            prog = self._trace(arrays, how)
            if isinstance(prog, Program):
                self._cache[key] = prog
        return prog, arrays

    def program(self, *args: Any, **kwargs: Any) -> Program:
        """The recorded program for these arguments (traced now if this signature is new).

        >>> import numpy as np, jacobians as jx
        >>> print(jx.jit(lambda x: np.sum(np.tanh(x))).program(np.ones(3)))
        jit(<lambda>): 1 input(s) %0…%0, 0 constant(s), 2 step(s)
          %1 = tanh(%0)  (3,)
          %2 = sum(%1; eq='a->', scale=1.0, ones=())  ()
        """
        prog = self._lookup(args, kwargs)[0]
        if not isinstance(prog, Program):
            raise TypeError(f"{self.who}: f closes over the vars of an enclosing transform, so it has no program of "
                            "its own: it runs unjitted there")
        return prog

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        prog = None
        plain = not kwargs and not self.static_argnums and all(type(a) is np.ndarray for a in args)
        if plain and all(a.dtype.kind == "f" and a.dtype.itemsize in (4, 8) for a in args):
            prog = self._arrays.get(tuple((a.shape, a.dtype.char) for a in args))  # the common call, keyed cheaply
            arrays = list(args)
            with np.errstate(all="ignore"):  # an overflow of finite data is not the caller's warning
                for a in arrays:
                    if not math.isfinite(np.add.reduce(a, axis=None)):  # any NaN or ±Inf makes the sum so
                        prog = None  # (or an overflow of finite data): the full check says which
                        break
        if prog is None:
            if is_tracing() or has_nodes((args, kwargs)):  # inside another trace or transform: f itself, in
                return self.fun(*args, **kwargs)  # that graph (as JAX inlines a jitted function)
            prog, arrays = self._lookup(args, kwargs)
            if isinstance(prog, _Unjitted):
                return prog.out
            if plain:
                self._arrays[tuple((a.shape, a.dtype.char) for a in arrays)] = prog
        outs = prog.run(arrays)
        return unflatten(prog.out_tree, outs)


class _Unjitted:
    """The outputs of a trace that closed over an enclosing transform's vars (returned as they are)."""

    __slots__ = ("out",)

    def __init__(self, out: Any) -> None:
        self.out = out


def _positional_params(fun: Callable[..., Any]) -> List[inspect.Parameter]:
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):  # a builtin or a C callable: static arguments by position only
        return []
    return [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


class _Raised:
    """``np.errstate(call=...)`` target: remembers that a floating-point flag rose (one instance per replay)."""

    __slots__ = ("raised",)

    def __init__(self) -> None:
        self.raised = False

    def __call__(self, kind: str, flag: int) -> None:
        self.raised = True


def _warn_nonfinite(who: str, probes: List[Tuple[str, Any]]) -> None:
    for what, o in probes:
        if isinstance(o, np.ndarray) and o.dtype.kind == "f" and not np.isfinite(o).all():
            warnings.warn(f"{who}: {what} is non-finite ({describe_bad(o, ~np.isfinite(o))}) for finite inputs; "
                          "call the function without jit to have the op that made it named",
                          NonFiniteWarning, stacklevel=user_stacklevel())


def jit(fun: Callable[..., Any] = None, *, static_argnums: Union[int, Sequence[int]] = ()) -> Any:
    """``jx.jit(f, static_argnums=())``: f recorded once per signature and replayed, as ``jax.jit``.

    Usable as a decorator, with or without arguments. ``static_argnums`` are
    positional arguments that are not arrays (a flag, a shape, a count): their
    values key the cache and reach ``f`` as they are.

    >>> import numpy as np, jacobians as jx
    >>> @jx.jit
    ... def f(x):
    ...     return np.tanh(x) * 2
    >>> f(np.zeros(2)).tolist(), f.traces
    ([0.0, 0.0], 1)
    """
    nums = (static_argnums,) if np.ndim(static_argnums) == 0 else tuple(static_argnums)
    for k in nums:
        if not isinstance(k, (int, np.integer)):
            raise TypeError(f"jit: static_argnums must be integers, got {static_argnums!r}")
    if fun is None:
        return lambda f: jit(f, static_argnums=nums)
    if not callable(fun):
        raise TypeError(f"jit: expected a function, got {type(fun).__name__}")
    return Jitted(fun, tuple(int(k) for k in nums))
