"""Bug-hunt regressions of the ``skab`` loader as a user meets it (datasets/skab.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from datasets.skab import load_skab
from tests.test_skab import served  # noqa: F401  (the fixture: SKAB files under a 127.0.0.1 server)
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


@pytest.mark.parametrize("config", ["vae_skab", "conv_ae_skab", "lstm_skab"])
def test_a_shipped_config_with_anomaly_free_trains_on_its_first_fifth(skab_dir: Path, config: str) -> None:
    # docs: train_end null means row 400, or 20 % of the rows for anomaly-free; a config that spells out 400 makes
    # data.files=anomaly-free train on 400 of its 9,405 rows instead
    from agents.parts import build_component
    from utils.core.config import load_config
    from utils.core.registry import DATASETS

    repo = Path(__file__).resolve().parents[1]
    data = load_config(repo / "configs" / f"{config}.json",
                       [f"data.data_dir={skab_dir}", "data.download=false", "data.files=anomaly-free"]).data
    assert build_component(DATASETS, data, seed=0).info["stretches"]["test"] == [1881, 9405]


def test_a_download_that_cannot_write_into_data_dir_says_so_not_to_wait_for_the_network(tmp_path: Path) -> None:
    # a folder the user cannot write to (as root, a path through a file): not a network fault
    (tmp_path / "f.txt").write_text("")
    with pytest.raises(DataError) as caught:
        load_skab(0, data_dir=str(tmp_path / "f.txt" / "SKAB"), files=["valve1/0.csv"], url="http://127.0.0.1:9",
                  progress=False)
    said = str(caught.value)
    assert "cannot create a temporary folder" in said and "network" not in said and "data.data_dir" in said, said


def test_a_file_the_server_lacks_names_data_url(served, tmp_path: Path) -> None:  # noqa: F811
    url, root = served
    (root / "other" / "2.csv").unlink()
    with pytest.raises(DataError) as caught:
        load_skab(0, data_dir=str(tmp_path / "SKAB"), files=["other/2.csv"], url=url, progress=False)
    said = str(caught.value)
    assert "404" in said and f"data.url ({url})" in said, said
