"""Losses (importing the package fills the registry): each returns a dict of scalars, ``"loss"`` back-propagated
and any others logged as its components; ``x_hat``, ``x``: (B, ...) of equal shape."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from utils.core.registry import register_loss
from utils.core.types import NonNegativeFloat


@register_loss("mae")
class MAELoss(nn.Module):
    """Mean absolute error over every element of the batch; other model outputs are ignored."""

    def forward(self, x_hat: Tensor, x: Tensor, **unused: Tensor) -> dict[str, Tensor]:
        return {"loss": torch.mean(torch.abs(x_hat - x))}


@register_loss("mse")
class MSELoss(nn.Module):
    """Mean squared error over every element of the batch; other model outputs are ignored."""

    def forward(self, x_hat: Tensor, x: Tensor, **unused: Tensor) -> dict[str, Tensor]:
        return {"loss": torch.mean((x_hat - x) ** 2)}


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample (B,), summed over latent dims; mu, logvar: (B, D)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


@register_loss("vae")
class VAELoss(nn.Module):
    """Negative ELBO per sample (reconstruction + beta * KL(q(z|x) || N(0, I))), averaged over the batch; the
    reconstruction term ("mse": Gaussian, "mae": Laplace likelihood) is summed over time steps and features, as the
    KL term is over latent dims; ``beta`` 0 gives a plain autoencoder."""

    def __init__(self, reconstruction: Literal["mse", "mae"] = "mse", beta: NonNegativeFloat = 1.0) -> None:
        super().__init__()
        self.reconstruction, self.beta = reconstruction, beta

    def forward(self, x_hat: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """x_hat, x: (B, T, F); mu, logvar: (B, D). Returns loss, recon and kl (scalars)."""
        diff = x_hat - x
        recon = (diff.pow(2) if self.reconstruction == "mse" else diff.abs()).flatten(1).sum(dim=1).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}
