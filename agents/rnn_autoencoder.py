"""Recurrent-autoencoder agent (EncDec-AD, Malhotra et al. 2016, arXiv:1607.00148).

Training reconstructs normal windows with the decoder mode set by the model's
``teacher_forcing`` flag (true previous values, one fused RNN call) or free
running (its own previous predictions). Validation losses, reconstructions and
scores always use free running (``model.eval()``), as in the paper.

Scores (higher = more anomalous):
- ``reconstruction_mae``: mean absolute reconstruction error of the window;
- ``error_gaussian``: the paper's score. The absolute error vectors
  ``e = |x - x̂|`` of the *validation* normals (flattened to ``T*F`` per window)
  are fitted with a Gaussian (mean, Ledoit-Wolf shrunk covariance); a window
  scores the Mahalanobis distance of its own error vector
  (:func:`utils.scoring.scores.error_gaussian_score`).

Thresholds: the validation normals' ``error_gaussian`` scores are in-sample
(the Gaussian was fitted on them), so :meth:`RNNAutoencoderAgent.threshold_scores`
gives cross-fitted ones for a percentile threshold that holds on new normals.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.base import BaseAgent
from utils.runtime.batching import batch_indices
from utils.core.registry import register_agent
from utils.scoring.scores import (
    GaussianFit,
    absolute_error_vectors,
    error_gaussian_score,
    fit_error_gaussian,
    reconstruction_error,
)


@register_agent("rnn_autoencoder")
class RNNAutoencoderAgent(BaseAgent):
    """LSTM/GRU encoder-decoder trained on normal windows (N, T, F), scored two ways."""

    supported_model = ("recurrent_ae",)
    supported_loss = ("mae", "mse")
    supported_data = None
    score_names = ("reconstruction_mae", "error_gaussian")
    threshold_folds = 5

    def model_inputs(self) -> dict[str, Any]:
        """The model's ``n_features`` comes from the data: windows are (N, T, F)."""
        return {"n_features": int(self.data.train.x.shape[-1])}

    def compute_loss(self, x: Tensor) -> dict[str, Tensor]:
        """Reconstruction loss of a batch (B, T, F).

        The model picks its decoder mode: the configured training mode in
        ``train()`` mode, free running in ``eval()`` mode (validation loss).
        """
        return self.loss_fn(self.model(x), x)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Free-running reconstruction (N, T, F) of scaled windows (N, T, F), in batches."""
        was_training = self.model.training
        self.model.eval()
        try:
            parts = [self.model(x[idx.to(x.device)], teacher_forcing=False)
                     for idx in batch_indices(len(x), self.config.evaluation.batch_size)]
        finally:
            self.model.train(was_training)
        return torch.cat(parts) if parts else x.new_zeros(x.shape)

    def error_vectors(self, x: Tensor) -> np.ndarray:
        """Absolute error vectors ``|x - x̂|`` (N, T, F), float64 NumPy."""
        return absolute_error_vectors(x, self.reconstruct(x))

    def fit_scoring(self, train_x: Tensor, val_x: Tensor) -> dict[str, Any]:
        """Fit the error Gaussian on the validation normals' error vectors.

        Args:
            train_x: scaled training normals (N_train, T, F); unused, the paper
                fits on held-out normals whose errors are not shrunk by training.
            val_x: scaled validation normals (N_val, T, F), N_val >= 2.

        Returns:
            Tensors and floats only (best.pt is loaded with ``weights_only=True``):
            ``error_mean`` (T*F,), ``error_precision`` (T*F, T*F), ``error_shrinkage``.
        """
        fit = fit_error_gaussian(self.error_vectors(val_x))
        return {"error_mean": torch.from_numpy(fit.mean), "error_precision": torch.from_numpy(fit.precision),
                "error_shrinkage": float(fit.shrinkage)}

    def error_fit(self) -> GaussianFit:
        """The fitted error Gaussian from ``self.scoring``."""
        return GaussianFit(mean=self.scoring["error_mean"].cpu().numpy(),
                           precision=self.scoring["error_precision"].cpu().numpy(),
                           shrinkage=float(self.scoring["error_shrinkage"]))

    def score(self, x: Tensor) -> dict[str, np.ndarray]:
        """Both scores of windows (N, T, F): ``{name: (N,) float64}``."""
        recon = self.reconstruct(x)
        return {
            "reconstruction_mae": reconstruction_error(x, recon, "mae").double().cpu().numpy(),
            "error_gaussian": error_gaussian_score(absolute_error_vectors(x, recon), self.error_fit()),
        }

    def threshold_scores(self, val_x: Tensor) -> dict[str, np.ndarray]:
        """Validation-normal scores to fit thresholds on, out of sample for every score.

        ``error_gaussian`` is fitted on these very windows, so their in-sample
        distances are smaller than those of unseen normals (58 windows in 140
        dimensions on ECG5000: a 99th-percentile threshold then flags ~20 % of
        test normals). Here each window is scored by a Gaussian fitted on the
        other folds instead (K-fold cross-fitting), as a deployed detector
        would score new normals.

        Args:
            val_x: scaled validation normals (N, T, F).

        Returns:
            ``{name: (N,) float64}`` like :meth:`score`.
        """
        recon = self.reconstruct(val_x)
        errors = absolute_error_vectors(val_x, recon)
        return {
            "reconstruction_mae": reconstruction_error(val_x, recon, "mae").double().cpu().numpy(),
            "error_gaussian": cross_fitted_error_gaussian(errors, self.threshold_folds),
        }


def cross_fitted_error_gaussian(errors: np.ndarray, n_folds: int) -> np.ndarray:
    """Error-Gaussian score of each window under a Gaussian fitted on the other folds.

    Args:
        errors: error vectors of normal windows, (N, T, F); folds are ``i % n_folds``.
        n_folds: folds, >= 2 (fewer when N is small: every fit keeps >= 2 windows).

    Returns:
        (N,) float64 out-of-fold Mahalanobis distances (in-sample when N < 4).
    """
    n = len(errors)
    k = min(n_folds, n // 2)
    if k < 2:
        return error_gaussian_score(errors, fit_error_gaussian(errors))
    fold = np.arange(n) % k
    out = np.empty(n, dtype=np.float64)
    for f in range(k):
        held = fold == f
        out[held] = error_gaussian_score(errors[held], fit_error_gaussian(errors[~held]))
    return out
