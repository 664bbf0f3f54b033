"""Small parts BaseAgent is built from: device choice, registry calls, schedulers, a no-op writer, the training state."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from utils.core.errors import CheckpointError, ConfigError


def select_device(name: str | torch.device) -> torch.device:
    """"auto" picks CUDA when available, else CPU; ValueError for what is no device (the config checks its own)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f'device: {name!r} is not a device; give "auto", "cpu", "cuda" or "cuda:N"') from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f'device: "{name}" was asked for but no CUDA device is available; use "auto" or "cpu"')
    return device


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


@dataclass
class TrainState:
    """Where training stands; saved in ``last.pt`` (top-level keys) and restored exactly on resume. ``best_epoch``
    is 1-based; ``batch_in_epoch`` and ``epoch_totals`` (sample-weighted loss sums) are non-zero only mid-epoch."""

    epoch: int = 0
    global_step: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: dict[str, list[float]] = field(default_factory=dict)
    batch_in_epoch: int = 0
    epoch_totals: dict[str, float] = field(default_factory=dict)

    OPTIONAL = ("batch_in_epoch", "epoch_totals")  # absent from checkpoints written at an epoch's end

    def record_epoch(self, train: dict[str, float], val: dict[str, float], lr: float) -> None:
        """Append an epoch to the history: ``train``/``val`` (loss) and ``train_<key>``/``val_<key>``, ``lr``."""
        for name, value in [*epoch_values(train, val), ("lr", lr)]:
            self.history.setdefault(name, []).append(value)

    def update_best(self, val_loss: float, min_delta: float, epoch: int, min_delta_rel: float = 0.0) -> bool:
        """Track the best validation loss; whether ``epoch`` (0-based) beat it by max(min_delta, min_delta_rel*|best|)."""
        margin = max(min_delta, min_delta_rel * abs(self.best_val)) if math.isfinite(self.best_val) else 0.0
        improved = val_loss < self.best_val - margin
        if improved:
            self.best_val, self.best_epoch, self.bad_epochs = val_loss, epoch + 1, 0
        else:
            self.bad_epochs += 1
        return improved

    @classmethod
    def required_keys(cls) -> list[str]:
        """The fields every training checkpoint holds."""
        return [f.name for f in fields(cls) if f.name not in cls.OPTIONAL]

    def state_dict(self) -> dict[str, Any]:
        """A plain dict (numbers, lists, dicts) to store in a checkpoint."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        """Restore from a checkpoint dict, checking every field's type (CheckpointError); a mid-epoch field it lacks is
        reset (the others are there: :func:`agents.detector.checkpoint.check_training_checkpoint` checked them)."""
        for name, default in asdict(TrainState()).items():
            setattr(self, name, _checked(name, state.get(name, default), default, source))
        self.epoch_totals = {key: float(value) for key, value in self.epoch_totals.items()}


def epoch_values(train: dict[str, float], val: dict[str, float]) -> list[tuple[str, float]]:
    """An epoch's losses by name: ``train``/``val`` (the loss) and ``train_<key>``/``val_<key>``."""
    return [(prefix if key == "loss" else f"{prefix}_{key}", value)
            for prefix, logs in (("train", train), ("val", val)) for key, value in logs.items()]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


#: By the type of a field's default: whether a value is one, and the words for it.
_KINDS = {bool: (lambda v: isinstance(v, bool), "bool"),
          int: (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer"),
          float: (_is_number, "float"),  # inf is the best_val of a run before its first validation; NaN is damage
          dict: (lambda v: isinstance(v, dict), "dict")}


def _checked(name: str, value: Any, default: Any, source: str) -> Any:
    """``value`` if it is of the kind of ``default`` (ints for ints, numbers for floats, dicts for dicts)."""
    ok, expected = _KINDS[type(default)]
    if not ok(value):
        raise CheckpointError(f"{source}: field {name!r} holds {_short(value)} ({type(value).__name__}); expected "
                              f"{expected}")
    listed = name == "history"  # lists of numbers by name; epoch_totals: numbers by name
    for key, item in value.items() if isinstance(default, dict) else ():
        items = item if isinstance(item, list) else [item]
        if not isinstance(key, str) or not all(_is_number(x) for x in items) or listed != isinstance(item, list):
            raise CheckpointError(f"{source}: field '{name}.{key}' holds {_short(item)}; expected "
                                  f"{'a list of numbers' if listed else 'a number'}")
    return float(value) if isinstance(default, float) else value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
