"""The timeline of `predict --window`, decided as a stream arrives: the same windows, median filters, cells,
thresholds and hysteresis, each event told as soon as no later audio can change it, in bounded memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from nonspeech.events import BOUNDARIES
from nonspeech.inference.detect import (
    Boundaries,
    Decision,
    EventRuns,
    Windows,
    boundary_times,
    cell_scores,
    median_sizes,
    moved,
)
from nonspeech.inference.model import BATCH_SIZE, LoadedModel, TimelineLayout
from nonspeech.inference.sliding import Slider, start_sample
from nonspeech.labels import negative_index


class RunningMedian:
    """scipy's median_filter (mode nearest) per class along a stream of rows, each row given out once the rows its
    filter needs have arrived; the last ones at flush."""

    def __init__(self, sizes: list[int]) -> None:
        self.halves = np.array(sizes) // 2
        self.rows = np.zeros((0, len(sizes)), dtype=np.float32)
        self.first = 0  # stream index of rows[0]
        self.done = 0  # rows given out
        self.total = 0  # rows received

    def push(self, rows: np.ndarray) -> np.ndarray:
        """The filtered rows that `rows` complete."""
        self.rows = np.concatenate([self.rows, rows]) if len(self.rows) else rows
        self.total += len(rows)
        return self._out(self.total - int(self.halves.max(initial=0)))

    def flush(self) -> np.ndarray:
        """The remaining filtered rows, the stream's last row repeated past its end."""
        return self._out(self.total)

    def _out(self, upto: int) -> np.ndarray:
        out = self.rows[self.done - self.first: max(upto, self.done) - self.first].copy()
        for index, half in enumerate(self.halves):
            for row in range(self.done, upto) if half else ():
                around = np.clip(np.arange(row - half, row + half + 1), 0, self.total - 1) - self.first
                out[row - self.done, index] = np.median(self.rows[around, index])
        self.done = max(upto, self.done)
        keep = max(0, self.done - int(self.halves.max(initial=0)))
        self.rows, self.first = self.rows[keep - self.first:], keep
        return out


def lanes_of(classes: list[str], sizes: list[int]) -> list[tuple[list[int], list[int]]]:
    """The target classes grouped by median filter size, each group with the filter sizes its lane runs: its own
    classes' and `other`'s (whose probability a decision may weigh against), no filter for the rest."""
    other = negative_index(classes)
    targets = [index for index in range(len(classes)) if index != other]
    groups = [[index for index in targets if sizes[index] == size] for size in sorted({sizes[i] for i in targets})]
    return [(group, [size if index in group or index == other else 1 for index, size in enumerate(sizes)])
            for group in groups]


def window_times(layout: TimelineLayout, hop: float, grid: int) -> Callable[[int], float]:
    """Recording time of what window k scores, windows every `hop` samples with starts rounded to `grid`."""
    return lambda k: float(layout.seconds(start_sample(k, hop, grid)))


class Lane:
    """The classes of one median filter size: their windows' filtered probabilities, the cells decided and their
    event runs, so that each class is decided as soon as its own filter allows, not the longest one."""

    def __init__(self, sizes: list[int], runs: EventRuns, length: float, pool: str,
                 start_of: Callable[[int], float]) -> None:
        self.runs, self.length, self.pool, self.start_of = runs, length, pool, start_of
        self.median = RunningMedian(sizes)
        self.queued = np.zeros(0)  # recording seconds of the windows scored, their filtered probabilities not yet known
        self.starts = np.zeros(0)  # recording seconds of the windows whose filtered probabilities are known
        self.probabilities = np.zeros((0, len(sizes)), dtype=np.float32)
        self.decided = -math.inf  # cells before this edge are decided

    def untold_from(self) -> float:
        """The earliest start (recording seconds) an event not yet told may have: an open run's, or the first
        undecided cell's."""
        return min([self.decided, *(run.start for run in self.runs.runs.values() if not run.told)])

    def take(self, starts: np.ndarray, probabilities: np.ndarray, final: bool, seconds: float) -> list[Decision]:
        """Median-filter newly scored windows (starts in recording seconds), then decide the cells that no later
        window covers (all, when final, the recording being `seconds` long)."""
        self.queued = np.concatenate([self.queued, starts])
        parts = [self.median.push(probabilities)] if len(starts) else []
        if final:
            parts.append(self.median.flush())
        rows = np.concatenate(parts) if parts else self.probabilities[:0]
        if not len(rows) and not final:  # no window newly filtered: no cell newly decided
            return []
        self.starts, self.queued = np.concatenate([self.starts, self.queued[:len(rows)]]), self.queued[len(rows):]
        self.probabilities = np.concatenate([self.probabilities, rows])
        if not len(self.starts):
            return []
        length, last = self.length, float(self.starts[-1])
        edges, cells = cell_scores(Windows(self.starts, self.probabilities, seconds if final else last + length, length),
                                   self.pool)
        # a cell ending by the next window's start is covered by no later window, nor cut by one
        fresh = (edges[:-1] >= self.decided) & (final | (edges[1:] <= round(self.start_of(self.median.done), 6)))
        decisions = self.runs.feed(edges[:-1][fresh], edges[1:][fresh], cells[fresh])
        if final:
            decisions += self.runs.close(seconds)
        elif fresh.any():
            self.decided = float(edges[1:][fresh][-1])
            keep = np.round(self.starts + length, 6) > self.decided  # windows that cover undecided cells
            self.starts, self.probabilities = self.starts[keep], self.probabilities[keep]
        return decisions


class BoundaryHold:
    """A detector's decisions, held until the windows centred within each boundary stack's radius after the edges it
    moves are scored (an onset line's start; a closing line's start and end), then given out in order with those
    edges moved as detect() moves them (an onset line's start even should the event end before)."""

    def __init__(self, classes: list[str], radius: dict[str, float]) -> None:
        self.classes = classes
        self.reach = max(radius.values())
        self.centres = np.zeros(0)
        self.boundaries = {kind: Boundaries(np.zeros((0, len(classes))), np.zeros((0, len(classes))), r)
                           for kind, r in radius.items()}
        self.held: list[Decision] = []
        self.starts: dict[tuple[str, float], float] = {}  # the starts told in onset lines, by (label, start as found)

    def add(self, centres: np.ndarray, boundaries: dict[str, Boundaries]) -> None:
        """The boundaries of windows newly scored, centred at these recording seconds."""
        self.centres = np.concatenate([self.centres, centres])
        self.boundaries = {kind: replace(held, presence=np.concatenate([held.presence, boundaries[kind].presence]),
                                         times=np.concatenate([held.times, boundaries[kind].times]))
                           for kind, held in self.boundaries.items()}

    def release(self, decisions: list[Decision], final: bool, needed_from: float) -> list[Decision]:
        """The held decisions and these, in order, up to the first whose edges' boundaries are not all scored (all,
        when final); then drop the windows centred before needed_from (no event yet to be told starts earlier) less
        the longest radius."""
        self.held += decisions
        out = []
        while self.held:
            decision = self.held[0]
            event, key = decision.event, (decision.event.label, decision.event.start)
            placing = {"end"} if decision.closed else set()  # the edges still to place: a closed event's end...
            if key not in self.starts:  # ...and the start, unless its onset line placed it
                placing.add("start")
            kinds = {kind: where for kind, where in self.boundaries.items() if BOUNDARIES[kind] in placing}
            last = self.centres[-1] if len(self.centres) else -math.inf
            if not final and any(last < getattr(event, BOUNDARIES[kind]) + where.radius for kind, where in kinds.items()):
                break
            edges = {"start": self.starts.pop(key, event.start) if decision.closed else event.start,
                     **boundary_times(event, self.classes.index(event.label), self.centres, kinds)}
            if decision.closed:
                event = moved(event, edges)
            else:
                self.starts[key] = edges["start"]
                event = replace(event, start=edges["start"])
            out.append(replace(decision, event=event))
            self.held.pop(0)
        earliest = min([needed_from, *(d.event.start for d in self.held)])
        keep = self.centres >= earliest - self.reach - 1e-6
        self.centres = self.centres[keep]
        self.boundaries = {kind: replace(where, presence=where.presence[keep], times=where.times[keep])
                           for kind, where in self.boundaries.items()}
        return out


class LiveTimeline:
    """Events of a stream fed block by block (samples at the model's rate), as detect() finds them in the whole
    recording. Windows are scored in the batches `predict --window` scores them in (the same stretches, so the same
    probabilities): a detector's every 0.5 s of window starts (at least 8 windows), a window classifier's every 8
    window lengths. Each class is decided once its own median filter has the windows it needs (one Lane per size)."""

    def __init__(
        self, model: LoadedModel, hop: float, thresholds: np.ndarray, hysteresis: float, min_duration: float, pool: str,
    ) -> None:
        self.layout = model.layout()
        self.slider = Slider(model.timeline_framer(), self.layout.window, hop * self.layout.rate, self.layout.grid,
                             BATCH_SIZE)
        self.start_of = window_times(self.layout, self.slider.hop, self.slider.grid)
        self.lanes = [
            Lane(sizes, EventRuns(model.classes, thresholds, hysteresis, min_duration, model.decision_rule, group),
                 self.layout.length, pool, self.start_of)
            for group, sizes in lanes_of(model.classes, median_sizes(model.classes, model.median_seconds, hop))
        ]
        self.model = model
        self.hold = BoundaryHold(model.classes, model.boundary_radius) if model.boundary_radius else None
        if self.layout.pad:
            self._slide(np.zeros(self.layout.pad, dtype=np.float32))

    def feed(self, block: np.ndarray) -> list[Decision]:
        """The decisions that these samples settle."""
        self._slide(block)
        return self._decide(final=False)

    def finish(self, seconds: float) -> list[Decision]:
        """The remaining decisions once the stream of `seconds` has ended (every open event closed)."""
        if self.layout.pad:
            self._slide(np.zeros(self.layout.pad, dtype=np.float32))
        with torch.inference_mode():
            self.slider.finish()
        return self._decide(final=True, seconds=seconds)

    def _slide(self, block: np.ndarray) -> None:
        with torch.inference_mode():
            self.slider.feed(block)

    def _decide(self, final: bool, seconds: float = 0.0) -> list[Decision]:
        """Every lane's decisions on the windows scored since the last call, in the order of the cells that decided them."""
        starts, probabilities = self.slider.take()
        probabilities, boundaries = self.model.split_boundaries(starts, probabilities)
        starts = self.layout.seconds(np.asarray(starts, dtype=np.float64))
        decisions = sorted([d for lane in self.lanes for d in lane.take(starts, probabilities, final, seconds)],
                           key=lambda d: d.at)
        if self.hold is None:
            return decisions
        if len(starts):
            self.hold.add(starts + self.layout.length / 2, boundaries)
        return self.hold.release(decisions, final, min(lane.untold_from() for lane in self.lanes))
