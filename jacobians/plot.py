"""``plot_jacobian``: the matricized Jacobian as a heatmap, with its block structure drawn.

A Jacobian of shape ``out.shape + in.shape`` is shown as the matrix
``J.reshape(out.size, in.size)`` — rows are output entries, columns input
entries, both in numpy's row-major (C) order, so the picture *is* the matrix
dvec(y)/dvec(x) of the vec convention in :mod:`jacobians.explain`. Lines mark
where the leading index of each shape changes (thicker for outer axes), which
makes Kronecker, block and diagonal structure visible: ``Y = W X`` gives the
block diagonal ``I ⊗ Xᵀ``.

matplotlib is an optional extra (``pip install .[plot]``). The figure is drawn
on matplotlib's Agg canvas without touching pyplot or the global backend.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["plot_jacobian", "matricize", "split_shape"]

Shape = Tuple[int, ...]

MISSING_MATPLOTLIB = (
    "plot_jacobian needs matplotlib, an optional extra of jacobians: install it with "
    "pip install '.[plot]' from the source tree (or pip install matplotlib)"
)


def split_shape(shape: Shape, out_shape: Optional[Sequence[int]] = None,
                in_shape: Optional[Sequence[int]] = None) -> Tuple[Shape, Shape]:
    """Split a Jacobian's shape into (out_shape, in_shape).

    Without hints an even number of axes is split in half.

    >>> split_shape((3, 4, 3, 3))
    ((3, 4), (3, 3))
    >>> split_shape((4, 2, 3), out_shape=(4, 2))
    ((4, 2), (3,))
    """
    shape = tuple(int(s) for s in shape)
    if out_shape is not None:
        out = tuple(int(s) for s in out_shape)
        if shape[:len(out)] != out or (in_shape is not None and shape[len(out):] != tuple(in_shape)):
            raise ValueError(f"plot_jacobian: a Jacobian of shape {shape} does not start with out_shape {out}"
                             + (f" and end with in_shape {tuple(in_shape)}" if in_shape is not None else ""))
        return out, shape[len(out):]
    if in_shape is not None:
        inn = tuple(int(s) for s in in_shape)
        if len(inn) > len(shape) or shape[len(shape) - len(inn):] != inn:
            raise ValueError(f"plot_jacobian: a Jacobian of shape {shape} does not end with in_shape {inn}")
        return shape[:len(shape) - len(inn)], inn
    if len(shape) % 2:
        raise ValueError(
            f"plot_jacobian: cannot tell output axes from input axes in a Jacobian of shape {shape}; "
            "pass out_shape=y.shape (or in_shape=x.shape)"
        )
    return shape[:len(shape) // 2], shape[len(shape) // 2:]


def matricize(J: np.ndarray, out_shape: Shape, in_shape: Shape) -> np.ndarray:
    """``J`` as the (out.size × in.size) matrix dvec(y)/dvec(x), row-major vec.

    >>> matricize(np.zeros((3, 4, 3, 3)), (3, 4), (3, 3)).shape
    (12, 9)
    """
    return np.asarray(J).reshape(math.prod(out_shape), math.prod(in_shape))


def _boundaries(shape: Shape) -> list:
    """(position, level) of block lines: where axis k's index changes, for every axis but the last.

    Level 0 is the outermost axis (drawn thickest).
    """
    lines = {}
    for k in range(len(shape) - 1):
        block = math.prod(shape[k + 1:])
        total = math.prod(shape)
        for pos in range(block, total, block):
            lines.setdefault(pos, k)  # an outer boundary keeps its outer level
    return sorted(lines.items())


def _index_labels(name: str, shape: Shape) -> list:
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def plot_jacobian(
    J: np.ndarray,
    out_shape: Optional[Sequence[int]] = None,
    in_shape: Optional[Sequence[int]] = None,
    *,
    out_name: str = "y",
    in_name: str = "x",
    title: Optional[str] = None,
    ax=None,
    path: Optional[Union[str, Path]] = None,
    annotate: Optional[bool] = None,
    cmap: str = "RdBu_r",
) -> "matplotlib.figure.Figure":  # noqa: F821
    """Draw the Jacobian ``J`` (shape out.shape + in.shape) as a heatmap; return the matplotlib Figure.

    Rows are output entries and columns input entries, both in C order; lines
    mark the block boundaries of each shape. Zero is white, positive red,
    negative blue. ``path`` saves a PNG; ``ax`` draws into an existing axes;
    ``annotate`` writes the nonzero values into the cells (default: when there
    are at most 150 cells).

    >>> import numpy as np, jacobians as jx
    >>> X = np.arange(12.0).reshape(3, 4)
    >>> W = jx.var(np.eye(3), name="W")
    >>> fig = jx.plot_jacobian(jx.jacobian(W @ X, W), out_name="Y", in_name="W")
    >>> fig.axes[0].get_xlabel()
    'columns: input entries of W (3, 3), row-major'
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(MISSING_MATPLOTLIB) from exc

    J = np.asarray(J)
    if J.dtype.kind not in "fiub":
        raise TypeError(f"plot_jacobian: J must be a real numeric array, got dtype {J.dtype}")
    out, inn = split_shape(J.shape, out_shape, in_shape)
    M = matricize(J, out, inn).astype(np.float64)
    rows, cols = M.shape

    if ax is None:
        cell = min(0.45, 9.0 / max(rows, cols, 1))
        width = min(14.0, max(4.5, cols * cell + 2.6))
        height = min(12.0, max(3.2, rows * cell + 1.8))
        fig = Figure(figsize=(width, height))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure

    vmax = float(np.nanmax(np.abs(M))) if M.size else 0.0
    vmax = vmax if vmax > 0 and np.isfinite(vmax) else 1.0
    ratio = max(rows, cols) / max(1, min(rows, cols))
    im = ax.imshow(M, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest",
                   aspect="equal" if ratio <= 6 else "auto")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("entry value (0 is white)")

    for pos, level in _boundaries(out):
        ax.axhline(pos - 0.5, color="black", lw=1.6 if level == 0 else 0.6, alpha=0.9 if level == 0 else 0.5)
    for pos, level in _boundaries(inn):
        ax.axvline(pos - 0.5, color="black", lw=1.6 if level == 0 else 0.6, alpha=0.9 if level == 0 else 0.5)

    ax.set_ylabel(f"rows: output entries of {out_name} {out}, row-major" if out else f"output {out_name} (a scalar)")
    ax.set_xlabel(f"columns: input entries of {in_name} {inn}, row-major" if inn else f"input {in_name} (a scalar)")
    shape_txt = f"{out} + {inn}"
    ax.set_title(title or f"Jacobian d{out_name}/d{in_name}: shape {shape_txt}, drawn as a {rows}×{cols} matrix",
                 fontsize=10)

    for axis, n, shape, name in ((ax.yaxis, rows, out, out_name), (ax.xaxis, cols, inn, in_name)):
        labels = _index_labels(name, shape)
        if n <= 24:
            ticks = list(range(n))
        else:  # label the starts of the outermost blocks only
            step = math.prod(shape[1:]) if len(shape) > 1 else max(1, n // 12)
            while n // step > 24:
                step *= 2
            ticks = list(range(0, n, step))
        axis.set_ticks(ticks)
        axis.set_ticklabels([labels[t] for t in ticks], fontsize=7 if n > 12 else 8)
    if cols <= 24:
        for lab in ax.get_xticklabels():
            lab.set_rotation(90)

    if annotate is None:
        annotate = M.size <= 150
    if annotate:
        for (i, j), v in np.ndenumerate(M):
            if v != 0:
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6.5,
                        color="white" if abs(v) > 0.6 * vmax else "black")

    if path is not None:
        fig.savefig(Path(path), dpi=130, bbox_inches="tight")
    return fig
