"""jx.plot_jacobian: a PNG is written, the picture is the matricized Jacobian, block lines sit
on the shape boundaries, and without matplotlib the error names the extra to install."""
import sys

import numpy as np
import pytest

import jacobians as jx
from jacobians.plot import split_shape

pytest.importorskip("matplotlib")


@pytest.fixture
def dY_dW():
    X = np.random.default_rng(0).standard_normal((3, 4))
    W = jx.var(X @ X.T, name="W")
    return jx.jacobian(W @ X, W), X


def test_png_is_written(tmp_path, dY_dW):
    from matplotlib.image import imread

    J, _ = dY_dW
    path = tmp_path / "dY_dW.png"
    fig = jx.plot_jacobian(J, out_name="Y", in_name="W", path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 200
    ax = fig.axes[0]
    assert "Y" in ax.get_ylabel() and "output" in ax.get_ylabel()
    assert "W" in ax.get_xlabel() and "input" in ax.get_xlabel()
    assert "(3, 4) + (3, 3)" in ax.get_title()


def test_the_image_is_the_kronecker_matrix(dY_dW):
    J, X = dY_dW
    fig = jx.plot_jacobian(J, (3, 4))
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(shown), np.kron(np.eye(3), X.T))  # I ⊗ Xᵀ, row-major vec


def test_block_lines_on_shape_boundaries(dY_dW):
    J, _ = dY_dW
    ax = jx.plot_jacobian(J, (3, 4), (3, 3)).axes[0]
    horizontal = sorted(line.get_ydata()[0] for line in ax.lines if line.get_ydata()[0] == line.get_ydata()[1])
    vertical = sorted(line.get_xdata()[0] for line in ax.lines if line.get_xdata()[0] == line.get_xdata()[1])
    assert horizontal == [3.5, 7.5]  # Y's row index changes every 4 output entries
    assert vertical == [2.5, 5.5]  # W's row index changes every 3 input entries


def test_gradient_and_axes_argument():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    out = jx.plot_jacobian(np.arange(6.0).reshape(2, 3), out_shape=(), in_name="W", ax=ax)
    assert out is fig and "scalar" in ax.get_ylabel()


def test_shape_split_errors():
    with pytest.raises(ValueError, match="pass out_shape="):
        jx.plot_jacobian(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="does not start with out_shape"):
        split_shape((2, 3, 4), out_shape=(3,))
    assert split_shape((2, 3, 4), in_shape=(4,)) == ((2, 3), (4,))


def test_missing_matplotlib_names_the_extra(monkeypatch, dY_dW):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r"pip install '\.\[plot\]'"):
        jx.plot_jacobian(dY_dW[0])


def test_cli_plot_without_matplotlib_exits_2(monkeypatch, tmp_path, capsys):
    from jacobians.__main__ import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", "--plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".[plot]" in err
