"""Bug hunt on the command line and the config: combinations a user meets (a run's own config.json given back,
options of another --mode, a --set of one spelling of the false-alarm rate...)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import agents  # noqa: F401  (fills the registries)
import main
from utils.core.config import load_config
from utils.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
VAE_CONVERTER = REPO_ROOT / "configs" / "vae_converter.json"
SCORE = ["--mode", "score", "--input", "in.csv", "--output", "out.csv"]
EXPORT = ["--mode", "export", "--format", "onnx", "--output", "m.onnx"]


@pytest.mark.parametrize("argv, named", [
    (["--input", "my.csv"], "--input"),  # before: trained on the config's data.path, the file never read
    (["--output", "o.csv"], "--output"),
    (["--stride", "5"], "--stride"),
    (["--stride", "0"], "--stride"),  # 0 == False: it passed as not given
    (["--overwrite"], "--overwrite"),
    (["--format", "onnx"], "--format"),
    ([*EXPORT, "--stride", "5"], "--stride"),
    ([*EXPORT, "--input", "in.csv"], "--input"),
    ([*SCORE, "--format", "onnx"], "--format"),
    (["--merge-gap", "0"], "--merge-gap"),
    (["--incidents", "i.csv"], "--incidents"),
    (["--per-step"], "--per-step"),
    (["--reference-rows", "5"], "--reference-rows"),
    ([*EXPORT, "--baselines"], "--baselines"),
    ([*SCORE, "--resume"], "--resume"),
])
def test_an_option_the_mode_does_not_use_is_refused(argv, named, capsys):
    with pytest.raises(SystemExit) as exc:
        main.parse_args([str(VAE_CONVERTER), *argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and named in err.splitlines()[-1] and "--mode" in err.splitlines()[-1], err


@pytest.mark.parametrize("argv", [SCORE + ["--stride", "5", "--overwrite"], EXPORT + ["--overwrite"], ["--resume"]])
def test_the_options_of_each_mode_are_still_taken(argv):
    assert main.parse_args([str(VAE_CONVERTER), *argv]).config == str(VAE_CONVERTER)


def test_a_config_saved_with_a_utf8_byte_order_mark_loads(tmp_path):
    """Windows editors (Notepad, PowerShell's Out-File) save UTF-8 with a BOM; before: 'invalid JSON: Unexpected
    UTF-8 BOM'."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + VAE_CONVERTER.read_bytes())
    assert load_config(path) == load_config(VAE_CONVERTER)


def resolved_run_config(tmp_path: Path) -> Path:
    """A config as a run folder saves it: both spellings of the false-alarm rate resolved (0.01 and 99)."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(load_config(VAE_CONVERTER)))
    return path


def test_a_set_of_the_rate_replaces_the_files_percentile(tmp_path):
    """Before: refused, blaming the run's config.json ('threshold_percentile: 99 means ... set only one')."""
    evaluation = load_config(resolved_run_config(tmp_path), ["evaluation.false_alarm_rate=0.05"]).evaluation
    assert (evaluation.false_alarm_rate, evaluation.threshold_percentile) == (0.05, 95.0)


def test_rates_that_disagree_are_still_refused(tmp_path):
    raw = json.loads(VAE_CONVERTER.read_text())
    raw["evaluation"]["threshold_percentile"] = 95
    (tmp_path / "both.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="both.json: evaluation.threshold_percentile: 95 means"):
        load_config(tmp_path / "both.json")
    with pytest.raises(ConfigError, match=r"--set evaluation.threshold_percentile=95: .*set only one"):
        load_config(VAE_CONVERTER, ["evaluation.false_alarm_rate=0.02", "evaluation.threshold_percentile=95"])
    with pytest.raises(ConfigError, match=r"--set evaluation.threshold_percentile=95: .*set only one"):
        load_config(VAE_CONVERTER, ["evaluation.threshold_percentile=95"])  # the older spelling over the file's rate


def test_a_set_of_null_rate_leaves_the_files_percentile(tmp_path):
    raw = json.loads(VAE_CONVERTER.read_text())
    raw["evaluation"] = {"threshold_percentile": 95}
    (tmp_path / "p.json").write_text(json.dumps(raw))
    assert load_config(tmp_path / "p.json", ["evaluation.false_alarm_rate=null"]).evaluation.false_alarm_rate == 0.05


def test_score_refuses_a_whole_evaluation_section_that_changes_a_calibrated_key(tmp_path):
    """Before: --set evaluation={...} escaped the check of calibrated keys, so its false_alarm_rate was silently
    ignored by the trained detector."""
    trained = load_config(VAE_CONVERTER)
    item = 'evaluation={"false_alarm_rate": 0.05}'
    now = load_config(VAE_CONVERTER, [item])
    with pytest.raises(ConfigError, match=r"--set evaluation \(evaluation.false_alarm_rate=0.05\): the run .* "
                                          r"was trained with evaluation.false_alarm_rate=0.01"):
        main.refuse_shape_overrides([item], now, trained, tmp_path, "score")
    same = 'evaluation={"false_alarm_rate": 0.01, "threshold_adapt_rate": 0.1}'
    main.refuse_shape_overrides([same], load_config(VAE_CONVERTER, [same]), trained, tmp_path, "score")


def test_a_resume_records_its_config_so_the_run_folders_config_resumes_and_reruns_it(run_copy):
    """Before: config.json kept the first start's trainer.epochs=1 after a resume to 2, so --resume with it was
    refused ('below the 2 epochs already trained') and a rerun of it trained 1 epoch instead of the run's 2."""
    root = ["--set", f"experiments_dir={run_copy.parent}"]
    assert main.main([str(run_copy / "config.json"), *root, "--set", "trainer.epochs=2", "--resume"]) == 0
    saved = json.loads((run_copy / "config.json").read_text())
    assert saved["trainer"]["epochs"] == 2 and saved["experiments_dir"] == str(run_copy.parent)
    assert main.main([str(run_copy / "config.json"), "--resume"]) == 0


@pytest.mark.parametrize("item, key, text", [
    ("exp_name=2024", "exp_name", "2024"),  # before: 'exp_name: Input should be a valid string, got 2024'
    ("exp_name=1e5", "exp_name", "1e5"),
    ("description=42", "description", "42"),
])
def test_a_set_of_a_number_to_a_key_that_takes_text_is_that_text(item, key, text):
    assert load_config(VAE_CONVERTER, [item])[key] == text


def test_a_set_of_a_number_to_a_csv_column_is_the_columns_name():
    config = load_config(REPO_ROOT / "configs" / "example_csv.json", ["data.label_column=1", "data.timestamp_column=0"])
    assert (config.data.label_column, config.data.timestamp_column) == ("1", "0")


def test_a_set_number_stays_a_number_where_the_key_takes_one():
    config = load_config(REPO_ROOT / "configs" / "example_csv.json", ["data.train_end=400", "trainer.epochs=3"])
    assert (config.data.train_end, config.trainer.epochs) == (400, 3)
    with pytest.raises(ConfigError, match="exp_name: Input should be a valid string, got true"):
        load_config(VAE_CONVERTER, ["exp_name=true"])  # true is no text anyone types for a name


def test_a_run_saved_with_a_tilde_in_a_path_still_resumes(monkeypatch, tmp_path):
    """A run started before ``~`` was expanded where it enters saved ``"~/..."``; the config now holds the home path."""
    from utils.runs.checkpoints import check_same_run
    monkeypatch.setenv("HOME", str(tmp_path))
    now = load_config(REPO_ROOT / "configs" / "example_csv.json", ["data.path=~/a.csv"])
    saved = json.loads(json.dumps(now))
    saved["data"]["path"] = "~/a.csv"
    check_same_run(saved, now, tmp_path / "last.pt", 0)
    saved["data"]["path"] = "~/b.csv"
    with pytest.raises(ConfigError, match="data.path"):
        check_same_run(saved, now, tmp_path / "last.pt", 0)


@pytest.mark.parametrize("entry", ["experiments_dir", "data.path", "data.data_dir", "load_csv", "load_ecg5000",
                                   "load_skab", "main.py export", "main.py score options", "benchmarks",
                                   "make_example_csv", "report"])
def test_a_leading_tilde_is_the_home_folder_wherever_a_user_gives_a_path(entry, request, monkeypatch, tmp_path):
    """Before: experiments_dir and each loader expanded "~" by hand (a config value, a quoted --set, a Python call);
    main.py's config, --input, --output and --incidents did not: "~/c.json: config file not found", and
    --output=~/s.csv (no shell expands that "~") wrote ./~/s.csv; benchmarks/determinism.py --experiments-dir=~/dx
    trained in $HOME/dx (the config's expansion), then read ./~/dx/run_00/out/metrics.json: FileNotFoundError;
    make_example_csv --output=~/e.csv wrote ./~/e.csv; python -m utils.figures.report "~/run": no such run folder."""
    from datasets.csv_recordings import load_csv
    from datasets.ecg5000 import load_ecg5000
    from datasets.skab import load_skab

    home, here, shared = tmp_path / "home", tmp_path / "here", REPO_ROOT.parent / "shared" / "data"
    for folder in (home, here):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    if entry in ("load_ecg5000", "load_skab") and not (shared / entry[5:].upper()).is_dir():
        pytest.skip(f"shared data not found in {shared}")
    for name in ("ECG5000", "SKAB"):
        (home / name).symlink_to(shared / name)
    (home / "rec.csv").write_text("x\n" + "".join(f"{i % 7}\n" for i in range(200)))
    if entry == "experiments_dir":
        got, want = load_config(VAE_CONVERTER, ["experiments_dir=~/runs"]).experiments_dir, "runs"
    elif entry == "data.path":
        got = load_config(REPO_ROOT / "configs" / "example_csv.json", ['data.path=["~/rec.csv", "~/*.csv"]']).data.path
        want = ["rec.csv", "*.csv"]
    elif entry == "data.data_dir":
        got, want = load_config(REPO_ROOT / "configs" / "vae_skab.json", ["data.data_dir=~/SKAB"]).data.data_dir, "SKAB"
    elif entry == "load_csv":
        got, want = load_csv(0, path=["~", "~/rec.csv", "~/*.csv"], window_length=4).info["files"], ["rec.csv"]
    elif entry == "load_ecg5000":
        got = load_ecg5000(0, data_dir="~/ECG5000", protocol="merged").info["files"]["train"]
        want = "ECG5000/ECG5000_TRAIN.txt"
    elif entry == "load_skab":
        got = load_skab(0, data_dir="~/SKAB", download=False, files=["valve1/0.csv"], window_length=20).info["data_dir"]
        want = "SKAB"
    elif entry == "main.py export":
        (home / "run").symlink_to(request.getfixturevalue("finished"))
        assert main.main(["~/run/config.json", "--mode", "export", "--format", "torchscript", "--output=~/m.pt"]) == 0
        got, want = sorted(str(p) for p in home.glob("m.pt*")), ["m.pt", "m.pt.json"]
    elif entry == "make_example_csv":
        from datasets.make_example_csv import main as make_example

        make_example(["--output=~/e.csv", "--rows=600", "--faults=2"])
        got, want = [str(p) for p in home.glob("e.csv")], ["e.csv"]
    elif entry == "report":
        from utils.figures.report import main as report

        (home / "run").symlink_to(request.getfixturevalue("run_copy"))
        (home / "run" / "out" / "report.md").unlink()
        assert report(["~/run"]) == 0
        got, want = [str(p) for p in home.glob("run/out/report.md")], ["run/out/report.md"]
    elif entry == "benchmarks":  # their path options all read through utils.core.paths.user_path
        from benchmarks import determinism

        args = determinism.parse_args(["--config=~/c.json", "--experiments-dir=~/runs", "--out=~/d.json"])
        got, want = [str(args.config), str(args.experiments_dir), str(args.out)], ["c.json", "runs", "d.json"]
    else:
        args = main.parse_args(["~/c.json", "--mode", "score", "--input=~/in.csv", "--output=~/s.csv",
                                "--incidents=~/i.csv"])
        got, want = [args.config, args.input, args.output, args.incidents], ["c.json", "in.csv", "s.csv", "i.csv"]
    assert got == ([str(home / w) for w in want] if isinstance(want, list) else str(home / want))
    assert not (here / "~").exists() and not (home / "~").exists()


@pytest.mark.parametrize("item, written", [
    ("data.path=[a.csv,b.csv]", 'data.path=["a.csv", "b.csv"]'),  # before: a glob that "matches no file"
    ("data.feature_columns=[voltage, current]", 'data.feature_columns=["voltage", "current"]'),
    ("model.hidden_sizes=[64,]", None),  # before: 'Input should be a valid list, got "[64,]"'
])
def test_a_set_list_that_is_not_json_says_how_to_write_it(item, written):
    config = REPO_ROOT / "configs" / ("vae_converter.json" if item.startswith("model") else "example_csv.json")
    with pytest.raises(ConfigError) as err:
        load_config(config, [item])
    message = str(err.value)
    assert message.startswith(f"--set {item}: not valid JSON") and "double quotes" in message, message
    assert written is None or f"--set '{written}'" in message, message


@pytest.mark.parametrize("item", ["experiments_dir.a.b=5", "exp_name.x=1", "seed.x=1", "trainer.epochs.x=2"])
def test_a_dotted_set_under_a_key_that_is_no_section_is_refused(item):
    """Before: ``experiments_dir.a.b=5`` (a text key the file leaves at its default) ended in an AttributeError."""
    with pytest.raises(ConfigError, match=item.split(".")[0]):
        load_config(VAE_CONVERTER, [item])


def test_text_in_brackets_stays_text_where_the_key_takes_text():
    assert load_config(VAE_CONVERTER, ["description=[draft, v2]"]).description == "[draft, v2]"


def test_a_run_whose_console_reader_goes_away_trains_on_to_the_end(tmp_path) -> None:
    """``python main.py CONFIG | head -1``: the console's pipe closes after the first line; the run went on into a
    BrokenPipeError traceback (exit 1, the run folder of a first epoch removed). Now it ends as it would have, its
    log file whole."""
    import os
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT, TINY_VAE

    argv = [sys.executable, str(REPO_ROOT / "main.py"), str(REPO_ROOT / "configs" / "vae_converter.json"),
            "--set", f"experiments_dir={tmp_path}"]
    for item in (*TINY_VAE, "trainer.epochs=3"):
        argv += ["--set", item]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout.readline().startswith(b"Run folder: ")
    proc.stdout.close()  # as head does after its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err, err
    assert (tmp_path / "run" / "out" / "metrics.json").exists()
    assert "epoch 3/3" in (tmp_path / "run" / "logs" / "train.log").read_text()


def test_adaptive_thresholds_with_a_false_alarm_rate_of_0_are_refused() -> None:
    """At false_alarm_rate 0 the adaptive level only rises: after the first alarm the stream never alarms again."""
    from tests.helpers import REPO_ROOT

    with pytest.raises(ConfigError, match=r"evaluation\.threshold_adapt_rate: 0\.005 adapts the thresholds toward "
                                          r"evaluation\.false_alarm_rate, and at 0 the first alarm"):
        load_config(REPO_ROOT / "configs" / "vae_converter.json",
                    ["evaluation.false_alarm_rate=0", "evaluation.threshold_adapt_rate=0.005"])
    assert load_config(REPO_ROOT / "configs" / "vae_converter.json",
                       ["evaluation.false_alarm_rate=0"]).evaluation.false_alarm_rate == 0
