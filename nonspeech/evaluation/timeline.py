"""Score a timeline against reference events: 1 s segment-based F1 per class and false-alarm seconds per minute."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from nonspeech.events import Event
from nonspeech.labels import NEGATIVE

SEGMENT_SECONDS = 1.0

@dataclass(frozen=True)
class Scores:
    """Per-class segment precision, recall and F1, their macro-F1, and false alarms over the scored minutes."""

    per_class: dict[str, dict[str, float]]
    macro_f1: float
    false_alarm_seconds: float
    minutes: float

    @property
    def false_alarms_per_minute(self) -> float:
        return self.false_alarm_seconds / self.minutes


def segment_activity(events: Iterable[Event], classes: list[str], seconds: float) -> np.ndarray:
    """(segments, classes) booleans: a 1 s segment is active for a class when an event of it overlaps the segment."""
    active = np.zeros((math.ceil(seconds / SEGMENT_SECONDS), len(classes)), dtype=bool)
    for event in events:
        if event.label in classes and event.end > event.start:
            first = int(event.start // SEGMENT_SECONDS)
            last = math.ceil(min(event.end, seconds) / SEGMENT_SECONDS)
            active[first:last, classes.index(event.label)] = True
    return active


def covered_seconds(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of intervals as sorted disjoint (start, end) pairs."""
    union: list[tuple[float, float]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if union and start <= union[-1][1]:
            union[-1] = (union[-1][0], max(union[-1][1], end))
        else:
            union.append((start, end))
    return union


def false_alarm_seconds(reference: Iterable[Event], system: Iterable[Event]) -> float:
    """Seconds where the system reports a target class and the reference has no target event."""
    truth = covered_seconds((e.start, e.end) for e in reference if e.label != NEGATIVE)
    claimed = covered_seconds((e.start, e.end) for e in system if e.label != NEGATIVE)
    overlap = sum(max(0.0, min(b, d) - max(a, c)) for a, b in claimed for c, d in truth)
    return sum(b - a for a, b in claimed) - overlap


def score_timeline(
    reference: dict[str, list[Event]], system: dict[str, list[Event]], durations: dict[str, float],
) -> Scores:
    """Scores over the recordings in `durations` (name to seconds); classes are the target labels of either side."""
    labels = {e.label for events in (*reference.values(), *system.values()) for e in events} - {NEGATIVE}
    classes = sorted(labels)
    counts = np.zeros((3, len(classes)))  # true positives, false positives, false negatives
    false_alarms = 0.0
    for name, seconds in durations.items():
        truth = segment_activity(reference.get(name, []), classes, seconds)
        found = segment_activity(system.get(name, []), classes, seconds)
        counts += [(truth & found).sum(0), (~truth & found).sum(0), (truth & ~found).sum(0)]
        false_alarms += false_alarm_seconds(reference.get(name, []), system.get(name, []))
    per_class = {}
    for label, (tp, fp, fn) in zip(classes, counts.T):
        per_class[label] = {
            "precision": tp / (tp + fp) if tp + fp else math.nan, "recall": tp / (tp + fn) if tp + fn else math.nan,
            "f1": 2 * tp / (2 * tp + fp + fn), "reference_segments": int(tp + fn), "system_segments": int(tp + fp),
        }
    macro = float(np.mean([c["f1"] for c in per_class.values()])) if per_class else math.nan
    return Scores(per_class, macro, false_alarms, sum(durations.values()) / 60.0)
