"""Timelines scored by the field's library, sed_eval: 1 s segment-based and onset-only event-based F1, per class and
their class-wise average (macro-F1), as fractions."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import sed_eval

from nonspeech.evaluation.timeline import SEGMENT_SECONDS
from nonspeech.events import Event
from nonspeech.labels import NEGATIVE

ONSET_COLLAR = 0.2  # seconds: a system event hits a reference event of its class when their onsets are this close


@dataclass(frozen=True)
class SedScores:
    """sed_eval's macro-F1 and per-class f1, precision and recall (0..1) for 1 s segments and for events matched by
    onset within ONSET_COLLAR, offsets ignored."""

    segment_macro_f1: float
    segment_per_class: dict[str, dict[str, float]]
    event_macro_f1: float
    event_per_class: dict[str, dict[str, float]]


def event_dicts(events: list[Event], name: str, classes: list[str]) -> list[dict]:
    """One recording's events of the scored classes as sed_eval reads them."""
    return [{"filename": name, "event_label": e.label, "onset": e.start, "offset": e.end}
            for e in events if e.label in classes]


def class_wise(metrics: sed_eval.sound_event.SoundEventMetrics) -> tuple[float, dict[str, dict[str, float]]]:
    """sed_eval's class-wise average F1 (over the classes whose F1 is not NaN; NaN when none) and per-class scores."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        average = metrics.results_class_wise_average_metrics()["f_measure"]
    per_class = {label: {"f1": float(f["f_measure"]), "precision": float(f["precision"]), "recall": float(f["recall"])}
                 for label in metrics.event_label_list for f in [metrics.class_wise_f_measure(label)]}
    return float(average.get("f_measure", math.nan)), per_class


def sed_scores(
    reference: dict[str, list[Event]], system: dict[str, list[Event]], durations: dict[str, float],
    classes: list[str] | None = None,
) -> SedScores:
    """sed_eval's scores over the recordings in `durations` (name to seconds) for `classes`, else the target labels of
    either side. A class the system never reports has F1 0 (`zero_score`, as score_timeline); one without reference
    events (absent from both sides, or the system's alone) has F1 NaN and is left out of the macro-F1."""
    labels = {e.label for events in (*reference.values(), *system.values()) for e in events}
    classes = [c for c in (sorted(labels) if classes is None else classes) if c != NEGATIVE]
    segments = sed_eval.sound_event.SegmentBasedMetrics(classes, time_resolution=SEGMENT_SECONDS)
    segments.empty_system_output_handling = "zero_score"  # the base class's option, not passed on by this one
    events = sed_eval.sound_event.EventBasedMetrics(
        classes, t_collar=ONSET_COLLAR, evaluate_onset=True, evaluate_offset=False,
        empty_system_output_handling="zero_score")
    for name, seconds in durations.items():
        truth, found = (event_dicts(side.get(name, []), name, classes) for side in (reference, system))
        segments.evaluate(truth, found, evaluated_length_seconds=seconds)
        events.evaluate(truth, found)
    (segment_macro, segment_per_class), (event_macro, event_per_class) = class_wise(segments), class_wise(events)
    return SedScores(segment_macro, segment_per_class, event_macro, event_per_class)
