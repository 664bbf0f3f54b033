"""Figures for data, training and latent space (object-oriented Matplotlib only).

Every ``plot_*`` function builds and returns a :class:`matplotlib.figure.Figure`
created directly (never through ``pyplot``), so plotting is thread-safe, keeps no
global state and works headless; write it with :func:`save_figure`. Colours are
consistent across figures: ``normal`` is always :data:`NORMAL_COLOR` and each
anomaly kind gets its colour from :func:`kind_colors`.

The evaluation figures (:func:`plot_reconstructions`, :func:`plot_roc_pr`,
:func:`plot_confusion_matrix`, :func:`plot_score_histogram`) live in
:mod:`utils.figures.plots_eval` and can be imported from here too.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

NORMAL_KIND = "normal"
NORMAL_COLOR = "#4c72b0"  # blue: normal samples in every figure
_ANOMALY_PALETTE = ("#dd8452", "#c44e52", "#55a868", "#937860", "#d45087",
                    "#a89a2c", "#8c4bbf", "#7f7f7f", "#17a2b8", "#e5ae38")
SERIES_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                 "#e6ab02", "#a6761d", "#666666")  # features, scores, loss terms
SAVE_DPI = 110
_EVAL_FUNCTIONS = ("plot_reconstructions", "plot_roc_pr", "plot_confusion_matrix",
                   "plot_score_histogram")

__all__ = ["NORMAL_KIND", "NORMAL_COLOR", "SAVE_DPI", "kind_colors", "save_figure",
           "plot_signal_examples", "plot_loss_curves", "plot_latent", *_EVAL_FUNCTIONS]


def __getattr__(name: str) -> Any:
    """Lazily re-export the evaluation figures of :mod:`utils.figures.plots_eval`."""
    if name in _EVAL_FUNCTIONS:
        from . import plots_eval
        return getattr(plots_eval, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def kind_colors(kinds: Iterable[str]) -> dict[str, str]:
    """Map each sample kind to a fixed hex colour.

    ``"normal"`` is always :data:`NORMAL_COLOR`; anomaly kinds are sorted by name
    and take the palette in that order, so the same set of kinds gets the same
    colours in every figure.

    Args:
        kinds: Kind names (duplicates allowed, any order).

    Returns:
        ``{kind: "#rrggbb"}`` for every distinct kind.
    """
    names = {str(k) for k in kinds}
    colors = {NORMAL_KIND: NORMAL_COLOR} if NORMAL_KIND in names else {}
    anomalies = sorted(names - {NORMAL_KIND})
    palette = list(_ANOMALY_PALETTE)
    if len(anomalies) > len(palette):  # many classes: evenly spaced hues
        from matplotlib import colormaps
        from matplotlib.colors import to_hex
        cmap = colormaps["turbo"]
        palette = [to_hex(cmap(0.05 + 0.9 * i / (len(anomalies) - 1))) for i in range(len(anomalies))]
    colors.update(zip(anomalies, palette))
    return colors


def save_figure(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG at :data:`SAVE_DPI` dpi, atomically.

    The image goes to a temporary file in the same folder, then replaces ``path``
    with :func:`os.replace`, so a reader never sees a half-written file.

    Args:
        fig: The figure to write.
        path: Destination ``.png`` file; missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=SAVE_DPI, facecolor="white")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a figure is not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _as_kinds(kind: Sequence[str] | np.ndarray, n: int) -> np.ndarray:
    kind = np.asarray(kind).astype(str).ravel()
    if len(kind) != n:
        raise ValueError(f"kind has {len(kind)} entries but there are {n} samples")
    return kind


def _ordered_kinds(kind: np.ndarray) -> list[str]:
    """Distinct kinds: ``normal`` first, then anomaly kinds sorted by name."""
    names = set(kind.tolist())
    return ([NORMAL_KIND] if NORMAL_KIND in names else []) + sorted(names - {NORMAL_KIND})


def _as_windows(x: np.ndarray, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:  # (N, T): one feature
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (N, T, F) or (N, T), got {x.shape}")
    return x


def _feature_names(feature_names: Sequence[str] | None, f: int) -> list[str]:
    names = list(feature_names) if feature_names else [f"feature {i}" for i in range(f)]
    if len(names) != f:
        raise ValueError(f"{len(names)} feature names given for {f} features")
    return names


def _legend(ax: Axes, **kwargs: Any) -> None:
    ax.legend(fontsize=8, framealpha=0.85, **kwargs)


def _figure_legend(fig: Figure, handles: list[Line2D]) -> None:
    """One legend for all panels, below them (never over the data)."""
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
               fontsize=9, frameon=False)


def plot_signal_examples(x: np.ndarray, kind: np.ndarray, feature_names: list[str],
                         seed: int = 0, max_features: int = 8) -> Figure:
    """Normal vs. each anomaly kind, per sensor.

    A grid with one row per feature and one column per anomaly kind; each panel
    overlays one normal window and one window of that kind (both drawn with
    ``seed``). Without anomalies there is a single ``normal`` column. One figure
    legend (below the panels) maps colours to kinds.

    Args:
        x: Windows, shape (N, T, F) (or (N, T) for one feature).
        kind: Kind of each window, shape (N,); ``"normal"`` means normal.
        feature_names: F sensor names (row labels).
        seed: Seed of the random choice of example windows.
        max_features: At most this many features (the first ones) are shown.

    Returns:
        The figure.
    """
    x = _as_windows(x)
    kind = _as_kinds(kind, len(x))
    names = _feature_names(feature_names, x.shape[2])[:max_features]
    rng = np.random.default_rng(seed)
    kinds = _ordered_kinds(kind)
    colors = kind_colors(kinds)
    pick = {k: int(rng.choice(np.flatnonzero(kind == k))) for k in kinds}
    columns = [k for k in kinds if k != NORMAL_KIND] or kinds
    rows, cols = len(names), len(columns)
    fig = Figure(figsize=(max(6.0, 3.6 * cols), max(3.6, 0.6 + 2.4 * rows)), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey="row")
    steps = np.arange(x.shape[1])
    for r, feature in enumerate(names):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            for k in dict.fromkeys([NORMAL_KIND, column]):
                if k in pick:
                    ax.plot(steps, x[pick[k], :, r], color=colors[k], lw=1.3, label=k)
            ax.set_title(f"{feature}: {column}", fontsize=10)
            ax.set_xlabel("Time step")
            ax.set_ylabel(feature)
            ax.tick_params(labelleft=True, labelbottom=True)
    fig.suptitle("Example windows: normal vs. each anomaly kind, per sensor" if cols > 1 else
                 f"Example windows: {columns[0]}")
    _figure_legend(fig, [Line2D([], [], color=colors[k], lw=2, label=k) for k in kinds])
    return fig


def plot_loss_curves(history: dict[str, list[float]],
                     title: str = "Training and validation loss") -> Figure:
    """Loss per epoch.

    ``train`` and ``val`` go on the left axes; every other key (loss components
    such as ``train_recon``, ``train_kl``) on a second axes to the right, in log
    scale when all its values are positive.

    Args:
        history: ``{name: [loss per epoch]}``; epochs are numbered from 1.
        title: Title of the left axes.

    Returns:
        The figure.
    """
    series = {k: np.asarray(v, dtype=float) for k, v in history.items() if len(v)}
    main = {k: v for k, v in series.items() if k in ("train", "val")}
    other = {k: v for k, v in series.items() if k not in main}
    groups = [(main, title), (other, "Loss components")] if main and other else \
        [(main or other, title)]
    fig = Figure(figsize=(5.4 * len(groups) + 0.4, 4.2), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    fixed = {"train": NORMAL_COLOR, "val": _ANOMALY_PALETTE[0]}
    for ax, (group, ax_title) in zip(axes, groups):
        for i, (name, values) in enumerate(group.items()):
            color = fixed.get(name, SERIES_COLORS[i % len(SERIES_COLORS)])
            ax.plot(np.arange(1, len(values) + 1), values, color=color, lw=1.6, label=name,
                    marker="o" if len(values) <= 30 else None, ms=3.5)
        log = group is other and all(bool(np.all(v > 0)) for v in group.values()) and bool(group)
        if log:
            ax.set_yscale("log")
        if not group:
            ax.text(0.5, 0.5, "no loss recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(ax_title)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Loss (log scale)" if log else "Loss")
        epochs = max([len(v) for v in group.values()], default=1)
        if epochs <= 10:
            ax.set_xlim(0.5, epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        if group:
            _legend(ax, loc="best")
    return fig


def plot_latent(z: np.ndarray, kind: np.ndarray) -> Figure:
    """Latent codes coloured by kind.

    D == 2 is drawn directly (axes ``z1``/``z2``); D > 2 is projected to 2-D
    with PCA (axes ``PC1 (xx% var)``); D == 1 is drawn against the sample index.

    Args:
        z: Latent codes (e.g. the encoder means), shape (N, D) (or (N,) for D = 1).
        kind: Kind of each sample, shape (N,).

    Returns:
        The figure.
    """
    z = np.asarray(z, dtype=float)
    z = z[:, None] if z.ndim == 1 else z
    kind = _as_kinds(kind, len(z))
    n, d = z.shape
    if d == 1:
        xy, labels, title = np.c_[np.arange(n), z[:, 0]], ("Sample index", "z1"), "Latent space (1-D)"
    elif d == 2 or n < 2:
        xy, labels, title = z[:, :2], ("z1", "z2"), "Latent space"
    else:
        from sklearn.decomposition import PCA
        pca = PCA(n_components=2).fit(z)
        ratio = np.nan_to_num(pca.explained_variance_ratio_) * 100
        xy = pca.transform(z)
        labels = (f"PC1 ({ratio[0]:.1f}% var)", f"PC2 ({ratio[1]:.1f}% var)")
        title = f"Latent space (PCA of {d}-D codes)"
    colors = kind_colors(kind)
    size = 6 if n > 3000 else 14 if n > 500 else 24
    fig = Figure(figsize=(7.0, 5.4), layout="constrained")
    ax = fig.subplots()
    for k in _ordered_kinds(kind):
        mask = kind == k
        ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colors[k], edgecolors="none",
                   alpha=0.5 if k == NORMAL_KIND else 0.8, label=f"{k} (n={int(mask.sum())})")
    ax.set_title(title)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.grid(alpha=0.3)
    _legend(ax, loc="best", markerscale=1.5)
    return fig
