"""Bugs found by hand in the built-in datasets and the download path (ECG5000, the zip download, the converter
simulations, the example CSV writer), each pinned by the scenario a user met.

Uses the shared ECG5000 TRAIN file read-only; everything written goes under tmp_path.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from datasets import make_example_csv
from datasets.converter import load_converter_stream
from datasets.download import download_archive
from datasets.ecg5000 import TRAIN_TXT_GITBLOB, find_split_file, load_ecg5000
from utils.core.errors import ConfigError, DataError


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


# ----------------------------------------------------------------------------- the download
def _encrypted_zip(path: Path, name: str) -> Path:
    """A zip whose one member carries the 'encrypted' flag (what a password-protected zip's members carry)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, b"1 0.5 0.25\n")
    raw = bytearray(path.read_bytes())
    raw[6] |= 1  # the local header's general-purpose flags
    raw[raw.find(b"PK\x01\x02") + 8] |= 1  # the central directory's
    path.write_bytes(bytes(raw))
    return path


def test_a_password_protected_zip_is_refused_naming_it(tmp_path: Path) -> None:
    """A password-protected archive ended in a RuntimeError traceback from zipfile."""
    archive = _encrypted_zip(tmp_path / "ECG5000.zip", "ECG5000/ECG5000_TRAIN.txt")
    data_dir = tmp_path / "data" / "ECG5000"
    with pytest.raises(DataError, match=r"ECG5000\.zip.*ECG5000_TRAIN\.txt.*password"):
        download_archive(archive.as_uri(), data_dir, None, {}, progress=False)
    assert not (tmp_path / "data").exists()



def test_a_zip_with_two_readmes_in_other_folders_still_installs_the_wanted_file(tmp_path: Path,
                                                                               shared_ecg_dir: Path) -> None:
    """ECG5000/README.md and docs/README.md beside the wanted file: refused as 'two files named README.md',
    though README.md was never asked for."""
    train = (shared_ecg_dir / "ECG5000_TRAIN.txt").read_bytes()
    archive = tmp_path / "ECG5000.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in (("ECG5000/ECG5000_TRAIN.txt", train), ("ECG5000/README.md", b"a"), ("docs/README.md", b"b")):
            zf.writestr(name, data)
    data_dir = tmp_path / "ECG5000"
    download_archive(archive.as_uri(), data_dir, None, {"ECG5000_TRAIN.txt": f"gitblob:{TRAIN_TXT_GITBLOB}"},
                     progress=False)
    assert [p.name for p in data_dir.iterdir()] == ["ECG5000_TRAIN.txt"]
    assert (data_dir / "ECG5000_TRAIN.txt").read_bytes() == train
    with pytest.raises(DataError, match=r"two files named README\.md.*ECG5000/README\.md.*docs/README\.md"):
        download_archive(archive.as_uri(), tmp_path / "all", None, {}, progress=False)  # every member asked for
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("old/ECG5000_TRAIN.txt", b"1 0.5\n")
    with pytest.raises(DataError, match=r"two files named ECG5000_TRAIN\.txt"):
        download_archive(archive.as_uri(), tmp_path / "twice", None, {"ECG5000_TRAIN.txt": f"gitblob:{TRAIN_TXT_GITBLOB}"},
                         progress=False)


# ----------------------------------------------------------------------------- the converter simulations
def test_stream_anomalies_longer_than_the_recording_holds_are_refused_naming_the_keys() -> None:
    """Two 50 s anomaly types in a 100 s recording (allowed by a 60 s test stretch): numpy's 'high <= 0'
    ValueError ended the run in a traceback."""
    with pytest.raises(ConfigError, match=r"data\.anomaly_max_s.*1000 rows.*data\.duration_s"):
        load_converter_stream(0, duration_s=100.0, sample_rate_hz=10.0, anomaly_density=0.5, anomaly_min_s=50.0,
                              anomaly_max_s=55.0, anomaly_types=["current_oscillation", "temperature_drift"],
                              time_steps=10, val_fraction=0.1, test_fraction=0.6)


@pytest.mark.parametrize("args, why", [
    (["--rows", "100"], "24 faults need at least 744 rows (a slot longer than the longest fault, 30 rows, each), got 100"),
    (["--faults", "0"], "expected at least 1 fault, got 0"),
    (["--rows", "0"], "24 faults need at least 744 rows (a slot longer than the longest fault, 30 rows, each), got 0"),
    (["--faults", "-2"], "expected at least 1 fault, got -2")])
def test_example_csv_sizes_that_cannot_hold_the_faults_are_refused_by_the_cli(tmp_path: Path, capsys,
                                                                              args: list[str], why: str) -> None:
    """`python -m datasets.make_example_csv --rows 100` (24 faults of up to 30 rows) ended in a ValueError
    traceback, `--faults 0` in a ZeroDivisionError."""
    output = tmp_path / "example.csv"
    with pytest.raises(SystemExit) as exited:
        make_example_csv.main(["--output", str(output), *args])
    assert exited.value.code == 2 and not output.exists()
    error = capsys.readouterr().err.splitlines()[-1]  # the usage line above it names --rows whatever happened
    assert ": error: --rows " in error and error.endswith(why), error


def test_example_csv_smallest_valid_size_is_written(tmp_path: Path) -> None:
    path = make_example_csv.write_example_csv(tmp_path / "example.csv", rows=31 * 3, n_faults=3)
    labels = [line.rsplit(",", 1)[1] for line in path.read_text().splitlines()[1:]]
    assert len(labels) == 93 and {label for label in labels if label != "0"} == set(make_example_csv.FAULTS)


def test_running_a_datasets_module_as_a_script_gives_no_runpy_warning(tmp_path) -> None:
    """The docs' ``python -m datasets.make_example_csv`` warned that the module was imported before it ran (the
    package imports every module to fill the registry)."""
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT

    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "datasets.make_example_csv", "--help"],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("usage:") and "RuntimeWarning" not in done.stderr


@pytest.mark.parametrize("value", ["5", "sha256:abc", "gitblob:" + "a" * 40, "g" * 64])
def test_a_bad_archive_sha256_is_refused_where_it_enters_naming_the_key(value) -> None:
    """It was checked only when a download happened, as 'invalid checksum 'sha256:5'', without the key, and
    suggested gitblob:, which the archive's check refuses."""
    import agents  # noqa: F401  (fills the registries the config is checked against)
    from utils.core.config import load_config
    from utils.core.errors import ConfigError
    from tests.helpers import REPO_ROOT

    with pytest.raises(ConfigError, match=r"data\.sha256: expected the archive's sha256: 64 hex digits"):
        load_config(REPO_ROOT / "configs" / "lstm_ecg5000.json", [f"data.sha256={value}"])
    for good in ("A" * 64, "sha256:" + "0" * 64):
        assert load_config(REPO_ROOT / "configs" / "lstm_ecg5000.json", [f"data.sha256={good}"]).data.sha256 == good
