"""Fixtures shared by the test suite."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ECG_DIR = REPO_ROOT.parent / "shared" / "data" / "ECG5000"


@pytest.fixture(scope="session")
def shared_ecg_dir() -> Path:
    """The shared ECG5000 TRAIN files (../shared/data/ECG5000); skip when absent."""
    if not (SHARED_ECG_DIR / "ECG5000_TRAIN.txt").exists():
        pytest.skip(f"shared ECG5000 data not found at {SHARED_ECG_DIR}")
    return SHARED_ECG_DIR
