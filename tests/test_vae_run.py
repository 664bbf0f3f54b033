"""The VAE experiment end to end: run folder, checkpoints, resume, quality floor."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.helpers import FAST_VAE, REPO_ROOT, run_main, scalar_events
from utils.runs.checkpoints import load_checkpoint

EXPECTED_PNGS = ["signal_examples", "loss_curves", "roc_pr_curves", "latent_space", "reconstructions",
                 "confusion_matrix", "score_histogram_reconstruction", "score_histogram_latent_euclidean",
                 "score_histogram_latent_mahalanobis"]
SCORES = ("reconstruction", "latent_euclidean", "latent_mahalanobis")


@pytest.fixture(scope="module")
def finished_run(tiny_runs):
    return tiny_runs.of_config("vae_converter.json", *FAST_VAE, "exp_name=e2e", "trainer.log_every_n_steps=5")


def test_run_folder_is_complete(finished_run):
    run = finished_run
    config = json.loads((run / "config.json").read_text())
    assert config["exp_name"] == "e2e" and config["trainer"]["epochs"] == 3
    env = json.loads((run / "environment.json").read_text())
    assert env["versions"]["torch"].startswith("2.13") and env["invocations"][0]["resume"] is False
    for name in ("last.pt", "best.pt"):
        assert (run / "checkpoints" / name).stat().st_size > 1000
    assert "epoch 3/3" in (run / "logs" / "train.log").read_text()
    assert list((run / "summaries").glob("events.out.tfevents.*"))
    for stem in EXPECTED_PNGS:
        png = run / "out" / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
    metrics = json.loads((run / "out" / "metrics.json").read_text())
    assert set(metrics["scores"]) == set(SCORES)
    for name in SCORES:
        result = metrics["scores"][name]
        assert 0.0 <= result["roc_auc"] <= 1.0 and result["base_rate"] == pytest.approx(result["n_anomalies"] / result["n_samples"])
        assert set(result["per_kind"]) == {"voltage_spike", "current_oscillation", "temperature_drift"}
        assert len(result["confusion_matrix"]) == 2 and "anomaly" in result["classification_report"]
    assert metrics["threshold"]["percentile"] == 99.0
    rows = (run / "out" / "scores.csv").read_text().splitlines()
    assert len(rows) == metrics["splits"]["test"]["n"] + 1
    assert rows[0].startswith("index,label,kind,score_reconstruction")


def test_tensorboard_holds_losses_lr_figures_and_pr_curves(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(finished_run / "summaries"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("step/loss", "step/kl", "step/recon", "epoch/train", "epoch/val", "epoch/learning_rate"):
        assert tag in tags["scalars"], tag
    # epoch points sit at the global step that ended each epoch, as the step/* points
    steps_per_epoch = load_checkpoint(finished_run / "checkpoints" / "last.pt")["global_step"] // 3
    assert [e.step for e in acc.Scalars("epoch/val")] == [steps_per_epoch * k for k in (1, 2, 3)]
    assert [e.value for e in acc.Scalars("epoch/epoch")] == [1, 2, 3]
    assert {f"figures/{stem}" for stem in EXPECTED_PNGS} <= set(tags["images"])
    assert {f"pr_curve/{name}" for name in SCORES} <= set(tags["tensors"])
    assert (finished_run / "summaries" / "hparams").is_dir()


def test_best_checkpoint_reloads_to_the_same_scores(finished_run):
    """best.pt alone (no training data) gives a detector that reproduces the run's test scores."""
    import numpy as np

    from agents.detector.detector import Detector
    from tests.helpers import run_test_split

    detector = Detector.load(finished_run / "checkpoints" / "best.pt", device="cpu")
    scores = detector.score(run_test_split(finished_run).x)
    table = np.genfromtxt(finished_run / "out" / "scores.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    for name in SCORES:
        np.testing.assert_allclose(scores[name], table[f"score_{name}"], rtol=1e-6)
    assert set(detector.thresholds) == set(SCORES) == set(load_checkpoint(finished_run / "checkpoints" / "best.pt")
                                                           ["scoring"]["thresholds"])


def test_reconstruction_scores_work_with_the_vae(tmp_path):
    """error_gaussian and reconstruction_mae, the recurrent AE's scores, on the VAE: fitted, thresholded, reported."""
    scores = '["reconstruction_mae","error_gaussian","latent_euclidean"]'
    assert run_main("vae_converter.json", tmp_path, *FAST_VAE, f"evaluation.scores={scores}", "exp_name=mixed",
                    "evaluation.make_plots=false") == 0
    metrics = json.loads((tmp_path / "mixed" / "out" / "metrics.json").read_text())
    assert list(metrics["scores"]) == json.loads(scores)
    assert all(0.0 <= metrics["scores"][name]["roc_auc"] <= 1.0 for name in metrics["scores"])
    stats = load_checkpoint(tmp_path / "mixed" / "checkpoints" / "best.pt")["scoring"]["statistics"]
    assert stats["error_gaussian"]["mean"].shape == (100 * 3,)  # |x - x_hat| of a window: T * F
    assert stats["latent_euclidean"]["mean"].shape == (4,)  # the latent code


def test_resume_equals_uninterrupted_run(tmp_path):
    """4 epochs in one go == 2 epochs, then --resume for 2 more: weights and TensorBoard steps."""
    common = [*FAST_VAE, "trainer.log_every_n_steps=1", "evaluation.make_plots=false"]
    assert run_main("vae_converter.json", tmp_path, *common, "trainer.epochs=4", "exp_name=full") == 0
    assert run_main("vae_converter.json", tmp_path, *common, "trainer.epochs=2", "exp_name=split") == 0
    assert run_main("vae_converter.json", tmp_path, *common, "trainer.epochs=4", "exp_name=split", resume=True) == 0
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    split = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert full["epoch"] == split["epoch"] == 4 and full["global_step"] == split["global_step"]
    for key, tensor in full["model"].items():
        assert torch.equal(tensor, split["model"][key]), key
    for tag in ("step/loss", "epoch/val"):
        a, b = scalar_events(tmp_path / "full" / "summaries", tag), scalar_events(tmp_path / "split" / "summaries", tag)
        assert [s for s, _ in a] == [s for s, _ in b] and len({s for s, _ in b}) == len(b)
        assert [v for _, v in a] == pytest.approx([v for _, v in b], rel=1e-6)
    env = json.loads((tmp_path / "split" / "environment.json").read_text())
    assert [inv["resume"] for inv in env["invocations"]] == [False, True]


def test_existing_run_is_not_overwritten_and_resume_needs_a_run(tmp_path, capsys):
    assert run_main("vae_converter.json", tmp_path, *FAST_VAE, "trainer.epochs=1", "exp_name=once",
                    "evaluation.make_plots=false") == 0
    before = (tmp_path / "once" / "checkpoints" / "last.pt").read_bytes()
    assert run_main("vae_converter.json", tmp_path, *FAST_VAE, "exp_name=once") == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "once" / "checkpoints" / "last.pt").read_bytes() == before
    assert run_main("vae_converter.json", tmp_path, *FAST_VAE, "exp_name=never", resume=True) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_user_error_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"exp_name": "x", "agent": "vae",, }')
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), str(bad)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert "bad.json:1:" in proc.stderr and "Traceback" not in proc.stderr


def test_quality_floor_recon_auc_per_anomaly_type(tmp_path):
    """A short real training separates each anomaly type at the default magnitude."""
    assert run_main("vae_converter.json", tmp_path, "exp_name=floor", "trainer.epochs=120",
                    "trainer.progress_bar=false", "evaluation.make_plots=false") == 0
    metrics = json.loads((tmp_path / "floor" / "out" / "metrics.json").read_text())
    per_kind = metrics["scores"]["reconstruction"]["per_kind"]
    for kind, result in per_kind.items():
        assert result["roc_auc"] >= 0.95, (kind, result)


