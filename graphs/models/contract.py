"""The contract every model in ``graphs/models`` keeps; a new model is one file that subclasses it.

A model is a plain ``nn.Module`` that reconstructs windows. To add one:

1. Create ``graphs/models/<name>.py`` with a class decorated ``@register_model("<name>")``
   that subclasses :class:`ReconstructionModel` (the package imports every module in the
   folder, so nothing else needs an import).
2. Its constructor takes ``time_steps`` and ``n_features`` (given by the agent from the
   data; no default) followed by keyword hyper-parameters **with defaults and type hints**.
   The config validator reads those hints, so annotate ranges with the types of
   :mod:`utils.core.types` (``PositiveInt``, ``Dropout``, ``Literal[...]``): a bad value in a
   config or ``--set`` then exits 2 naming ``model.<key>``.
3. Implement :meth:`forward`. In ``eval()`` mode ``forward(x)`` with ``x`` (B, T, F) returns the
   reconstruction (B, T, F) that the scores use. In ``train()`` mode it may differ (a VAE
   samples, a recurrent decoder may use teacher forcing).
4. If training needs more than the reconstruction (a VAE's ``mu`` and ``logvar`` for the KL
   term), override :meth:`training_outputs` and list the keys in :attr:`outputs`; the loss
   receives them as keyword arguments. A loss whose arguments the model does not give is
   refused when the config is validated.
5. If the model has a latent space, implement :meth:`encode` (B, T, F) -> (B, D): the latent
   scores (``latent_euclidean``, ``latent_mahalanobis``) and the latent-space figure then work.
6. Add a config in ``configs/`` and a row in the README's table. The registry-parametrized
   tests build it, train it for a step, reload it, score and export a tiny run of it.

Everything scoring needs besides (error statistics, thresholds, the scaler) lives outside the
model, in the trained detector (:mod:`agents.detector.detector`).
"""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class ReconstructionModel(nn.Module):
    """Base class of the models: reconstruct windows (B, T, F).

    Args:
        time_steps: window length ``T`` (from the data).
        n_features: sensors per time step ``F`` (from the data).

    Attributes:
        outputs: keys of :meth:`training_outputs`, in the order a loss takes them.
        default_scores: the scores a run computes when ``evaluation.scores`` is not set.
    """

    outputs: ClassVar[tuple[str, ...]] = ("x_hat",)
    default_scores: ClassVar[tuple[str, ...]] = ("reconstruction", "error_gaussian")

    def __init__(self, time_steps: int, n_features: int) -> None:
        super().__init__()
        self.time_steps = int(time_steps)
        self.n_features = int(n_features)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct windows.

        Args:
            x: windows (B, T, F), scaled.

        Returns:
            The reconstruction (B, T, F); in ``eval()`` mode the one every score uses.
        """
        raise NotImplementedError

    def training_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """What the loss takes for a batch (B, T, F): ``{"x_hat": (B, T, F), ...}`` (keys: :attr:`outputs`)."""
        return {"x_hat": self(x)}

    def encode(self, x: Tensor) -> Tensor:
        """Latent code (B, D) of windows (B, T, F); only models with a latent space implement it."""
        raise NotImplementedError(f"{type(self).__name__} has no latent space")

    @classmethod
    def has_latent(cls) -> bool:
        """Whether the model implements :meth:`encode` (latent scores need it)."""
        return cls.encode is not ReconstructionModel.encode
