"""Builds (on first use, into ``$TORCH_EXTENSIONS_DIR`` under a hash of source, flags, versions and CPU) and loads
the C++ time loops, else :mod:`graphs.kernels.python_loops`; ``ANOMALY_NATIVE_RNN=0``: off. docs/benchmarks.md."""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from graphs.kernels import python_loops
from utils.runtime.reproducibility import cpuinfo_line

logger = logging.getLogger("anomaly")

SOURCE = Path(__file__).resolve().parent / "csrc" / "rnn_loops.cpp"
# -march=native: vectorize for this CPU (the build key carries its flags); -ffp-contract=off: no fused multiply-adds,
# so each operation rounds as the source (and the Python loops) say; -fno-trapping-math: exp's clamp becomes vector
# min/max (same values), without which the forward gate loops did not vectorize ("control flow in loop").
CFLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffp-contract=off", "-fno-trapping-math"]
# A build takes about 20 s: a lock file this old was left by a build that was killed (torch would wait on it forever).
STALE_LOCK_S = 600.0
_NOT_LOADED = object()
_ops: Any = _NOT_LOADED


def rnn_loops() -> Any:
    """``torch.ops.anomaly_rnn`` (documented in the C++ source), or None when turned off or not buildable."""
    global _ops
    if _ops is _NOT_LOADED:
        _ops = _load() if os.environ.get("ANOMALY_NATIVE_RNN", "1") != "0" else None
    return _ops


def time_loops(x: Tensor) -> Any:
    """The C++ ops for a float32 CPU ``x`` where built, else :mod:`graphs.kernels.python_loops` (same signatures)."""
    native = rnn_loops() if x.dtype == torch.float32 and x.device.type == "cpu" else None
    return native if native is not None else python_loops


def _load() -> Any:
    """Load the cached library, or build it first (saying so); None, after one warning, where it cannot."""
    if _registered():
        return torch.ops.anomaly_rnn
    name = f"anomaly_rnn_loops_{build_key()}"
    from torch.utils.cpp_extension import get_default_build_root  # where torch keeps this user's JIT builds
    build_dir = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / name
    library, lock = build_dir / f"{name}.so", build_dir / "lock"
    stale = _wait_for_other_build(lock)  # a lock: another process is building it
    cached = library.is_file()
    problem = (f"{lock} is left from a build that did not finish ({stale / 60:.0f} minutes old); delete it and the "
               "next run builds the loops again" if stale else "" if cached else missing_build_tools())
    if problem:
        _warn_fallback(problem)
        return None
    try:
        if cached:
            torch.ops.load_library(str(library))
        else:
            _build(name, build_dir)
    except Exception as err:  # noqa: BLE001 (a failed build or load: fall back, say why)
        text = str(err).strip()
        what = f"loading {library} failed" if cached else "the build failed"
        _warn_fallback(f"{what}: {text.splitlines()[-1][:200] if text else type(err).__name__}")
        return None
    return torch.ops.anomaly_rnn


def _wait_for_other_build(lock: Path) -> float:
    """Wait while ``lock`` (another process building) exists: its age once :data:`STALE_LOCK_S` old, 0.0 once gone."""
    while True:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return 0.0
        if age >= STALE_LOCK_S:
            return age
        time.sleep(0.5)


def _build(name: str, build_dir: Path) -> None:
    """Compile the source (copied into ``build_dir``, so the build never depends on the clone's path)."""
    from torch.utils.cpp_extension import load
    logger.info("Building the C++ RNN loops into %s (once for this source and machine, about 20 s)", build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / SOURCE.name
    if not source.is_file() or source.read_bytes() != SOURCE.read_bytes():
        shutil.copyfile(SOURCE, source)
    load(name, sources=[str(source)], extra_cflags=CFLAGS, build_directory=str(build_dir),
         is_python_module=False, verbose=False)


def missing_build_tools() -> str:
    """What the build needs (``$CXX``, default ``c++``, and ``ninja`` on PATH) and is missing, in words; '' if none."""
    compiler = os.environ.get("CXX", "c++")
    missing = []
    if shutil.which(compiler) is None:
        others = [name for name in ("g++", "clang++") if name != compiler and shutil.which(name)]
        hint = f" ({others[0]} is there: set CXX={others[0]})" if others else ""
        missing.append(f"no C++ compiler: {compiler!r} is not on PATH{hint}")
    if shutil.which("ninja") is None:
        missing.append("no 'ninja' on PATH (pip install ninja)")
    return "; ".join(missing)


def _warn_fallback(reason: str) -> None:
    warnings.warn(f"could not build {SOURCE.name} ({reason}); the recurrent models run their time loops in "
                  "Python: the same results, bit for bit, but training is slower", RuntimeWarning, stacklevel=4)


def build_key() -> str:
    """A short hash of the source, the flags, the torch and Python versions and the CPU's flags (not the path)."""
    parts = [SOURCE.read_bytes(), " ".join(CFLAGS).encode(), torch.__version__.encode(),
             f"{sys.version_info.major}.{sys.version_info.minor}".encode(),
             (cpuinfo_line("flags") or platform.machine()).encode()]
    return hashlib.sha256(b"".join(hashlib.sha256(part).digest() for part in parts)).hexdigest()[:16]


def _registered() -> bool:
    """Whether this process has loaded the ops already."""
    return hasattr(torch.ops.anomaly_rnn, "gru_free_backward_loop")


def plain_cpu_float32(x: Tensor) -> bool:
    """Whether ``x`` is a float32 CPU tensor outside tracing, scripting and compiling (where the loops may run)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.jit.is_tracing()
            and not torch.jit.is_scripting() and not torch.compiler.is_compiling())


def training_loops_apply(x: Tensor) -> bool:
    """Whether an LSTM layer and GRU free running use the time loops: training on the CPU in float32."""
    # Without gradients oneDNN's LSTM is as fast, and the loops' saved buffers would be large for scoring batches.
    return plain_cpu_float32(x) and torch.is_grad_enabled()
