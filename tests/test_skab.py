"""The ``skab`` dataset: the shared SKAB copy read by the benchmark's protocol, and its download (datasets/download.py's
download_file) from a server on 127.0.0.1, checksums checked, nothing half-written."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from datasets import skab
from datasets.download import download_file
from datasets.skab import CHECKSUMS, COMMIT, EXPERIMENTS, load_skab
from utils.core.errors import ConfigError, DataError

SHARED_SKAB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "SKAB"
FEW = ["valve1/0.csv", "other/2.csv"]


@pytest.fixture(scope="module")
def skab_dir() -> Path:
    if not (SHARED_SKAB / "valve1" / "0.csv").exists():
        pytest.skip(f"shared SKAB data not found at {SHARED_SKAB}")
    return SHARED_SKAB


def test_the_checksums_are_the_shared_copy(skab_dir):
    assert len(EXPERIMENTS) == 34 and set(CHECKSUMS) == {*EXPERIMENTS, skab.ANOMALY_FREE}
    for name in FEW + [skab.ANOMALY_FREE]:
        assert hashlib.sha256((skab_dir / name).read_bytes()).hexdigest() == CHECKSUMS[name], name


def test_two_files_by_the_protocol(skab_dir):
    data = load_skab(0, data_dir=str(skab_dir), download=False, files=FEW)
    assert [r.name for r in data.recordings] == FEW and data.info["dataset"] == "skab"
    assert data.feature_names[:2] == ["Accelerometer1RMS", "Accelerometer2RMS"] and len(data.feature_names) == 8
    for recording, info in zip(data.recordings, data.info["recordings"]):
        assert recording.test.first_row == 400 and info["stretches"]["val"] == [300, 400]
        assert recording.test.sample_period_s == 1.0
    # other/2.csv is labelled in rows 104..487: its labels before row 400 are ignored (trained on), the rest tested
    other = data.recordings[1]
    np.testing.assert_array_equal(np.flatnonzero(other.test.labels)[:1], [0])
    assert data.info["recordings"][1]["anomalous_rows"]["train"] + data.info["recordings"][1]["anomalous_rows"][
        "val"] == 400 - 104
    assert len(data.train) == 2 * (300 - 60 + 1)  # stride 1 in both training parts
    assert len(data.test) == sum(len(r.test.starts) for r in data.recordings)


def test_every_experiment_gives_the_benchmarks_test_rows(skab_dir):
    data = load_skab(0, data_dir=str(skab_dir), download=False, window_length=60, eval_stride=60)
    rows = sum(len(r.test) for r in data.recordings)
    anomalous = sum(int(r.test.labels.sum()) for r in data.recordings)
    assert len(data.recordings) == 34 and rows == 23801 and round(anomalous / rows, 3) == 0.537  # SOURCE.md


def test_anomaly_free_trains_on_its_first_fifth(skab_dir):
    data = load_skab(0, data_dir=str(skab_dir), download=False, files="anomaly-free")
    assert data.info["stretches"]["test"] == [1881, 9405] and data.test.y.sum() == 0


def test_files_mistakes_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"data.files: \['valve3/0.csv'\] names no SKAB file"):
        load_skab(0, data_dir=str(tmp_path), files=["valve3/0.csv"])
    with pytest.raises(ConfigError, match=r"anomaly-free.csv has no label columns"):
        load_skab(0, data_dir=str(tmp_path), files=["anomaly-free/anomaly-free.csv", "valve1/0.csv"])
    with pytest.raises(DataError, match=r"SKAB data not found in .*: 34 of the 34 files are missing .* Set "
                                        r"data.download=true"):
        load_skab(0, data_dir=str(tmp_path / "none"), download=False)
    assert not (tmp_path / "none").exists()


# ----- the download ------------------------------------------------------------------------------------------
@pytest.fixture()
def served(tmp_path, skab_dir) -> Iterator[tuple[str, Path]]:
    """The two FEW files (other/2.csv with one byte changed) under a 127.0.0.1 server; yields (base URL, folder)."""
    root = tmp_path / "serve"
    for name in FEW:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes((skab_dir / name).read_bytes())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_missing_files_are_downloaded_and_checked(served, tmp_path, skab_dir):
    url, _ = served
    target = tmp_path / "data" / "SKAB"
    data = load_skab(0, data_dir=str(target), files=FEW, url=url, progress=False)
    for name in FEW:
        assert (target / name).read_bytes() == (skab_dir / name).read_bytes()
    assert {str(p.relative_to(tmp_path / "data")) for p in (tmp_path / "data").rglob("*")} == {
        "SKAB", "SKAB/valve1", "SKAB/other", "SKAB/valve1/0.csv", "SKAB/other/2.csv"}  # no temporary file left
    assert len(data.recordings) == 2


def test_a_failed_download_says_the_next_step_and_keeps_the_files_fetched(served, tmp_path):
    url, root = served
    (root / FEW[1]).unlink()  # the server answers 404 for the second file
    target = tmp_path / "data" / "SKAB"
    with pytest.raises(DataError, match=r"404.*\. Next step: copy SKAB's data/ folder \(github.com/waico/SKAB, commit "
                                        rf"{COMMIT}\) into {target} and set data.download=false \(1 of the 2 files are "
                                        r"still missing; the ones fetched are kept\)"):
        load_skab(0, data_dir=str(target), files=FEW, url=url, progress=False)
    assert (target / FEW[0]).is_file() and not (target / FEW[1]).exists()


def test_a_checksum_mismatch_is_refused_and_nothing_is_written(served, tmp_path):
    url, root = served
    tampered = root / "other" / "2.csv"
    tampered.write_bytes(tampered.read_bytes().replace(b";", b",", 1))
    target = tmp_path / "data" / "SKAB"
    with pytest.raises(DataError, match=r"checksum mismatch for 2.csv downloaded from "
                                        r"http://127.0.0.1:\d+/other/2.csv: "
                                        rf"expected sha256:{CHECKSUMS['other/2.csv']}, got sha256:"):
        load_skab(0, data_dir=str(target), files=["other/2.csv"], url=url, progress=False)
    assert not (tmp_path / "data").exists()  # no file, no temporary, no folder made for it
    dest = tmp_path / "kept" / "2.csv"
    dest.parent.mkdir()
    dest.write_bytes(b"the user's own file")
    with pytest.raises(DataError, match="checksum mismatch"):
        download_file(f"{url}/other/2.csv", dest, f"sha256:{CHECKSUMS['other/2.csv']}", progress=False)
    assert dest.read_bytes() == b"the user's own file" and [p.name for p in dest.parent.iterdir()] == ["2.csv"]


def _copy(skab_dir: Path, folder: Path) -> Path:
    for name in FEW:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((skab_dir / name).read_bytes())
    return folder


def test_a_local_file_that_differs_from_skabs_is_named_with_how_to_restore_it(skab_dir, tmp_path, warnings_seen):
    folder = _copy(skab_dir, tmp_path)
    original = (folder / FEW[1]).read_bytes()
    (folder / FEW[1]).write_bytes(original.replace(b";", b","))  # re-separated: unreadable as SKAB's files
    with pytest.raises(DataError) as err:
        load_skab(0, data_dir=str(folder), download=False, files=FEW)
    text = str(err.value)
    assert f"{folder / FEW[1]}: line 1: the file looks ','-separated" in text
    assert f"1 file(s) in {folder} differ from SKAB's at commit {skab.COMMIT} (sha256: {FEW[1]})" in text
    assert "data.download=true" in text and "set data.separator to null" not in text  # no such key here
    lines = original.split(b"\n")
    cells = lines[1].split(b";")
    cells[1] = cells[1].replace(b".", b",")  # a sensor's decimal comma: the skab loader has no data.decimal
    (folder / FEW[1]).write_bytes(b"\n".join([lines[0], b";".join(cells), *lines[2:]]))
    with pytest.raises(DataError) as err:
        load_skab(0, data_dir=str(folder), download=False, files=FEW)
    assert f"{cells[1].decode()!r} is not a number (a decimal comma? write 1.5 for 1,5); 1 file(s)" in str(err.value)
    (folder / FEW[1]).write_bytes(original.replace(b";0.0", b";0.00", 1))  # readable, the same values
    data = load_skab(0, data_dir=str(folder), download=False, files=FEW)
    assert len(data.recordings) == 2 and f"differ from SKAB's at commit {skab.COMMIT} (sha256: {FEW[1]})" in warnings_seen.text
