"""Input is read right or refused naming the file, row, line and column: the csv dataset, --mode score, ECG5000.

Each hostile file goes through ``main`` (exit code 2, one message, no traceback,
nothing written) or through the reader (``DataError``), and the message must
name the place and say what would be valid.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import main
from datasets.csv_reading import CsvStream
from datasets.csv_recordings import read_csv_series
from datasets.ecg5000 import read_ucr
from tests.helpers import REPO_ROOT, run_main
from utils.core.errors import DataError

EXAMPLE_LINES = (REPO_ROOT / "examples" / "converter_telemetry.csv").read_text().splitlines()[:121]
F32 = "outside the float32 range the models compute in, +-3.4028235e+38"


def example(tmp_path, edit=None, name="in.csv", encoding="utf-8") -> str:
    """The first 120 rows of the shipped example CSV, ``edit(lines)`` applied, written to ``tmp_path/name``."""
    lines = list(EXAMPLE_LINES)
    if edit is not None:
        lines = edit(lines)
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding) if isinstance(lines, list) else lines)
    return str(path)


def set_line(no: int, text: str):
    def edit(lines):
        lines[no - 1] = text
        return lines
    return edit


def european(lines):
    """``;`` between fields, ``,`` as the decimal point (a spreadsheet's CSV in much of Europe)."""
    return [line.replace(",", ";").replace(".", ",") for line in lines]


def decimal_commas(lines):
    """Decimal commas but ``,`` still the separator: every number splits in two."""
    return [lines[0]] + [line.replace(".", ",") for line in lines[1:]]


def fails(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    return err


# ----- the csv dataset, through main ------------------------------------------------------------
@pytest.mark.parametrize("edit,fragments", [
    (decimal_commas, ["in.csv: row 0 (line 2): 8 fields, but the header has 5 columns (timestamp, voltage, current, "
                      "temperature, label); if the file writes decimal commas ('1,5' for 1.5), each splits a number "
                      "into two fields: the reader expects ',' between fields and '.' as the decimal point"]),
    (european, ["in.csv: row 0 (line 2), column 'voltage': '47,949' is not a number (a decimal comma? write 1.5 "
                "for 1,5, or read them with data.decimal: \",\")"]),  # ';' is detected; data.decimal reads them
    (set_line(50, "2024-05-01T08:00:48,47.9,9.6,41.5,0,7"), ["in.csv: row 48 (line 50): 6 fields, but the header "
                                                              "has 5 columns"]),
    (set_line(7, "2024-05-01T08:00:05,47.9,9.6"), ["in.csv: row 5 (line 7): 3 fields, but the header has 5 columns"]),
    (set_line(9, "2024-05-01T08:00:07;47.9;9.6;41.5;0"), ["in.csv: row 7 (line 9): 1 field", "the row looks "
                                                           "';'-separated"]),
    (set_line(33, "2024-05-01T08:00:31,1e39,9.6,41.5,0"), [f"in.csv: row 31 (line 33), column 'voltage': value is "
                                                            f"1e+39, {F32}; rescale it"]),
    (set_line(33, "2024-05-01T08:00:31,47.9,1e400,41.5,0"), ["in.csv: row 31 (line 33), column 'current': '1e400' is "
                                                              "beyond the largest float (+-1.8e+308; it reads as "
                                                              "inf); rescale it (e.g. other units)"]),
    (set_line(12, '2024-05-01T08:00:10,"47,9",9.6,41.5,0'), ["in.csv: row 10 (line 12), column 'voltage': '47,9' is "
                                                              "not a number (a decimal comma? write 1.5 for 1,5)"]),
    (set_line(40, "2024-05-01 08:00:38,47.9,9.6,41.5,0"), ["in.csv: row 38 (line 40), column 'timestamp': timestamp "
                                                            "'2024-05-01 08:00:38' is written in another format than "
                                                            "row 0 ('2024-05-01T08:00:00')"]),
    (set_line(41, "NaT,47.9,9.6,41.5,0"), ["in.csv: row 39 (line 41), column 'timestamp': timestamp 'NaT'"]),
    (lambda lines: ("\n".join(lines[:60]) + "\n2024-05-01T08:00:59,4\xff7.9,9.6,41.5,0\n").encode("latin-1"),
     ["in.csv: line 61: bytes that are not UTF-8 text (invalid start byte); save the file as UTF-8"]),
], ids=["decimal-commas", "semicolons-and-decimal-commas", "extra-field", "missing-fields", "one-row-semicolons",
        "float32-overflow", "float64-overflow", "quoted-decimal-comma", "mixed-timestamp-formats", "NaT-timestamp",
        "not-utf8"])
def test_csv_dataset_refuses_naming_the_place(tmp_path, capsys, edit, fragments):
    path = example(tmp_path, edit)
    err = fails(capsys, run_main("example_csv.json", tmp_path / "exp", f"data.path={path}"))
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "exp").exists()


def test_bom_and_crlf_are_read_right(tmp_path):
    plain = read_csv_series(example(tmp_path), label_column="label", timestamp_column="timestamp")
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(EXAMPLE_LINES).encode() + b"\r\n")
    read = read_csv_series(bom, label_column="label", timestamp_column="timestamp")
    assert read[1] == plain[1] == ["voltage", "current", "temperature"]
    np.testing.assert_array_equal(read[0], plain[0])
    np.testing.assert_array_equal(read[3], plain[3])


def test_utf16_is_named(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes("\n".join(EXAMPLE_LINES).encode("utf-16"))
    with pytest.raises(DataError, match=r"u16\.csv: the file is UTF-16 text .*; save it as CSV UTF-8"):
        read_csv_series(path)


def test_endless_line_and_wide_header_stay_bounded(tmp_path):
    endless = tmp_path / "endless.csv"
    endless.write_bytes(b"a,b\n1,2\n" + b"1" * (3 * 2**20))  # no line break for 3 MiB
    with pytest.raises(DataError, match=r"endless\.csv: line 3 is longer than 1048576 characters; expected one row"):
        read_csv_series(endless)
    wide = tmp_path / "wide.csv"
    names = [f"c{i}" for i in range(100_000)]
    wide.write_text(",".join(names + ["c7"]) + "\n")
    with pytest.raises(DataError, match=r"wide\.csv: line 1: duplicate column names \['c7'\]"):
        read_csv_series(wide)  # at once: no quadratic duplicate search
    wide.write_text(",".join(names) + "\n" + ",".join(["1"] * 99_999) + "\n")
    with pytest.raises(DataError, match=r"99999 fields, but the header has 100000 columns \(c0, c1, .*, c11, "
                                        r"\.\.\. \(100000 in all\)\)"):
        read_csv_series(wide)
    endless.write_bytes(b"a" * (16 * 2**20))  # a header over 16 MiB, from a file or a pipe
    stream = CsvStream(io.BufferedReader(io.BytesIO(endless.read_bytes())), name=endless)
    for read in (lambda: read_csv_series(endless), stream.read_header):
        with pytest.raises(DataError, match=r"endless\.csv: line 1 is longer than 16 MiB; expected a header row"):
            read()


def test_iso_times_with_and_without_fractions_are_one_format(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("t,a\n2024-05-01T08:00:00,1\n2024-05-01T08:00:00.500000,2\n2024-05-01T08:00:01,3\n")
    times = read_csv_series(path, timestamp_column="t")[3]
    assert times.dtype == np.dtype("datetime64[ns]") and np.all(np.diff(times) > np.timedelta64(0))


# ----- --mode score: CSV and NPY ------------------------------------------------------------------
@pytest.fixture(scope="module")
def scorer(tiny_runs):
    """argv of --mode score on the tiny VAE run (features voltage, current, temperature; windows of 25)."""
    run_dir = tiny_runs.of_model("vae")
    return [str(run_dir.parent / "tiny_vae.json"), "--mode", "score"]


def rows_csv(tmp_path, edit=None) -> str:
    rng = np.random.default_rng(0)
    lines = ["voltage,current,temperature"] + [f"{48 + rng.normal():.3f},{10 + rng.normal():.3f},"
                                               f"{42 + rng.normal():.3f}" for _ in range(100)]
    path = tmp_path / "new.csv"
    path.write_text("\n".join(edit(lines) if edit else lines) + "\n")
    return str(path)


def npy(tmp_path, array) -> str:
    path = tmp_path / "new.npy"
    np.save(path, array)
    return str(path)


def npz_named_npy(tmp_path) -> str:
    """An .npz archive under an .npy name (np.load would hand back an NpzFile)."""
    np.savez(tmp_path / "new.npz", x=np.ones((60, 3)))
    return str((tmp_path / "new.npz").rename(tmp_path / "new.npy"))


@pytest.mark.parametrize("make,fragment", [
    (lambda p: rows_csv(p, decimal_commas), "new.csv: row 0 (line 2): 6 fields, but the header has 3 columns "
                                            "(voltage, current, temperature); if the file writes decimal commas"),
    # the separator is detected from the header (';'), so the decimal commas are what is refused
    (lambda p: rows_csv(p, european), "new.csv: row 0 (line 2), column 'voltage': '48,126' is not a number (a "
                                      "decimal comma? write 1.5 for 1,5)"),
    (lambda p: rows_csv(p, set_line(80, "48.1,10.2,42.0,1")), "new.csv: row 78 (line 80): 4 fields, but the header "
                                                              "has 3 columns (voltage, current, temperature)\n"),
    (lambda p: rows_csv(p, set_line(81, "48.1,10.2")), "new.csv: row 79 (line 81): 2 fields"),
    (lambda p: rows_csv(p, set_line(30, "48.1,-3e38,1e39")), f"new.csv: row 28 (line 30), column 'temperature': value "
                                                             f"is 1e+39, {F32}"),
    (lambda p: rows_csv(p, set_line(30, '48.1,"-1e999",42.0')), "new.csv: row 28 (line 30), column 'current': "
                                                               "'-1e999' is beyond the largest float"),
    (lambda p: rows_csv(p, set_line(30, "48.1,-inf,42.0")), "new.csv: row 28 (line 30), column 'current': value is "
                                                            "-inf; clean or fill these cells"),
    (lambda p: npy(p, np.where(np.arange(60)[:, None] == 41, [[1.0, 1e39, 1.0]], np.ones((60, 3)))),
     f"new.npy: row 41, column 1 ('current') holds 1e+39, {F32}"),
    (lambda p: npy(p, np.full((3, 25, 3), -1e300)), f"new.npy: window 0, time step 0, feature 0 ('voltage') holds "
                                                    f"-1e+300, {F32}"),
    (lambda p: npy(p, np.ones((60, 3), dtype=bool)), "new.npy: dtype bool is not numeric; expected float or integer"),
    (lambda p: npy(p, np.ones((60, 3), dtype=complex)), "new.npy: dtype complex128 is not numeric"),
    (lambda p: npy(p, np.ones(60)), "new.npy: shape (60,); expected (rows, 3) time steps or (N, 25, 3) windows"),
    (npz_named_npy, ("new.npy: not a readable .npy array (it does not start with the .npy magic bytes; save the "
                     "array with numpy.save)")),
], ids=["decimal-commas", "semicolons", "extra-field", "missing-field", "float32-overflow", "float64-overflow",
        "literal-inf", "npy-rows-overflow", "npy-windows-overflow", "npy-bool", "npy-complex", "npy-1d",
        "npz-named-npy"])
def test_score_input_refused_naming_the_place(scorer, tmp_path, capsys, make, fragment):
    src = make(tmp_path)
    out = tmp_path / "scores.csv"
    err = fails(capsys, main.main([*scorer, "--input", src, "--output", str(out)]))
    assert fragment in err, err
    assert not out.exists() and not list(tmp_path.glob(".scores.csv.*"))


def test_score_input_with_bom_scores(scorer, tmp_path, capsys):
    src = rows_csv(tmp_path)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + open(src, "rb").read())
    for path, out in ((src, tmp_path / "a.csv"), (bom, tmp_path / "b.csv")):
        assert main.main([*scorer, "--input", str(path), "--output", str(out)]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    capsys.readouterr()


# ----- the ECG5000 readers ------------------------------------------------------------------------
TS = "@problemName X\n@seriesLength 3\n@data\n"
ARFF = "@relation X\n@attribute a numeric\n@attribute b numeric\n@attribute c numeric\n@attribute t {1,2}\n@data\n"


@pytest.mark.parametrize("name,text,fragment", [
    ("x.txt", "1 0.5 0.6 0.7\n2 0.5 1e39 0.7\n", f"x.txt: line 2, field 3: value 1e+39, {F32}"),
    ("x.ts", TS + "0.5,0.6,0.7:1\n0.5,0.6,-4e38:2\n", f"x.ts: line 5, field 3: value -4e+38, {F32}"),
    ("x.arff", ARFF + "0.5,0.6,0.7,1\n5e38,0.6,0.7,2\n", f"x.arff: line 8, field 1: value 5e+38, {F32}"),
    ("x.ts", TS + "0.5,0.6,0.7:1\n0.5,1e400,0.7:2\n", "x.ts: line 5, field 2: '1e400' is beyond the largest float "
                                                     "(+-1.8e+308; it reads as inf); rescale it"),
    ("x.arff", ARFF + "0.5,0.6,0.7,1\n0.5,0.6,nan,2\n", "x.arff: line 8, field 3 holds nan, not a finite number"),
    ("x.txt", "1 0.5 0.6 0.7\n1e39 0.5 0.6 0.7\n", "x.txt: line 2: label 1e+39 is too large for a class number"),
    ("x.txt", "1 0.5 0.6 0.7\n\xff 0.1 0.2 0.3\n", "x.txt: line 2: bytes that are not UTF-8 text"),
], ids=["txt-overflow", "ts-overflow", "arff-overflow", "ts-float64-overflow", "arff-nan", "huge-label", "not-utf8"])
def test_ucr_readers_refuse_beyond_float32(tmp_path, name, text, fragment):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_ucr(path)
    assert fragment in str(info.value)


def test_ucr_reader_skips_a_bom(tmp_path):
    path = tmp_path / "b.txt"
    path.write_bytes(b"\xef\xbb\xbf1 0.5 0.6\n2 0.1 0.2\n")
    x, labels = read_ucr(path)
    assert labels.tolist() == [1, 2] and x.dtype == np.float32


EMPTY = "line 1: the header has an empty column name"


@pytest.mark.parametrize("first_line, message", [
    ("# logger v1.2", r"line 1 \('# logger v1\.2'\) looks like a comment, not a header .* remove the lines above it"),
    (",timestamp,voltage,current,temperature,label",
     EMPTY + r" .*the first column has no name, as pandas' DataFrame\.to_csv writes its index: save the file with "
     r"index=False"),
    ("timestamp,voltage,current,temperature,label,", EMPTY + r" .*the line ends with the separator"),
    ("timestamp,voltage,,temperature,label", EMPTY + r" \('timestamp,voltage,,temperature,label'\)$"),
    ("timestamp,voltage,voltage,temperature,label", r"line 1: duplicate column names \['voltage'\]"),
    ("1,2,3", r"line 1 holds only numbers \('1,2,3'\); expected a header row"),
])
def test_headers_users_export_are_refused_saying_why_from_a_file_and_a_pipe(tmp_path, first_line, message):
    path = example(tmp_path, lambda lines: [first_line] + lines[1:])
    with pytest.raises(DataError, match=r"in\.csv: " + message):
        read_csv_series(path, label_column="label", timestamp_column="timestamp")
    stream = CsvStream(io.BufferedReader(io.BytesIO(Path(path).read_bytes())), name="<stdin>")
    with pytest.raises(DataError, match=r"<stdin>: " + message):
        stream.read_header()


@pytest.mark.parametrize("make, message", [
    (lambda body: __import__("gzip").compress(body), r"gzip-compressed, not CSV text; decompress it first \(gunzip\)"),
    (lambda body: __import__("lzma").compress(body), r"xz-compressed, not CSV text; decompress it first \(unxz\)"),
    (lambda body: b"PK\x03\x04" + body, r"a zip archive or an Excel workbook \(\.xlsx\), not CSV text; unzip it, or "
                                         r"save the sheet as CSV UTF-8"),
    (lambda body: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), r"an Excel workbook \(\.xls\), not CSV text"),
    (lambda body: b"PAR1\x15\x04" + bytes(64), r"a Parquet file, not CSV text; write it as CSV"),
    (lambda body: b"\x93NUMPY\x01\x00" + bytes(64), r"a NumPy \.npy array, not CSV text"),
    (lambda body: b"\x28\xb5\x2f\xfd" + bytes(64), r"zstd-compressed, not CSV text"),
])
def test_binary_files_named_csv_are_refused_naming_what_they_are(tmp_path, make, message):
    path = tmp_path / "in.csv"
    path.write_bytes(make(("\n".join(EXAMPLE_LINES) + "\n").encode()))
    with pytest.raises(DataError, match=r"in\.csv: the file is " + message):
        read_csv_series(path)


def test_a_header_that_starts_like_a_magic_number_is_still_a_header(tmp_path):
    path = tmp_path / "par.csv"
    path.write_text("PAR1,PAR2,label\n" + "".join(f"{i},{2 * i},0\n" for i in range(20)))
    assert read_csv_series(path, label_column="label")[0].shape == (20, 2)
