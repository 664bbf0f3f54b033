"""Bug-hunt regressions of the ``skab`` loader as a user meets it (datasets/skab.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from datasets.skab import load_skab
from utils.core.errors import DataError

SHARED_SKAB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "SKAB"


@pytest.fixture(scope="module")
def skab_dir() -> Path:
    if not (SHARED_SKAB / "valve1" / "0.csv").exists():
        pytest.skip(f"shared SKAB data not found at {SHARED_SKAB}")
    return SHARED_SKAB


def test_a_file_shorter_than_a_window_names_skab_files_key_not_the_csv_loaders(skab_dir: Path) -> None:
    # other/1.csv has 745 rows; skab has no data.path, so the advice must name data.files
    with pytest.raises(DataError) as caught:
        load_skab(0, data_dir=str(skab_dir), download=False, files=["valve1/0.csv", "other/1.csv"],
                  window_length=1200)
    said = str(caught.value)
    assert "data.files" in said and "data.path" not in said, said


def test_a_data_dir_under_the_home_folder_written_with_a_tilde_is_read_there(skab_dir: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # before: '~/SKAB' was a folder named '~' in the current directory (downloaded into afresh with download=true)
    (tmp_path / "SKAB").symlink_to(skab_dir)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    data = load_skab(0, data_dir="~/SKAB", download=False, files=["valve1/0.csv"], window_length=20)
    assert [r.name for r in data.recordings] == ["valve1/0.csv"]
    assert data.info["data_dir"] == str(tmp_path / "SKAB")
    assert not (tmp_path / "~").exists()


def test_the_csv_and_ecg5000_loaders_read_a_tilde_as_the_home_folder_too(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets.csv_recordings import csv_paths
    from datasets.ecg5000 import load_ecg5000
    from tests.helpers import REPO_ROOT

    (tmp_path / "pump").mkdir()
    (tmp_path / "pump" / "a.csv").write_text("x\n1\n")
    (tmp_path / "ecg").symlink_to(REPO_ROOT.parent / "shared" / "data" / "ECG5000")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "pump")
    assert csv_paths("~/pump/a.csv") == csv_paths(["~/pump"]) == csv_paths("~/pump/*.csv") == [tmp_path / "pump" / "a.csv"]
    data = load_ecg5000(0, data_dir="~/ecg", download=False, protocol="merged")
    assert len(data.train.x) > 0 and not (tmp_path / "pump" / "~").exists()
