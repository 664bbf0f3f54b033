"""Stream evaluation of many recordings: per recording as if alone, then pooled (SKAB's confusion, means, promise)."""
from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import numpy as np
import pytest

import main
from agents.stream_evaluation import (
    evaluate_recordings,
    evaluate_stream,
    write_incidents_csv,
    write_point_scores_csv,
)
from datasets.splits import DataSplits, Recording, Split, StreamPart
from tests.test_stream_evaluation import STREAM_RUN
from utils.core.errors import DataError
from utils.metrics.stream_metrics import buffer_reach, pooled_confusion

T, STRIDE = 10, 5
EVALUATION = {"point_aggregation": "max", "incident_merge_gap": None, "vus_buffer": None}
FEATURES = ["a", "b"]


def _part(n: int, first_row: int, anomaly: tuple[int, int], seed: int) -> StreamPart:
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=np.int64)
    labels[anomaly[0]:anomaly[1]] = 1
    starts = np.arange(0, n - T + 1, STRIDE)
    if starts[-1] != n - T:
        starts = np.append(starts, n - T)
    return StreamPart(values=rng.normal(size=(n, 2)), labels=labels, kinds=np.where(labels == 1, "spike", "normal"),
                      starts=starts, first_row=first_row, sample_period_s=0.5)


def _window_scores(part: StreamPart, seed: int) -> np.ndarray:
    """Higher on the windows that touch the labelled rows, noise elsewhere."""
    rng = np.random.default_rng(seed)
    touches = np.array([part.labels[s:s + T].any() for s in part.starts])
    return rng.random(len(part.starts)) + 1.5 * touches


def _inputs(parts: list[StreamPart]) -> dict:
    scores = {"recon": np.concatenate([_window_scores(p, i) for i, p in enumerate(parts)])}
    base = {"pca": np.concatenate([_window_scores(p, 10 + i) for i, p in enumerate(parts)])}
    contributions = np.random.default_rng(5).random((len(scores["recon"]), 2))
    return dict(scores=scores, thresholds={"recon": 1.2}, contributions=contributions, baseline_scores=base,
                baseline_thresholds={"pca": 1.1}, bounds={"recon": 0.05, "pca": 0.05})


PARTS = [_part(80, 120, (30, 42), 0), _part(61, 300, (5, 9), 1), _part(95, 40, (60, 75), 2)]
NAMES = ["valve1/0.csv", "valve1/1.csv", "other/7.csv"]


def _evaluate(parts: list[StreamPart], names: list[str]):
    inputs = _inputs(parts)
    recordings = [Recording(name, part) for name, part in zip(names, parts)]
    return evaluate_recordings(recordings, T, EVALUATION, FEATURES, **inputs), inputs


def test_each_recording_is_evaluated_as_if_alone():
    result, inputs = _evaluate(PARTS, NAMES)
    cuts = np.cumsum([len(p.starts) for p in PARTS])[:-1]
    pieces = {k: np.split(v, cuts) for k, v in [("recon", inputs["scores"]["recon"]),
                                                ("pca", inputs["baseline_scores"]["pca"]),
                                                ("contrib", inputs["contributions"])]}
    assert list(result.metrics["recordings"]) == NAMES
    for i, (name, part) in enumerate(zip(NAMES, PARTS)):
        alone = evaluate_stream(part, T, EVALUATION, FEATURES, {"recon": pieces["recon"][i]}, {"recon": 1.2},
                                pieces["contrib"][i], {"pca": pieces["pca"][i]}, {"pca": 1.1},
                                {"recon": 0.05, "pca": 0.05})
        assert result.metrics["recordings"][name] == alone.metrics
        assert result.metrics["recordings"][name]["first_row"] == part.first_row
        assert result.results[name].incidents == alone.incidents


def test_pooled_section_sums_time_steps_and_averages_recordings():
    result, _ = _evaluate(PARTS, NAMES)
    pooled, per = result.metrics["pooled"], result.metrics["recordings"]
    assert pooled["recordings"] == 3 and pooled["rows"] == sum(len(p) for p in PARTS)
    assert pooled["hours"] == pytest.approx(sum(len(p) for p in PARTS) * 0.5 / 3600)
    for group, name, threshold in (("scores", "recon", 1.2), ("baselines", "pca", 1.1)):
        points = [result.results[n].points[name] for n in NAMES]
        expected = pooled_confusion((p.labels, (pts > threshold).astype(int)) for p, pts in zip(PARTS, points))
        assert pooled[group][name]["confusion"] == expected
        assert pooled[group][name]["confusion"]["tp"] + pooled[group][name]["confusion"]["fn"] == sum(
            int(p.labels.sum()) for p in PARTS)
        vus = [per[n][group][name]["vus_pr"] for n in NAMES]
        assert pooled[group][name]["mean"]["vus_pr"] == {"mean": pytest.approx(np.mean(vus)),
                                                         "std": pytest.approx(np.std(vus)), "n": 3}
        fa = pooled[group][name]["false_alarm"]
        assert fa["measured"]["n_normals"] == sum(int((p.labels == 0).sum()) for p in PARTS)
        assert fa["measured"]["n_alarms"] == sum(per[n][group][name]["false_alarm"]["measured"]["n_alarms"]
                                                 for n in NAMES)
        assert fa["recordings_broken"] == sum(per[n][group][name]["false_alarm"]["promise_kept"] is False
                                              for n in NAMES)
    for key in ("n", "hits", "detected", "labelled_ranges"):
        assert pooled["incidents"][key] == sum(per[n]["incidents"][key] for n in NAMES)
    assert pooled["versus_baselines"]["text"].startswith("Model vs baselines, mean over the test recordings")
    json.dumps(result.metrics, allow_nan=False)


def test_one_recording_keeps_the_single_stream_shape():
    result, inputs = _evaluate(PARTS[:1], NAMES[:1])
    alone = evaluate_stream(PARTS[0], T, EVALUATION, FEATURES, **inputs)
    assert result.metrics == alone.metrics and "pooled" not in result.metrics and result.pooled is None
    assert result.metrics["scores"]["recon"]["false_alarm"]["promise_kept"] in (True, False)


def test_recordings_must_be_named_apart_and_match_the_windows():
    with pytest.raises(DataError, match="valve1/0.csv appears twice"):
        _evaluate(PARTS[:2], [NAMES[0], NAMES[0]])
    inputs = _inputs(PARTS[:2])
    with pytest.raises(ValueError, match="recordings start"):
        evaluate_recordings([Recording("x", PARTS[0])], T, EVALUATION, FEATURES, **inputs)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csvs_name_the_recording_of_each_file_row(tmp_path):
    result, _ = _evaluate(PARTS, NAMES)
    write_point_scores_csv(tmp_path / "points.csv", result.results)
    write_incidents_csv(tmp_path / "incidents.csv", result.results)
    points = _rows(tmp_path / "points.csv")
    assert list(points[0])[:2] == ["recording", "row"] and len(points) == sum(len(p) for p in PARTS)
    for name, part in zip(NAMES, PARTS):
        own = [r for r in points if r["recording"] == name]
        assert [int(r["row"]) for r in own] == list(range(part.first_row, part.first_row + len(part)))
        assert [int(r["label"]) for r in own] == part.labels.tolist()
    incidents = _rows(tmp_path / "incidents.csv")
    assert {r["recording"] for r in incidents} <= set(NAMES)
    for name in NAMES:
        own = [r for r in incidents if r["recording"] == name]
        assert len([r for r in own if r["outcome"] != "missed"]) == result.metrics["recordings"][name]["incidents"]["n"]
    single, _ = _evaluate(PARTS[:1], NAMES[:1])
    write_point_scores_csv(tmp_path / "one.csv", single.results)
    assert list(_rows(tmp_path / "one.csv")[0])[0] == "row"


# ----------------------------------------------------------------------------- end to end
TWO_RECORDINGS_RUN = {
    **STREAM_RUN, "exp_name": "two",
    "data": {**STREAM_RUN["data"], "duration_s": 60, "time_steps": 20, "stride": 10, "eval_stride": 10,
             "anomaly_density": 0.1},
    "model": {"name": "vae", "hidden_sizes": [8], "latent_dim": 2},
    "trainer": {**STREAM_RUN["trainer"], "epochs": 1},
    "evaluation": {"false_alarm_rate": 0.05, "baselines": ["pca"], "make_plots": False},
}


def _concat(a: Split, b: Split) -> Split:
    return Split(np.concatenate([a.x, b.x]), np.concatenate([a.y, b.y]), np.concatenate([a.kind, b.kind]))


def _two_recordings(original):
    """The converter_stream loader, simulating two recordings (seeds ``seed`` and ``seed + 1``) as one dataset."""
    @functools.wraps(original)
    def load(seed: int, **kwargs) -> DataSplits:
        a, b = original(seed=seed, **kwargs), original(seed=seed + 1, **kwargs)
        info = {k: v for k, v in a.info.items() if k not in ("counts", "test_ranges", "stretches")}
        return DataSplits(train=_concat(a.train, b.train), val=_concat(a.val, b.val), test=_concat(a.test, b.test),
                          feature_names=a.feature_names, info=info,
                          recordings=[Recording("first.csv", a.streams["test"], a.streams["val"]),
                                      Recording("second.csv", b.streams["test"], b.streams["val"])])
    return load


def test_a_run_on_two_recordings_reports_each_and_pooled(tmp_path, monkeypatch, caplog):
    from utils.core.registry import DATASETS

    monkeypatch.setitem(DATASETS._entries, "converter_stream", _two_recordings(DATASETS.get("converter_stream")))
    config = tmp_path / "two.json"
    config.write_text(json.dumps({**TWO_RECORDINGS_RUN, "experiments_dir": str(tmp_path)}))
    assert main.main([str(config)]) == 0
    out = tmp_path / "two" / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    stream = metrics["stream"]
    assert list(stream["recordings"]) == ["first.csv", "second.csv"]
    scores = list(metrics["scores"])
    for name, m in stream["recordings"].items():
        assert set(m["scores"]) == set(scores) and m["rows"] > 0
        assert all("promise_kept" in r["false_alarm"] for r in m["scores"].values())
    pooled = stream["pooled"]
    assert pooled["rows"] == sum(m["rows"] for m in stream["recordings"].values())
    assert set(pooled["scores"]) == set(scores) and len(pooled["baselines"]) == 1
    for r in pooled["scores"].values():
        assert r["mean"]["vus_pr"]["n"] <= 2 and {"tp", "fp", "fn", "tn", "far_pct"} <= set(r["confusion"])
        assert r["false_alarm"]["recordings"] == 2
    points = _rows(out / "stream_scores.csv")
    assert points[0]["recording"] == "first.csv" and points[-1]["recording"] == "second.csv"
    for name, m in stream["recordings"].items():
        own = [int(r["row"]) for r in points if r["recording"] == name]
        assert own == list(range(m["first_row"], m["first_row"] + m["rows"]))
    assert (out / "incidents.csv").read_text().startswith("recording,incident,")
    windows = metrics["scores"][scores[0]]["false_alarm"]
    assert windows["promise_kept"] in (True, False) and windows["verdict"]
    report = (out / "report.md").read_text()
    assert "## Did the thresholds keep their promise?" in report
    assert "## Results on the test recordings (per time step)" in report and "| `second.csv` |" in report
    log = (tmp_path / "two" / "logs" / "train.log").read_text()
    assert "Test streams: 2 recordings" in log and "first.csv: VUS-PR" in log and "second.csv: VUS-PR" in log


def _spaced(n: int, ranges: int, length: int) -> StreamPart:
    """A test stretch of ``n`` rows with ``ranges`` evenly spaced labelled ranges of ``length`` rows each."""
    part = _part(n, 0, (0, 0), 3)
    for start in np.linspace(n // (2 * ranges), n - n // (2 * ranges), ranges).astype(int):
        part.labels[start:start + length] = 1
    return part


def test_buffer_reach_is_the_share_of_normal_rows_the_largest_buffer_touches():
    labels = _spaced(3000, 5, 20).labels  # gaps of 580 normal rows between the ranges
    assert buffer_reach(labels, 0)[0] == 0.0
    share, fair = buffer_reach(labels, 580)  # buffers of 290 rows meet across every gap
    assert share > 0.9
    assert buffer_reach(labels, fair)[0] <= 0.5 < buffer_reach(labels, fair + 2)[0]
    assert buffer_reach(np.zeros(9), 5) is None and buffer_reach(np.ones(9), 5) is None


def test_a_buffer_reaching_most_normal_rows_warns_and_names_a_fair_one(warnings_seen):
    """A random score gets VUS-PR near 1 when the buffer spans the gaps between labelled ranges; the default not."""
    parts, names = [_spaced(3000, 5, 20), _spaced(500, 1, 30)], ["far.csv", "near.csv"]
    rng = np.random.default_rng(0)
    inputs = _inputs(parts)
    inputs["scores"] = {"recon": rng.random(len(inputs["contributions"]))}
    recordings = [Recording(name, part) for name, part in zip(names, parts)]
    result = evaluate_recordings(recordings, T, {**EVALUATION, "vus_buffer": 2000}, FEATURES, **inputs)
    assert result.metrics["recordings"]["far.csv"]["scores"]["recon"]["vus_pr"] > 0.75
    warned = [r.getMessage() for r in warnings_seen.records if "vus_buffer" in r.getMessage()]
    fair = min(buffer_reach(p.labels, 2000)[1] for p in parts)
    assert warned == [f"evaluation: evaluation.vus_buffer=2000 reaches more than half of the normal test rows "
                      f"(far.csv {buffer_reach(parts[0].labels, 2000)[0]:.0%}, near.csv 100%), which VUS-ROC and "
                      f"VUS-PR then count as partly anomalous, so even a random score gets a high VUS-PR; set "
                      f"evaluation.vus_buffer to null (the window length, {T}) or at most {fair}"]
    warnings_seen.clear()
    result = evaluate_recordings(recordings, T, EVALUATION, FEATURES, **inputs)
    assert result.metrics["recordings"]["far.csv"]["scores"]["recon"]["vus_pr"] < 0.1
    assert not [r for r in warnings_seen.records if "vus_buffer" in r.getMessage()]
