"""Smoke test of benchmarks/speed.py on tiny sizes: every row is printed with finite numbers.

No timing is asserted (the machine may be shared); the full benchmark is not a test.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import speed

EXPECTED = [  # (item, start of the measurement's name[, a word further in it])
    *[(item, name, agent) for agent in ("vae", "rnn_autoencoder") for item, name in (
        ("1", "framework overhead"), ("1", "  change: checkpoints every"), ("1", "  same, without checkpoint writes"),
        ("1", "  change: flush_denormal=true"), ("1", "data batching share of an epoch"))],
    ("2", "recurrent AE training, GRU teacher-forced fused"), ("2", "  change: GRU via graphs/kernels/rnn.py"),
    ("2", "  C++ time loops, GRU, against the fallback"), ("2", "recurrent AE training, LSTM teacher-forced fused"),
    ("2", "  change: C++ time loops, LSTM"), ("2", "  C++ time loops, LSTM, against the fallback"),
    ("2", "  change: free-running LSTM training"),
    ("2", "  change: free-running GRU training"),
    ("2", "recurrent AE scoring, LSTM free-running"), ("2", "  change: free-running LSTM scoring, one call per chunk"),
    ("3", "scoring 2,000 windows, vae"), ("3", "scoring peak memory, vae"),
    ("3", "scoring 2,000 windows, rnn_autoencoder"), ("3", "scoring peak memory, rnn_autoencoder"),
    ("4", "recurrent AE training FLOP/s vs per-step gate matmul"),
    ("4", "recurrent AE training FLOP/s vs all steps in one matmul"),
    ("5", "start-up: python main.py --help"), ("5", "start-up: python -c 'import agents'"),
    ("5", "heavy imports at import agents"), ("5", "heavy imports at main.py --help"),
    ("6", "whole run wall time, vae_converter.json"), ("6", "whole run peak memory, vae_converter.json"),
    ("6", "  change: flush_denormal=true, whole vae_converter.json run"),
    ("6", "whole run wall time, lstm_ecg5000.json"), ("6", "whole run peak memory, lstm_ecg5000.json"),
    ("7", "run wall time, vae_converter, quiet"), ("7", "run wall time, vae_converter, beside a busy process"),
    ("7", "  fixed cost, vae_converter, quiet"), ("7", "  fixed cost, vae_converter, beside a busy process"),
]


def test_speed_benchmark_quick(tmp_path: Path, capsys, shared_ecg_dir: Path) -> None:
    out = tmp_path / "speed.json"
    code = speed.main(["--quick", "--repeats", "1", "--threads", "1", "--experiments-dir", str(tmp_path / "runs"),
                       "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())
    for item, name, *also in EXPECTED:
        found = [r for r in rows if r["item"] == item and r["name"].startswith(name) and all(w in r["name"] for w in also)]
        assert len(found) == 1, (item, name, [r["name"] for r in rows])
        row = found[0]
        assert all(math.isfinite(row[key]) for key in ("ours", "reference", "ratio")), row
        assert any(line.startswith(f"{item:<5} {row['name']}") for line in printed.splitlines()), row["name"]
    assert len(rows) == len(EXPECTED)
    assert "references and notes:" in printed


def test_each_item_prints_its_rows_as_soon_as_measured(tmp_path: Path, capsys, monkeypatch) -> None:
    from benchmarks import speed_recurrent, speed_train
    from benchmarks.speed_common import Row

    seen_before_second = []
    monkeypatch.setattr(speed_train, "framework_overhead", lambda ctx: [Row("1", "first row", 2.0, 1.0, "s", 2.0)])

    def second(ctx):
        seen_before_second.append(capsys.readouterr().out)
        return [Row("2", "second row", 1.0, 1.0, "s", 1.0)]

    monkeypatch.setattr(speed_recurrent, "recurrent", second)
    assert speed.main(["--quick", "--only", "overhead", "recurrent", "--experiments-dir", str(tmp_path)]) == 0
    assert "first row" in seen_before_second[0] and "second row" not in seen_before_second[0]


def test_data_dir_and_skab_dir_reach_every_run_of_items_6_and_7(tmp_path: Path, monkeypatch, capsys,
                                                                shared_ecg_dir: Path) -> None:
    """--data-dir (ECG5000) and --skab-dir replace ../shared in the runs' overrides; without them the runs read it."""
    from benchmarks import speed_system, speed_threads
    from benchmarks.speed_common import Row

    commands: list[list[str]] = []
    monkeypatch.setattr(speed_system, "_run_main", lambda cmd, env: (commands.append(cmd), (1.0, 1.0))[1])
    monkeypatch.setattr(speed_threads, "_run_main", speed_system._run_main)
    monkeypatch.setattr(speed_threads, "timed_phases", lambda run_dir: 0.0)
    monkeypatch.setattr(speed_system, "denormal_change", lambda *a: Row("6", "change", 1.0, 1.0, "s", 1.0))
    ecg, skab = tmp_path / "ecg", tmp_path / "skab"
    ecg.mkdir()
    skab.mkdir()
    (ecg / "ECG5000_TRAIN.txt").write_text("")
    common = ["--quick", "--only", "runs", "threads", "--configs", "lstm_ecg5000", "vae_skab", "--conditions",
              "quiet", "--experiments-dir", str(tmp_path / "runs")]

    def data_dirs() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}  # per config, over item 6's and item 7's runs
        for cmd in (cmd for cmd in commands if "main.py" in cmd):
            found.setdefault(Path(cmd[2]).stem, set()).update(a for a in cmd if a.startswith("data.data_dir="))
        commands.clear()
        return found

    assert speed.main([*common, "--data-dir", str(ecg), "--skab-dir", str(skab)]) == 0
    assert data_dirs() == {"vae_converter": set(), "lstm_ecg5000": {f"data.data_dir={ecg}"},
                           "vae_skab": {f"data.data_dir={skab}"}}
    assert f"data.data_dir={ecg}" in capsys.readouterr().out  # item 6's note names the data it ran on
    assert speed.main(common) == 0
    shared = data_dirs()
    assert shared["lstm_ecg5000"] == {f"data.data_dir={shared_ecg_dir}"}
    assert shared.get("vae_skab", set()) <= {f"data.data_dir={speed_threads.SHARED_SKAB}"}
    for option, folder, text in (("--data-dir", skab, "no ECG5000_TRAIN.txt there"),
                                 ("--skab-dir", tmp_path / "none", "no such folder")):
        with pytest.raises(SystemExit) as stop:
            speed.main([option, str(folder)])
        assert stop.value.code == 2 and f"{option} {folder}: {text}" in capsys.readouterr().err
