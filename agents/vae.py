"""VAE agent: ELBO training and three anomaly scores.

Scores (higher = more anomalous):
- ``reconstruction``: mean squared reconstruction error of the window (posterior mean decoded);
- ``latent_euclidean``: distance of the posterior mean from the training normals' latent centre;
- ``latent_mahalanobis``: Mahalanobis distance of the posterior mean under a Gaussian
  fitted to the training normals' posterior means with Ledoit-Wolf shrinkage.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from agents.base import BaseAgent
from utils.runtime.batching import batch_indices
from utils.core.registry import register_agent
from utils.scoring.scores import GaussianFit, euclidean_distance, fit_gaussian, mahalanobis_distance, reconstruction_error


@register_agent("vae")
class VAEAgent(BaseAgent):
    """Variational autoencoder on windows (N, T, F), scored three ways."""

    supported_model = ("vae",)
    supported_loss = ("vae",)
    score_names = ("reconstruction", "latent_euclidean", "latent_mahalanobis")

    def model_inputs(self) -> dict[str, Any]:
        _, time_steps, n_features = self.data.train.x.shape
        return {"time_steps": time_steps, "n_features": n_features}

    def compute_loss(self, x: Tensor) -> dict[str, Tensor]:
        x_hat, mu, logvar = self.model(x)
        return self.loss_fn(x_hat, x, mu, logvar)

    def encode_all(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior means (N, D) and reconstructions from them (N, T, F), in batches."""
        mus, recons = [], []
        for idx in batch_indices(len(x), self.config.evaluation.batch_size):
            mu, _ = self.model.encode(x[idx.to(x.device)])
            mus.append(mu)
            recons.append(self.model.decode(mu))
        return torch.cat(mus), torch.cat(recons)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.encode_all(x)[1]

    def fit_scoring(self, train_x: Tensor, val_x: Tensor) -> dict[str, Any]:
        mu, _ = self.encode_all(train_x)
        fit = fit_gaussian(mu.double().cpu().numpy())
        return {"latent_mean": torch.from_numpy(fit.mean), "latent_precision": torch.from_numpy(fit.precision),
                "latent_shrinkage": float(fit.shrinkage)}

    def score(self, x: Tensor) -> dict[str, np.ndarray]:
        mus, errors = [], []
        for idx in batch_indices(len(x), self.config.evaluation.batch_size):  # errors per batch: no (N, T, F) copy
            part = x[idx.to(x.device)]
            mu, _ = self.model.encode(part)
            mus.append(mu)
            errors.append(reconstruction_error(part, self.model.decode(mu), "mse"))
        z = torch.cat(mus).double().cpu().numpy()
        fit = GaussianFit(mean=self.scoring["latent_mean"].numpy(), precision=self.scoring["latent_precision"].numpy(),
                          shrinkage=self.scoring["latent_shrinkage"])
        return {
            "reconstruction": torch.cat(errors).double().cpu().numpy(),
            "latent_euclidean": euclidean_distance(z, fit.mean),
            "latent_mahalanobis": mahalanobis_distance(z, fit),
        }

    def extra_figures(self, test_x: Tensor, scores: dict[str, np.ndarray]) -> dict[str, Any]:
        from utils.figures.plots import plot_latent

        mu, _ = self.encode_all(test_x)
        return {"latent_space": plot_latent(mu.cpu().numpy(), self.data.test.kind)}
