"""Fetch a URL into an open file within an overall deadline and a size cap.

:func:`fetch` streams ``https://``, ``http://`` or ``file://`` URLs. The whole
transfer (name lookup, connection, headers, body) runs in a worker thread that
the caller waits for at most :attr:`DownloadLimits.download_deadline_s`: a server that
drips one byte every few seconds, or a name lookup that hangs offline, ends in a
:class:`~utils.core.errors.DataError` at the deadline, not whenever the server
stops. A body larger than :attr:`DownloadLimits.download_max_mb` is refused (from
``Content-Length`` before reading, else as soon as the count passes it). The
caller owns the file and removes it; after a timeout the worker, a daemon
thread, only writes into that (removed) file until its current read returns.
"""
from __future__ import annotations

import hashlib
import http.client
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from utils.core.errors import DataError

_CHUNK = 1 << 16
_READ_TIMEOUT_S = 60.0  # one socket read; the deadline bounds the whole transfer
MIB = 2**20


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds of one archive download; ``key_prefix`` + the field name is the config key, for messages.

    Attributes:
        download_deadline_s: seconds for the whole download, first byte to last.
        download_max_mb: MiB the server may send.
        unzip_max_mb: MiB of the installed members, uncompressed, in all.
        max_ratio: largest uncompressed / compressed size of a member over 1 MiB
            (text compresses 3-10x; a zip bomb 1000x).
        key_prefix: prefix of the config keys named in messages (e.g. ``"data."``).
    """

    download_deadline_s: float = 600.0
    download_max_mb: float = 200.0
    unzip_max_mb: float = 1024.0
    max_ratio: float = 100.0
    key_prefix: str = ""

    def key(self, name: str) -> str:
        """``name=value`` of a limit as the user sets it, e.g. ``data.download_max_mb=200``."""
        prefix = "" if name == "max_ratio" else self.key_prefix
        return f"{prefix}{name}={getattr(self, name):g}"


def fetch(url: str, out: BinaryIO, progress: bool, limits: DownloadLimits) -> str:
    """Stream ``url`` into ``out`` within ``limits``; return the sha256 of what was written.

    Raises:
        DataError: the URL cannot be read, the transfer was not done within
            ``limits.download_deadline_s``, the body is larger than ``limits.download_max_mb``
            or shorter than its ``Content-Length``.
    """
    result: dict[str, object] = {}
    cancel = threading.Event()
    worker = threading.Thread(target=_fetch_into, args=(url, out, progress, limits, cancel, result),
                              name="download", daemon=True)
    worker.start()
    try:
        worker.join(limits.download_deadline_s)
    finally:  # past the deadline, or Ctrl-C while waiting: the worker stops at its next read
        if worker.is_alive():
            cancel.set()
    if worker.is_alive():
        raise DataError(f"could not download {url}: not finished after {limits.download_deadline_s:g} s "
                        f"({limits.key('download_deadline_s')}; the server is slow or unreachable)")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return str(result["sha256"])


def _fetch_into(url: str, out: BinaryIO, progress: bool, limits: DownloadLimits, cancel: threading.Event,
                result: dict[str, object]) -> None:
    """The worker: the download, its digest in ``result["sha256"]`` or its error in ``result["error"]``."""
    try:
        result["sha256"] = _stream(url, out, progress, limits, cancel)
    except DataError as err:
        result["error"] = err
    except (OSError, ValueError, http.client.HTTPException) as err:
        result["error"] = DataError(f"could not download {url}: {err}")
    except BaseException as err:  # noqa: BLE001 (reported in the caller's thread, which re-raises it)
        result["error"] = err


def _stream(url: str, out: BinaryIO, progress: bool, limits: DownloadLimits, cancel: threading.Event) -> str:
    """Copy the body chunk by chunk (``read1``: whatever arrived), checking the cap as it goes."""
    digest = hashlib.sha256()
    cap = int(limits.download_max_mb * MIB)
    too_big = (f"could not download {url}: the server sends more than {limits.download_max_mb:g} MiB "
               f"({limits.key('download_max_mb')}); check the URL, or raise the limit if the file is that large")
    received = 0
    read_timeout = min(_READ_TIMEOUT_S, limits.download_deadline_s + 5.0)  # the deadline, not a read, ends it
    with urllib.request.urlopen(url, timeout=read_timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > cap:
            raise DataError(f"{too_big} (Content-Length: {total} bytes)")
        read = getattr(response, "read1", response.read)
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"downloading {PurePosixPath(url).name}", disable=not progress) as bar:
            while not cancel.is_set() and (chunk := read(_CHUNK)):
                received += len(chunk)
                if received > cap:
                    raise DataError(too_big)
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    if total is not None and received != total and not cancel.is_set():
        raise DataError(f"could not download {url}: got {received} of {total} bytes")
    return digest.hexdigest()
