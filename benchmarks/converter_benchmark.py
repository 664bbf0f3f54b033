"""Benchmark: every converter config's scores vs the kNN / PCA / IsolationForest baselines over a magnitude sweep.

For every anomaly magnitude (in noise stds of the affected sensor, set as
``data.anomaly_magnitude``) and every seed, the script trains each config
(``--configs``, default: every ``configs/*.json`` with ``data.name`` ``converter``;
today ``vae_converter.json``) through ``python main.py`` and fits the baselines of
:mod:`agents.detector.baselines` on the same training normals of the same split,
scaled like the run (see :mod:`benchmarks.quality`):

* ``kNN distance (k=5)``: mean Euclidean distance to the 5 nearest training normals;
* ``PCA reconstruction (10 components)``: mean squared error of the projection on
  the leading 10 components. Normal windows vary in about 8 directions (set
  point, load level and slew, ripple phase and frequency, ambient temperature):
  on the default data 8 components hold 96.7 % of the scaled variance and the
  rest is a flat sensor-noise floor, so 10 keeps the structure and leaves the
  noise out;
* ``IsolationForest (100 trees)``: ``-score_samples``, ``random_state=seed``.

Every score of every run is a method (``vae_converter: reconstruction``, ...).
Each (run, method) row is printed as soon as it is measured; then, per
magnitude, mean ± std over seeds of ROC AUC, PR AUC (beside the base rate), F1
at the conformal validation threshold and ROC AUC per anomaly type, each
config's wall time per run, and a magnitude x method summary of mean ROC AUC.

Usage:
    python benchmarks/converter_benchmark.py                       # 5 seeds x 6 magnitudes, every config
    python benchmarks/converter_benchmark.py --quick               # 2 seeds, magnitudes 6 2, 30 epochs
    python benchmarks/converter_benchmark.py --configs configs/vae_converter.json --magnitudes 4 \\
        --set trainer.epochs=50 --set-for vae_converter model.hidden_sizes=[128] --out experiments/results.json
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

DATA_NAME = "converter"
QUICK = {"seeds": 2, "magnitudes": [6.0, 2.0], "overrides": ["trainer.epochs=30"]}
COLUMNS = [("ROC AUC", "roc_auc"), ("PR AUC", "pr_auc"), ("base rate", "base_rate"), ("F1", "f1")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the benchmark."""
    return quality.parse_sweep_args(argv, "Every converter config's scores vs kNN / PCA / IsolationForest over seeds "
                                    "and anomaly magnitudes (mean ± std over seeds).", DATA_NAME,
                                    [8.0, 6.0, 4.0, 3.0, 2.0, 1.0], 5, QUICK)


def format_summary(summary: dict[float, dict[str, Any]]) -> str:
    """Rows = methods (and each config's wall time), columns = magnitudes as given: mean ROC AUC."""
    mags = list(summary)
    rows = tables.by_magnitude(summary, "roc_auc")
    for stem in dict.fromkeys(s for agg in summary.values() for s in agg["runs"]):
        rows[f"{stem}: wall time per run (s)"] = [f"{summary[g]['runs'][stem]['seconds']['mean']:.1f}" for g in mags]
    return tables.format_table("mean ROC AUC", [f"mag {g:g}" for g in mags], rows)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every (magnitude, seed), print the tables and return all results (the JSON of ``--out``)."""
    start = time.perf_counter()
    measured, summary = quality.run_magnitude_sweep(args, "Converter benchmark", "converter_benchmark_")
    per_mag = len(args.seed_list)
    for mag, agg in summary.items():
        print(f"\n=== anomaly magnitude {mag:g} (noise stds): mean ± std over {per_mag} seed(s) ===")
        print(tables.methods_table(agg, COLUMNS, per_kind=True))
        print(tables.runs_table(agg))
    print("\n=== summary: mean ROC AUC by magnitude ===")
    print(format_summary(summary))
    print(f"\nTotal wall time {time.perf_counter() - start:.0f} s: {len(measured) * len(args.configs)} run(s) "
          "plus baselines.")
    return quality.sweep_results(args, summary, measured)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse options and run the benchmark; returns the exit code (2 for a bad config or data)."""
    return quality.cli_main(run_benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
