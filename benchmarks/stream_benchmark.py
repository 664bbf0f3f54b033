"""Benchmark on converter streams: every ``converter_stream`` config and the baselines, per time step.

For every anomaly magnitude (``data.anomaly_magnitude``, in noise stds of the affected sensor) and
seed, each config (``--configs``, default: every ``configs/*.json`` with ``data.name``
``converter_stream``) is trained through ``python main.py`` (see :mod:`benchmarks.quality`) on one
simulated recording and evaluated on its contiguous test stretch, time step by time step
(``metrics.json``'s ``stream`` section, :mod:`agents.stream_evaluation`): VUS-PR (TSB-AD's recommended
measure), VUS-ROC, range-based F1 (Tatbul et al., flat bias), event recall and false alarms per hour
at the deployed threshold, and point-adjusted F1 (optimistic, for comparison only). The baselines
(kNN, PCA, IsolationForest) are the run's own, fitted on the same training windows and evaluated
the same way. Each (run, method) row is printed as soon as it is measured; then, per magnitude,
mean ± std over seeds, and a magnitude x method summary of VUS-PR.

Usage:
    python benchmarks/stream_benchmark.py                          # 3 seeds x magnitudes 6 4 2, every config
    python benchmarks/stream_benchmark.py --quick                  # 1 seed, magnitudes 6 2, 5 epochs, 300 s
    python benchmarks/stream_benchmark.py --configs configs/vae_converter_stream.json --magnitudes 3 --seeds 5
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import quality, quality_tables as tables  # noqa: E402

DATA_NAME = "converter_stream"
QUICK = {"seeds": 1, "magnitudes": [6.0, 2.0], "overrides": ["trainer.epochs=5", "data.duration_s=300"]}
#: (header, key) of the numbers kept per (run, method).
COLUMNS = [("VUS-PR", "vus_pr"), ("VUS-ROC", "vus_roc"), ("range F1", "range_f1"), ("event recall", "event_recall"),
           ("false alarms/h", "false_alarms_per_hour"), ("PA-F1 (optimistic)", "pa_f1")]
KEYS = tuple(key for _, key in COLUMNS)


def summarise_stream(result: dict[str, Any]) -> dict[str, Any]:
    """The benchmarked numbers of one score's stream metrics (``metrics.json``: ``stream.scores.<name>``)."""
    return {"vus_pr": result["vus_pr"], "vus_roc": result["vus_roc"], "range_f1": result["range"]["f1"],
            "event_recall": result["event_recall"], "false_alarms_per_hour": result["false_alarms_per_hour"],
            "pa_f1": result["point_adjusted_f1_OPTIMISTIC"]}


def print_stream_row(tag: str, method: str, summary: dict[str, Any], note: str) -> None:
    """One measured (run, method) row, printed at once."""
    fa = summary["false_alarms_per_hour"]
    cells = "  ".join(f"{label} {tables.num(summary[key])}" for label, key in
                      (("VUS-PR", "vus_pr"), ("range F1", "range_f1"), ("event recall", "event_recall")))
    print(f"  {tag}  {method:<48} {cells}  FA/h {'-' if fa is None else f'{fa:.1f}'}  ({note})", flush=True)


def _stream_results(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if "stream" not in metrics:
        raise ValueError("a run wrote no stream metrics: benchmark configs with data.name converter_stream only")
    return metrics["stream"]["scores"], metrics["stream"]["baselines"]


STREAM = quality.ResultView(_stream_results, summarise_stream, print_stream_row)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the benchmark."""
    return quality.parse_sweep_args(argv, "Every converter_stream config and the baselines on converter streams, "
                                    "per time step, over seeds and anomaly magnitudes (mean ± std over seeds).",
                                    DATA_NAME, [6.0, 4.0, 2.0], 3, QUICK)


def format_summary(summary: dict[float, dict[str, Any]]) -> str:
    """Rows = methods, columns = magnitudes: mean VUS-PR."""
    return tables.format_table("mean VUS-PR", [f"mag {g:g}" for g in summary], tables.by_magnitude(summary, "vus_pr"))


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every (magnitude, seed), print the tables and return all results (the JSON of ``--out``)."""
    start = time.perf_counter()
    measured, summary = quality.run_magnitude_sweep(args, "Stream benchmark", "stream_benchmark_", STREAM, KEYS)
    per_mag = len(args.seed_list)
    for mag, agg in summary.items():
        print(f"\n=== anomaly magnitude {mag:g} (noise stds), per time step: mean ± std over {per_mag} seed(s) ===")
        print(tables.methods_table(agg, COLUMNS))
        print(tables.runs_table(agg))
    print("\n=== summary: mean VUS-PR by magnitude ===")
    print(format_summary(summary))
    print(f"\nTotal wall time {time.perf_counter() - start:.0f} s: {len(measured) * len(args.configs)} run(s).")
    return quality.sweep_results(args, summary, measured)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse options and run the benchmark; returns the exit code (2 for a bad config or data)."""
    return quality.cli_main(run_benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
