"""Class 4 of the bad-input sweep: damaged checkpoints, each case its own copy of the base run."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from benchmarks.bad_inputs.common import TINY, good_csv_rows, to_csv, write


class CheckpointCases:
    """The ``checkpoint`` cases: ``last.pt`` through ``--resume`` and ``best.pt`` through ``--mode score``, truncated,
    flipped, carrying code or with fields removed and changed.

    A mixin of :class:`benchmarks.bad_inputs.builder.Builder`: relies on the attributes and methods of
    :class:`benchmarks.bad_inputs.base.BuilderBase` (``tmp``, ``exp``, ``base``, ``files``, ``add``, ``new_exp``).
    """

    # ---- 4. damaged checkpoints (each case its own copy of the base run)
    def checkpoint_cases(self) -> None:
        def damage(exp_name: str, fname: str, how: Callable[[Path], None]) -> Callable[[], None]:
            def prepare() -> None:
                run = self.exp / exp_name
                shutil.copytree(self.base, run, ignore=shutil.ignore_patterns(".lock"))
                how(run / "checkpoints" / fname)
            return prepare

        def truncate(size: int | float) -> Callable[[Path], None]:
            def how(p: Path) -> None:
                data = p.read_bytes()
                n = int(size * len(data)) if isinstance(size, float) else size
                p.write_bytes(data[:n])
            return how

        def flip(offset_frac: float, n: int = 16) -> Callable[[Path], None]:
            def how(p: Path) -> None:
                data = bytearray(p.read_bytes())
                at = int(offset_frac * len(data))
                for i in range(at, min(at + n, len(data))):
                    data[i] ^= 0xFF
                p.write_bytes(bytes(data))
            return how

        def edit(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
            def how(p: Path) -> None:
                import torch
                ck = torch.load(p, weights_only=True)
                out = fn(ck)
                torch.save(ck if out is None else out, p)
            return how

        marker = self.tmp / "PWNED_CKPT"

        def pickle_code(p: Path) -> None:
            import pickle

            class Evil:
                def __reduce__(self):
                    return (os.system, (f"touch {marker}",))
            p.write_bytes(pickle.dumps({"model": Evil(), "epoch": 1}))

        def torch_code(p: Path) -> None:
            import torch

            class Evil:
                def __reduce__(self):
                    return (os.system, (f"touch {marker}",))
            torch.save({"model": Evil(), "epoch": 1, "global_step": 1, "optimizer": {}}, p)

        first_weight = lambda ck: next(iter(ck["model"]))  # noqa: E731
        edits: list[tuple[str, Callable[[Path], None]]] = [
            ("truncated to 0 bytes", truncate(0)), ("truncated to 10 bytes", truncate(10)),
            ("truncated to 1000 bytes", truncate(1000)), ("truncated to half", truncate(0.5)),
            ("truncated by 1 byte", truncate(-1)), ("bytes flipped at 30%", flip(0.3)),
            ("bytes flipped at 90%", flip(0.9)), ("bytes flipped near the end", flip(0.995, 8)),
            ("not a zip: text", lambda p: p.write_text("hello")),
            ("a pickle carrying code", pickle_code), ("torch.save of an object carrying code", torch_code),
            ("missing key epoch", edit(lambda ck: ck.pop("epoch"))),
            ("missing key model", edit(lambda ck: ck.pop("model"))),
            ("missing key scaler", edit(lambda ck: ck.pop("scaler"))),
            ("missing key config", edit(lambda ck: ck.pop("config"))),
            ("missing key scoring", edit(lambda ck: ck.pop("scoring"))),
            ("epoch a string", edit(lambda ck: ck.__setitem__("epoch", "1"))),
            ("epoch negative", edit(lambda ck: ck.__setitem__("epoch", -3))),
            ("epoch 2**62", edit(lambda ck: ck.__setitem__("epoch", 2**62))),
            ("global_step a float NaN", edit(lambda ck: ck.__setitem__("global_step", float("nan")))),
            ("model a list", edit(lambda ck: ck.__setitem__("model", [1, 2]))),
            ("NaN weights", edit(lambda ck: ck["model"][first_weight(ck)].fill_(float("nan")))),
            ("inf weights", edit(lambda ck: ck["model"][first_weight(ck)].fill_(float("inf")))),
            ("weight of wrong shape", edit(lambda ck: ck["model"].__setitem__(first_weight(ck),
                                                                               __import__("torch").zeros(2, 2)))),
            ("weight int64", edit(lambda ck: ck["model"].__setitem__(first_weight(ck),
                                                                      ck["model"][first_weight(ck)].long()))),
            ("extra weight", edit(lambda ck: ck["model"].__setitem__("evil.weight", __import__("torch").zeros(1)))),
            ("scaler NaN", edit(lambda ck: _nan_scaler(ck))),
            ("scaler zero range", edit(lambda ck: _zero_scaler(ck))),
            ("feature_names changed", edit(lambda ck: ck.__setitem__("feature_names", ["a", "b", "c"]))),
            ("feature_names wrong count", edit(lambda ck: ck.__setitem__("feature_names", ["voltage"]))),
            ("window_length 0", edit(lambda ck: ck.__setitem__("window_length", 0))),
            ("model_inputs time_steps huge", edit(lambda ck: ck["model_inputs"].__setitem__("time_steps", 10**9))),
            ("config model latent_dim a string", edit(lambda ck: ck["config"]["model"].__setitem__("latent_dim", "x"))),
            ("config not a dict", edit(lambda ck: ck.__setitem__("config", "vae"))),
            ("scoring thresholds text", edit(lambda ck: _scoring_text(ck))),
            ("checkpoint is a tensor", edit(lambda ck: __import__("torch").zeros(3))),
            ("checkpoint is a list", edit(lambda ck: [ck])),
            ("history with NaN losses", edit(lambda ck: _nan_history(ck))),
            ("a TorchScript export in its place", _torchscript),
            ("a CSV in its place", lambda p: p.write_text("voltage,current,temperature\n48.1,10.2,41.5\n")),
            ("a config.json in its place", lambda p: p.write_text('{"exp_name": "base", "data": {}}\n')),
            ("batch_in_epoch past the epoch's end", edit(lambda ck: ck.__setitem__("batch_in_epoch", 10**6))),
        ]
        for label, how in edits:
            # last.pt through --resume (one more epoch), best.pt through --mode score
            for fname, mode in (("last.pt", "resume"), ("best.pt", "score")):
                if mode == "resume" and label in ("missing key scoring", "scoring thresholds text"):
                    continue
                if mode == "score" and label in RESUME_ONLY:  # fields --mode score does not use
                    continue
                exp_name = self.new_exp()
                run = self.exp / exp_name
                argv = ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}",
                        "--set", f"exp_name={exp_name}"]
                if mode == "resume":
                    argv = [*[a if a != "trainer.epochs=1" else "trainer.epochs=2" for a in argv], "--resume"]
                    watch = [run / "checkpoints" / "best.pt", run / "config.json"]
                else:
                    inp = self.files / "ck_score_input.csv"
                    argv = [*argv, "--mode", "score", "--input", str(inp), "--output", str(run) + ".scores.csv"]
                    watch = [run]
                self.add("checkpoint", f"{fname} {label}", argv, prepare=damage(exp_name, fname, how), watch=watch,
                         must_not_exist=[self.tmp / "PWNED_CKPT"])
        write(self.files / "ck_score_input.csv", to_csv(good_csv_rows(100, label=False, timestamp=False)))


#: damage to fields only a resume reads: --mode score leaves them unused and rightly scores
RESUME_ONLY = ("epoch a string", "epoch negative", "epoch 2**62", "global_step a float NaN", "history with NaN losses",
               "batch_in_epoch past the epoch's end")


def _torchscript(p: Path) -> None:
    """An exported model (TorchScript zip) where a checkpoint belongs."""
    import torch

    torch.jit.trace(torch.nn.Linear(3, 3), torch.zeros(1, 3)).save(str(p))


def _nan_scaler(ck: dict) -> None:
    for key, value in ck["scaler"].items():
        if hasattr(value, "fill_") and value.is_floating_point():
            value.fill_(float("nan"))
        elif isinstance(value, list):
            ck["scaler"][key] = [float("nan")] * len(value)


def _zero_scaler(ck: dict) -> None:
    import torch
    for key, value in ck["scaler"].items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            value.zero_()
        elif isinstance(value, list):
            ck["scaler"][key] = [0.0] * len(value)


def _scoring_text(ck: dict) -> None:
    thresholds = ck["scoring"].get("thresholds", {})
    for key in thresholds:
        thresholds[key] = "high"


def _nan_history(ck: dict) -> None:
    for key, value in ck["history"].items():
        if isinstance(value, list):
            ck["history"][key] = [float("nan")] * len(value)
