"""Smoke tests of the quality benchmarks (the full sweeps are not tests): every method row, finite AUCs."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import converter_benchmark, ecg5000_benchmark, quality, quality_tables as tables
from agents.detector.baselines import DISPLAY_NAMES

ECG_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/ECG5000"


def check_output(printed: str, results: dict[str, Any], summary: dict[str, Any], table: str, n_cells: int) -> None:
    """Every method of every config and every baseline: printed once per run, then in the table, in [0, 1]."""
    stems = [Path(c).stem for c in results["configs"]]
    methods = set(results["runs"][0]["methods"])
    assert set(DISPLAY_NAMES.values()) <= methods
    for stem in stems:
        assert any(m.startswith(f"{stem}: ") for m in methods), stem
    assert set(summary["methods"]) == methods and set(summary["runs"]) == set(stems)
    for method in methods:
        measured = [line for line in printed.splitlines() if re.match(rf"\s+\S.*\S  {re.escape(method)}\s+ROC", line)]
        assert len(measured) == 1, (method, measured)
        row = next(line for line in table.splitlines() if line.startswith(method + "  "))
        cells = re.findall(r"(-?\d+\.\d+) ± (\d+\.\d+)", row)
        assert len(cells) == n_cells, row
        assert all(math.isfinite(float(v)) for cell in cells for v in cell), row
        for key in ("roc_auc", "pr_auc"):
            stat = summary["methods"][method][key]
            assert 0.0 <= stat["mean"] <= 1.0 and math.isfinite(stat["std"]), (method, key, stat)
        assert 0.0 <= float(cells[0][0]) <= 1.0 and 0.0 <= float(cells[1][0]) <= 1.0, row
    for stem in stems:
        assert re.search(rf"^{stem}\s+\d+\.\d ± \d+\.\d", table, re.M), stem


def test_converter_benchmark_tiny_run(tmp_path: Path, capsys) -> None:
    """1 seed x 1 magnitude on 600 windows and 2 epochs, every converter config."""
    out_json = tmp_path / "results.json"
    code = converter_benchmark.main(["--seeds", "1", "--magnitudes", "6", "--set", "data.n_samples=600",
                                     "--set", "trainer.epochs=2", "--set-for", "vae_converter",
                                     "model.hidden_sizes=[32]", "--experiments-dir", str(tmp_path / "runs"),
                                     "--out", str(out_json)])
    printed = capsys.readouterr().out
    assert code == 0
    results = json.loads(out_json.read_text())
    assert [Path(c).name for c in results["configs"]] == [p.name for p in quality.configs_for("converter")]
    assert list(results["summary"]) == ["6"] and len(results["runs"]) == 1
    table = printed.split("=== anomaly magnitude 6")[1].split("=== summary")[0]
    kinds = {k for m in results["summary"]["6"]["methods"].values() for k in m["per_kind"]}
    assert kinds == {"voltage_spike", "current_oscillation", "temperature_drift"}
    check_output(printed, results, results["summary"]["6"], table, 4 + len(kinds))  # ROC AUC, PR AUC, base rate, F1, AUC per type
    summary = printed.split("=== summary")[1]
    for method in results["summary"]["6"]["methods"]:
        row = next(line for line in summary.splitlines() if line.startswith(method + "  "))
        assert 0.0 <= float(row.split()[-1]) <= 1.0, row


@pytest.mark.skipif(not (ECG_DIR / "ECG5000_TRAIN.txt").exists(), reason=f"shared ECG5000 data not at {ECG_DIR}")
def test_ecg5000_benchmark_tiny_run(tmp_path: Path, capsys) -> None:
    """1 seed, 1 epoch, hidden size 8 on the shared TRAIN file (merged protocol), every ECG5000 config."""
    out_json = tmp_path / "results.json"
    argv = ["--seeds", "1", "--set", f"data.data_dir={ECG_DIR}", "--set", "data.protocol=merged",
            "--set", "data.download=false", "--set", "trainer.epochs=1",
            "--experiments-dir", str(tmp_path / "runs"), "--out", str(out_json)]
    for stem in ("lstm_ecg5000", "gru_ecg5000"):
        argv += ["--set-for", stem, "model.hidden_size=8"]
    code = ecg5000_benchmark.main(argv)
    printed = capsys.readouterr().out
    assert code == 0
    results = json.loads(out_json.read_text())
    assert [Path(c).name for c in results["configs"]] == [p.name for p in quality.configs_for("ecg5000")]
    table = printed.split("=== ECG5000")[1]
    check_output(printed, results, results["summary"], table, 6)  # ROC AUC, PR AUC, base rate, F1, recall, FPR
    assert "lstm_ecg5000: reconstruction_mae" in results["summary"]["methods"]


def test_override_a_config_rejects_names_that_config(capsys) -> None:
    """A --set key one config's model does not take is a user error naming it and --set-for."""
    code = converter_benchmark.main(["--seeds", "1", "--magnitudes", "6", "--set", "model.no_such_key=3"])
    err = capsys.readouterr().err
    assert code == 2 and "model.no_such_key" in err and "--set-for" in err


def test_set_for_an_unknown_config_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        ecg5000_benchmark.parse_args(["--set-for", "nope", "model.hidden_size=8"])
    assert "not among the configs" in capsys.readouterr().err


def test_mean_std_over_seeds_and_undefined_values() -> None:
    measured = [{"methods": {"m": {**dict.fromkeys(tables.KEYS, v), "per_kind": {"spike": v}}},
                 "runs": {"c": {"seconds": v, "epochs": 2, "best_epoch": 1}}} for v in (0.5, 0.7, None)]
    agg = tables.aggregate(measured)
    assert agg["methods"]["m"]["roc_auc"] == pytest.approx({"mean": 0.6, "std": 0.1414213562})
    assert tables.cell(agg["methods"]["m"]["per_kind"]["spike"]) == "0.600 ± 0.141"
    assert tables.cell(tables.mean_std([None])) == "-" and tables.mean_std([0.3]) == {"mean": 0.3, "std": 0.0}
    assert agg["runs"]["c"]["epochs"] == {"mean": 2.0, "std": 0.0}


def test_all_models_table_has_every_method_with_its_time_per_run() -> None:
    from benchmarks import all_models

    measured = [{"methods": {"vae_converter: reconstruction": {}, "kNN distance (k=5)": {}},
                 "runs": {"vae_converter": {"seconds": s, "baseline_seconds": b}}} for s, b in ((10.0, 1.0), (12.0, 3.0))]
    seconds = all_models.seconds_per_method(measured)
    assert seconds["vae_converter: reconstruction"]["mean"] == 11.0 and seconds["kNN distance (k=5)"]["mean"] == 2.0
    stat = {"mean": 0.9, "std": 0.01}
    agg = {"methods": {m: {"roc_auc": stat, "pr_auc": stat, "f1": stat} for m in seconds}}
    table = all_models.markdown_table("Converter", agg, seconds)
    assert "| vae_converter: reconstruction | 0.900 ± 0.010 | 0.900 ± 0.010 | 0.900 ± 0.010 | 11.0 ± 1.4 |" in table
    assert "| kNN distance (k=5) |" in table and table.startswith("**Converter**")


def test_stream_benchmark_tiny_run(tmp_path: Path, capsys) -> None:
    """1 seed x 2 magnitudes of a short stream and 2 epochs, the VAE stream config: the run's own stream metrics."""
    from benchmarks import stream_benchmark

    out_json = tmp_path / "results.json"
    code = stream_benchmark.main(["--configs", "configs/vae_converter_stream.json", "--seeds", "1", "--magnitudes",
                                  "6", "3", "--baselines", "pca", "--set", "data.duration_s=240",
                                  "--set", "data.time_steps=40", "--set", "trainer.epochs=2",
                                  "--set", "model.hidden_sizes=[16]", "--set", "model.latent_dim=4",
                                  "--experiments-dir", str(tmp_path / "runs"), "--out", str(out_json)])
    printed = capsys.readouterr().out
    assert code == 0
    results = json.loads(out_json.read_text())
    assert list(results["summary"]) == ["6", "3"] and len(results["runs"]) == 2
    for mag, run in zip(("6", "3"), results["runs"]):
        metrics = json.loads((tmp_path / "runs" / f"mag_{mag}_seed_0_vae_converter_stream" / "out" /
                              "metrics.json").read_text())
        assert set(run["methods"]) == {f"vae_converter_stream: {n}" for n in metrics["stream"]["scores"]} | {
            "PCA reconstruction (10 components)"}
        for name, result in metrics["stream"]["scores"].items():
            kept = run["methods"][f"vae_converter_stream: {name}"]
            assert kept["vus_pr"] == result["vus_pr"] and kept["range_f1"] == result["range"]["f1"]
            assert kept["false_alarms_per_hour"] == result["false_alarms_per_hour"]
    summary = printed.split("=== summary: mean VUS-PR by magnitude ===")[1]
    row = next(line for line in summary.splitlines() if line.startswith("PCA reconstruction (10 components)  "))
    assert all(0.0 <= float(v) <= 1.0 for v in row.split()[-2:]), row
