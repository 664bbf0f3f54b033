"""Did a threshold keep its promise on the test part (windows, and a stream's time steps pooled over recordings)? The
verdicts and the words for a broken promise; see docs/thresholds.md, "The promise's verdict"."""
from __future__ import annotations

from typing import Any

import numpy as np


def promise_advice(metrics: dict[str, Any]) -> str:
    """What a user can change after a broken promise, leaving out what the run of ``metrics`` cannot use or does."""
    data, stream = metrics.get("data") or {}, metrics.get("stream")
    # only the csv and skab datasets have data.train_end and data.normalize, and their random split refuses both
    in_time = data.get("split") != "random"
    later = " or move data.train_end later" if in_time and "train_end" in data else ""
    remedies = [f"calibrate on more normal data (raise data.val_fraction{later})"]
    if in_time and not str(data.get("normalize", "per_recording")).startswith("per_recording"):
        remedies.append("normalise each recording by its own training part (data.normalize \"per_recording\")")
    if stream is not None and not (stream.get("pooled") or stream).get("threshold_adapt_rate"):
        remedies.append("let the time-step threshold follow drift (evaluation.threshold_adapt_rate, e.g. 0.005: "
                        "the long-run alarm rate then stays at the false-alarm rate, but a lasting fault stops "
                        "alarming)")
    return f"{', '.join(remedies)} or accept a higher evaluation.false_alarm_rate"


#: Every remedy (a run whose ``metrics`` are unknown).
PROMISE_ADVICE = promise_advice({"data": {"normalize": None, "train_end": None}, "stream": {}})
#: ``(promise_kept, "<score>, <level>", the line for the console and the report)``.
Verdict = tuple[bool | None, str, str]


def time_step_promise(labels: np.ndarray, alarms: np.ndarray, bound: float, confidence: float = 0.95
                      ) -> dict[str, Any]:
    """``{"bound", "measured", "promise_kept", "verdict"}`` of one stream's normal time steps against ``bound``."""
    # here, not at the top: the detector's thresholds import this module, and stream_metrics loads scikit-learn
    from utils.metrics.stream_metrics import confusion_counts
    counts = confusion_counts(labels, alarms)  # ValueError for other than (n,) 0/1 of one length
    measured = false_alarm_interval(counts["fp"], counts["fp"] + counts["tn"], confidence)
    return {"bound": float(bound), "measured": measured, **promise_verdict(bound, measured, "time steps")}


def pooled_promise(per_recording: dict[str, dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """The verdict of the summed counts of ``{recording: time_step_promise(...)}``, recordings judged and broken."""
    if not per_recording:
        raise ValueError("pooled_promise needs at least one recording")
    bound = next(iter(per_recording.values()))["bound"]
    n_alarms, n_normals = (sum(r["measured"][key] for r in per_recording.values()) for key in ("n_alarms", "n_normals"))
    measured = false_alarm_interval(n_alarms, n_normals, confidence)
    broken = [name for name, r in per_recording.items() if r["promise_kept"] is False]
    judged = sum(r["promise_kept"] is not None for r in per_recording.values())
    return {"bound": bound, "measured": measured, **promise_verdict(bound, measured, "time steps"),
            "recordings": len(per_recording), "recordings_judged": judged, "recordings_broken": len(broken),
            "broken": broken}


def score_drift(calibration: Any, test_normal_scores: Any) -> dict[str, Any] | None:
    """``{"ks_statistic", "p_value"}`` (two-sample KS test) of the normal test scores against the calibration ones and
    ``median_rank`` (share of calibration scores below the test normals' median); None without scores."""
    from scipy.stats import ks_2samp
    cal = np.asarray(calibration, dtype=np.float64).reshape(-1)
    test = np.asarray(test_normal_scores, dtype=np.float64).reshape(-1)
    if len(test) == 0 or len(cal) == 0:
        return None
    ks = ks_2samp(cal, test)
    return {"ks_statistic": float(ks.statistic), "p_value": float(ks.pvalue),
            "median_rank": float(np.mean(cal < np.median(test)))}


def drift_cause(drift: dict[str, Any] | None) -> str:
    """The words for what :func:`score_drift` found, to follow a broken promise."""
    if drift is None:
        return "the test part drifted from the calibration part"
    numbers = (f"Kolmogorov-Smirnov D = {drift['ks_statistic']:.3f}, p = {drift['p_value']:.2g}; the test normals' "
               f"median is above {100 * drift['median_rank']:.0f}% of the calibration scores, about 50% without drift")
    if drift["p_value"] < 0.05:
        return f"the test part drifted from the calibration part: their normal scores differ ({numbers})"
    return f"the test normals' scores differ little from the calibration scores ({numbers}), yet more exceed the threshold"


def broken_promise_text(name: str, report: dict[str, Any], cause: str, advice: bool = True) -> str:
    """``"PROMISE BROKEN (name): alarmed on ...; <cause>. What you can do: ..."`` (empty when kept or not judged);
    ``report`` as :func:`promise_verdict` (and :func:`pooled_promise`) write it."""
    if report.get("promise_kept") is not False:
        return ""
    found = report["verdict"].removeprefix("broken: ")
    if report.get("recordings", 1) > 1:
        found += f" ({report['recordings_broken']} of {report['recordings_judged']} recordings broke it alone)"
    return f"PROMISE BROKEN ({name}): {found}; {cause}." + (f" What you can do: {PROMISE_ADVICE}." if advice else "")


def named_results(section: dict[str, Any], prefix: str = "baseline ") -> dict[str, Any]:
    """A metrics section's ``scores`` and ``baselines`` (named ``<prefix><name>``) in one dict."""
    return {**section.get("scores", {}), **{f"{prefix}{n}": r for n, r in (section.get("baselines") or {}).items()}}


def verdict_lines(results: dict[str, Any], level: str, causes: dict[str, str], advice: bool = True) -> list[Verdict]:
    """One ``(promise_kept, "<name>, <level>", line)`` per score whose ``false_alarm`` holds a verdict."""
    lines = []
    for name, r in results.items():
        report, label = r.get("false_alarm") or {}, f"{name}, {level}"
        if report.get("promise_kept") is False:
            cause = causes.get(name, drift_cause(None))
            lines.append((False, label, broken_promise_text(label, report, cause, advice)))
        elif "promise_kept" in report:
            lines.append((report["promise_kept"], label, f"Promise of {name} on the test {level}: {report['verdict']}"))
    return lines


def window_verdicts(metrics: dict[str, Any], advice: bool = True) -> list[Verdict]:
    """:func:`verdict_lines` of a run's window scores and baselines (``metrics.json``), with their drift."""
    results = named_results(metrics)
    causes = {name: drift_cause(r.get("false_alarm", {}).get("drift")) for name, r in results.items()}
    return verdict_lines(results, "windows", causes, advice)


def time_step_verdicts(metrics: dict[str, Any], advice: bool = True) -> list[Verdict]:
    """:func:`verdict_lines` of a stream run's time steps (pooled where there are several recordings); empty for
    windows. The cause: the windows' drift where they broke it too, else how time steps are scored."""
    stream = metrics.get("stream")
    if not isinstance(stream, dict):
        return []
    section = stream.get("pooled", stream)
    level = "time steps, pooled over recordings" if "pooled" in stream else "time steps"
    labelled = any(_labelled_rows(r) for r in named_results(section).values())
    spread = (f"a time step takes the {section.get('point_aggregation', 'max')} of the up to "
              f"{section.get('max_windows_per_time_step', 0)} windows covering it"
              + (", and normal time steps beside a labelled range share its windows" if labelled else "")
              + ", so time steps alarm more often than windows")
    # what the windows' own verdict (None: no normal test window) says beside the aggregation
    windows = {True: "its normal test windows kept it; ",
               None: "no normal test window judged it (every test window holds a labelled row); "}
    causes = {}
    for name, r in named_results(metrics).items():
        kept = (r.get("false_alarm") or {}).get("promise_kept")
        causes[name] = drift_cause(r["false_alarm"].get("drift")) if kept is False else windows[kept] + spread
    return verdict_lines(named_results(section), level, causes, advice)


def _labelled_rows(result: dict[str, Any]) -> int:
    """The labelled test rows a stream result counts: its events (one recording) or tp + fn (pooled)."""
    confusion = result.get("confusion") or {}
    return (result.get("events") or 0) + confusion.get("tp", 0) + confusion.get("fn", 0)


def false_alarm_interval(n_alarms: int, n_normals: int, confidence: float = 0.95) -> dict[str, Any]:
    """``{"rate", "low", "high", ...}``: ``n_alarms / n_normals``, its Clopper-Pearson interval (None: no normals)."""
    from scipy.stats import beta
    if n_normals == 0:
        return {"rate": None, "low": None, "high": None, "n_alarms": 0, "n_normals": 0, "confidence": confidence}
    if not 0 <= n_alarms <= n_normals:
        raise ValueError(f"n_alarms must be in [0, n_normals={n_normals}], got {n_alarms}")
    # Clopper-Pearson from beta quantiles: scipy's binomtest(...).proportion_ci root-finds, ~15x slower per call
    # (one call per score and recording: seconds for a folder of thousands of files)
    k, n, tail = int(n_alarms), int(n_normals), (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - tail, k + 1, n - k))
    return {"rate": n_alarms / n_normals, "low": low, "high": high,
            "n_alarms": int(n_alarms), "n_normals": int(n_normals), "confidence": confidence}


def promise_verdict(bound: float, measured: dict[str, Any], unit: str = "windows") -> dict[str, Any]:
    """``{"promise_kept", "verdict"}`` of a :func:`false_alarm_interval`, broken only when it lies above ``bound``."""
    if measured["rate"] is None:
        return {"promise_kept": None, "verdict": f"not judged: no normal test {unit}"}
    counts = (f"alarmed on {measured['n_alarms']} of {measured['n_normals']} normal test {unit} "
              f"({100 * measured['confidence']:g}% CI {measured['low']:.4f}-{measured['high']:.4f})")
    if not measured["low"] > bound:
        return {"promise_kept": True, "verdict": f"kept: {counts}, consistent with the stated bound {bound:.4g}"}
    return {"promise_kept": False, "verdict": f"broken: {counts} against the stated bound {bound:.4g}"}
