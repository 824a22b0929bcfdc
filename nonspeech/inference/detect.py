"""From probabilities to decisions: the classes detected in a file, and the events of a timeline (per-hop scores,
per-class thresholds with hysteresis, a minimum duration)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from nonspeech.decisions import DEFAULT_RULE, decision_scores, detected
from nonspeech.events import POOLS, Event
from nonspeech.labels import NEGATIVE

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Windows:
    """Class probabilities (windows, classes) of the stretches of `length` seconds starting at `starts` seconds in a
    recording of `seconds`."""

    starts: np.ndarray
    probabilities: np.ndarray
    seconds: float
    length: float
    warning: str = ""  # about the recording, e.g. 'truncated: ...'


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


def active_runs(scores: np.ndarray, high: float, low: float) -> list[tuple[int, int]]:
    """Runs [i, j) of cells with score >= low that hold at least one cell >= high (hysteresis)."""
    on = np.concatenate([[False], scores >= low, [False]])
    bounds = np.flatnonzero(on[1:] != on[:-1]).reshape(-1, 2)
    return [(int(i), int(j)) for i, j in bounds if scores[i:j].max() >= high]


def detect(
    windows: Windows, classes: list[str], thresholds: np.ndarray, hysteresis: float = 0.0, min_duration: float = 0.0,
    pool: str = "mean", rule: str = DEFAULT_RULE,
) -> list[Event]:
    """Events per class: runs of cells whose decision score (of the pooled probabilities, by `rule`) reaches the
    class threshold somewhere and stays at or above (1 - hysteresis) x threshold, at least min_duration seconds
    long, with the run's max and mean probability; the background class is never reported."""
    edges, probabilities = cell_scores(windows, pool)
    scores = decision_scores(probabilities, classes, rule)
    events = []
    for index, label in enumerate(classes):
        if label == NEGATIVE:
            continue
        high = thresholds[index]
        for i, j in active_runs(scores[:, index], high, high * (1.0 - hysteresis)):
            if edges[j] - edges[i] >= min_duration:
                run = probabilities[i:j, index]
                events.append(Event(float(edges[i]), float(edges[j]), label, float(run.max()), float(run.mean())))
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
