"""Class 3 of the bad-input sweep: NPY score input."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.bad_inputs.common import ROOT, write


class NpyCases:
    """The ``npy`` cases: arrays of the wrong type, shape or values, and files that only claim to be NPY.

    A mixin of :class:`benchmarks.bad_inputs.builder.Builder`: relies on the attributes and methods of
    :class:`benchmarks.bad_inputs.base.BuilderBase` (``base``, ``files``, ``cases``, ``add``, ``score_argv``).
    """

    # ---- 3. NPY score input
    def npy_cases(self) -> None:
        import numpy as np

        f = self.files / "npy"
        f.mkdir(parents=True, exist_ok=True)
        good = np.random.default_rng(0).normal(size=(100, 3))
        arrays: dict[str, Any] = {
            "bool": good > 0,
            "complex": good.astype(np.complex128),
            "strings": good.astype(str),
            "bytes": good.astype("S8"),
            "datetime64": np.zeros((100, 3), dtype="datetime64[s]"),
            "structured": np.zeros(100, dtype=[("voltage", "f8"), ("current", "f8"), ("temperature", "f8")]),
            "1-d": good[:, 0],
            "4-d": good.reshape(1, 1, 100, 3),
            "0-d": np.array(1.0),
            "wrong F (2)": good[:, :2],
            "wrong F (4)": np.concatenate([good, good[:, :1]], axis=1),
            "wrong T windows (10, 10, 3)": good[:100].reshape(10, 10, 3),
            "empty (0, 3)": np.zeros((0, 3)),
            "empty (0, 25, 3)": np.zeros((0, 25, 3)),
            "too few rows (5, 3)": good[:5],
            "NaN": np.where(np.arange(300).reshape(100, 3) == 41, np.nan, good),
            "inf": np.where(np.arange(300).reshape(100, 3) == 7, np.inf, good),
            "1e39 float64": np.where(np.arange(300).reshape(100, 3) == 7, 1e39, good),
            "big-endian >f8 with a NaN": np.where(np.arange(300).reshape(100, 3) == 3, np.nan, good).astype(">f8"),
            "T=0 windows (4, 0, 3)": np.zeros((4, 0, 3)),
        }
        for label, arr in arrays.items():
            path = f / f"a_{len(self.cases)}.npy"
            np.save(path, arr)
            self.add("npy", label, [*self.score_argv(), "--input", str(path), "--output", str(path) + ".out.csv"],
                     watch=[path, self.base])
        obj = np.empty((100, 3), dtype=object)
        obj[:] = 1.0
        for label, writer in [
            ("object array (needs pickle)", lambda p: np.save(p, obj, allow_pickle=True)),
            ("pickle renamed .npy", lambda p: p.write_bytes(__import__("pickle").dumps(good))),
            ("npz renamed .npy", lambda p: np.savez(open(p, "wb"), a=good)),
            ("truncated npy", lambda p: (np.save(p, good), p.write_bytes(p.read_bytes()[:90]))),
            ("truncated data part", lambda p: (np.save(p, good), p.write_bytes(p.read_bytes()[:-100]))),
            ("header claims 10^12 rows", lambda p: p.write_bytes(
                _npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 3), }") + b"\0" * 64)),
            ("header with negative shape", lambda p: p.write_bytes(
                _npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 3), }") + b"\0" * 64)),
            ("header with code in descr", lambda p: p.write_bytes(
                _npy_header("{'descr': __import__('os').system('touch PWNED'), 'fortran_order': False, "
                            "'shape': (1, 3), }")
                + b"\0" * 64)),
            ("empty file", lambda p: p.write_bytes(b"")),
            ("a CSV named .npy", lambda p: p.write_text("voltage,current,temperature\n1,2,3\n")),
        ]:
            path = f / f"w_{len(self.cases)}.npy"
            writer(path)
            self.add("npy", label, [*self.score_argv(), "--input", str(path), "--output", str(path) + ".out.csv"],
                     watch=[path, self.base], must_not_exist=[ROOT / "PWNED", Path.cwd() / "PWNED"])
        path = f / "missing.npy"
        self.add("npy", "input missing", [*self.score_argv(), "--input", str(path), "--output", str(f / "m.csv")])
        self.add("npy", "input is a folder", [*self.score_argv(), "--input", str(f), "--output", str(f / "d.csv")])
        self.add("npy", "input .txt extension", [*self.score_argv(), "--input", str(write(f / "x.txt", "1,2,3\n")),
                                                 "--output", str(f / "t.csv")])


def _npy_header(header: str) -> bytes:
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h
