"""What makes two runs of one config bit-identical on a CPU (the thread count above all), pinned and recorded in
``environment.json``; seeding and RNG state capture for exact resumes; denormal floats flushed to zero for a block."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR", "ATEN_CPU_CAPABILITY", "ANOMALY_NATIVE_RNN")


def pin_threads(threads: int | None = None) -> int:
    """Fix torch's intra-op thread count to ``threads`` (None: torch's choice) for the process; returns it."""
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


def recorded_threads(path: Path, key: str = "threads") -> int | None:
    """The thread count (or the count ``key``: ``processes``) the run started with (its first recorded invocation
    that says), if ``environment.json`` says."""
    return next((found[key] for found in _recorded(path) if isinstance(found.get(key), int)), None)


def recorded_data(path: Path) -> dict[str, Any] | None:
    """The ``data_sha1``, ``data_windows`` and ``data_recordings`` the run's first invocation recorded, or None (an
    older version's)."""
    found = next((found for found in _recorded(path) if isinstance(found.get("data_sha1"), str)), None)
    return None if found is None else {key: found[key] for key in ("data_sha1", "data_windows", "data_recordings")
                                       if key in found}


def _recorded(path: Path) -> list[dict[str, Any]]:
    """The ``numerics`` of ``environment.json``'s invocations, in order ([] when it cannot be read)."""
    try:
        invocations = json.loads(path.read_text(encoding="utf-8")).get("invocations", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [inv["numerics"] for inv in invocations if isinstance(inv, dict) and isinstance(inv.get("numerics"), dict)]


def recording_digests(data: Any) -> dict[str, str]:
    """:func:`array_digest` of each recording's own train, val and test windows (unscaled) by its name, for a stream
    dataset (``data.recordings``, their windows in recording order; else ``{}``): which file of a folder changed."""
    digests, start = {}, dict.fromkeys(("train", "val", "test"), 0)
    for recording in getattr(data, "recordings", None) or []:
        own = {"train": recording.train_windows or 0, "test": len(recording.test.starts),
               "val": 0 if recording.val is None else len(recording.val.starts)}
        digests[recording.name] = array_digest(getattr(data, split).x[start[split]:start[split] + n]
                                               for split, n in own.items())
        start = {split: start[split] + n for split, n in own.items()}
    return digests


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


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; ``deterministic`` forces deterministic kernels (and sets CUDA's
    ``CUBLAS_WORKSPACE_CONFIG`` before the first cuBLAS call)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # torch.use_deterministic_algorithms imports torch._inductor (about 1 s of start-up, only to copy the flag
        # into the compiler's config): set the flag directly unless the compiler is loaded already.
        if "torch._inductor.config" in sys.modules:
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch._C._set_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator for the batch order of one epoch, fixed by (seed, epoch) alone (a resume shuffles the same)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def get_rng_state() -> dict:
    """Python, NumPy and torch (CPU and CUDA) RNG states, safe for weights_only loading."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def denormals_flushed_now() -> bool:
    """Whether this thread currently reads denormal floats as zero."""
    return torch.tensor(torch.finfo(torch.float32).tiny / 4).mul(1.0).item() == 0.0


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[bool]:
    """Read denormal floats (below 1.2e-38) as zero inside the block, then restore the thread's previous mode;
    yields whether flushing is active (False where the CPU cannot, or when not ``enabled``)."""
    before = denormals_flushed_now()
    active = torch.set_flush_denormal(enabled)
    try:
        yield active and enabled
    finally:
        torch.set_flush_denormal(before)
