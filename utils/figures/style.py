"""Shared look of every figure: colours, saving, and the input checks the plots share (the bottom module of
:mod:`utils.figures`; the helpers below :func:`save_figure` are for its plot modules only)."""
from __future__ import annotations

import functools
import io
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from utils.runs.outputs import atomic_output

NORMAL_KIND = "normal"
NORMAL_COLOR = "#4c72b0"  # blue: normal samples in every figure
ANOMALY_PALETTE = ("#dd8452", "#c44e52", "#55a868", "#937860", "#d45087",
                   "#a89a2c", "#8c4bbf", "#7f7f7f", "#17a2b8", "#e5ae38")
SERIES_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                 "#e6ab02", "#a6761d", "#666666")  # features, scores, loss terms
REFERENCE_COLOR = "#555555"  # chance diagonal, base-rate line, notes
SAVE_DPI = 110
MAX_LABEL_CHARS = 32  # the longest name a figure shows whole (a longer one keeps its start and end)

__all__ = ["NORMAL_KIND", "NORMAL_COLOR", "ANOMALY_PALETTE", "SERIES_COLORS", "REFERENCE_COLOR",
           "SAVE_DPI", "kind_colors", "save_figure"]

Plot = TypeVar("Plot", bound=Callable[..., Figure])


def kind_colors(kinds: Iterable[str]) -> dict[str, str]:
    """``{kind: "#rrggbb"}``, normal first, so the same kinds get the same colours in every figure."""
    names = {str(k) for k in kinds}  # normal first, then the anomaly kinds by name
    order = ([NORMAL_KIND] if NORMAL_KIND in names else []) + sorted(names - {NORMAL_KIND})
    n = len(order) - (NORMAL_KIND in order)
    palette = iter(ANOMALY_PALETTE)
    if n > len(ANOMALY_PALETTE):  # many classes: evenly spaced hues
        from matplotlib import colormaps
        from matplotlib.colors import to_hex
        palette = (to_hex(colormaps["turbo"](0.05 + 0.9 * i / (n - 1))) for i in range(n))
    return {k: NORMAL_COLOR if k == NORMAL_KIND else next(palette) for k in order}


def plain_text(plot: Plot) -> Plot:
    """Decorate a plot function: the texts of its figure are shown as written, never read as mathtext (a sensor or
    kind named ``cost $x^$`` made saving the figure fail; the figures themselves write no maths)."""
    import matplotlib

    @functools.wraps(plot)
    def plotted(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context({"text.parse_math": False}):  # read when each text is made
            return plot(*args, **kwargs)
    return plotted  # type: ignore[return-value]


def new_figure(size: tuple[float, float], *grid: int, **kwargs: Any) -> tuple[Figure, Any]:
    """A constrained-layout figure of ``size`` inches and its axes (``grid`` and ``kwargs`` go to ``subplots``)."""
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(*grid, **kwargs)


def save_figure(fig: Figure, path: Path) -> np.ndarray:
    """Write ``fig`` to ``path`` as a PNG at :data:`SAVE_DPI` dpi, atomically; return its (H, W, 3) uint8 RGB image
    (so a caller logs it to TensorBoard without drawing the figure again: drawing is most of the cost)."""
    from matplotlib.image import imread
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=SAVE_DPI, facecolor="white")
    with atomic_output(path, "wb") as handle:
        handle.write(png.getvalue())
    png.seek(0)
    return (imread(png, format="png")[..., :3] * 255).round().astype(np.uint8)


def as_kinds(kind: Sequence[str] | np.ndarray, n: int) -> np.ndarray:
    """The kind of each of ``n`` samples as an (n,) string array, or a ValueError."""
    kind = np.asarray(kind).astype(str).ravel()
    if len(kind) != n:
        raise ValueError(f"kind has {len(kind)} entries but there are {n} samples")
    return kind


def as_windows(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Windows (N, T, F) or (N, T) (one feature) as a float (N, T, F) array; a ValueError naming ``name``."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:  # (N, T): one feature
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (N, T, F) or (N, T), got {x.shape}")
    return x


def short_label(name: str) -> str:
    """``name`` on one line, its middle an ellipsis when longer than :data:`MAX_LABEL_CHARS`."""
    name = " ".join(str(name).split())
    tail = (MAX_LABEL_CHARS - 1) // 3
    return name if len(name) <= MAX_LABEL_CHARS else f"{name[:MAX_LABEL_CHARS - 1 - tail]}…{name[len(name) - tail:]}"


def feature_labels(feature_names: Sequence[str] | None, f: int) -> list[str]:
    """The ``f`` feature names as shown (:func:`short_label`), or ``feature 0``, ``feature 1``, ... without names."""
    names = [short_label(n) for n in feature_names] if feature_names else [f"feature {i}" for i in range(f)]
    if len(names) != f:
        raise ValueError(f"{len(names)} feature names given for {f} features")
    return names


def axes_legend(ax: Axes, **kwargs: Any) -> None:
    """A small, slightly transparent legend in ``ax`` (``kwargs`` go to ``ax.legend``)."""
    ax.legend(fontsize=8, framealpha=0.85, **kwargs)


def figure_legend(fig: Figure, handles: list[Line2D]) -> None:
    """One legend for all panels, below them (never over the data)."""
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), fontsize=9, frameon=False)


def wrap_title(title: str, width_in: float) -> str:
    """Break a long title into lines that fit a figure ``width_in`` inches wide."""
    return textwrap.fill(title, width=max(24, int(width_in * 8.5)))
