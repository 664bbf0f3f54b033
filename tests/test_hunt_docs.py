"""What the documentation states about the code, checked against the code (found wrong by a docs bug hunt).

- docs/bad-inputs.md's config rows quote messages "copied from real runs": each is produced again here from
  ``configs/vae_converter.json`` with the row's mistake, in-process (no training), and must read as quoted.
- Its CSV rows (the training reader's refusals, the ones that changed as the reader changed): each file is written
  here with the row's mistake and read by the csv loader in-process; the message must read as quoted.
- docs/stopping-resuming.md lists the trainer keys a ``--resume`` may change and the ones it refuses: the
  lists must be the code's (``utils.runs.checkpoints.RESUMABLE_TRAINER_KEYS`` and every other trainer key).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

import agents  # noqa: F401  (fills the registries)
from tests.conftest import REPO_ROOT
from utils.core.config import TrainerConfig, load_config
from utils.core.errors import ConfigError, DataError
from utils.runs.checkpoints import RESUMABLE_TRAINER_KEYS

DOCS = REPO_ROOT / "docs"
SHIPPED = "configs/vae_converter.json"


def _set(section: str, key: str, value) -> Callable[[dict], None]:
    def edit(raw: dict) -> None:
        (raw if section == "" else raw[section])[key] = value
    return edit


def _rename(section: str, old: str, new: str) -> Callable[[dict], None]:
    def edit(raw: dict) -> None:
        raw[section][new] = raw[section].pop(old)
    return edit


def _both(*edits: Callable[[dict], None]) -> Callable[[dict], None]:
    def edit(raw: dict) -> None:
        for one in edits:
            one(raw)
    return edit


#: docs/bad-inputs.md row (its "case" cell) -> the mistake, made in the shipped config file.
CONFIG_ROWS: dict[str, Callable[[dict], None]] = {
    "unknown agent": _set("", "agent", "vea"),
    "unknown model": _set("model", "name", "vea"),
    "unknown dataset": _set("data", "name", "ecg"),
    "unknown loss": _set("loss", "name", "kl"),
    "unknown key": _rename("trainer", "epochs", "epoch"),
    "two typos in one section": _both(_rename("trainer", "epochs", "epoch"),
                                      _rename("trainer", "batch_size", "batchsize")),
    "wrong type": _set("model", "latent_dim", "eight"),
    "zero epochs": _set("trainer", "epochs", 0),
    "negative size": _set("model", "hidden_sizes", [-4]),
    "percentile outside (0, 100]": _both(_set("evaluation", "threshold_percentile", 101),
                                        lambda raw: raw["evaluation"].pop("false_alarm_rate", None)),
    "false-alarm rate outside [0, 1)": _set("evaluation", "false_alarm_rate", 1),
    "a percentile and a false-alarm rate that disagree": _both(_set("evaluation", "threshold_percentile", 90),
                                                                _set("evaluation", "false_alarm_rate", 0.01)),
    "unknown baseline": _set("evaluation", "baselines", ["lof"]),
    "infinite or NaN number": _set("trainer", "learning_rate", float("inf")),
    "seed beyond NumPy's range": _set("", "seed", 4294967296),
    "integer beyond 2**31 - 1 (every size, count and step of every section)": _set("trainer", "batch_size", 10 ** 20),
    "empty `experiments_dir`": _set("", "experiments_dir", ""),
}


_HEADER = "timestamp,voltage,current,temperature,label\n"


def _rows(n: int = 60, **cells: str) -> str:
    """``n`` good rows of the converter telemetry layout; ``cells`` ``{"r<row>": "whole line"}`` replace rows."""
    return "".join(cells.get(f"r{i}", f"2024-05-01T08:{i // 60:02d}:{i % 60:02d},48.0,10.0,30.0,0") + "\n"
                   for i in range(n))


#: docs/bad-inputs.md CSV row -> (file name, its bytes, csv loader keys besides path and window_length).
CSV_ROWS: dict[str, tuple[str, bytes, dict]] = {
    "CSV with decimal commas (`48,012,10,05`)":
        ("my.csv", (_HEADER + _rows(r0="2024-05-01T08:00:00,48,012,10,05,30,1,0")).encode(), {}),
    "tab-separated CSV, `data.separator: \",\"`":
        ("my.csv", (_HEADER + _rows()).replace(",", "\t").encode(), {"separator": ","}),
    "CSV without a header row (UCR `.txt`, SMD)": ("x.txt", b"0.05195\n" * 60, {}),
    "CSV with comment lines above the header": ("my.csv", ("# logger v1.2\n" + _HEADER + _rows()).encode(), {}),
    "CSV row with a missing or extra field":
        ("my.csv", (_HEADER + _rows(r5="2024-05-01T08:00:05,48.0,10.0")).encode(), {}),
    "CSV value beyond float32": ("my.csv", (_HEADER + _rows(r31="2024-05-01T08:00:31,1e39,10.0,30.0,0")).encode(), {}),
    "CSV cell missing (empty, `nan`, `NA`, `null`...)": ("m.csv", b"a,b,c\n" + b"1.5,2.5,3.5\n" * 5 + b"1.5,,3.5\n", {}),
    "timestamps in mixed formats":
        ("my.csv", (_HEADER + _rows(r38="2024-05-01 08:00:38,48.0,10.0,30.0,0")).encode(), {}),
    "CSV not in UTF-8": ("my.csv", (_HEADER + _rows(59)).encode() + b"\xff,1,2,3,0\n", {}),
}


def quoted_message(page: str, case: str) -> str:
    """The first `...` of the table row of ``page`` whose case cell is ``case``."""
    row = re.search(rf"^\| {re.escape(case)} \| `(.+?)`", page, re.M)
    assert row, f"docs/bad-inputs.md has no row {case!r}"
    return row.group(1)


def reads_as(message: str, quoted: str) -> bool:
    """Whether ``message`` reads as ``quoted``, whose ``...`` stands for text left out."""
    return re.fullmatch(".*?".join(re.escape(part.strip(", ")) for part in quoted.split("...")),
                        message, re.S) is not None


def without_names_added(message: str, quoted: str) -> str:
    """``message`` without the names of its closing "valid ...s:" list that ``quoted`` lacks: a model, data set or loss
    added after the page was written (docs/design.md: its own file, no other edit) leaves the quote true."""
    said, page = (re.search(r"valid \w+: ([\w, ]+)$", text) for text in (message, quoted))
    if not (said and page):
        return message
    listed = page.group(1).split(", ")
    return message[:said.start(1)] + ", ".join(name for name in said.group(1).split(", ") if name in listed)


@pytest.mark.parametrize("case", list(CONFIG_ROWS))
def test_the_config_messages_of_the_bad_inputs_page_are_the_code_s(case, tmp_path, monkeypatch) -> None:
    raw = json.loads((REPO_ROOT / SHIPPED).read_text(encoding="utf-8"))
    CONFIG_ROWS[case](raw)
    (tmp_path / "configs").mkdir()
    (tmp_path / SHIPPED).write_text(json.dumps(raw), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(SHIPPED)
    quoted = quoted_message((DOCS / "bad-inputs.md").read_text(encoding="utf-8"), case)
    assert reads_as(without_names_added(str(err.value), quoted), quoted), \
        f"docs/bad-inputs.md quotes\n{quoted}\nbut the code says\n{err.value}"


@pytest.mark.parametrize("case", list(CSV_ROWS))
def test_the_csv_messages_of_the_bad_inputs_page_are_the_code_s(case, tmp_path, monkeypatch) -> None:
    from datasets.csv_recordings import load_csv

    name, data, keys = CSV_ROWS[case]
    (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    labelled = data.startswith(_HEADER.encode())
    with pytest.raises(DataError) as err:
        load_csv(0, path=name, window_length=10, label_columns=["label"] if labelled else None,
                 timestamp_column="timestamp" if labelled else None, **keys)
    quoted = quoted_message((DOCS / "bad-inputs.md").read_text(encoding="utf-8"), case)
    assert reads_as(str(err.value), quoted), f"docs/bad-inputs.md quotes\n{quoted}\nbut the code says\n{err.value}"


def test_reads_as_fails_a_stale_quote() -> None:
    message = 'c.json: data.name: unknown dataset "ecg"; valid datasets: converter, csv, ecg5000, skab'
    assert reads_as(message, 'c.json: data.name: unknown dataset "ecg"; valid datasets: converter, csv, ...')
    assert not reads_as(message, 'c.json: data.name: unknown dataset "ecg"; valid datasets: converter, csv, ecg5000')


def _keys(text: str) -> list[str]:
    return re.findall(r"`(?:trainer\.)?(\w+)`", text)


def test_the_resume_page_lists_the_trainer_keys_a_resume_may_change_and_the_ones_it_keeps() -> None:
    page = " ".join((DOCS / "stopping-resuming.md").read_text(encoding="utf-8").split())
    kept = page.split("or optimisation setting (", 1)[1].split(")", 1)[0]
    may_change = re.sub(r"\([^()]*\)", "", page.split("These trainer keys may change:", 1)[1]).split(";", 1)[0]
    assert set(_keys(may_change)) == set(RESUMABLE_TRAINER_KEYS), may_change
    assert set(_keys(kept)) == set(TrainerConfig.model_fields) - set(RESUMABLE_TRAINER_KEYS), kept


def test_the_plateau_schedule_halves_the_rate_after_the_epochs_the_reference_states() -> None:
    import torch

    from agents.parts import build_scheduler

    stated = re.search(r"`plateau` halves the learning rate once (\d+) epochs in a row brought no lower validation",
                       (DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert stated, "docs/configuration.md no longer says when plateau halves the learning rate"
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = build_scheduler(optimizer, "plateau", epochs=20)
    scheduler.step(1.0)  # the best epoch
    flat = 0
    while optimizer.param_groups[0]["lr"] == 1.0:
        scheduler.step(1.0)
        flat += 1
    assert flat == int(stated.group(1)) and optimizer.param_groups[0]["lr"] == 0.5
