"""``explain(y, x)``: the derivation of dy/dx, written out.

For every edge between x and y it gives the local Jacobian in index notation,
with the einsum labels the chain rule uses (``dY_cd/dW_ab = δ_ca X_bd``), its
shape ``out.shape + in.shape`` and, where the op has one, its Kronecker/vec
form. For every path it gives the chain as an index sum, the einsum equation,
the pairwise contraction order opt_einsum chose and the FLOPs of each step.

Nothing here knows an op: each local Jacobian's index form is the op's own
factored form in the chain's letters (:mod:`jacobians.index_form`), its vec
form is read off those terms (:mod:`jacobians.vec_forms`, with numpy's
row-major convention and the textbooks' column-major one), and the LaTeX comes
from :mod:`jacobians.latex`.
"""
from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .api import check_call
from .chain_rule import ORDERS, Order, Plan, node_labels, plan
from .graph import between, edges, local_jacobian
from .index_form import IndexForm, index_form, subscript
from .latex import dmark, mark, plain, tex, tex_text
from .node import Node
from .vec_forms import ROW_MAJOR_NOTE, VecForm, vec_form

if TYPE_CHECKING:  # pragma: no cover
    from .curvature import HessianSplit

__all__ = ["explain", "Derivation", "Local", "PathDerivation", "ROW_MAJOR_NOTE"]

_NAMES: ContextVar[Mapping[int, str]] = ContextVar("explain_names", default={})


def _nm(node: Node) -> str:
    """The display name of a node: from explain(..., names=), else node.name."""
    return _NAMES.get().get(node.id, node.name)



# ---------------------------------------------------------------- the derivation
@dataclass
class Local:
    """One edge child ← parent: its local Jacobian as an index form and, for 2-D cases, a vec form."""

    child: Node
    parent: Node
    index: IndexForm  # the op's form in the chain's letters, factors named by node
    vec: Optional[VecForm]
    vec_error: Optional[float]  # max |J - vec matrix|, None when not checked

    @property
    def shape(self) -> Tuple[int, ...]:
        return self.child.shape + self.parent.shape

    def text(self) -> str:
        """The formula as plain text, e.g. ``dY_cd/dW_ab = δ_ca X_bd``."""
        return str(self.index)

    def formula(self) -> str:
        """The marked formula (names marked for the LaTeX renderer)."""
        return f"{self.index.lhs} = {self.index.rhs()}"


@dataclass
class Step:
    left: str  # marked, e.g. "dl/dY"
    right: str
    result: str
    einsum: str
    summed: str
    flops: int
    reused: bool = False  # an earlier path already computed this product


@dataclass
class PathDerivation:
    nodes: List[Node]
    chain: str  # marked index sum
    equation: str
    operand_shapes: List[Tuple[int, ...]]
    steps: List[Step]
    flops: int
    largest_intermediate: int


@dataclass
class Derivation:
    """What :func:`explain` returns; ``str()`` is text, and it renders as Markdown and LaTeX in Jupyter."""

    y: Node
    x: Node
    plan: Plan
    labels: Dict[int, str]
    locals: List[Local]
    paths: List[PathDerivation]
    flops_by_order: Dict[str, int]
    hold: Tuple[Node, ...] = ()
    names: Mapping[int, str] = field(default_factory=dict)  # node id -> display name

    # ------------------------------------------------------------ pieces
    def _d(self, top: Node, bottom: Node) -> str:
        return f"d{dmark(_nm(top))}/d{dmark(_nm(bottom))}"

    def headline(self) -> str:
        return (f"out {self.y.shape} + in {self.x.shape} → Jacobian shape {self.y.shape + self.x.shape}")

    def chain_rule(self) -> str:
        """The whole chain rule as plain text, e.g. ``dl/dW_ab = Σ_cd dl/dY_cd · dY_cd/dW_ab``."""
        token = _NAMES.set(self.names)
        try:
            return plain(self.total())
        finally:
            _NAMES.reset(token)

    def total(self) -> str:
        """The whole chain rule, with marked names (for the renderers)."""
        ly, lx = self.labels.get(self.y.id, ""), self.labels.get(self.x.id, "")
        lhs = f"d{subscript(dmark(_nm(self.y)), ly)}/d{subscript(dmark(_nm(self.x)), lx)}"
        if not self.paths:
            return lhs + " = " + ("0" if self.plan.strategy == "independent" else "δ (the identity)")
        return lhs + " = " + "  +  ".join(p.chain for p in self.paths)

    def _notes(self) -> List[str]:
        notes = ["layout: a Jacobian has shape out.shape + in.shape (as in JAX, PyTorch, autograd)"]
        if self.hold:
            notes.append("held fixed (paths through them cut): " + ", ".join(mark(_nm(h)) for h in self.hold))
        if self.plan.strategy == "accumulate":
            notes.append(f"more paths than the planner enumerates: accumulated node by node ({self.plan.order} mode)")
        elif self.plan.strategy == "independent":
            notes.append(f"{mark(_nm(self.y))} does not depend on {mark(_nm(self.x))}: the Jacobian is zeros")
        elif self.plan.strategy == "identity":
            notes.append("y is x: the Jacobian is the identity")
        return notes

    # ------------------------------------------------------------ renderers
    def _lines(self, fmt: Callable[[str], str], code: Callable[[str], str]) -> List[Tuple[int, str]]:
        """(depth, line) pairs shared by the renderers; ``fmt`` renders formulas, ``code`` einsum strings.

        A line starting with § is a heading; a tab separates a formula from its comment.
        """
        token = _NAMES.set(self.names)
        try:
            return self._build_lines(fmt, code)
        finally:
            _NAMES.reset(token)

    def _build_lines(self, fmt: Callable[[str], str], code: Callable[[str], str]) -> List[Tuple[int, str]]:
        L: List[Tuple[int, str]] = [(0, "§" + fmt(self._d(self.y, self.x)) + ": " + self.headline())]
        L += [(1, plain(n)) for n in self._notes()]
        if self.locals:
            L.append((0, "§local Jacobians, one per edge (index labels as in the einsum below)"))
        for loc in self.locals:
            L.append((1, fmt(loc.formula()) + f"\t{loc.child.op.name}, shape {loc.child.shape} + {loc.parent.shape}"
                      f" = {loc.shape}"))
            v = loc.vec
            if v is None:
                continue
            chk = "" if loc.vec_error is None else f"max |J − this| = {loc.vec_error:.1e} on these numbers"
            lhs = f"dvec({mark(_nm(loc.child), False)})/dvec({mark(_nm(loc.parent), False)}) = "
            if v.row_major == v.col_major:
                L.append((2, "vec form (both conventions): " + fmt(lhs + v.row_major) + "\t" + chk))
            else:
                L.append((2, "vec form, row-major (numpy): " + fmt(lhs + v.row_major) + "\t" + chk))
                L.append((2, "vec form, column-major: " + fmt(lhs + v.col_major)))
            if v.note:
                L.append((3, plain(v.note)))
        if self.paths:
            n = len(self.paths)
            L.append((0, f"§chain rule: {n} path{'s' * (n > 1)} from {plain(mark(_nm(self.x)))} to "
                         f"{plain(mark(_nm(self.y)))}" + (", one term each" if n > 1 else "")))
            L.append((1, fmt(self.total())))
        for k, p in enumerate(self.paths, 1):
            route = " → ".join(plain(mark(_nm(n))) for n in p.nodes)
            L.append((1, f"path {k}: {route}"))
            if len(self.paths) > 1:
                L.append((2, fmt(p.chain)))
            shapes = ", ".join(str(s) for s in p.operand_shapes)
            L.append((2, f"einsum {code(p.equation)}   operand shapes {shapes}"))
            L.append((2, f"opt_einsum order ({self.plan.order}), {len(p.steps)} pairwise "
                         f"step{'s' * (len(p.steps) != 1)}:"))
            for i, s in enumerate(p.steps, 1):
                what = fmt(f"{s.left} · {s.right} → {s.result}") if s.right else fmt(f"{s.left} → {s.result}")
                summed = f"sums {','.join(s.summed)}" if s.summed else "no sum"
                cost = "already computed by an earlier path" if s.reused else f"{s.flops:,} FLOPs"
                L.append((3, f"{i}. {what}\t{code(s.einsum)}  {summed}, {cost}"))
            new = sum(s.flops for s in p.steps if not s.reused)
            reuse = f" ({new:,} new, the rest shared with an earlier path)" if new != p.flops else ""
            L.append((2, f"{p.flops:,} FLOPs{reuse}; largest intermediate {p.largest_intermediate:,} elements"))
        for eq, (c, q), fl in self.plan.steps:
            L.append((1, f"accumulate {fmt(self._d(c, q))}\t{code(eq)}, {fl:,} FLOPs"))
        if self.plan.strategy in ("paths", "accumulate"):
            L.append((0, f"§cost: {self.plan.flops:,} FLOPs (order={self.plan.order}; a product shared by "
                         "several paths counted once)" if len(self.paths) > 1 else
                         f"§cost: {self.plan.flops:,} FLOPs (order={self.plan.order})"))
            L.append((1, "FLOPs by order: " + ", ".join(f"{o} {f:,}" for o, f in self.flops_by_order.items())))
            L.append((1, f"largest intermediate {self.plan.largest_intermediate:,} elements; largest local "
                         f"Jacobian {self.plan.largest_operand:,} elements"))
        if any(loc.vec is not None for loc in self.locals):
            L.append((1, ROW_MAJOR_NOTE))
        return L

    def __str__(self) -> str:
        lines = self._lines(plain, lambda s: s)
        width = min(44, max((len("  " * d + ln.split("\t")[0]) for d, ln in lines if "\t" in ln), default=0))
        out = []
        for depth, line in lines:
            if line.startswith("§"):
                out.append(line[1:])
                continue
            head, _, tail = line.partition("\t")
            text = "  " * depth + head
            out.append((text.ljust(width) + "   " + tail).rstrip() if tail else text)
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<Derivation d{_nm(self.y)}/d{_nm(self.x)}: {self.headline()}; {len(self.paths)} path(s)>"

    def _repr_markdown_(self) -> str:
        out = []
        for depth, line in self._lines(lambda s: f"${tex(s)}$", lambda s: f"`{s}`"):
            line = line.replace("\t", " — ").rstrip(" —")
            if line.startswith("§"):
                out.append(f"\n**{line[1:]}**\n")
            else:
                out.append("  " * (depth - 1) + "- " + line)
        return "\n".join(out).strip() + "\n"

    def _repr_latex_(self) -> str:
        rows = []
        math = lambda s: "\x03" + tex(s) + "\x04"  # noqa: E731
        code = lambda s: "\x03" + r"\mathtt{" + s.replace("->", r"\to ") + "}\x04"  # noqa: E731
        for depth, line in self._lines(math, code):
            bold = line.startswith("§")
            parts = re.split("[\x03\x04]", (line[1:] if bold else line).replace("\t", " — ").rstrip(" —"))
            row = "".join(p if k % 2 else (tex_text(p) if p else "") for k, p in enumerate(parts))
            rows.append(r"\quad" * depth + " " + (r"\mathbf{" + row + "}" if bold else row))
        return "$$\\begin{array}{l}\n" + " \\\\\n".join(rows) + "\n\\end{array}$$"

    def to_text(self) -> str:
        """The derivation as plain text (the same as ``str``)."""
        return str(self)

    def to_markdown(self) -> str:
        """The derivation as Markdown with $…$ math (what Jupyter shows)."""
        return self._repr_markdown_()

    def to_latex(self) -> str:
        """The derivation as one LaTeX display-math array."""
        return self._repr_latex_()


def _path(term, labels: Dict[int, str]) -> PathDerivation:
    nodes = term.nodes
    # the chain as an index sum, y end first
    factors = [f"d{subscript(dmark(_nm(c)), labels[c.id])}/d{subscript(dmark(_nm(p)), labels[p.id])}" for c, p in term.operands]
    inner = [labels[n.id] for n in reversed(nodes[1:-1]) if labels[n.id]]
    sigma = ""
    if inner:
        sigma = f"Σ_{inner[0]} " if len(inner) == 1 else "Σ_{" + ",".join(inner) + "} "
    chain = sigma + " · ".join(factors)
    # follow opt_einsum's steps; adjacent blocks of the chain contract to d(top)/d(bottom)
    pending: List[Tuple[Node, Node, str]] = [(c, p, f"d{dmark(_nm(c))}/d{dmark(_nm(p))}") for c, p in term.operands]
    steps = []
    reused = list(getattr(term, "reused", [])) or [False] * len(term.steps)
    for k, (inds, removed, einsum_str, _rem, _blas) in enumerate(term.steps):
        picked = [pending.pop(i) for i in inds]
        position = {n.id: k for k, n in enumerate(nodes)}
        picked.sort(key=lambda t: -position[t[0].id])  # y end first
        top, bottom = picked[0][0], picked[-1][1]
        adjacent = all(picked[k][1].id == picked[k + 1][0].id for k in range(len(picked) - 1))
        result = f"d{dmark(_nm(top))}/d{dmark(_nm(bottom))}" if adjacent else "(" + ")(".join(t[2] for t in picked) + ")"
        steps.append(Step(picked[0][2], " · ".join(t[2] for t in picked[1:]), result, einsum_str,
                          "".join(sorted(removed)), term.step_flops[k],
                          bool(reused[k]) if k < len(reused) else False))
        pending.append((top, bottom, result))
    return PathDerivation(nodes, chain, term.equation, [tuple(s) for s in term.shapes], steps, term.flops,
                          term.largest_intermediate)


def explain(y: Node, x: Node, order: Order = "optimal", hold: Sequence[Node] = (),
            names: Optional[Mapping[Node, str]] = None, *, hessian: bool = False,
            at: Optional[Node] = None) -> Union[Derivation, "HessianSplit"]:
    """The derivation of dy/dx: local Jacobians, the chain as an index sum, the einsum and its cost.

    ``order`` and ``hold`` as in :func:`jacobians.jacobian`; ``names`` maps
    nodes to the names to print (``{W: "W"}``), for nodes made by ops. ``str()`` gives
    text; in Jupyter it renders as Markdown (``_repr_markdown_``) or LaTeX
    (``_repr_latex_``).

    >>> import numpy as np, jacobians as jx
    >>> X = jx.var(np.random.default_rng(0).standard_normal((3, 4)), name="X")
    >>> W = jx.var(X.value @ X.value.T, name="W")
    >>> Y = W @ X
    >>> d = jx.explain(jx.fro(Y), W, names={Y: "Y"})
    >>> d.locals[1].text()                      # the matmul's Jacobian, in the einsum's labels
    'dY_cd/dW_ab = δ_ca X_bd'
    >>> d.paths[0].equation, d.plan.flops
    ('cd,cdab->ab', 216)

    With ``hessian=True`` (y a scalar l) it explains d²l/dx² instead: its
    structure (``jx.derive(l, x, order=2)``) and the second-order chain rule
    at u (``at``, default the input of the loss) with numbers — the
    Gauss–Newton part Jᵀ H_u J and the curvature part Σ g ∂²u, each with its
    norm and eigenvalues, checked to add up to the Hessian
    (:func:`jacobians.curvature.split_hessian`).
    """
    if isinstance(x, (list, tuple)):
        raise TypeError("explain: x must be one node; call explain once per input")
    if hessian:
        from .curvature import split_hessian  # second order sits above this module

        return split_hessian(y, x, at, tuple(hold), names)
    check_call("explain", y, x, "explicit", order)
    hold = tuple(hold)
    shown = {n.id: str(v) for n, v in (names or {}).items()}
    token = _NAMES.set(shown)
    try:
        return _explain(y, x, order, hold, shown)
    finally:
        _NAMES.reset(token)


def _explain(y: Node, x: Node, order: str, hold: Tuple[Node, ...], shown: Mapping[int, str]) -> Derivation:
    p = plan(y, x, order, hold)
    nodes = between(y, x, hold) if y.id != x.id else []
    labels = node_labels(nodes)
    locals_: List[Local] = []
    for child, parent in reversed(edges(nodes)):  # y end first
        lo, li = labels[child.id], labels[parent.id]
        form = index_form(child, parent, lo, li, names=shown)
        vf = vec_form(child, parent, names=shown, form=form)
        err = None
        if vf is not None and vf.matrix is not None:
            J = local_jacobian(child, parent).reshape(child.size, parent.size)
            err = float(np.max(np.abs(J - vf.matrix))) if J.size else 0.0
        locals_.append(Local(child, parent, form, vf, err))
    paths = [_path(t, labels) for t in p.terms]
    by_order = {o: plan(y, x, o, hold).flops for o in ORDERS} if p.strategy in ("paths", "accumulate") else {}
    return Derivation(y, x, p, labels, locals_, paths, by_order, hold, shown)
