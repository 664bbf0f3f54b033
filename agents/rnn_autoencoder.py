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
  (:func:`utils.scores.error_gaussian_score`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.base import BaseAgent
from utils.batching import batch_indices
from utils.registry import register_agent
from utils.scores import (
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
        errors = absolute_error_vectors(x, recon)
        return {
            "reconstruction_mae": reconstruction_error(x, recon, "mae").double().cpu().numpy(),
            "error_gaussian": error_gaussian_score(errors, self.error_fit()),
        }
