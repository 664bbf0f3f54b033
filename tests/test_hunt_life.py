"""A run's life as users meet it: a process killed between two writes, a run trained longer and stopped during its
evaluation, resumes with changed settings (docs/stopping-resuming.md)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import main
from tests.helpers import REPO_ROOT
import utils.runs.checkpoints as checkpoints

#: A tiny VAE run that checkpoints every epoch and evaluates one score without baselines (about a second).
TINY = ["data.n_samples=300", "trainer.progress_bar=false", "model.hidden_sizes=[8]", "model.latent_dim=2",
        "evaluation.make_plots=false", "evaluation.scores=[\"reconstruction\"]", "evaluation.baselines=[]",
        "trainer.checkpoint_interval_s=0", "exp_name=run"]


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs (no handler catches a BaseException of its own)."""


def run(root: Path, *overrides: str, resume: bool = False) -> int:
    argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={root}"]
    for item in (*TINY, *overrides):
        argv += ["--set", item]
    return main.main(argv + (["--resume"] if resume else []))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_a_kill_between_the_two_checkpoint_writes_leaves_a_run_that_resumes_to_its_true_best(tmp_path, monkeypatch):
    written = []
    save = checkpoints.save_checkpoint

    def killed_after_the_first_file_of_epoch_2(state, path):
        if state["epoch"] == 2 and written:
            raise Killed
        written.extend([path.name] if state["epoch"] == 2 else [])
        save(state, path)

    monkeypatch.setattr(checkpoints, "save_checkpoint", killed_after_the_first_file_of_epoch_2)
    with pytest.raises(Killed):
        run(tmp_path, "trainer.epochs=2")
    monkeypatch.undo()
    assert written, "the kill came between the two files of epoch 2's checkpoint"
    assert run(tmp_path, "trainer.epochs=2", resume=True) == 0
    folder = tmp_path / "run"
    training = json.loads((folder / "out" / "metrics.json").read_text())["training"]
    assert training["best_epoch"] == training["epoch"] == 2, "epoch 2 improved: its weights are the best"
    best, last = weights(folder / "checkpoints" / "best.pt"), weights(folder / "checkpoints" / "last.pt")
    assert all(torch.equal(best[key], last[key]) for key in last), "the evaluation scored another epoch's weights"


def test_a_run_trained_longer_and_stopped_in_its_evaluation_is_evaluated_by_the_next_resume(tmp_path, monkeypatch):
    import agents.evaluation

    assert run(tmp_path, "trainer.epochs=1") == 0
    monkeypatch.setattr(agents.evaluation, "write_scores_csv", lambda *args: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):  # trained epoch 2, killed while writing the outputs of its evaluation
        run(tmp_path, "trainer.epochs=2", resume=True)
    monkeypatch.undo()
    assert run(tmp_path, "trainer.epochs=2", resume=True) == 0
    metrics = json.loads((tmp_path / "run" / "out" / "metrics.json").read_text())
    assert metrics["training"]["epoch"] == 2, "out/ still described the 1-epoch model that best.pt no longer holds"


def stopped_in_its_report_then_resumed(tmp_path, monkeypatch, *overrides: str, runner=None) -> None:
    """Stop a run (``runner``, default :func:`run`) while it writes out/report.md (after its TensorBoard logs,
    before metrics.json), then resume it."""
    import agents.evaluation

    runner = runner or run
    monkeypatch.setattr(agents.evaluation, "write_report", lambda *args: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        runner(tmp_path, *overrides)
    monkeypatch.undo()
    assert runner(tmp_path, *overrides, resume=True) == 0


def test_a_kill_while_the_report_is_written_leaves_a_run_whose_resume_writes_it(tmp_path, monkeypatch):
    stopped_in_its_report_then_resumed(tmp_path, monkeypatch, "trainer.epochs=1")
    assert (tmp_path / "run" / "out" / "report.md").is_file(), "the run counted as finished without its report"


def test_a_resume_refuses_another_evaluation_batch_size_which_batches_the_validation_loss(tmp_path, capsys):
    assert run(tmp_path, "trainer.epochs=1") == 0
    capsys.readouterr()
    # the validation loss of each epoch is summed over batches of evaluation.batch_size: another size changes its
    # last bits, and with them the best epoch, the plateau scheduler and early stopping
    assert run(tmp_path, "trainer.epochs=2", "evaluation.batch_size=7", resume=True) == 2
    assert "evaluation.batch_size (4096 in the checkpoint, 7 now); a resume keeps" in capsys.readouterr().err


def test_a_cosine_run_is_resumed_over_its_own_epochs_only(tmp_path, capsys):
    assert run(tmp_path, "trainer.epochs=1", "trainer.scheduler=cosine") == 0
    capsys.readouterr()
    # CosineAnnealingLR keeps T_max from last.pt: epoch 2 would train at lr 0, and later epochs climb back up
    assert run(tmp_path, "trainer.epochs=3", "trainer.scheduler=cosine", resume=True) == 2
    err = capsys.readouterr().err
    assert 'trainer.epochs=3, but' in err and 'trainer.scheduler="cosine" over trainer.epochs=1' in err
    assert run(tmp_path, "trainer.epochs=1", "trainer.scheduler=cosine", resume=True) == 0
    assert "To train it longer, start a new run with more epochs" in capsys.readouterr().out


def test_checkpoints_get_the_mode_of_every_other_file_the_run_writes(tmp_path):
    from utils.runs.outputs import atomic_write_text, new_file_mode

    checkpoints.save_checkpoint({"model": {}, "epoch": 1, "global_step": 3}, tmp_path / "best.pt")
    atomic_write_text(tmp_path / "metrics.json", "{}")
    modes = {name: (tmp_path / name).stat().st_mode & 0o777 for name in ("best.pt", "metrics.json")}
    assert modes == {"best.pt": new_file_mode(), "metrics.json": new_file_mode()}  # 0644 under umask 022, not 0600
