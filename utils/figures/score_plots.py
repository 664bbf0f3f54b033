"""Evaluation figures: reconstructions, ROC/PR curves, confusion matrix, score histogram."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from utils.figures.style import (REFERENCE_COLOR, SERIES_COLORS, as_kinds, as_windows, axes_legend, feature_labels,
                                 figure_legend, kind_colors, new_figure, ordered_kinds, wrap_title)

__all__ = ["plot_reconstructions", "plot_roc_pr", "plot_confusion_matrix", "plot_score_histogram"]


SCALED_LABELS = {"minmax": "Value (min-max scaled)", "standard": "Value (standardized)", "none": "Value (unscaled)"}


def plot_reconstructions(x: np.ndarray, x_hat: np.ndarray, kind: np.ndarray,
                         feature_names: list[str], error_kind: str = "mse", scaler: str = "minmax") -> Figure:
    """Original (solid) vs. reconstruction (dashed) of the first sample of each kind, one panel per kind.

    Args:
        x: (N, T, F) original windows as the model saw them, scaled (or (N, T)).
        x_hat: reconstructions, the shape of ``x``.
        kind: (N,) kind of each window.
        feature_names: F feature names.
        error_kind: ``"mse"`` or ``"mae"``: the error shown in each panel's title.
        scaler: ``"minmax"``, ``"standard"`` or ``"none"``: how the values were scaled (y-axis label).
    """
    if error_kind not in ("mse", "mae"):
        raise ValueError(f"error_kind: expected 'mse' or 'mae', got {error_kind!r}")
    x, x_hat = as_windows(x), as_windows(x_hat, "x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(f"x has shape {x.shape} but x_hat has shape {x_hat.shape}")
    kind = as_kinds(kind, len(x))
    names = feature_labels(feature_names, x.shape[2])
    kinds = ordered_kinds(kind)
    n = len(kinds)
    rows, cols = (1, n) if n <= 2 else (math.ceil(n / 2), 2)
    fig, axes = new_figure((max(7.5, 6.0 * cols), 0.8 + 3.6 * rows), rows, cols, squeeze=False)
    axes = axes.ravel()
    steps = np.arange(x.shape[1])
    handles = [Line2D([], [], color=SERIES_COLORS[i % len(SERIES_COLORS)], label=name)
               for i, name in enumerate(names) if len(names) <= len(SERIES_COLORS)]
    handles += [Line2D([], [], color="black", label="original"),
                Line2D([], [], color="black", ls="--", label="reconstruction")]
    for ax, k in zip(axes, kinds):
        i = int(np.flatnonzero(kind == k)[0])
        for f in range(x.shape[2]):
            color = SERIES_COLORS[f % len(SERIES_COLORS)]
            ax.plot(steps, x[i, :, f], color=color, lw=1.5)
            ax.plot(steps, x_hat[i, :, f], color=color, lw=1.5, ls="--")
        diff = x[i] - x_hat[i]
        error = float(np.mean(diff ** 2 if error_kind == "mse" else np.abs(diff)))
        ax.set_title(f"{k} (sample {i}), {error_kind.upper()} = {error:.3g}", color=kind_colors(kinds)[k])
        ax.set(xlabel="Time step", ylabel=SCALED_LABELS.get(scaler, "Value"))
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.remove()
    fig.suptitle("Reconstruction quality: original (solid) vs. reconstruction (dashed)")
    figure_legend(fig, handles)
    return fig


def plot_roc_pr(y_true: np.ndarray, scores: dict[str, np.ndarray], dashed: list[str] | tuple = ()) -> Figure:
    """ROC curves (left) and precision-recall curves (right) of each score, with ROC AUC and AP in the legends.

    Args:
        y_true: (N,) labels, 1 = anomaly; with one class only a note says the curves are undefined.
        scores: ``{score name: (N,) scores}``, higher = more anomalous.
        dashed: names in ``scores`` drawn dashed and thinner (the baselines beside a model's scores).
    """
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


def plot_confusion_matrix(cm: np.ndarray | list, labels: Sequence[str] = ("normal", "anomaly"),
                          title: str = "Confusion matrix") -> Figure:
    """Heatmap of a confusion matrix with counts and row-normalised percentages.

    Args:
        cm: (K, K) counts; rows = true class, columns = predicted class.
        labels: K class names, in the order of the rows.
    """
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


def plot_score_histogram(scores: np.ndarray, kind: np.ndarray, threshold: float | None,
                         title: str, xlabel: str = "Anomaly score") -> Figure:
    """Overlaid score distributions of each kind on shared bins, log-spaced when every score (and the threshold) is
    positive and they span more than two decades.

    Args:
        scores: (N,) anomaly scores.
        kind: (N,) kind of each sample.
        threshold: drawn as a dashed vertical line; None: no line.
    """
    s = np.asarray(scores, dtype=float).ravel()
    kind = as_kinds(kind, len(s))
    values = np.append(s, threshold) if threshold is not None else s
    log = bool(np.all(values > 0)) and values.max() / values.min() > 100
    u = np.log10(s) if log else s
    nbins = int(np.clip(np.sqrt(len(s)) * 1.5, 10, 60))
    edges = np.histogram_bin_edges(u, bins=nbins)
    colors = kind_colors(kind)
    fig, ax = new_figure((7.5, 4.6))
    top = 0.0
    for k in ordered_kinds(kind):
        mask = kind == k
        density, _ = np.histogram(u[mask], bins=edges, density=True)
        top = max(top, float(density.max()))
        x_edges = 10 ** edges if log else edges
        ax.stairs(density, x_edges, fill=True, alpha=0.3, color=colors[k])
        ax.stairs(density, x_edges, color=colors[k], lw=1.5, label=f"{k} (n={int(mask.sum())})")
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
