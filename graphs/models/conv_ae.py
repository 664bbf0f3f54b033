"""1-D convolutional autoencoder over time: strided Conv1d encoder, linear bottleneck, mirrored decoder."""
from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from graphs.models.contract import ReconstructionModel
from utils.core.registry import register_model
from utils.core.types import PositiveInt


@register_model("conv_ae")
class ConvAutoencoder(ReconstructionModel):
    """Convolutional autoencoder: the sensors are the channels, convolutions run along time.

    Encoder: per width of ``channels`` a ``Conv1d`` (stride ``stride``, padding ``kernel_size // 2``), a GroupNorm
    (up to 8 groups) if ``norm="group"``, and the activation; the flattened last map (B, C, L) maps linearly to the
    latent ``z`` (B, D). Decoder: the mirror, each ``ConvTranspose1d`` with the ``output_padding`` that gives its
    stage's length back (any T >= 1, no shape-dependent control flow: it exports with a free batch axis), then a
    ``Conv1d`` head to F channels. No BatchNorm, so the eval output does not depend on the batch.
    """

    default_scores = ("reconstruction", "error_gaussian", "latent_mahalanobis")

    def __init__(self, time_steps: int, n_features: int,
                 channels: list[PositiveInt] = [32, 64],  # noqa: B006 (read-only default)
                 kernel_size: PositiveInt = 5, stride: PositiveInt = 2, latent_dim: PositiveInt = 16,
                 activation: Literal["relu", "gelu"] = "relu", norm: Literal["none", "group"] = "none",
                 output_activation: Literal["sigmoid", "none"] = "none") -> None:
        super().__init__(time_steps, n_features)
        pad = kernel_size // 2
        widths = [n_features, *channels]
        lengths = [time_steps]  # length after each encoder stage
        for _ in channels:
            lengths.append((lengths[-1] + 2 * pad - kernel_size) // stride + 1)
        act = {"relu": nn.ReLU, "gelu": nn.GELU}[activation]

        def block(conv: nn.Module, width: int) -> list[nn.Module]:
            return [conv, *([nn.GroupNorm(math.gcd(8, width), width)] if norm == "group" else []), act()]
        self.encoder = nn.Sequential(*(layer for c_in, c_out in zip(widths[:-1], widths[1:])
                                       for layer in block(nn.Conv1d(c_in, c_out, kernel_size, stride, pad), c_out)))
        self.code_shape = (widths[-1], lengths[-1])
        self.to_latent = nn.Linear(widths[-1] * lengths[-1], latent_dim)
        self.from_latent = nn.Linear(latent_dim, widths[-1] * lengths[-1])
        decoder: list[nn.Module] = [act()]
        dec_widths = [*reversed(channels), channels[0]] if channels else []
        for i, (c_in, c_out) in enumerate(zip(dec_widths[:-1], dec_widths[1:])):
            l_in, l_out = lengths[-1 - i], lengths[-2 - i]
            extra = l_out - ((l_in - 1) * stride - 2 * pad + kernel_size)  # in [0, stride - 1]
            decoder += block(nn.ConvTranspose1d(c_in, c_out, kernel_size, stride, pad, output_padding=extra), c_out)
        self.decoder = nn.Sequential(*decoder)
        self.head = nn.Conv1d(channels[0] if channels else n_features, n_features, kernel_size, padding="same")
        self.output = nn.Sigmoid() if output_activation == "sigmoid" else nn.Identity()

    def encode(self, x: Tensor) -> Tensor:
        """(B, T, F) -> the bottleneck z (B, D)."""
        return self.to_latent(self.encoder(x.transpose(1, 2)).flatten(1))

    def decode(self, z: Tensor) -> Tensor:
        """(B, D) -> reconstruction (B, T, F)."""
        return self.output(self.head(self.decoder(self.from_latent(z).view(-1, *self.code_shape)))).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction (B, T, F) of windows (B, T, F); the same in training and eval mode."""
        return self.decode(self.encode(x))
