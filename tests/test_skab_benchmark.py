"""Smoke test of benchmarks/skab.py (the full run is no test): every row printed as measured, the leaderboard, the
anomaly-free line, and the JSON schema, on 3 files for 2 epochs."""
from __future__ import annotations

import json
import math
import re

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
