"""From a scene's column probabilities to events, as `predict --window` makes them (median filter, thresholds with
hysteresis), and the per-class median filter and threshold that score best on out-of-fold synthesised scenes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nonspeech.evaluation.timeline import score_timeline
from nonspeech.events import Event
from nonspeech.inference.detect import Boundaries, Decision, Windows, decisions, detect, median_filtered
from nonspeech.labels import NEGATIVE

THRESHOLDS = np.round(np.arange(0.1, 0.951, 0.05), 2)


@dataclass(frozen=True)
class Columns:
    """A scene's per-column class probabilities (columns, classes), columns of `length` seconds from `start`, and,
    by the detector's boundary stacks (onset, offset), where events begin and end in them (columns, classes, 2: the
    probability that one begins (ends) in the column, and the fraction of the column before it)."""

    probabilities: np.ndarray
    length: float
    start: float
    seconds: float
    boundaries: dict[str, np.ndarray] = field(default_factory=dict)


def scene_windows(
    columns: Columns, classes: list[str], median_seconds: dict[str, float], hops: int,
    boundary_radius: dict[str, int] | None = None,
) -> Windows:
    """The scene as `predict --window` sees it at a hop of 1 / hops column: spans of one column, each scoring the
    columns it straddles by overlap, median-filtered per class; each span's boundaries, of the kinds given a radius
    (columns), those of the column holding its centre."""
    probabilities = columns.probabilities
    position = np.arange((len(probabilities) - 1) * hops + 1) / hops
    below = np.floor(position).astype(int)
    share = (position - below)[:, None]
    above = np.minimum(below + 1, len(probabilities) - 1)
    step = columns.length / hops
    probabilities = median_filtered(probabilities[below] * (1 - share) + probabilities[above] * share, classes,
                                    median_seconds, step)
    centre = np.minimum(np.floor(position + 0.5).astype(int), len(probabilities) - 1)
    boundaries = {
        kind: Boundaries(where[centre, ..., 0], columns.start + (centre[:, None] + where[centre, ..., 1]) * columns.length,
                         boundary_radius[kind] * columns.length)
        for kind, where in columns.boundaries.items() if (boundary_radius or {}).get(kind)}
    return Windows(columns.start + step * np.arange(len(position)), probabilities, columns.seconds, columns.length,
                   boundaries=boundaries)


def scene_decisions(
    scenes: dict[str, Columns], classes: list[str], thresholds: dict[str, float], median_seconds: dict[str, float],
    hops: int, hysteresis: float, boundary_radius: dict[str, int] | None = None,
) -> dict[str, tuple[Windows, list[Decision]]]:
    """Every scene's windows at a hop of 1 / hops column (scene_windows, with boundaries within boundary_radius
    columns) and its events' decisions under these thresholds (with this hysteresis) and median filters: the events
    by inference.detect.closed_events, their onsets as `listen` decides them."""
    levels = np.array([thresholds.get(label, 1.0) for label in classes])
    windows = {name: scene_windows(c, classes, median_seconds, hops, boundary_radius) for name, c in scenes.items()}
    return {name: (w, decisions(w, classes, levels, hysteresis)) for name, w in windows.items()}


def choose_postprocessing(
    scenes: dict[str, Columns], reference: dict[str, list[Event]], classes: list[str], filters: list[float],
    precision: float, hops: int, hysteresis: float,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per target class, the median filter (seconds, of `filters`) and threshold (of THRESHOLDS, events continuing
    down to (1 - hysteresis) x it) with the best 1 s segment F1 on the scenes among those whose segment precision
    reaches `precision` (the most precise when none does; the shortest filter and lowest threshold of ties), at a hop
    of 1 / hops column; returns thresholds, filters and those F1s."""
    durations = {name: c.seconds for name, c in scenes.items()}
    targets = [c for c in classes if c != NEGATIVE]
    best = {label: (False, -1.0, 0.0, 0.0, 0.0) for label in targets}  # precise enough, F1|precision, F1, threshold, filter
    for seconds in filters:
        windows = {name: scene_windows(c, classes, dict.fromkeys(targets, seconds), hops) for name, c in scenes.items()}
        for threshold in THRESHOLDS:
            levels = np.full(len(classes), threshold)
            system = {name: detect(w, classes, levels, hysteresis) for name, w in windows.items()}
            per_class = score_timeline(reference, system, durations).per_class
            for label in targets:
                scores = per_class.get(label, {"f1": 0.0, "precision": 0.0})
                reached = bool(np.nan_to_num(scores["precision"]) >= precision)
                key = (reached, scores["f1"] if reached else np.nan_to_num(scores["precision"]))
                if key > best[label][:2]:
                    best[label] = (*key, scores["f1"], float(threshold), float(seconds))
    return ({k: v[3] for k, v in best.items()}, {k: v[4] for k, v in best.items()}, {k: v[2] for k, v in best.items()})
