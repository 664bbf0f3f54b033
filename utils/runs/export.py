"""Export a trained model's scoring forward to ONNX or TorchScript.

``python main.py CONFIG --mode export --format onnx|torchscript --output FILE``

The exported graph takes **raw** windows, float32 ``(batch, T, F)`` with the
features in training order (the run's scaler is folded in, computed in float64
like :class:`utils.scoring.scaler.Scaler`), and returns

* ``score`` (batch,): the reconstruction score (``reconstruction`` for the VAE,
  mean squared error; ``reconstruction_mae`` for the recurrent AE), as the
  PyTorch agent computes it;
* ``contributions`` (batch, F): that error per feature, averaged over time;
* ``reconstruction`` (batch, T, F): the reconstruction in scaled units.

The reconstruction is the one used for scoring, in eval mode: the VAE decodes
the posterior mean; the recurrent AE runs its decoder free (its own previous
outputs as inputs), traced for the fixed trained length T (the loop is
unrolled). The batch size is free. A window is an alarm when
``score > threshold``; the threshold and everything else a deployment needs
(feature names, T, input and output names) go to ``FILE.json`` beside the model.

ONNX export uses the TorchScript-based exporter (``dynamo=False``) and needs the
optional package ``onnx``; running the file needs ``onnxruntime``. Both are dev
dependencies (``requirements-dev.txt``), not runtime ones.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from utils.core.errors import ConfigError, UserError

FORMATS = ("onnx", "torchscript")
INPUT_NAME = "windows"
OUTPUT_NAMES = ("score", "contributions", "reconstruction")
ONNX_OPSET = 17


@dataclass(frozen=True)
class ReconstructionSpec:
    """How a model reconstructs for scoring, and which score that reconstruction gives."""

    reconstruct: Callable[[nn.Module, Tensor], Tensor]
    kind: str  # "mse" or "mae"
    score_name: str


SPECS: dict[str, ReconstructionSpec] = {
    "vae": ReconstructionSpec(lambda m, x: m.decode(m.encode(x)[0]), "mse", "reconstruction"),
    "recurrent_ae": ReconstructionSpec(lambda m, x: m(x, teacher_forcing=False), "mae", "reconstruction_mae"),
}


def reconstruction_spec(model_name: str) -> ReconstructionSpec:
    """The :class:`ReconstructionSpec` of a registered model name.

    Raises:
        ConfigError: a model without one, listing those that have one.
    """
    if model_name not in SPECS:
        raise ConfigError(f"model {model_name!r} has no scoring reconstruction for export/contributions; "
                          f"supported: {', '.join(SPECS)}")
    return SPECS[model_name]


class ScoringForward(nn.Module):
    """Raw windows (B, T, F) -> (score (B,), contributions (B, F), reconstruction (B, T, F)).

    Args:
        model: the trained model (put in eval mode).
        model_name: its registry name (picks the reconstruction).
        offset, scale: the fitted scaler's per-feature statistics (F,).
    """

    def __init__(self, model: nn.Module, model_name: str, offset: Tensor, scale: Tensor) -> None:
        super().__init__()
        self.model = model.eval()
        spec = reconstruction_spec(model_name)
        self._reconstruct, self.kind = spec.reconstruct, spec.kind
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float64))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64))

    def forward(self, windows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = ((windows.double() - self.offset) / self.scale).float()
        recon = self._reconstruct(self.model, x)
        diff = x - recon
        err = diff * diff if self.kind == "mse" else diff.abs()
        contributions = err.mean(dim=1)
        score = err.flatten(1).mean(dim=1)
        return score, contributions, recon


def scoring_module(agent: Any) -> ScoringForward:
    """The :class:`ScoringForward` of an agent from ``BaseAgent.for_inference`` (on the CPU)."""
    model = agent.model.to("cpu").eval()
    return ScoringForward(model, agent.config.model.name, torch.from_numpy(agent.scaler.offset),
                          torch.from_numpy(agent.scaler.scale))


def export_model(agent: Any, fmt: str, output: str | Path, window_length: int,
                 feature_names: list[str]) -> dict[str, Any]:
    """Write the scoring forward as ``fmt`` to ``output`` plus ``output.json`` metadata.

    Returns:
        The metadata written to ``<output>.json``.

    Raises:
        ConfigError: unknown format or a model without a scoring reconstruction.
        UserError: ONNX asked for but the ``onnx`` package is missing.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    module = scoring_module(agent)
    n_features = len(agent.scaler.offset)
    example = torch.from_numpy(agent.scaler.inverse_transform(
        torch.rand(2, window_length, n_features, generator=torch.Generator().manual_seed(0)).numpy()))
    with warnings.catch_warnings():
        # Tracing unrolls the free-running decoder for the fixed T (intended), and torch >= 2.9 flags
        # both TorchScript and the TorchScript-based ONNX exporter as deprecated.
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        # The LSTM encoder starts from zeros: the exported graph takes any batch size (tested with 1 and 7).
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        with torch.no_grad():
            if fmt == "torchscript":
                traced = torch.jit.trace(module, (example,), check_trace=False)
                traced.save(str(output))
            else:
                _export_onnx(module, example, output)
    spec = reconstruction_spec(agent.config.model.name)
    meta = {
        "format": fmt,
        "file": output.name,
        "exp_name": agent.config.exp_name,
        "agent": agent.config.agent,
        "model": agent.config.model.name,
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": ["batch", window_length, n_features],
                  "meaning": "raw (unscaled) windows; the run's scaler is part of the graph"},
        "outputs": {"score": f"{spec.score_name} score (batch,), {spec.kind} of the reconstruction",
                    "contributions": "per-feature error averaged over time (batch, F); mean over F = score",
                    "reconstruction": "reconstruction (batch, T, F) in scaled units"},
        "feature_names": list(feature_names),
        "window_length": window_length,
        "score_name": spec.score_name,
        "threshold": float(agent.scoring.get("thresholds", {}).get(spec.score_name, float("nan"))),
        "alarm_rule": "score > threshold",
        "scaler": {"kind": agent.scaler.kind, "offset": agent.scaler.offset.tolist(),
                   "scale": agent.scaler.scale.tolist()},
    }
    Path(f"{output}.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _export_onnx(module: nn.Module, example: Tensor, output: Path) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UserError("--format onnx needs the optional package onnx (and onnxruntime to run the file): "
                        "pip install -r requirements-dev.txt, or pip install onnx onnxruntime") from None
    torch.onnx.export(module, (example,), str(output), dynamo=False, input_names=[INPUT_NAME],
                      output_names=list(OUTPUT_NAMES), opset_version=ONNX_OPSET,
                      dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in OUTPUT_NAMES}})
