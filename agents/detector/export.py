"""Export a trained detector's scoring forward as ONNX or TorchScript (``--mode export``; docs/export.md).

The graph takes raw float32 windows (the scaler folded in, in float64 like :class:`agents.detector.scaler.Scaler`)
and returns the run's first reconstruction-error score, its per-feature contributions and the reconstruction;
the threshold and what a deployment needs go to ``FILE.json`` beside it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from agents.detector.detector import Detector
from utils.runs.tracing import INPUT_NAME, write_export


class ScoringForward(nn.Module):
    """Raw windows (B, T, F) -> (score (B,), contributions (B, F), reconstruction (B, T, F)).

    Args:
        kind: ``"mse"`` or ``"mae"``: the error of the score and contributions.
        offset, scale: the fitted scaler's per-feature statistics (F,).
    """

    def __init__(self, model: nn.Module, kind: str, offset: Tensor, scale: Tensor) -> None:
        super().__init__()
        self.model, self.kind = model.eval(), kind
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float64))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64))

    def forward(self, windows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = ((windows.double() - self.offset) / self.scale).float()
        recon = self.model(x)
        diff = x - recon
        err = diff * diff if self.kind == "mse" else diff.abs()
        return err.flatten(1).mean(dim=1), err.mean(dim=1), recon


def export_detector(detector: Detector, fmt: str, output: str | Path, overwrite: bool = False,
                    config_path: str | Path | None = None) -> dict[str, Any]:
    """Write the scoring forward as ``fmt`` to ``output`` and its metadata (returned) to ``output.json``, atomically
    (existing files only with ``overwrite``, never ``config_path``, the config file the command read).

    Raises:
        ConfigError: unknown format.
        UserError: ONNX asked for but the ``onnx`` package is missing; an output refused.
    """
    length, features, scaler = detector.window_length, detector.feature_names, detector.scaler
    module = ScoringForward(detector.model.to("cpu").eval(), detector.error_kind, torch.from_numpy(scaler.offset),
                            torch.from_numpy(scaler.scale))
    example = torch.from_numpy(scaler.inverse_transform(
        torch.rand(2, length, len(features), generator=torch.Generator().manual_seed(0)).numpy()))
    score_name = next((name for name, s in detector.scores.items() if s.error_kind == detector.error_kind),
                      "reconstruction")
    meta = {
        "format": fmt,
        "file": Path(output).name,
        "exp_name": detector.config.get("exp_name"),
        "agent": detector.config.get("agent"),
        "model": detector.config.get("model", {}).get("name"),
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": ["batch", length, len(features)],
                  "meaning": "raw (unscaled) windows; the run's scaler is part of the graph"},
        "outputs": {"score": f"{score_name} score (batch,), {detector.error_kind} of the reconstruction",
                    "contributions": "per-feature error averaged over time (batch, F); mean over F = score",
                    "reconstruction": "reconstruction (batch, T, F) in scaled units"},
        "feature_names": list(features),
        "window_length": length,
        "score_name": score_name,
        "threshold": float(detector.thresholds.get(score_name, float("nan"))),
        "alarm_rule": "score > threshold",
        "scaler": {"kind": scaler.kind, "offset": scaler.offset.tolist(), "scale": scaler.scale.tolist()},
    }
    return write_export(module, example, fmt, output, meta, overwrite, config_path)
