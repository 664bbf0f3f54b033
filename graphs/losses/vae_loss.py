"""VAE loss: reconstruction + beta * KL(q(z|x) || N(0, I))."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from utils.core.registry import register_loss
from utils.core.types import NonNegativeFloat


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL divergence of N(mu, exp(logvar)) from N(0, I), summed over latent dims.

    Args:
        mu: posterior means, (B, D).
        logvar: posterior log-variances, (B, D).

    Returns:
        (B,) KL per sample.
    """
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


@register_loss("vae")
class VAELoss(nn.Module):
    """Negative ELBO per sample, averaged over the batch.

    The reconstruction term is summed over time steps and features (so its scale
    matches the KL term, summed over latent dims); ``beta`` weights the KL term.

    Args:
        reconstruction: "mse" (Gaussian likelihood) or "mae" (Laplace likelihood).
        beta: weight of the KL term (beta-VAE); 0 gives a plain autoencoder.
    """

    def __init__(self, reconstruction: Literal["mse", "mae"] = "mse", beta: NonNegativeFloat = 1.0) -> None:
        super().__init__()
        self.reconstruction = reconstruction
        self.beta = beta

    def forward(self, x_hat: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """Args: x_hat, x: (B, T, F); mu, logvar: (B, D). Returns loss, recon and kl (scalars)."""
        diff = x_hat - x
        err = diff.pow(2) if self.reconstruction == "mse" else diff.abs()
        recon = err.flatten(1).sum(dim=1).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl}
