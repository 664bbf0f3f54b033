"""Figures of the data and of training: signal examples, loss curves, latent space.

Every ``plot_*`` builds a :class:`~matplotlib.figure.Figure` directly (never ``pyplot``: thread-safe, no global
state, headless) and returns it; write it with :func:`utils.figures.style.save_figure`.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from utils.figures.style import (ANOMALY_PALETTE, NORMAL_COLOR, NORMAL_KIND, SERIES_COLORS, as_kinds,
                                 as_windows, axes_legend, feature_labels, figure_legend, kind_colors, new_figure,
                                 ordered_kinds)

__all__ = ["plot_signal_examples", "plot_loss_curves", "plot_latent"]


def plot_signal_examples(x: np.ndarray, kind: np.ndarray, feature_names: list[str],
                         seed: int = 0, max_features: int = 8) -> Figure:
    """Normal vs. each anomaly kind, per sensor: one row per feature, one column per anomaly kind.

    Each panel overlays one window of that kind (drawn with ``seed``) and the normal window at the closest
    operating point (:func:`closest_normal`), so the difference shown is the anomaly, not another level.

    Args:
        x: (N, T, F) windows (or (N, T) for one feature).
        kind: (N,) kind of each window.
        feature_names: F sensor names.
        max_features: show at most this many (the first) features.
    """
    x = as_windows(x)
    kind = as_kinds(kind, len(x))
    names = feature_labels(feature_names, x.shape[2])[:max_features]
    rng = np.random.default_rng(seed)
    kinds = ordered_kinds(kind)
    colors = kind_colors(kinds)
    pick = {k: int(rng.choice(np.flatnonzero(kind == k))) for k in kinds}
    columns = [k for k in kinds if k != NORMAL_KIND] or kinds
    cols = len(columns)
    fig, axes = new_figure((max(6.0, 3.6 * cols), max(3.6, 0.6 + 2.4 * len(names))), len(names), cols,
                           squeeze=False, sharex=True, sharey="row")
    for c, column in enumerate(columns):
        # the normal window first; alone when the only column is the normals'
        shown = {NORMAL_KIND: closest_normal(x, kind, pick[column]) if NORMAL_KIND in pick else None,
                 column: pick[column]}
        for r, feature in enumerate(names):
            ax = axes[r, c]
            for k, i in shown.items():
                if i is not None:
                    ax.plot(np.arange(x.shape[1]), x[i, :, r], color=colors[k], lw=1.3, label=k)
            ax.set_title(f"{feature}: {column}", fontsize=10)
            ax.set(xlabel="Time step", ylabel=feature)
            ax.tick_params(labelleft=True, labelbottom=True)
    fig.suptitle("Example windows: normal vs. each anomaly kind, per sensor" if cols > 1 else
                 f"Example windows: {columns[0]}")
    figure_legend(fig, [Line2D([], [], color=colors[k], lw=2, label=k) for k in kinds])
    return fig


def closest_normal(x: np.ndarray, kind: np.ndarray, target: int) -> int:
    """Index of the normal window whose operating point (per-feature medians over time, which a short anomaly barely
    moves) is closest to window ``target``'s, in units of the medians' spread over the normals."""
    normals = np.flatnonzero(kind == NORMAL_KIND)
    levels = np.median(x, axis=1)  # (N, F)
    spread = levels[normals].std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    distance = np.abs((levels[normals] - levels[target]) / spread).sum(axis=1)
    return int(normals[int(np.argmin(distance))])


def plot_loss_curves(history: dict[str, list[float]],
                     title: str = "Training and validation loss") -> Figure:
    """Loss per epoch of ``{name: [loss per epoch]}``: ``train`` and ``val`` left, other keys (loss components) right.

    Each axes is in log scale when all its values are positive: on a linear scale the first epochs' fall flattens
    the late one, which matters for early stopping.
    """
    series = {k: np.asarray(v, dtype=float) for k, v in history.items() if len(v)}
    main = {k: v for k, v in series.items() if k in ("train", "val")}
    other = {k: v for k, v in series.items() if k not in main}
    groups = [(main, title), (other, "Loss components")] if main and other else [(main or other, title)]
    fig, axes = new_figure((5.4 * len(groups) + 0.4, 4.2), 1, len(groups), squeeze=False)
    fixed = {"train": NORMAL_COLOR, "val": ANOMALY_PALETTE[0]}
    for ax, (group, ax_title) in zip(axes[0], groups):
        for i, (name, values) in enumerate(group.items()):
            ax.plot(np.arange(1, len(values) + 1), values, color=fixed.get(name, SERIES_COLORS[i % len(SERIES_COLORS)]),
                    lw=1.6, label=name, marker="o" if len(values) <= 30 else None, ms=3.5)
        values = np.concatenate([[], *group.values()])
        log = len(values) > 0 and bool(np.all(values > 0))
        if log:
            ax.set_yscale("log")
            plain = FuncFormatter(lambda value, _: f"{value:.3g}")  # 0.62, not 6.2 x 10^-1
            ax.yaxis.set_major_formatter(plain)  # minor ticks labelled only within one decade (else crowded)
            ax.yaxis.set_minor_formatter(plain if values.max() < 10 * values.min() else NullFormatter())
        if not group:
            ax.text(0.5, 0.5, "no loss recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=ax_title, xlabel="Epoch", ylabel="Loss (log scale)" if log else "Loss")
        epochs = max([len(v) for v in group.values()], default=1)
        if epochs <= 10:
            ax.set_xlim(0.5, epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        if group:
            axes_legend(ax, loc="best")
    return fig


def plot_latent(z: np.ndarray, kind: np.ndarray) -> Figure:
    """Latent codes coloured by kind: D == 2 directly, D > 2 by PCA, D == 1 against the sample index.

    Args:
        z: (N, D) latent codes, e.g. the encoder means (or (N,) for D = 1).
        kind: (N,) kind of each sample.
    """
    z = np.asarray(z, dtype=float)
    z = z[:, None] if z.ndim == 1 else z
    kind = as_kinds(kind, len(z))
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
    fig, ax = new_figure((7.0, 5.4))
    for k in ordered_kinds(kind):
        mask = kind == k
        ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colors[k], edgecolors="none",
                   alpha=0.5 if k == NORMAL_KIND else 0.8, label=f"{k} (n={int(mask.sum())})")
    ax.set(title=title, xlabel=labels[0], ylabel=labels[1])
    ax.grid(alpha=0.3)
    axes_legend(ax, loc="best", markerscale=1.5)
    return fig
