"""End-of-run evaluation: fit the detector on normals, score the test split, write ``out/``.

With the best epoch's weights the detector's score statistics are fitted on the training or
validation normals and its thresholds on the validation normals (out of sample, see
:mod:`agents.scoring`); ``best.pt`` then gets the detector's state, so the run scores new data
exactly as it scored its test split. The best-F1 threshold on the test labels is reported
beside the deployed one, marked as not deployable.
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import classification_report

from agents.base import BaseAgent
from agents.detector import Detector
from utils.figures.report import write_report
from utils.runs.checkpoints import load_checkpoint, load_model_state, save_checkpoint
from utils.runs.run_folder import write_json
from utils.scoring.metrics import evaluate_scores, format_metrics_table, to_jsonable
from utils.scoring.thresholds import best_f1_threshold, predict

logger = logging.getLogger("anomaly")


def evaluate_run(agent: BaseAgent, detector: Detector) -> dict[str, Any]:
    """Score the test split with the best weights and write everything to ``out/``.

    Args:
        agent: the agent that trained (its data, scaler, state, writer and run folder).
        detector: around ``agent.model`` and its scaler, not fitted yet.

    Returns:
        The metrics written to ``out/metrics.json``.
    """
    out_dir, best_path = agent.run_dir / "out", agent.ckpt_dir / "best.pt"
    best = load_checkpoint(best_path, map_location=agent.device)
    load_model_state(agent.model, best["model"], best_path)
    percentile = agent.config.evaluation.threshold_percentile
    detector.fit(agent.train_x, agent.val_x, percentile)
    test = agent.data.test
    test_x = agent.to_tensor(test.x)
    scores, _ = detector.analyse(test_x)
    thresholds = detector.thresholds
    best["scoring"] = detector.state_dict()
    save_checkpoint(best, best_path)
    results = evaluate_scores(test.y, test.kind, scores, thresholds)
    for name, s in scores.items():
        if 0 < test.y.sum() < len(test.y):
            threshold, f1 = best_f1_threshold(test.y, s)
            results[name]["best_f1_on_test_labels_NOT_DEPLOYABLE"] = {"threshold": threshold, "f1": f1}
    metrics = to_jsonable({
        "agent": agent.config.agent,
        "exp_name": agent.config.exp_name,
        "model": agent.config.model.name,
        "threshold": {"percentile": percentile, "fitted_on": "validation normals", "values": thresholds},
        "scores": results,
        "splits": {split: {"n": len(getattr(agent.data, split)),
                           "n_anomalies": int(getattr(agent.data, split).y.sum())}
                   for split in ("train", "val", "test")},
        "data": agent.data.info,
        "training": {"epoch": agent.state.epoch, "global_step": agent.state.global_step,
                     "best_epoch": agent.state.best_epoch, "stopped_early": agent.state.stopped_early,
                     "best_val_loss": agent.state.best_val},
    })
    write_json(out_dir / "metrics.json", metrics)
    write_scores_csv(out_dir / "scores.csv", test.y, test.kind, scores, thresholds)
    primary = next(iter(scores))
    logger.info("Test set: %d windows, %d anomalies\n%s\n\nClassification report (%s score, threshold %.4g):\n%s",
                len(test), int(test.y.sum()), format_metrics_table(results), primary, thresholds[primary],
                classification_report(test.y, predict(scores[primary], thresholds[primary]),
                                      labels=[0, 1], target_names=["normal", "anomaly"], digits=3, zero_division=0))
    log_to_tensorboard(agent.writer, agent.state.global_step, agent.config, test.y, scores, metrics)
    if agent.config.evaluation.make_plots:
        save_figures(agent, detector, test_x, scores, results)
    write_report(agent.run_dir, agent.config, metrics)
    logger.info("Outputs in %s", out_dir)
    return metrics


def write_scores_csv(path: Path, y: np.ndarray, kind: np.ndarray, scores: dict[str, np.ndarray],
                     thresholds: dict[str, float]) -> None:
    """One row per test window: label, kind, each score and its alarm flag."""
    names = list(scores)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "label", "kind", *[f"score_{n}" for n in names], *[f"alarm_{n}" for n in names]])
        flags = {n: predict(scores[n], thresholds[n]) for n in names}
        for i in range(len(y)):
            writer.writerow([i, int(y[i]), kind[i], *[f"{scores[n][i]:.8g}" for n in names],
                             *[int(flags[n][i]) for n in names]])


def log_to_tensorboard(writer: Any, step: int, config: Any, y: np.ndarray, scores: dict[str, np.ndarray],
                       metrics: dict) -> None:
    """PR curves per score and hparams with the final metrics."""
    for name, s in scores.items():
        span = float(s.max() - s.min()) or 1.0
        writer.add_pr_curve(f"pr_curve/{name}", torch.from_numpy(y), torch.from_numpy((s - s.min()) / span), step)
    final = {}
    for name, result in metrics["scores"].items():
        for key in ("roc_auc", "pr_auc", "f1"):
            if result.get(key) is not None:
                final[f"final/{name}_{key}"] = result[key]
    writer.add_hparams(flat_hparams(config), final, run_name="hparams", global_step=step)


def flat_hparams(config: Any) -> dict[str, Any]:
    """Scalar config values flattened to dotted keys (what TensorBoard's HParams accepts)."""
    flat: dict[str, Any] = {}
    for section in ("data", "model", "loss", "trainer", "evaluation"):
        for key, value in config[section].items():
            flat[f"{section}.{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    flat["seed"] = config.seed
    return flat


def save_figures(agent: BaseAgent, detector: Detector, test_x: torch.Tensor,
                 scores: dict[str, np.ndarray], results: dict[str, Any]) -> None:
    """The standard figures (plus the latent space for a model that has one), as PNG in out/ and in TensorBoard."""
    from utils import figures

    test, names = agent.data.test, list(agent.data.feature_names)
    primary = next(iter(scores))
    shown = _one_per_kind(test.kind)
    recon = detector.reconstruct(test_x[torch.from_numpy(shown).to(test_x.device)]).cpu().numpy()
    made = {
        "signal_examples": figures.plot_signal_examples(test.x, test.kind, names),
        "loss_curves": figures.plot_loss_curves({k: v for k, v in agent.state.history.items() if k != "lr"}),
        "roc_pr_curves": figures.plot_roc_pr(test.y, scores),
        "reconstructions": figures.plot_reconstructions(test_x.cpu().numpy()[shown], recon, test.kind[shown], names),
        "confusion_matrix": figures.plot_confusion_matrix(
            results[primary]["confusion_matrix"], title=f"Confusion matrix ({primary} score, "
            f"{agent.config.evaluation.threshold_percentile:g}th percentile threshold)"),
    }
    for name, s in scores.items():
        made[f"score_histogram_{name}"] = figures.plot_score_histogram(s, test.kind, detector.thresholds[name],
                                                                       title=f"{name} score on the test set")
    if agent.model.has_latent():
        made["latent_space"] = figures.plot_latent(detector.encode(test_x).cpu().numpy(), test.kind)
    for stem, fig in made.items():
        figures.save_figure(fig, agent.run_dir / "out" / f"{stem}.png")
        agent.writer.add_figure(f"figures/{stem}", fig, agent.state.global_step)


def _one_per_kind(kind: np.ndarray) -> np.ndarray:
    """Index of the first window of each kind, normal first."""
    names = sorted(set(kind.tolist()), key=lambda k: (k != "normal", k))
    return np.array([int(np.flatnonzero(kind == k)[0]) for k in names])
