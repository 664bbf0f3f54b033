"""Per-feature scaling fitted on training normals and stored with the checkpoint; a scaled value beyond
:data:`SCALED_LIMIT` is refused, its squared error would overflow float32 (docs/data.md)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch

from utils.core.errors import DataError

EPS = 1e-12
SCALER_KINDS = ("minmax", "standard", "none")
#: Largest scaled magnitude scored: its square, 1e30, summed over up to 3e8 window cells stays under 3.4e38.
SCALED_LIMIT = 1e15
#: A feature's scale (span or std) this many times the spread of its central 98% of values: one value set it.
COLLAPSE_RATIO = 1e4

logger = logging.getLogger("anomaly")


class Scaler:
    """Scale each feature by statistics pooled over windows and time: ``minmax`` to [0, 1], ``standard`` to zero mean
    and unit variance, ``none`` not at all."""

    def __init__(self, kind: str = "minmax") -> None:
        self.kind = kind  # checked by the config and the checkpoint
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x: np.ndarray, names: Sequence[str] | None = None) -> "Scaler":
        """Fit on windows (N, T, F); warn when one feature's scale collapses (``names``: the F features' names)."""
        rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
        if self.kind == "minmax":
            self.offset, span = rows.min(axis=0), np.ptp(rows, axis=0)
        elif self.kind == "standard":
            self.offset, span = rows.mean(axis=0), rows.std(axis=0)
        else:
            self.offset, span = np.zeros(rows.shape[1]), np.ones(rows.shape[1])
        self.scale = np.where(span > EPS, span, 1.0)
        if self.kind != "none" and len(rows) and (span <= EPS).any():
            logger.warning("scaler: sensor(s) %s are constant in the training windows, so they are scaled by 1 in "
                           "their own units: any later change of them weighs in the scores by its size in those units; "
                           "leave them out (data.ignore_columns) if they carry nothing",
                           [names[f] if names is not None else int(f) for f in np.flatnonzero(span <= EPS)])
        if self.kind != "none" and len(rows):
            self._warn_collapse(rows, x.reshape(-1, x.shape[-1]), names)
        return self

    def _warn_collapse(self, rows: np.ndarray, stored: np.ndarray, names: Sequence[str] | None) -> None:
        """Warn for each feature whose scale is :data:`COLLAPSE_RATIO` times the spread of its central 98% (of the
        ``rows`` as ``stored``: float32 is fast; nearest: no overflow); DataError beyond :data:`SCALED_LIMIT` times."""
        low, high = np.percentile(stored, [1, 99], axis=0, method="nearest").astype(np.float64)
        central = high - low
        for f in np.flatnonzero((central > 0) & (self.scale > COLLAPSE_RATIO * central)):
            median = np.median(rows[:, f])
            extreme = rows[np.argmax(np.abs(rows[:, f] - median)), f]
            if abs(extreme - median) > SCALED_LIMIT * central[f]:  # refused anywhere else too
                raise DataError(f"training data, feature {_feature(f, names)}: a value of {extreme:.6g} lies "
                                f"{abs(extreme - median) / central[f]:.3g} times the spread of the "
                                f"other values ({central[f]:.6g}, their central 98%) from their median: a sensor "
                                "fault or another unit, which would leave this sensor's scale to that one value; "
                                "clean or rescale it")
            logger.warning("scaler: feature %s: a value of %.6g lies far beyond the rest (whose central 98%% spans "
                           "%.6g), so its %s scale collapses the other values into %.2g of the scaled range; clean "
                           "or rescale that value", _feature(f, names), extreme, central[f], self.kind,
                           central[f] / self.scale[f])

    def transform(self, x: np.ndarray, where: Callable[[tuple[int, ...]], str] | None = None) -> np.ndarray:
        """Raw ``x`` (N, T, F) or (rows, F) scaled, float32; DataError for a scaled value beyond +-:data:`SCALED_LIMIT`,
        its cell named by ``where`` (default: its indices)."""
        if self.offset is None:
            raise RuntimeError("Scaler.transform called before fit")
        if x.shape[-1] != len(self.offset):
            raise ValueError(f"expected {len(self.offset)} features, got {x.shape[-1]}")
        scaled = self.unchecked(x)
        if (bad := too_large(scaled)) is not None:
            raise DataError(f"{(where or _cell_text)(bad[0])}: {overflow_text(bad[1])}")
        return scaled.astype(np.float32)

    def unchecked(self, x: np.ndarray) -> np.ndarray:
        """``x`` (..., F) scaled in float64, unchecked: for callers that name the cells :func:`too_large` finds."""
        return (x - self.offset) / self.scale

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`."""
        return (x * self.scale + self.offset).astype(np.float32)

    def state_dict(self) -> dict:
        """Tensors and strings only (weights-only checkpoints)."""
        return {"kind": self.kind, "offset": torch.from_numpy(self.offset), "scale": torch.from_numpy(self.scale)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Scaler":
        """The scaler of a :meth:`state_dict`."""
        scaler = cls(state["kind"])
        scaler.offset, scaler.scale = state["offset"].numpy(), state["scale"].numpy()
        return scaler


def too_large(scaled: np.ndarray) -> tuple[tuple[int, ...], float] | None:
    """The first scaled value (row-major) beyond +-:data:`SCALED_LIMIT` and that value, or None."""
    with np.errstate(invalid="ignore"):
        bad = np.abs(scaled) > SCALED_LIMIT
    if not bad.any():
        return None
    return (index := tuple(int(v[0]) for v in np.nonzero(bad))), float(scaled[index])


def overflow_text(scaled: float) -> str:
    """Why a value whose scaled value is ``scaled`` is refused, and what to do."""
    return (f"scaled by the run's training range it is {scaled:.3g}, beyond +-{SCALED_LIMIT:.0e}: its squared error "
            "would overflow the model's float32 arithmetic (max 3.4e38); a sensor fault or another unit? clean or "
            "rescale the value")


def _cell_text(index: tuple[int, ...]) -> str:
    return (f"window {index[0]}, time step {index[1]}, feature {index[-1]}" if len(index) == 3
            else f"row {index[0]}, feature {index[-1]}")


def _feature(f: int, names: Sequence[str] | None) -> str:
    return repr(names[f]) if names is not None and f < len(names) else str(f)
