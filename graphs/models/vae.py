"""Variational autoencoder over flattened windows (Kingma & Welling, 2014)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from graphs.models.contract import ReconstructionModel
from utils.core.registry import register_model
from utils.core.types import PositiveInt


def _mlp(sizes: list[int]) -> nn.Sequential:
    return nn.Sequential(*(m for n_in, n_out in zip(sizes[:-1], sizes[1:]) for m in (nn.Linear(n_in, n_out), nn.ReLU())))


@register_model("vae")
class VAE(ReconstructionModel):
    """MLP VAE: a window (T, F) is flattened, encoded to q(z|x) = N(mu, diag(exp(logvar))); the latent space
    is the posterior mean ``mu``. The decoder mirrors the encoder's ``hidden_sizes``.
    """

    outputs = ("x_hat", "mu", "logvar")
    default_scores = ("reconstruction", "latent_euclidean", "latent_mahalanobis")

    def __init__(self, time_steps: int, n_features: int,
                 hidden_sizes: list[PositiveInt] = [128, 64],  # noqa: B006 (read-only default)
                 latent_dim: PositiveInt = 8, output_activation: Literal["sigmoid", "none"] = "sigmoid") -> None:
        super().__init__(time_steps, n_features)
        input_dim = time_steps * n_features
        self.encoder = _mlp([input_dim, *hidden_sizes])
        last = hidden_sizes[-1] if hidden_sizes else input_dim
        self.to_mu = nn.Linear(last, latent_dim)
        self.to_logvar = nn.Linear(last, latent_dim)
        decoder_sizes = [latent_dim, *reversed(hidden_sizes)]
        self.decoder = nn.Sequential(_mlp(decoder_sizes), nn.Linear(decoder_sizes[-1], input_dim))
        self.output = nn.Sigmoid() if output_activation == "sigmoid" else nn.Identity()

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, F) -> mu, logvar of q(z|x), each (B, D)."""
        h = self.encoder(x.flatten(1))
        return self.to_mu(h), self.to_logvar(h)

    def encode(self, x: Tensor) -> Tensor:
        """(B, T, F) -> the posterior mean mu (B, D)."""
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """(B, D) -> reconstruction (B, T, F)."""
        return self.output(self.decoder(z)).view(-1, self.time_steps, self.n_features)

    def training_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """``x`` (B, T, F) -> ``x_hat`` (B, T, F), ``mu``, ``logvar`` (B, D); z sampled in training mode, mu in eval."""
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return {"x_hat": self.decode(z), "mu": mu, "logvar": logvar}

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction (B, T, F) of windows (B, T, F): from a sample of q(z|x) in training mode, mu in eval mode."""
        return self.training_outputs(x)["x_hat"]
