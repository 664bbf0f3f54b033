"""Inputs at the scale users bring (long files, folders of thousands of recordings): results equal their references
and per-recording work stays cheap."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import average_precision_score, roc_auc_score

from utils.metrics.promise import false_alarm_interval
from utils.metrics.window_metrics import roc_pr_auc


def test_false_alarm_interval_is_clopper_pearson_without_root_finding(monkeypatch):
    # a folder of 2,000 recordings asks for 12,000 intervals: binomtest's root finding took ~95 s of them
    cases = [(0, 7), (3, 120), (44, 500), (7, 7), (1, 1), (118, 13202), (5920, 795000)]
    expected = {case: scipy.stats.binomtest(*case).proportion_ci(0.95, method="exact") for case in cases}

    def refuse(*args, **kwargs):
        raise AssertionError("binomtest called")

    monkeypatch.setattr(scipy.stats, "binomtest", refuse)
    for (k, n), ci in expected.items():
        got = false_alarm_interval(k, n)
        assert (got["low"], got["high"]) == (pytest.approx(ci.low, rel=1e-9, abs=1e-15),
                                             pytest.approx(ci.high, rel=1e-9, abs=1e-15))
    assert false_alarm_interval(0, 50)["low"] == 0.0 and false_alarm_interval(50, 50)["high"] == 1.0


def test_roc_pr_auc_equals_scikit_learn_without_calling_it(monkeypatch):
    rng = np.random.default_rng(0)
    cases = []
    for trial in range(60):
        n = int(rng.integers(2, 2000))
        y = (rng.random(n) < rng.uniform(0.01, 0.9)).astype(np.int64)
        y[:2] = (0, 1)
        s = rng.random(n) if trial % 2 else rng.integers(0, 4, n).astype(np.float64)  # ties too
        cases.append((y, s, roc_auc_score(y, s), average_precision_score(y, s)))
    import utils.metrics.window_metrics as window_metrics
    for name in ("roc_auc_score", "average_precision_score"):  # 20 ms a call: minutes over thousands of files
        monkeypatch.setattr(window_metrics, name, None, raising=False)
    for y, s, roc, pr in cases:
        assert roc_pr_auc(y, s) == (pytest.approx(roc, abs=1e-12), pytest.approx(pr, abs=1e-12))
    assert roc_pr_auc(np.zeros(5, int), np.arange(5.0)) == (None, None)
    assert roc_pr_auc(np.ones(5, int), np.arange(5.0)) == (None, None)


def test_report_lists_at_most_max_listed_recordings_and_says_how_many_more(tmp_path):
    from utils.figures.report import MAX_LISTED, recordings_section
    counts = {"score": "reconstruction", "n": 1, "false_alarms": 0, "detected": 1, "labelled_ranges": 1}
    recordings = {f"rec_{i:04d}.csv": {"rows": 250, "incidents": counts, "scores": {"reconstruction": {}}}
                  for i in range(2000)}  # a folder of 2,000 files once wrote 2,000 table rows into report.md
    stream = {"pooled": {"recordings": 2000, "rows": 500000, "incidents": counts, "scores": {}, "baselines": {}},
              "recordings": recordings}
    lines = recordings_section(stream, tmp_path)
    rows = [line for line in lines if line.startswith("| `rec_")]
    assert len(rows) == MAX_LISTED and rows[0].startswith("| `rec_0000.csv`")
    assert f"| … | {2000 - MAX_LISTED} more recordings in `out/metrics.json` (stream.recordings) | | | | | |" in lines
    few = recordings_section({**stream, "recordings": dict(list(recordings.items())[:3])}, tmp_path)
    assert len([line for line in few if line.startswith("| `rec_")]) == 3 and not any("more recordings" in x for x in few)


def test_report_incidents_table_reads_the_listed_rows_not_the_whole_file(tmp_path):
    import csv
    import tracemalloc

    from agents.detector.streaming import INCIDENT_COLUMNS
    from utils.figures.report import MAX_LISTED, markdown_incidents
    path = tmp_path / "incidents.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:  # 80,000 labelled ranges once held 80,000 dicts
        writer = csv.writer(handle)
        writer.writerow([*INCIDENT_COLUMNS, "outcome", "labelled_kind"])
        writer.writerows([i, 4 * i, 4 * i + 1, "", "", "", 2, 0.5, 4 * i, 0.4, "s1", "hit", "anomaly"]
                         for i in range(1, 20001))
    tracemalloc.start()
    lines = markdown_incidents(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(lines) == MAX_LISTED + 4 and f"| … | {20000 - MAX_LISTED} more rows in `out/incidents.csv`" in lines[-2]
    assert peak < 2_000_000  # bytes: 40 rows and a count, not 20,000 rows (~20 MB)


def _boxes(fig) -> list[list[tuple[float, float]]]:
    """Per axes, (x from, x to) of each shaded label box, sorted."""
    return [sorted((p.vertices[:, 0].min(), p.vertices[:, 0].max()) for c in ax.collections
                   if str(c.get_gid()).startswith("label:") for p in c.get_paths()) for ax in fig.axes]


def test_timeline_merges_label_boxes_closer_than_a_pixel_and_keeps_few_ranges_as_they_are():
    from utils.figures import plot_timeline
    from utils.figures.style import SAVE_DPI
    from utils.figures.timeline import WIDTH_IN
    n, pixels = 320_000, WIDTH_IN * SAVE_DPI
    labels = (np.arange(n) % 4 < 2).astype(int)  # flipping every 2 rows: 80,000 ranges, once as many boxes a panel
    labels[100_001:150_000] = 0  # a gap of 50,000 rows (over 200 px) stays a gap
    fig = plot_timeline(np.zeros(n), ["s"], np.zeros(n), 1.0, labels=labels, n_details=0)
    for boxes in _boxes(fig):
        assert 1 <= len(boxes) <= pixels + 1
        assert boxes == [(0, 100_001), (150_000, n - 2)]  # every labelled row still shaded, the wide gap kept
    few = np.zeros(3000, dtype=int)  # a pixel is 3000 / 1430 rows: boxes 3 rows apart stay apart
    few[500:560] = few[2000:2003] = few[2006:2300] = few[2999] = 1
    fig = plot_timeline(np.zeros(3000), ["s"], np.zeros(3000), 1.0, labels=few, n_details=1)
    main_sensor, main_score, detail_sensor, detail_score = _boxes(fig)
    assert main_sensor == main_score == [(500, 560), (2000, 2003), (2006, 2300), (2999, 3000)]
    assert detail_sensor == detail_score == [(2000, 2003), (2006, 2300)]  # the longest missed range and its context
