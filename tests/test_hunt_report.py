"""What a finished run shows its user, in situations users meet: TensorBoard after a resume that evaluates again,
the report of unusual names and metrics (out/report.md), figures of long streams."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import main
from tests.helpers import REPO_ROOT

#: A tiny VAE run that evaluates two scores and one baseline (about a second without plots).
TINY = ["data.n_samples=300", "trainer.progress_bar=false", "model.hidden_sizes=[8]", "model.latent_dim=2",
        "trainer.epochs=1", "evaluation.scores=[\"reconstruction\",\"latent_euclidean\"]",
        "evaluation.baselines=[\"pca\"]", "exp_name=run"]


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs (no handler catches a BaseException of its own)."""


def run(root: Path, *overrides: str, resume: bool = False) -> int:
    argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={root}"]
    for item in (*TINY, *overrides):
        argv += ["--set", item]
    return main.main(argv + (["--resume"] if resume else []))


def tensorboard_steps(folder: Path) -> dict[str, list[int]]:
    """``{tag: steps}`` of every tag (scalars, PR curves, images) as TensorBoard's server reads ``folder`` (its plugin
    accumulator: the legacy one never purges tensors)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


def test_a_resume_that_evaluates_again_leaves_each_evaluation_tag_once_in_tensorboard(tmp_path, monkeypatch):
    import agents.evaluation

    # stopped after the evaluation logged to TensorBoard, before metrics.json marked the run finished
    monkeypatch.setattr(agents.evaluation, "write_report", lambda *args: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        run(tmp_path, "evaluation.make_plots=false")
    monkeypatch.undo()
    assert run(tmp_path, "evaluation.make_plots=false", resume=True) == 0
    summaries = tmp_path / "run" / "summaries"
    main_steps, final_steps = tensorboard_steps(summaries), tensorboard_steps(summaries / "hparams")
    twice = {tag: steps for tag, steps in {**main_steps, **final_steps}.items() if len(set(steps)) != len(steps)}
    assert not twice, f"steps logged twice: {twice}"
    metrics = json.loads((tmp_path / "run" / "out" / "metrics.json").read_text())
    evaluated = metrics["training"]["global_step"] + 1  # after the last training step
    evaluation_tags = {tag for tag in main_steps if tag.startswith(("pr_curve/", "figures/"))}
    assert {"pr_curve/reconstruction", "pr_curve/latent_euclidean"} <= evaluation_tags
    assert all(main_steps[tag] == [evaluated] for tag in evaluation_tags)
    assert final_steps["final/reconstruction_roc_auc"] == [evaluated]
    assert all(steps[-1] <= metrics["training"]["global_step"] for tag, steps in main_steps.items()
               if tag not in evaluation_tags)


def test_a_resume_after_a_stop_mid_epoch_leaves_each_training_step_once_for_tensorboards_python_loader(
        tmp_path, monkeypatch):
    import agents.hooks

    log_step = agents.hooks.TensorBoardLogger.after_step

    def stopped_after_step_5(self, agent, logs):
        log_step(self, agent, logs)
        if agent.state.global_step == 5:  # epoch 2 of 3-step epochs: steps 4 and 5 logged after last.pt (step 3)
            raise Killed

    monkeypatch.setattr(agents.hooks.TensorBoardLogger, "after_step", stopped_after_step_5)
    with pytest.raises(Killed):
        run(tmp_path, "trainer.epochs=2", "trainer.log_every_n_steps=1", "trainer.checkpoint_interval_s=0",
            "evaluation.make_plots=false")
    monkeypatch.undo()
    assert run(tmp_path, "trainer.epochs=2", "trainer.log_every_n_steps=1", "evaluation.make_plots=false",
               resume=True) == 0
    # the resume's purge is the run's second: the Python loader takes a run's first for its start, not a purge
    assert tensorboard_steps(tmp_path / "run" / "summaries")["step/loss"] == [1, 2, 3, 4, 5, 6]
