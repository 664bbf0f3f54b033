"""End-of-run evaluation: fit the detector on normals, score the test split, write ``out/``; ``best.pt`` gets the
detector's state, so ``--mode score`` scores new data exactly as the test split was scored."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import classification_report

from agents.detector.baselines import calibrate_baselines, fit_baselines
from agents.detector.detector import Detector, baselines_checkpoint, recording_state
from agents.score_loop import Scoring, window_header, window_rows
from agents.detector.thresholds import ConformalThreshold, best_f1_threshold, false_alarm_report
from agents.stream_evaluation import (RecordingsEvaluation, StreamEvaluation, evaluate_recordings, format_pooled_table,
                                      format_stream_table, recording_line, write_incidents_csv, write_per_recording,
                                      write_point_scores_csv)
from utils.core.arrays import predict
from utils.figures.report import write_report
from utils.metrics.promise import (Verdict, named_results, promise_advice, score_drift, time_step_verdicts,
                                   window_verdicts)
from utils.metrics.window_metrics import compare_with_baselines, evaluate_scores, format_metrics_table, to_jsonable
from utils.runs.checkpoints import load_checkpoint, load_model_state, save_checkpoint
from utils.runs.run_folder import RunFolder, wait_for_a_later_event_file_second, write_json

logger = logging.getLogger("anomaly")


@dataclass
class TrainedRun:
    """What end-of-run evaluation is given in place of the agent: the detector (not fitted yet), each split's windows
    (N, T, F) scaled on the model's device, the :class:`agents.parts.TrainState`, this process's training seconds
    and ``time.perf_counter()`` when the evaluation began."""

    detector: Detector
    data: Any
    windows: dict[str, torch.Tensor]
    folder: RunFolder
    config: Any
    state: Any
    seconds: float
    writer: Any
    evaluation_started: float


def evaluate_run(run: TrainedRun) -> dict[str, Any]:
    """Score the test split with the best weights and the baselines; returns the metrics written to ``out/``."""
    detector, data, config, folder = run.detector, run.data, run.config, run.folder
    best_path, test_x = folder.best, run.windows["test"]
    best = load_checkpoint(best_path, map_location=test_x.device)
    load_model_state(detector.model, best["model"], best_path)
    alpha = config.evaluation.false_alarm_rate
    recordings = recording_windows(data.recordings, run.windows)
    promises = detector.fit(run.windows["train"], run.windows["val"], alpha, seed=config.seed, recordings=recordings)
    test = data.test
    scores, contributions = analyse_test(detector, run.windows, data.recordings)
    results = score_results(test.y, test.kind, scores, promises, detector.calibration)
    baselines = run_baselines(run)
    detector.recording = recording_state(config.data, data.info)
    best["scoring"] = detector.state_dict()
    best["baselines"] = baselines["state"]  # their fitted state, so --mode score --baselines can score them later
    save_checkpoint(best, best_path)
    stream = None
    if data.recordings:
        bounds = {n: r["false_alarm"]["bound"] for n, r in {**results, **baselines["results"]}.items()}
        stream = evaluate_recordings(data.recordings, detector.window_length, config.evaluation,
                                     list(data.feature_names), scores, detector.thresholds, contributions,
                                     baselines["scores"], {n: r["threshold"] for n, r in baselines["results"].items()},
                                     bounds, {**detector.calibration, **baselines["calibration"]})
    metrics = to_jsonable({
        "agent": config.agent, "exp_name": config.exp_name, "model": config.model.name,
        "threshold": {"rule": "split-conformal", "false_alarm_rate": alpha,
                      "percentile": config.evaluation.threshold_percentile,
                      "fitted_on": "validation normals", "values": detector.thresholds},
        "scores": results,
        "baselines": baselines["results"],
        "versus_baselines": compare_with_baselines(results, baselines["results"]) if baselines["results"] else None,
        "splits": {split: {"n": len(getattr(data, split)), "n_anomalies": int(getattr(data, split).y.sum())}
                   for split in ("train", "val", "test")},
        "data": data.info,
        "training": {"epoch": run.state.epoch, "global_step": run.state.global_step,
                     "best_epoch": run.state.best_epoch, "stopped_early": run.state.stopped_early,
                     "best_val_loss": run.state.best_val, "seconds_this_process": run.seconds},
        "seconds": {"training_this_process": run.seconds, "baselines": baselines["seconds"]},
        **({"stream": stream.metrics} if stream is not None else {}),
    })
    if stream is not None:
        write_incidents_csv(folder.incidents, stream.results)
        write_point_scores_csv(folder.stream_scores, stream.results)
    write_scores_csv(folder.scores, run, scores, contributions)
    log_results(test, scores, detector.thresholds, metrics)
    if stream is not None:
        log_stream_results(stream, metrics)
    log_to_tensorboard(run.writer, folder.summaries, run.state.global_step + 1, config, test.y, scores, metrics)
    if config.evaluation.make_plots:
        save_figures(run, {**scores, **baselines["scores"]}, results, None if stream is None else stream.first)
    run.writer.flush()  # on disk before metrics.json marks the run finished (after it no resume logs them again)
    # metrics.json last: it marks the run finished (a stop before it: --resume evaluates again), and it records the
    # evaluation's own time
    metrics["seconds"]["evaluation"] = time.perf_counter() - run.evaluation_started
    logger.info("Evaluated in %.1f s (training: %.1f s)", metrics["seconds"]["evaluation"], run.seconds)
    write_report(folder.root, config, metrics)
    write_json(folder.metrics, metrics)
    logger.info("Outputs in %s", folder.out)
    return metrics


def recording_windows(recordings: list[Any], windows: dict[str, torch.Tensor]) -> dict[str, tuple[int, int]] | None:
    """``{name: (training windows, validation windows)}`` per recording; None where the dataset does not say."""
    if not recordings or any(r.train_windows is None for r in recordings):
        return None
    counts = {r.name: (r.train_windows, 0 if r.val is None else len(r.val.starts)) for r in recordings}
    if [sum(column) for column in zip(*counts.values())] != [len(windows["train"]), len(windows["val"])]:
        raise ValueError("the recordings' training and validation windows do not add up to the splits'")
    return counts


def analyse_test(detector: Detector, windows: dict[str, torch.Tensor], recordings: list[Any],
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Scores and contributions of the test windows; per-recording scores use each recording's own statistics."""
    if not detector.per_recording:
        return detector.analyse(windows["test"])
    train = torch.split(windows["train"], [r.train_windows for r in recordings])
    test = torch.split(windows["test"], [len(r.test.starts) for r in recordings])
    parts = [detector.analyse(own_test, detector.reference_statistics(own_train))
             for own_train, own_test in zip(train, test, strict=True)]
    return ({name: np.concatenate([p[0][name] for p in parts]) for name in detector.score_names},
            np.concatenate([p[1] for p in parts]))


def score_results(y: np.ndarray, kind: np.ndarray, scores: dict[str, np.ndarray],
                  promises: dict[str, ConformalThreshold], calibration: dict[str, np.ndarray]) -> dict[str, Any]:
    """Metrics of each score at its threshold, what the threshold promised and did, and the test-label oracle; with
    ``calibration`` scores each ``false_alarm`` also holds ``drift`` (:func:`utils.metrics.promise.score_drift`)."""
    results = evaluate_scores(y, kind, scores, {name: p.threshold for name, p in promises.items()})
    for name, s in scores.items():
        results[name]["false_alarm"] = false_alarm_report(promises[name], y, s)
        if name in calibration:
            results[name]["false_alarm"]["drift"] = score_drift(calibration[name], s[y == 0])
        if 0 < y.sum() < len(y):
            threshold, f1 = best_f1_threshold(y, s)
            results[name]["best_f1_on_test_labels_NOT_DEPLOYABLE"] = {"threshold": threshold, "f1": f1}
    return results


def run_baselines(run: TrainedRun) -> dict[str, Any]:
    """The ``evaluation.baselines`` fitted on the training normals, thresholded on validation, scored on test:
    ``{"results": {name: metrics}, "scores": {name: (N_test,)}, "seconds", "state", "calibration": {name: (n,)}}``."""
    names, evaluation = run.config.evaluation.baselines, run.config.evaluation
    if not names:
        return {"results": {}, "scores": {}, "seconds": 0.0, "state": {}, "calibration": {}}
    started = time.perf_counter()
    numpy = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    fitted = fit_baselines(numpy(run.windows["train"]), names, seed=run.config.seed)
    calibrated = calibrate_baselines(fitted, numpy(run.windows["val"]), evaluation.false_alarm_rate)
    test_windows = numpy(run.windows["test"])  # converted once, not once per baseline
    scores = {b.fitted.display_name: b.score(test_windows) for b in calibrated.values()}
    seconds = time.perf_counter() - started
    promises = {b.fitted.display_name: b.promise for b in calibrated.values()}
    calibration = {b.fitted.display_name: b.calibration for b in calibrated.values()}
    results = score_results(run.data.test.y, run.data.test.kind, scores, promises, calibration)
    for name, b in calibrated.items():
        results[b.fitted.display_name]["name"] = name
    return {"results": results, "scores": scores, "seconds": seconds, "state": baselines_checkpoint(calibrated),
            "calibration": calibration}


def log_results(test: Any, scores: dict[str, np.ndarray], thresholds: dict[str, float],
                metrics: dict[str, Any]) -> None:
    """The console summary: metrics of scores and baselines, the verdict, the threshold's promise, the costs."""
    primary = next(iter(scores))
    table = format_metrics_table(named_results(metrics, "baseline: "))
    report = classification_report(test.y, predict(scores[primary], thresholds[primary]), labels=[0, 1],
                                   target_names=["normal", "anomaly"], digits=3, zero_division=0)
    logger.info("Test set: %d windows, %d anomalies\n%s\n\nClassification report (%s score, threshold %.4g):\n%s",
                len(test), int(test.y.sum()), table, primary, thresholds[primary], report)
    for name, r in metrics["scores"].items():
        logger.info("Threshold of %s: %s; on the test normals %s", name, promise_text(r["false_alarm"]),
                    measured_text(r["false_alarm"]["measured"]))
    log_verdicts(window_verdicts(metrics, advice=False), metrics)
    if metrics["versus_baselines"]:
        logger.info("%s", metrics["versus_baselines"]["text"])
        logger.info("Baselines fitted and scored in %.2f s", metrics["seconds"]["baselines"])


def log_verdicts(lines: list[Verdict], metrics: dict[str, Any]) -> None:
    """Log the verdicts on the thresholds' promise (a broken one as a warning, then what the user can do)."""
    for kept, _, line in lines:
        logger.log(logging.WARNING if kept is False else logging.INFO, "%s", line)
    if any(kept is False for kept, _, _ in lines):
        logger.warning("What you can do about a broken promise: %s.", promise_advice(metrics))


def log_stream_results(stream: RecordingsEvaluation, metrics: dict[str, Any]) -> None:
    """Log the test stream(s): one recording's metrics and incidents, or several's pooled table and lines; verdicts."""
    one, p = stream.first, stream.pooled
    m = one.metrics if p is None else p
    span = f"{m['hours'] * 60:.1f} min" if m["hours"] is not None else "no sample period"
    if p is None:
        logger.info("Test stream: %d time steps (%s) from row %d; each takes the %s of its windows' scores\n%s\n"
                    "(PA-F1 is point-adjusted F1: optimistic, shown for comparison with papers that report it)",
                    m["rows"], span, m["first_row"], m["point_aggregation"],
                    format_stream_table(named_results(m, "baseline: ")))
    else:
        logger.info("Test streams: %d recordings, %d time steps (%s); each takes the %s of its windows' scores\n%s\n"
                    "(F1, FAR and MAR from the time steps of every recording at the deployed threshold, SKAB's "
                    "protocol; the others: mean ± std over the recordings that define them, their count in brackets)",
                    p["recordings"], p["rows"], span, p["point_aggregation"], format_pooled_table(p))
    if m["versus_baselines"]:
        logger.info("%s", m["versus_baselines"]["text"])
    inc = m["incidents"]
    if p is None:
        logger.info("Incidents of %s (merge gap %d rows): %d, %d on labelled ranges and %d false alarms; %d of %d "
                    "labelled ranges detected", inc["score"], m["incident_merge_gap"], inc["n"], inc["hits"],
                    inc["false_alarms"], inc["detected"], inc["labelled_ranges"])
        for number, (incident, hit) in enumerate(zip(one.incidents[:10], one.hits), start=1):
            logger.info("  incident %d (%s): %s", number, "hit" if hit else "false alarm",
                        incident.text(one.threshold_at(one.primary, incident.peak_row)))
        if len(one.incidents) > 10:
            logger.info("  ... %d more in out/incidents.csv", len(one.incidents) - 10)
    else:
        logger.info("Incidents of %s, all recordings: %d, %d on labelled ranges and %d false alarms; %d of %d "
                    "labelled ranges detected (out/incidents.csv). Per recording:\n%s", inc["score"], inc["n"],
                    inc["hits"], inc["false_alarms"], inc["detected"], inc["labelled_ranges"],
                    "\n".join(f"  {recording_line(name, r)}" for name, r in stream.metrics["recordings"].items()))
    log_verdicts(time_step_verdicts(metrics, advice=False), metrics)


def promise_text(report: dict[str, Any]) -> str:
    """What a threshold promises, in words (from :func:`false_alarm_report`)."""
    if report["achievable"]:
        return (f"false-alarm rate <= {report['bound']:.4g} (asked {report['alpha']:g}), the {report['k']}-th "
                f"smallest of {report['n']} validation scores")
    return (f"{report['n']} validation scores are too few for a false-alarm rate of {report['alpha']:g}; their "
            f"maximum bounds it by 1/(n+1) = {report['bound']:.4g}")


def measured_text(measured: dict[str, Any]) -> str:
    """A measured false-alarm rate with its interval, in words."""
    if measured["rate"] is None:
        return "there are no normal windows"
    return (f"{measured['n_alarms']}/{measured['n_normals']} = {measured['rate']:.4f} "
            f"({100 * measured['confidence']:g}% CI {measured['low']:.4f}-{measured['high']:.4f})")


def write_scores_csv(path: Path, run: TrainedRun, scores: dict[str, np.ndarray], contributions: np.ndarray) -> None:
    """One row per test window, in ``--mode score``'s schema (:func:`agents.score_loop.window_header`) plus labels;
    a ``recording`` column first with several recordings."""
    scoring = Scoring(run.detector)
    flags, test = scoring.flags(scores), run.data.test
    recordings = run.data.recordings or []  # their names differ (evaluate_recordings checked)
    time_column = run.data.info.get("timestamp_column") if recordings and all(
        r.test.time_text is not None for r in recordings) else None
    done, rows = 0, {}
    for name, part in [(r.name, r.test) for r in recordings] or [(None, None)]:
        own = slice(done, done + (len(test.y) if part is None else len(part.starts)))
        starts = None if part is None else part.first_row + part.starts
        times = None if time_column is None else part.time_text[part.starts][:, None]
        rows[name] = _made_when_written(partial(
            window_rows, scoring, 0, starts, times, {k: s[own] for k, s in scores.items()}, contributions[own],
            {k: f[own] for k, f in flags.items()}, (test.y[own], test.kind[own])))
        done = own.stop
    write_per_recording(path, window_header(scoring, time_column, labelled=True), rows)


def _made_when_written(make: Callable[[], list[list[Any]]]) -> Iterator[list[Any]]:
    """A recording's rows, made as the writer reaches them (one recording's rows in memory at a time)."""
    yield from make()


def log_to_tensorboard(writer: Any, summaries: Path, step: int, config: Any, y: np.ndarray,
                       scores: dict[str, np.ndarray], metrics: dict) -> None:
    """PR curves per score (in ``writer``), hparams and final metrics (in ``summaries/hparams``) at ``step``, the one
    after the last training step: a resume's purge (its checkpoint's step + 1) drops a stopped evaluation's events."""
    for name, s in scores.items():
        span = float(s.max() - s.min()) or 1.0
        writer.add_pr_curve(f"pr_curve/{name}", torch.from_numpy(y), torch.from_numpy((s - s.min()) / span), step)
    final = {f"final/{name}_{key}": result[key] for name, result in metrics["scores"].items()
             for key in ("roc_auc", "pr_auc", "f1") if result.get(key) is not None}
    # HParams takes scalars under dotted keys
    flat = {f"{section}.{key}": value if isinstance(value, (int, float, str, bool)) else str(value)
            for section in ("data", "model", "loss", "trainer", "evaluation") for key, value in config[section].items()}
    log_hparams(summaries / "hparams", flat | {"seed": config.seed}, final, step)


def log_hparams(folder: Path, hparams: dict[str, Any], final: dict[str, float], step: int) -> None:
    """``SummaryWriter.add_hparams``'s events, purged from ``step``: an evaluation logged again replaces the first."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summaries
    wait_for_a_later_event_file_second(folder)  # TensorBoard reads the files in name order: the purge comes last
    with SummaryWriter(str(folder), purge_step=step) as writer:
        for summary in hparams_summaries(hparams, final):
            writer.file_writer.add_summary(summary, step)
        for tag, value in final.items():
            writer.add_scalar(tag, value, step)


def save_figures(run: TrainedRun, scores: dict[str, np.ndarray], results: dict[str, Any],
                 stream: StreamEvaluation | None = None) -> None:
    """The standard figures (plus latent space and stream timeline where they apply), as PNG in out/ and TensorBoard."""
    from utils import figures
    detector, test_x, config = run.detector, run.windows["test"], run.config
    test, names = run.data.test, list(run.data.feature_names)
    primary = next(iter(scores))
    kinds = sorted(set(test.kind.tolist()), key=lambda k: (k != "normal", k))
    shown = np.array([int(np.flatnonzero(test.kind == k)[0]) for k in kinds])  # each kind's first window, normal first
    recon = detector.reconstruct(test_x[torch.from_numpy(shown).to(test_x.device)]).cpu().numpy()
    made = {
        "signal_examples": figures.plot_signal_examples(test.x, test.kind, names),
        "loss_curves": figures.plot_loss_curves({k: v for k, v in run.state.history.items() if k != "lr"}),
        "roc_pr_curves": figures.plot_roc_pr(test.y, scores, dashed=[n for n in scores if n not in results]),
        "reconstructions": figures.plot_reconstructions(test_x.cpu().numpy()[shown], recon, test.kind[shown], names,
                                                        detector.error_kind, config.evaluation.scaler),
        "confusion_matrix": figures.plot_confusion_matrix(
            results[primary]["confusion_matrix"], title=f"Confusion matrix ({primary} score, threshold for a "
            f"false-alarm rate of {config.evaluation.false_alarm_rate:g})"),
    }
    for name in results:  # the model's scores (the baselines' are in the ROC/PR figure only)
        made[f"score_histogram_{name}"] = figures.plot_score_histogram(
            scores[name], test.kind, detector.thresholds[name], title=f"{name} score on the test set")
    if stream is not None:  # the stream's sensors, primary score, threshold (an adaptive one's start), incidents
        part, score = stream.part, stream.primary
        made["timeline"] = figures.plot_timeline(
            part.values, names, stream.points[score], stream.metrics["incidents"]["threshold"], labels=part.labels,
            kinds=part.kinds, incidents=stream.incidents, hits=stream.hits, times=part.times,
            first_row=part.first_row, score_name=score,
            title=f"Test stream: {score} score per time step ({len(stream.incidents)} incidents)")
    if detector.model.has_latent():
        made["latent_space"] = figures.plot_latent(detector.encode(test_x).cpu().numpy(), test.kind)
    for stem, fig in made.items():
        image = figures.save_figure(fig, run.folder.figure(stem))
        run.writer.add_image(f"figures/{stem}", image, run.state.global_step + 1, dataformats="HWC")
