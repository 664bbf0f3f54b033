"""The run report ``out/report.md``, written at the end of every run from the resolved config and the metrics, plots
embedded as relative links (the folder can be moved). Regenerate it with ``python -m utils.figures.report RUN_DIR``."""
from __future__ import annotations

import csv
import itertools
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from utils.core.paths import user_path
from utils.metrics.promise import named_results, promise_advice, time_step_verdicts, window_verdicts
from utils.metrics.stream_metrics import metric_at
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
#: (header, path into one score's stream metrics, decimals) of the stream tables (report and console).
STREAM_COLUMNS = (("VUS-PR", ("vus_pr",), 3), ("VUS-ROC", ("vus_roc",), 3), ("PR AUC", ("pr_auc",), 3),
                  ("ROC AUC", ("roc_auc",), 3), ("range P", ("range", "precision"), 3),
                  ("range R", ("range", "recall"), 3), ("range F1", ("range", "f1"), 3),
                  ("event recall", ("event_recall",), 3), ("false alarms / h", ("false_alarms_per_hour",), 1),
                  ("PA-F1 (optimistic)", ("point_adjusted_f1_OPTIMISTIC",), 3))
MAX_LISTED = 40
#: (header, key into a pooled score's ``mean``, decimals) of the pooled table's per-recording means.
MEAN_COLUMNS = (("VUS-PR", "vus_pr", 3), ("VUS-ROC", "vus_roc", 3), ("range F1", "range_f1", 3),
                ("event recall", "event_recall", 3), ("false alarms / h", "false_alarms_per_hour", 1))
POOLED_HEADERS = ("F1", "FAR %", "MAR %", *(h for h, _, _ in MEAN_COLUMNS))
#: Characters that Markdown (GitHub's too: ``$`` opens maths there) would read as markup in a name; ``_`` only
#: where it could open or close emphasis (not inside a word: ``voltage_spike`` stays as it is).
MARKDOWN_PUNCTUATION = re.compile(r"[\\`*\[\]<>|#~$]|(?<![^\W_])_|_(?![^\W_])")


def md_text(value: Any) -> str:
    """``value`` (a name from the user's data) as literal Markdown on one line: markup backslash-escaped."""
    return MARKDOWN_PUNCTUATION.sub(lambda found: "\\" + found[0], " ".join(str(value).splitlines()))


def md_code(value: Any) -> str:
    """``value`` as a code span, or :func:`md_text` when it holds a ``|``, backtick or line break."""
    text = str(value)
    return md_text(text) if re.search(r"[|`\n\r]", text) else f"`{text}`"


def stream_cell(result: dict[str, Any], path: tuple[str, ...], digits: int, missing: str = "–") -> str:
    """The metric at ``path`` of one score's stream metrics with ``digits`` decimals, ``missing`` when undefined."""
    value = metric_at(result, path)
    return missing if value is None else f"{value:.{digits}f}"


def promise_cell(report: dict[str, Any]) -> str:
    """``kept``, ``**broken**`` or ``–`` (no normals, or a run written before the verdicts)."""
    return {True: "kept", False: "**broken**"}.get(report.get("promise_kept"), "–")


def verdict_lines(section: dict[str, Any]) -> list[str]:
    """The section's verdict of the model against the baselines in bold (none without one)."""
    return [f"**{section['versus_baselines']['text']}.**", ""] if section.get("versus_baselines") else []


def score_table(headers: list[str], rows: dict[str, list[str]]) -> str:
    """A Markdown table: the score's name, then one right-aligned column per header; ``rows``: ``{name: cells}``."""
    lines = ["| score | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    return "\n".join(lines + [f"| {md_code(name)} | " + " | ".join(cells) + " |" for name, cells in rows.items()])


def markdown_stream_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per score (or baseline) with the stream metrics of :data:`STREAM_COLUMNS`."""
    return score_table([h for h, _, _ in STREAM_COLUMNS],
                       {name: [stream_cell(r, path, digits) for _, path, digits in STREAM_COLUMNS]
                        for name, r in results.items()})


def markdown_incidents(path: Path) -> list[str]:
    """The test incidents of ``out/incidents.csv`` as a table (hits, false alarms, then missed ranges)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:  # the listed rows and a count, not 100,000 dicts
        reader = csv.DictReader(handle)
        rows = list(itertools.islice(reader, MAX_LISTED))
        more = sum(1 for _ in reader)
    if not rows:
        return ["No incident and no labelled range in the test stream.", ""]
    several = "recording" in rows[0]
    lines = ["| " + ("recording | " if several else "") + "# | outcome | rows | from | to | duration (s) | peak score | "
             "top sensor | labelled kind |", "|" + ("---|" if several else "") + "---:|---|---|---|---|---:|---:|---|---|"]
    for row in rows:
        cells = [row["outcome"].replace("_", " "), f"{row['start_row']}–{row['end_row']}"]
        cells += [md_text(row[k]) or "–" for k in ("start_time", "end_time", "duration_s", "peak_score",
                                                   "top_feature", "labelled_kind")]
        lines.append("| " + (f"{md_code(row['recording'])} | " if several else "") + f"{row['incident'] or '–'} | "
                     + " | ".join(cells) + " |")
    if more:
        lines.append(f"| … | {more} more rows in `out/incidents.csv` | | | | | | | |"
                     + (" |" if several else ""))
    return [*lines, ""]


def pooled_cells(result: dict[str, Any], missing: str = "–") -> list[str]:
    """One pooled score's cells under :data:`POOLED_HEADERS` (``mean ± std (n)`` for :data:`MEAN_COLUMNS`)."""
    c, means = result.get("confusion", {}), [(result.get("mean", {}).get(key, {}), d) for _, key, d in MEAN_COLUMNS]
    cells = [stream_cell(c, (key,), digits, missing) for key, digits in (("f1", 3), ("far_pct", 2), ("mar_pct", 2))]
    return cells + [missing if m.get("mean") is None else f"{m['mean']:.{d}f} ± {m['std']:.{d}f} ({m['n']})"
                    for m, d in means]


def _minutes(hours: Any, template: str) -> str:
    """``template`` holding the hours as minutes (one decimal), empty when the hours are unknown."""
    return template.format(f"{hours * 60:.1f}") if isinstance(hours, (int, float)) else ""


def recordings_section(stream: dict[str, Any], out_dir: Path) -> list[str]:
    """The report's lines for several test recordings: the pooled table, then one row per recording."""
    pooled = stream.get("pooled", {})
    inc, span = pooled.get("incidents", {}), _minutes(pooled.get("hours"), ", {} minutes")
    lines = ["## Results on the test recordings (per time step)", "",
             f"{pooled.get('recordings')} recordings, {pooled.get('rows')} test time steps in all{span}. Each time "
             f"step takes the {pooled.get('point_aggregation')} of the scores of the windows that cover it (windows "
             "never cross two recordings) and is alarmed when that is above the window threshold. F1, FAR and MAR "
             "come from the confusion matrix summed over every recording's time steps at the deployed threshold "
             "(SKAB's protocol: F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN), MAR = FN / (FN + TP)); the "
             "other columns are the mean ± standard deviation over the recordings where the metric is defined "
             "(their number in brackets).", "",
             score_table(list(POOLED_HEADERS), {name: pooled_cells(r) for name, r in named_results(pooled, "baseline: ").items()}), ""]
    lines += [*verdict_lines(pooled), f"Per recording (`{inc.get('score')}` score; incidents of alarms at most "
              f"{pooled.get('incident_merge_gap')} rows apart): {inc.get('n')} incidents in all, "
              f"{inc.get('detected')} of {inc.get('labelled_ranges')} labelled ranges detected.", "",
              "| recording | time steps | VUS-PR | range F1 | alarms (false) | labelled ranges detected | promise per "
              "time step |", "|---|---:|---:|---:|---:|---:|---|"]
    recordings = stream.get("recordings", {})
    for name, m in list(recordings.items())[:MAX_LISTED]:
        counts = m.get("incidents", {})
        primary = m.get("scores", {}).get(counts.get("score"), {})
        lines.append(f"| {md_code(name)} | {m.get('rows')} | {stream_cell(primary, ('vus_pr',), 3)} | "
                     f"{stream_cell(primary, ('range', 'f1'), 3)} | {counts.get('n')} ({counts.get('false_alarms')}) | "
                     f"{counts.get('detected')} of {counts.get('labelled_ranges')} | "
                     f"{promise_cell(primary.get('false_alarm') or {})} |")
    if len(recordings) > MAX_LISTED:
        lines.append(f"| … | {len(recordings) - MAX_LISTED} more recordings in `out/metrics.json` (stream.recordings) "
                     "| | | | | |")
    return [*lines, "", "### Test incidents", "", *markdown_incidents(out_dir / "incidents.csv")]


def stream_section(metrics: dict[str, Any], out_dir: Path) -> list[str]:
    """The report's lines for a stream dataset (empty for a window dataset)."""
    stream = metrics.get("stream")
    if not isinstance(stream, dict):
        return []
    if "pooled" in stream:
        return recordings_section(stream, out_dir)
    inc, span = stream.get("incidents", {}), _minutes(stream.get("hours"), "{} minutes, ")
    lines = ["## Results on the test stream (per time step)", "",
             f"The test stretch: {stream.get('rows')} time steps ({span}from row {stream.get('first_row')}). Each "
             f"time step takes the {stream.get('point_aggregation')} of the scores of the windows that cover it, "
             "and is alarmed when that is above the window threshold. VUS-PR and VUS-ROC (Paparrizos et al. 2022, "
             f"as TSB-AD computes them) buffer each labelled range by up to {stream.get('vus_buffer')} rows; range "
             "precision/recall follow Tatbul et al. 2018 (flat bias); an event is a labelled range, detected when one "
             f"of its time steps is alarmed; alarms at most {stream.get('incident_merge_gap')} rows apart are one "
             "incident. Point-adjusted F1 counts a whole range as found once one of its points is: it flatters "
             "(Kim et al. 2022) and is shown only beside papers that report it.", "",
             markdown_stream_table(stream.get("scores", {})), ""]
    if stream.get("baselines"):
        lines += ["Baselines, the same way:", "", markdown_stream_table(stream["baselines"]), ""]
    lines += verdict_lines(stream)
    if inc:
        lines += ["### Test incidents", "",
                  f"Incidents of `{inc.get('score')}` (threshold {inc.get('threshold', 0):.4g}): {inc.get('n')}, of "
                  f"which {inc.get('hits')} on labelled ranges and {inc.get('false_alarms')} false alarms; "
                  f"{inc.get('detected')} of {inc.get('labelled_ranges')} labelled ranges detected, "
                  f"{inc.get('missed')} missed.", "", *markdown_incidents(out_dir / "incidents.csv")]
    return lines


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.3g}"
    return str(value)


def _settings(section: dict[str, Any], keys: tuple[str, ...] | None = None) -> str:
    text = ", ".join(md_code(f"{k}={json.dumps(v, ensure_ascii=False)}") for k, v in section.items()
                     if k != "name" and (keys is None or k in keys))
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
    return score_table([f"{md_text(k)} (n={n})" for k, n in zip(kinds, counts)],
                       {name: [f"{_fmt(m.get('roc_auc'))} / {_fmt(m.get('recall'))}"
                               for m in (r.get("per_kind", {}).get(k, {}) for k in kinds)] for name, r in results.items()})


def _threshold_text(threshold: dict[str, Any]) -> str:
    base_rate = "PR AUC of a random detector equals the base rate (the anomaly share)."
    if threshold.get("false_alarm_rate") is None:  # a run written before the conformal thresholds
        return (f"Thresholds: the {_fmt(threshold.get('percentile'), 1)}th percentile of each score on the "
                f"{threshold.get('fitted_on', 'validation normals')} (never on test labels). {base_rate}")
    return (f"Thresholds: split-conformal for a false-alarm rate of {threshold['false_alarm_rate']:g}: the k-th "
            "smallest of the n calibration scores (the validation normals, out of sample for each score), "
            "k = ceil((n + 1)(1 - alpha)), which bounds the false-alarm probability of a new normal window "
            f"exchangeable with them by (n + 1 - k)/(n + 1) <= alpha. Never set on test labels. {base_rate}")


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
    """The thresholds' verdicts: each broken one in full, the kept ones by name (empty for an older run)."""
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


def _figure_section(out_dir: Path, make_plots: bool, score_names: set[str]) -> list[str]:
    """The PNGs in out/ in reading order (:data:`FIGURE_TITLES`, then by name) under their titles; score histograms
    of ``score_names`` only (an earlier evaluation may have left others)."""
    order, lines = list(FIGURE_TITLES), ["## Figures", ""]
    pngs = [p.stem for p in out_dir.glob("*.png") if make_plots]
    groups = {stem: HISTOGRAM if stem.startswith(HISTOGRAM) else stem for stem in pngs
              if not stem.startswith(HISTOGRAM) or stem.removeprefix(HISTOGRAM) in score_names}
    for stem in sorted(groups, key=lambda s: (order.index(groups[s]) if groups[s] in order else len(order), s)):
        title = (FIGURE_TITLES[HISTOGRAM] + stem.removeprefix(HISTOGRAM) if groups[stem] == HISTOGRAM
                 else FIGURE_TITLES.get(stem, stem.replace("_", " ")))
        lines += [f"### {title}", "", f"![{title}]({stem}.png)", ""]
    return lines if len(lines) > 2 else [*lines, "No plots (`evaluation.make_plots` is false).", ""]


def render_report(config: dict[str, Any], metrics: dict[str, Any], out_dir: Path) -> str:
    """The report's Markdown text (see the module docstring)."""
    scores, splits, training = metrics.get("scores", {}), metrics.get("splits", {}), metrics.get("training", {})
    data_info = metrics.get("data", {}) or {}
    lines = [f"# Run report: {config.get('exp_name', '?')}", ""]
    if config.get("description"):
        lines += [f"> {line}".rstrip() for line in str(config["description"]).splitlines()] + [""]
    lines += [f"Written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} from `config.json` and "
              "`out/metrics.json` of this run folder. Scores: higher = more anomalous; a window is an alarm when "
              "its score is above the threshold.", "", *promise_section(metrics)]
    lines += ["## Configuration", "", "| | |", "|---|---|",
              f"| agent | `{config.get('agent')}` (seed {config.get('seed')}, device `{config.get('device')}`) |",
              *(f"| {key} | {_settings(config.get(key, {}), TRAINING_KEYS if key == 'trainer' else None)} |"
                for key in ("data", "model", "loss", "trainer", "evaluation")), ""]

    lines += ["## Data", "", "| split | windows | anomalies | kinds |", "|---|---:|---:|---|"]
    counts = data_info.get("counts", {}) if isinstance(data_info, dict) else {}
    for name in ("train", "val", "test"):
        split = splits.get(name, {})
        kinds = counts.get(name) if isinstance(counts, dict) else None
        kinds_text = ", ".join(f"{md_text(k)} {v}" for k, v in kinds.items()) if isinstance(kinds, dict) else ""
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
              f"{_fmt(training.get('best_val_loss'), 5)} at epoch {training.get('best_epoch', '?')} (the weights in "
              "`checkpoints/best.pt`).", ""]

    lines += ["## Results on the test set", "", _threshold_text(metrics.get("threshold", {})), "",
              markdown_metrics_table(scores), "", markdown_false_alarm_table(scores), ""]
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

    make_plots = (config.get("evaluation") or {}).get("make_plots", True) is not False
    lines += stream_section(metrics, out_dir) + _figure_section(out_dir, make_plots, set(scores))
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
    """``python -m utils.figures.report RUN_FOLDER``: (re)write the report; 2 with a one-line message if it cannot."""
    if len(argv) != 1:
        print("usage: python -m utils.figures.report RUN_FOLDER", file=sys.stderr)
        return 2
    run_dir = user_path(argv[0])  # a quoted "~/runs/x" too
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
