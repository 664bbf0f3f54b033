"""utils/runtime/reproducibility.py's flush_denormals: denormal floats read as zero inside the block only."""
from __future__ import annotations

import torch

from utils.runtime.reproducibility import denormals_flushed_now, flush_denormals

DENORMAL = 1e-40  # below float32's smallest normal (1.18e-38), above its smallest denormal (1.4e-45)


def test_denormals_are_zero_inside_and_ieee_again_after():
    x = torch.tensor([DENORMAL, 1.0])
    assert not denormals_flushed_now() and (x * 1.0)[0] > 0
    with flush_denormals() as active:
        if active:  # every x86-64 CPU; other CPUs may not support it
            assert (x * 1.0)[0] == 0 and denormals_flushed_now()
        with flush_denormals(False) as inner:
            assert not inner and (x * 1.0)[0] > 0
        assert denormals_flushed_now() == active
    assert not denormals_flushed_now() and (x * 1.0)[0] > 0
