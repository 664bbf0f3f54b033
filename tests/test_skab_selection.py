"""The fault injector of benchmarks/skab_selection.py (labels, reproducibility, untouched rows) and its selection rule,
on synthetic data: no training, a fraction of a second. One slow test runs the benchmark's --quick mode end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import skab_selection as sel


def recording(rows: int = 2000, channels: int = 4) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(size=(rows, channels)).cumsum(axis=0) * 0.1 + np.arange(channels)


def fault_rows(faults: list[sel.Fault], rows: int) -> np.ndarray:
    mask = np.zeros(rows, dtype=bool)
    for f in faults:
        mask[f.start:f.stop] = True
    return mask


def test_labels_cover_exactly_the_faults_and_every_other_row_is_untouched():
    values = recording()
    before = values.copy()
    faulty, labels, faults = sel.inject_faults(values, 500, seed=3)
    np.testing.assert_array_equal(values, before)  # the input is not changed
    assert sorted(f.kind for f in faults) == sorted(sel.FAULT_KINDS * 2)
    assert [f.start for f in faults] == sorted(f.start for f in faults)
    assert all(a.stop <= b.start for a, b in zip(faults, faults[1:]))  # no overlap
    assert faults[0].start >= 500 + sel.GAP
    mask = fault_rows(faults, len(values))
    np.testing.assert_array_equal(labels.astype(bool), mask)
    np.testing.assert_array_equal(faulty[~mask], values[~mask])
    for f in faults:  # each labelled range holds a change, on its channels only
        changed = np.flatnonzero((faulty[f.start:f.stop] != values[f.start:f.stop]).any(axis=0))
        assert len(changed) and set(changed) <= set(f.channels), f
        if f.kind != "spike_burst":
            assert sel.MIN_LENGTH <= f.stop - f.start <= sel.MAX_LENGTH, f


def test_the_seed_fixes_the_faults():
    values = recording()
    first, labels, faults = sel.inject_faults(values, 500, seed=11)
    again, labels_again, faults_again = sel.inject_faults(values, 500, seed=11)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert faults == faults_again
    _, other_labels, _ = sel.inject_faults(values, 500, seed=12)
    assert not np.array_equal(labels, other_labels)


def test_each_kind_changes_what_it_says():
    values = recording(rows=1100)
    for kind in sel.FAULT_KINDS:
        faulty, _, (fault,) = sel.inject_faults(values, 400, seed=1, kinds=[kind])
        part, orig = faulty[fault.start:fault.stop][:, list(fault.channels)], values[fault.start:fault.stop][:, list(fault.channels)]
        if kind == "stuck":
            assert (part == part[0]).all()
        elif kind == "swap":  # levels and spreads kept, fluctuations exchanged
            np.testing.assert_allclose(part.mean(axis=0), orig.mean(axis=0))
            np.testing.assert_allclose(part.std(axis=0), orig.std(axis=0))
            z = (part - part.mean(axis=0)) / part.std(axis=0)
            z_orig = (orig - orig.mean(axis=0)) / orig.std(axis=0)
            np.testing.assert_allclose(z, z_orig[:, ::-1], atol=1e-9)
        elif kind == "ramp":
            np.testing.assert_array_equal(part[0], orig[0])  # it starts from nothing and grows
            assert (np.abs(part[-1] - orig[-1]) >= 3 * values[:400, list(fault.channels)].std(axis=0) - 1e-9).all()
        elif kind == "level_shift":
            shift = part - orig
            np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape))
            assert (np.abs(shift[0]) >= 2 * values[:400, list(fault.channels)].std(axis=0) - 1e-9).all()


def test_too_short_a_recording_or_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="slots"):
        sel.inject_faults(recording(rows=600), 500, seed=0)
    with pytest.raises(ValueError, match="unknown fault kinds"):
        sel.inject_faults(recording(), 500, seed=0, kinds=["wobble"])


def test_segments_give_each_copy_its_own_training_parts():
    values = recording(rows=3400)
    stamps = [str(i) for i in range(len(values))]
    recs = sel.segment_recordings(stamps, values, copies=2)
    assert [r.name for r in recs] == ["copy0_rows0", "copy0_rows1100", "copy0_rows2200", "copy1_rows550",
                                      "copy1_rows1650"]
    for r in recs:
        first = int(r.name.rsplit("rows", 1)[1])
        assert r.stamps[0] == str(first) and len(r.values) == sel.SEGMENT_ROWS
        assert not r.labels[:sel.SEGMENT_TRAIN_ROWS].any() and len(r.faults) == sel.FAULTS_PER_SEGMENT
    kinds = [f.kind for r in recs for f in r.faults]
    assert kinds == [sel.FAULT_KINDS[i % len(sel.FAULT_KINDS)] for i in range(len(kinds))]


def row(candidate: str, score: str, vus: float) -> dict:
    return {"kind": "model", "config": candidate.split()[0], "candidate": candidate,
            "name": f"{candidate}: {score}", "vus_pr_mean": vus}


def test_selection_takes_the_best_score_and_keeps_the_shipped_setting_within_the_margin():
    rows = [row("a w=60", "x", 0.70), row("a w=60", "y", 0.80), row("a w=10", "x", 0.803),
            row("b w=60", "x", 0.70), row("b w=10", "x", 0.72), row("b w=10", "y", 0.60),
            {"kind": "baseline", "config": "a", "candidate": "a w=10", "name": "kNN", "vus_pr_mean": 0.99}]
    chosen = sel.select(rows, {"a": "a w=60", "b": "b w=60"})
    assert chosen["a"]["chosen"] == "a w=60" and chosen["a"]["vus_pr"] == 0.80  # 0.803 is within the margin
    assert chosen["b"]["chosen"] == "b w=10" and chosen["b"]["score"] == "b w=10: x"
    assert chosen["b"]["shipped_vus_pr"] == 0.70


@pytest.mark.slow  # about 40 s: two short runs of the VAE on 8 injected recordings
def test_quick_selection_run_trains_through_the_product_and_selects(tmp_path, capsys):
    if not sel.ANOMALY_FREE_CSV.is_file():
        pytest.skip(f"shared SKAB data not found at {sel.ANOMALY_FREE_CSV}")
    out = tmp_path / "selection.json"
    assert sel.main(["--quick", "--experiments-dir", str(tmp_path / "runs"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["recordings"] == 8 and result["faults"] == 16
    written = sorted(p.name for p in (tmp_path / "runs" / "injected").glob("*.csv"))
    assert written == sorted(f"copy0_rows{1100 * j}.csv" for j in range(8))
    models = [r for r in result["rows"] if r["kind"] == "model"]
    assert {r["candidate"] for r in models} == {"vae_skab w=10", "vae_skab w=60"}
    assert {r["window"] for r in result["rows"] if r["kind"] == "baseline"} == {10, 60}
    assert all(0 <= r["vus_pr_mean"] <= 1 for r in result["rows"])
    best = max(models, key=lambda r: r["vus_pr_mean"])
    chosen = result["selection"]["vae_skab"]
    assert best["vus_pr_mean"] - sel.MARGIN <= chosen["vus_pr"] <= best["vus_pr_mean"]
    assert best["name"] in capsys.readouterr().out


def test_candidates_can_be_named_and_a_malformed_one_is_refused(capsys):
    args = sel.parse_args(["--candidate", "vae_skab:60", "--candidate", "lstm_skab:10"])
    assert [(c.config, c.window) for c in args.candidates] == [("vae_skab", 60), ("lstm_skab", 10)]
    with pytest.raises(SystemExit) as stop:
        sel.parse_args(["--candidate", "vae_skab"])
    assert stop.value.code == 2 and "expected CONFIG:WINDOW" in capsys.readouterr().err


def test_a_candidate_the_product_refuses_is_reported_and_the_next_one_of_its_length_gets_the_baselines(
        tmp_path, monkeypatch, capsys):
    from utils.core.errors import UserError

    calls = []

    def fake_train(config, overrides, run_dir, args):
        calls.append((config.stem, "evaluation.baselines=[]" not in overrides))
        if len(calls) == 1:
            raise UserError(f"{config.stem}: the calibration stretches hold 0 windows")
        return {"metrics": {}, "seconds": 1.0}

    monkeypatch.setattr(sel.quality, "train_config", fake_train)
    monkeypatch.setattr(sel.skab, "table_rows", lambda metrics, name, with_baselines: [])
    args = sel.parse_args(["--candidate", "vae_skab:120", "--candidate", "conv_ae_skab:120"])
    assert sel.run_candidates(args, tmp_path, 400, tmp_path) == []
    assert calls == [("vae_skab", True), ("conv_ae_skab", True)]
    assert "vae_skab w=120: refused by the product: vae_skab: the calibration stretches hold 0 windows" \
        in capsys.readouterr().out
