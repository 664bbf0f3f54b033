"""One process at a time per run folder: an exclusive ``flock`` on ``<run folder>/.lock``, holding its PID.

The kernel releases it however the process ends (SIGKILL included): a stale lock file never blocks a rerun.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from itertools import product
from pathlib import Path

from utils.core.errors import RunFolderError

LOCK_NAME = ".lock"
#: Files a killed write leaves behind (atomic writes go through ``.<name>.<random>.tmp``), and the write probe.
STALE_PATTERNS = (".*.tmp", ".write-test-*")


class RunLock:
    """The exclusive lock of one run folder (see the module docstring)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (the folder must exist; no-op when held); RunFolderError naming the PID of another holder."""
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RunFolderError(f"cannot write the run folder {self.run_dir} ({err.strerror or err}); "
                                 "set experiments_dir to a writable folder (--set experiments_dir=PATH)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise in_use_error(self.run_dir, holder_pid(self.path)) from None
        with suppress(OSError):  # the PID is only for the messages; the lock itself is held
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the descriptor releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def in_use_error(run_dir: Path, pid: int | str) -> RunFolderError:
    """The error of a second run of a folder another process holds."""
    return RunFolderError(f"{run_dir} is in use by another run (PID {pid}); wait until it ends, or stop it "
                          "(Ctrl-C, or kill PID) and then resume it")


def training_pid(run_dir: Path) -> int | str | None:
    """The PID of a process holding ``run_dir``'s lock now (``"unknown"`` when unnamed), else None.

    Probes with a shared lock, so two probes do not block each other."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return holder_pid(path)
    finally:
        os.close(fd)
    return None


def holder_pid(path: Path) -> int | str:
    """The PID written in a lock file, or ``"unknown"``."""
    try:
        text = path.read_text().strip()
    except OSError:
        return "unknown"
    return int(text) if text.isdigit() else "unknown"


def remove_stale_files(run_dir: Path) -> None:
    """Delete the temporary files killed writes left in the run folder and its checkpoints (hold the lock)."""
    for folder, pattern in product((run_dir, run_dir / "checkpoints"), STALE_PATTERNS):
        for path in folder.glob(pattern):
            with suppress(OSError):
                path.unlink()
