"""Class 1 of the bad-input sweep: config files and ``--set`` values."""
from __future__ import annotations

import sys
import typing

from benchmarks.bad_inputs.common import ECG_TRAIN, QUIET, ROOT, TINY, bad_values, good_csv_rows, to_csv, write


class ConfigCases:
    """The ``config`` cases: every config key given values its type must refuse, and broken config files.

    A mixin of :class:`benchmarks.bad_inputs.builder.Builder`: relies on the attributes and methods of
    :class:`benchmarks.bad_inputs.base.BuilderBase` (``exp``, ``files``, ``cases``, ``add``, ``new_exp``).
    """

    # ---- 1. config files and --set values
    def component_bases(self) -> dict[tuple[str, str], tuple[str, list[str]]]:
        csv_path = write(self.files / "cfg_good.csv", to_csv(good_csv_rows()))
        csv_cfg = ["configs/example_csv.json", "--set", f"data.path={csv_path}", "--set", "data.window_length=10",
                   "--set", "data.stride=10", *QUIET]
        ecg_cfg = ["configs/vae_ecg5000.json", "--set", f"data.data_dir={ECG_TRAIN.parent}",
                   "--set", "data.protocol=merged", "--set", "data.download=false", *QUIET]
        return {
            ("data", "converter"): ("configs/vae_converter.json", TINY),
            ("data", "csv"): (csv_cfg[0], csv_cfg[1:]),
            ("data", "ecg5000"): (ecg_cfg[0], ecg_cfg[1:]),
            ("model", "vae"): ("configs/vae_converter.json", TINY),
            ("model", "recurrent_ae"): ("configs/lstm_converter.json", TINY),
            ("model", "conv_ae"): ("configs/conv_ae_converter.json", TINY),
            ("loss", "vae"): ("configs/vae_converter.json", TINY),
        }

    def config_cases(self) -> None:
        sys.path.insert(0, str(ROOT))
        import agents  # noqa: F401  (fills the registries)
        from utils.core.config import EvaluationConfig, TrainerConfig, config_params
        from utils.core.registry import DATASETS, LOSSES, MODELS

        registries = {"data": DATASETS, "model": MODELS, "loss": LOSSES}

        def cfg_case(name: str, config: str, extra: list[str], sets: list[str]) -> None:
            argv = [config, *extra, "--set", f"experiments_dir={self.exp}", "--set", f"exp_name={self.new_exp()}",
                    *[a for s in sets for a in ("--set", s)]]  # the case's own values last: they win
            self.add("config", name, argv)

        for (section, comp), (config, extra) in self.component_bases().items():
            target = registries[section].get(comp)
            for key, (hint, default) in config_params(target).items():
                if comp == "ecg5000" and key in ("url", "sha256", "progress", "download_deadline_s",
                                                 "download_max_mb", "unzip_max_mb"):
                    extra_sets = ["data.download=true"]
                else:
                    extra_sets = []
                seen = set()
                for label, text in bad_values(hint, default)[: 1 if section == "data" else 2]:
                    if text in seen:
                        continue
                    seen.add(text)
                    cfg_case(f"{section}.{comp}.{key} {label} ({text})", config, extra, [*extra_sets,
                                                                                          f"{section}.{key}={text}"])
        for section, schema in (("trainer", TrainerConfig), ("evaluation", EvaluationConfig)):
            for key, fld in schema.model_fields.items():
                hint = fld.annotation
                if fld.metadata:
                    hint = typing.Annotated[(hint, *fld.metadata)]
                for label, text in bad_values(hint, fld.default)[:1]:
                    cfg_case(f"{section}.{key} {label} ({text})", "configs/vae_converter.json", TINY,
                             [f"{section}.{key}={text}"])
        base = "configs/vae_converter.json"
        for label, sets in [
            ("seed negative", ["seed=-1"]), ("seed 2**32", ["seed=4294967296"]), ("seed float", ["seed=1.0"]),
            ("seed huge 1e400", ["seed=1e400"]), ("device tpu", ["device=tpu"]),
            ("device cuda without GPU", ["device=cuda"]),
            ("exp_name with slash", ["exp_name=../escape"]), ("exp_name unicode", ["exp_name=r\u00e9sum\u00e9"]),
            ("exp_name empty", ["exp_name="]), ("exp_name 200 chars", ["exp_name=" + "a" * 200]),
            ("agent unknown", ["agent=vea"]), ("agent as list", ["agent=[\"vae\"]"]),
            ("data section a list", ["data=[1,2]"]), ("model section a string", ["model=vae"]),
            ("loss section null", ["loss=null"]), ("trainer section a number", ["trainer=5"]),
            ("evaluation section a list", ["evaluation=[]"]), ("section nested in key", ["trainer.epochs.x=1"]),
            ("unknown top-level key", ["epochs=5"]), ("unknown section", ["optimizer.lr=1"]),
            ("data.name null", ["data.name=null"]), ("model.name number", ["model.name=5"]),
            ("loss mse with vae model keys", ["loss.name=mse"]), ("loss vae with lstm", ["model.name=recurrent_ae"]),
            ("scores latent for lstm", ["model.name=recurrent_ae", "loss.name=mse"]),
            ("scores unknown", ["evaluation.scores=[\"bogus\"]"]),
            ("scores twice", ["evaluation.scores=[\"reconstruction\",\"reconstruction\"]"]),
            ("scores empty", ["evaluation.scores=[]"]),
            ("score per recording without recordings", ["evaluation.scores=[\"latent_mahalanobis_recording\"]"]), ("baselines twice", ["evaluation.baselines=[\"knn\",\"knn\"]"]),
            ("percentile and rate disagree", ["evaluation.threshold_percentile=90"]),
            ("huge integer 1e30", ["trainer.batch_size=1000000000000000000000000000000"]),
            ("huge float 1e308*10", ["trainer.learning_rate=1e309"]), ("negative zero epochs", ["trainer.epochs=-0"]),
            ("--set empty key", ["=5"]), ("--set no equals", ["trainer.epochs"]),
            ("--set deep nesting", ["a.b.c.d.e.f=1"]),
            ("--set value nested 60000 deep", ["trainer.epochs=" + "[" * 60000 + "]" * 60000]),  # < 128 KiB
            ("model too large for memory", ["model.hidden_sizes=[100000000]"]),
            ("data too large for memory", ["data.n_samples=2000000000"]),
        ]:
            cfg_case(f"top {label}", base, TINY, sets)
        cfg_case("top conv_ae with windows of 1 step", "configs/conv_ae_converter.json", TINY, ["data.time_steps=1"])
        cfg_case("top lstm with windows of 1 step", "configs/lstm_converter.json", TINY, ["data.time_steps=1"])
        cfg_case("--set unicode key", base, TINY, ["trainer.\u00e9pochs=5"])
        cfg_case("--set value error names the --set, not the file", base, TINY, ["trainer.epochs=-1"])
        cfg_case("--set whole section after one of its keys", base, TINY,
                 ["data.n_samples=400", 'data={"name": "converter"}'])
        # the config file itself
        f = self.files
        texts = {
            "file NaN literal": ('{"exp_name":"x","agent":"vae","seed":NaN,"data":{"name":"converter"},'
                                 '"model":{"name":"vae"},"loss":{"name":"vae"}}'),
            "file Infinity literal in lr": ('{"exp_name":"x","agent":"vae","data":{"name":"converter"},'
                                            '"model":{"name":"vae"},"loss":{"name":"vae"},'
                                            '"trainer":{"learning_rate":Infinity}}'),
            "file duplicate keys (latent_dim 2 and 3)": ('{"exp_name":"dup","agent":"vae","data":{"name":"converter"},'
                                                         '"model":{"name":"vae","latent_dim":2,"latent_dim":3},'
                                                         '"loss":{"name":"vae"}}'),
            "file top-level list": '[{"exp_name":"x"}]',
            "file top-level null": "null",
            "file nested 100000 deep": "[" * 100000 + "]" * 100000,
            "file trailing garbage": '{"exp_name":"x"} trailing',
            "file missing required keys": '{"exp_name":"x"}',
            "file only whitespace": "  \n\t ",
            "file js comment": '// my config\n{"exp_name":"x"}',
            "file trailing comma": '{"exp_name":"x","agent":"vae",}',
            "file single quotes": "{'exp_name':'x'}",
            "file unicode exp_name": ('{"exp_name":"\u5b9f\u9a13","agent":"vae","data":{"name":"converter"},'
                                      '"model":{"name":"vae"},"loss":{"name":"vae"}}'),
            "file huge number": ('{"exp_name":"x","agent":"vae","seed":' + "9" * 5000
                                 + ',"data":{"name":"converter"},"model":{"name":"vae"},"loss":{"name":"vae"}}'),
        }
        for label, text in texts.items():
            path = write(f / f"cfg_{len(self.cases)}.json", text)
            self.add("config", label, [str(path), *TINY, "--set", f"experiments_dir={self.exp}"], watch=[path])
        for label, data in {"file UTF-16": '{"exp_name":"x"}'.encode("utf-16"),
                            "file latin-1 bytes": b'{"exp_name":"r\xe9sum\xe9"}',
                            "file binary garbage": bytes(range(256)) * 4}.items():
            path = write(f / f"cfg_{len(self.cases)}.json", data)
            self.add("config", label, [str(path), "--set", f"experiments_dir={self.exp}"], watch=[path])
        self.add("config", "file is a folder", [str(f), "--set", f"experiments_dir={self.exp}"])
        self.add("config", "file /dev/zero (endless)", ["/dev/zero"], mem_gb=3)
