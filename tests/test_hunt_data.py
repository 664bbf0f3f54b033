"""Bugs found by hand in the built-in datasets and the download path (ECG5000, the zip download, the converter
simulations, the example CSV writer), each pinned by the scenario a user met.

Uses the shared ECG5000 TRAIN file read-only; everything written goes under tmp_path.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from datasets.ecg5000 import find_split_file, load_ecg5000


# ----------------------------------------------------------------------------- ECG5000 files
def test_a_split_file_with_an_upper_case_suffix_is_found(train_only_dir: Path, shared_ecg_dir: Path) -> None:
    """ECG5000_TEST.ARFF (as a Windows tool may name it) beside ECG5000_TRAIN.txt: the merged protocol silently
    trained on TRAIN alone, and the official one said no TEST file was there."""
    shutil.copy(shared_ecg_dir / "ECG5000_TRAIN.arff", train_only_dir / "ECG5000_TEST.ARFF")
    assert find_split_file(train_only_dir, "TEST") == train_only_dir / "ECG5000_TEST.ARFF"
    merged = load_ecg5000(0, data_dir=str(train_only_dir), protocol="merged")
    assert len(merged.train) + len(merged.val) + len(merged.test) == 1000 and merged.info["notes"] == []
    official = load_ecg5000(0, data_dir=str(train_only_dir), protocol="official")
    assert len(official.test) == 500 and official.info["files"]["test"].endswith("ECG5000_TEST.ARFF")


def test_the_exact_name_wins_over_another_case_of_the_same_suffix(tmp_path: Path) -> None:
    (tmp_path / "ECG5000_TRAIN.TXT").write_text("")
    (tmp_path / "ECG5000_TRAIN.ts").write_text("")
    assert find_split_file(tmp_path, "TRAIN") == tmp_path / "ECG5000_TRAIN.TXT"  # .txt before .ts, in any case
    (tmp_path / "ECG5000_TRAIN.txt").write_text("")
    assert find_split_file(tmp_path, "TRAIN") == tmp_path / "ECG5000_TRAIN.txt"
    assert find_split_file(tmp_path / "absent", "TRAIN") is None
