"""A run's life on a folder of recordings: a disk filling up while the outputs are written, a resume after the
folder's files changed (docs/stopping-resuming.md, docs/data.md)."""
from __future__ import annotations

import builtins
import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import main
import utils.runs.outputs as outputs
from tests.helpers import REPO_ROOT, TINY_VAE
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


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny VAE run (about 3 s), its folder."""
    root = tmp_path_factory.mktemp("runs")
    argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={root}"]
    assert main.main(argv + [arg for item in TINY_VAE for arg in ("--set", item)]) == 0
    return root / "run"


@pytest.mark.parametrize("mode", [["--mode", "score", "--input", "IN", "--output", "OUT"], ["--resume"]])
def test_a_run_folder_moved_elsewhere_is_named_with_the_set_that_reaches_it(finished, tmp_path, capsys, mode):
    """The folder's own config.json still names the folder the run was trained in; before, with that one gone:
    "best.pt: checkpoint not found; ... point CONFIG at the run's config" (it was) and "nothing to resume"."""
    moved = tmp_path / "elsewhere" / "pump"
    shutil.copytree(finished, moved)
    np.save(tmp_path / "in.npy", np.zeros((200, 3), dtype=np.float32))
    argv = [str(moved / "config.json"), *[{"IN": str(tmp_path / "in.npy"), "OUT": str(tmp_path / "s.csv")}.get(arg, arg)
                                           for arg in mode]]
    hidden = finished.with_name("hidden")
    finished.rename(hidden)
    try:
        assert main.main(argv) == 2
    finally:
        hidden.rename(finished)
    said = capsys.readouterr().err
    assert f"{moved / 'config.json'} is the config of the run folder {moved}" in said, said
    assert f"--set experiments_dir={moved.parent} --set exp_name=pump" in said, said
    assert main.main([*argv, "--set", f"experiments_dir={moved.parent}", "--set", "exp_name=pump"]) == 0


def recordings(folder: Path) -> Path:
    """Three small recordings (two sensors, a labelled range in each test part), written to ``folder``."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for number in range(3):
        rows = ["t,a,b,label"] + [f"{t},{rng.normal():.4f},{np.sin(t / 5) + rng.normal(0, .1):.4f},"
                                  f"{int(250 <= t < 262)}" for t in range(300)]
        (folder / f"{number}.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("change", ["added", "removed", "changed"])
def test_a_resume_on_a_changed_folder_names_the_files_added_removed_or_changed(tmp_path, capsys, change):
    """Before: "the data of data.path=... changed (its windows were 240, ... now 320, ...; digest ...)", no file."""
    data = recordings(tmp_path / "pump")
    argv = [str(REPO_ROOT / "configs" / "example_csv.json"), "--set", f"experiments_dir={tmp_path}"]
    for item in (f"data.path={data}", "data.window_length=10", "data.stride=5", "data.train_end=200",
                 "data.timestamp_column=t", "data.val_fraction=0.25", "data.test_fraction=null",
                 "trainer.epochs=1", "trainer.progress_bar=false", "model.hidden_sizes=[4]", "model.latent_dim=2",
                 "evaluation.make_plots=false", "evaluation.scores=[\"reconstruction\"]", "evaluation.baselines=[]",
                 "exp_name=run"):
        argv += ["--set", item]
    assert main.main(argv) == 0
    one = data / "1.csv"
    if change == "added":
        one = data / "3.csv"
        shutil.copy(data / "1.csv", one)
    elif change == "removed":
        one.unlink()
    else:
        lines = one.read_text().splitlines()
        t, _, *rest = lines[281].split(",")
        lines[281] = ",".join([t, "9.5", *rest])  # a test-part value: only the metrics would use it
        one.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main.main([*argv, "--set", "trainer.epochs=2", "--resume"]) == 2
    said = capsys.readouterr().err
    assert f"{one} {change}" in said, said
    assert str(data / "0.csv") not in said, "an unchanged file is not named"
