"""Fixtures shared by the test suite."""
from __future__ import annotations

import os
from pathlib import Path

# One intra-op thread per process: the models here are small, so a second thread buys little,
# and on a busy 2-core machine oversubscribed OpenMP threads slow training tenfold. Subprocesses
# started by tests inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ECG_DIR = REPO_ROOT.parent / "shared" / "data" / "ECG5000"


@pytest.fixture(scope="session")
def shared_ecg_dir() -> Path:
    """The shared ECG5000 TRAIN files (../shared/data/ECG5000); skip when absent."""
    if not (SHARED_ECG_DIR / "ECG5000_TRAIN.txt").exists():
        pytest.skip(f"shared ECG5000 data not found at {SHARED_ECG_DIR}")
    return SHARED_ECG_DIR
