"""The run folder: created once, never overwritten, reopened with --resume; one process at a time holds it (an
exclusive ``flock`` on ``<run folder>/.lock`` holding its PID, released by the kernel however the process ends)."""
from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import product
from pathlib import Path
from typing import Any

from utils.core.errors import ConfigError, RunFolderError
from utils.core.paths import unreadable_file
from utils.runs.outputs import atomic_write_text

SUBDIRS = ("checkpoints", "summaries", "out", "logs")
#: What to do about a run folder that cannot be written; a resume can only continue its own folder.
UNWRITABLE_ADVICE = ("set experiments_dir to a writable folder (--set experiments_dir=PATH); to --resume, free space on "
                     "the folder's disk or make it writable instead")
LOCK_NAME = ".lock"
#: Files a killed write leaves behind (atomic writes go through ``.<name>.<random>.tmp``), and the write probe.
STALE_PATTERNS = (".*.tmp", ".write-test-*")
#: The longest file name (one path part) and path Linux file systems take (NAME_MAX, PATH_MAX).
NAME_MAX, PATH_MAX = 255, 4096
#: The product's code: what a run executes (tests, benchmarks and docs are left out).
SOURCE_PARTS = ("main.py", "agents", "graphs", "datasets", "utils")
SOURCE_SUFFIXES = (".py", ".cpp", ".h")
#: The run folder's layout: each path attribute of :class:`RunFolder` and its place inside the folder.
LAYOUT = {
    "config": "config.json", "environment": "environment.json", "summaries": "summaries", "train_log": "logs/train.log",
    "checkpoints": "checkpoints", "last": "checkpoints/last.pt", "best": "checkpoints/best.pt",
    "out": "out", "metrics": "out/metrics.json", "scores": "out/scores.csv", "report": "out/report.md",
    "stream_scores": "out/stream_scores.csv", "incidents": "out/incidents.csv",
}


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
                                 f"{UNWRITABLE_ADVICE}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise in_use_error(self.run_dir, _holder_pid(self.path)) from None
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
    """The PID holding ``run_dir``'s lock now (``"unknown"`` when unnamed), else None; probes with a shared lock."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_pid(path)
    finally:
        os.close(fd)
    return None


def _holder_pid(path: Path) -> int | str:
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


@dataclass(frozen=True)
class RunFolder:
    """Every path of a run folder, spelled once: ``RunFolder(root).last`` is ``root / LAYOUT["last"]``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def __getattr__(self, name: str) -> Path:
        if name not in LAYOUT:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self.root / LAYOUT[name]

    def figure(self, stem: str) -> Path:
        """``out/<stem>.png``."""
        return self.out / f"{stem}.png"

    def finished(self) -> bool:
        """Whether the run trained to its end and was evaluated (``last.pt`` and ``out/metrics.json`` exist)."""
        return self.last.is_file() and self.metrics.is_file()


def run_dir_of(config: Any) -> Path:
    """``<experiments_dir>/<exp_name>`` of a validated config (ConfigError: see :func:`check_folder_path`)."""
    check_folder_path(config.experiments_dir, "experiments_dir")
    return Path(config.experiments_dir) / config.exp_name


def check_folder_path(value: str, key: str) -> None:
    """Refuse a folder path that no file system takes (a NUL, a part or the whole too long), naming ``key``."""
    if "\0" in value:
        raise ConfigError(f"{key}: {value!r} holds a NUL character (at {value.index(chr(0))}), which no file path "
                          "may; give a folder path such as experiments")
    long = next((part for part in Path(value).parts if _bytes(part) > NAME_MAX), None)
    if long is not None:
        raise ConfigError(f"{key}: the folder name {long[:30]!r}... is {_bytes(long)} bytes long; file systems "
                          f"take at most {NAME_MAX}; give a shorter path")
    if _bytes(value) > PATH_MAX - NAME_MAX:
        raise ConfigError(f"{key}: the path is {_bytes(value)} bytes long; with the run's own names paths may be at "
                          f"most {PATH_MAX}, so give one of at most {PATH_MAX - NAME_MAX}")


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def refuse_a_moved_run(config_path: str | Path, run_dir: Path) -> None:
    """RunFolderError when ``config_path`` is the ``config.json`` of a run folder (copied or moved elsewhere) while
    the ``run_dir`` it names holds no checkpoints: the error gives the ``--set`` that reaches the copy."""
    here = Path(config_path).resolve().parent
    if (here / "checkpoints").is_dir() and not (run_dir / "checkpoints").is_dir() and here != run_dir.resolve():
        raise RunFolderError(f"{config_path} is the config of the run folder {here}, but names the folder it was "
                             f"trained in, {run_dir}, which holds no checkpoints (the run was moved or copied): add "
                             f"--set experiments_dir={here.parent} --set exp_name={here.name}")


def check_run_dir(config: Any, resume: bool, locked: bool = False) -> Path:
    """RunFolderError for a folder in use (unless ``locked``: this process holds it), holding a run without
    ``resume``, or with no ``last.pt`` to resume; nothing is written."""
    run_dir = run_dir_of(config)
    last = RunFolder(run_dir).last
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a run folder; choose another name (--set exp_name=NEW_NAME)")
    try:
        holds_run = run_dir.exists() and any(not _is_bookkeeping(p) for p in run_dir.iterdir())
    except OSError as err:
        raise RunFolderError(f"cannot read the run folder {run_dir} ({err.strerror or err}); "
                             "set experiments_dir to a readable folder (--set experiments_dir=PATH)") from None
    pid = training_pid(run_dir) if holds_run and not locked else None  # locked: this process holds it
    if pid is not None:
        raise in_use_error(run_dir, pid)
    if resume and not last.is_file():
        if os.path.lexists(last):  # a folder or something else by that name: not a checkpoint that went missing
            raise RunFolderError(f"--resume: {last} {unreadable_file(last)}; it should be the checkpoint this run "
                                 "wrote: move it away, or start again under another name (--set exp_name=NEW_NAME)")
        if holds_run:
            raise RunFolderError(f"--resume: nothing to resume in {run_dir}: it has no checkpoints/last.pt (the run "
                                 "stopped before its first checkpoint was written); delete the folder or choose another "
                                 "name (--set exp_name=NEW_NAME) to start again")
        raise RunFolderError(f"--resume: nothing to resume in {run_dir} (no checkpoints/last.pt); run without "
                             "--resume to start it")
    if not resume and holds_run:
        raise RunFolderError(f"{run_dir} already holds a run; add --resume to continue it, or choose another name "
                             f"(--set exp_name=NEW_NAME), or delete the folder")
    return run_dir


def create_run_dir(config: Any, resume: bool, argv: list[str] | None = None, lock: RunLock | None = None) -> Path:
    """Create (or reopen) the run folder under its lock, remove stale files and record the config and how it was
    started; RunFolderError (:func:`check_run_dir`, or the folder cannot be written, naming the path)."""
    lock = lock or RunLock(run_dir_of(config))
    run_dir = check_run_dir(config, resume, locked=lock.held)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        check_run_dir(config, resume, locked=True)  # again, under the lock: another run may have started meanwhile
        remove_stale_files(run_dir)
        for sub in SUBDIRS:
            (run_dir / sub).mkdir(exist_ok=True)
        tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-test-").close()  # a probe: is the folder writable?
        write_json(RunFolder(run_dir).config, config)  # a resume's too (e.g. more epochs): the config that reruns it
        _record_invocation(RunFolder(run_dir).environment, argv or sys.argv, resume)
    except OSError as err:
        inside = Path(err.filename) if err.filename and run_dir in Path(err.filename).parents else None
        raise RunFolderError(f"cannot write the run folder {run_dir} ({err.strerror or err}"
                             f"{f' writing {inside}' if inside else ''}); {UNWRITABLE_ADVICE}") from None
    return run_dir


def _is_bookkeeping(path: Path) -> bool:
    """The lock file and leftovers of killed writes: no part of a run."""
    return path.name == LOCK_NAME or any(path.match(pattern) for pattern in STALE_PATTERNS)


def remove_unsaved_run(run_dir: Path) -> bool:
    """Remove a run folder this process created that ends without ``last.pt`` (it refuses reruns); whether removed."""
    if not run_dir.is_dir() or RunFolder(run_dir).last.exists():
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


def lock_run_dir(run_dir: Path) -> RunLock:
    """Take the lock of an existing run folder (RunFolderError if held) and remove stale files of killed writes."""
    lock = RunLock(run_dir)
    lock.acquire()
    remove_stale_files(run_dir)
    return lock


def wait_for_a_later_event_file_second(summaries: Path, limit_s: float = 2.0) -> None:
    """Wait until the clock's second is past that of every TensorBoard file in ``summaries`` (read in name order,
    by the second they were created in): a resumed run's purge of the orphaned steps must sort after them."""
    stamps = [int(part) for part in (p.name.split(".")[3] for p in summaries.glob("events.out.tfevents.*"))
              if part.isdigit()]
    deadline = time.time() + limit_s
    while stamps and int(time.time()) <= max(stamps) and time.time() < deadline:
        time.sleep(0.05)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (:func:`utils.runs.outputs.atomic_write_text`)."""
    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _record_invocation(path: Path, argv: list[str], resume: bool) -> None:
    record = json.loads(path.read_text()) if path.is_file() else {"versions": versions(), "invocations": []}
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record["invocations"].append({"argv": list(argv), "resume": resume, "started_utc": started,
                                  "host": platform.node(), "source_sha256": source_digest()})
    write_json(path, record)


def record_numerics(path: Path, record: dict[str, Any]) -> None:
    """Store ``record`` (:func:`utils.runtime.reproducibility.numerics`) as ``numerics`` of the latest invocation in
    the run's ``environment.json``."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data["invocations"] = invocations = data.get("invocations") or [{}]
    invocations[-1]["numerics"] = record
    write_json(path, data)


def versions() -> dict[str, str]:
    """Versions of Python, the key libraries and the project (git commit when known)."""
    import numpy
    import torch
    # scikit-learn's version from its metadata: importing it costs about 1 s of start-up
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scikit-learn": importlib.metadata.version("scikit-learn"), "project": _git_commit()}


def source_digest(root: Path | None = None) -> str:
    """SHA-256 over the product's source files (relative path and bytes, in path order) under ``root`` (default:
    this checkout): unlike the git commit, it tells apart runs of uncommitted changes."""
    root = root or Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for part in SOURCE_PARTS:
        top = root / part
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.suffix in SOURCE_SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(root).as_posix().encode()
                data = path.read_bytes()
                digest.update(b"%d:%s%d:" % (len(rel), rel, len(data)) + data)
    return digest.hexdigest()


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
