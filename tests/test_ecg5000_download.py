"""ECG5000 archive download (datasets/download.py) and the ``ecg5000`` loader's download path.

Uses the shared TRAIN file read-only; everything written goes under tmp_path; the server listens on 127.0.0.1.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from datasets import ecg5000
from datasets.download import download_archive
from datasets.ecg5000 import TRAIN_TXT_GITBLOB, TRAIN_TXT_SHA256, load_ecg5000
from utils.core.errors import ConfigError, DataError


# ----------------------------------------------------------------------------- helpers
def _tree(folder: Path) -> set[str]:
    """Every path under ``folder`` (relative), to spot leftovers."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def train_bytes(shared_ecg_dir: Path) -> bytes:
    return (shared_ecg_dir / "ECG5000_TRAIN.txt").read_bytes()


@pytest.fixture()
def train_zip(tmp_path: Path, train_bytes: bytes) -> Path:
    """A zip holding the shared TRAIN.txt inside a sub-folder, plus a README."""
    serve = tmp_path / "serve"
    serve.mkdir()
    return _zip(serve / "ECG5000.zip", {"ECG5000/ECG5000_TRAIN.txt": train_bytes, "README.md": b"hi"})


@pytest.fixture()
def http_url(train_zip: Path) -> Iterator[str]:
    """Serve the zip's folder from 127.0.0.1 on a free port; yield the zip's URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(train_zip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{train_zip.name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------- download
@pytest.mark.parametrize("spec", [f"gitblob:{TRAIN_TXT_GITBLOB}", f"sha256:{TRAIN_TXT_SHA256}"])
def test_download_file_url_installs_verified_files(tmp_path: Path, train_zip: Path, train_bytes: bytes,
                                                   spec: str) -> None:
    data_dir = tmp_path / "new" / "ECG5000"
    download_archive(
        train_zip.as_uri(), data_dir, _sha256(train_zip), {"ECG5000_TRAIN.txt": spec}, progress=False
    )
    assert _tree(data_dir) == {"ECG5000_TRAIN.txt"}
    assert (data_dir / "ECG5000_TRAIN.txt").read_bytes() == train_bytes
    assert _tree(data_dir.parent) == {"ECG5000", "ECG5000/ECG5000_TRAIN.txt"}


def test_download_without_checksums_installs_every_file(tmp_path: Path, train_zip: Path) -> None:
    data_dir = tmp_path / "ECG5000"
    download_archive(train_zip.as_uri(), data_dir, None, {}, progress=True)
    assert _tree(data_dir) == {"ECG5000_TRAIN.txt", "README.md"}


def test_download_over_http(tmp_path: Path, http_url: str, train_bytes: bytes) -> None:
    data_dir = tmp_path / "data" / "ECG5000"
    download_archive(http_url, data_dir, None, {"ECG5000_TRAIN.txt": f"gitblob:{TRAIN_TXT_GITBLOB}"},
                     progress=False)
    assert (data_dir / "ECG5000_TRAIN.txt").read_bytes() == train_bytes
    assert _tree(data_dir.parent) == {"ECG5000", "ECG5000/ECG5000_TRAIN.txt"}


def _assert_fails_cleanly(tmp_path: Path, url: str, sha: str | None, checksums: dict[str, str],
                          fragments: list[str]) -> None:
    """Run a failing download into an existing and a fresh folder; nothing may be left."""
    parent = tmp_path / "parent"
    (parent / "ECG5000").mkdir(parents=True, exist_ok=True)
    (parent / "ECG5000" / "keep.txt").write_text("x")
    before = _tree(tmp_path)
    for data_dir in (parent / "ECG5000", tmp_path / "fresh" / "deep" / "ECG5000"):
        with pytest.raises(DataError) as info:
            download_archive(url, data_dir, sha, checksums, progress=False)
        for fragment in fragments:
            assert fragment in str(info.value)
        assert _tree(tmp_path) == before


def test_archive_sha256_mismatch_leaves_nothing(tmp_path: Path, train_zip: Path) -> None:
    wrong = "0" * 64
    expected = [train_zip.as_uri(), f"expected sha256 {wrong}", f"got sha256 {_sha256(train_zip)}"]
    _assert_fails_cleanly(tmp_path, train_zip.as_uri(), wrong, {}, expected)


def test_member_checksum_mismatch_leaves_nothing(tmp_path: Path, train_zip: Path) -> None:
    wrong = "1" * 64
    _assert_fails_cleanly(tmp_path, train_zip.as_uri(), None, {"ECG5000_TRAIN.txt": f"sha256:{wrong}"},
                          ["ECG5000_TRAIN.txt", f"expected sha256:{wrong}", f"got sha256:{TRAIN_TXT_SHA256}"])


def test_member_absent_from_zip_leaves_nothing(tmp_path: Path, train_zip: Path) -> None:
    checksums = {"ECG5000_TRAIN.txt": f"sha256:{TRAIN_TXT_SHA256}", "ECG5000_TEST.txt": "sha256:" + "2" * 64}
    _assert_fails_cleanly(tmp_path, train_zip.as_uri(), None, checksums, ["lacks ECG5000_TEST.txt"])


def test_bad_zip_leaves_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "serve" / "bogus.zip"
    bogus.parent.mkdir()
    bogus.write_bytes(b"not a zip at all")
    _assert_fails_cleanly(tmp_path, bogus.as_uri(), None, {}, ["not a valid zip", bogus.as_uri()])


def test_network_errors_name_the_url(tmp_path: Path, http_url: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/ECG5000.zip"
    missing_file = (tmp_path / "absent.zip").as_uri()
    for url in (http_url.replace("ECG5000.zip", "absent.zip"), closed, missing_file):
        _assert_fails_cleanly(tmp_path, url, None, {}, [f"could not download {url}"])


def test_invalid_checksum_spec_is_config_error(tmp_path: Path, train_zip: Path) -> None:
    with pytest.raises(ConfigError, match="sha256:<64 hex digits>"):
        download_archive(train_zip.as_uri(), tmp_path / "d", None, {"ECG5000_TRAIN.txt": "md5:abc"})
    assert not (tmp_path / "d").exists()


# ----------------------------------------------------------------------------- the loader's download
def test_loader_downloads_missing_files(tmp_path: Path, train_bytes: bytes,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    members = {"ECG5000_TRAIN.txt": train_bytes, "ECG5000_TEST.txt": train_bytes}
    archive = _zip(tmp_path / "ECG5000.zip", members)
    monkeypatch.setitem(ecg5000.DEFAULT_FILE_CHECKSUMS, "ECG5000_TEST.txt", f"gitblob:{TRAIN_TXT_GITBLOB}")
    folder = tmp_path / "data" / "ECG5000"
    data = load_ecg5000(0, data_dir=str(folder), download=True, url=archive.as_uri(),
                        sha256=_sha256(archive), progress=False)
    assert _tree(folder) == {"ECG5000_TRAIN.txt", "ECG5000_TEST.txt"} and len(data.test) == 500


def test_loader_download_rejects_wrong_test_file(train_only_dir: Path, train_bytes: bytes) -> None:
    archive = _zip(train_only_dir.parent / "ECG5000.zip", {"ECG5000_TEST.txt": train_bytes})
    with pytest.raises(DataError, match="checksum mismatch for ECG5000_TEST.txt"):
        load_ecg5000(0, data_dir=str(train_only_dir), download=True, url=archive.as_uri(), progress=False)
    assert _tree(train_only_dir.parent) == {"ECG5000", "ECG5000/ECG5000_TRAIN.txt", "ECG5000.zip"}
