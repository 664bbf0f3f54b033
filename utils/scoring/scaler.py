"""Per-feature scaling fitted on training normals and stored with the checkpoint."""
from __future__ import annotations

import numpy as np
import torch

EPS = 1e-12


class Scaler:
    """Scale each feature (sensor) with statistics pooled over windows and time.

    ``minmax`` maps the training normals' range to [0, 1] (as sklearn's
    MinMaxScaler on (N*T, F) rows), ``standard`` to zero mean and unit variance,
    ``none`` leaves data unchanged.

    Args:
        kind: "minmax", "standard" or "none".
    """

    def __init__(self, kind: str = "minmax") -> None:
        if kind not in ("minmax", "standard", "none"):
            raise ValueError(f"scaler must be minmax, standard or none, got {kind!r}")
        self.kind = kind
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> "Scaler":
        """Fit on windows (N, T, F)."""
        rows = x.reshape(-1, x.shape[-1]).astype(np.float64)
        if self.kind == "minmax":
            self.offset, span = rows.min(axis=0), np.ptp(rows, axis=0)
        elif self.kind == "standard":
            self.offset, span = rows.mean(axis=0), rows.std(axis=0)
        else:
            self.offset, span = np.zeros(rows.shape[1]), np.ones(rows.shape[1])
        self.scale = np.where(span > EPS, span, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, T, F) -> scaled float32 array of the same shape."""
        if self.offset is None:
            raise RuntimeError("Scaler.transform called before fit")
        if x.shape[-1] != len(self.offset):
            raise ValueError(f"expected {len(self.offset)} features, got {x.shape[-1]}")
        return ((x - self.offset) / self.scale).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`."""
        return (x * self.scale + self.offset).astype(np.float32)

    def state_dict(self) -> dict:
        """Tensors and strings only, so a weights-only checkpoint can hold it."""
        return {"kind": self.kind, "offset": torch.from_numpy(self.offset), "scale": torch.from_numpy(self.scale)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Scaler":
        """Rebuild a fitted scaler from :meth:`state_dict`."""
        scaler = cls(state["kind"])
        scaler.offset = state["offset"].numpy()
        scaler.scale = state["scale"].numpy()
        return scaler
