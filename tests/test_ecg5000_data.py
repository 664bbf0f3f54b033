"""ECG5000 parsers and the ``ecg5000`` loader (its download: tests/test_ecg5000_download.py).

Uses the shared TRAIN files read-only; everything written goes under tmp_path.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from datasets import ecg5000
from datasets.splits import NORMAL
from datasets.download import file_checksum
from datasets.ecg5000 import TRAIN_TXT_GITBLOB, TRAIN_TXT_SHA256, find_split_file, load_ecg5000
from datasets.ecg5000 import read_ucr, read_ucr_arff, read_ucr_ts, read_ucr_txt
from utils.core.errors import ConfigError, DataError
from utils.core.registry import DATASETS

TRAIN_COUNTS = {1: 292, 2: 177, 3: 10, 4: 19, 5: 2}
TS_HEADER = "#comment\n@problemName X\n@seriesLength 2\n@data\n"
ARFF_HEADER = (
    "% comment\n@relation X\n@attribute a numeric\n@attribute b numeric\n@attribute t {1,2}\n@data\n"
)


# ----------------------------------------------------------------------------- helpers
def _rows(x: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in x.reshape(len(x), -1)]


# ----------------------------------------------------------------------------- parsers
def test_the_formats_agree(shared_ecg_dir: Path, tmp_path: Path) -> None:
    x, labels = read_ucr_txt(shared_ecg_dir / "ECG5000_TRAIN.txt")
    assert x.shape == (500, 140) and x.dtype == np.float32 and labels.dtype == np.int64
    assert dict(zip(*np.unique(labels, return_counts=True))) == TRAIN_COUNTS
    for reader, suffix in ((read_ucr_ts, ".ts"), (read_ucr_arff, ".arff")):
        x2, labels2 = reader(shared_ecg_dir / f"ECG5000_TRAIN{suffix}")
        np.testing.assert_array_equal(x2, x)
        np.testing.assert_array_equal(labels2, labels)
        x3, _ = read_ucr(shared_ecg_dir / f"ECG5000_TRAIN{suffix}")
        np.testing.assert_array_equal(x3, x)
    tsv = tmp_path / "ECG5000_TRAIN.tsv"  # the UCR archive 2018's layout: tab-separated, label first
    tsv.write_text("".join("\t".join([str(int(y)), *map(repr, row.tolist())]) + "\n" for y, row in zip(labels, x)))
    x4, labels4 = read_ucr(tsv)
    np.testing.assert_array_equal(x4, x)
    np.testing.assert_array_equal(labels4, labels)


def test_known_checksums_match_shared_files(shared_ecg_dir: Path) -> None:
    path = shared_ecg_dir / "ECG5000_TRAIN.txt"
    assert file_checksum(path, "gitblob") == TRAIN_TXT_GITBLOB
    assert file_checksum(path, "sha256") == TRAIN_TXT_SHA256
    assert file_checksum(shared_ecg_dir / "ECG5000_TRAIN.ts", "gitblob") == ecg5000.TRAIN_TS_GITBLOB
    assert file_checksum(shared_ecg_dir / "ECG5000_TRAIN.arff", "gitblob") == ecg5000.TRAIN_ARFF_GITBLOB


def test_find_split_file_prefers_txt_then_tsv_then_ts_then_arff(tmp_path: Path) -> None:
    assert find_split_file(tmp_path, "TRAIN") is None
    for suffix in (".arff", ".ts", ".tsv", ".txt"):
        (tmp_path / f"ECG5000_TRAIN{suffix}").write_text("")
        assert find_split_file(tmp_path, "TRAIN") == tmp_path / f"ECG5000_TRAIN{suffix}"
    assert find_split_file(tmp_path, "TEST") is None


def test_unknown_suffix_lists_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "ECG5000_TRAIN.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(DataError, match=r"ECG5000_TRAIN\.csv.*\.txt, \.tsv, \.ts, \.arff"):
        read_ucr(path)


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("bad_number.txt", "1 0.5 0.6\n1 0.5 abc\n", ["line 2", "'abc'", "number"]),
        ("ragged.txt", "1 0.5 0.6\n\n1 0.5\n", ["line 3", "2 fields, expected 3", "different lengths"]),
        ("nan.txt", "1 0.5 0.6\n2 nan 0.1\n", ["line 2, field 2 holds nan, not a finite number"]),
        ("overflow.txt", "1 0.5 0.6\n2 1e300 0.1\n", ["line 2, field 2", "value 1e+300, outside the float32 range"]),
        ("empty.txt", "", ["no data rows"]),
        ("blank.txt", "\n   \n", ["no data rows"]),
        ("half_label.txt", "1.5 0.5 0.6\n", ["line 1", "label"]),
        ("inf.ts", TS_HEADER + "0.1,0.2:1\n0.5,inf:1\n", ["line 6, field 2 holds inf, not a finite number"]),
        ("ragged.ts", TS_HEADER + "0.1,0.2:1\n0.1:2\n", ["line 6", "different lengths"]),
        ("no_colon.ts", TS_HEADER + "0.1,0.2,1\n", ["line 5", "v1,...,vT:label"]),
        ("empty.ts", TS_HEADER, ["no data rows"]),
        ("bad.arff", ARFF_HEADER + "0.1,x,1\n", ["line 7", "'x'"]),
        ("ragged.arff", ARFF_HEADER + "0.1,0.2,1\n0.1,2\n", ["line 8", "different lengths"]),
        ("no_data.arff", "@relation X\n@attribute a numeric\n", ["@data"]),
    ],
)
def test_malformed_files_raise_data_error(
    tmp_path: Path, name: str, content: str, fragments: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as info:
        read_ucr(path)
    message = str(info.value)
    assert name in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing.txt.*not found"):
        read_ucr(tmp_path / "nothing.txt")


# ----------------------------------------------------------------------------- loader
@pytest.fixture()
def fake_test_dir(train_only_dir: Path, shared_ecg_dir: Path) -> Path:
    """TRAIN.txt plus the shared TRAIN.ts renamed to ECG5000_TEST.ts."""
    shutil.copy(shared_ecg_dir / "ECG5000_TRAIN.ts", train_only_dir / "ECG5000_TEST.ts")
    return train_only_dir


def test_registered() -> None:
    assert DATASETS.get("ecg5000") is load_ecg5000


def test_missing_data_message(tmp_path: Path) -> None:
    folder = tmp_path / "nowhere"
    for protocol in ("official", "merged"):
        with pytest.raises(DataError) as info:
            load_ecg5000(0, data_dir=str(folder), protocol=protocol)
        message = str(info.value)
        for fragment in (str(folder), "ECG5000_TRAIN.txt", "ECG5000_TRAIN.ts", "ECG5000_TRAIN.arff",
                         "data.download: true", "ECG5000.zip"):
            assert fragment in message
    assert not folder.exists()


def test_official_without_test_file_names_test_files(train_only_dir: Path) -> None:
    with pytest.raises(DataError, match=r"ECG5000_TEST\.txt or ECG5000_TEST\.tsv or ECG5000_TEST\.ts or ECG5000_TEST\.arff"):
        load_ecg5000(0, data_dir=str(train_only_dir))


def test_unknown_protocol_is_config_error(train_only_dir: Path) -> None:
    with pytest.raises(ConfigError, match="official, merged"):
        load_ecg5000(0, data_dir=str(train_only_dir), protocol="bogus")


def test_merged_on_train_only(train_only_dir: Path, shared_ecg_dir: Path) -> None:
    data = load_ecg5000(0, data_dir=str(train_only_dir), protocol="merged")
    x_all, labels = read_ucr(shared_ecg_dir / "ECG5000_TRAIN.txt")
    assert data.train.x.shape[1:] == (140, 1) and data.feature_names == ["ecg"]
    assert (data.train.y == 0).all() and (data.val.y == 0).all()
    assert set(data.train.kind) == set(data.val.kind) == {NORMAL}
    assert int(data.test.y.sum()) == 208
    assert data.anomaly_kinds == ["class_2", "class_3", "class_4", "class_5"]
    assert data.info["counts"]["test"] == {"class_2": 177, "class_3": 10, "class_4": 19, "class_5": 2,
                                                 NORMAL: 58}
    parts = [set(_rows(s.x)) for s in (data.train, data.val, data.test)]
    assert sum(map(len, parts)) == 500 and set.union(*parts) == set(_rows(x_all))
    assert "TRAIN alone" in data.info["notes"][0] and data.info["files"]["test"] is None
    json.dumps(data.info)
    again = load_ecg5000(0, data_dir=str(train_only_dir), protocol="merged")
    other = load_ecg5000(1, data_dir=str(train_only_dir), protocol="merged")
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(again, name).x, getattr(data, name).x)
    assert not np.array_equal(other.train.x, data.train.x)


def test_official_with_fake_test_file(fake_test_dir: Path, shared_ecg_dir: Path) -> None:
    data = load_ecg5000(3, data_dir=str(fake_test_dir), protocol="official", val_fraction=0.25)
    x_all, labels = read_ucr(shared_ecg_dir / "ECG5000_TRAIN.txt")
    assert (data.train.y == 0).all() and (data.val.y == 0).all()
    assert len(data.val) == 73 and len(data.train) + len(data.val) == 292
    assert set(_rows(data.train.x)).isdisjoint(_rows(data.val.x))
    assert len(data.test) == 500 and sorted(_rows(data.test.x)) == sorted(_rows(x_all))
    assert int(data.test.y.sum()) == 208 and not (np.diff(data.test.y) >= 0).all()  # shuffled
    assert data.info["files"]["test"].endswith("ECG5000_TEST.ts")
    json.dumps(data.info)
    again = load_ecg5000(3, data_dir=str(fake_test_dir), protocol="official", val_fraction=0.25)
    np.testing.assert_array_equal(again.test.x, data.test.x)
    np.testing.assert_array_equal(again.val.x, data.val.x)


def test_merged_with_test_file_pools_both(fake_test_dir: Path) -> None:
    data = load_ecg5000(0, data_dir=str(fake_test_dir), protocol="merged")
    assert len(data.train) + len(data.val) + len(data.test) == 1000
    assert int(data.test.y.sum()) == 416 and data.info["notes"] == []


def test_series_length_mismatch_names_file(train_only_dir: Path) -> None:
    (train_only_dir / "ECG5000_TEST.txt").write_text("1 0.1 0.2\n2 0.3 0.4\n")
    with pytest.raises(DataError, match=r"ECG5000_TEST\.txt.*2 values.*140"):
        load_ecg5000(0, data_dir=str(train_only_dir))


def test_unknown_label_names_file(train_only_dir: Path) -> None:
    (train_only_dir / "ECG5000_TEST.txt").write_text("7 " + " ".join(["0.1"] * 140) + "\n")
    with pytest.raises(DataError, match=r"ECG5000_TEST\.txt.*labels \[7\]"):
        load_ecg5000(0, data_dir=str(train_only_dir))
