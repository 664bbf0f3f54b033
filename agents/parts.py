"""Small parts BaseAgent is built from: device choice, registry calls, schedulers, a no-op writer."""
from __future__ import annotations

from typing import Any

import torch

from utils.core.errors import ConfigError


def select_device(name: str) -> torch.device:
    """"auto" picks CUDA when available, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError('device: "cuda" was asked for but no CUDA device is available; use "auto" or "cpu"')
    return torch.device(name)


def build_component(registry: Any, section: dict[str, Any], **required: Any) -> Any:
    """Call the registered entry ``section.name`` with the section's keys plus ``required``."""
    params = {key: value for key, value in section.items() if key != "name"}
    return registry.get(section["name"])(**required, **params)


def build_scheduler(optimizer: torch.optim.Optimizer, name: str, epochs: int) -> Any:
    """None, ReduceLROnPlateau on the validation loss, or cosine annealing over the epochs."""
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


class NullWriter:
    """Stands in for SummaryWriter on ranks other than 0: logging happens once."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
