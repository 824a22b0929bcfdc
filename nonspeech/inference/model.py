"""The loaded model: class names, feature parameters and decision thresholds, with the two things it does:
classify whole files, and score overlapping windows of a recording for a timeline. `torch_model` and
`onnx_model` load one from a checkpoint or an exported ONNX file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import torch

from nonspeech.data.audio import AudioError
from nonspeech.data.stream import head_clip, open_recording
from nonspeech.decisions import DEFAULT_RULE
from nonspeech.events import DEFAULT_HYSTERESIS
from nonspeech.inference.detect import Boundaries, Windows, median_filtered
from nonspeech.inference.sliding import Framer, slide, waveform_framer

BATCH_SIZE = 8  # clips per forward pass: small batches keep activations in cache (fastest on 2 CPU cores)


@dataclass(frozen=True)
class FileResult:
    """One file's class probabilities, duration in seconds and any warning about it, or why it could not be
    classified."""

    path: str
    probabilities: np.ndarray | None = None
    seconds: float = 0.0
    error: str = ""
    warning: str = ""


def clip_samples(features: dict) -> int:
    """Samples in one model input: features['seconds'] at features['sample_rate'], rounded as in ingest."""
    return int(round(features["sample_rate"] * features["seconds"]))


@dataclass(frozen=True)
class TimelineLayout:
    """Where a model's timeline windows lie: the sample rate, window samples, the grid their starts are rounded to,
    the seconds each window scores (`length`, `offset` seconds into it) and the silence (samples) put before and
    after a recording."""

    rate: int
    window: int
    grid: int
    length: float
    offset: float
    pad: int

    def seconds(self, starts: np.ndarray) -> np.ndarray:
        """Recording time of what windows starting at these samples (of the padded stream) score."""
        return (starts - self.pad) / self.rate + self.offset


@dataclass(frozen=True)
class LoadedModel:
    """Class names, feature parameters, a function from waveforms (B, samples) to probabilities (B, classes), a
    function giving the framer that slides it over a recording's frames, made on first use (None: windows are cut
    from the waveform), per-class decision thresholds (absent: 0.5), the seconds at the centre of each timeline
    window that its probabilities describe (None: the whole window), the decision rule the thresholds apply by and
    the hysteresis of its timeline's events."""

    classes: list[str]
    features: dict
    probabilities: Callable[[np.ndarray], np.ndarray]
    framer: Callable[[], Framer] | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    span: float | None = None
    decision_rule: str = DEFAULT_RULE
    median_seconds: dict[str, float] = field(default_factory=dict)
    pad_edges: bool = False
    timeline_hop: float | None = None
    # a detector's boundary stacks (onset, offset): events' edges move to the likeliest boundary this near (s)
    boundary_radius: dict[str, float] = field(default_factory=dict)
    hysteresis: float = DEFAULT_HYSTERESIS

    def classify(self, paths: Iterable[Path], batch_size: int = BATCH_SIZE) -> Iterator[FileResult]:
        """Probabilities per file from its first features.seconds (zero-padded when shorter; only those are read), in
        batches. Failures are yielded as soon as they occur; classified files keep their input order."""
        rate, length = self.features["sample_rate"], clip_samples(self.features)
        batch: list[tuple[str, np.ndarray, float, str]] = []
        for path in paths:
            try:
                clip, recording = head_clip(path, rate, length)
            except AudioError as exc:
                yield FileResult(str(path), error=str(exc))
                continue
            batch.append((str(path), clip, recording.seconds, recording.warning))
            if len(batch) == batch_size:
                yield from self._classified(batch)
                batch = []
        yield from self._classified(batch)

    def _classified(self, batch: list[tuple[str, np.ndarray, float, str]]) -> list[FileResult]:
        if not batch:
            return []
        probabilities = self.probabilities(np.stack([clip for _, clip, _, _ in batch]))
        return [FileResult(path, probs, seconds, warning=warning)
                for (path, _, seconds, warning), probs in zip(batch, probabilities)]

    def layout(self) -> TimelineLayout:
        """Where this model's timeline windows lie."""
        rate, window, grid = self.features["sample_rate"], clip_samples(self.features), int(self.features.get("hop_length", 1))
        length = self.span or self.features["seconds"]
        offset = (self.features["seconds"] - length) / 2
        pad = int(round(offset * rate / grid)) * grid if self.pad_edges else 0
        return TimelineLayout(rate, window, grid, length, offset, pad)

    def timeline_framer(self) -> Framer:
        """The framer that slides this model over a recording's frames (or cuts windows from its waveform)."""
        return self.framer() if self.framer else waveform_framer(self.probabilities, clip_samples(self.features))

    def timeline(self, path: Path, hop_seconds: float, batch_size: int = BATCH_SIZE, workers: int = 1) -> Windows:
        """Probabilities of windows every hop_seconds (starts rounded to the front end's hop), streamed block by
        block, as stretches of `span` seconds centred in them (the whole window by default); the last window is
        zero-padded (with pad_edges, the recording is padded at both ends by the window less its span, halved), windows
        of digital silence score 0 for every class; then the model's median filters, if any. `workers` threads score
        batches of windows side by side. Raises AudioError for an unusable file."""
        layout = self.layout()
        recording = open_recording(path, layout.rate)
        silence = [np.zeros(layout.pad, dtype=np.float32)] if layout.pad else []
        with torch.inference_mode():
            starts, probabilities = slide(
                chain(silence, recording.blocks, silence), self.timeline_framer(), layout.window,
                hop_seconds * layout.rate, layout.grid, batch_size, workers,
            )
        probabilities, boundaries = self.split_boundaries(starts, probabilities)
        if self.median_seconds:
            probabilities = median_filtered(probabilities, self.classes, self.median_seconds, hop_seconds)
        return Windows(layout.seconds(starts), probabilities, recording.seconds, layout.length, recording.warning,
                       boundaries)

    def split_boundaries(self, starts: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, dict[str, Boundaries]]:
        """A timeline framer's window scores (windows, classes), followed per boundary stack by its boundaries
        (windows, 2 classes: probabilities, then times after the window's start), as probabilities and Boundaries in
        recording seconds by kind."""
        layout, classes = self.layout(), len(self.classes)
        offset = (np.asarray(starts, dtype=np.float64) - layout.pad)[:, None] / layout.rate
        return scores[:, :classes], {
            kind: Boundaries(scores[:, lo:lo + classes], offset + scores[:, lo + classes:lo + 2 * classes], radius)
            for (kind, radius), lo in zip(self.boundary_radius.items(), range(classes, scores.shape[1], 2 * classes))}
