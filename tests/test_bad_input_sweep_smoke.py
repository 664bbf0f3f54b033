"""Smoke test of benchmarks/bad_input_sweep.py: its case builder and a handful of its cases (the sweep itself is a
benchmark, run by hand: python benchmarks/bad_input_sweep.py --out sweep.json)."""
from __future__ import annotations

import os
from collections import Counter

from benchmarks.bad_input_sweep import CLASSES, build_cases, classify, run_case


def test_builder_makes_every_class(tmp_path):
    _, cases = build_cases(tmp_path)
    per_class = Counter(case.cls for case in cases)
    assert len(cases) >= 150
    assert set(per_class) == set(CLASSES)
    assert all(count >= 5 for count in per_class.values()), per_class
    assert len({(c.cls, c.name) for c in cases}) == len(cases)


def test_classify():
    assert classify(2, "error: x.csv: row 3 (line 5): bad\n", []) == "answered"
    assert classify(2, "usage: main.py ...\nmain.py: error: argument --mode: invalid choice\n", []) == "answered"
    assert classify(1, "Traceback (most recent call last):\n  File ...\nValueError: x\n", []) == "traceback"
    assert classify(0, "", []) == "accepted"
    assert classify(2, "error: refused\n", ["in.csv modified"]) == "accepted"
    assert classify(None, "", []) == "hang"
    assert classify(1, "Killed\n", []) == "other"
    assert classify(2, "error: a\n" + "more\n" * 10, []) == "other"


def test_a_few_cases_are_answered(tmp_path):
    _, cases = build_cases(tmp_path)
    wanted = ["trainer.epochs at gt bound 0 (0)", "file trailing comma", "top --set no equals"]
    picked = [c for c in cases if c.cls == "config" and c.name in wanted]
    assert len(picked) == len(wanted)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for case in picked:
        result = run_case(case, env)
        assert result["outcome"] == "answered", result
        assert result["exit_code"] == 2
