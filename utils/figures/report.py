"""The run report ``out/report.md``, written at the end of every run from the resolved config and the metrics.

Plots in ``out/`` are embedded as relative links, so the folder can be moved or browsed as it is. Regenerate a
finished run's report with ``python -m utils.figures.report experiments/<exp_name>``.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from utils.figures.stream_report import promise_cell, score_table, stream_section, verdict_lines
from utils.metrics.promise import promise_advice, time_step_verdicts, window_verdicts
from utils.runs.outputs import atomic_write_text
from utils.runs.run_folder import RunFolder

HISTOGRAM = "score_histogram_"
FIGURE_TITLES = {  # in reading order; other figures follow by name
    "timeline": "Timeline of the test stream (score per time step, labelled ranges, incidents)",
    "signal_examples": "Signal examples per sensor (test set, one window per kind)",
    "loss_curves": "Training and validation loss",
    "roc_pr_curves": "ROC and precision-recall curves",
    "confusion_matrix": "Confusion matrix at the deployed threshold",
    HISTOGRAM: "Score histogram: ",  # then the score's name, one per score
    "reconstructions": "Reconstructions (scaled units)",
    "latent_space": "Latent space of the test windows",
}
METRIC_KEYS = ("roc_auc", "pr_auc", "base_rate", "threshold", "precision", "recall", "f1")
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "weight_decay", "scheduler", "early_stopping_patience",
                 "grad_clip_norm")


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.3g}"
    return str(value)


def _settings(section: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    text = ", ".join(f"`{k}={json.dumps(v)}`" for k, v in section.items() if k != "name" and (keys is None or k in keys))
    return (f"**{section['name']}** " if "name" in section else "") + (text or "defaults")


def markdown_metrics_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per score: ROC AUC, PR AUC beside the base rate, threshold, precision, recall, F1, alarms."""
    rows = {}
    for name, r in results.items():
        cm = r.get("confusion_matrix") or [[0, 0], [0, 0]]
        tp, fp = cm[1][1], cm[0][1]
        rows[name] = [*(_fmt(r.get(k), 4 if k == "threshold" else 3) for k in METRIC_KEYS), f"{tp + fp} ({tp} + {fp})"]
    return score_table(["ROC AUC", "PR AUC", "base rate", "threshold", "precision", "recall", "F1",
                        "alarms (TP + FP)"], rows)


def markdown_per_kind_table(results: dict[str, dict[str, Any]]) -> str:
    """ROC AUC (and recall at the threshold) of each anomaly kind against the normals, per score."""
    kinds = sorted({k for r in results.values() for k in r.get("per_kind", {})})
    if not kinds:
        return ""
    counts = [next(r["per_kind"][k].get("count") for r in results.values() if k in r.get("per_kind", {}))
              for k in kinds]
    return score_table([f"{k} (n={n})" for k, n in zip(kinds, counts)],
                       {name: [f"{_fmt(m.get('roc_auc'))} / {_fmt(m.get('recall'))}"
                               for m in (r.get("per_kind", {}).get(k, {}) for k in kinds)] for name, r in results.items()})


def _threshold_text(threshold: dict[str, Any]) -> str:
    if threshold.get("false_alarm_rate") is None:  # a run written before the conformal thresholds
        return (f"Thresholds: the {_fmt(threshold.get('percentile'), 1)}th percentile of each score on the "
                f"{threshold.get('fitted_on', 'validation normals')} (never on test labels). PR AUC of a random "
                "detector equals the base rate (the anomaly share).")
    return (f"Thresholds: split-conformal for a false-alarm rate of {threshold['false_alarm_rate']:g}: the k-th "
            "smallest of the n calibration scores (the validation normals, out of sample for each score), "
            "k = ceil((n + 1)(1 - alpha)), which bounds the false-alarm probability of a new normal window "
            "exchangeable with them by (n + 1 - k)/(n + 1) <= alpha. Never set on test labels. PR AUC of a random "
            "detector equals the base rate (the anomaly share).")


def markdown_false_alarm_table(results: dict[str, dict[str, Any]]) -> str:
    """Per score: alpha, n, k, the bound the threshold keeps, and the test false-alarm rate with its 95 % CI."""
    lines = ["| score | alpha | n | k | bound | test false alarms | rate (95 % CI) | promise |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for name, fa in {name: r["false_alarm"] for name, r in results.items() if r.get("false_alarm")}.items():
        m = fa.get("measured", {})
        note = "" if fa.get("achievable", True) else " (n too small for alpha)"
        rate = "–" if m.get("rate") is None else f"{m['rate']:.4f} ({m['low']:.4f}–{m['high']:.4f})"
        lines.append(f"| `{name}` | {fa['alpha']:g} | {fa['n']} | {fa['k']} | {fa['bound']:.4f}{note} | "
                     f"{m.get('n_alarms', '–')}/{m.get('n_normals', '–')} | {rate} | {promise_cell(fa)} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def promise_section(metrics: dict[str, Any]) -> list[str]:
    """The report's verdict on the thresholds' promise: each broken one in full, the kept ones by name; empty for a
    run written before the verdicts."""
    verdicts = window_verdicts(metrics, advice=False) + time_step_verdicts(metrics, advice=False)
    if not verdicts:
        return []
    broken = [line for kept, _, line in verdicts if kept is False]
    kept = [f"`{label}`" for ok, label, _ in verdicts if ok is True]
    lines = ["## Did the thresholds keep their promise?", ""]
    if broken:
        lines += [*(f"- **{line}**" for line in broken), "", f"What you can do: {promise_advice(metrics)}."]
    else:
        lines.append("Every threshold kept its promise: no 95 % interval of the measured false-alarm rate lies above "
                     "its stated bound.")
    if kept:
        lines += ["", "Kept (the interval covers the bound or lies below it): " + "; ".join(kept) + "."]
    return [*lines, ""]


def _figure_section(out_dir: Path) -> list[str]:
    """The PNGs in out/ in reading order (:data:`FIGURE_TITLES`, then the others by name), each under its title."""
    order = list(FIGURE_TITLES)

    def rank(stem: str) -> tuple[int, str]:
        group = HISTOGRAM if stem.startswith(HISTOGRAM) else stem
        return order.index(group) if group in order else len(order), stem

    lines = ["## Figures", ""]
    for stem in sorted((p.stem for p in out_dir.glob("*.png")), key=rank):
        title = (FIGURE_TITLES[HISTOGRAM] + stem.removeprefix(HISTOGRAM) if stem.startswith(HISTOGRAM)
                 else FIGURE_TITLES.get(stem, stem.replace("_", " ")))
        lines += [f"### {title}", "", f"![{title}]({stem}.png)", ""]
    return lines if len(lines) > 2 else [*lines, "No plots (`evaluation.make_plots` is false).", ""]


def render_report(config: dict[str, Any], metrics: dict[str, Any], out_dir: Path) -> str:
    """The report's Markdown text (see the module docstring)."""
    scores = metrics.get("scores", {})
    splits = metrics.get("splits", {})
    training = metrics.get("training", {})
    threshold = metrics.get("threshold", {})
    data_info = metrics.get("data", {}) or {}
    lines = [f"# Run report: {config.get('exp_name', '?')}", ""]
    if config.get("description"):
        lines += [f"> {config['description']}", ""]
    lines += [f"Written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from `config.json` and "
              "`out/metrics.json` of this run folder. Scores: higher = more anomalous; a window is an alarm when "
              "its score is above the threshold.", ""]

    lines += promise_section(metrics)

    lines += ["## Configuration", "", "| | |", "|---|---|",
              f"| agent | `{config.get('agent')}` (seed {config.get('seed')}, device `{config.get('device')}`) |",
              *(f"| {key} | {_settings(config.get(key, {}), TRAINING_KEYS if key == 'trainer' else None)} |"
                for key in ("data", "model", "loss", "trainer", "evaluation")), ""]

    lines += ["## Data", "", "| split | windows | anomalies | kinds |", "|---|---:|---:|---|"]
    counts = data_info.get("counts", {}) if isinstance(data_info, dict) else {}
    for name in ("train", "val", "test"):
        split = splits.get(name, {})
        kinds = counts.get(name) if isinstance(counts, dict) else None
        kinds_text = ", ".join(f"{k} {v}" for k, v in kinds.items()) if isinstance(kinds, dict) else ""
        lines.append(f"| {name} | {split.get('n', '–')} | {split.get('n_anomalies', '–')} | {kinds_text} |")
    lines += ["", "Train and validation hold normal windows only; the test split holds held-out normals plus every "
              "anomaly."]
    if isinstance(data_info, dict) and data_info.get("note"):
        lines += ["", f"**Note:** {data_info['note']}"]
    lines.append("")

    stopped = " (early stopping)" if training.get("stopped_early") else ""
    lines += ["## Training", "",
              f"{training.get('epoch', '?')} of {config.get('trainer', {}).get('epochs', '?')} epochs{stopped}, "
              f"{training.get('global_step', '?')} steps; best validation loss "
              f"{_fmt(training.get('best_val_loss'), 5)} "
              f"at epoch {training.get('best_epoch', '?')} (the weights in `checkpoints/best.pt`).", ""]

    lines += ["## Results on the test set", "", _threshold_text(threshold), "", markdown_metrics_table(scores), "",
              markdown_false_alarm_table(scores), ""]
    baselines = metrics.get("baselines") or {}
    if baselines:
        lines += ["### Baselines on the same split", "",
                  "Fitted on the same scaled training normals, thresholded by the same rule on the same validation "
                  "normals, scored on the same test windows"
                  + (f" ({_fmt(metrics.get('seconds', {}).get('baselines'), 2)} s, beside "
                     f"{_fmt(metrics.get('seconds', {}).get('training_this_process'), 1)} s of training)."
                     if metrics.get("seconds") else "."), "",
                  markdown_metrics_table(baselines), "", markdown_false_alarm_table(baselines), ""]
        lines += verdict_lines(metrics)
    per_kind = markdown_per_kind_table(scores)
    if per_kind:
        lines += ["ROC AUC / recall at the threshold, per anomaly kind against the normals:", "", per_kind, ""]
    oracle = {n: r["best_f1_on_test_labels_NOT_DEPLOYABLE"] for n, r in scores.items()
              if r.get("best_f1_on_test_labels_NOT_DEPLOYABLE")}
    if oracle:
        lines += ["Best F1 with a threshold chosen on the test labels (an oracle, for reference only, not deployable): "
                  + "; ".join(f"`{n}` {_fmt(v['f1'])} at {_fmt(v['threshold'], 4)}" for n, v in oracle.items()) + ".", ""]

    lines += stream_section(metrics, out_dir)

    lines += _figure_section(out_dir)

    lines += ["## Files", "",
              "- `out/metrics.json`: every metric above and more (classification report, confusion matrices)",
              "- `out/scores.csv`: one row per test window: label, kind, each score and its alarm flag",
              *(["- `out/stream_scores.csv`: one row per test time step: label, kind, each score and its alarm flag",
                 "- `out/incidents.csv`: the test incidents (hit or false alarm) and the missed labelled ranges"]
                if metrics.get("stream") else []),
              "- `checkpoints/best.pt`: weights, scaler and thresholds; score new data with "
              "`python main.py CONFIG --mode score --input FILE --output scores.csv`",
              "- `summaries/`: TensorBoard (`tensorboard --logdir <this folder>`)",
              "- `logs/train.log`: the console log", ""]
    return "\n".join(lines)


def write_report(run_dir: Path, config: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None) -> Path:
    """Write ``out/report.md`` and return its path; ``config``/``metrics`` default to the run folder's JSON files."""
    run = RunFolder(run_dir)
    config = json.loads(run.config.read_text(encoding="utf-8") if config is None else json.dumps(config))
    metrics = json.loads(run.metrics.read_text(encoding="utf-8")) if metrics is None else metrics
    atomic_write_text(run.report, render_report(config, metrics, run.out))
    return run.report


def _run_json(path: Path) -> dict[str, Any]:
    """A run folder's JSON file as a dict; ValueError saying what is wrong with it."""
    if not path.is_file():
        raise ValueError(f"{path}: not found; "
                         + ("the run has not finished its evaluation (finish it with --resume)"
                            if path.name == "metrics.json" else "is this a run folder?"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{path}: not readable JSON ({type(err).__name__}: {str(err)[:120]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: holds a JSON {type(data).__name__}, expected an object")
    return data


def main(argv: list[str]) -> int:
    """``python -m utils.figures.report RUN_FOLDER``: (re)write the run's report; 2 with a one-line message for a
    missing folder or a missing or broken config.json / out/metrics.json (nothing written then)."""
    if len(argv) != 1:
        print("usage: python -m utils.figures.report RUN_FOLDER", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    try:
        if not run_dir.is_dir():
            raise ValueError(f"{run_dir}: no such run folder")
        run = RunFolder(run_dir)
        print(write_report(run_dir, _run_json(run.config), _run_json(run.metrics)))
        return 0
    except OSError as err:
        message = f"{run_dir}: cannot write the report ({err.strerror or err})"
    except ValueError as err:
        message = str(err)
    except (KeyError, TypeError, AttributeError) as err:  # JSON of another shape than this project writes
        message = f"{run_dir}: config.json or out/metrics.json is not a run's ({type(err).__name__}: {err})"
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
