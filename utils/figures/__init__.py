"""Figures (object-oriented Matplotlib, never ``pyplot``) and the run report (:mod:`utils.figures.report`). Importing
it imports Matplotlib and scikit-learn: callers that may not plot import it inside the function that plots."""
from utils.figures.plots import (plot_confusion_matrix, plot_latent, plot_loss_curves, plot_reconstructions,
                                 plot_roc_pr, plot_score_histogram, plot_signal_examples)
from utils.figures.style import (ANOMALY_PALETTE, NORMAL_COLOR, NORMAL_KIND, SAVE_DPI, SERIES_COLORS,
                                 kind_colors, save_figure)
from utils.figures.timeline import envelope, plot_timeline

__all__ = ["NORMAL_KIND", "NORMAL_COLOR", "ANOMALY_PALETTE", "SERIES_COLORS", "SAVE_DPI", "kind_colors", "save_figure",
           "plot_signal_examples", "plot_loss_curves", "plot_latent", "plot_reconstructions", "plot_roc_pr",
           "plot_confusion_matrix", "plot_score_histogram", "envelope", "plot_timeline"]
