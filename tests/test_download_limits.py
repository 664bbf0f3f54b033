"""Download limits and the offline next step: a local HTTP server on 127.0.0.1 only, no external network.

Slow drip, endless body and oversized Content-Length against the overall deadline
and the body cap; a zip bomb and an oversized archive built here against the
checks made before extraction; each refusal leaves nothing on disk. Then the new
user's offline case: the ECG5000 messages end with a next step.
"""
from __future__ import annotations

import http.server
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from datasets.download import DownloadLimits, download_archive
from datasets.ecg5000 import load_ecg5000
from tests.helpers import run_main
from utils.core.errors import DataError

TRAIN_SPEC = {"ECG5000_TRAIN.txt": "sha256:" + "0" * 64}


def tree(folder: Path) -> set[str]:
    """Every path under ``folder``, to spot leftovers."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


class Behaviours(http.server.BaseHTTPRequestHandler):
    """``/drip``: one byte every 0.3 s; ``/endless``: 64 KiB chunks forever; ``/huge``: a 1 TB Content-Length."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        try:
            self.send_response(200)
            if self.path == "/drip":
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.3)
            elif self.path == "/endless":
                self.end_headers()
                while True:
                    self.wfile.write(b"\0" * 65536)
            else:
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.wfile.write(b"PK")
        except OSError:  # the client hung up, as it should
            pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a :class:`Behaviours` server on a free port of 127.0.0.1."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Behaviours)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def refused(tmp_path: Path, url: str, limits: DownloadLimits, *fragments: str) -> str:
    """Download into a fresh folder; assert DataError with ``fragments`` and nothing left behind."""
    before = tree(tmp_path)
    with pytest.raises(DataError) as info:
        download_archive(url, tmp_path / "data" / "ECG5000", None, TRAIN_SPEC, progress=False, limits=limits)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert tree(tmp_path) == before
    return message


# ----- the body: overall deadline and size cap ----------------------------------------------
def test_slow_drip_times_out_at_the_overall_deadline(tmp_path, server):
    start = time.monotonic()
    refused(tmp_path, f"{server}/drip", DownloadLimits(download_deadline_s=1.5, key_prefix="data."),
            f"could not download {server}/drip: not finished after 1.5 s (data.download_deadline_s=1.5;")
    assert time.monotonic() - start < 3.0  # each byte came within any per-read timeout; the deadline still held
    deadline = time.monotonic() + 2.0  # the worker stops at its next read
    while any(t.name == "download" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "download" for t in threading.enumerate())


def test_silent_server_times_out(tmp_path):
    with socket.socket() as sock:  # accepts connections (backlog) and never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/ECG5000.zip"
        refused(tmp_path, url, DownloadLimits(download_deadline_s=1.0), "not finished after 1 s")


def test_endless_body_is_cut_at_the_cap(tmp_path, server):
    refused(tmp_path, f"{server}/endless", DownloadLimits(download_max_mb=1, key_prefix="data."),
            "the server sends more than 1 MiB (data.download_max_mb=1)")


def test_oversized_content_length_is_refused_before_reading(tmp_path, server):
    refused(tmp_path, f"{server}/huge", DownloadLimits(download_max_mb=1),
            "the server sends more than 1 MiB", "(Content-Length: 1000000000000 bytes)")


# ----- the archive: sizes checked before extraction -----------------------------------------
def test_zip_bomb_is_refused_before_extraction(tmp_path):
    bomb = tmp_path / "serve" / "bomb.zip"
    bomb.parent.mkdir()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ECG5000/ECG5000_TRAIN.txt", b"\0" * (40 * 2**20))
    assert bomb.stat().st_size < 100_000
    refused(tmp_path, bomb.as_uri(), DownloadLimits(),
            "ECG5000/ECG5000_TRAIN.txt would unpack", "into 41943040 (", "above max_ratio=100): refused as a zip bomb",
            "nothing was extracted")


def test_uncompressed_total_is_capped(tmp_path):
    rng = np.random.default_rng(0)
    archive = tmp_path / "serve" / "big.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for split in ("TRAIN", "TEST"):
            zf.writestr(f"ECG5000_{split}.txt", rng.bytes(3 * 2**20))  # incompressible: ratio 1
    limits = DownloadLimits(unzip_max_mb=4, key_prefix="data.")
    spec = {**TRAIN_SPEC, "ECG5000_TEST.txt": "sha256:" + "1" * 64}
    before = tree(tmp_path)
    with pytest.raises(DataError, match=r"its files would unpack to 6\.0 MiB, above data\.unzip_max_mb=4 MiB"):
        download_archive(archive.as_uri(), tmp_path / "d" / "ECG5000", None, spec, progress=False, limits=limits)
    assert tree(tmp_path) == before


# ----- offline: the next step -------------------------------------------------------------------
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/ECG5000.zip"


def fake_train(folder: Path) -> Path:
    """A small ECG5000_TRAIN.txt: 40 normal and 10 class-2 beats of 140 values."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{1 if i < 40 else 2} " + " ".join(f"{np.sin(i + t / 9):.4f}" for t in range(140)) for i in range(50)]
    path = folder / "ECG5000_TRAIN.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_offline_new_user_gets_a_next_step(tmp_path, capsys):
    data = tmp_path / "data" / "ECG5000"
    url = closed_port_url()
    code = run_main("lstm_ecg5000.json", tmp_path / "exp", f"data.data_dir={data}", f"data.url={url}",
                    "data.progress=false")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"could not download {url}" in err
    assert (f"Next step: put ECG5000_TRAIN.txt (or .tsv/.ts/.arff) into {data} and set data.download=false and "
            "data.protocol=merged, which works on the TRAIN file alone; or download") in err
    assert not (tmp_path / "exp").exists() and not data.exists()


def test_offline_with_the_train_file_names_it(tmp_path):
    train = fake_train(tmp_path / "ECG5000")
    with pytest.raises(DataError, match=r"Next step: set data\.download=false and data\.protocol=merged to train on "
                                        rf".*ECG5000_TRAIN\.txt alone; or download {closed_port_url()[:17]}"):
        load_ecg5000(0, data_dir=str(train.parent), download=True, url=closed_port_url(), progress=False)
    assert tree(tmp_path) == {"ECG5000", "ECG5000/ECG5000_TRAIN.txt"}


def test_missing_test_file_points_to_the_merged_protocol(tmp_path, capsys):
    train = fake_train(tmp_path / "data" / "ECG5000")
    code = run_main("lstm_ecg5000.json", tmp_path / "exp", f"data.data_dir={train.parent}", "data.download=false")
    err = capsys.readouterr().err
    assert code == 2
    assert "the official protocol needs ECG5000_TEST.txt or ECG5000_TEST.tsv or ECG5000_TEST.ts or ECG5000_TEST.arff" in err
    assert f"or set data.protocol=merged, which works on the TRAIN file alone ({train})" in err
    merged = load_ecg5000(0, data_dir=str(train.parent), protocol="merged")
    assert len(merged.train) + len(merged.val) + len(merged.test) == 50
