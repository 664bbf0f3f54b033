"""Download a zip archive (or a single file), verify it and its members, and install them atomically.

:func:`download_archive` streams a URL (``https://``, ``http://`` or ``file://``)
to a temporary file next to the target folder within the bounds of a
:class:`~datasets.http_fetch.DownloadLimits` (an overall deadline, a cap on the
body), checks checksums, checks the members' sizes before extracting any (a cap
on their uncompressed total, a cap on the compression ratio against zip bombs,
the free disk space), extracts into a temporary folder and only then moves the
files into place. On any failure it raises :class:`~utils.core.errors.DataError`
and leaves nothing behind. :func:`download_file` does the same for one file (no archive):
fetched next to its destination, its checksum checked, then moved into place.

Checksums are written ``"sha256:<hex>"`` or ``"gitblob:<hex>"``; a git blob id is
``sha1(b"blob <size>\\0" + content)``, what ``git hash-object FILE`` prints.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from datasets.http_fetch import MIB, DownloadLimits, fetch
from utils.core.errors import ConfigError, DataError

CHECKSUM_KINDS = ("sha256", "gitblob")
_HEX_LENGTHS = {"sha256": 64, "gitblob": 40}
_CHUNK = 1 << 16
_RATIO_FROM_BYTES = MIB  # smaller members may compress as well as they like


def file_checksum(path: Path, kind: str) -> str:
    """Hex digest of a file.

    Args:
        path: file to hash.
        kind: ``"sha256"`` or ``"gitblob"`` (git's blob id, a sha1 with a header).

    Returns:
        Lower-case hex digest.
    """
    if kind == "sha256":
        digest = hashlib.sha256()
    elif kind == "gitblob":
        digest = hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size)
    else:
        raise ConfigError(f"unknown checksum kind {kind!r}; valid kinds: {', '.join(CHECKSUM_KINDS)}")
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_checksum(spec: str) -> tuple[str, str]:
    """Split ``"kind:hex"`` into ``(kind, lower-case hex)``; ConfigError if malformed."""
    kind, _, value = str(spec).partition(":")
    value = value.strip().lower()
    if (kind not in _HEX_LENGTHS or len(value) != _HEX_LENGTHS[kind]
            or any(c not in "0123456789abcdef" for c in value)):
        raise ConfigError(
            f"invalid checksum {spec!r}; expected 'sha256:<64 hex digits>' or 'gitblob:<40 hex digits>'"
        )
    return kind, value


def download_archive(
    url: str,
    data_dir: Path,
    archive_sha256: str | None,
    file_checksums: dict[str, str],
    progress: bool = True,
    limits: DownloadLimits | None = None,
) -> None:
    """Download a zip, verify it, and move its files into ``data_dir``.

    Args:
        url: where the zip lives (``https://``, ``http://`` or ``file://``).
        data_dir: folder receiving the files (created if missing); members are
            stored under their base names.
        archive_sha256: expected sha256 of the zip itself (hex), or None to skip.
        file_checksums: base name of a member -> ``"sha256:<hex>"`` or
            ``"gitblob:<hex>"``. Only these members are installed; when empty,
            every file in the zip is.
        progress: show a tqdm progress bar while downloading.
        limits: deadline and size caps of the download and of the extraction (default: DownloadLimits()).

    Raises:
        DataError: download failed or exceeded a limit, bad zip, missing or
            oversized member, checksum mismatch; nothing is left behind (no
            temporary file or folder, no new file).
    """
    data_dir = Path(data_dir)
    limits = limits or DownloadLimits()
    expected = {name: parse_checksum(spec) for name, spec in file_checksums.items()}
    archive_expected = _archive_checksum(archive_sha256)
    created = _make_dirs(data_dir.parent)
    archive = tmp_dir = None
    installed: list[Path] = []
    try:
        try:
            archive = _temp(data_dir, folder=False)
            with open(archive, "wb") as out:
                got = fetch(url, out, progress, limits)
            if archive_expected is not None and got != archive_expected:
                raise DataError(
                    f"checksum mismatch for the archive downloaded from {url}: "
                    f"expected sha256 {archive_expected}, got sha256 {got}"
                )
            tmp_dir = _temp(data_dir, folder=True)
            files = _extract(archive, tmp_dir, sorted(expected), url, limits)
            _verify(files, expected, url)
            _install(files, data_dir, created, installed, url)
        finally:
            if archive is not None:
                archive.unlink(missing_ok=True)
            if tmp_dir is not None:
                shutil.rmtree(tmp_dir, ignore_errors=True)
    except BaseException:
        _undo(installed, created)
        raise


def download_file(url: str, dest: Path, checksum: str, progress: bool = True,
                  limits: DownloadLimits | None = None) -> None:
    """Download one file to ``dest``, verified against ``checksum`` before it is moved into place.

    Args:
        url: where the file lives (``https://``, ``http://`` or ``file://``).
        dest: the file to create (its folders are created if missing).
        checksum: ``"sha256:<hex>"`` or ``"gitblob:<hex>"``.
        progress: show a tqdm progress bar while downloading.
        limits: deadline and size cap of the download (default: DownloadLimits()).

    Raises:
        DataError: download failed or exceeded a limit, checksum mismatch; nothing is left behind (no
            temporary file, no folder created, ``dest`` untouched).
    """
    dest = Path(dest)
    limits = limits or DownloadLimits()
    kind, want = parse_checksum(checksum)
    created = _make_dirs(dest.parent)
    part = None
    try:
        part = _temp(dest, folder=False, suffix=".part")
        with open(part, "wb") as out:
            fetch(url, out, progress, limits)
        got = file_checksum(part, kind)
        if got != want:
            raise DataError(f"checksum mismatch for {dest.name} downloaded from {url}: expected {kind}:{want}, "
                            f"got {kind}:{got}")
        try:
            os.replace(part, dest)
        except OSError as exc:
            raise DataError(f"cannot install the file from {url} as {dest}: {exc}") from exc
        part = None
    except BaseException:
        if part is not None:
            part.unlink(missing_ok=True)
        _undo([], created)
        raise


def _archive_checksum(spec: str | None) -> str | None:
    """Normalise the archive sha256 (plain hex or ``sha256:<hex>``)."""
    if spec is None or spec == "":
        return None
    text = str(spec)
    return parse_checksum(text if text.startswith("sha256:") else f"sha256:{text}")[1]


def _temp(data_dir: Path, folder: bool, suffix: str = ".zip.part") -> Path:
    """Create a hidden temporary file or folder next to ``data_dir``."""
    prefix = f".{data_dir.name}-download-"
    try:
        if folder:
            return Path(tempfile.mkdtemp(dir=data_dir.parent, prefix=prefix))
        fd, name = tempfile.mkstemp(dir=data_dir.parent, prefix=prefix, suffix=suffix)
        os.close(fd)
        return Path(name)
    except OSError as exc:
        raise DataError(f"cannot create a temporary file in {data_dir.parent}: {exc}") from exc


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return those created, outermost first."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create folder {folder}: {exc}") from exc
    return missing


def _extract(archive: Path, dest: Path, names: list[str], url: str, limits: DownloadLimits) -> dict[str, Path]:
    """Extract the members named ``names`` (all files if empty) into ``dest``, their sizes checked first."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _members_by_name(zf, url)
            missing = [n for n in names if n not in members]
            if missing:
                raise DataError(
                    f"the archive from {url} lacks {', '.join(missing)}; "
                    f"it holds: {', '.join(sorted(members)) or '(no files)'}"
                )
            chosen = names or sorted(members)
            _check_sizes([members[n] for n in chosen], dest, url, limits)
            out = {}
            for name in chosen:
                out[name] = dest / name
                with zf.open(members[name]) as src, open(out[name], "wb") as dst:
                    _copy_at_most(src, dst, members[name].file_size, url)
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise DataError(f"the file downloaded from {url} is not a valid zip archive: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot extract the archive from {url}: {exc}") from exc


def _check_sizes(infos: list[zipfile.ZipInfo], dest: Path, url: str, limits: DownloadLimits) -> None:
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
    free = shutil.disk_usage(dest).free
    if total > free:
        raise DataError(f"the archive from {url}: its files need {total / MIB:.1f} MiB but {dest.parent} has "
                        f"{free / MIB:.1f} MiB free; nothing was extracted")


def _copy_at_most(src: BinaryIO, dst: BinaryIO, size: int, url: str) -> None:
    """Copy at most ``size`` bytes (what the zip's directory declared); DataError if there is more."""
    copied = 0
    while chunk := src.read(_CHUNK):
        copied += len(chunk)
        if copied > size:
            raise DataError(f"the archive from {url}: a member holds more than the {size} bytes it declares")
        dst.write(chunk)


def _members_by_name(zf: zipfile.ZipFile, url: str) -> dict[str, zipfile.ZipInfo]:
    """Map base name -> member for the regular files of a zip (skips macOS junk)."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.is_dir() or not parts or parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        if parts[-1] in members:
            raise DataError(f"the archive from {url} holds two files named {parts[-1]}")
        members[parts[-1]] = info
    if not members:
        raise DataError(f"the archive from {url} holds no files")
    return members


def _verify(files: dict[str, Path], expected: dict[str, tuple[str, str]], url: str) -> None:
    """Raise DataError on the first member whose checksum differs."""
    for name, (kind, want) in expected.items():
        got = file_checksum(files[name], kind)
        if got != want:
            raise DataError(
                f"checksum mismatch for {name} in the archive from {url}: "
                f"expected {kind}:{want}, got {kind}:{got}"
            )


def _install(files: dict[str, Path], data_dir: Path, created: list[Path],
             installed: list[Path], url: str) -> None:
    """Move verified files into ``data_dir``, recording new dirs/files for undo."""
    try:
        if not data_dir.exists():
            data_dir.mkdir()
            created.append(data_dir)
        for name, src in files.items():
            dst = data_dir / name
            existed = dst.exists()
            os.replace(src, dst)
            if not existed:
                installed.append(dst)
    except OSError as exc:
        raise DataError(f"cannot install the files from {url} into {data_dir}: {exc}") from exc


def _undo(installed: list[Path], created: list[Path]) -> None:
    """Remove files installed and folders created by a failed download."""
    for path in installed:
        path.unlink(missing_ok=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass
