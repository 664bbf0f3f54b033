"""Benchmark on SKAB (real water-pump recordings): every ``skab`` config and the baselines, beside the leaderboard.

SKAB's outlier-detection protocol (``../shared/data/SKAB/SOURCE.md``): per file, the model, its scaler and
its threshold see the first 400 rows only; every later row is predicted; the confusion matrix is summed over
the 34 files. Each config (``--configs``, default: every ``configs/*.json`` with ``data.name`` ``skab``) is
trained once, in one process, on the 34 files (``python main.py``, :func:`benchmarks.quality.train_config`),
and read back from its ``metrics.json`` (``stream.pooled``, :mod:`agents.stream_evaluation`). A row per score
and per baseline gives, at the deployed threshold (calibrated on the training parts only):

* F1, FAR % and MAR % of the confusion matrix summed over the files (SKAB's figures);
* the mean over files of VUS-PR (TSB-AD's measure, threshold-free) and of event recall.

Under each config's rows come its scores' F1, FAR % and MAR % again under the leaderboard's own row rule
(``[notebook rule]``): SKAB's notebooks flag row i only when the windows i-w+1 .. i-1 all alarm, and only for i
from w-1 to (windows - w), so the first w-1 and the last 2(w-1) rows of each file's test part never alarm. The
product alarms on every time step, which is stricter; these rows, from the same deployed window alarms in the
run's ``scores.csv``, are the ones that compare with the published figures.

The baselines (kNN, PCA, IsolationForest, thresholded by the same rule) come from the first config of each
window length and training stride, fitted on its windows, so the best model is compared with the best baseline
on any config's windows. Then
the false-alarm check on ``anomaly-free.csv`` (normal operation only): the first config trains on
its first 20 % of rows and is tested on the rest; the measured false-alarm rate per time step, with its 95 %
Clopper-Pearson interval, is printed against the bound its threshold states.

Every row is printed as soon as it is measured. ``--json FILE`` also writes::

    {"rows": [{"name", "kind": "model"|"baseline", "f1", "far_pct", "mar_pct", "vus_pr_mean", "event_recall"}],
     "notebook_rule": {"rows": [{"name", "f1", "far_pct", "mar_pct"}], "never_flagged_normal_share"},
     "anomaly_free": {"stated_far", "measured_far", "ci_low", "ci_high"},
     "adaptive": {"adapt_rate", "rows": [...], "anomaly_free": {...}}}

``adaptive`` (``--adapt-rate``, default 0.005): the first config again with ``evaluation.threshold_adapt_rate``,
whose time-step thresholds follow drift (adaptive conformal inference): what it buys on anomaly-free.csv and
what it costs on SKAB's labelled faults.

Usage:
    python benchmarks/skab.py                                   # every skab config, the shared copy of SKAB
    python benchmarks/skab.py --configs configs/vae_skab.json --json experiments/skab.json
    python benchmarks/skab.py --quick                           # 3 files, 2 epochs: a smoke run
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from benchmarks import quality  # noqa: E402
from benchmarks.skab_frontier import skab_rule  # noqa: E402
from utils.metrics.stream_metrics import pooled_confusion  # noqa: E402
from utils.core.paths import user_path  # noqa: E402

DATA_NAME = "skab"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "SKAB"
#: SKAB's README, "Outlier detection problem" (F1, FAR %, MAR %), at the pinned commit (SOURCE.md).
LEADERBOARD = [("Conv-AE", 0.78, 13.55, 28.02), ("MSET", 0.78, 39.73, 14.13),
               ("T-squared+Q (PCA-based)", 0.76, 26.62, 24.92), ("LSTM-AE", 0.74, 29.96, 25.92),
               ("T-squared", 0.66, 19.21, 42.60), ("LSTM-VAE", 0.56, 9.13, 55.03), ("Vanilla LSTM", 0.54, 12.54, 59.53),
               ("Vanilla AE", 0.39, 2.59, 75.15), ("Isolation forest", 0.29, 2.56, 82.89)]
QUICK = ["data.files=[\"valve1/0.csv\", \"valve2/0.csv\", \"other/1.csv\"]", "trainer.epochs=2"]
TARGET = (0.80, 10.0, 25.0)  # issue 21's aim for the best model: F1 at least, FAR % and MAR % at most
NAME_WIDTH = 64  # "PCA reconstruction (10 components), 60-row windows every 2 rows"
ANOMALY_FREE_TRAIN_SHARE = 0.2  # the protocol for anomaly-free.csv: train on its first 20 %, test the rest
ADAPT_RATE = 0.005  # the step gamma of adaptive conformal inference in Gibbs & Candes (2021)'s experiments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the benchmark."""
    p = argparse.ArgumentParser(description="Every SKAB config and the baselines on SKAB's 34 recordings, beside "
                                "the published leaderboard, and the false-alarm rate on anomaly-free.csv.")
    p.add_argument("--configs", nargs="+", type=user_path, default=None, metavar="FILE",
                   help="configs to run (default: every configs/*.json with data.name skab)")
    p.add_argument("--data-dir", type=user_path, default=DEFAULT_DATA_DIR,
                   help="the SKAB folder (default: the shared copy, %(default)s); files missing there are "
                        "downloaded only with --download")
    p.add_argument("--download", action="store_true", help="fetch missing files (data.download=true)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a value of every config (repeatable)")
    p.add_argument("--no-anomaly-free", action="store_true", help="skip the anomaly-free.csv false-alarm check")
    p.add_argument("--adapt-rate", type=float, default=ADAPT_RATE, metavar="GAMMA",
                   help="also run the first config with evaluation.threshold_adapt_rate GAMMA, on SKAB and on "
                        "anomaly-free.csv (default %(default)s, Gibbs & Candes' own choice; 0 skips)")
    p.add_argument("--quick", action="store_true", help="3 files, 2 epochs: checks the benchmark runs")
    add_run_options(p)
    args = p.parse_args(argv)
    args.configs = args.configs or quality.configs_for(DATA_NAME)
    if not args.configs:
        p.error(f"no config with data.name {DATA_NAME!r} in {quality.CONFIGS_DIR}")
    quality.check_results_path(p, args.json_out, "--json")
    return args


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of how runs are made, shared with :mod:`benchmarks.skab_selection`."""
    p.add_argument("--experiments-dir", type=user_path, help="where the runs go (default: a temporary folder)")
    p.add_argument("--json", dest="json_out", type=user_path, metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (default %(default)s)")
    p.add_argument("--verbose", action="store_true", help="show the runs' own console logs")


def common_overrides(args: argparse.Namespace) -> list[str]:
    """What every run gets: the data folder, no download unless asked, no plots or bar, then ``--set``."""
    return [f"data.data_dir={args.data_dir}", f"data.download={'true' if args.download else 'false'}",
            "trainer.progress_bar=false", "evaluation.make_plots=false",
            *(QUICK if args.quick else []), *args.overrides]


def table_rows(metrics: dict[str, Any], stem: str, with_baselines: bool, window: int | None = None,
               stride: int = 1) -> list[dict[str, Any]]:
    """One row per score (``<stem>: <score>``) and, if asked, per baseline (``<baseline>, <window>-row windows``,
    with ``every <stride> rows`` when the training windows do not start at every row), from a run's pooled stream
    metrics."""
    stream = metrics.get("stream")
    if stream is None:
        raise ValueError(f"{stem}: the run wrote no stream metrics (a skab config must use data.name skab)")
    pooled = stream.get("pooled")
    if pooled is None:
        raise ValueError(f"{stem}: the run evaluated one recording; SKAB's figures pool at least two")
    rows = [row(f"{stem}: {name}", "model", result) for name, result in pooled["scores"].items()]
    if with_baselines:
        suffix = "" if window is None else f", {window}-row windows" + (f" every {stride} rows" if stride > 1 else "")
        rows += [row(name + suffix, "baseline", result) for name, result in pooled["baselines"].items()]
    return rows


def row(name: str, kind: str, result: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's figures of one pooled score: SKAB's summed confusion and the per-file means."""
    confusion, mean = result["confusion"], result["mean"]
    return {"name": name, "kind": kind, "f1": confusion["f1"], "far_pct": confusion["far_pct"],
            "mar_pct": confusion["mar_pct"], "vus_pr_mean": mean["vus_pr"]["mean"],
            "event_recall": mean["event_recall"]["mean"]}


def notebook_rule_rows(run_dir: Path, stem: str, window: int) -> tuple[list[dict[str, Any]], int, int]:
    """Each score's F1, FAR % and MAR % under the leaderboard notebooks' row rule (:func:`skab_rule`), from the
    deployed window alarms of a run's ``out/scores.csv`` and the time-step labels of its ``out/stream_scores.csv``.

    Returns ``(rows, normal test rows, of them never flagged by the rule)``. Raises ValueError when the test windows
    do not start at every row of a file's test part (``data.eval_stride`` 1), as the rule needs.
    """
    labels: dict[str, list[int]] = {}
    with open(run_dir / "out" / "stream_scores.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            labels.setdefault(r["recording"], []).append(int(r["label"]))
    alarms: dict[str, dict[str, list[int]]] = {}
    with open(run_dir / "out" / "scores.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            per_score = alarms.setdefault(r["recording"], {})
            for key, value in r.items():
                if key.startswith("alarm_"):
                    per_score.setdefault(key.removeprefix("alarm_"), []).append(int(value))
    streams: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    normals = never = 0
    for recording, y in labels.items():
        y_arr, n_rows = np.asarray(y), len(y)
        edge = ~skab_rule(np.ones(max(n_rows - window + 1, 0), dtype=bool), n_rows, window)
        normals, never = normals + int((y_arr == 0).sum()), never + int(((y_arr == 0) & edge).sum())
        for score, flags in alarms.get(recording, {}).items():
            if len(flags) != n_rows - window + 1:
                raise ValueError(f"{stem}: {recording} has {len(flags)} test windows for {n_rows} test rows; the "
                                 "notebook rule needs a window at every row (data.eval_stride 1)")
            streams.setdefault(score, []).append((y_arr, skab_rule(np.asarray(flags, dtype=bool), n_rows, window)))
    rows = []
    for score, pairs in streams.items():
        pooled = pooled_confusion(pairs)
        rows.append({"name": f"{stem}: {score} [notebook rule]",
                     **{key: pooled[key] for key in ("f1", "far_pct", "mar_pct")}})
    return rows, normals, never


def notebook_verdict(rows: list[dict[str, Any]]) -> str:
    """Which notebook-rule rows beat the leaderboard's best (Conv-AE) on F1, FAR and MAR, and which meet
    :data:`TARGET`."""
    name, best_f1, best_far, best_mar = LEADERBOARD[0]

    def listed(chosen: list[dict[str, Any]]) -> str:
        return "; ".join(f"{r['name']} (F1 {r['f1']:.3f}, FAR {r['far_pct']:.2f} %, MAR {r['mar_pct']:.2f} %)"
                         for r in chosen) or "none"

    rows = [r for r in rows if None not in (r["f1"], r["far_pct"], r["mar_pct"])]  # None: nothing to divide by
    beats = [r for r in rows if r["f1"] > best_f1 and r["far_pct"] < best_far and r["mar_pct"] < best_mar]
    f1, far, mar = TARGET
    meets = [r for r in rows if r["f1"] >= f1 and r["far_pct"] <= far and r["mar_pct"] <= mar]
    return (f"under the notebook rule, better than the published {name} on F1, FAR and MAR: {listed(beats)}\n"
            f"under the notebook rule, at F1 >= {f1:.2f}, FAR <= {far:g} % and MAR <= {mar:g} %: {listed(meets)}")


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_row(r: dict[str, Any], note: str = "") -> str:
    return (f"{r['name']:<{NAME_WIDTH}} {num(r['f1']):>6} {num(r['far_pct'], 2):>7} {num(r['mar_pct'], 2):>7} "
            f"{num(r.get('vus_pr_mean')):>12} {num(r.get('event_recall')):>13}  {note}").rstrip()


def header() -> str:
    line = f"{'method':<{NAME_WIDTH}} {'F1':>6} {'FAR %':>7} {'MAR %':>7} {'VUS-PR mean':>12} {'event recall':>13}"
    return f"{line}\n{'-' * len(line)}"


def print_leaderboard() -> None:
    print("Published leaderboard (SKAB README, outlier detection; threshold from each file's first 400 rows):")
    print(header())
    for name, f1, far, mar in LEADERBOARD:
        print(format_row({"name": f"published: {name}", "f1": f1, "far_pct": far, "mar_pct": mar}))
    print(flush=True)


def anomaly_free_check(args: argparse.Namespace, config: Path, exp_dir: Path, extra: tuple[str, ...] = (),
                       tag: str = "") -> dict[str, Any]:
    """Train ``config`` on anomaly-free.csv's first 20 % and measure its primary score's false alarms on the rest
    (``extra`` overrides, ``tag`` naming them in the line and the run folder)."""
    overrides = [*common_overrides(args), "data.files=anomaly-free", f"data.train_end={ANOMALY_FREE_TRAIN_SHARE}",
                 *extra]
    run = quality.train_config(config, overrides, exp_dir / f"{config.stem}_anomaly_free{tag.replace(' ', '_')}", args)
    stream = run["metrics"]["stream"]
    primary = stream["incidents"]["score"]
    promise = stream["scores"][primary]["false_alarm"]
    measured = promise["measured"]
    alpha = run["metrics"]["threshold"]["false_alarm_rate"]
    result = {"stated_far": promise["bound"], "measured_far": measured["rate"], "ci_low": measured["low"],
              "ci_high": measured["high"]}
    reaches = measured["low"] <= promise["bound"]
    print(f"anomaly-free.csv ({config.stem}{tag}: {primary}, trained on the first 20 %, {run['seconds']:.0f} s): "
          f"false alarms on {measured['n_alarms']}/{measured['n_normals']} normal time steps = "
          f"{measured['rate']:.4f} (95% CI {measured['low']:.4f}-{measured['high']:.4f}) against the stated bound "
          f"{promise['bound']:.4f} (false_alarm_rate {alpha:g}): the interval "
          f"{'reaches down to' if reaches else 'lies above'} the bound", flush=True)
    return result


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Train every config, print its rows as measured, then the anomaly-free check; returns the JSON figures."""
    print_leaderboard()
    exp_dir = Path(args.experiments_dir or tempfile.mkdtemp(prefix="skab_benchmark_"))
    print(f"SKAB benchmark: configs {', '.join(c.stem for c in args.configs)}; data {args.data_dir}; "
          f"runs in {exp_dir}", flush=True)
    print(header(), flush=True)
    rows: list[dict[str, Any]] = []
    notebook: dict[str, Any] = {"rows": []}
    windows_seen: set[tuple[int, int]] = set()
    for config in args.configs:
        run = quality.train_config(config, common_overrides(args), exp_dir / config.stem, args)
        window, stride = run["metrics"]["data"]["window_length"], int(run["metrics"]["data"].get("stride") or 1)
        new_windows = (window, stride) not in windows_seen
        windows_seen.add((window, stride))
        for r in table_rows(run["metrics"], config.stem, with_baselines=new_windows, window=window, stride=stride):
            rows.append(r)
            print(format_row(r, f"({run['seconds']:.0f} s run)" if r["kind"] == "model" else "(baseline)"),
                  flush=True)
        rule_rows, normals, never = notebook_rule_rows(exp_dir / config.stem, config.stem, window)
        for r in rule_rows:
            notebook["rows"].append(r)
            print(format_row(r, f"(never flags {never}/{normals} normal test rows)"), flush=True)
        notebook.setdefault("never_flagged_normal_share", {})[config.stem] = never / normals if normals else None
    best = max((r for r in rows if r["kind"] == "model" and r["vus_pr_mean"] is not None),
               key=lambda r: r["vus_pr_mean"], default=None)
    best_baseline = max((r for r in rows if r["kind"] == "baseline" and r["vus_pr_mean"] is not None),
                        key=lambda r: r["vus_pr_mean"], default=None)
    if best and best_baseline:
        verdict = "at or above" if best["vus_pr_mean"] >= best_baseline["vus_pr_mean"] else "below"
        print(f"\nbest model by mean VUS-PR: {best['name']} {best['vus_pr_mean']:.3f}, {verdict} the best baseline "
              f"{best_baseline['name']} {best_baseline['vus_pr_mean']:.3f}", flush=True)
    if notebook["rows"]:
        print(notebook_verdict(notebook["rows"]), flush=True)
    result: dict[str, Any] = {"rows": rows, "notebook_rule": notebook}
    if not args.no_anomaly_free:
        print(flush=True)
        result["anomaly_free"] = anomaly_free_check(args, args.configs[0], exp_dir)
    if args.adapt_rate:
        result["adaptive"] = adaptive_check(args, args.configs[0], exp_dir)
    return result


def adaptive_check(args: argparse.Namespace, config: Path, exp_dir: Path) -> dict[str, Any]:
    """The first config again with ``evaluation.threshold_adapt_rate``: its SKAB rows, then anomaly-free.csv."""
    extra = (f"evaluation.threshold_adapt_rate={args.adapt_rate}",)
    tag = f" adaptive {args.adapt_rate:g}"
    print(f"\nWith adaptive thresholds (evaluation.threshold_adapt_rate={args.adapt_rate:g}):", flush=True)
    run = quality.train_config(config, [*common_overrides(args), *extra], exp_dir / f"{config.stem}_adaptive", args)
    rows = table_rows(run["metrics"], config.stem + tag, with_baselines=False)
    for r in rows:
        print(format_row(r, f"({run['seconds']:.0f} s run)"), flush=True)
    result: dict[str, Any] = {"adapt_rate": args.adapt_rate, "rows": rows}
    if not args.no_anomaly_free:
        result["anomaly_free"] = anomaly_free_check(args, config, exp_dir, extra, tag)
    return result


def main(argv: list[str] | None = None) -> int:
    return quality.cli_main(run_benchmark, parse_args(argv), "json_out", timed="benchmark")

if __name__ == "__main__":
    sys.exit(main())
