"""The contract every model keeps, :class:`ReconstructionModel`; adding a model: docs/design.md (Add a model)."""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class ReconstructionModel(nn.Module):
    """Base class of the models: reconstruct windows (B, T, F).

    A subclass takes ``time_steps`` (T) and ``n_features`` (F) from the data, then keyword hyper-parameters with
    defaults and :mod:`utils.core.types` hints (the config validator reads them). In ``eval()`` mode ``forward``
    gives the reconstruction the scores use; in training mode it may differ (a VAE samples).
    """

    outputs: ClassVar[tuple[str, ...]] = ("x_hat",)  # keys of training_outputs, in the order a loss takes them
    default_scores: ClassVar[tuple[str, ...]] = ("reconstruction", "error_gaussian")  # without evaluation.scores

    def __init__(self, time_steps: int, n_features: int) -> None:
        super().__init__()
        self.time_steps, self.n_features = int(time_steps), int(n_features)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction (B, T, F) of scaled windows ``x`` (B, T, F)."""
        raise NotImplementedError

    def training_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """What the loss takes for a batch (B, T, F): ``{"x_hat": (B, T, F), ...}``, keyed by :attr:`outputs`."""
        return {"x_hat": self(x)}

    def encode(self, x: Tensor) -> Tensor:
        """Latent code (B, D) of windows (B, T, F), for the latent scores; only models with a latent space have it."""
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    @classmethod
    def has_latent(cls) -> bool:
        """Whether the model implements :meth:`encode` (latent scores need it)."""
        return cls.encode is not ReconstructionModel.encode
