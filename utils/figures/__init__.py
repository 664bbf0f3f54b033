"""Figures and the run report.

Modules, imports one way (each imports only the ones above it):

- :mod:`~utils.figures.style`: colours, :func:`kind_colors`, :func:`save_figure`,
  the input checks shared by the plots;
- :mod:`~utils.figures.data`: signal examples, loss curves, latent space;
- :mod:`~utils.figures.score_plots`: reconstructions, ROC/PR curves, confusion
  matrix, score histogram;
- :mod:`~utils.figures.timeline`: the timeline of a long recording (sensors, score,
  labelled ranges, incidents), drawn from :mod:`~utils.figures.timeline_data` (its min/max
  :func:`~utils.figures.timeline_data.envelope`, x axis and checked inputs, no Matplotlib);
- :mod:`~utils.figures.report`: the Markdown run report (no Matplotlib; not
  re-exported here, import it as ``utils.figures.report``).

Import the plots from the package: ``from utils.figures import plot_roc_pr, save_figure``.
Importing it imports Matplotlib (never ``pyplot``) and scikit-learn's metrics,
so callers that may not plot import it inside the function that plots.
"""
from utils.figures.data import plot_latent, plot_loss_curves, plot_signal_examples
from utils.figures.score_plots import (
    plot_confusion_matrix,
    plot_reconstructions,
    plot_roc_pr,
    plot_score_histogram,
)
from utils.figures.style import (ANOMALY_PALETTE, NORMAL_COLOR, NORMAL_KIND, SAVE_DPI, SERIES_COLORS,
                                 kind_colors, save_figure)
from utils.figures.timeline import envelope, plot_timeline

__all__ = ["NORMAL_KIND", "NORMAL_COLOR", "ANOMALY_PALETTE", "SERIES_COLORS", "SAVE_DPI",
           "kind_colors", "save_figure",
           "plot_signal_examples", "plot_loss_curves", "plot_latent",
           "plot_reconstructions", "plot_roc_pr", "plot_confusion_matrix", "plot_score_histogram",
           "envelope", "plot_timeline"]
