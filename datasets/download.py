"""Download one file or a zip archive (``https``, ``http``, ``file``) within :class:`DownloadLimits`, verify it
against ``"sha256:<hex>"`` or ``"gitblob:<hex>"`` (``git hash-object``) checksums, and install it atomically: staged
beside the target, so a failure leaves nothing; the deadline is kept from a worker thread; zips size-checked first."""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import threading
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from utils.core.errors import ConfigError, DataError
from utils.core.types import hex_digits

MIB = 2**20
_HEX_LENGTHS = {"sha256": 64, "gitblob": 40}
_CHUNK = 1 << 16
_READ_TIMEOUT_S = 60.0  # one socket read; the deadline bounds the whole transfer
_RATIO_FROM_BYTES = MIB  # smaller members may compress as well as they like
_ENCRYPTED = 0x1  # a zip member's general-purpose flag bit 0


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds of one download; ``key_prefix`` + the field name is the config key, for messages."""

    download_deadline_s: float = 600.0  # s for the whole download, first byte to last
    download_max_mb: float = 200.0  # MiB the server may send
    unzip_max_mb: float = 1024.0  # MiB of the installed members, uncompressed, in all
    max_ratio: float = 100.0  # largest uncompressed / compressed size of a member over 1 MiB (text: 3-10x; bomb: 1000x)
    key_prefix: str = ""

    def key(self, name: str) -> str:
        """``name=value`` of a limit as the user sets it, e.g. ``data.download_max_mb=200``."""
        prefix = "" if name == "max_ratio" else self.key_prefix
        return f"{prefix}{name}={getattr(self, name):g}"


def parse_checksum(spec: str) -> tuple[str, str]:
    """Split ``"kind:hex"`` into ``(kind, lower-case hex)``; ConfigError if malformed."""
    kind, _, value = str(spec).partition(":")
    digits = hex_digits(value, _HEX_LENGTHS[kind]) if kind in _HEX_LENGTHS else None
    if digits is None:
        raise ConfigError(f"invalid checksum {spec!r}; expected 'sha256:<64 hex digits>' or 'gitblob:<40 hex digits>'")
    return kind, digits


def file_checksum(path: Path, kind: str) -> str:
    """Lower-case hex digest of a file, ``kind`` ``"sha256"`` or ``"gitblob"`` (checked by :func:`parse_checksum`)."""
    digest = hashlib.sha256() if kind == "sha256" else hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size)
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: digest).hexdigest()


def download_file(url: str, dest: Path, checksum: str, progress: bool = True,
                  limits: DownloadLimits | None = None) -> None:
    """Download one file to ``dest`` (its folders made if missing), verified against ``checksum`` first."""
    dest = Path(dest)
    kind, want = parse_checksum(checksum)
    with _staging(dest.parent) as tmp:
        part = tmp / dest.name
        _fetch(url, part, progress, limits or DownloadLimits())
        if (got := file_checksum(part, kind)) != want:
            raise DataError(f"checksum mismatch for {dest.name} downloaded from {url}: expected {kind}:{want}, "
                            f"got {kind}:{got}")
        _install({dest.name: part}, dest.parent, url)


def download_archive(url: str, data_dir: Path, archive_sha256: str | None, file_checksums: dict[str, str],
                     progress: bool = True, limits: DownloadLimits | None = None) -> None:
    """Download a zip, verify it (``archive_sha256``: hex or ``sha256:<hex>``, None to skip) and move its files into
    ``data_dir`` under their base names; only the members ``file_checksums`` names are installed (all when empty)."""
    data_dir, limits = Path(data_dir), limits or DownloadLimits()
    expected = {name: parse_checksum(spec) for name, spec in file_checksums.items()}
    hex_digits = str(archive_sha256).removeprefix("sha256:")
    archive_want = parse_checksum(f"sha256:{hex_digits}")[1] if archive_sha256 else None
    with _staging(data_dir.parent) as tmp:
        archive = tmp / "archive.zip"
        _fetch(url, archive, progress, limits)
        if archive_want is not None and (got := file_checksum(archive, "sha256")) != archive_want:
            raise DataError(f"checksum mismatch for the archive downloaded from {url}: expected sha256 {archive_want}, "
                            f"got sha256 {got}")
        files = _extract(archive, tmp / "members", sorted(expected), url, limits)
        for name, (kind, want) in expected.items():
            if (got := file_checksum(files[name], kind)) != want:
                raise DataError(f"checksum mismatch for {name} in the archive from {url}: expected {kind}:{want}, "
                                f"got {kind}:{got}")
        _install(files, data_dir, url)


@contextmanager
def _staging(parent: Path) -> Iterator[Path]:
    """A hidden temporary folder in ``parent``, made with its missing parents; those go again on failure."""
    created = [p for p in (parent, *parent.parents) if not p.exists()]  # deepest first
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = tempfile.TemporaryDirectory(dir=parent, prefix=".download-", ignore_cleanup_errors=True)
    except OSError as exc:
        _remove_folders(created)
        raise DataError(f"cannot create a temporary folder in {parent}: {exc}") from exc
    try:
        with staging as tmp:
            yield Path(tmp)
    except BaseException:
        _remove_folders(created)
        raise


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        with suppress(OSError):
            folder.rmdir()


def _install(files: dict[str, Path], folder: Path, url: str) -> None:
    """Move verified files into ``folder``; on failure the files and the folder it made are removed."""
    made, installed = not folder.exists(), []
    try:
        folder.mkdir(exist_ok=True)
        for name, src in files.items():
            dst = folder / name
            existed = dst.exists()
            os.replace(src, dst)
            if not existed:  # only what this install put there is taken back
                installed.append(dst)
    except OSError as exc:
        for path in installed:
            path.unlink(missing_ok=True)
        _remove_folders([folder] if made else [])
        raise DataError(f"cannot install the files from {url} into {folder}: {exc}") from exc


# ----- the transfer -----------------------------------------------------------------------
def _fetch(url: str, dest: Path, progress: bool, limits: DownloadLimits) -> None:
    """Stream ``url`` into ``dest`` in a worker thread, waiting for it at most ``limits.download_deadline_s``."""
    # after a timeout the worker, a daemon thread, stops at its next read (it only writes into dest)
    outcome: list[BaseException | None] = []
    cancel = threading.Event()

    def work(out: BinaryIO) -> None:
        try:
            _copy_body(url, out, progress, limits, cancel)
            outcome.append(None)
        except (OSError, ValueError, http.client.HTTPException) as err:
            outcome.append(DataError(f"could not download {url}: {err}"))
        except BaseException as err:  # noqa: BLE001 (re-raised in the caller's thread)
            outcome.append(err)

    with open(dest, "wb") as out:
        worker = threading.Thread(target=work, args=(out,), name="download", daemon=True)
        worker.start()
        try:
            worker.join(limits.download_deadline_s)
        finally:  # past the deadline, or Ctrl-C while waiting
            if worker.is_alive():
                cancel.set()
        if worker.is_alive():
            raise DataError(f"could not download {url}: not finished after {limits.download_deadline_s:g} s "
                            f"({limits.key('download_deadline_s')}; the server is slow or unreachable)")
    if outcome[0] is not None:
        raise outcome[0]


def _copy_body(url: str, out: BinaryIO, progress: bool, limits: DownloadLimits, cancel: threading.Event) -> None:
    """Copy the body chunk by chunk (``read1``: whatever arrived), refusing more than ``download_max_mb``."""
    cap = int(limits.download_max_mb * MIB)
    too_big = (f"could not download {url}: the server sends more than {limits.download_max_mb:g} MiB "
               f"({limits.key('download_max_mb')}); check the URL, or raise the limit if the file is that large")
    with urllib.request.urlopen(url, timeout=min(_READ_TIMEOUT_S, limits.download_deadline_s + 5.0)) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > cap:
            raise DataError(f"{too_big} (Content-Length: {total} bytes)")
        with tqdm.wrapattr(out, "write", total=total, unit="B", unit_scale=True, unit_divisor=1024,
                           desc=f"downloading {PurePosixPath(url).name}", disable=not progress) as counted:
            received = _copy_at_most(getattr(response, "read1", response.read), counted, cap, too_big, cancel)
    if total is not None and received != total and not cancel.is_set():
        raise DataError(f"could not download {url}: got {received} of {total} bytes")


# ----- the archive ------------------------------------------------------------------------
def _extract(archive: Path, dest: Path, names: list[str], url: str, limits: DownloadLimits) -> dict[str, Path]:
    """Extract the members named ``names`` (all files if empty) into ``dest``, their sizes checked first."""
    try:
        with zipfile.ZipFile(archive) as zf:
            by_name = _members_by_name(zf, url)
            if missing := [n for n in names if n not in by_name]:
                raise DataError(f"the archive from {url} lacks {', '.join(missing)}; "
                                f"it holds: {', '.join(sorted(by_name)) or '(no files)'}")
            chosen = names or sorted(by_name)
            for name in chosen:  # a name held twice matters only where it is wanted
                if len(by_name[name]) > 1:
                    raise DataError(f"the archive from {url} holds two files named {name}: "
                                    f"{', '.join(info.filename for info in by_name[name])}")
            members = {name: by_name[name][0] for name in chosen}
            if locked := [members[n].filename for n in chosen if members[n].flag_bits & _ENCRYPTED]:
                raise DataError(f"the archive from {url} is password-protected ({', '.join(locked)}): nothing was "
                                "extracted; unzip it by hand with its password")
            _check_sizes([members[n] for n in chosen], dest.parent, url, limits)
            dest.mkdir()
            for name in chosen:
                with zf.open(members[name]) as src, open(dest / name, "wb") as dst:
                    _copy_at_most(src.read, dst, members[name].file_size, f"the archive from {url}: a member holds "
                                  f"more than the {members[name].file_size} bytes it declares")
            return {name: dest / name for name in chosen}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise DataError(f"the file downloaded from {url} is not a valid zip archive: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot extract the archive from {url}: {exc}") from exc


def _members_by_name(zf: zipfile.ZipFile, url: str) -> dict[str, list[zipfile.ZipInfo]]:
    """Base name -> the members of that name, for the regular files of a zip (macOS junk and hidden files skipped)."""
    members: dict[str, list[zipfile.ZipInfo]] = {}
    for info in zf.infolist():
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.is_dir() or not parts or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        members.setdefault(parts[-1], []).append(info)
    if not members:
        raise DataError(f"the archive from {url} holds no files")
    return members


def _check_sizes(infos: list[zipfile.ZipInfo], folder: Path, url: str, limits: DownloadLimits) -> None:
    """DataError before extracting anything: a member compressed suspiciously well, too much in all, no room."""
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FROM_BYTES and ratio > limits.max_ratio:
            raise DataError(f"the archive from {url}: {info.filename} would unpack {info.compress_size} bytes into "
                            f"{info.file_size} ({ratio:.0f}x, above {limits.key('max_ratio')}): refused as a zip "
                            "bomb; nothing was extracted")
    total = sum(info.file_size for info in infos)
    if total > limits.unzip_max_mb * MIB:
        raise DataError(f"the archive from {url}: its files would unpack to {total / MIB:.1f} MiB, above "
                        f"{limits.key('unzip_max_mb')} MiB; nothing was extracted (raise the limit if that is "
                        "expected)")
    if total > (free := shutil.disk_usage(folder).free):
        raise DataError(f"the archive from {url}: its files need {total / MIB:.1f} MiB but {folder.parent} has "
                        f"{free / MIB:.1f} MiB free; nothing was extracted")


def _copy_at_most(read: Callable[[int], bytes], out: BinaryIO, size: int, too_big: str,
                  cancel: threading.Event | None = None) -> int:
    """Copy ``read``'s chunks into ``out`` until none is left or ``cancel`` is set; the bytes copied.
    DataError ``too_big`` past ``size`` bytes (a server's cap, or what a zip member declared)."""
    copied = 0
    while not (cancel and cancel.is_set()) and (chunk := read(_CHUNK)):
        copied += len(chunk)
        if copied > size:
            raise DataError(too_big)
        out.write(chunk)
    return copied
