"""Reconstruction losses: mean absolute and mean squared error."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from utils.core.registry import register_loss


@register_loss("mae")
class MAELoss(nn.Module):
    """Mean absolute error over every element of the batch."""

    def forward(self, x_hat: Tensor, x: Tensor, **unused: Tensor) -> dict[str, Tensor]:
        """Args: x_hat, x: (B, ...) of equal shape; other model outputs are ignored. Returns {"loss": scalar}."""
        return {"loss": torch.mean(torch.abs(x_hat - x))}


@register_loss("mse")
class MSELoss(nn.Module):
    """Mean squared error over every element of the batch."""

    def forward(self, x_hat: Tensor, x: Tensor, **unused: Tensor) -> dict[str, Tensor]:
        """Args: x_hat, x: (B, ...) of equal shape; other model outputs are ignored. Returns {"loss": scalar}."""
        return {"loss": torch.mean((x_hat - x) ** 2)}
