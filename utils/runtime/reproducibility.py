"""What makes two runs of one config bit-identical on a CPU (the thread count above all: large float32 sums are
split per thread), pinned and recorded in ``environment.json`` (docs/stopping-resuming.md#reproducibility)."""
from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR", "ATEN_CPU_CAPABILITY", "ANOMALY_NATIVE_RNN")


def pin_threads(threads: int | None = None) -> int:
    """Fix torch's intra-op thread count for the rest of the process; returns it.

    Args:
        threads: the count to use (a resumed run passes the one it started with); None keeps torch's choice.
    """
    count = threads if threads and threads > 0 else torch.get_num_threads()
    torch.set_num_threads(count)
    return count


def numerics(**settings: Any) -> dict[str, Any]:
    """The settings of this process that decide a run's last bits (threads, CPU model, a hash of its feature flags,
    torch's instruction set, the thread variables set), plus ``settings`` (the run's own)."""
    model, flags = cpuinfo_line("model name"), cpuinfo_line("flags") or platform.machine()
    return {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
            "cpu": model.split(":", 1)[1].strip() if ":" in model else platform.processor() or platform.machine(),
            "cpu_flags_sha1": hashlib.sha1(flags.encode()).hexdigest()[:12],
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "environment": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
            **settings}


def record_numerics(path: Path, record: dict[str, Any]) -> None:
    """Store ``record`` as ``numerics`` of the latest invocation in the run's ``environment.json``."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    invocations = data.setdefault("invocations", [])
    if not invocations:
        invocations.append({})
    invocations[-1]["numerics"] = record
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def recorded_threads(path: Path) -> int | None:
    """The thread count the run started with (its first recorded invocation), if ``environment.json`` says."""
    return next((found["threads"] for found in _recorded(path) if isinstance(found.get("threads"), int)), None)


def recorded_data(path: Path) -> dict[str, Any] | None:
    """What the run's first invocation recorded of its data (``data_sha1``, ``data_windows`` when recorded),
    or None when ``environment.json`` records no data digest (a run of an older version)."""
    found = next((found for found in _recorded(path) if isinstance(found.get("data_sha1"), str)), None)
    return None if found is None else {key: found[key] for key in ("data_sha1", "data_windows") if key in found}


def _recorded(path: Path) -> list[dict[str, Any]]:
    """The ``numerics`` of ``environment.json``'s invocations, in order ([] when it cannot be read)."""
    try:
        invocations = json.loads(path.read_text(encoding="utf-8")).get("invocations", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [inv["numerics"] for inv in invocations if isinstance(inv, dict) and isinstance(inv.get("numerics"), dict)]


def array_digest(arrays: Iterable[Tensor | np.ndarray]) -> str:
    """SHA-1 (12 hex digits) over arrays' dtypes, shapes and bytes, in order: one differing bit shows."""
    digest = hashlib.sha1()
    for array in arrays:
        data = array.detach().cpu().contiguous().numpy() if isinstance(array, Tensor) else np.ascontiguousarray(array)
        digest.update(f"{data.dtype}:{data.shape}:".encode())
        digest.update(data.tobytes())
    return digest.hexdigest()[:12]


def state_digest(state: Mapping[str, Tensor]) -> str:
    """:func:`array_digest` of a state dict, its names included."""
    return hashlib.sha1(("|".join(state) + array_digest(state.values())).encode()).hexdigest()[:12]


def cpuinfo_line(prefix: str) -> str:
    """The first line of /proc/cpuinfo starting with ``prefix`` ("" when there is none)."""
    try:
        return next((x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith(prefix)), "")
    except OSError:
        return ""
