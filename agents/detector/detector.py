"""The trained detector: the one way to score with a finished run (docs/scoring.md); ``--mode score``, ``--mode
export`` (docs/export.md) and the end-of-run evaluation all go through it."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import Tensor, nn

import graphs.models  # noqa: F401  (fills the model registry)
from agents.detector.baselines import CalibratedBaseline, load_baselines
from agents.detector.checkpoint import (build_checked_model, check_baselines_state, check_scoring_checkpoint,
                                        check_scoring_state)
from agents.detector.scaler import Scaler
from agents.detector.scores import Score, Statistics, feature_contributions
from agents.detector.thresholds import ConformalThreshold, conformal_p_values, conformal_threshold
from agents.parts import select_device
from datasets.csv_recordings import normalise_by_training_part
from utils.core.arrays import check_array, predict
from utils.core.errors import CheckpointError, ConfigError, DataError
from utils.core.registry import SCORES
from utils.runs.checkpoints import load_checkpoint, load_model_state
from utils.runs.run_folder import RunFolder
from utils.runs.tracing import INPUT_NAME, write_export
from utils.runtime.batching import batch_indices
from utils.runtime.signals import call_interruptibly


class Detector:
    """A model with everything scoring needs: ``scores`` (registry SCORES names, in output order), their
    ``statistics`` fitted on normals (:meth:`fit`), ``thresholds`` (an alarm where ``score > threshold``), the
    ``calibration`` scores (n,) of the validation normals they were taken from, the calibrated ``baselines`` by name
    and :func:`recording_state` (those two None: saved before best.pt kept them)."""

    def __init__(self, model: nn.Module, scaler: Scaler, scores: list[str], window_length: int,
                 feature_names: list[str], statistics: dict[str, dict[str, Any]] | None = None,
                 thresholds: dict[str, float] | None = None, batch_size: int = 4096,
                 config: dict[str, Any] | None = None, calibration: dict[str, np.ndarray] | None = None,
                 false_alarm_rate: float | None = None, baselines: dict[str, CalibratedBaseline] | None = None,
                 recording: dict[str, Any] | None = None) -> None:
        self.model, self.scaler = model.eval(), scaler
        self.scores: dict[str, Score] = {name: SCORES.get(name)() for name in scores}
        self.window_length, self.feature_names = int(window_length), list(feature_names)
        self.statistics, self.thresholds = statistics or {}, thresholds or {}
        self.calibration = {name: np.asarray(v, dtype=np.float64) for name, v in (calibration or {}).items()}
        self.false_alarm_rate, self.batch_size, self.config = false_alarm_rate, batch_size, config or {}
        self.error_kind = next((s.error_kind for s in self.scores.values() if s.error_kind), "mse")  # of contributions
        self.needs_latent = any(s.needs_latent for s in self.scores.values())
        self.baselines, self.recording = baselines, recording

    @property
    def score_names(self) -> list[str]:
        """The score names, in output order."""
        return list(self.scores)

    @property
    def data_columns(self) -> dict[str, Any]:
        """How the run's data read a file: its declared columns, separator (None: detected), missing values, decimal,
        whether line 1 is a header (``data.header``)."""
        data, stored = self.config.get("data", {}), self.recording or {}
        return {"timestamp_column": stored.get("timestamp_column", data.get("timestamp_column")),
                "label_column": data.get("label_column"),
                "label_columns": list(stored.get("label_columns", data.get("label_columns") or [])),
                "ignore_columns": list(stored.get("ignore_columns", data.get("ignore_columns") or [])),
                "separator": data.get("separator"), "missing_values": data.get("missing_values", "refuse"),
                "decimal": data.get("decimal", "."), "header": data.get("header", True)}

    @property
    def trained_period(self) -> float | None:
        """Seconds between the rows the run trained on (the median over its recordings); None where unknown."""
        return (self.recording or {}).get("sample_period_s")

    @property
    def normalised_per_recording(self) -> bool:
        """The run standardised each recording by its own training part (``data.normalize="per_recording"``)."""
        return self.config.get("data", {}).get("normalize", "none") != "none"

    @property
    def reference_rows(self) -> int | None:
        """The first rows a recording is standardised by (per-recording normalised runs); else or unknown None."""
        if not self.normalised_per_recording:
            return None
        stored = (self.recording or {}).get("reference_rows")
        train_end = self.config["data"].get("train_end")
        return stored if stored is not None else train_end if type(train_end) is int else None

    def standardise(self, rows: np.ndarray | Tensor, labels: np.ndarray | None = None,
                    reference_rows: int | None = None) -> np.ndarray:
        """One recording's raw rows (n, F) as the run cut its windows from them: a run normalised per recording
        standardises (and whitens) them by its first :attr:`reference_rows` (or ``reference_rows``) rows, without
        those ``labels`` (n,) marks anomalous unless ``data.train_labels="ignore"``; other runs' rows unchanged."""
        arr = _checked(rows, f"rows (features {', '.join(self.feature_names)})", "NF", (len(self.feature_names),))
        if not self.normalised_per_recording:
            return arr
        if reference_rows is not None and reference_rows < 1:  # rows[:-5] would standardise by all but the last 5
            raise ValueError(f"reference_rows: expected a positive number of rows, got {reference_rows}")
        reference = reference_rows if reference_rows is not None else self.reference_rows
        if reference is None:
            raise CheckpointError("this run standardised each recording by its training part, but its best.pt "
                                  "predates recording how many rows that was: give reference_rows")
        if len(arr) < reference:
            raise DataError(f"rows: {len(arr)}, fewer than the {reference} reference rows this run standardises a "
                            "recording by (its training part); give a longer recording or fewer reference_rows")
        flags = np.zeros(len(arr), dtype=np.int64) if labels is None else np.asarray(labels).reshape(-1) != 0
        if len(flags) != len(arr):
            raise ValueError(f"labels: {len(flags)} values for {len(arr)} rows")
        data = self.config["data"]
        values, _ = normalise_by_training_part(arr.astype(np.float32), flags, reference,
                                               use_labelled=labels is None or data.get("train_labels") == "ignore",
                                               whiten=data.get("normalize") == "per_recording_whitened")
        return values

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return next(self.model.parameters()).device

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> Self:
        """The detector of a finished run: its folder, or a ``best.pt`` file (CheckpointError: none, damaged,
        unfinished or a training ``last.pt``; ValueError: ``device`` names no device, :func:`select_device`)."""
        best = Path(path) if Path(path).is_file() or Path(path).suffix == ".pt" else RunFolder(path).best
        if not best.exists():  # a folder or a pipe by that name is named by load_checkpoint
            raise CheckpointError(f"{best}: checkpoint not found; train the run first (python main.py CONFIG), "
                                  "or point CONFIG at the run's config (experiments_dir and exp_name)")
        ckpt = load_checkpoint(best)
        if "optimizer" in ckpt:  # last.pt: the latest epoch's weights, without thresholds even when the run finished
            raise CheckpointError(f"{best}: a training checkpoint (the latest epoch, to continue training from), not a "
                                  "detector; load the run folder or its checkpoints/best.pt")
        detector = cls.from_checkpoint(ckpt, best, select_device(device))
        if not detector.thresholds:
            raise CheckpointError(f"{best}: holds no alarm thresholds: the run stopped before its evaluation; "
                                  "finish it with --resume first")
        return detector

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any], source: Path, device: torch.device | str = "cpu") -> Self:
        """Rebuild model, scaler and scoring state from a ``best.pt`` dict (CheckpointError naming a bad field)."""
        config = check_scoring_checkpoint(ckpt, source)
        try:
            scaler = Scaler.from_state_dict(ckpt["scaler"])
            model_inputs = dict(ckpt["model_inputs"])
            window_length = int(ckpt.get("window_length") or model_inputs["time_steps"])
            model_inputs.setdefault("time_steps", window_length)  # recurrent checkpoints before the contract
            model = build_checked_model(config["model"], model_inputs, str(source), CheckpointError)
            scoring = check_scoring_state(ckpt.get("scoring") or {}, source, model, model_inputs)
            names = list(scoring.get("scores") or config["evaluation"].get("scores") or scoring.get("thresholds", {}))
            features = ckpt.get("feature_names") or [f"feature_{i}" for i in range(len(scaler.offset))]
            alpha = scoring.get("false_alarm_rate")
            baselines = _baselines(ckpt.get("baselines"), alpha, source)
            load_model_state(model, ckpt["model"], source)
            return cls(model.to(device), scaler, names, window_length, features, scoring.get("statistics"),
                       {k: float(v) for k, v in scoring.get("thresholds", {}).items()},
                       int(config["evaluation"]["batch_size"]), config, scoring.get("calibration"),
                       None if alpha is None else float(alpha), baselines, scoring.get("recording"))
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError, OverflowError) as err:
            raise CheckpointError(f"{source}: not a best.pt of this project ({type(err).__name__}: "
                                  f"{str(err).strip()[:160]})") from None

    def state_dict(self) -> dict[str, Any]:
        """What best.pt keeps under ``scoring`` (tensors and plain values only)."""
        return {"scores": self.score_names, "statistics": self.statistics, "thresholds": dict(self.thresholds),
                "false_alarm_rate": self.false_alarm_rate,
                "calibration": {name: torch.from_numpy(v) for name, v in self.calibration.items()},
                **({"recording": self.recording} if self.recording is not None else {})}

    @torch.inference_mode()
    def fit(self, train_x: Tensor, val_x: Tensor, false_alarm_rate: float, seed: int = 0,
            recordings: dict[str, tuple[int, int]] | None = None) -> dict[str, ConformalThreshold]:
        """Fit the statistics on each score's ``fit_split`` of the scaled normals ``train_x``, ``val_x`` (N, T, F) (a
        per-recording score per recording) and split-conformal thresholds on the validation normals it was not fitted
        on (``seed`` draws their halves); ``recordings``: ``{name: (training windows, validation windows)}`` in the
        splits' order, None: one recording."""
        recordings = recordings or {"the data": (len(train_x), len(val_x))}
        val_features = self._features(val_x, self.score_names)
        fit_rows, calibration_rows = split_validation(len(val_x), seed)
        if (val_names := [name for name, s in self.scores.items() if s.fit_split == "val"]) and len(val_x) < 4:
            raise DataError(f"evaluation.scores: {', '.join(val_names)} is fitted on half the validation normals and "
                            f"calibrated on the other half, which needs at least 4 of them; the validation split "
                            f"holds {len(val_x)} (raise data.val_fraction or the data size)")
        train_names = [name for name, s in self.scores.items() if s.fit_split == "train"]
        features = {"val": {name: f[fit_rows] for name, f in val_features.items()},
                    "train": self._features(train_x, train_names) if train_names else {}}
        # NumPy/SciPy work (covariance fits) on a worker thread, so a stop signal is honoured at once
        self.statistics, self.calibration = call_interruptibly(self._fit_statistics, features, val_features,
                                                               calibration_rows, recordings)
        self.false_alarm_rate = float(false_alarm_rate)
        fitted = self.promises()
        self.thresholds = {name: t.threshold for name, t in fitted.items()}
        return fitted

    def _fit_statistics(self, features: dict[str, dict[str, np.ndarray]], val_features: dict[str, np.ndarray],
                        calibration_rows: np.ndarray, recordings: dict[str, tuple[int, int]],
                        ) -> tuple[dict, dict[str, np.ndarray]]:
        """Statistics per score, and its calibration scores of the validation normals it was not fitted on."""
        statistics = {name: s.fit(features[s.fit_split][name]) for name, s in self.scores.items() if s.fit_split}
        calibration = {name: _per_recording_calibration(s, features["train"][name], val_features[name], recordings)
                       if s.per_recording else
                       s.score(val_features[name][calibration_rows if s.fit_split == "val" else slice(None)],
                               statistics.get(name, {}))
                       for name, s in self.scores.items()}
        return statistics, calibration

    def promises(self) -> dict[str, ConformalThreshold]:
        """Each score's threshold with its rank, n and bound; empty for a detector saved without calibration scores."""
        if self.false_alarm_rate is None:
            return {}
        return {name: conformal_threshold(cal, self.false_alarm_rate) for name, cal in self.calibration.items()}

    def p_values(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Conformal p-values ``{name: (N,)}`` of scores ``{name: (N,)}`` (small = anomalous); scores without
        calibration left out (TypeError: not a dict; ValueError: an unknown name, or not of shape (N,))."""
        if not isinstance(scores, dict):
            raise TypeError(f"scores: expected a dict {{score name: (N,) scores}} as Detector.score returns, got "
                            f"{type(scores).__name__}")
        if unknown := [name for name in scores if name not in self.score_names]:
            raise ValueError(f"scores: unknown score {unknown[0]!r}; this detector's scores: "
                             f"{', '.join(self.score_names)}")
        return {name: conformal_p_values(self.calibration[name], check_array(s, f"scores[{name!r}]", "N"))
                for name, s in scores.items() if name in self.calibration}

    @property
    def per_recording(self) -> list[str]:
        """The scores fitted per recording: scoring a recording needs its :meth:`reference_statistics`."""
        return [name for name, s in self.scores.items() if s.per_recording]

    @torch.inference_mode()
    def reference_statistics(self, reference: Tensor) -> dict[str, Statistics]:
        """``{score: statistics}`` of the :attr:`per_recording` scores fitted on one recording's scaled training
        windows ``reference`` (N, T, F) (DataError: fewer than 2)."""
        if not (names := self.per_recording):
            return {}
        if len(reference) < 2:
            raise DataError(f"evaluation.scores: {', '.join(names)} is fitted on each recording's own training "
                            f"windows, and this recording has {len(reference)} (it needs 2 or more); lengthen the "
                            "recording's training part (data.train_end) or drop the score")
        return {name: self.scores[name].fit(f) for name, f in self._features(reference, names).items()}

    def score(self, windows: np.ndarray | Tensor, reference: np.ndarray | Tensor | None = None,
              ) -> dict[str, np.ndarray]:
        """Anomaly scores ``{name: (N,) float64}`` of raw windows (N, T, F) (features in :attr:`feature_names` order;
        of a run normalised per recording, cut from rows after :meth:`standardise`), higher = more anomalous;
        ``reference``: windows (M, T, F) of the recording's training part, as ``windows``, for :attr:`per_recording`."""
        fitted = self.reference_statistics(self.prepare(reference, "reference")) if reference is not None else None
        return self.analyse(self.prepare(windows), fitted)[0]

    def predict(self, windows: np.ndarray | Tensor, reference: np.ndarray | Tensor | None = None,
                ) -> dict[str, np.ndarray]:
        """Alarms ``{name: (N,) int64}``: 1 where the score is above the run's threshold for it."""
        return {name: predict(s, self.thresholds[name]) for name, s in self.score(windows, reference).items()}

    def prepare(self, windows: np.ndarray | Tensor, name: str = "windows") -> Tensor:
        """Check raw windows (N, T, F) against the trained shape and scale them onto the device (ValueError: bad shape
        or NaN/inf; DataError: a scaled value beyond :data:`agents.detector.scaler.SCALED_LIMIT`)."""
        arr = _checked(windows, f"{name} (features {', '.join(self.feature_names)})", "NTF",
                       (self.window_length, len(self.feature_names)))
        scaled = self.scaler.transform(arr, where=lambda i: f"{name}: window {i[0]}, time step {i[1]}, feature "
                                                            f"{self.feature_names[i[2]]!r}")
        return torch.from_numpy(scaled).to(self.device)

    @torch.inference_mode()
    def analyse(self, x: Tensor, reference: dict[str, Statistics] | None = None,
                ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Scores ``{name: (N,)}`` and per-sensor contributions (N, F) of scaled windows ``x`` (N, T, F) of one
        recording, whose :meth:`reference_statistics` the per-recording scores need."""
        if self.per_recording and reference is None:
            raise ValueError(f"scores {self.per_recording} are fitted on each recording's own training windows: "
                             "give the recording's reference (Detector.score(windows, reference=...)): the windows "
                             "of its standardised rows (Detector.standardise) before the run's validation stretch "
                             "(the first Detector.recording['training_rows'])")
        statistics = {**self.statistics, **(reference or {})}
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.scores}
        contrib = []
        for batch, x_hat, z in self._passes(x):
            for name, s in self.scores.items():
                parts[name].append(s.score(s.features(batch, x_hat, z), statistics.get(name, {})))
            contrib.append(feature_contributions(batch, x_hat, self.error_kind).detach().double().cpu().numpy())
        return ({name: np.concatenate(p) if p else np.zeros(0, dtype=np.float64) for name, p in parts.items()},
                np.concatenate(contrib) if contrib else np.zeros((0, len(self.feature_names))))

    @torch.inference_mode()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Eval-mode reconstruction (N, T, F) of scaled windows (N, T, F)."""
        parts = [self.model(x[idx.to(x.device)]) for idx in batch_indices(len(x), self.batch_size)]
        return torch.cat(parts) if parts else x.new_zeros(x.shape)

    @torch.inference_mode()
    def encode(self, x: Tensor) -> Tensor:
        """Latent codes (N, D) of scaled windows (N, T, F); only for models with a latent space."""
        return torch.cat([self.model.encode(x[idx.to(x.device)]) for idx in batch_indices(len(x), self.batch_size)])

    def _passes(self, x: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
        """``(batch, reconstruction, latent code or None)`` per batch of scaled windows (N, T, F)."""
        for idx in batch_indices(len(x), self.batch_size):
            batch = x[idx.to(x.device)]
            yield batch, self.model(batch), (self.model.encode(batch) if self.needs_latent else None)

    @torch.inference_mode()
    def _features(self, x: Tensor, names: list[str]) -> dict[str, np.ndarray]:
        """Features (N, D) of the named scores over scaled windows (N, T, F), batch by batch."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for batch, x_hat, z in self._passes(x):
            for name in names:
                parts[name].append(self.scores[name].features(batch, x_hat, z))
        return {name: np.concatenate(p) for name, p in parts.items()}


def _per_recording_calibration(score: Score, train: np.ndarray, val: np.ndarray,
                                recordings: dict[str, tuple[int, int]]) -> np.ndarray:
    """Calibration scores (n_val,): each recording's validation features (N, D) scored by its own training's."""
    train_parts, val_parts = (np.split(f, np.cumsum([n[i] for n in recordings.values()])[:-1])
                              for i, f in enumerate((train, val)))
    out = []
    for (name, (n_train, n_val)), own_train, own_val in zip(recordings.items(), train_parts, val_parts, strict=True):
        if n_val == 0:
            continue
        if n_train < 2:
            raise DataError(f"evaluation.scores: {score.name} is fitted on each recording's own training windows, "
                            f"and {name} has {n_train} (it needs 2 or more) beside {n_val} validation windows; "
                            "lengthen its training part (data.train_end) or drop the score")
        out.append(score.score(own_val, score.fit(own_train)))
    return np.concatenate(out) if out else np.zeros(0)


def _baselines(state: Any, alpha: float | None, source: Path) -> dict[str, CalibratedBaseline] | None:
    """The calibrated baselines a best.pt keeps (None: saved before it kept them)."""
    if state is None:
        return None
    check_baselines_state(state, source)
    if state and alpha is None:
        raise CheckpointError(f"{source}: baselines: stored without scoring.false_alarm_rate, which their "
                              "thresholds need")
    try:
        return load_baselines(state, float(alpha or 0.0))
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise CheckpointError(f"{source}: baselines: not the fitted state of this project's baselines "
                              f"({type(err).__name__}: {str(err).strip()[:160]})") from None


def baselines_checkpoint(calibrated: dict[str, CalibratedBaseline]) -> dict[str, dict[str, Any]]:
    """What best.pt keeps of calibrated baselines, arrays as tensors (``weights_only``): ``{name: {"window_shape":
    [T, F], "calibration": (n,), "threshold": float, **the model's state()}}``."""
    return {name: {key: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
                   for key, v in {"window_shape": list(b.fitted.window_shape), "calibration": np.asarray(b.calibration),
                                  "threshold": float(b.promise.threshold), **b.fitted.model.state()}.items()}
            for name, b in calibrated.items()}


def recording_state(data: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """What best.pt keeps of how the run read a recording (:attr:`Detector.recording`) from the ``data`` config and
    the data's ``info``: declared columns, median sample period and, normalised per recording, the fewest rows before
    a test (``reference_rows``) and validation (``training_rows``) stretch."""
    labels = info.get("label_columns", data.get("label_columns")) or []
    parts = info.get("recordings") or [info]
    reference, training = ((min(int(part["stretches"]["val"][i]) for part in parts) for i in (1, 0))
                           if data.get("normalize", "none") != "none" else (None, None))
    periods = [part["sample_period_s"] for part in parts if part.get("sample_period_s")]
    return {"timestamp_column": info.get("timestamp_column", data.get("timestamp_column")),
            "label_columns": [str(c) for c in labels],
            "ignore_columns": [str(c) for c in info.get("ignore_columns", data.get("ignore_columns")) or []],
            "reference_rows": reference, "training_rows": training,
            "sample_period_s": float(np.median(periods)) if periods else None}


def split_validation(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (fit, calibrate) of ``n`` validation normals: a seeded random half each (fit gets the smaller)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def _checked(values: np.ndarray | Tensor, name: str, dims: str, shape: tuple[int, ...]) -> np.ndarray:
    """:func:`utils.core.arrays.check_array` of an array or a tensor, read as float64 (exact for bfloat16 too)."""
    return check_array(values.detach().cpu().double().numpy() if isinstance(values, Tensor) else values, name, dims,
                       shape)


class ScoringForward(nn.Module):
    """The exported graph: raw float32 windows (B, T, F), scaled by ``offset`` and ``scale`` (F,) in float64 like
    :class:`Scaler` -> (``kind`` error score (B,), contributions (B, F), reconstruction (B, T, F))."""

    def __init__(self, model: nn.Module, kind: str, offset: Tensor, scale: Tensor) -> None:
        super().__init__()
        self.model, self.kind = model, kind
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float64))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float64))
        self.eval()  # the ONNX exporter restores this module's mode onto the detector's model when it is done

    def forward(self, windows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = ((windows.double() - self.offset) / self.scale).float()
        recon = self.model(x)
        diff = x - recon
        err = diff * diff if self.kind == "mse" else diff.abs()
        return err.flatten(1).mean(dim=1), err.mean(dim=1), recon


def export_detector(detector: Detector, fmt: str, output: str | Path, overwrite: bool = False,
                    config_path: str | Path | None = None) -> dict[str, Any]:
    """Write the scoring forward as ``fmt`` to ``output`` and its metadata (returned) to ``output.json``, atomically
    (existing files only with ``overwrite``, never ``config_path``); UserError for an unknown format, a run without a
    reconstruction score, a missing ``onnx`` or an output refused."""
    score_name = next((name for name, s in detector.scores.items() if s.error_kind == detector.error_kind), None)
    if score_name is None:
        raise ConfigError(f"evaluation.scores: the exported graph computes the reconstruction error score, and this "
                          f"run kept no threshold for it (its scores are {', '.join(detector.score_names)}); train a "
                          "run whose evaluation.scores include reconstruction or reconstruction_mae to export it")
    length, features, scaler = detector.window_length, detector.feature_names, detector.scaler
    module = ScoringForward(detector.model.to("cpu").eval(), detector.error_kind, torch.from_numpy(scaler.offset),
                            torch.from_numpy(scaler.scale))
    example = torch.from_numpy(scaler.inverse_transform(
        torch.rand(2, length, len(features), generator=torch.Generator().manual_seed(0)).numpy()))
    meaning = "raw (unscaled) windows; the run's scaler is part of the graph"  # or standardised ones:
    if detector.normalised_per_recording:
        meaning = (f"windows of a recording standardised by the mean and standard deviation of its first "
                   f"{detector.reference_rows} rows (data.normalize={detector.config['data']['normalize']}; not part "
                   "of the graph: Detector.standardise does it); the run's scaler is part of the graph")
    meta = {
        "format": fmt, "file": Path(output).name, "exp_name": detector.config.get("exp_name"),
        "agent": detector.config.get("agent"), "model": detector.config.get("model", {}).get("name"),
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": ["batch", length, len(features)],
                  "meaning": meaning},
        "outputs": {"score": f"{score_name} score (batch,), {detector.error_kind} of the reconstruction",
                    "contributions": "per-feature error averaged over time (batch, F); mean over F = score",
                    "reconstruction": "reconstruction (batch, T, F) in scaled units"},
        "feature_names": list(features), "window_length": length, "score_name": score_name,
        "threshold": float(detector.thresholds[score_name]), "alarm_rule": "score > threshold",
        "scaler": {"kind": scaler.kind, "offset": scaler.offset.tolist(), "scale": scaler.scale.tolist()},
    }
    return write_export(module, example, fmt, output, meta, overwrite, config_path)
