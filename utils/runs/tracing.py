"""Trace a scoring module (built by ``agents/detector/detector.py``) to ONNX or TorchScript and write it with its
metadata beside it (docs/export.md). ONNX uses the TorchScript-based exporter (``dynamo=False``)."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from utils.core.errors import ConfigError, UserError
from utils.runs.outputs import atomic_output, check_output, new_file_mode, temp_path_for

FORMATS = ("onnx", "torchscript")
INPUT_NAME = "windows"
OUTPUT_NAMES = ("score", "contributions", "reconstruction")
ONNX_OPSET = 17


def write_export(module: nn.Module, example: Tensor, fmt: str, output: str | Path, meta: dict[str, Any],
                 overwrite: bool = False, config: str | Path | None = None) -> dict[str, Any]:
    """Trace ``module`` on ``example`` (batch dimension free), write it as ``fmt`` to ``output`` and ``meta`` plus the
    model file's ``sha256`` to ``output.json`` (renamed into place after the model); the metadata written.
    ConfigError for an unknown format; UserError for an output refused or ONNX without the ``onnx`` package."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    output, meta_path = Path(output), Path(f"{output}.json")
    model_name = "model.onnx" if fmt == "onnx" else "model.pt"
    check_output(output, overwrite, config=config, example=model_name)
    check_output(meta_path, overwrite, option="--output (its metadata)", config=config, example=f"{model_name}.json")
    tmp = temp_path_for(output)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # Tracing unrolls a free-running decoder for the fixed T (intended), and torch >= 2.9 flags
            # both TorchScript and the TorchScript-based ONNX exporter as deprecated.
            for category in (torch.jit.TracerWarning, DeprecationWarning, FutureWarning):
                warnings.simplefilter("ignore", category=category)
            # A recurrent encoder starts from zeros: the exported graph takes any batch size (tested with 1 and 7).
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
            if fmt == "torchscript":
                # a copy without grad: the file's outputs then take .numpy(), and the caller's model keeps its flags
                frozen = copy.deepcopy(module).requires_grad_(False)
                torch.jit.trace(frozen, (example,), check_trace=False).save(str(tmp))
            else:
                _export_onnx(module, example, tmp)
        meta = {**meta, "sha256": hashlib.sha256(tmp.read_bytes()).hexdigest()}
        os.chmod(tmp, new_file_mode())  # as its .json (mkstemp made it 0600)
        with atomic_output(meta_path) as handle:
            os.replace(tmp, output)
            handle.write(json.dumps(meta, indent=2) + "\n")
    finally:
        tmp.unlink(missing_ok=True)
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
