"""When checkpoints are written: every ``trainer.checkpoint_interval_s`` seconds, at the end, and
best.pt always the best epoch's state even when that epoch was not a write epoch."""
from __future__ import annotations

import errno
import os
import stat

import pytest
import torch

from agents.base import BaseAgent
from tests.helpers import FAST_VAE, run_main
from utils.core.errors import RunFolderError, WriteError
from utils.runs.checkpoints import CheckpointWriter, load_checkpoint, save_checkpoint

VAL_LOSSES = [3.0, 1.0, 2.0, 4.0]  # epoch 2 is the best; 3 and 4 do not improve


@pytest.fixture
def scripted_run(tmp_path, monkeypatch):
    """Run 4 VAE epochs whose validation losses are VAL_LOSSES; record each write and the weights per epoch."""
    evaluate_loss, save = BaseAgent.evaluate_loss, CheckpointWriter.save
    seen = {"weights": [], "writes": [], "losses": VAL_LOSSES}

    def scripted(self, x):
        logs = evaluate_loss(self, x)
        if x is self.val_x:
            seen["weights"].append({k: v.clone() for k, v in self.model.state_dict().items()})
            logs["loss"] = seen["losses"][len(seen["weights"]) - 1]
        return logs

    def recording(self, files):
        seen["writes"].append([(path.name, state["epoch"], "optimizer" in state) for path, state in files])
        return save(self, files)

    monkeypatch.setattr(BaseAgent, "evaluate_loss", scripted)
    monkeypatch.setattr(CheckpointWriter, "save", recording)

    def run(interval: float, losses: list[float] = VAL_LOSSES) -> tuple[dict, dict]:
        seen["weights"].clear(), seen["writes"].clear()
        seen["losses"] = losses
        overrides = [*FAST_VAE, "trainer.epochs=4", f"trainer.checkpoint_interval_s={interval}",
                     "evaluation.make_plots=false", f"exp_name=interval_{interval}"]
        assert run_main("vae_converter.json", tmp_path, *overrides) == 0
        return seen, tmp_path / f"interval_{interval}" / "checkpoints"

    return run


def test_a_long_interval_writes_once_at_the_end_and_best_pt_is_still_the_best_epoch(scripted_run):
    seen, ckpt_dir = scripted_run(1e9)
    # one write after the last epoch: best.pt from the state kept at epoch 2 (first), last.pt at epoch 4
    assert seen["writes"] == [[("best.pt", 2, False), ("last.pt", 4, True)]]
    best = load_checkpoint(ckpt_dir / "best.pt")
    assert (best["epoch"], best["best_epoch"], best["best_val"]) == (2, 2, 1.0)
    for key, tensor in seen["weights"][1].items():
        assert torch.equal(best["model"][key], tensor), key
    assert load_checkpoint(ckpt_dir / "last.pt")["epoch"] == 4


def test_a_best_last_epoch_replaces_an_older_best_snapshot(scripted_run):
    """Epoch 2 improves but is not written; epoch 4 (written at the end) improves again: best.pt is epoch 4."""
    seen, ckpt_dir = scripted_run(1e9, [3.0, 1.0, 2.0, 0.5])
    assert seen["writes"] == [[("best.pt", 4, False), ("last.pt", 4, True)]]
    best = load_checkpoint(ckpt_dir / "best.pt")
    assert (best["epoch"], best["best_epoch"], best["best_val"]) == (4, 4, 0.5)
    for key, tensor in seen["weights"][3].items():
        assert torch.equal(best["model"][key], tensor), key


def test_interval_zero_writes_every_epoch_and_improving_ones_to_best_pt(scripted_run):
    seen, ckpt_dir = scripted_run(0)
    assert seen["writes"] == [[("best.pt", 1, False), ("last.pt", 1, True)], [("best.pt", 2, False), ("last.pt", 2, True)],
                              [("last.pt", 3, True)], [("last.pt", 4, True)]]
    best = load_checkpoint(ckpt_dir / "best.pt")
    assert best["epoch"] == 2
    for key, tensor in seen["weights"][1].items():
        assert torch.equal(best["model"][key], tensor), key


def test_background_writer_saves_snapshots(tmp_path):
    """Training changes the live tensors right after save(): the file holds the values at save()."""
    weights = torch.arange(6.0)
    state = {"model": {"w": weights}, "optimizer": {}, "epoch": 1, "global_step": 10, "history": {"loss": [1.0]}}
    writer = CheckpointWriter()
    writer.save([(tmp_path / "last.pt", state), (tmp_path / "best.pt", state)])
    weights.add_(100.0)
    state["history"]["loss"].append(0.5)
    writer.close()
    for name in ("last.pt", "best.pt"):
        saved = load_checkpoint(tmp_path / name)
        assert torch.equal(saved["model"]["w"], torch.arange(6.0)) and saved["history"]["loss"] == [1.0]
    assert (tmp_path / "best.pt").read_bytes() == (tmp_path / "last.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_background_writer_raises_a_failed_write_at_the_next_wait(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    writer = CheckpointWriter()
    writer.save([(blocker / "last.pt", {"model": {}, "optimizer": {}, "epoch": 1, "global_step": 1})])
    with pytest.raises(RunFolderError, match="cannot write the checkpoint .*not_a_folder.last.pt .*not_a_folder is a "
                                             "file, not a folder.; the previous last.pt, if any, is kept whole"):
        writer.wait()
    writer.save([(tmp_path / "last.pt", {"model": {}, "optimizer": {}, "epoch": 2, "global_step": 2})])
    writer.close()
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


def test_a_checkpoint_is_written_through_atomic_output(tmp_path, monkeypatch):
    """As every other output: the mode open() gives a new file, a killed write's temporary file cleared (it was left
    before), and a failed write naming the checkpoint, keeping the previous file whole and leaving no temporary file."""
    last = tmp_path / "last.pt"
    stale = tmp_path / ".last.pt.999999999.x1.tmp"  # a pid above Linux's pid_max: a killed writer's
    stale.write_bytes(b"PK")
    mask = os.umask(0o027)
    try:
        save_checkpoint({"model": {}, "epoch": 1, "global_step": 1}, last)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(last.stat().st_mode) == 0o640 and not stale.exists()
    before = last.read_bytes()

    def failing(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(WriteError) as err:
        save_checkpoint({"model": {}, "epoch": 2, "global_step": 2}, last)
    assert str(err.value) == f"cannot write the checkpoint {last} (Input/output error); the previous last.pt, if " \
                             "any, is kept whole" and err.value.errno == errno.EIO
    assert last.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_best_pt_holds_no_optimizer_state_and_cannot_stand_in_for_last_pt(tmp_path, capsys):
    assert run_main("vae_converter.json", tmp_path, *FAST_VAE, "exp_name=run", "evaluation.make_plots=false") == 0
    ckpt_dir = tmp_path / "run" / "checkpoints"
    assert not {"optimizer", "scheduler", "rng"} & set(load_checkpoint(ckpt_dir / "best.pt"))
    (ckpt_dir / "last.pt").write_bytes((ckpt_dir / "best.pt").read_bytes())
    assert run_main("vae_converter.json", tmp_path, *FAST_VAE, "exp_name=run", "trainer.epochs=4", resume=True) == 2
    assert "not a training checkpoint of this project (missing rng, optimizer)" in capsys.readouterr().err
