"""Flush denormal floats to zero for the duration of a block (CPU)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

def denormals_flushed_now() -> bool:
    """Whether this thread currently reads denormal floats as zero."""
    return torch.tensor(torch.finfo(torch.float32).tiny / 4).mul(1.0).item() == 0.0


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[bool]:
    """Read denormal floats (below 1.2e-38) as zero inside the block (docs/benchmarks.md#speed), then restore the
    previous mode: it is per thread, and code after the block (hypothesis, numpy) expects IEEE floats.

    Yields:
        Whether flushing is active (False where the CPU cannot, or when not ``enabled``).
    """
    before = denormals_flushed_now()
    active = torch.set_flush_denormal(enabled)
    try:
        yield active and enabled
    finally:
        torch.set_flush_denormal(before)
