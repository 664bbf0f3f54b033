"""A run's life on a folder of recordings: a disk filling up while the outputs are written, a resume after the
folder's files changed (docs/stopping-resuming.md, docs/data.md)."""
from __future__ import annotations

import builtins
import errno
import os

import pytest

import utils.runs.outputs as outputs
from utils.core.errors import WriteError


class ClosingOnAFullDisk:
    """A file whose close fails as a real one does on a full disk when a failed write left bytes in its buffer."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def __getattr__(self, name: str):
        return getattr(self.handle, name)

    def __enter__(self) -> "ClosingOnAFullDisk":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.handle.close()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_an_output_is_written_names_the_output_even_when_the_close_fails_too(tmp_path, monkeypatch):
    """stream_scores.csv/scores.csv on a full tmpfs: the row that failed left bytes buffered, the close failed on them
    too, and its OSError (no file name) replaced the WriteError: "error: cannot write a file (No space left...)"."""
    real_open = builtins.open
    monkeypatch.setattr(outputs, "open", lambda *args, **kwargs: ClosingOnAFullDisk(real_open(*args, **kwargs)),
                        raising=False)
    target = tmp_path / "out" / "scores.csv"
    target.parent.mkdir()
    with pytest.raises(WriteError, match=f"cannot write {target} \\(No space left on device\\)"):
        with outputs.atomic_output(target) as handle:
            handle.write("row,score\n")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a write to the full disk raises it
    assert list(target.parent.iterdir()) == [], "nothing half-written remains"
