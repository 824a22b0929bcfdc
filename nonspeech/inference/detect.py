"""From probabilities to decisions: the classes detected in a file, and the events of a timeline (per-hop scores,
per-class thresholds with hysteresis, a minimum duration, starts and ends moved to a detector's likeliest onset and
offset)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import median_filter

from nonspeech.decisions import DEFAULT_RULE, decision_scores, detected
from nonspeech.events import BOUNDARIES, POOLS, Event
from nonspeech.labels import NEGATIVE

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Boundaries:
    """Per window and class, the probability that an event of the class begins (or ends: one kind of boundary) in the
    window's stretch and when (recording seconds); an event's edge moves to the likeliest of its class within `radius`
    seconds."""

    presence: np.ndarray
    times: np.ndarray
    radius: float


@dataclass(frozen=True)
class Windows:
    """Class probabilities (windows, classes) of the stretches of `length` seconds starting at `starts` seconds in a
    recording of `seconds`, and where a detector's boundary stacks put onsets and offsets in them (by kind)."""

    starts: np.ndarray
    probabilities: np.ndarray
    seconds: float
    length: float
    warning: str = ""  # about the recording, e.g. 'truncated: ...'
    boundaries: dict[str, Boundaries] = field(default_factory=dict)


def boundary_time(time: float, index: int, centres: np.ndarray, boundaries: Boundaries) -> float:
    """An event's edge at `time` moved to the likeliest boundary of its class (column `index`) among the windows
    centred within boundaries.radius seconds of it, to the millisecond; kept where none of them puts one."""
    near = np.flatnonzero(np.abs(centres - time) <= boundaries.radius + 1e-6)
    if not len(near):
        return time
    best = near[np.argmax(boundaries.presence[near, index])]
    return round(float(boundaries.times[best, index]), 3) if boundaries.presence[best, index] > 0 else time


def boundary_times(event: Event, index: int, centres: np.ndarray, boundaries: dict[str, Boundaries]) -> dict[str, float]:
    """The event's edges (Event fields: start, end) moved by these kinds of boundary (boundary_time)."""
    return {BOUNDARIES[kind]: boundary_time(getattr(event, BOUNDARIES[kind]), index, centres, where)
            for kind, where in boundaries.items()}


def moved(event: Event, edges: dict[str, float]) -> Event:
    """The event with these edges (boundary_times'): its start, then its end, each moved unless the event would then
    end by its start."""
    for name in ("start", "end"):
        candidate = replace(event, **{name: edges.get(name, getattr(event, name))})
        event = candidate if candidate.start < candidate.end else event
    return event


def median_sizes(classes: list[str], seconds: dict[str, float], step: float) -> list[int]:
    """Each class's median filter, in windows every `step` seconds: the odd number nearest its `seconds` (1, no
    filter, for classes without one or under 1.5 windows)."""
    return [int(round(seconds.get(label, 0.0) / step)) // 2 * 2 + 1 for label in classes]


def median_filtered(probabilities: np.ndarray, classes: list[str], seconds: dict[str, float], step: float) -> np.ndarray:
    """Probabilities (windows, classes) every `step` seconds, each class's median-filtered over median_sizes windows
    (the edges repeating the first and last window)."""
    out = probabilities.copy()
    for index, size in enumerate(median_sizes(classes, seconds, step)):
        if size > 1:
            out[:, index] = median_filter(probabilities[:, index], size=size, mode="nearest")
    return out


def class_thresholds(classes: list[str], thresholds: dict[str, float], override: float | None) -> np.ndarray:
    """Each class's threshold: `override` for all when given, else `thresholds` (a checkpoint's), else 0.5."""
    if override is not None:
        return np.full(len(classes), override)
    return np.array([thresholds.get(label, DEFAULT_THRESHOLD) for label in classes])


def cell_scores(windows: Windows, pool: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Cut the recording at every window start and end; return the cell edges (cells + 1,) in seconds and each
    cell's class scores (cells, classes): the mean, min or max over the windows that cover the cell. The stretches
    before the first window and after the last (windows that describe their centre only) take those windows'."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; valid: {', '.join(POOLS)}")
    # to the microsecond: a window ending where the next starts must leave no sliver of a cell between them
    starts, ends = np.round(windows.starts, 6), np.round(windows.starts + windows.length, 6)
    edges = np.unique(np.clip(np.concatenate([[0.0, windows.seconds], starts, ends]), 0.0, windows.seconds))
    first = np.searchsorted(ends, edges[:-1], side="right")  # windows ending after the cell starts...
    last = np.searchsorted(starts, edges[:-1], side="right")  # ...and starting at or before it
    first, last = np.minimum(first, len(starts) - 1), np.maximum(last, 1)
    probs = windows.probabilities
    if pool == "mean":  # summed window by window, so a cell's score does not depend on the windows before it
        total = np.zeros((len(first), probs.shape[1]))
        for k in range(int(np.max(last - first, initial=0))):
            covering = (first + k < last)[:, None]
            total += np.where(covering, probs[np.minimum(first + k, len(probs) - 1)], 0.0)
        scores = total / np.maximum(last - first, 1)[:, None]
    else:
        reduce = np.min if pool == "min" else np.max
        scores = np.stack([reduce(probs[lo:hi], axis=0) if hi > lo else np.zeros(probs.shape[1]) for lo, hi in zip(first, last)])
    return edges, scores


@dataclass(frozen=True)
class Decision:
    """An event, closed, or just begun (`closed` False: its start, and its end and max so far), and the end (recording
    seconds) of the cell whose score decided it."""

    event: Event
    closed: bool
    at: float


@dataclass
class Run:
    """A class's stretch of cells at or above its low threshold: start, end, its highest decision score, its cells'
    probabilities, and whether its start was told."""

    start: float
    end: float = 0.0
    top_score: float = -np.inf
    probabilities: list[float] = field(default_factory=list)
    told: bool = False

    def event(self, label: str) -> Event:
        return Event(self.start, self.end, label, float(np.max(self.probabilities)), float(np.mean(self.probabilities)))


class EventRuns:
    """The event rule, fed cells in order: per target class (or those of `targets`), a run of cells whose decision
    score (by `rule`) stays at or above (1 - hysteresis) x its threshold is an event once it reaches the threshold
    and lasts min_duration seconds; told when it begins and when it closes (a cell below the run's level, or the end)."""

    def __init__(self, classes: list[str], thresholds: np.ndarray, hysteresis: float, min_duration: float,
                 rule: str, targets: list[int] | None = None) -> None:
        self.classes, self.rule, self.min_duration = classes, rule, min_duration
        self.high, self.low = thresholds, thresholds * (1.0 - hysteresis)
        self.targets = [index for index, label in enumerate(classes) if label != NEGATIVE] if targets is None else targets
        self.runs: dict[int, Run] = {}

    def feed(self, starts: np.ndarray, ends: np.ndarray, probabilities: np.ndarray) -> list[Decision]:
        """The decisions of cells [starts, ends) seconds with these probabilities (cells, classes)."""
        scores = decision_scores(probabilities, self.classes, self.rule)
        decisions = []
        for start, end, row, score in zip(starts, ends, probabilities, scores):
            for index in self.targets:
                if score[index] < self.low[index]:
                    run = self.runs.pop(index, None)
                    if run is not None and self._kept(index, run):
                        decisions.append(Decision(run.event(self.classes[index]), True, float(end)))
                    continue
                run = self.runs.setdefault(index, Run(float(start)))
                run.end, run.top_score = float(end), max(run.top_score, float(score[index]))
                run.probabilities.append(float(row[index]))
                if not run.told and self._kept(index, run):
                    run.told = True
                    decisions.append(Decision(run.event(self.classes[index]), False, float(end)))
        return decisions

    def close(self, at: float) -> list[Decision]:
        """Every open run that is an event, closed at the end of the recording (`at` seconds)."""
        runs, self.runs = self.runs, {}
        return [Decision(run.event(self.classes[index]), True, at) for index, run in sorted(runs.items())
                if self._kept(index, run)]

    def _kept(self, index: int, run: Run) -> bool:
        return run.top_score >= self.high[index] and run.end - run.start >= self.min_duration


def decisions(
    windows: Windows, classes: list[str], thresholds: np.ndarray, hysteresis: float = 0.0, min_duration: float = 0.0,
    pool: str = "mean", rule: str = DEFAULT_RULE,
) -> list[Decision]:
    """Every decision of EventRuns over the cells of cell_scores, in the order `listen` makes them: each event as it
    begins and as it closes, with the end of the cell that decided it; starts and ends as found (not moved)."""
    edges, probabilities = cell_scores(windows, pool)
    runs = EventRuns(classes, thresholds, hysteresis, min_duration, rule)
    return runs.feed(edges[:-1], edges[1:], probabilities) + runs.close(windows.seconds)


def detect(
    windows: Windows, classes: list[str], thresholds: np.ndarray, hysteresis: float = 0.0, min_duration: float = 0.0,
    pool: str = "mean", rule: str = DEFAULT_RULE,
) -> list[Event]:
    """Events per class (the closed ones of `decisions`, by closed_events), with the run's max and mean probability;
    the background class is never reported."""
    return closed_events(decisions(windows, classes, thresholds, hysteresis, min_duration, pool, rule), windows, classes)


def closed_events(told: list[Decision], windows: Windows, classes: list[str]) -> list[Event]:
    """The events of the closed decisions over these windows, their starts and ends moved to the windows' onsets and
    offsets when they have them (boundary_times), by start."""
    events = [d.event for d in told if d.closed]
    if windows.boundaries:
        centres = windows.starts + windows.length / 2
        events = [moved(e, boundary_times(e, classes.index(e.label), centres, windows.boundaries)) for e in events]
    return sorted(events, key=lambda s: (s.start, s.label))


def top_k(probabilities: np.ndarray, classes: list[str], k: int) -> list[tuple[str, float]]:
    """The k most probable classes with their probabilities, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(classes[i], float(probabilities[i])) for i in order]


def detections(
    probabilities: np.ndarray, classes: list[str], thresholds: np.ndarray, rule: str,
) -> list[tuple[str, float]]:
    """The target classes detected by `rule` at their thresholds, with their probabilities, most probable first."""
    found = detected(probabilities[None], classes, thresholds, rule)[0]
    return [(label, p) for label, p in top_k(probabilities, classes, len(classes)) if found[classes.index(label)]]
