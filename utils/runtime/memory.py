"""Sizes checked before allocation: what a config or a checkpoint implies, against free memory, refused with
the estimate, the limit and the keys that set it (instead of a MemoryError minutes in, or the OOM killer)."""
from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from utils.core.errors import ConfigError, UserError

#: Bytes per parameter while training: weights, gradients, Adam's two moments, and the snapshots
#: the checkpoint writer and the best-epoch bookkeeping clone (float32 each).
TRAINING_BYTES_PER_PARAMETER = 4 * 6


def available_bytes() -> int:
    """Memory this process can still take: the least of the system's available memory and the headroom under its
    address-space limit (``ulimit -v``) and under a cgroup's limit (v2 or v1)."""
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = 2**62
    for line in _read("/proc/meminfo").splitlines():  # MemAvailable counts reclaimable caches too
        if line.startswith("MemAvailable:"):
            free = int(line.split()[1]) * 1024
    headrooms = [free, _address_space_headroom(),
                 _headroom("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 _headroom("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
    return max(min(h for h in headrooms if h is not None), 0)


def _address_space_headroom() -> int | None:
    """RLIMIT_AS minus the address space in use (``/proc/self/statm``), or None without a limit."""
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    size = _read("/proc/self/statm").split()
    return limit - int(size[0]) * os.sysconf("SC_PAGE_SIZE") if size else limit


def _headroom(limit_file: str, usage_file: str) -> int | None:
    """A cgroup's limit minus its usage, or None when it has none ("max", or v1's huge "unlimited" number)."""
    limit, used = _read(limit_file).strip(), _read(usage_file).strip()
    if not (limit.isdigit() and used.isdigit()) or int(limit) >= 2**60:
        return None
    return int(limit) - int(used)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_fits(estimate: float, what: str, keys: str, error: type[UserError] = ConfigError) -> None:
    """Raise ``error`` when ``estimate`` bytes, which ``what`` needs (``"the simulated windows"``) and ``keys`` size
    (``"data.n_samples=1000000000"``), exceed the available memory."""
    limit = available_bytes()
    if estimate > limit:
        advice = ("lower these values" if issubclass(error, ConfigError)
                  else "the file is damaged, or needs a machine with more memory")
        raise error(f"{keys}: {what} would need about {format_bytes(estimate)}, more than the "
                    f"{format_bytes(limit)} of memory available; {advice}")


def parameter_count(build: Callable[[], nn.Module]) -> int:
    """Parameters and buffers of the module ``build()`` makes, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        module = build()
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())
