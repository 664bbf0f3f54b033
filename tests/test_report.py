"""out/report.md: config summary, metrics table and every plot, readable on its own."""
from __future__ import annotations

import json
import re

import pytest

from tests.helpers import FAST_VAE
from utils.figures.report import markdown_metrics_table, render_report, write_report


@pytest.fixture(scope="module")
def run_dir(tiny_runs):
    return tiny_runs.of_config("vae_converter.json", *FAST_VAE, "data.time_steps=25", "exp_name=rep")



def test_every_run_writes_a_self_contained_report(run_dir):
    text = (run_dir / "out" / "report.md").read_text()
    metrics = json.loads((run_dir / "out" / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    assert text.startswith("# Run report: rep\n")
    # config summary
    assert "| agent | `vae` (seed 42" in text
    assert '**converter** `n_samples=600`, `time_steps=25`' in text
    assert "`hidden_sizes=[32]`, `latent_dim=4`" in text and "`epochs=3`" in text
    # data and training
    assert f"| test | {metrics['splits']['test']['n']} | {metrics['splits']['test']['n_anomalies']} |" in text
    assert f"{metrics['training']['epoch']} of {config['trainer']['epochs']} epochs" in text
    # metrics table: one row per score with its ROC AUC, PR AUC and base rate as in metrics.json
    for name, result in metrics["scores"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` | "))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1:4] == [f"{result['roc_auc']:.3f}", f"{result['pr_auc']:.3f}", f"{result['base_rate']:.3f}"]
        assert cells[7] == f"{result['f1']:.3f}"
    assert "voltage_spike (n=" in text and "not deployable" in text
    # every plot embedded by a relative link that resolves, and every PNG embedded
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    pngs = sorted(p.name for p in (run_dir / "out").glob("*.png"))
    assert len(pngs) >= 9 and sorted(links) == pngs
    for link in links:
        assert "/" not in link and (run_dir / "out" / link).is_file()


def test_report_regenerates_from_the_run_folder(run_dir):
    before = (run_dir / "out" / "report.md").read_text()
    path = write_report(run_dir)  # config.json and out/metrics.json only
    strip = lambda t: re.sub(r"Written .* UTC", "", t)  # noqa: E731
    assert strip(path.read_text()) == strip(before)


def test_no_plots_and_no_labels_are_reported(tmp_path):
    metrics = {"scores": {"reconstruction": {"roc_auc": None, "pr_auc": None, "base_rate": 0.0, "threshold": 0.1,
                                             "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                             "confusion_matrix": [[35, 1], [0, 0]], "per_kind": {}}},
               "splits": {"test": {"n": 36, "n_anomalies": 0}}, "threshold": {"percentile": 99.0},
               "data": {"note": "no label column: every window is treated as normal"}, "training": {}}
    config = {"exp_name": "x", "agent": "vae", "data": {"name": "csv"}, "model": {"name": "vae"},
              "loss": {"name": "vae"}, "trainer": {}, "evaluation": {}}
    text = render_report(config, metrics, tmp_path)
    assert "No plots" in text and "**Note:** no label column" in text
    assert "| `reconstruction` | – | – | 0.000 | 0.1000 |" in text
    assert markdown_metrics_table(metrics["scores"]).splitlines()[2].endswith("| 1 (0 + 1) |")


def test_the_data_table_names_the_kinds_of_every_dataset(tmp_path):
    import numpy as np

    from datasets.splits import DataSplits, Split

    def split(kinds):
        kind = np.array(kinds)
        return Split(x=np.zeros((len(kind), 4, 1), np.float32), y=(kind != "normal").astype(np.int64), kind=kind)

    # a dataset whose info says nothing about counts (as ECG5000's did) still gets them
    data = DataSplits(split(["normal"] * 3), split(["normal"]), split(["normal", "class_2", "class_2", "class_4"]),
                      ["ecg"], info={"dataset": "ecg5000"})
    metrics = {"scores": {}, "splits": {"test": {"n": 4, "n_anomalies": 3}}, "threshold": {},
               "data": data.info, "training": {}}
    config = {"exp_name": "x", "agent": "vae", "data": {"name": "ecg5000"}, "model": {}, "loss": {}, "trainer": {},
              "evaluation": {}}
    text = render_report(config, metrics, tmp_path)
    assert "| test | 4 | 3 | class_2 2, class_4 1, normal 1 |" in text
    assert "| train | – | – | normal 3 |" in text


def test_a_broken_promise_leads_the_report_and_several_recordings_get_their_tables(tmp_path):
    from tests.test_recording_evaluation import NAMES, PARTS, _evaluate
    from utils.metrics.promise import false_alarm_interval, promise_verdict

    stream, _ = _evaluate(PARTS, NAMES)
    (tmp_path / "incidents.csv").write_text("recording,incident,start_row,end_row,start_time,end_time,duration_s,"
                                            "rows,peak_score,peak_row,mean_score,top_feature,outcome,labelled_kind\n"
                                            "other/7.csv,1,100,110,,,,11,2.0,104,1.5,a,hit,spike\n")
    measured = false_alarm_interval(40, 100)
    broken = {"alpha": 0.05, "n": 99, "k": 95, "bound": 0.05, "achievable": True, "measured": measured,
              **promise_verdict(0.05, measured)}
    metrics = {"scores": {"recon": {"false_alarm": broken, "confusion_matrix": [[60, 40], [0, 0]]}},
               "baselines": {"pca": {"false_alarm": {**broken, **promise_verdict(0.5, measured)},
                                     "confusion_matrix": [[60, 40], [0, 0]]}},
               "splits": {}, "threshold": {}, "data": {}, "training": {}, "stream": stream.metrics}
    config = {"exp_name": "x", "agent": "vae", "data": {"name": "csv"}, "model": {}, "loss": {}, "trainer": {},
              "evaluation": {}}
    text = render_report(config, metrics, tmp_path)
    promise = text.index("## Did the thresholds keep their promise?")
    assert promise < text.index("## Configuration")
    assert "- **PROMISE BROKEN (recon, windows): alarmed on 40 of 100 normal test windows" in text
    assert "`baseline pca, windows`" in text[promise:text.index("## Configuration")]  # kept against bound 0.5
    assert text.count("What you can do:") == 1
    assert "| 0.0500 | 40/100 | 0.4000 (" in text and "| **broken** |" in text
    assert "## Results on the test recordings (per time step)" in text
    pooled = stream.metrics["pooled"]["scores"]["recon"]
    row = next(line for line in text.splitlines() if line.startswith("| `recon` | ") and "±" in line)
    assert row.split(" | ")[1] == f"{pooled['confusion']['f1']:.3f}"
    for name in NAMES:
        assert f"| `{name}` | {stream.metrics['recordings'][name]['rows']} |" in text
    assert "| `other/7.csv` | 1 | hit | 100–110 |" in text


def test_write_report_from_python_raises_the_os_error_of_a_missing_metrics_file(tmp_path):
    """Called without ``metrics``, write_report reads out/metrics.json as it is: a missing file is the OSError
    (FileNotFoundError) a Python caller catches, not the ValueError the command-line wrapper turns into a message."""
    (tmp_path / "out").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"exp_name": "x"}))
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path)
    assert not (tmp_path / "out" / "report.md").exists()
