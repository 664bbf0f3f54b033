"""Smoke test of benchmarks/skab.py (the full run is no test): every row printed as measured, the leaderboard, the
anomaly-free line, and the JSON schema, on 3 files for 2 epochs."""
from __future__ import annotations

import json
import math
import re

import pytest

from benchmarks import skab
from tests.helpers import REPO_ROOT
from agents.detector.baselines import DISPLAY_NAMES

ROW_KEYS = {"name", "kind", "f1", "far_pct", "mar_pct", "vus_pr_mean", "event_recall"}


def test_quick_run_prints_every_row_and_writes_the_schema(tmp_path, capsys):
    out = tmp_path / "skab.json"
    assert skab.main(["--quick", "--configs", str(REPO_ROOT / "configs" / "vae_skab.json"),
                      "--experiments-dir", str(tmp_path / "runs"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert {r["kind"] for r in result["rows"]} == {"model", "baseline"}
    assert {r["name"] for r in result["rows"] if r["kind"] == "baseline"} == {
        f"{name}, 60-row windows" for name in DISPLAY_NAMES.values()}
    for r in result["rows"]:
        assert set(r) == ROW_KEYS
        assert 0 <= r["far_pct"] <= 100 and 0 <= r["mar_pct"] <= 100 and 0 <= r["vus_pr_mean"] <= 1, r
        f1 = re.escape(f"{r['f1']:.3f}")
        assert re.search(rf"^{re.escape(r['name'])}\s+{f1}\s", printed, re.M), r["name"]
    for name, f1, far, mar in skab.LEADERBOARD:
        assert re.search(rf"^published: {re.escape(name)}\s+{f1:.3f}\s+{far:.2f}\s+{mar:.2f}", printed, re.M)
    notebook = result["notebook_rule"]
    assert {r["name"] for r in notebook["rows"]} == {
        r["name"] + " [notebook rule]" for r in result["rows"] if r["kind"] == "model"}
    for r in notebook["rows"]:
        assert 0 <= r["far_pct"] <= 100 and 0 <= r["mar_pct"] <= 100 and 0 <= r["f1"] <= 1, r
        f1 = re.escape(f"{r['f1']:.3f}")
        assert re.search(rf"^{re.escape(r['name'])}\s+{f1}\s", printed, re.M), r["name"]
    assert 0 < notebook["never_flagged_normal_share"]["vae_skab"] < 1
    assert re.search(r"^under the notebook rule, better than the published Conv-AE on F1, FAR and MAR: ", printed, re.M)
    free = result["anomaly_free"]
    assert set(free) == {"stated_far", "measured_far", "ci_low", "ci_high"}
    assert 0 <= free["ci_low"] <= free["measured_far"] <= free["ci_high"] <= 1 and math.isfinite(free["stated_far"])
    # 20 % of anomaly-free.csv's 9,405 rows train (1,881); the other 7,524 are tested
    assert re.search(r"anomaly-free\.csv .* on \d+/7524 normal time steps", printed)
    adaptive = result["adaptive"]
    assert adaptive["adapt_rate"] == skab.ADAPT_RATE and {r["kind"] for r in adaptive["rows"]} == {"model"}
    assert all(r["name"].startswith("vae_skab adaptive 0.005: ") for r in adaptive["rows"])
    assert set(adaptive["anomaly_free"]) == set(free)
    assert re.search(r"anomaly-free\.csv \(vae_skab adaptive 0\.005: .* on \d+/7524 normal time steps", printed)


def write_run(run_dir, labels: dict, alarms: dict) -> None:
    """A run folder's ``out/stream_scores.csv`` (time-step labels) and ``out/scores.csv`` (window alarms of one
    score ``s``) per recording, as the product writes their columns."""
    out = run_dir / "out"
    out.mkdir(parents=True)
    steps = ["recording,row,label"] + [f"{rec},{400 + i},{y}" for rec, ys in labels.items() for i, y in enumerate(ys)]
    (out / "stream_scores.csv").write_text("\n".join(steps) + "\n")
    windows = ["recording,window,start_row,alarm_s"] + [f"{rec},{i},{400 + i},{a}" for rec, flags in alarms.items()
                                                        for i, a in enumerate(flags)]
    (out / "scores.csv").write_text("\n".join(windows) + "\n")


def test_notebook_rule_counts_match_the_notebooks_loop_summed_over_files(tmp_path) -> None:
    # window 3: 8 rows give 6 windows; the notebook flags row i in 2 .. 6-3 = 3 when windows i-2, i-1 alarm
    labels = {"a.csv": [0, 0, 1, 1, 1, 0, 0, 0], "b.csv": [0, 0, 0, 0, 0, 0, 0, 0]}
    alarms = {"a.csv": [0, 1, 1, 1, 0, 0], "b.csv": [1, 1, 1, 1, 1, 1]}
    write_run(tmp_path, labels, alarms)
    rows, normals, never = skab.notebook_rule_rows(tmp_path, "m", 3)
    # a: row 2 needs windows 0, 1 (no), row 3 windows 1, 2 (yes: tp); b: rows 2 and 3 flagged (2 fp)
    tp, fp, fn = 1, 2, 2
    tn = normals - fp
    # rows 0, 1, 4..7 of each file can never be flagged: a's normal ones 0, 1, 5, 6, 7 and six of b
    assert normals == 5 + 8 and never == 5 + 6
    assert rows == [{"name": "m: s [notebook rule]", "f1": tp / (tp + (fp + fn) / 2), "far_pct": 100 * fp / (fp + tn),
                     "mar_pct": 100 * fn / (fn + tp)}]


def test_notebook_rule_refuses_windows_that_skip_rows(tmp_path) -> None:
    write_run(tmp_path, {"a.csv": [0] * 8}, {"a.csv": [0, 1, 1]})
    with pytest.raises(ValueError, match="eval_stride 1"):
        skab.notebook_rule_rows(tmp_path, "m", 3)


def test_the_verdict_names_rows_better_than_conv_ae_on_all_three_and_rows_at_the_target() -> None:
    rows = [{"name": "a", "f1": 0.82, "far_pct": 12.0, "mar_pct": 23.0},   # beats Conv-AE, misses FAR <= 10
            {"name": "b", "f1": 0.85, "far_pct": 9.0, "mar_pct": 20.0},    # both
            {"name": "c", "f1": 0.84, "far_pct": 14.0, "mar_pct": 18.0},   # neither (FAR above 13.55)
            {"name": "d", "f1": 0.9, "far_pct": None, "mar_pct": 5.0}]    # no normal row: not judged
    beats, meets = skab.notebook_verdict(rows).splitlines()
    assert beats.endswith("a (F1 0.820, FAR 12.00 %, MAR 23.00 %); b (F1 0.850, FAR 9.00 %, MAR 20.00 %)")
    assert meets.endswith("MAR <= 25 %: b (F1 0.850, FAR 9.00 %, MAR 20.00 %)")
    assert skab.notebook_verdict(rows[2:]).splitlines()[0].endswith(": none")


def test_notebook_rule_rows_with_no_normal_row_have_no_far_instead_of_dividing_by_zero(tmp_path) -> None:
    write_run(tmp_path, {"a.csv": [1] * 8}, {"a.csv": [1] * 6})
    rows, normals, never = skab.notebook_rule_rows(tmp_path, "m", 3)
    assert (normals, never) == (0, 0) and rows[0]["far_pct"] is None and rows[0]["mar_pct"] == 75.0  # rows 2, 3 hit
