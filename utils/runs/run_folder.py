"""The run folder: created once, never overwritten, reopened with --resume."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from utils.core.errors import RunFolderError
from utils.runs.outputs import atomic_output

SUBDIRS = ("checkpoints", "summaries", "out", "logs")


def run_dir_of(config: Any) -> Path:
    """``<experiments_dir>/<exp_name>`` of a validated config."""
    return Path(config.experiments_dir) / config.exp_name


def check_run_dir(config: Any, resume: bool) -> Path:
    """Refuse to start over an existing run, or to resume a run that does not exist.

    Nothing is written; call this before any expensive work.

    Raises:
        RunFolderError: the folder already holds a run and ``resume`` is False;
            ``resume`` but no ``checkpoints/last.pt``.
    """
    run_dir = run_dir_of(config)
    last = run_dir / "checkpoints" / "last.pt"
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is a file, not a run folder; choose another name (--set exp_name=NEW_NAME)")
    try:
        holds_run = run_dir.exists() and any(run_dir.iterdir())
    except OSError as err:
        raise RunFolderError(f"cannot read the run folder {run_dir} ({err.strerror or err}); "
                             "set experiments_dir to a readable folder (--set experiments_dir=PATH)") from None
    if resume and not last.is_file():
        if holds_run:
            raise RunFolderError(
                f"--resume: nothing to resume in {run_dir}: it has no checkpoints/last.pt (the run stopped "
                "before its first epoch ended); delete the folder or choose another name "
                "(--set exp_name=NEW_NAME) to start again"
            )
        raise RunFolderError(
            f"--resume: nothing to resume in {run_dir} (no checkpoints/last.pt); run without --resume to start it"
        )
    if not resume and holds_run:
        raise RunFolderError(
            f"{run_dir} already holds a run; add --resume to continue it, or choose another name "
            f"(--set exp_name=NEW_NAME), or delete the folder"
        )
    return run_dir


def create_run_dir(config: Any, resume: bool, argv: list[str] | None = None) -> Path:
    """Create (or reopen) the run folder and record the config and how it was started.

    Raises:
        RunFolderError: see :func:`check_run_dir`; the folder cannot be written.
    """
    run_dir = check_run_dir(config, resume)
    try:
        for sub in SUBDIRS:
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=run_dir, prefix=".write-test-")
        probe.close()
    except OSError as err:
        raise RunFolderError(
            f"cannot write the run folder {run_dir} ({err.strerror or err}); "
            "set experiments_dir to a writable folder (--set experiments_dir=PATH)"
        ) from None
    if not resume:
        write_json(run_dir / "config.json", config)
    _record_invocation(run_dir / "environment.json", argv or sys.argv, resume)
    return run_dir


def wait_for_a_later_event_file_second(summaries: Path, limit_s: float = 2.0) -> None:
    """Wait until the clock's second is past that of every TensorBoard file in ``summaries``.

    TensorBoard reads event files in name order, and names start with the second
    they were created in; a resumed run's file must sort after the interrupted
    run's, or its purge of the orphaned steps is read before them.
    """
    stamps = [int(part) for part in (p.name.split(".")[3] for p in summaries.glob("events.out.tfevents.*"))
              if part.isdigit()]
    deadline = time.time() + limit_s
    while stamps and int(time.time()) <= max(stamps) and time.time() < deadline:
        time.sleep(0.05)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (:func:`utils.runs.outputs.atomic_output`)."""
    with atomic_output(path) as handle:
        json.dump(obj, handle, indent=2, allow_nan=False)
        handle.write("\n")


def _record_invocation(path: Path, argv: list[str], resume: bool) -> None:
    record = json.loads(path.read_text()) if path.is_file() else {"versions": versions(), "invocations": []}
    record["invocations"].append({
        "argv": list(argv),
        "resume": resume,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    })
    write_json(path, record)


def versions() -> dict[str, str]:
    """Versions of Python, the key libraries and the project (git commit when known)."""
    import numpy
    import sklearn
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__,
             "numpy": numpy.__version__, "scikit-learn": sklearn.__version__, "project": _git_commit()}
    return found


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
