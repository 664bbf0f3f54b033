"""Classes 5 and 6 of the bad-input sweep: output paths, and run-folder and resume misuse."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from benchmarks.bad_inputs.common import ROOT, good_csv_rows, to_csv, write


class RunCases:
    """The ``output`` cases (``--output`` onto the input, the run folder, links, devices) and the ``run_folder``
    cases (resumes that do not match, broken run folders, a second process on a folder in use).

    A mixin of :class:`benchmarks.bad_inputs.builder.Builder`: relies on the attributes and methods of
    :class:`benchmarks.bad_inputs.base.BuilderBase` (``exp``, ``base``, ``files``, ``add``, ``new_exp``, ``run_of``,
    ``score_argv``).
    """

    # ---- 5. output paths
    def output_cases(self) -> None:
        f = self.files / "out"
        inp = write(f / "in.csv", to_csv(good_csv_rows(100, label=False, timestamp=False)))
        existing = write(f / "existing.csv", "precious\n")
        os.symlink(inp, f / "link_to_input.csv")
        os.symlink(self.base / "checkpoints" / "best.pt", f / "link_to_best.pt")
        os.symlink(self.base / "config.json", f / "link_to_config.json")
        os.symlink(f / "nowhere" / "x.csv", f / "dangling.csv")
        write(f / "exported.onnx.json", "my own notes\n")
        write(f / "afile", "x")
        mine = f / "my.json"  # a config of the user's own, read by the command
        shutil.copy(ROOT / "configs" / "vae_converter.json", mine)
        (f / "in_folder.csv").mkdir()
        os.mkfifo(f / "pipe.csv")
        score = self.score_argv()
        my_score = [str(mine), *score[1:]]
        export = [*self.score_argv()[:-1], "export", "--format", "torchscript"]
        w = [inp, existing, self.base, f / "exported.onnx.json", mine]
        for label, argv in [
            ("score: --output is the input", [*score, "--input", str(inp), "--output", str(inp)]),
            ("score: --output is the input, --overwrite",
             [*score, "--input", str(inp), "--output", str(inp), "--overwrite"]),
            ("score: --output the input via ./x/../",
             [*score, "--input", str(inp), "--output", str(f / "x" / ".." / "in.csv"), "--overwrite"]),
            ("score: --output a symlink to the input, --overwrite",
             [*score, "--input", str(inp), "--output", str(f / "link_to_input.csv"), "--overwrite"]),
            ("score: --input a symlink, --output its target",
             [*score, "--input", str(f / "link_to_input.csv"), "--output", str(inp), "--overwrite"]),
            ("score: --output the run's best.pt, --overwrite",
             [*score, "--input", str(inp), "--output", str(self.base / "checkpoints" / "best.pt"), "--overwrite"]),
            ("score: --output a symlink to best.pt, --overwrite",
             [*score, "--input", str(inp), "--output", str(f / "link_to_best.pt"), "--overwrite"]),
            ("score: --output a symlink to config.json, --overwrite",
             [*score, "--input", str(inp), "--output", str(f / "link_to_config.json"), "--overwrite"]),
            ("score: --output new file inside the run folder",
             [*score, "--input", str(inp), "--output", str(self.base / "out" / "new.csv")]),
            ("score: --output a folder", [*score, "--input", str(inp), "--output", str(f)]),
            ("score: --output a folder with trailing slash", [*score, "--input", str(inp), "--output", str(f) + "/"]),
            ("score: --output under /proc", [*score, "--input", str(inp), "--output", "/proc/x/s.csv"]),
            ("score: --output under a file", [*score, "--input", str(inp), "--output", str(f / "afile" / "s.csv")]),
            ("score: --output exists, no --overwrite", [*score, "--input", str(inp), "--output", str(existing)]),
            ("score: --output empty string", [*score, "--input", str(inp), "--output", ""]),
            ("score: --output /dev/full, --overwrite",
             [*score, "--input", str(inp), "--output", "/dev/full", "--overwrite"]),
            ("score: --output /dev/null without --overwrite", [*score, "--input", str(inp), "--output", "/dev/null"]),
            ("score: --output a dangling symlink", [*score, "--input", str(inp), "--output", str(f / "dangling.csv")]),
            ("score: --output name 300 chars",
             [*score, "--input", str(inp), "--output", str(f / ("a" * 300 + ".csv"))]),
            ("export: --output exists, no --overwrite", [*export, "--output", str(existing)]),
            ("score: --incidents a folder", [*score, "--input", str(inp), "--output", str(f / "s_inc.csv"),
                                             "--incidents", str(f)]),
            ("export: metadata FILE.json exists", [*export, "--output", str(f / "exported.onnx")]),
            ("export: --output run folder config (metadata config.json)",
             [*export, "--output", str(self.base / "config")]),
            ("export: --output the run's last.pt, --overwrite",
             [*export, "--output", str(self.base / "checkpoints" / "last.pt"), "--overwrite"]),
            ("export: --output a folder", [*export, "--output", str(f)]),
            ("export: --output under /proc", [*export, "--output", "/proc/x/m.pt"]),
            ("export: onnx without a model dir",
             [*self.score_argv()[:-1], "export", "--format", "onnx", "--output", "/proc/x/m.onnx"]),
            ("score: --mode score without --input", [*score, "--output", str(f / "z.csv")]),
            ("score: --resume with --mode score",
             [*score, "--input", str(inp), "--output", str(f / "z.csv"), "--resume"]),
            ("score: unknown --format value", [*export[:-1], "pdf", "--output", str(f / "z.pt")]),
            ("score: --output the config it reads, --overwrite",
             [*my_score, "--input", str(inp), "--output", str(mine), "--overwrite"]),
            ("score: --incidents the config it reads, --overwrite",
             [*my_score, "--input", str(inp), "--output", str(f / "y.csv"), "--incidents", str(mine), "--overwrite"]),
            ("export: metadata onto the config it reads, --overwrite",
             [str(mine), *export[1:], "--output", str(f / "my"), "--overwrite"]),
            ("score: --input a folder", [*score, "--input", str(f / "in_folder.csv"), "--output", str(f / "y.csv")]),
            ("score: --input a named pipe nobody writes",
             [*score, "--input", str(f / "pipe.csv"), "--output", str(f / "y.csv")]),
        ]:
            self.add("output", label, argv, watch=w)

    # ---- 6. run folder and resume misuse
    def run_folder_cases(self) -> None:
        def copy_base(exp_name: str, after: Callable[[Path], None] | None = None) -> Callable[[], None]:
            def prepare() -> None:
                run = self.exp / exp_name
                shutil.copytree(self.base, run, ignore=shutil.ignore_patterns(".lock"))
                if after:
                    after(run)
            return prepare

        for label, sets, after in [
            ("resume with another seed", ["seed=7"], None),
            ("resume with another n_samples", ["data.n_samples=300"], None),
            ("resume with another latent_dim", ["model.latent_dim=3"], None),
            ("resume with another dataset", ["data.name=csv", "data.path=examples/converter_telemetry.csv"], None),
            ("resume with another agent", ["agent=reconstruction"], None),
            ("resume with another lr", ["trainer.learning_rate=0.5"], None),
            ("resume with last.pt deleted", [], lambda run: (run / "checkpoints" / "last.pt").unlink()),
            ("resume with checkpoints/ a file", [], lambda run: (shutil.rmtree(run / "checkpoints"),
                                                                  write(run / "checkpoints", "x"))),
            ("resume with last.pt a folder", [], lambda run: ((run / "checkpoints" / "last.pt").unlink(),
                                                               (run / "checkpoints" / "last.pt").mkdir())),
            ("resume with last.pt a symlink to /dev/zero", [],
             lambda run: ((run / "checkpoints" / "last.pt").unlink(),
                          os.symlink("/dev/zero", run / "checkpoints" / "last.pt"))),
            ("resume with last.pt of another run (latent 3)", [], None),
            ("start again into an existing run", ["__no_resume__"], None),
            ("resume on data changed since the start", [], lambda run: _other_data_recorded(run)),
        ]:
            exp_name = self.new_exp()
            run = self.exp / exp_name
            argv = self.run_of(exp_name)
            argv = [a if a != "trainer.epochs=1" else "trainer.epochs=2" for a in argv]
            if "__no_resume__" in sets:
                sets = []
            else:
                argv.append("--resume")
            argv += [a for s in sets for a in ("--set", s)]
            prep = copy_base(exp_name, after)
            if label == "resume with last.pt of another run (latent 3)":
                prep = copy_base(exp_name, lambda run: self.other_last(run))
            self.add("run_folder", label, argv, prepare=prep, watch=[run / "checkpoints", run / "config.json"])
        f = self.files / "runs"
        write(self.exp / "afile", "not a run")
        write(f / "plainfile", "x")
        for label, argv in [
            ("resume with nothing to resume", [*self.run_of("never"), "--resume"]),
            ("exp_name names a file", self.run_of("afile")),
            ("resume: exp_name names a file", [*self.run_of("afile"), "--resume"]),
            ("experiments_dir under /proc", [*self.run_of("x"), "--set", "experiments_dir=/proc/experiments"]),
            ("experiments_dir is a file", [*self.run_of("x"), "--set", f"experiments_dir={f / 'plainfile'}"]),
            ("experiments_dir under /sys (read-only)",
             [*self.run_of("x"), "--set", "experiments_dir=/sys/experiments"]),
            ("experiments_dir empty string", [*self.run_of("x"), "--set", "experiments_dir="]),
            ("experiments_dir with a NUL character",
             [*self.run_of("x"), "--set", 'experiments_dir="' + str(f) + '/a\\u0000b"']),
            ("experiments_dir with a 300-character folder name",
             [*self.run_of("x"), "--set", f"experiments_dir={f / ('d' * 300)}"]),
            ("score a run never trained", [*self.run_of("never2"), "--mode", "score", "--input",
                                           str(self.files / "ck_score_input.csv"), "--output", str(f / "s.csv")]),
            ("export a run never trained", [*self.run_of("never3"), "--mode", "export", "--format", "torchscript",
                                            "--output", str(f / "m.pt")]),
        ]:
            self.add("run_folder", label, argv, watch=[self.exp / "afile", f / "plainfile"])

        # a second process on a folder in use: the background run trains long, the case comes while it holds the lock
        for label, second in [("resume while the run trains", "resume"), ("second start while the run trains", "start"),
                              ("score while the run trains", "score"), ("export while the run trains", "export")]:
            exp_name = self.new_exp()
            run = self.exp / exp_name
            bg = ["configs/vae_converter.json", "--set", "data.n_samples=3000", "--set", "data.time_steps=100",
                  "--set", "trainer.epochs=100000", "--set", "trainer.progress_bar=false",
                  "--set", "evaluation.make_plots=false", "--set", f"experiments_dir={self.exp}",
                  "--set", f"exp_name={exp_name}", "--set", "trainer.checkpoint_interval_s=0"]
            argv = list(bg)
            if second == "resume":
                argv.append("--resume")
            elif second == "score":
                argv += ["--mode", "score", "--input", str(self.files / "ck_score_input.csv"),
                         "--output", str(f / "b.csv")]
            elif second == "export":
                argv += ["--mode", "export", "--format", "torchscript", "--output", str(f / "b.pt")]
            ready = (lambda run=run: (run / "checkpoints" / "last.pt").is_file()  # noqa: E731
                     and (run / ".lock").is_file())
            self.add("run_folder", label, argv, background=bg, background_ready=ready)

    def other_last(self, run: Path) -> None:
        """Put a last.pt made with another model config (latent_dim 3) into ``run``."""
        import torch

        ck = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
        for key in list(ck["model"]):
            if key.startswith(("to_mu.", "to_logvar.")):  # the latent layer of a VAE of latent_dim 3
                t = ck["model"][key]
                ck["model"][key] = torch.zeros((3, *t.shape[1:]))
        torch.save(ck, run / "checkpoints" / "last.pt")


def _other_data_recorded(run: Path) -> None:
    """Make ``run``'s environment.json record another data digest, as when its data file was edited since."""
    import json

    path = run / "environment.json"
    record = json.loads(path.read_text())
    record["invocations"][0]["numerics"]["data_sha1"] = "0123456789ab"
    path.write_text(json.dumps(record))
