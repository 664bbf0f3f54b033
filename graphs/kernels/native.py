"""The C++ time loops of the recurrent models (``graphs/kernels/csrc/rnn_loops.cpp``).

Compiled with ``torch.utils.cpp_extension`` on first use (about 20 s, once: the build is cached
under ``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``, and rebuilt only when
the source changes). Where it cannot be built (no C++ compiler) the models run the same loops
in Python, slower, after one warning. ``ANOMALY_NATIVE_RNN=0`` turns the C++ loops off.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger("anomaly")

SOURCE = Path(__file__).resolve().parent / "csrc" / "rnn_loops.cpp"
_NOT_LOADED = object()
_ops: Any = _NOT_LOADED


def rnn_loops() -> Any:
    """``torch.ops.anomaly_rnn`` (its ops are documented in the C++ source), or None when the C++
    loops are turned off or cannot be built."""
    global _ops
    if _ops is _NOT_LOADED:
        _ops = _load() if os.environ.get("ANOMALY_NATIVE_RNN", "1") != "0" else None
    return _ops


def _load() -> Any:
    from torch.utils.cpp_extension import load

    if not _registered():
        logger.info("Building the C++ RNN loops from %s (once, about 20 s)", SOURCE)
        try:
            # -march=native: the gate loops vectorize for this CPU; the build's name carries the CPU's
            # feature flags, so a cache shared with another kind of CPU builds its own copy.
            load(f"anomaly_rnn_loops_{_cpu_tag()}", sources=[str(SOURCE)], extra_cflags=["-O3", "-march=native", "-mprefer-vector-width=512"],
                 is_python_module=False, verbose=False)
        except Exception as err:  # noqa: BLE001 (no compiler, no ninja, a failed build: fall back, say why)
            reason = str(err).strip().splitlines()[-1][:200] if str(err).strip() else type(err).__name__
            warnings.warn(f"could not build {SOURCE.name} ({reason}); the recurrent models run their time loops "
                          "in Python (same results, slower)", RuntimeWarning, stacklevel=3)
            return None
    return torch.ops.anomaly_rnn


def _registered() -> bool:
    """Whether this process has the ops already (loaded by an earlier call)."""
    return hasattr(torch.ops.anomaly_rnn, "gru_free_backward_loop")


def _cpu_tag() -> str:
    """A short hash of this CPU's feature flags (``/proc/cpuinfo``; the machine type elsewhere)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = platform.machine()
    return hashlib.sha1(flags.encode()).hexdigest()[:10]


def plain_cpu_float32(x: Tensor) -> bool:
    """Whether ``x`` is a float32 CPU tensor outside tracing, scripting and compiling (where the loops may run)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.jit.is_tracing()
            and not torch.jit.is_scripting() and not torch.compiler.is_compiling())


def training_loops_apply(x: Tensor) -> bool:
    """Where the C++-only paths (an LSTM layer, GRU free running) run: training on the CPU in float32
    with the C++ loops built. Without gradients the modules' own paths run (oneDNN's LSTM kernel is
    as fast there, and scoring batches of thousands of windows would make the saved buffers large)."""
    return plain_cpu_float32(x) and torch.is_grad_enabled() and rnn_loops() is not None
