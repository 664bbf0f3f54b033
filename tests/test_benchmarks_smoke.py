"""Smoke test of the converter benchmark (the full sweep is not a test)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from benchmarks import converter_benchmark as bench


def test_converter_benchmark_tiny_run(tmp_path: Path, capsys) -> None:
    """1 seed x 1 magnitude on 600 windows and 3 epochs prints every method with finite numbers."""
    out_json = tmp_path / "results.json"
    code = bench.main(["--seeds", "1", "--magnitudes", "6", "--set", "data.n_samples=600",
                       "--set", "trainer.epochs=3", "--set", "model.hidden_sizes=[32]",
                       "--experiments-dir", str(tmp_path / "runs"), "--out", str(out_json)])
    assert code == 0
    printed = capsys.readouterr().out
    table = printed.split("=== anomaly magnitude 6")[1].split("=== summary")[0]
    summary = printed.split("=== summary")[1]
    for method in bench.METHODS:
        row = next(line for line in table.splitlines() if line.startswith(method + "  "))
        cells = re.findall(r"(-?\d+\.\d+) ± (\d+\.\d+)", row)
        assert len(cells) == 6, row  # ROC AUC, PR AUC, base rate, one ROC AUC per anomaly type
        assert all(math.isfinite(float(v)) for cell in cells for v in cell), row
        assert 0.0 <= float(cells[0][0]) <= 1.0
        summary_row = next(line for line in summary.splitlines() if line.startswith(method + "  "))
        assert math.isfinite(float(summary_row.split()[-1])), summary_row
    assert "VAE wall time" in printed
    results = json.loads(out_json.read_text())
    assert set(results["summary"]["6"]["methods"]) == set(bench.METHODS)
    assert len(results["runs"]) == 1
