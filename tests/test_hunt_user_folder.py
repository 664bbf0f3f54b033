"""A user's own folder of sensor CSV files (bug hunt): what the csv loader and the command line do with the
recordings people have, and that each refusal names the file at fault."""
from __future__ import annotations

import re

import pytest

from datasets.csv_recordings import load_csv
from utils.core.errors import ConfigError


def write_timed(path, stamps):
    """One row per timestamp, column ``a`` counting the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("time,a\n" + "".join(f"{stamp},{i}\n" for i, stamp in enumerate(stamps)))
    return path


def minutes(n, offset=""):
    """``n`` ISO times a minute apart from 08:00, each with the UTC ``offset`` written after it."""
    return [f"2024-05-01T{8 + i // 60:02d}:{i % 60:02d}:00{offset}" for i in range(n)]


@pytest.mark.parametrize("train_end, refused", [("2024-05-01T09:00:00+02:00", "b.csv"),
                                                ("2024-05-01T09:00:00", "a.csv")])
def test_a_train_end_time_that_one_files_utc_offsets_disagree_with_names_that_file(tmp_path, train_end, refused):
    # one logger writes UTC offsets, the other none: no single train_end time reads the same in both
    write_timed(tmp_path / "a.csv", minutes(240, "+02:00"))
    write_timed(tmp_path / "b.csv", minutes(240))
    with pytest.raises(ConfigError, match=rf"{refused}: data.train_end: '{re.escape(train_end)}' has"):
        load_csv(0, path=str(tmp_path), window_length=5, stride=1, timestamp_column="time", train_end=train_end)
