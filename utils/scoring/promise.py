"""Did a threshold keep its promise on the test part? Per time step of a stream, pooled over recordings.

A split-conformal threshold (:mod:`utils.scoring.conformal`) states a bound on the false-alarm
probability of a normal window exchangeable with its calibration normals. The window-level verdict
is :func:`~utils.scoring.conformal.false_alarm_report`'s. Here the same judgement is made on the
normal time steps of stream recordings: a time step is a false alarm when it is labelled normal and
its per-time-step score is above the threshold. The counts are summed over recordings for one
Clopper-Pearson interval (the pooled verdict), and each recording is judged alone as well (how many
broke it). A time step takes the max (or mean) of the windows covering it, and normal time steps
next to a labelled range share windows with it, so time steps may break a bound their windows keep.

The promise is broken only when the interval lies wholly above the bound; the words for a broken
promise (:func:`broken_promise_text`) say what was measured and what the user can change.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from utils.scoring.conformal import false_alarm_interval, promise_verdict
from utils.scoring.stream_metrics import confusion_counts

#: What a user can change when the test part broke a threshold's promise.
PROMISE_ADVICE = ("calibrate on more normal data (raise data.val_fraction or move data.train_end later), normalise "
                  "each recording on its own normal rows, require alarm persistence (several alarmed windows in a "
                  "row) or accept a higher evaluation.false_alarm_rate")


def time_step_promise(labels: np.ndarray, alarms: np.ndarray, bound: float, confidence: float = 0.95
                      ) -> dict[str, Any]:
    """The false alarms of one stream's normal time steps against a stated bound.

    Args:
        labels: (n,) 0/1 per time step.
        alarms: (n,) 0/1 per time step (score above the threshold).
        bound: the false-alarm probability the threshold states.
        confidence: level of the Clopper-Pearson interval.

    Returns:
        ``{"bound", "measured" (false_alarm_interval), "promise_kept", "verdict"}``.
    """
    counts = confusion_counts(labels, alarms)
    measured = false_alarm_interval(counts["fp"], counts["fp"] + counts["tn"], confidence)
    return {"bound": float(bound), "measured": measured, **promise_verdict(bound, measured, "time steps")}


def pooled_promise(per_recording: dict[str, dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """Pool :func:`time_step_promise` results of many recordings (same threshold, same bound).

    Args:
        per_recording: ``{recording name: time_step_promise(...)}``, at least one.
        confidence: level of the pooled interval.

    Returns:
        ``{"bound", "measured", "promise_kept", "verdict"}`` of the summed counts, plus ``recordings``,
        ``recordings_judged`` (those with normal time steps), ``recordings_broken`` and ``broken`` (their names).
    """
    if not per_recording:
        raise ValueError("pooled_promise needs at least one recording")
    bound = next(iter(per_recording.values()))["bound"]
    n_alarms = sum(r["measured"]["n_alarms"] for r in per_recording.values())
    n_normals = sum(r["measured"]["n_normals"] for r in per_recording.values())
    measured = false_alarm_interval(n_alarms, n_normals, confidence)
    broken = [name for name, r in per_recording.items() if r["promise_kept"] is False]
    judged = sum(r["promise_kept"] is not None for r in per_recording.values())
    return {"bound": bound, "measured": measured, **promise_verdict(bound, measured, "time steps"),
            "recordings": len(per_recording), "recordings_judged": judged, "recordings_broken": len(broken),
            "broken": broken}


def calibration_share_below(calibration: Any, test_normal_scores: Any) -> float | None:
    """Share of the calibration scores below the median score of the test normals.

    About 0.5 when the test normals are exchangeable with the calibration normals; near 1 when the test
    part drifted towards higher scores.

    Args:
        calibration: the threshold's calibration scores (n,).
        test_normal_scores: scores (m,) of the normal test windows.

    Returns:
        The share in [0, 1], or None without test normals.
    """
    test = np.asarray(test_normal_scores, dtype=np.float64).reshape(-1)
    if len(test) == 0:
        return None
    return float(np.mean(np.asarray(calibration, dtype=np.float64) < np.median(test)))


def broken_promise_text(name: str, report: dict[str, Any], drift: float | None = None) -> str:
    """The console's and report's words for a broken promise (empty when it was kept or not judged).

    Args:
        name: the score.
        report: a dict with ``promise_kept`` and ``verdict`` (:func:`~utils.scoring.conformal.promise_verdict`),
            and, pooled over recordings, ``recordings_broken`` and ``recordings_judged``.
        drift: :func:`calibration_share_below` of the score, when known.

    Returns:
        ``"PROMISE BROKEN (name): ...; the test part drifted from the calibration part: ... What you can do: ..."``.
    """
    if report.get("promise_kept") is not False:
        return ""
    found = report["verdict"].removeprefix("broken: ")
    if "recordings_judged" in report and report["recordings"] > 1:
        found += f"; {report['recordings_broken']} of {report['recordings_judged']} recordings broke it alone"
    evidence = ("" if drift is None else f": the median normal test window scores above {100 * drift:.0f}% of the "
                "calibration normals (about 50% without drift)")
    return (f"PROMISE BROKEN ({name}): {found}; the test part drifted from the calibration part{evidence}. "
            f"What you can do: {PROMISE_ADVICE}.")
