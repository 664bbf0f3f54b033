"""What a finished run shows its user, in situations users meet: TensorBoard after a resume (one that trains on, one
that evaluates again), the report (out/report.md) and the figures of names with markup, dollars or 120 characters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_hunt_life import Killed, run as tiny_run, stopped_in_its_report_then_resumed

#: On test_hunt_life's tiny run (checkpoints every epoch): two scores and one baseline.
EVALUATION = ["evaluation.scores=[\"reconstruction\",\"latent_euclidean\"]", "evaluation.baselines=[\"pca\"]"]


def run(root: Path, *overrides: str, resume: bool = False) -> int:
    return tiny_run(root, "trainer.epochs=1", *EVALUATION, *overrides, resume=resume)


def tensorboard_steps(folder: Path) -> dict[str, list[int]]:
    """``{tag: steps}`` of every tag (scalars, PR curves, images) as TensorBoard's server reads ``folder`` (its plugin
    accumulator: the legacy one never purges tensors)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


def test_a_resume_that_evaluates_again_leaves_each_evaluation_tag_once_in_tensorboard(tmp_path, monkeypatch):
    stopped_in_its_report_then_resumed(tmp_path, monkeypatch, "evaluation.make_plots=false", runner=run)
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


# ----- out/report.md -------------------------------------------------------------------------------------------------
ODD = "volt|age *V* `amp` $x$ [a]_b"  # a sensor, kind or recording name with every Markdown-special character


def table_rows(text: str) -> list[list[str]]:
    """Each Markdown table of ``text`` as its lines (:func:`cell_counts` splits them at unescaped pipes, as GitHub
    does, code spans too)."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def cell_counts(table: list[str]) -> set[int]:
    import re

    return {len(re.findall(r"(?<!\\)\|", line)) for line in table}


def odd_run(tmp_path: Path) -> tuple[dict, dict]:
    """config and metrics of a stream run whose sensors, kinds and recordings carry :data:`ODD` names."""
    incidents = tmp_path / "incidents.csv"
    incidents.write_text("recording,incident,start_row,end_row,rows,start_time,end_time,duration_s,peak_row,"
                         "peak_score,top_feature,outcome,labelled_kind\n"
                         f'"{ODD}.csv",1,5,9,5,,,,7,2.5,"{ODD}",hit,"{ODD}"\n'
                         f'"{ODD}.csv",,20,24,5,,,,,,,missed,"{ODD}"\n', encoding="utf-8")
    score = {"roc_auc": 0.9, "pr_auc": 0.5, "base_rate": 0.1, "threshold": 1.0, "precision": 0.5, "recall": 0.5,
             "f1": 0.5, "confusion_matrix": [[8, 1], [1, 1]], "per_kind": {ODD: {"count": 2, "roc_auc": 0.9}}}
    recording = {"rows": 30, "incidents": {"score": "reconstruction", "n": 1, "false_alarms": 0, "detected": 1,
                                           "labelled_ranges": 2}, "scores": {"reconstruction": {"vus_pr": 0.4}}}
    metrics = {"scores": {"reconstruction": score}, "splits": {"test": {"n": 11, "n_anomalies": 2}},
               "data": {"counts": {"test": {"normal": 9, ODD: 2}}},
               "stream": {"recordings": {f"{ODD}.csv": recording, "b.csv": recording},
                          "pooled": {"recordings": 2, "rows": 60, "incidents": {"score": "reconstruction"},
                                     "scores": {"reconstruction": {"confusion": {"f1": 0.5}}}}}}
    config = {"exp_name": "odd", "agent": "vae", "description": "first line\n\nsecond paragraph",
              "data": {"name": "csv", "path": f"{ODD}.csv", "feature_columns": [ODD, "température"]},
              "model": {"name": "vae"}, "loss": {"name": "vae"}, "trainer": {}, "evaluation": {}}
    return config, metrics


def test_the_report_keeps_its_tables_whole_whatever_the_names_of_sensors_kinds_and_recordings(tmp_path):
    from utils.figures.report import render_report

    config, metrics = odd_run(tmp_path)
    text = render_report(config, metrics, tmp_path)
    tables = table_rows(text)
    assert len(tables) >= 6
    for table in tables:
        assert len(cell_counts(table)) == 1, "a row with another number of cells:\n" + "\n".join(table)
    assert "température" in text, "non-ASCII text written as \\u escapes"
    assert "> first line\n>\n> second paragraph" in text, "the description's second paragraph left its quote"


# ----- figures -------------------------------------------------------------------------------------------------------
MATH_NAME = "cost $x^$ / h"  # two dollars: Matplotlib would read "x^" as mathtext, which does not parse


def test_figures_show_sensor_and_kind_names_with_dollars_as_written(tmp_path):
    import numpy as np

    from utils import figures

    rng = np.random.default_rng(0)
    x, kind = rng.normal(size=(6, 10, 2)), np.array(["normal", MATH_NAME] * 3)
    made = {"signal_examples": figures.plot_signal_examples(x, kind, [MATH_NAME, "b"]),
            "reconstructions": figures.plot_reconstructions(x[:2], x[:2] + 0.1, kind[:2], [MATH_NAME, "b"]),
            "histogram": figures.plot_score_histogram(rng.random(6), kind, 0.5, title=MATH_NAME),
            "timeline": figures.plot_timeline(rng.normal(size=(40, 2)), [MATH_NAME, "b"], rng.random(40), 0.9,
                                              kinds=np.array(["normal"] * 30 + [MATH_NAME] * 10), n_details=1)}
    for stem, fig in made.items():
        figures.save_figure(fig, tmp_path / f"{stem}.png")  # a ValueError from the mathtext parser before
        texts = [t.get_text() for t in fig.findobj(lambda artist: hasattr(artist, "get_text"))]
        assert any(MATH_NAME in text for text in texts), stem


def test_the_report_embeds_only_the_figures_of_its_own_evaluation(tmp_path):
    """A resume may evaluate again with make_plots false or other scores: the PNGs an earlier evaluation left in out/
    are not this model's."""
    from utils.figures.report import render_report

    for stem in ("loss_curves", "score_histogram_reconstruction", "score_histogram_latent_euclidean"):
        (tmp_path / f"{stem}.png").write_bytes(b"")
    metrics = {"scores": {"reconstruction": {}}}
    config = {"exp_name": "x", "evaluation": {"make_plots": True, "scores": ["reconstruction"]}}
    links = lambda text: sorted(line for line in text.splitlines() if line.startswith("!["))  # noqa: E731
    assert links(render_report(config, metrics, tmp_path)) == [
        "![Score histogram: reconstruction](score_histogram_reconstruction.png)",
        "![Training and validation loss](loss_curves.png)"]
    config["evaluation"]["make_plots"] = False
    text = render_report(config, metrics, tmp_path)
    assert links(text) == [] and "No plots (`evaluation.make_plots` is false)" in text


def test_figures_shorten_long_sensor_names_so_legends_and_labels_stay_inside(tmp_path):
    import numpy as np

    from utils import figures

    long_name = "ns=2;s=Plant1.Line3.Converter.CoolingLoop.Temperature.Sensor1." + "x" * 60
    names = ["voltage", long_name, "current"]
    rng = np.random.default_rng(0)
    x, kind = rng.normal(size=(4, 10, 3)), np.array(["normal", "fault"] * 2)
    made = {"signal_examples": figures.plot_signal_examples(x, kind, names),
            "reconstructions": figures.plot_reconstructions(x[:2], x[:2] + 0.1, kind[:2], names),
            "timeline": figures.plot_timeline(rng.normal(size=(40, 3)), names, rng.random(40), 0.9, n_details=0)}
    for stem, fig in made.items():
        figures.save_figure(fig, tmp_path / f"{stem}.png")
        renderer, box = fig._get_renderer(), fig.bbox  # the Agg renderer save_figure drew with
        labels = [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)]
        labels += [t for legend in fig.legends for t in legend.get_texts()]
        for text in labels:
            if text.get_text():
                extent = text.get_window_extent(renderer)
                assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, (stem, text.get_text())
                assert extent.y0 >= box.y0 - 1 and extent.y1 <= box.y1 + 1, (stem, text.get_text())
        texts = " ".join(t.get_text() for t in fig.findobj(lambda artist: hasattr(artist, "get_text")))
        assert "ns=2;s=Plant1" in texts and long_name not in texts, stem
