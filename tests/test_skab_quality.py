"""Quality floor on real recordings: the shipped vae_skab config, trained for real on 8 SKAB files.

Eight of the 34 experiments (two of each valve1 quarter, two of valve2, two of other), 30 epochs, seed 0: about
8 s. Measured at seeds 0, 1, 2 (mean per-file VUS-PR at the deployed per-time-step scores): reconstruction
0.946 / 0.933 / 0.943, latent_mahalanobis_recording 0.827 / 0.873 / 0.843, IsolationForest on the same
windows 0.871 / 0.945 / 0.904. The floors sit 0.04-0.05 under the lowest; a score that ranks at random gets
about the share of labelled rows (0.6 here).
"""
from __future__ import annotations

import json

import main
from tests.test_skab import SHARED_SKAB, skab_dir  # noqa: F401  (the fixture)

FILES = ["valve1/0.csv", "valve1/4.csv", "valve1/8.csv", "valve1/12.csv", "valve2/0.csv", "valve2/2.csv",
         "other/1.csv", "other/9.csv"]
FLOORS = {"reconstruction": 0.90, "latent_mahalanobis_recording": 0.78}


def test_vae_skab_ranks_real_faults_above_a_floor(skab_dir, tmp_path):  # noqa: F811
    argv = ["configs/vae_skab.json", "--set", f"data.data_dir={skab_dir}", "--set", "data.download=false",
            "--set", f"data.files={json.dumps(FILES)}", "--set", "trainer.epochs=30", "--set", "seed=0",
            "--set", "evaluation.make_plots=false", "--set", "evaluation.baselines=[]",
            "--set", "trainer.progress_bar=false", "--set", f"experiments_dir={tmp_path}", "--set", "exp_name=q"]
    assert main.main(argv) == 0
    pooled = json.loads((tmp_path / "q" / "out" / "metrics.json").read_text())["stream"]["pooled"]["scores"]
    for name, floor in FLOORS.items():
        assert pooled[name]["mean"]["vus_pr"]["mean"] >= floor, (name, pooled[name]["mean"]["vus_pr"])
