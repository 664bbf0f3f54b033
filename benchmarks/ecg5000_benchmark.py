"""Benchmark: the recurrent autoencoder on ECG5000 vs scikit-learn baselines, over seeds.

For every seed the script trains ``configs/lstm_ecg5000.json`` (or ``--config``)
through the agent, exactly as ``main.py`` does, and fits three baselines on the
same training normals of the same split, scaled like the autoencoder (the
config's ``evaluation.scaler``) and flattened to (N, T*F):

* ``kNN distance``: mean Euclidean distance to the ``--knn-k`` nearest training normals;
* ``PCA reconstruction``: mean squared error of the projection on the leading
  ``--pca-components`` components (capped at min(N - 1, T*F));
* ``IsolationForest``: ``-score_samples``, 200 trees, ``random_state=seed``.

Every method is scored on the same test split and thresholded at the same
percentile (``evaluation.threshold_percentile``) of its scores on the same
validation normals, so its F1 is what a deployed detector would get. The table
gives mean ± std over seeds of ROC AUC, PR AUC (next to the base rate, the PR AUC
of a random detector), and F1, recall and false-positive rate at that threshold,
followed by the autoencoder's epoch time and training throughput. When the agent
offers out-of-sample validation scores (``threshold_scores``) that the run's own
thresholds did not use, an extra row shows the AE thresholded on those.

Usage:
    python benchmarks/ecg5000_benchmark.py                  # shared TRAIN file, merged, 5 seeds
    python benchmarks/ecg5000_benchmark.py --data-dir data/ECG5000 --protocol official
    python benchmarks/ecg5000_benchmark.py --config configs/gru_ecg5000.json --seeds 3 --set trainer.epochs=20
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "lstm_ecg5000.json"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "ECG5000"
AE_SCORES = ("reconstruction_mae", "error_gaussian")
BASELINES = ("kNN distance", "PCA reconstruction", "IsolationForest")
METRICS = (("roc_auc", "ROC AUC"), ("pr_auc", "PR AUC"), ("f1", "F1"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the benchmark."""
    p = argparse.ArgumentParser(description="Recurrent AE (two scores) vs kNN / PCA / IsolationForest on "
                                "ECG5000, mean ± std over seeds.")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="agent config (default: %(default)s)")
    p.add_argument("--protocol", default="merged", choices=("merged", "official"),
                   help="ECG5000 protocol (default %(default)s; official needs the TEST file)")
    p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                   help="folder with ECG5000_TRAIN (and TEST) files (default: %(default)s)")
    p.add_argument("--download", action="store_true", help="download the data when missing (data.download)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (default %(default)s)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds run from here (default %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override, repeatable (seed, data_dir, protocol are set by the benchmark)")
    p.add_argument("--knn-k", type=int, default=5, help="neighbours of the kNN baseline (default %(default)s)")
    p.add_argument("--pca-components", type=int, default=10, help="PCA baseline components (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--experiments-dir", default=None,
                   help="keep the run folders here (default: a temporary folder, deleted at the end)")
    args = p.parse_args(argv)
    if min(args.seeds, args.knn_k, args.pca_components) < 1 or args.first_seed < 0:
        p.error("--seeds, --knn-k and --pca-components must be >= 1, --first-seed >= 0")
    return args


def train_autoencoder(args: argparse.Namespace, seed: int, exp_dir: Path) -> tuple[Any, dict[str, Any], list[float]]:
    """Build, train and evaluate the agent of ``args.config`` for one seed, as ``main.run`` does.

    Returns:
        ``(agent, metrics of out/metrics.json, seconds of each training pass)``.
    """
    import agents  # noqa: F401  (fills the registries)
    from utils.core.config import load_config
    from utils.core.registry import AGENTS
    from utils.runs.run_folder import check_run_dir, create_run_dir

    overrides = [*args.overrides, f"experiments_dir={exp_dir}", f"exp_name=ecg5000_bench_seed{seed}",
                 f"seed={seed}", f"data.data_dir={args.data_dir}", f"data.protocol={args.protocol}",
                 f"data.download={str(args.download).lower()}", "data.progress=false",
                 "trainer.progress_bar=false", "evaluation.make_plots=false"]
    config = load_config(args.config, overrides)
    run_dir = check_run_dir(config, resume=False)
    agent = AGENTS.get(config.agent)(config, run_dir)
    create_run_dir(config, resume=False)
    epoch_seconds: list[float] = []
    train_one_epoch = agent.train_one_epoch

    def timed(epoch: int) -> dict[str, float]:
        t0 = time.perf_counter()
        logs = train_one_epoch(epoch)
        epoch_seconds.append(time.perf_counter() - t0)
        return logs

    agent.train_one_epoch = timed
    return agent, agent.run(), epoch_seconds


def baseline_scores(x_train: np.ndarray, x_eval: dict[str, np.ndarray], seed: int, k: int,
                    n_pca: int) -> dict[str, dict[str, np.ndarray]]:
    """Fit the baselines on training normals and score other splits (higher = more anomalous).

    Args:
        x_train: flattened scaled training normals, (N, D).
        x_eval: ``{split name: flattened scaled windows (M, D)}``.
        seed: IsolationForest ``random_state``.
        k: neighbours of the kNN distance.
        n_pca: PCA components wanted, capped at min(N - 1, D).

    Returns:
        ``{split: {baseline: scores (M,)}}``.
    """
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import NearestNeighbors

    knn = NearestNeighbors(n_neighbors=min(k, len(x_train))).fit(x_train)
    pca = PCA(n_components=max(1, min(n_pca, len(x_train) - 1, x_train.shape[1]))).fit(x_train)
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(x_train)
    out = {}
    for split, x in x_eval.items():
        recon = pca.inverse_transform(pca.transform(x))
        out[split] = {BASELINES[0]: knn.kneighbors(x)[0].mean(axis=1),
                      BASELINES[1]: ((x - recon) ** 2).mean(axis=1),
                      BASELINES[2]: -forest.score_samples(x)}
    return out


def evaluate_baselines(agent: Any, args: argparse.Namespace, seed: int) -> dict[str, dict[str, Any]]:
    """Baselines on the agent's own split and scaler, thresholded like the agent's scores."""
    from utils.scoring.metrics import evaluate_scores
    from utils.scoring.thresholds import percentile_threshold

    data = agent.data
    flat = {s: agent.scaler.transform(getattr(data, s).x).reshape(len(getattr(data, s)), -1)
            for s in ("train", "val", "test")}
    scores = baseline_scores(flat["train"], {"val": flat["val"], "test": flat["test"]}, seed,
                             args.knn_k, args.pca_components)
    pct = agent.config.evaluation.threshold_percentile
    thresholds = {m: percentile_threshold(s, pct) for m, s in scores["val"].items()}
    return evaluate_scores(data.test.y, data.test.kind, scores["test"], thresholds)


def cross_fitted_rows(agent: Any, used: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The AE's scores thresholded on the agent's out-of-sample validation scores, if it has them.

    ``error_gaussian`` is fitted on the validation normals, so thresholds on their
    in-sample scores are too low; ``agent.threshold_scores`` cross-fits them.

    Args:
        agent: the trained agent (best weights and score statistics loaded).
        used: ``{score: threshold}`` the run itself used (metrics.json); only
            scores whose cross-fitted threshold differs get a row.
    """
    import torch

    from utils.scoring.metrics import evaluate_scores
    from utils.scoring.thresholds import percentile_threshold

    if not hasattr(agent, "threshold_scores"):
        return {}
    test = agent.data.test
    with torch.inference_mode():
        val = agent.threshold_scores(agent.val_x)
        scores = agent.score(agent.to_tensor(test.x))
    pct = agent.config.evaluation.threshold_percentile
    thresholds = {name: percentile_threshold(s, pct) for name, s in val.items()}
    names = [name for name in thresholds if thresholds[name] != used.get(name)]
    results = evaluate_scores(test.y, test.kind, {n: scores[n] for n in names}, thresholds)
    return {f"recurrent AE: {n} (cross-fitted threshold)": results[n] for n in names}


def run_seed(args: argparse.Namespace, seed: int, exp_dir: Path) -> dict[str, Any]:
    """One seed: the autoencoder and the baselines; returns their metrics and timings."""
    t0 = time.perf_counter()
    agent, metrics, epoch_seconds = train_autoencoder(args, seed, exp_dir)
    wall = time.perf_counter() - t0
    methods = {f"recurrent AE: {s}": metrics["scores"][s] for s in AE_SCORES}
    methods.update(cross_fitted_rows(agent, metrics["threshold"]["values"]))
    methods.update(evaluate_baselines(agent, args, seed))
    n_train = len(agent.data.train)
    result = {"seed": seed, "methods": methods, "wall_seconds": wall, "n_train": n_train,
              "epochs": len(epoch_seconds), "best_epoch": metrics["training"]["best_epoch"],
              "epoch_seconds": float(np.median(epoch_seconds)),
              "samples_per_second": n_train / float(np.median(epoch_seconds)),
              "splits": metrics["splits"], "percentile": metrics["threshold"]["percentile"]}
    aucs = "  ".join(f"{m.split(': ')[-1]} {v['roc_auc']:.3f}" for m, v in methods.items() if "(" not in m)
    print(f"  seed {seed}: AE {wall:5.1f} s ({result['epochs']} epochs, best {result['best_epoch']}, "
          f"{result['epoch_seconds']:.2f} s/epoch)  ROC AUC: {aucs}", flush=True)
    return result


def mean_std(values: list[float | None], fmt: str = ".3f") -> str:
    """``"mean ± std"`` (ddof=1) of the defined values, ``"-"`` when none are."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return "-"
    std = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
    return f"{vals.mean():{fmt}} ± {std:{fmt}}"


def format_table(runs: list[dict[str, Any]], percentile: float) -> str:
    """Rows = methods; columns = ROC AUC, PR AUC, base rate, F1 at the validation percentile."""
    headers = [name for _, name in METRICS[:2]] + ["base rate", f"F1 @ val p{percentile:g}", "recall", "FPR"]
    rows = {}
    for method in runs[0]["methods"]:
        res = [r["methods"][method] for r in runs]
        fpr = [m["confusion_matrix"][0][1] / max(1, sum(m["confusion_matrix"][0])) for m in res]
        rows[method] = ([mean_std([m[key] for m in res]) for key, _ in METRICS[:2]] +
                        [mean_std([m["base_rate"] for m in res]), mean_std([m["f1"] for m in res]),
                         mean_std([m["recall"] for m in res]), mean_std(fpr)])
    name_w = max(len("method"), *map(len, rows))
    widths = [max(len(h), *(len(row[i]) for row in rows.values())) for i, h in enumerate(headers)]
    lines = ["  ".join(["method".ljust(name_w)] + [h.rjust(w) for h, w in zip(headers, widths)])]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join([m.ljust(name_w)] + [c.rjust(w) for c, w in zip(row, widths)]) for m, row in rows.items()]
    return "\n".join(lines)


def format_speed(runs: list[dict[str, Any]]) -> str:
    """Epoch time, training throughput and wall time of the autoencoder runs."""
    return (f"Recurrent AE training: {runs[0]['n_train']} training normals, "
            f"{mean_std([r['epochs'] for r in runs], '.0f')} epochs per run (best epoch "
            f"{mean_std([r['best_epoch'] for r in runs], '.0f')}); training pass (median epoch) "
            f"{mean_std([r['epoch_seconds'] for r in runs], '.2f')} s/epoch = "
            f"{mean_std([r['samples_per_second'] for r in runs], '.0f')} samples/s; wall time per run "
            f"(training + evaluation) {mean_std([r['wall_seconds'] for r in runs], '.1f')} s")


def run_benchmark(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run every seed, print the table and return the per-seed results."""
    import torch

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    exp_dir = Path(args.experiments_dir or tempfile.mkdtemp(prefix="ecg5000_benchmark_"))
    print(f"ECG5000 benchmark: config {args.config}, protocol {args.protocol}, data {args.data_dir}, "
          f"seeds {seeds}, kNN k={args.knn_k}, PCA components {args.pca_components}, torch threads "
          f"{torch.get_num_threads()}, overrides {args.overrides or 'none'}", flush=True)
    start = time.perf_counter()
    try:
        runs = [run_seed(args, seed, exp_dir) for seed in seeds]
    finally:
        if args.experiments_dir is None:
            shutil.rmtree(exp_dir, ignore_errors=True)
    splits = runs[0]["splits"]
    percentile = runs[0]["percentile"]
    print(f"\n=== ECG5000, protocol {args.protocol}: mean ± std over {len(seeds)} seeds ===")
    print(f"split (seed {seeds[0]}): train {splits['train']['n']} normals, val {splits['val']['n']} normals, "
          f"test {splits['test']['n']} beats ({splits['test']['n_anomalies']} anomalies); thresholds at the "
          f"{percentile:g}th percentile of each method's validation-normal scores")
    print(format_table(runs, percentile))
    print(format_speed(runs))
    print(f"Total wall time {time.perf_counter() - start:.0f} s.")
    return runs


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse options and run the benchmark; returns the exit code."""
    run_benchmark(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
