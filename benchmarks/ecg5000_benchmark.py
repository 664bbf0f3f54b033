"""Benchmark: every ECG5000 config's scores vs the kNN / PCA / IsolationForest baselines, over seeds.

For every seed the script trains each config (``--configs``, default: every
``configs/*.json`` with ``data.name`` ``ecg5000``; today ``gru_ecg5000.json`` and
``lstm_ecg5000.json``) through ``python main.py`` and fits the baselines of
:mod:`agents.detector.baselines` on the same training normals of the same split,
scaled like the run (the config's ``evaluation.scaler``) and flattened to (N, T*F)
(see :mod:`benchmarks.quality`):

* ``kNN distance (k=5)``: mean Euclidean distance to the 5 nearest training normals;
* ``PCA reconstruction (10 components)``: mean squared error of the projection on
  the leading 10 components (capped at min(N - 1, T*F));
* ``IsolationForest (100 trees)``: ``-score_samples``, ``random_state=seed``.

Data: ``--protocol`` (default ``merged``: the shared TRAIN file alone is split into
train/val normals and a test mix), ``--data-dir`` (default ``../shared/data/ECG5000``)
and ``--download`` are shorthands for ``--set data.protocol=...``,
``--set data.data_dir=...`` and ``--set data.download=true|false``, applied before
``--set``, so a ``--set`` of the same key wins.

Every method is scored on the same test split and thresholded for the run's
false-alarm rate (``evaluation.false_alarm_rate``, split-conformal on its scores of
the same validation normals), so its F1 is what a deployed detector would get. Each
(run, method) row is printed as soon as it is measured; then the table of mean ±
std over seeds of ROC AUC, PR AUC (beside the base rate, the PR AUC of a random
detector), F1, recall and false-positive rate, and each config's wall time per run.

Usage:
    python benchmarks/ecg5000_benchmark.py                     # shared TRAIN file, merged, 5 seeds, every config
    python benchmarks/ecg5000_benchmark.py --data-dir data/ECG5000 --protocol official --download
    python benchmarks/ecg5000_benchmark.py --configs configs/gru_ecg5000.json --seeds 3 --set trainer.epochs=20 \\
        --out experiments/ecg.json
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

DATA_NAME = "ecg5000"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "ECG5000"
COLUMNS = [("ROC AUC", "roc_auc"), ("PR AUC", "pr_auc"), ("base rate", "base_rate"), ("F1", "f1"),
           ("recall", "recall"), ("FPR", "fpr")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the benchmark."""
    p = argparse.ArgumentParser(description="Every ECG5000 config's scores vs kNN / PCA / IsolationForest, "
                                "mean ± std over seeds.")
    quality.add_common_args(p, DATA_NAME)
    p.add_argument("--protocol", default="merged", choices=("merged", "official"),
                   help="ECG5000 protocol, data.protocol (default %(default)s; official needs the TEST file)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                   help="folder with ECG5000_TRAIN (and TEST) files, data.data_dir (default: %(default)s)")
    p.add_argument("--download", action="store_true", help="download the data when missing (data.download)")
    args = p.parse_args(argv)
    args.default_overrides = [f"data.data_dir={args.data_dir}", f"data.protocol={args.protocol}",
                              f"data.download={str(args.download).lower()}", "data.progress=false"]
    quality.check_common_args(p, args, DATA_NAME)
    return args


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every seed, print the tables and return all results (the JSON of ``--out``)."""
    print(f"ECG5000 benchmark: configs {' '.join(c.stem for c in args.configs)}, seeds {args.seed_list}, "
          f"baselines {' '.join(args.baselines)}, threads per run {args.threads or 'inherited'}, overrides "
          f"{[*args.default_overrides, *args.overrides]}, per config {args.set_for or 'none'}", flush=True)
    start = time.perf_counter()
    measured = quality.run_jobs(args, [(f"seed {s}", s, []) for s in args.seed_list], "ecg5000_benchmark_")
    agg = tables.aggregate(measured)
    runs = measured[0]["runs"]
    splits = next(iter(runs.values()))["splits"]
    rates = {stem: run["false_alarm_rate"] for stem, run in runs.items()}
    at = (f"the threshold for a false-alarm rate of {next(iter(rates.values())):g}" if len(set(rates.values())) == 1
          else "each config's threshold (false-alarm rate " + ", ".join(f"{s} {a:g}" for s, a in rates.items()) + ")")
    print(f"\n=== ECG5000: mean ± std over {len(args.seed_list)} seed(s) ===")
    print(f"split (seed {args.seed_list[0]}): train {splits['train']['n']} normals, val {splits['val']['n']} "
          f"normals, test {splits['test']['n']} beats ({splits['test']['n_anomalies']} anomalies); F1, recall "
          f"and FPR at {at} (on each method's validation-normal scores)")
    print(tables.methods_table(agg, COLUMNS))
    print(tables.runs_table(agg))
    print(f"Total wall time {time.perf_counter() - start:.0f} s.")
    return {**quality.options_of(args), "summary": agg, "runs": measured}


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse options and run the benchmark; returns the exit code (2 for a bad config or data)."""
    return quality.cli_main(run_benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
