"""Every checkpoint read is checked field by field: a damaged or foreign last.pt or best.pt exits 2 naming the
file and the field, for --resume and --mode score/export alike; a fuzzer mutates a real checkpoint's fields."""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import main
from agents.detector.checkpoint import check_training_checkpoint
from agents.detector.detector import Detector
from tests.helpers import REPO_ROOT, TINY_VAE
from utils.core.errors import UserError
from utils.runs.checkpoints import check_same_run, load_checkpoint

VAE = TINY_VAE
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])




def edit(path: Path, change) -> None:
    ckpt = torch.load(path, weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)


def fails(capsys, run: Path, *args: str) -> str:
    argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={run.parent}"]
    for item in VAE:
        argv += ["--set", item]
    code = main.main([*argv, *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def nan_weight(ckpt):
    ckpt["model"]["encoder.0.weight"][0, 0] = math.nan


@pytest.mark.parametrize("change, fragment", [
    (lambda c: c.pop("scaler"), "last.pt: not a training checkpoint of this project (missing scaler)"),
    (nan_weight, "last.pt: field 'model.encoder.0.weight' holds NaN or infinite values"),
    (lambda c: c.update(epoch="1"), "last.pt: field 'epoch' holds '1' (str); expected a non-negative integer"),
    (lambda c: c["history"].update(val=["x"]), "last.pt: field 'history.val' holds ['x']; expected a list of numbers"),
    (lambda c: c["scaler"].update(scale=torch.zeros(3)), "last.pt: field 'scaler.scale' does not match the offset "
                                                          "or is not positive"),
    (lambda c: c["rng"].update(numpy=[1, 2]), "last.pt: field 'rng' cannot be restored"),
    (lambda c: c["optimizer"]["state"][0].update(exp_avg=torch.zeros(2, 2)),
     "last.pt: field 'optimizer.state.0.exp_avg' has shape (2, 2) but its parameter (8, 300)"),
    (lambda c: c.update(config=[1]), "last.pt: field 'config' holds list, expected the run's config"),
    (lambda c: c["config"].update(agent="other"), "--resume: this config differs from the one"),
])
def test_a_damaged_last_pt_names_the_field(run_copy, capsys, change, fragment):
    last = run_copy / "checkpoints" / "last.pt"
    edit(last, change)
    assert fragment in fails(capsys, run_copy, "--set", "trainer.epochs=2", "--resume")


@pytest.mark.parametrize("change, fragment", [
    (lambda c: c["config"].update(model={"name": "conv_ae", "latent_dim": 2}, loss={"name": "mse"}),
     "best.pt: checkpoint is for another model: missing tensors"),
    (lambda c: c["config"].update(agent="nope"), "best.pt: field 'config': agent: unknown agent \"nope\""),
    (lambda c: c["scoring"].update(thresholds={"reconstruction": "high"}), "best.pt: field 'scoring.thresholds' "
                                                                          "holds {'reconstruction': 'high'}"),
    (lambda c: c["scoring"].update(scores="reconstruction"), "best.pt: field 'scoring.scores' holds "
                                                             "'reconstruction', expected a list of"),
    (lambda c: c["scoring"]["statistics"]["latent_mahalanobis"].update(mean=torch.zeros(5)),
     "best.pt: field 'scoring.statistics.latent_mahalanobis.precision' is not a D x D matrix for its mean of D=5"),
    (lambda c: c["scoring"]["statistics"]["latent_mahalanobis"].update(shrinkage=torch.ones(3)),
     "best.pt: field 'scoring.statistics.latent_mahalanobis.shrinkage' holds tensor([1., 1., 1.]), expected a "
     "number in [0, 1]"),
    (lambda c: c["scoring"]["statistics"]["latent_mahalanobis"].update(shrinkage=-0.5),
     "best.pt: field 'scoring.statistics.latent_mahalanobis.shrinkage' holds -0.5, expected a number in [0, 1]"),
    (lambda c: c["scoring"]["statistics"]["latent_euclidean"].update(mean=torch.zeros(5)),
     "best.pt: field 'scoring.statistics.latent_euclidean.mean' has shape (5,), but the model's latent_euclidean "
     "features have 2 values"),
    (lambda c: c["model_inputs"].update(n_features="3"), "best.pt: field 'model_inputs.n_features' holds '3'"),
    (lambda c: c.update(feature_names=[1, 2, 3]), "best.pt: field 'feature_names' holds [1, 2, 3], expected 3 names"),
])
def test_a_damaged_best_pt_names_the_field_for_score_and_export(run_copy, capsys, tmp_path, change, fragment):
    edit(run_copy / "checkpoints" / "best.pt", change)
    assert fragment in fails(capsys, run_copy, "--mode", "export", "--format", "torchscript",
                             "--output", str(tmp_path / "m.pt"))
    assert fragment in fails(capsys, run_copy, "--mode", "score", "--input", str(tmp_path / "x.npy"),
                             "--output", str(tmp_path / "s.csv"))
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "s.csv").exists()


# ----- fuzzing --------------------------------------------------------------------------------

def paths(obj, prefix=(), depth=0):
    """Every (nested) key path of dicts and lists, up to four levels."""
    found = [prefix] if prefix else []
    if depth < 4 and isinstance(obj, dict):
        for key, value in obj.items():
            found += paths(value, (*prefix, key), depth + 1)
    elif depth < 4 and isinstance(obj, list) and len(obj) < 20:
        for i, value in enumerate(obj):
            found += paths(value, (*prefix, i), depth + 1)
    return found


DELETE = object()
REPLACEMENTS = st.sampled_from([DELETE, None, "text", -1, 0, 10**12, 2**70, math.nan, math.inf, 1.5, True, [], {},
                                [1.0, "a"], {"a": 1}, torch.tensor(math.nan), torch.zeros(0), torch.zeros(3, 3),
                                torch.zeros(2, dtype=torch.int64), torch.full((2,), math.inf)])


def mutate(ckpt: dict, path: tuple, value) -> dict:
    ckpt = copy.deepcopy(ckpt)
    node = ckpt
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return ckpt


@pytest.fixture(scope="module")
def fuzz_setup(finished):
    import agents  # noqa: F401
    from utils.core.config import load_config
    from utils.core.registry import AGENTS

    config = load_config(finished / "config.json")
    agent = AGENTS.get(config.agent)(config, finished)
    last = load_checkpoint(finished / "checkpoints" / "last.pt")
    best = load_checkpoint(finished / "checkpoints" / "best.pt")
    windows = agent.data.test.x[:4]
    return agent, last, best, windows, finished / "checkpoints"


def _drawn_mutation(data, ckpt: dict) -> dict:
    """``ckpt`` with one field (drawn among its paths) replaced by a drawn value."""
    return mutate(ckpt, data.draw(st.sampled_from(paths(ckpt))), data.draw(REPLACEMENTS))


@FUZZ
@pytest.mark.parametrize("name", ["last.pt", "best.pt"])
@given(data=st.data())
def test_a_mutated_checkpoint_gives_only_project_errors(fuzz_setup, name, data):
    """One mutated field of last.pt (resumed) or best.pt (loaded as a detector) raises only the project's
    errors, naming the file; a best.pt that loads also scores."""
    agent, last, best, windows, folder = fuzz_setup
    path = folder / name
    ckpt = _drawn_mutation(data, last if name == "last.pt" else best)
    try:
        if name == "last.pt":
            check_training_checkpoint(ckpt, path)
            check_same_run(ckpt.get("config"), agent.config, path, 0)
            agent.checkpointer.restore(agent, ckpt, path)
            return
        detector = Detector.from_checkpoint(ckpt, path)
    except UserError as err:
        assert name in str(err) or (name == "last.pt" and "--resume" in str(err))
        return
    if detector.thresholds:  # without them Detector.load refuses it: the run stopped before its evaluation
        assert set(detector.score(windows)) == set(detector.score_names)  # what loaded also scores
