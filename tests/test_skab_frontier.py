"""benchmarks/skab_frontier.py: SKAB's row rule, the windows, and a run on two shared files."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmarks import skab_frontier as sf
from tests.test_skab import SHARED_SKAB


def test_a_row_alarms_when_every_window_ending_just_before_it_alarms() -> None:
    length, n_rows = 4, 16
    alarms = np.ones(n_rows - length + 1, dtype=bool)  # windows 0..12
    # as the notebooks: rows length-1 .. n_windows-length (the last rows are never flagged)
    assert np.flatnonzero(sf.skab_rule(alarms, n_rows, length)).tolist() == list(range(3, 10))
    alarms[5] = False  # window 5 is among the windows i-3 .. i-1 of rows 6, 7 and 8 only
    assert np.flatnonzero(sf.skab_rule(alarms, n_rows, length)).tolist() == [3, 4, 5, 9]


def test_windows_are_the_rows_they_start_at_flattened_in_time_order() -> None:
    x = np.arange(12.0).reshape(6, 2)
    w = sf.windows(x, 3)
    assert w.shape == (4, 6)
    assert w[1].tolist() == x[1:4].reshape(-1).tolist()


def test_the_frontier_runs_on_two_files_and_prints_a_row_per_score_and_fitting(tmp_path, capsys) -> None:
    if not (SHARED_SKAB / "valve1" / "0.csv").exists():
        pytest.skip(f"shared SKAB data not found at {SHARED_SKAB}")
    for name in ("valve1/0.csv", "other/1.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(SHARED_SKAB / name, tmp_path / name)
    assert sf.main(["--data-dir", str(tmp_path), "--window", "20"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if ", on all files" in line or ", per file" in line]
    assert len(rows) == 4 and all("MAR" in row or row.endswith("none") for row in rows)


def test_no_files_is_an_error(tmp_path, capsys) -> None:
    assert sf.main(["--data-dir", str(tmp_path)]) == 2
    assert "no SKAB files" in capsys.readouterr().err
