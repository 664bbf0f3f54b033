"""Class 7 of the bad-input sweep: the ECG5000 dataset offline (missing, damaged and hostile data and downloads)."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from benchmarks.bad_inputs.common import ECG_TRAIN, QUIET, write


class EcgCases:
    """The ``ecg5000`` cases: data folders missing or damaged, and downloads that fail, are endless or unsafe.

    A mixin of :class:`benchmarks.bad_inputs.builder.Builder`: relies on the attributes and methods of
    :class:`benchmarks.bad_inputs.base.BuilderBase` (``exp``, ``files``, ``add``, ``new_exp``).
    """

    # ---- 7. the ECG5000 dataset offline
    def ecg_cases(self) -> None:
        f = self.files / "ecg"
        empty = f / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        train_only = f / "train_only"
        train_only.mkdir(parents=True, exist_ok=True)
        if ECG_TRAIN.is_file():
            shutil.copy(ECG_TRAIN, train_only / "ECG5000_TRAIN.txt")
        notzip = write(f / "notzip.zip", "this is not a zip\n")
        emptyzip = f / "empty.zip"
        zipfile.ZipFile(emptyzip, "w").close()
        wrongzip = f / "wrong.zip"
        with zipfile.ZipFile(wrongzip, "w") as z:
            z.writestr("README.txt", "no data here")
        travzip = f / "traversal.zip"
        with zipfile.ZipFile(travzip, "w") as z:
            z.writestr("../../ECG_EVIL.txt", "evil")
            z.writestr("ECG5000_TRAIN.txt", "1 1 2 3\n")
        garbage_train = f / "garbage"
        garbage_train.mkdir(exist_ok=True)
        write(garbage_train / "ECG5000_TRAIN.txt", "1,2,3\nhello world\n")
        trunc = f / "trunc"
        trunc.mkdir(exist_ok=True)
        if ECG_TRAIN.is_file():
            write(trunc / "ECG5000_TRAIN.txt", ECG_TRAIN.read_bytes()[:5000])
        badfmt = f / "badfmt"
        badfmt.mkdir(exist_ok=True)
        write(badfmt / "ECG5000_TRAIN.ts", "@problemName ECG5000\n@data\n1,2,3:x\n")
        write(badfmt / "ECG5000_TEST.ts", "garbage")
        wrongclass = f / "wrongclass"
        wrongclass.mkdir(exist_ok=True)
        if ECG_TRAIN.is_file():
            lines = ECG_TRAIN.read_text().splitlines()
            write(wrongclass / "ECG5000_TRAIN.txt", "\n".join(line.replace(line.split()[0], "2.0000000e+00", 1)
                                                             for line in lines) + "\n")
        base = ["configs/vae_ecg5000.json", *QUIET, "--set", f"experiments_dir={self.exp}"]

        def ecg(label: str, *sets: str, watch: list[Path] | None = None) -> None:
            self.add("ecg5000", label, [*base, "--set", f"exp_name={self.new_exp()}",
                                        *[a for s in sets for a in ("--set", s)]],
                     watch=watch or [train_only], must_not_exist=[f.parent / "ECG_EVIL.txt", f / "ECG_EVIL.txt"])

        ecg("data_dir missing, download false", f"data.data_dir={f / 'missing'}", "data.download=false")
        ecg("data_dir empty, merged", f"data.data_dir={empty}", "data.download=false", "data.protocol=merged")
        ecg("data_dir a file", f"data.data_dir={notzip}", "data.download=false")
        ecg("official without TEST", f"data.data_dir={train_only}", "data.download=false")
        ecg("download unreachable URL", f"data.data_dir={empty}", "data.download=true", "data.url=http://127.0.0.1:9/x.zip",
            "data.progress=false")
        ecg("download unreachable, TRAIN present", f"data.data_dir={train_only}", "data.download=true",
            "data.url=http://127.0.0.1:9/x.zip", "data.progress=false")
        ecg("download file:// not a zip", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{notzip}")
        ecg("download file:// empty zip", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{emptyzip}")
        ecg("download file:// zip without the data", f"data.data_dir={empty}", "data.download=true",
            f"data.url=file://{wrongzip}")
        ecg("download file:// zip with ../ member", f"data.data_dir={empty}", "data.download=true",
            f"data.url=file://{travzip}")
        ecg("download file:// missing", f"data.data_dir={empty}", "data.download=true",
            f"data.url=file://{f / 'nope.zip'}")
        ecg("download file:// a folder", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{f}")
        ecg("download ftp:// URL", f"data.data_dir={empty}", "data.download=true", "data.url=ftp://127.0.0.1:9/x.zip")
        ecg("download URL not a URL", f"data.data_dir={empty}", "data.download=true", "data.url=not a url")
        ecg("download file:///dev/zero (endless)", f"data.data_dir={empty}", "data.download=true",
            "data.url=file:///dev/zero", "data.download_max_mb=1")
        ecg("download wrong sha256", f"data.data_dir={empty}", "data.download=true", f"data.url=file://{wrongzip}",
            "data.sha256=00")
        ecg("TRAIN file garbage", f"data.data_dir={garbage_train}", "data.download=false", "data.protocol=merged",
            watch=[garbage_train])
        ecg("TRAIN file truncated mid-line", f"data.data_dir={trunc}", "data.download=false", "data.protocol=merged",
            watch=[trunc])
        ecg("TRAIN/TEST .ts garbage", f"data.data_dir={badfmt}", "data.download=false", watch=[badfmt])
        ecg("TRAIN with no normal class-1 beat", f"data.data_dir={wrongclass}", "data.download=false",
            "data.protocol=merged", watch=[wrongclass])
        ecg("data_dir /proc", "data.data_dir=/proc", "data.download=false", "data.protocol=merged")
        ecg("download into an unwritable data_dir", "data.data_dir=/proc/ecg", "data.download=true",
            f"data.url=file://{wrongzip}")
