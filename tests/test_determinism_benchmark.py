"""benchmarks/determinism.py: identical runs compared bit for bit, and a differing run explained."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import determinism, quality


def _record(run: str, weights: str = "w", val: float = 1.0, threads: int = 1, source: str = "s" * 64,
            argv: tuple[str, ...] = ("main.py", "exp_name=x")) -> dict:
    return {"run": run, "weights": weights, "scores": "c", "history": {"train": [2.0, 1.5], "val": [val, 0.5]},
            "numerics": {"threads": threads, "cpu": "EPYC"}, "source": source, "argv": list(argv),
            "config": {"seed": 1, "model": {"latent_dim": 4, "hidden_sizes": [32]}}}


def test_first_difference_is_exact_and_earliest() -> None:
    base = {"train": [2.0, 1.5], "val": [1.0, 0.5]}
    assert determinism.first_difference(base, {k: list(v) for k, v in base.items()}) is None
    nudged = {"train": [2.0, 1.5], "val": [1.0, 0.5 + 2 ** -52]}  # one bit in the last place
    assert determinism.first_difference(nudged, base) == f"epoch 2, val: {0.5 + 2 ** -52!r} vs 0.5"
    assert determinism.first_difference({"train": [2.0], "val": [1.0]}, base) == "epoch 2, train: None vs 1.5"


def test_groups_put_the_majority_first_and_explain_names_what_differs() -> None:
    records = [_record("run_00"), _record("run_01", weights="x", val=1.25, threads=2, source="t" * 64,
                                          argv=("main.py", "exp_name=y", "seed=3")), _record("run_02")]
    groups = determinism.group_runs(records)
    assert [[r["run"] for r in g] for g in groups] == [["run_00", "run_02"], ["run_01"]]
    found = determinism.explain(records[1], records[0])
    assert found[0] == "history departs at epoch 1, val: 1.25 vs 1.0"
    assert "numerics.threads: 2 vs 1" in found and not any("cpu" in f for f in found)
    assert any(f.startswith("source_sha256: tttttttttttt vs ssssssssssss") for f in found)
    assert found[-1] == "argv differs beyond the run name"
    assert determinism.explain(records[2], records[0]) == ["history departs at no epoch"]
    records[2]["config"] = {"seed": 1, "model": {"latent_dim": 8, "hidden_sizes": [32]}, "extra": True}
    assert determinism.explain(records[2], records[0])[1] == ("config.json differs in extra, model.latent_dim (the "
                                                              "config file changed between the starts?)")


def test_two_tiny_runs_at_once_are_identical_and_a_third_with_another_seed_is_told_apart(tmp_path: Path,
                                                                                         capsys) -> None:
    code = determinism.main(["--runs", "2", "--threads", "1", "--experiments-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = [line for line in printed.splitlines() if line.startswith("run_0")]
    assert len(rows) == 2 and all("threads 1" in row for row in rows)
    assert "2 runs, 1 distinct" in printed and "all bit-identical" in printed
    config = determinism.REPO_ROOT / "configs" / "vae_converter.json"
    quality.train_config(config, [*determinism.TINY, *determinism.ALWAYS, "seed=7"], tmp_path / "run_02",
                         argparse.Namespace(threads=1, verbose=False))
    records = [determinism.read_run(tmp_path / f"run_0{i}") for i in range(3)]
    assert not determinism.summarise(records)
    printed = capsys.readouterr().out
    assert "run_02 vs run_00: history departs at epoch 1, " in printed and "argv differs" in printed
    assert "config.json differs in seed " in printed
    assert "NOT all bit-identical" in printed
