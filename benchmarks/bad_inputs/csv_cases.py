"""Class 2 of the bad-input sweep: CSV data, for the csv dataset and for ``--mode score``."""
from __future__ import annotations

from pathlib import Path

from benchmarks.bad_inputs.common import QUIET, good_csv_rows, to_csv, write


class CsvCases:
    """The ``csv`` cases: damaged training tables, misnamed columns and labels, and damaged score input.

    A mixin of :class:`benchmarks.bad_inputs.builder.Builder`: relies on the attributes and methods of
    :class:`benchmarks.bad_inputs.base.BuilderBase` (``exp``, ``base``, ``files``, ``cases``, ``add``, ``new_exp``,
    ``score_argv``).
    """

    # ---- 2. CSV data: the csv dataset and --mode score
    def csv_variants(self) -> dict[str, bytes | str]:
        rows = good_csv_rows()
        body = to_csv(rows)
        v: dict[str, bytes | str] = {}
        r = [list(x) for x in rows]
        r[5] = r[5][:-1]
        v["row with a missing field"] = to_csv(r)
        r = [list(x) for x in rows]
        r[9].append("7")
        v["row with an extra field"] = to_csv(r)
        decimal_commas = [rows[0]] + [[c.replace(".", ",") for c in x] for x in rows[1:]]
        v["decimal commas"] = to_csv(decimal_commas)
        v["semicolon, decimal commas"] = to_csv(decimal_commas, ";")
        # tab and | files are read since the separator is detected; with decimal commas they stay refused
        v["tab separated, decimal commas"] = to_csv(decimal_commas, "\t")
        v["pipe separated, decimal commas"] = to_csv(decimal_commas, "|")
        r = [list(x) for x in rows]
        r[11][1] = '"47,9"'
        v["quoted decimal comma"] = to_csv(r)
        r = [list(x) for x in rows]
        r[12][1] = '"48.1'
        v["unterminated quote"] = to_csv(r)
        r = [list(x) for x in rows]
        r[12][1] = '"48\n.1"'
        v["quoted newline in a number"] = to_csv(r)
        v["empty file"] = ""
        v["header only"] = to_csv(rows[:1])
        v["header only with BOM"] = "\ufeff" + to_csv(rows[:1])
        v["two BOMs"] = "\ufeff\ufeff" + body
        v["UTF-16 LE with BOM"] = body.encode("utf-16")
        v["UTF-16 BE without BOM"] = body.encode("utf-16-be")
        v["UTF-32"] = body.encode("utf-32")
        v["latin-1 byte in a value"] = body.encode() .replace(b"41.58", b"41.5\xe9", 1) + b"" if False else \
            to_csv(rows[:20]).encode() + b"2024-05-01T09:00:00,48\xb0,1,1,0\n" + to_csv(rows[21:]).encode()
        r = [list(x) for x in rows]
        r[0][2] = "voltage"
        v["duplicate column"] = to_csv(r)
        r = [list(x) for x in rows]
        r[0][1] = ""
        v["empty column name"] = to_csv(r)
        r = [list(x) for x in rows]
        r[31][1] = "1e39"
        v["value 1e39"] = to_csv(r)
        r = [list(x) for x in rows]
        r[31][1] = "-3.5e38"
        v["value -3.5e38"] = to_csv(r)
        r = [list(x) for x in rows]
        r[32][1] = "NaN"
        v["NaN value"] = to_csv(r)
        r = [list(x) for x in rows]
        r[33][1] = "inf"
        v["inf value"] = to_csv(r)
        r = [list(x) for x in rows]
        r[33][3] = "-Infinity"
        v["-Infinity value"] = to_csv(r)
        r = [list(x) for x in rows]
        r[34][2] = ""
        v["empty cell"] = to_csv(r)
        r = [list(x) for x in rows]
        r[34][2] = " "
        v["blank-space cell"] = to_csv(r)
        r = [list(x) for x in rows]
        r[35][2] = "0x1A"
        v["hex value"] = to_csv(r)
        r = [list(x) for x in rows]
        r[35][2] = "1.2.3"
        v["two decimal points"] = to_csv(r)
        r = [list(x) for x in rows]
        r[35][2] = "--5"
        v["double minus"] = to_csv(r)
        r = [list(x) for x in rows]
        r[35][2] = "5 V"
        v["value with a unit"] = to_csv(r)
        r = [list(x) for x in rows]
        r[36][1] = "True"
        v["boolean text value"] = to_csv(r)
        r = [list(x) for x in rows]
        r[40][0] = "2024-05-01 08:00:39"
        v["timestamps mixed format"] = to_csv(r)
        r = [list(x) for x in rows]
        r[40][0], r[41][0] = r[41][0], r[40][0]
        v["timestamps unsorted"] = to_csv(r)
        r = [list(x) for x in rows]
        r[40][0] = "NaT"
        v["timestamp NaT"] = to_csv(r)
        r = [list(x) for x in rows]
        r[40][0] = "2024-02-30T08:00:00"
        v["timestamp Feb 30"] = to_csv(r)
        r = [list(x) for x in rows]
        r[40][0] = "yesterday"
        v["timestamp text"] = to_csv(r)
        r = [list(x) for x in rows]
        r[40][0] = "2024-05-01T08:00:39+02:00"
        v["timestamp with offset in naive column"] = to_csv(r)
        r = [list(x) for x in rows]
        r[45].append("x" * 2_000_000)
        v["very long line 2M chars"] = to_csv(r)
        r = [list(x) for x in rows]
        r[46] = ["\x00"] * 5
        v["NUL bytes row"] = to_csv(r)
        v["only blank lines"] = "\n\n\n"
        r = [list(x) for x in rows]
        r[0][0] = "time stamp"
        v["header renamed timestamp"] = to_csv(r)
        v["binary garbage"] = bytes(range(256)) * 64
        v["gzip file named .csv"] = __import__("gzip").compress(body.encode())
        for cell in ("nan", "NULL", "?"):  # a label saying "missing": neither normal nor anomalous
            r = [list(x) for x in rows]
            r[50][4] = cell
            v[f"label {cell!r} in one row"] = to_csv(r)
        for value in ("1e30", "1e20", "-1e30"):  # in the test part: beyond float32 arithmetic once scaled
            r = [list(x) for x in rows]
            r[380][2] = value
            v[f"value {value} in the test part"] = to_csv(r)
        return v

    def csv_cases(self) -> None:
        f = self.files / "csv"
        variants = self.csv_variants()
        for i, (label, data) in enumerate(variants.items()):
            path = write(f / f"train_{i:02d}.csv", data)
            argv = ["configs/example_csv.json", "--set", f"data.path={path}", "--set", "data.window_length=10",
                    *QUIET, "--set", f"experiments_dir={self.exp}", "--set", f"exp_name={self.new_exp()}"]
            self.add("csv", f"train: {label}", argv, watch=[path])
        # labels: per the README, empty/0/normal are normal and anything else anomalous, so only these are refusals
        rows = good_csv_rows()
        for label, mutate, sets in [
            ("every row anomalous (no normal to train on)", lambda r: [x[:-1] + ["1"] for x in r[1:]], []),
            ("label column named but absent", None, ["data.label_column=status"]),
            ("timestamp column named but absent", None, ["data.timestamp_column=time"]),
            ("label column = timestamp column", None, ["data.label_column=timestamp"]),
            ("feature column absent", None, ["data.feature_columns=[\"voltage\",\"pressure\"]"]),
            ("feature column = label column", None, ["data.feature_columns=[\"voltage\",\"label\"]"]),
            ("feature columns empty list", None, ["data.feature_columns=[]"]),
            ("feature column twice", None, ["data.feature_columns=[\"voltage\",\"voltage\"]"]),
            ("window longer than the file", None, ["data.window_length=100000"]),
            ("path missing", None, ["data.path=/nonexistent/x.csv"]),
            ("path is a folder", None, [f"data.path={f}"]),
            ("path null", None, ["data.path=null"]),
            ("path /dev/zero", None, ["data.path=/dev/zero"]),
            ("fewer rows than 3 windows", lambda r: r[1:16], []),
            ("text label 'nan' on all rows", lambda r: [x[:-1] + ["nan"] for x in r[1:]], []),
        ]:
            body = rows[1:] if mutate is None else mutate(rows)
            path = write(f / f"lab_{len(self.cases)}.csv", to_csv([rows[0]] + body))
            argv = ["configs/example_csv.json", "--set", f"data.path={path}", "--set", "data.window_length=10",
                    *QUIET, *[a for s in sets for a in ("--set", s)], "--set", f"experiments_dir={self.exp}",
                    "--set", f"exp_name={self.new_exp()}"]
            self.add("csv", f"train: {label}", argv, watch=[path])
        # --mode score input: the same damage on a file with the base run's features
        score_rows = good_csv_rows(100, label=False, timestamp=False)
        srows = [list(x) for x in score_rows]
        score_variants = {
            "missing column": to_csv([x[:2] for x in srows]),
            "unexpected column": to_csv([x + (["pressure"] if i == 0 else ["1"]) for i, x in enumerate(srows)]),
            "decimal commas": to_csv([srows[0]] + [[c.replace(".", ",") for c in x] for x in srows[1:]]),
            "semicolon separated, decimal commas": to_csv([srows[0]] + [[c.replace(".", ",") for c in x]
                                                                        for x in srows[1:]], ";"),
            "NaN value": to_csv(srows[:10] + [["NaN", "1", "1"]] + srows[11:]),
            "inf value": to_csv(srows[:10] + [["1", "inf", "1"]] + srows[11:]),
            "value 1e39": to_csv(srows[:10] + [["1", "1", "1e39"]] + srows[11:]),
            "empty file": "",
            "header only": to_csv(srows[:1]),
            "fewer rows than one window": to_csv(srows[:10]),
            "UTF-16": to_csv(srows).encode("utf-16"),
            "duplicate column": to_csv([["voltage", "voltage", "temperature"]] + srows[1:]),
            "row with extra field": to_csv(srows[:5] + [srows[5] + ["9"]] + srows[6:]),
            "text value": to_csv(srows[:7] + [["x7", "1", "1"]] + srows[8:]),
            "very long line": to_csv(srows[:7] + [["1", "1", "1" * 1_100_000]] + srows[8:]),
            **{f"value {v} (beyond float32 arithmetic once scaled)": to_csv(srows[:30] + [["48", v, "40"]] + srows[31:])
               for v in ("1e30", "1e20", "-1e30")},
        }
        for i, (label, data) in enumerate(score_variants.items()):
            path = write(f / f"score_{i:02d}.csv", data)
            out = f / f"score_{i:02d}_out.csv"
            self.add("csv", f"score: {label}", [*self.score_argv(), "--input", str(path), "--output", str(out)],
                     watch=[path, self.base])
        self.recording_cases(f)
        for label, stride in (("stride 0", "0"), ("stride -5", "-5"), ("stride huge", "99999999999999999999")):
            path = write(f / f"score_stride_{label[-2:].strip()}.csv", to_csv(srows))
            self.add("csv", f"score: {label}", [*self.score_argv(), "--input", str(path), "--output",
                                                str(f / f"o_{len(self.cases)}.csv"), "--stride", stride],
                     watch=[path, self.base])

    def recording_cases(self, f: Path) -> None:
        """Many recordings and where learning ends: folders, globs, lists, train_end, labels, normalisation."""
        rows = good_csv_rows()
        folder = f / "recordings"
        good = [write(folder / f"{i}.csv", to_csv(rows)) for i in range(2)]
        write(f / "rec_other" / "b.csv", to_csv([["timestamp", "voltage", "current", "pressure",
                                                                 "label"]] + rows[1:]))
        write(f / "rec_other" / "a.csv", to_csv(rows))
        (f / "rec_empty").mkdir(parents=True, exist_ok=True)
        flag = write(f / "rec_flag.csv", to_csv([r + (["status"] if i == 0 else [str(i % 2)])
                                                 for i, r in enumerate(rows)]))
        machine = write(f / "rec_text.csv", to_csv([r + (["machine"] if i == 0 else ["pump-3"])
                                                    for i, r in enumerate(rows)]))
        holes = [list(r) for r in rows]
        holes[1][1] = ""  # the first row without a voltage: nothing to carry forward
        first_hole = write(f / "rec_first_hole.csv", to_csv(holes))
        dotted = write(f / "rec_dotted.csv", to_csv([[c.replace(".", ",") for c in r] if i != 9 else r
                                                    for i, r in enumerate(rows)], ";"))  # row 8 keeps its dots
        for label, sets, watch in [
            ("folder without CSV files", [f"data.path={f / 'rec_empty'}"], []),
            ("glob matching nothing", [f"data.path={f / 'nothing_*.csv'}"], []),
            ("list with a missing file", [f"data.path=[\"{good[0]}\", \"{f / 'gone.csv'}\"]"], good[:1]),
            ("files with different headers", [f"data.path={f / 'rec_other'}"], []),
            ("train_end past the last row", [f"data.path={folder}", "data.train_end=5000"], good),
            ("train_end 0", [f"data.path={folder}", "data.train_end=0"], good),
            ("train_end 1.5", [f"data.path={folder}", "data.train_end=1.5"], good),
            ("train_end a time before the file", [f"data.path={folder}", "data.train_end=2020-01-01T00:00:00"], good),
            ("train_end a time without timestamp column", [f"data.path={folder}", "data.timestamp_column=null",
                                                           "data.train_end=2024-05-01T08:03:00"], good),
            ("train_end not a time", [f"data.path={folder}", "data.train_end=soon"], good),
            ("train_end with test_fraction", [f"data.path={folder}", "data.test_fraction=0.2",
                                              "data.train_end=200"], good),
            ("train_labels unknown", [f"data.path={folder}", "data.train_end=200", "data.train_labels=drop"], good),
            ("normalize unknown", [f"data.path={folder}", "data.normalize=per_file"], good),
            ("normalize with the random split", [f"data.path={good[0]}", "data.normalize=per_recording",
                                                 "data.split=random"], good[:1]),
            ("separator a letter", [f"data.path={folder}", "data.separator=a"], good),
            ("separator two characters", [f"data.path={folder}", "data.separator=;;"], good),
            ("label_column and label_columns", [f"data.path={folder}", "data.label_columns=[\"label\"]"], good),
            ("a 0/1 column not declared", [f"data.path={flag}"], [flag]),
            ("a text column", [f"data.path={machine}"], [machine]),
            ("missing_values previous, the first row missing", [f"data.path={first_hole}",
                                                                "data.missing_values=previous"], [first_hole]),
            ("decimal comma with a comma-separated file", [f"data.path={folder}", "data.decimal=,"], good),
            ("decimal comma, a dotted number", [f"data.path={dotted}", "data.decimal=,"], [dotted]),
        ]:
            # example_csv.json gives test_fraction, which train_end replaces
            sets = ["data.test_fraction=null", *sets] if any("train_end" in s for s in sets) else sets
            argv = ["configs/example_csv.json", "--set", "data.window_length=10", *QUIET,
                    *[a for s in sets for a in ("--set", s)], "--set", f"experiments_dir={self.exp}",
                    "--set", f"exp_name={self.new_exp()}"]
            self.add("csv", f"recordings: {label}", argv, watch=watch)
