"""Memory guard: every dense Jacobian is priced from its shape before it is allocated.

A 1000×1000 matmul has a Jacobian of 10¹² entries (8 TB in float64). Asking for
one must give a clear refusal in milliseconds, not a frozen machine, so every
explicit allocation in the package goes through :func:`zeros` or
:func:`check_bytes`, and :func:`check_plan` prices a whole contraction plan
from shapes alone.

The limit bounds each call: every array a route builds (a local Jacobian, a
planned intermediate, the result) is priced against what is left of the limit
after the call's working set — the values, cotangents or tangents its sweep
holds, one per node, and their bookkeeping — which :func:`reserve` sets aside
first. It defaults to a quarter of the machine's physical
memory — or of the container's memory limit (cgroup) when that is smaller.
``JACOBIANS_MEMORY_LIMIT`` (bytes, or with a suffix K/M/G/T, e.g. ``4G``),
:func:`set_memory_limit` and the context manager :func:`memory_limit` change it;
``set_memory_limit`` wins over the environment variable.

>>> import numpy as np
>>> with memory_limit("1M"):
...     check_bytes((1000, 1000), np.float64, "jacobian of matmul (Y)")
Traceback (most recent call last):
...
jacobians.memory.JacobianTooLarge: jacobian of matmul (Y): ... (1000, 1000) ... above the memory limit of 1.0 MiB. ...
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
import functools
import math
import os
import re
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "JacobianTooLarge", "set_memory_limit", "get_memory_limit", "memory_limit", "check_bytes",
    "check_plan", "zeros", "empty", "suggested_chunks", "DEFAULT_FRACTION", "reserve", "working_set",
    "BOOKKEEPING", "ufunc_buffers", "human_bytes",
]

DEFAULT_FRACTION = 0.25  # of physical memory (or of the cgroup limit, if smaller)
_ENV = "JACOBIANS_MEMORY_LIMIT"
_limit_override: Optional[int] = None  # set_memory_limit: the process-wide setting
_limit_context: ContextVar[Optional[int]] = ContextVar("jacobians_memory_limit", default=None)  # memory_limit
_reserved: ContextVar[Tuple[int, str]] = ContextVar("jacobians_reserved", default=(0, ""))  # reserve(): bytes, what

Bytes = Union[int, str]


class JacobianTooLarge(MemoryError):
    """An explicit Jacobian (or a planned intermediate) would exceed the memory limit.

    A ``MemoryError``; ``what``, ``shape``, ``nbytes`` and ``limit`` hold the
    facts the message states.
    """

    def __init__(self, message: str, what: str = "", shape: Tuple[int, ...] = (),
                 nbytes: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.what, self.shape, self.nbytes, self.limit = what, tuple(shape), int(nbytes), int(limit)


# ----------------------------------------------------------------- the limit
def _cgroup_limit() -> Optional[int]:
    """The container's memory limit in bytes (cgroup v2 or v1), or None when unlimited."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 writes a huge number for "no limit"
            return int(text)
    return None


@functools.lru_cache(maxsize=1)  # machine facts: read once, not on every priced allocation
def _physical_memory() -> int:
    try:
        total = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 * 2**30
    box = _cgroup_limit()
    return min(total, box) if box else total


_BYTES = re.compile(r"^([0-9]*\.?[0-9]+(?:E[+-]?[0-9]+)?)\s*([KMGTP]?)(?:I?B)?$")
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


def parse_bytes(text: Bytes, source: str = _ENV) -> int:
    """A positive byte count from an int or a string such as ``"512M"``, ``"4 GiB"``, ``"1e9"``.

    Suffixes K, M, G, T, P are powers of 1024 (``KB``/``KiB`` spellings accepted).

    >>> parse_bytes("4G"), parse_bytes("1.5 KiB"), parse_bytes(1000)
    (4294967296, 1536, 1000)
    """
    if isinstance(text, (bool, np.bool_)):
        raise ValueError(f"{source}: expected a number of bytes, got {text!r}")
    if isinstance(text, (int, np.integer)):
        value = int(text)
    elif isinstance(text, (float, np.floating)):
        if not np.isfinite(text) or text != int(text):
            raise ValueError(f"{source}={text!r} is not a whole number of bytes; pass an int (or a string "
                             "such as '1.5G')")
        value = int(text)
    else:
        match = _BYTES.match(str(text).strip().upper())
        if not match:
            raise ValueError(
                f"{source}={text!r} is not a byte count; use a number of bytes, optionally with "
                "K, M, G or T (powers of 1024), e.g. 4G or 512M"
            )
        amount = float(match.group(1)) * _UNITS[match.group(2)]
        if not np.isfinite(amount) or amount >= 2**63:
            raise ValueError(f"{source}={text!r} is beyond any machine's memory; give a byte count below 8 EiB")
        value = int(amount)
    if value <= 0:
        raise ValueError(f"{source}={text!r}: the memory limit must be a positive number of bytes")
    return value


def get_memory_limit() -> int:
    """The byte limit in force: an enclosing memory_limit() block of this thread or task, else
    set_memory_limit, else JACOBIANS_MEMORY_LIMIT, else 1/4 of RAM.

    >>> get_memory_limit() > 0
    True
    """
    scoped = _limit_context.get()
    if scoped is not None:
        return scoped
    if _limit_override is not None:
        return _limit_override
    env = os.environ.get(_ENV, "").strip()
    if env:
        return parse_bytes(env)
    return int(_physical_memory() * DEFAULT_FRACTION)


def set_memory_limit(nbytes: Optional[Bytes]) -> Optional[int]:
    """Set the largest single explicit array (bytes, or a string like ``"2G"``); None restores
    the default (the environment variable, else 1/4 of physical memory). Returns the
    previous setting (None if there was none), so it can be restored.

    >>> previous = set_memory_limit("1M"); get_memory_limit()
    1048576
    >>> set_memory_limit(previous)
    1048576
    """
    global _limit_override
    if nbytes is not None:
        try:
            nbytes = parse_bytes(nbytes, "set_memory_limit")
        except ValueError as exc:
            raise ValueError(f"{exc} (or None to restore the default)") from None
    previous, _limit_override = _limit_override, nbytes
    return previous


@contextlib.contextmanager
def memory_limit(nbytes: Optional[Bytes]) -> Iterator[int]:
    """Set the memory limit inside a block, for this thread (or asyncio task) only; restored exactly on exit.

    Blocks nest; other threads keep their own limit (``contextvars``). ``None``
    inside a block means the process-wide setting.

    >>> with memory_limit("64K") as limit:
    ...     limit
    65536
    """
    value = None if nbytes is None else parse_bytes(nbytes, "memory_limit")
    token = _limit_context.set(value)
    try:
        yield get_memory_limit()
    finally:
        _limit_context.reset(token)


# ------------------------------------------------------------------- pricing
def human_bytes(n: float) -> str:
    """A byte count for messages: ``512 B``, ``1.5 KiB``, ``7.3 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _refuse(what: str, shape: Tuple[int, ...], dtype: Any, nbytes: int, limit: int, held: str = "") -> None:
    raise JacobianTooLarge(
        f"{what}: the explicit array of shape {shape} ({np.dtype(dtype).name}) needs {human_bytes(nbytes)} "
        f"({nbytes} bytes){held}, above the memory limit of {human_bytes(limit)}. "
        f'For a Jacobian larger than memory, jx.jacobian(y, x, chunks="{suggested_chunks(limit)}") returns a '
        'lazy dask array computed block by block (pip install "jacobians[scale]"). '
        'For a gradient use method="vjp" (it never builds a Jacobian); for one row of the Jacobian '
        "use jx.grad(jx.sum(g * y), x); or use smaller sizes, or raise the limit with "
        "jx.set_memory_limit(nbytes) or the environment variable JACOBIANS_MEMORY_LIMIT (e.g. 16G).",
        what=what, shape=shape, nbytes=nbytes, limit=limit,
    )


def check_bytes(shape: Sequence[int], dtype: Any, what: str) -> int:
    """Raise :class:`JacobianTooLarge` if an array of ``shape`` and ``dtype`` exceeds what is left of the
    limit (the limit less the working set an enclosing :func:`reserve` holds for the call).

    ``what`` names the op or contraction step, for the message. Returns the bytes.
    Nothing is allocated: the price is computed from the shape.

    >>> check_bytes((10, 10), np.float32, "jacobian of tanh")
    400
    """
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    limit = get_memory_limit()
    held, holder = _reserved.get()
    if nbytes > limit:
        _refuse(what, shape, dtype, nbytes, limit)
    if nbytes + held > limit:
        _refuse(what, shape, dtype, nbytes, limit, f" beside the {human_bytes(held)} the call already holds ({holder})")
    return nbytes


# Python objects a route keeps per node while it runs (dict entries, tuples, plans, factored forms),
# an upper bound measured by benchmarks/memory_peaks.py on random graphs of small arrays.
BOOKKEEPING = 4096


def ufunc_buffers(elements: int) -> int:
    """Elements numpy's buffered ufunc loops may allocate on arrays of ``elements``: a buffer per operand
    (3) of ``np.getbufsize()`` elements at most — what adding a product through a strided view costs.

    >>> ufunc_buffers(100), ufunc_buffers(10**6) == 3 * np.getbufsize()
    (300, True)
    """
    return 3 * min(np.getbufsize(), int(elements))


def working_set(nodes: Sequence[Any], copies: int = 1, itemsize: Optional[int] = None, temporaries: int = 4,
                bookkeeping: int = BOOKKEEPING) -> int:
    """Bytes a sweep over ``nodes`` may hold at once: ``copies`` arrays the size of each node (its
    cotangent, tangent or recomputed value), ``temporaries`` more the size of the largest (one op's
    rule at work) and numpy's ufunc buffers for it (:func:`ufunc_buffers`), and ``bookkeeping`` bytes
    per node (:data:`BOOKKEEPING`). ``itemsize`` overrides the nodes' own (8 for the float64 numeric route).

    >>> import jacobians as jx
    >>> x = jx.var(np.ones(1000), name="x")
    >>> working_set([x, jx.tanh(x)]) == 2 * 8000 + 4 * 8000 + 3 * 8000 + 2 * BOOKKEEPING
    True
    """
    sizes = [n.size for n in nodes]
    items = [itemsize or n.dtype.itemsize for n in nodes]
    largest = max(range(len(sizes)), key=sizes.__getitem__, default=None)
    if largest is None:
        return 0
    one = sizes[largest] * items[largest]
    return (copies * sum(n * i for n, i in zip(sizes, items)) + temporaries * one
            + ufunc_buffers(sizes[largest]) * items[largest] + bookkeeping * len(sizes))


class reserve:
    """Set ``nbytes`` of the limit aside for a call's working set (see :func:`working_set`), inside a block.

    Refuses at once when the working set alone is above what is left; inside the
    block every priced array must fit beside it, so the limit bounds the call's
    peak, not only each array. Blocks nest (a Hessian's gradients) and are
    per thread, like :func:`memory_limit`. (A class, not a generator: it wraps every gradient.)

    >>> with memory_limit("1M"), reserve(700 * 1024, "the cotangents of 3 nodes"):
    ...     check_bytes((500, 100), np.float64, "jacobian of tanh")
    Traceback (most recent call last):
    ...
    jacobians.memory.JacobianTooLarge: jacobian of tanh: ... needs 390.6 KiB (400000 bytes) beside the 700.0 KiB the call already holds (the cotangents of 3 nodes), above the memory limit of 1.0 MiB. ...
    """

    __slots__ = ("nbytes", "what", "token")

    def __init__(self, nbytes: int, what: str) -> None:
        self.nbytes, self.what, self.token = int(nbytes), what, None

    def __enter__(self) -> int:
        held, holder = _reserved.get()
        total, limit = held + self.nbytes, get_memory_limit()
        if total > limit:
            raise JacobianTooLarge(
                f"{self.what}: the call's working set needs {human_bytes(self.nbytes)} ({self.nbytes} bytes)"
                f"{f' beside the {human_bytes(held)} already held ({holder})' if held else ''}, above the memory limit "
                f"of {human_bytes(limit)}. Use smaller sizes, or raise the limit with jx.set_memory_limit(nbytes) or "
                "the environment variable JACOBIANS_MEMORY_LIMIT (e.g. 16G).",
                what=self.what, shape=(self.nbytes,), nbytes=total, limit=limit,
            )
        self.token = _reserved.set((total, self.what if not held else f"{holder}; {self.what}"))
        return total

    def __exit__(self, *exc: Any) -> None:
        _reserved.reset(self.token)


CHUNKS_CAP = 128 * 2**20  # the largest block chunks="auto" suggests: dask's own default chunk size


def suggested_chunks(limit: Optional[int] = None) -> str:
    """A chunk size for the memory limit in force (or ``limit`` bytes): an eighth of it, at most 128 MiB.

    An eighth leaves room for a few threads, each holding the block it
    computes and the block it writes. A power of two, in dask's notation.

    >>> suggested_chunks(2**30), suggested_chunks(2**20), suggested_chunks(2**40)
    ('128MiB', '128KiB', '128MiB')
    """
    limit = get_memory_limit() if limit is None else int(limit)
    target = max(min(limit // 8, CHUNKS_CAP), 1)
    size = 1 << (target.bit_length() - 1)
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size // scale}{unit}"
    return f"{size}B"


def zeros(shape: Sequence[int], dtype: Any, what: str) -> np.ndarray:
    """A zeroed C-ordered array, after the memory guard has priced it.

    >>> zeros((2, 3), np.float64, "jacobian of sum").shape
    (2, 3)
    """
    check_bytes(shape, dtype, what)
    return np.zeros(tuple(shape), dtype=dtype)


def empty(shape: Sequence[int], dtype: Any, what: str) -> np.ndarray:
    """An uninitialized C-ordered array (every entry is written next), after the memory guard has priced it."""
    check_bytes(shape, dtype, what)
    return np.empty(tuple(shape), dtype=dtype)


def check_plan(plan: Any, extra: Optional[Callable[[Any, Any], int]] = None) -> int:
    """Price every array an explicit-route plan (:class:`jacobians.Plan`) will build: the result,
    each local Jacobian and each planned intermediate — from shapes, before anything is built —
    and what each step holds at once (its operands, its product, the running sum over paths),
    so the limit bounds the call's peak, not only each array.

    ``extra(child, parent)`` gives the elements that building a local Jacobian holds
    beside it (:func:`jacobians.graph.local_extra`, which the explicit route passes);
    they are added to each step that builds one.

    Raises :class:`JacobianTooLarge` naming the first array above the limit (so a refusal
    never waits for an affordable Jacobian to be built first). Returns the largest price.

    >>> import jacobians as jx
    >>> A = jx.var(np.ones((40, 40)), name="A")
    >>> p = jx.plan(jx.fro(jx.tanh(A) @ A), A)
    >>> check_plan(p) == (40 ** 4 + 3 * 40 * 40) * 8   # dY/dA, dl/dY, their product and the sum over 2 paths
    True
    >>> with memory_limit("1M"):
    ...     check_plan(p)
    Traceback (most recent call last):
    ...
    jacobians.memory.JacobianTooLarge: jacobian dfro#.../dA, local Jacobian of ... (40, 40, 40, 40) ...
    """
    y, x = plan.y, plan.x
    dtype = np.result_type(y.dtype, x.dtype)
    what = f"jacobian d{y.name}/d{x.name}"
    prices = [check_bytes(y.shape + x.shape, dtype, what)]

    def local(child: Any, parent: Any) -> None:
        prices.append(check_bytes(child.shape + parent.shape, child.dtype,
                                  f"{what}, local Jacobian of {child.op.name} ({child.name}) "
                                  f"w.r.t. {parent.name}"))

    building = extra or (lambda child, parent: 0)
    result = math.prod(y.shape + x.shape) if len(plan.terms) > 1 else 0  # the sum over paths stays live
    for term in plan.terms:
        for child, parent in term.operands:
            local(child, parent)
        made = max((building(c, p) for c, p in term.operands), default=0)  # building one of the step's operands
        for step in term.steps:
            einsum_str = step[2]
            ins, out = einsum_str.split("->")
            size = lambda labels: math.prod(term.size_dict[c] for c in labels)  # noqa: E731
            prices.append(check_bytes([size(out)], y.dtype, f"{what}, contraction step {einsum_str}"))
            live = sum(size(s) for s in ins.split(",")) + size(out) + result + made  # held at once during the step
            prices.append(check_bytes([live], y.dtype, f"{what}, contraction step {einsum_str} with its operands "
                                                       f"(and the running sum over paths) live at once"))
    for _eq, (child, parent), _flops in plan.steps:  # node-by-node accumulation
        local(child, parent)
        if plan.order == "forward":
            partial = child.shape + x.shape  # T[child] = dchild/dx
        else:
            partial = y.shape + parent.shape  # A[parent] = dy/dparent
        prices.append(check_bytes(partial, y.dtype, f"{what}, accumulated partial of shape {partial}"))
        live = math.prod(partial) * 2 + math.prod(child.shape + parent.shape) + building(child, parent)
        prices.append(check_bytes([live], y.dtype, f"{what}, an accumulation step with its operands live at once"))
    return max(prices)
