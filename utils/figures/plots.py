"""The figures of a window run: every ``plot_*`` builds a :class:`~matplotlib.figure.Figure` directly (never ``pyplot``:
thread-safe, headless) and returns it; write it with :func:`~utils.figures.save_figure`."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from utils.figures.style import (ANOMALY_PALETTE, NORMAL_COLOR, NORMAL_KIND, REFERENCE_COLOR, SERIES_COLORS, as_kinds,
                                 as_windows, axes_legend, feature_labels, figure_legend, kind_colors, new_figure,
                                 plain_text, wrap_title)

__all__ = ["plot_signal_examples", "plot_loss_curves", "plot_latent", "plot_reconstructions", "plot_roc_pr",
           "plot_confusion_matrix", "plot_score_histogram"]

SCALED_LABELS = {"minmax": "Value (min-max scaled)", "standard": "Value (standardized)", "none": "Value (unscaled)"}


@plain_text
def plot_signal_examples(x: np.ndarray, kind: np.ndarray, feature_names: list[str],
                         seed: int = 0, max_features: int = 8) -> Figure:
    """One row per feature (the first ``max_features``, the title says so of more), one column per anomaly kind: a
    window of that kind (drawn with ``seed``) over the :func:`closest_normal` one. ``x``: (N, T, F) windows (or (N, T));
    ``kind``: (N,)."""
    x = as_windows(x)
    kind = as_kinds(kind, len(x))
    names = feature_labels(feature_names, x.shape[2])[:max_features]
    left_out = x.shape[2] - len(names)
    rng, colors = np.random.default_rng(seed), kind_colors(kind)  # normal first, then the anomaly kinds by name
    pick = {k: int(rng.choice(np.flatnonzero(kind == k))) for k in colors}
    columns = [k for k in colors if k != NORMAL_KIND] or list(colors)
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
    fig.suptitle(("Example windows: normal vs. each anomaly kind, per sensor" if cols > 1 else
                  f"Example windows: {columns[0]}")
                 + (f"\nthe first {len(names)} of {x.shape[2]} sensors ({left_out} left out)" if left_out else ""))
    figure_legend(fig, [Line2D([], [], color=c, lw=2, label=k) for k, c in colors.items()])
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


@plain_text
def plot_loss_curves(history: dict[str, list[float]], title: str = "Training and validation loss") -> Figure:
    """Loss per epoch of ``{name: [loss per epoch]}``: ``train`` and ``val`` left, other keys (loss components) right,
    each axes in log scale when all its values are positive."""
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


@plain_text
def plot_latent(z: np.ndarray, kind: np.ndarray) -> Figure:
    """Latent codes ``z`` (N, D) (or (N,)) coloured by (N,) ``kind``: D > 2 by PCA, D == 1 against the sample index."""
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
    size = 6 if n > 3000 else 14 if n > 500 else 24
    fig, ax = new_figure((7.0, 5.4))
    for k, color in kind_colors(kind).items():
        mask = kind == k
        ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=color, edgecolors="none",
                   alpha=0.5 if k == NORMAL_KIND else 0.8, label=f"{k} (n={int(mask.sum())})")
    ax.set(title=title, xlabel=labels[0], ylabel=labels[1])
    ax.grid(alpha=0.3)
    axes_legend(ax, loc="best", markerscale=1.5)
    return fig


@plain_text
def plot_reconstructions(x: np.ndarray, x_hat: np.ndarray, kind: np.ndarray,
                         feature_names: list[str], error_kind: str = "mse", scaler: str = "minmax") -> Figure:
    """Original (solid) vs. reconstruction (dashed) of the first sample of each (N,) ``kind``, one panel per kind; of
    more features than :data:`SERIES_COLORS`, that many per panel: those of the largest error there (each panel's
    legend names them). ``x``, ``x_hat``: (N, T, F) scaled windows (or (N, T)); ``error_kind`` ("mse"/"mae") and
    ``scaler`` label them."""
    if error_kind not in ("mse", "mae"):
        raise ValueError(f"error_kind: expected 'mse' or 'mae', got {error_kind!r}")
    x, x_hat = as_windows(x), as_windows(x_hat, "x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(f"x has shape {x.shape} but x_hat has shape {x_hat.shape}")
    kind = as_kinds(kind, len(x))
    names = feature_labels(feature_names, x.shape[2])
    colors = kind_colors(kind)
    n = len(colors)
    rows, cols = (1, n) if n <= 2 else (math.ceil(n / 2), 2)
    fig, axes = new_figure((max(7.5, 6.0 * cols), 0.8 + 3.6 * rows), rows, cols, squeeze=False)
    axes = axes.ravel()
    steps, most = np.arange(x.shape[1]), len(SERIES_COLORS)
    chosen = len(names) > most  # hundreds of sensors drew hundreds of lines per panel
    handles = [] if chosen else [Line2D([], [], color=SERIES_COLORS[i], label=name) for i, name in enumerate(names)]
    handles += [Line2D([], [], color="black", label="original"),
                Line2D([], [], color="black", ls="--", label="reconstruction")]
    for ax, k in zip(axes, colors):
        i = int(np.flatnonzero(kind == k)[0])
        diff = x[i] - x_hat[i]
        errors = diff ** 2 if error_kind == "mse" else np.abs(diff)  # (T, F)
        shown = np.sort(np.argsort(-errors.mean(axis=0), kind="stable")[:most]) if chosen else range(len(names))
        for j, f in enumerate(shown):
            ax.plot(steps, x[i, :, f], color=SERIES_COLORS[j], lw=1.5, label=names[f])
            ax.plot(steps, x_hat[i, :, f], color=SERIES_COLORS[j], lw=1.5, ls="--")
        if chosen:
            axes_legend(ax, loc="center left", bbox_to_anchor=(1.0, 0.5))
        error = float(np.mean(errors))
        ax.set_title(f"{k} (sample {i}), {error_kind.upper()} = {error:.3g}", color=colors[k])
        ax.set(xlabel="Time step", ylabel=SCALED_LABELS.get(scaler, "Value"))
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.remove()
    fig.suptitle("Reconstruction quality: original (solid) vs. reconstruction (dashed)" + (
        f"\nper panel the {most} of {len(names)} sensors with the largest {error_kind.upper()} there" if chosen else ""))
    figure_legend(fig, handles)
    return fig


@plain_text
def plot_roc_pr(y_true: np.ndarray, scores: dict[str, np.ndarray], dashed: list[str] | tuple = ()) -> Figure:
    """ROC (left) and precision-recall curves (right) of ``{score name: (N,) scores}`` against (N,) 0/1 ``y_true``;
    the ``dashed`` names (baselines) thinner and dashed."""
    y = np.asarray(y_true).astype(int).ravel()
    both = 0 < y.sum() < len(y)
    fig, (ax_roc, ax_pr) = new_figure((11.5, 5.0), 1, 2)
    for i, (name, values) in enumerate(scores.items()):
        s = np.asarray(values, dtype=float).ravel()
        if len(s) != len(y):
            raise ValueError(f"score {name!r} has {len(s)} values but y_true has {len(y)}")
        if not both:
            continue
        line = {"color": SERIES_COLORS[i % len(SERIES_COLORS)], "lw": 1.2 if name in dashed else 1.8,
                "ls": "--" if name in dashed else "-"}
        fpr, tpr, _ = roc_curve(y, s)
        ax_roc.plot(fpr, tpr, **line, label=f"{name} (AUC = {roc_auc_score(y, s):.3f})")
        precision, recall, _ = precision_recall_curve(y, s)
        ax_pr.plot(recall, precision, **line, drawstyle="steps-post",
                   label=f"{name} (AP = {average_precision_score(y, s):.3f})")
    base = float(y.mean()) if len(y) else 0.0
    ax_roc.plot([0, 1], [0, 1], ls="--", color=REFERENCE_COLOR, lw=1, label="chance (AUC = 0.5)")
    ax_pr.axhline(base, ls="--", color=REFERENCE_COLOR, lw=1, label=f"base rate = {base:.3f}")
    for ax, title, xlabel, ylabel, loc in (
            (ax_roc, "ROC curve", "False positive rate", "True positive rate", "lower right"),
            (ax_pr, "Precision-recall curve", "Recall", "Precision", "lower left")):
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.02), title=title, xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        if not both:
            ax.text(0.5, 0.55, "undefined: y_true holds one class only", ha="center", transform=ax.transAxes,
                    color=REFERENCE_COLOR, bbox={"facecolor": "white", "edgecolor": REFERENCE_COLOR})
        axes_legend(ax, loc=loc)
    return fig


@plain_text
def plot_confusion_matrix(cm: np.ndarray | list, labels: Sequence[str] = ("normal", "anomaly"),
                          title: str = "Confusion matrix") -> Figure:
    """Heatmap of ``cm``, (K, K) counts (rows = true class, columns = predicted, ``labels`` in that order), with
    counts and row-normalised percentages."""
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (K, K) matrix, got shape {cm.shape}")
    labels = [str(label) for label in labels]
    k = cm.shape[0]
    if len(labels) != k:
        raise ValueError(f"{len(labels)} labels given for a {k}x{k} confusion matrix")
    rows = cm.sum(axis=1, keepdims=True)
    percent = np.divide(100.0 * cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    side = max(3.6, 1.1 * k + 1.8)
    fig, ax = new_figure((side + 1.4, side + 0.4))
    image = ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(float(cm.max()), 1.0))
    fig.colorbar(image, ax=ax, label="Count", shrink=0.85)
    rotate = k > 3 or max(len(label) for label in labels) > 8
    ax.set_xticks(range(k), labels, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(range(k), labels)
    fontsize = 12 if k <= 3 else 10 if k <= 6 else 8
    for (r, c), count in np.ndenumerate(cm):
        dark = count > 0.55 * image.norm.vmax
        text = f"{count:g}\n{percent[r, c]:.1f}%" if rows[r, 0] > 0 else f"{count:g}"
        ax.text(c, r, text, ha="center", va="center", fontsize=fontsize, color="white" if dark else "black")
    ax.set(title=wrap_title(title, side + 1.4), xlabel="Predicted", ylabel="True")
    return fig


@plain_text
def plot_score_histogram(scores: np.ndarray, kind: np.ndarray, threshold: float | None,
                         title: str, xlabel: str = "Anomaly score") -> Figure:
    """Overlaid distributions of (N,) ``scores`` per (N,) ``kind`` on shared bins (log-spaced over more than two
    decades); ``threshold`` a dashed line (None: none)."""
    s = np.asarray(scores, dtype=float).ravel()
    kind = as_kinds(kind, len(s))
    values = np.append(s, threshold) if threshold is not None else s
    log = bool(np.all(values > 0)) and values.max() / values.min() > 100
    u = np.log10(s) if log else s
    nbins = int(np.clip(np.sqrt(len(s)) * 1.5, 10, 60))
    edges = np.histogram_bin_edges(u, bins=nbins)
    fig, ax = new_figure((7.5, 4.6))
    top, x_edges = 0.0, 10 ** edges if log else edges
    for k, color in kind_colors(kind).items():
        mask = kind == k
        density, _ = np.histogram(u[mask], bins=edges, density=True)
        top = max(top, float(density.max()))
        ax.stairs(density, x_edges, fill=True, alpha=0.3, color=color)
        ax.stairs(density, x_edges, color=color, lw=1.5, label=f"{k} (n={int(mask.sum())})")
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", lw=1.3, label=f"threshold = {threshold:.4g}")
    if log:
        ax.set_xscale("log")
    ax.set_ylim(0, 1.25 * top if top > 0 else 1.0)  # head room for the legend
    ax.set(title=wrap_title(title, 7.5), xlabel=xlabel + (" (log scale)" if log else ""),
           ylabel="Density per log10 unit" if log else "Density")
    ax.grid(alpha=0.3)
    axes_legend(ax, loc="best")
    return fig
