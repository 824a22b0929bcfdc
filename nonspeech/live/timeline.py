"""The timeline of `predict --window`, decided as a stream arrives: the same windows, median filters, cells,
thresholds and hysteresis, each event told as soon as no later audio can change it, in bounded memory."""

from __future__ import annotations

import math

import numpy as np
import torch

from nonspeech.inference.detect import Decision, EventRuns, Windows, cell_scores, median_sizes
from nonspeech.inference.model import BATCH_SIZE, LoadedModel
from nonspeech.inference.sliding import Slider


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


class LiveTimeline:
    """Events of a stream fed block by block (samples at the model's rate), as detect() finds them in the whole
    recording. Windows are scored in the batches `predict --window` scores them in (the same stretches, so the same
    probabilities): a detector's every 0.5 s of window starts (at least 8 windows), a window classifier's every 8
    window lengths."""

    def __init__(
        self, model: LoadedModel, hop: float, thresholds: np.ndarray, hysteresis: float, min_duration: float, pool: str,
    ) -> None:
        self.pool, self.layout = pool, model.layout()
        self.runs = EventRuns(model.classes, thresholds, hysteresis, min_duration, model.decision_rule)
        self.slider = Slider(model.timeline_framer(), self.layout.window, hop * self.layout.rate, self.layout.grid,
                             BATCH_SIZE)
        self.median = RunningMedian(median_sizes(model.classes, model.median_seconds, hop))
        self.queued = np.zeros(0)  # recording seconds of the windows scored, their filtered probabilities not yet known
        self.starts = np.zeros(0)  # recording seconds of the windows whose filtered probabilities are known
        self.probabilities = np.zeros((0, len(model.classes)), dtype=np.float32)
        self.decided = -math.inf  # cells before this edge are decided
        if self.layout.pad:
            self._slide(np.zeros(self.layout.pad, dtype=np.float32))

    def feed(self, block: np.ndarray) -> list[Decision]:
        """The decisions that these samples settle."""
        self._slide(block)
        return self._windows(*self.slider.take(), final=False)

    def finish(self, seconds: float) -> list[Decision]:
        """The remaining decisions once the stream of `seconds` has ended (every open event closed)."""
        if self.layout.pad:
            self._slide(np.zeros(self.layout.pad, dtype=np.float32))
        with torch.inference_mode():
            self.slider.finish()
        return self._windows(*self.slider.take(), final=True, seconds=seconds)

    def _slide(self, block: np.ndarray) -> None:
        with torch.inference_mode():
            self.slider.feed(block)

    def _windows(self, starts: np.ndarray, probabilities: np.ndarray, final: bool, seconds: float = 0.0) -> list[Decision]:
        """Median-filter newly scored windows, then decide the cells that no later window covers (all, when final)."""
        self.queued = np.concatenate([self.queued, self.layout.seconds(np.asarray(starts, dtype=np.float64))])
        parts = [self.median.push(probabilities)] if len(starts) else []
        if final:
            parts.append(self.median.flush())
        rows = np.concatenate(parts) if parts else self.probabilities[:0]
        self.starts, self.queued = np.concatenate([self.starts, self.queued[:len(rows)]]), self.queued[len(rows):]
        self.probabilities = np.concatenate([self.probabilities, rows])
        if not len(self.starts):
            return []
        length, last = self.layout.length, float(self.starts[-1])
        edges, cells = cell_scores(Windows(self.starts, self.probabilities, seconds if final else last + length, length),
                                   self.pool)
        fresh = (edges[:-1] >= self.decided) & (final | (edges[1:] <= round(last, 6)))
        decisions = self.runs.feed(edges[:-1][fresh], edges[1:][fresh], cells[fresh])
        if final:
            decisions += self.runs.close(seconds)
        elif fresh.any():
            self.decided = float(edges[1:][fresh][-1])
            keep = np.round(self.starts + length, 6) > self.decided  # windows that cover undecided cells
            self.starts, self.probabilities = self.starts[keep], self.probabilities[keep]
        return decisions
