"""Does the conformal threshold keep its promise? Test false-alarm rates over seeds, for every score.

Each seed trains the config (``python main.py CONFIG --set seed=S ...``, a fresh process, see
:func:`benchmarks.quality.train_config`) with every score the model has and the baselines. The
run's own threshold (``evaluation.false_alarm_rate``) gives one row per score and baseline from
``out/metrics.json``; for the other ``--alphas`` the run's detector (``Detector.load``) gives the
calibration scores, and its test scores (``out/scores.csv``) are thresholded again, so no
retraining is needed. A row prints as soon as it is measured; the summary gives, per score and
alpha, the mean test false-alarm rate over seeds, its standard error (seed-to-seed), the mean
bound ``(n + 1 - k)/(n + 1)`` and whether ``mean <= alpha + 2 SE`` (valid within sampling error).

The promise is marginal: ``E[false-alarm rate] <= bound <= alpha`` over the draw of calibration and
test normals, which is what the mean over seeds estimates; a single seed may lie above alpha.

Usage:
    python benchmarks/false_alarm_validity.py                          # vae_converter, 20 seeds, 0.01 0.05 0.1
    python benchmarks/false_alarm_validity.py --seeds 3 --set trainer.epochs=5 --alphas 0.05
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import quality  # noqa: E402
from benchmarks.quality_tables import format_table, mean_std  # noqa: E402
from utils.core.paths import user_path  # noqa: E402

ALL_SCORES = {"vae": ["reconstruction", "reconstruction_mae", "error_gaussian", "latent_euclidean",
                      "latent_mahalanobis"]}
DEFAULT_SCORES = ["reconstruction", "reconstruction_mae", "error_gaussian"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=user_path, default=quality.CONFIGS_DIR / "vae_converter.json")
    p.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.01, 0.05, 0.1])
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of each run (0: inherited)")
    p.add_argument("--verbose", action="store_true", help="show each run's console output")
    p.add_argument("--experiments-dir", type=user_path, help="keep the run folders here (default: temporary)")
    p.add_argument("--out", type=user_path, help="write all results as JSON")
    args = p.parse_args(argv)
    if args.seeds < 1 or not all(0 <= a < 1 for a in args.alphas):
        p.error(f"--seeds must be >= 1 (got {args.seeds}) and every --alphas value in [0, 1) (got {args.alphas})")
    quality.check_results_path(p, args.out)
    return args


def seed_overrides(args: argparse.Namespace, seed: int) -> list[str]:
    """The benchmark's fixed settings, then the user's ``--set`` (which win)."""
    model = json.loads(args.config.read_text(encoding="utf-8"))["model"]["name"]
    scores = ALL_SCORES.get(model, DEFAULT_SCORES)
    return [f"seed={seed}", "trainer.progress_bar=false", "evaluation.make_plots=false",
            f"evaluation.false_alarm_rate={args.alphas[0]}", "evaluation.threshold_percentile=null",
            f"evaluation.scores={json.dumps(scores)}", *args.overrides]


def rates_of_run(run_dir: Path, alphas: list[float]) -> dict[str, dict[float, dict[str, float]]]:
    """``{method: {alpha: {"rate", "bound", "n"}}}`` of one finished run, measured on its test normals."""
    from agents.detector.detector import Detector
    from agents.detector.thresholds import conformal_threshold

    metrics = json.loads((run_dir / "out" / "metrics.json").read_text(encoding="utf-8"))
    out: dict[str, dict[float, dict[str, float]]] = {}
    for name, result in {**metrics["scores"], **metrics["baselines"]}.items():
        fa = result["false_alarm"]
        out[name] = {fa["alpha"]: {"rate": fa["measured"]["rate"], "bound": fa["bound"], "n": fa["n"]}}
    detector = Detector.load(run_dir, device="cpu")
    with open(run_dir / "out" / "scores.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    normal = np.array([row["label"] == "0" for row in rows])
    for name, cal in detector.calibration.items():
        scores = np.array([float(row[f"score_{name}"]) for row in rows])[normal]
        for alpha in alphas[1:]:
            t = conformal_threshold(cal, alpha)
            out[name][alpha] = {"rate": float(np.mean(scores > t.threshold)), "bound": t.bound, "n": t.n}
    return out


def summarise(per_seed: list[dict[str, dict[float, dict[str, float]]]], alphas: list[float]) -> dict[str, Any]:
    """Mean test false-alarm rate per (method, alpha) with its standard error and the validity check."""
    summary: dict[str, Any] = {}
    for method in per_seed[0]:
        for alpha in alphas:
            cells = [seed[method][alpha] for seed in per_seed if alpha in seed.get(method, {})]
            if not cells:
                continue
            rates = [c["rate"] for c in cells]
            stat = mean_std(rates)
            se = (stat["std"] or 0.0) / np.sqrt(len(rates))
            summary.setdefault(method, {})[alpha] = {
                "mean": stat["mean"], "se": se, "max": max(rates), "seeds": len(rates),
                "bound": float(np.mean([c["bound"] for c in cells])), "n": int(np.mean([c["n"] for c in cells])),
                "valid": stat["mean"] <= alpha + 2 * se}
    return summary


def format_summary(summary: dict[str, Any], alphas: list[float]) -> str:
    headers = [f"alpha={a:g}: mean ± SE (bound) ok" for a in alphas]
    rows = {}
    for method, by_alpha in summary.items():
        rows[method] = [(f"{c['mean']:.4f} ± {c['se']:.4f} ({c['bound']:.4f}) {'yes' if c['valid'] else 'NO'}"
                         if (c := by_alpha.get(a)) else "-") for a in alphas]
    return format_table("method", headers, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from utils.core.errors import UserError

    root = Path(args.experiments_dir or tempfile.mkdtemp(prefix="false_alarm_validity_")).resolve()
    print(f"False-alarm validity: {args.config.name}, seeds 0..{args.seeds - 1}, alphas {args.alphas}, "
          f"overrides {args.overrides}", flush=True)
    per_seed = []
    try:
        for seed in range(args.seeds):
            run_dir = root / f"seed_{seed}"
            run = quality.train_config(args.config, seed_overrides(args, seed), run_dir, args)
            rates = rates_of_run(run_dir, args.alphas)
            per_seed.append(rates)
            for method, by_alpha in rates.items():
                cells = "  ".join(f"alpha {a:g}: {c['rate']:.4f} (bound {c['bound']:.4f}, n {c['n']})"
                                  for a, c in sorted(by_alpha.items()))
                print(f"seed {seed:2d}  {method:45s} {cells}   [{run['seconds']:.0f} s]", flush=True)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if args.experiments_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    summary = summarise(per_seed, args.alphas)
    print(f"\n=== Test false-alarm rate over {len(per_seed)} seeds (mean ± standard error; the mean bound; "
          "ok = mean <= alpha + 2 SE) ===")
    print(format_summary(summary, args.alphas))
    if args.out:
        quality.write_results(args.out, {"config": str(args.config), "alphas": args.alphas,
                                         "overrides": args.overrides, "per_seed": per_seed, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
