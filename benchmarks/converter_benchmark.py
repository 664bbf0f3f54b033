"""Benchmark: the converter VAE's three scores vs scikit-learn baselines over a magnitude sweep.

For every anomaly magnitude (in noise stds of the affected sensor) and every seed,
the script trains ``configs/vae_converter.json`` through ``main.run`` and fits three
baselines on the same training normals of the same split (the dataset loader with
the run's seed), scaled like the VAE (per-sensor MinMax fitted on training normals)
and flattened to (N, T*F):

* ``IsolationForest``: ``-score_samples``, ``random_state=seed``;
* ``PCA reconstruction``: mean squared error of the projection on the leading
  10 components (``--pca-components``). Normal windows vary in about 8 directions
  (set point, load level and slew, ripple phase and frequency, ambient
  temperature): on the default data 8 components hold 96.7 % of the scaled
  variance and the rest is a flat sensor-noise floor, so 10 keeps all of the
  structure with a margin and leaves the noise out (capped at min(N - 1, T*F));
* ``kNN distance``: mean Euclidean distance to the 5 nearest training normals.

All methods are scored on the same test split (held-out normals plus every
anomaly). It prints, per magnitude, mean ± std over seeds of ROC AUC, PR AUC
(with the base rate) and ROC AUC per anomaly type, then a magnitude x method
summary of mean ROC AUC, and the wall time of each VAE run. Torch uses
``--threads`` intra-op threads (default 1): on a busy 2-core machine two threads
made a 10-epoch run 8x slower than one.

Usage:
    python benchmarks/converter_benchmark.py                      # 5 seeds x 6 magnitudes
    python benchmarks/converter_benchmark.py --quick              # smoke run
    python benchmarks/converter_benchmark.py --out results.json --set trainer.epochs=50
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "vae_converter.json"
VAE_SCORES = ("reconstruction", "latent_euclidean", "latent_mahalanobis")
BASELINES = ("IsolationForest", "PCA reconstruction", "kNN distance (k=5)")
METHODS = tuple(f"VAE {s}" for s in VAE_SCORES) + BASELINES
QUICK = {"seeds": 2, "magnitudes": [6.0, 2.0], "epochs": 30}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the benchmark."""
    p = argparse.ArgumentParser(description="VAE scores vs IsolationForest/PCA/kNN on the converter "
                                "data over seeds and anomaly magnitudes (mean ± std over seeds).")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="VAE config (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds 0..N-1 (default 5; 2 with --quick)")
    p.add_argument("--magnitudes", type=float, nargs="+", default=None,
                   help="anomaly magnitudes in noise stds (default 8 6 4 3 2 1; 6 2 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK['seeds']} seeds, magnitudes 6 and 2, {QUICK['epochs']} epochs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override for the VAE and the data, repeatable (seed and "
                   "data.anomaly_magnitude are set by the benchmark)")
    p.add_argument("--pca-components", type=int, default=10,
                   help="PCA baseline components (default %(default)s, see the module docstring)")
    p.add_argument("--experiments-dir", default=None,
                   help="where the VAE run folders go (default: a temporary folder, deleted at the end)")
    p.add_argument("--out", default=None, metavar="FILE", help="also write all results as JSON")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: many small models on a shared CPU run far "
                   "faster without thread oversubscription; 0 keeps torch's default)")
    p.add_argument("--verbose", action="store_true", help="show the VAE runs' own console logs")
    args = p.parse_args(argv)
    args.seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if args.quick else 5)
    if args.magnitudes is None:
        args.magnitudes = QUICK["magnitudes"] if args.quick else [8.0, 6.0, 4.0, 3.0, 2.0, 1.0]
    if args.quick:
        args.overrides = [f"trainer.epochs={QUICK['epochs']}", *args.overrides]
    if args.seeds < 1 or args.pca_components < 1 or args.threads < 0 or any(m <= 0 for m in args.magnitudes):
        p.error("--seeds and --pca-components must be >= 1, --threads >= 0, every magnitude > 0")
    return args


def pca_components(x_train: np.ndarray, wanted: int) -> int:
    """``wanted`` PCA components, capped at what the training normals (N, D) support: min(N - 1, D)."""
    return max(1, min(wanted, x_train.shape[0] - 1, x_train.shape[1]))


def baseline_scores(x_train: np.ndarray, x_eval: dict[str, np.ndarray], seed: int,
                    n_pca: int) -> tuple[dict[str, dict[str, np.ndarray]], int]:
    """Fit the baselines on training normals and score other splits (higher = more anomalous).

    Args:
        x_train: flattened scaled training normals (N, D).
        x_eval: ``{split name: flattened scaled windows}``.
        seed: IsolationForest ``random_state``.
        n_pca: PCA components wanted (capped by :func:`pca_components`).

    Returns:
        ``({split: {baseline: scores}}, PCA components used)``.
    """
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import NearestNeighbors

    k = pca_components(x_train, n_pca)
    forest = IsolationForest(random_state=seed).fit(x_train)
    pca = PCA(n_components=k).fit(x_train)
    knn = NearestNeighbors(n_neighbors=5).fit(x_train)
    out = {}
    for split, x in x_eval.items():
        recon = pca.inverse_transform(pca.transform(x))
        out[split] = {BASELINES[0]: -forest.score_samples(x),
                      BASELINES[1]: ((x - recon) ** 2).mean(axis=1),
                      BASELINES[2]: knn.kneighbors(x)[0].mean(axis=1)}
    return out, k


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Keep ROC AUC, PR AUC, base rate and ROC AUC per type of one score's metrics."""
    return {"roc_auc": result["roc_auc"], "pr_auc": result["pr_auc"], "base_rate": result["base_rate"],
            "per_kind": {k: v["roc_auc"] for k, v in result["per_kind"].items()}}


def check_same_test_split(scores_csv: Path, vae: dict[str, Any], kind: np.ndarray) -> None:
    """Raise RuntimeError unless the VAE's test windows (sizes, and kinds in order) are the baselines'."""
    same = vae["splits"]["test"] == {"n": len(kind), "n_anomalies": int((kind != "normal").sum())}
    if same and scores_csv.is_file():
        with open(scores_csv, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        same = "kind" not in (rows[0] if rows else {}) or [r["kind"] for r in rows] == kind.tolist()
    if not same:
        raise RuntimeError(f"{scores_csv.parent.parent.name}: the baselines' test split differs from the VAE's")


def run_one(args: argparse.Namespace, seed: int, magnitude: float, exp_dir: Path) -> dict[str, Any]:
    """Train the VAE and fit the baselines for one (seed, magnitude); returns their metrics."""
    import main as cli
    from agents.base import build_component
    from utils.core.config import load_config
    from utils.scoring.metrics import evaluate_scores
    from utils.core.registry import DATASETS
    from utils.scoring.scaler import Scaler
    from utils.scoring.thresholds import percentile_threshold

    name = f"m{magnitude:g}_s{seed}"
    overrides = [*args.overrides, f"experiments_dir={exp_dir}", f"exp_name={name}", f"seed={seed}",
                 f"data.anomaly_magnitude={magnitude}", "trainer.progress_bar=false",
                 "evaluation.make_plots=false"]
    t0 = time.perf_counter()
    sink = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        vae = cli.run(cli.parse_args([args.config, *(a for o in overrides for a in ("--set", o))]))
    vae_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    config = load_config(args.config, overrides)
    data = build_component(DATASETS, config.data, seed=config.seed)
    scaler = Scaler(config.evaluation.scaler).fit(data.train.x)
    flat = {s: scaler.transform(getattr(data, s).x).reshape(len(getattr(data, s)), -1)
            for s in ("train", "val", "test")}
    scores, n_pca = baseline_scores(flat["train"], {"val": flat["val"], "test": flat["test"]}, seed,
                                    args.pca_components)
    pct = config.evaluation.threshold_percentile
    thresholds = {m: percentile_threshold(s, pct) for m, s in scores["val"].items()}
    base = evaluate_scores(data.test.y, data.test.kind, scores["test"], thresholds)
    check_same_test_split(exp_dir / name / "out" / "scores.csv", vae, data.test.kind)
    methods = {f"VAE {s}": summarise(vae["scores"][s]) for s in VAE_SCORES}
    methods.update({m: summarise(base[m]) for m in BASELINES})
    training = vae["training"]
    print(f"  magnitude {magnitude:g}  seed {seed}: VAE {vae_seconds:5.1f} s ({training['epoch']} epochs, "
          f"best {training['best_epoch']}), baselines {time.perf_counter() - t0:4.1f} s (PCA k={n_pca})  "
          f"ROC AUC recon {methods['VAE reconstruction']['roc_auc']:.3f} "
          f"IF {methods['IsolationForest']['roc_auc']:.3f}", flush=True)
    return {"seed": seed, "magnitude": magnitude, "vae_seconds": vae_seconds, "vae_epochs": training["epoch"],
            "pca_components": n_pca, "methods": methods}


def mean_std(values: list[float | None]) -> dict[str, float | None]:
    """Mean and std (ddof=1; 0 for one value) of the defined values; None when none are."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return {"mean": None, "std": None}
    return {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}


def aggregate(runs: list[dict[str, Any]], magnitude: float) -> dict[str, Any]:
    """Mean ± std over seeds of every metric of every method at one magnitude."""
    rows = [r for r in runs if r["magnitude"] == magnitude]
    kinds = sorted({k for r in rows for m in r["methods"].values() for k in m["per_kind"]})
    out: dict[str, Any] = {"vae_seconds": mean_std([r["vae_seconds"] for r in rows]), "methods": {}}
    for method in METHODS:
        ms = [r["methods"][method] for r in rows]
        out["methods"][method] = {key: mean_std([m[key] for m in ms]) for key in ("roc_auc", "pr_auc", "base_rate")}
        out["methods"][method]["per_kind"] = {k: mean_std([m["per_kind"].get(k) for m in ms]) for k in kinds}
    return out


def _cell(stat: dict[str, float | None]) -> str:
    """``"mean ± std"`` with 3 decimals, or ``"-"`` when undefined."""
    return "-" if stat["mean"] is None else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def format_table(agg: dict[str, Any]) -> str:
    """One magnitude: rows = method/score, columns = ROC AUC, PR AUC, base rate, ROC AUC per type."""
    kinds = sorted({k for m in agg["methods"].values() for k in m["per_kind"]})
    headers = ["ROC AUC", "PR AUC", "base rate"] + [f"AUC[{k}]" for k in kinds]
    cells = {m: [_cell(v[key]) for key in ("roc_auc", "pr_auc", "base_rate")] +
             [_cell(v["per_kind"][k]) for k in kinds] for m, v in agg["methods"].items()}
    name_w = max(len("method / score"), *map(len, cells))
    widths = [max(len(h), *(len(c[i]) for c in cells.values())) for i, h in enumerate(headers)]
    lines = ["  ".join(["method / score".ljust(name_w)] + [h.rjust(w) for h, w in zip(headers, widths)])]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join([m.ljust(name_w)] + [c.rjust(w) for c, w in zip(row, widths)]) for m, row in cells.items()]
    return "\n".join(lines)


def format_summary(summary: dict[float, dict[str, Any]]) -> str:
    """Magnitude x method -> mean ROC AUC (rows = methods, columns = magnitudes, easy to hard)."""
    mags = list(summary)
    name_w = max(len(m) for m in METHODS)
    lines = ["  ".join(["mean ROC AUC".ljust(name_w)] + [f"mag {m:g}".rjust(7) for m in mags])]
    lines.append("-" * len(lines[0]))
    for method in METHODS:
        vals = [summary[m]["methods"][method]["roc_auc"]["mean"] for m in mags]
        lines.append("  ".join([method.ljust(name_w)] + [("-" if v is None else f"{v:.3f}").rjust(7) for v in vals]))
    secs = [summary[m]["vae_seconds"] for m in mags]
    lines.append("  ".join(["VAE wall time per run (s)".ljust(name_w)] +
                           [f"{s['mean']:.1f}".rjust(7) for s in secs]))
    return "\n".join(lines)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every (magnitude, seed), print the tables and return all results."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import torch

    seeds, threads_before = list(range(args.seeds)), torch.get_num_threads()
    exp_dir = Path(args.experiments_dir or tempfile.mkdtemp(prefix="converter_benchmark_"))
    print(f"Converter benchmark: config {args.config}, seeds {seeds}, magnitudes "
          f"{' '.join(f'{m:g}' for m in args.magnitudes)}, PCA components {args.pca_components}, "
          f"torch threads {args.threads or 'default'}, overrides {args.overrides or 'none'}", flush=True)
    start = time.perf_counter()
    try:
        torch.set_num_threads(args.threads or threads_before)
        runs = [run_one(args, seed, mag, exp_dir) for mag in args.magnitudes for seed in seeds]
    finally:
        torch.set_num_threads(threads_before)
        if args.experiments_dir is None:
            shutil.rmtree(exp_dir, ignore_errors=True)
    summary = {mag: aggregate(runs, mag) for mag in args.magnitudes}
    for mag, agg in summary.items():
        secs = agg["vae_seconds"]
        print(f"\n=== anomaly magnitude {mag:g} (noise stds), {len(seeds)} seeds, mean ± std; "
              f"VAE wall time {secs['mean']:.1f} ± {secs['std']:.1f} s per run ===")
        print(format_table(agg))
    print("\n=== summary: mean ROC AUC by magnitude (easy -> hard as listed) ===")
    print(format_summary(summary))
    total = time.perf_counter() - start
    print(f"\nTotal wall time {total:.0f} s for {len(runs)} VAE runs plus baselines.")
    results = {"config": args.config, "overrides": args.overrides, "seeds": seeds, "magnitudes": args.magnitudes,
               "methods": list(METHODS), "runs": runs, "total_seconds": total,
               "summary": {f"{m:g}": agg for m, agg in summary.items()}}
    if args.out:
        from utils.scoring.metrics import to_jsonable

        Path(args.out).write_text(json.dumps(to_jsonable(results), indent=2, allow_nan=False) + "\n")
        print(f"Results written to {args.out}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse options and run the benchmark; returns the exit code."""
    run_benchmark(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
