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
