"""Files a command writes for the user: atomic (:func:`atomic_output`), or whole lines as they are flushed
(:class:`WholeLines`), and never over what the user owns unless told to (:func:`check_output`)."""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from utils.core.errors import UserError, WriteError

TEMP_SUFFIX = ".tmp"


class OutputError(UserError):
    """An output path the command will not write (exit 2)."""


@contextmanager
def atomic_output(path: str | Path, mode: str = "w", what: str = "", after: str = "",
                  **open_kwargs: Any) -> Iterator[IO[Any]]:
    """A temporary file (``.NAME.<pid>.<random>.tmp``, UTF-8 text by default) fsynced and renamed to ``path`` when the
    block ends without an exception (a new file by a hard link: never over one written meanwhile), else left as it
    was; WriteError naming the target (``errno`` and ``filename`` set; ``what`` and ``after`` as
    :func:`cannot_write`'s) when it cannot be written."""
    path = Path(path)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    tmp = temp_path_for(path, what, after)
    replacing = os.path.lexists(path)  # else the file is created: never over one that appears meanwhile
    try:
        handle = open(tmp, mode, **open_kwargs)
        try:
            try:
                yield handle
            except OSError as err:  # a write to the handle (disk full) names no file: name the target
                if err.filename not in (None, str(tmp)):
                    raise
                raise cannot_write(path, err, what, after) from None
            with _naming(path, what, after):
                handle.flush()
                os.fsync(handle.fileno())
        finally:  # flushed above, or discarded: a close failing on what a failed write left buffered names no file
            with suppress(OSError):
                handle.close()
        with _naming(path, what, after):
            os.chmod(tmp, new_file_mode())
            os.replace(tmp, path) if replacing else _create_from(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _create_from(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path``; OutputError if a file of that name appeared meanwhile (left as it is)."""
    try:
        try:
            os.link(tmp, path)  # atomic, and fails if the name is taken
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))  # no hard links here: claim the name
            os.replace(tmp, path)
    except FileExistsError:
        raise OutputError(f"{path}: another process created this file while this command wrote it; it is left as "
                          "it is and this command's output was discarded. Add --overwrite to replace it, or choose "
                          "another name") from None


@contextmanager
def _naming(path: Path, what: str = "", after: str = "") -> Iterator[None]:
    """An OSError of writing ``path`` as a WriteError naming ``path`` (see :func:`cannot_write`)."""
    try:
        yield
    except OSError as err:
        raise cannot_write(path, err, what, after) from None


def cannot_write(path: Path, err: OSError, what: str = "", after: str = "") -> WriteError:
    """A WriteError naming ``path`` (``what`` before it, ``after`` the reason) with the reason and errno of ``err``."""
    failure = WriteError(f"cannot write {what}{path} ({err.strerror or err}){after}")
    failure.errno, failure.filename = err.errno, str(path)
    return failure


class WholeLines:
    """A text file written as the lines are flushed (a live output), never ending in half a line: a ``flush`` that
    fails part way (no space left) cuts the file back to the last flush and raises a WriteError naming the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with _naming(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)  # as atomic_output makes a batch output's folder
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self._pending: list[str] = []
        self._whole = 0  # bytes on disk that end with a whole line
        self.failed = False

    def write(self, text: str) -> int:
        self._pending.append(text)
        return len(text)

    def flush(self) -> None:
        """Write what was collected, whole or not at all."""
        if self.failed or not self._pending:
            return
        data = memoryview("".join(self._pending).encode("utf-8"))
        self._pending.clear()
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as err:
            self.failed = True
            os.ftruncate(self._fd, self._whole)  # never fails for lack of space: it frees
            raise cannot_write(self.path, err) from None
        self._whole = os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        """Flush and close (after a failed write: close only)."""
        try:
            self.flush()
        finally:
            os.close(self._fd)

    def __enter__(self) -> WholeLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.failed = self.failed or exc[0] is not None and issubclass(exc[0], OSError)
        self.close()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as handle:
        handle.write(text)


def new_file_mode() -> int:
    """The mode :func:`open` gives a new file under this process's umask (``0o666 & ~umask``; mkstemp's is 0600)."""
    try:  # Linux reports the umask; setting it to read it back would race with threads creating files
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
        mask = next(int(line.split()[1], 8) for line in status.splitlines() if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def temp_path_for(path: str | Path, what: str = "", after: str = "") -> Path:
    """A fresh temporary path beside ``path`` for a writer that needs a file name (it must be renamed or removed);
    WriteError as :func:`cannot_write`'s if it cannot be made."""
    path = Path(path)
    with _naming(path, what, after):
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise NotADirectoryError(errno.ENOTDIR, f"{blocking} is a file, not a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
        os.close(fd)
        return Path(tmp)


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporary files of ``path`` whose writing process is gone; returns what was removed."""
    path, removed = Path(path), []
    for tmp in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if not (pid.isdigit() and _alive(int(pid))):
            with suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        with suppress(PermissionError):  # it exists, run by another user
            os.kill(pid, 0)  # signal 0: only whether the process exists
    except ProcessLookupError:
        return False
    return True


def run_folder_of(path: str | Path) -> Path | None:
    """The run folder ``path`` lies in (a folder holding ``config.json`` and ``checkpoints/``), or None."""
    for folder in Path(path).resolve().parents:
        if (folder / "config.json").is_file() and (folder / "checkpoints").is_dir():
            return folder
    return None


def check_output(path: str | Path, overwrite: bool = False, inputs: tuple[str | Path, ...] = (),
                 option: str = "--output", config: str | Path | None = None, example: str = "scores.csv") -> Path:
    """OutputError for an output the command must not write: a folder (suggesting ``example`` as a file name in
    it), an input, a run folder's file, an existing file (unless ``overwrite``); ``option`` names the path."""
    path = Path(path)
    try:
        # The path as the kernel sees it once the writer has made its missing folders: 'new/../in.csv' does not
        # exist while 'new' is missing, but is in.csv after the writer's mkdir of its parent.
        real = Path(os.path.realpath(path))
        if path.is_dir() or real.is_dir():
            raise OutputError(f"{option} {path}: is a folder; give a file name (e.g. {path / example})")
        read = [(item, "the input file") for item in inputs]
        read += [(config, "the config file this command reads")] if config is not None else []
        for item, what in read:
            for candidate in dict.fromkeys((path, real)):
                if candidate.exists() and Path(item).exists() and os.path.samefile(candidate, item):
                    raise OutputError(f"{option} {path}: is {what}; write the output to another file")
        run = run_folder_of(path)
        if run is not None:
            raise OutputError(f"{option} {path}: lies in the run folder {run}, whose files are the run's own and "
                              "are never overwritten; write the output outside it")
        if real.exists() and not real.is_file():  # a device (/dev/full, run as root), a FIFO, a socket
            raise OutputError(f"{option} {path}: is not a regular file (a device, pipe or socket), which is never "
                              "replaced; give a file name")
        if (os.path.lexists(path) or real.exists()) and not overwrite:  # lexists: a dangling symlink is a file too
            raise OutputError(f"{option} {path}: exists; add --overwrite to replace it, or choose another name")
    except OSError as err:  # a name too long for the filesystem, a loop of symlinks...
        raise OutputError(f"{option} {path}: cannot be used as a file name ({err.strerror or err}); choose "
                          "another name") from None
    return path
