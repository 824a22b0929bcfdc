"""Score overlapping windows of a streamed recording: the frame-wise front end runs once over the audio, block by
block, and each window is a slice of its frames (the few frames at its edges recomputed from its own samples, so
that it equals the window alone), so memory stays bounded and almost no sample is transformed twice."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Framer:
    """How a model reads windows: `frames` maps samples (B, n) to (B, bins, frames) every `hop` samples, frame g
    centred at sample g * hop and depending only on samples within `margin` (a multiple of hop) of it; `score` maps
    a batch of windows of `window_frames` frames (B, bins, window_frames) to class probabilities (B, classes)."""

    frames: Callable[[torch.Tensor], torch.Tensor]
    hop: int
    margin: int
    window_frames: int
    score: Callable[[torch.Tensor], np.ndarray]

    @property
    def edge(self) -> int:
        """Frames at each end of a window that see past it, so differ between a window alone and the recording."""
        return self.margin // self.hop


def waveform_framer(probabilities: Callable[[np.ndarray], np.ndarray], window: int) -> Framer:
    """A framer whose frames are the samples themselves, for models that take whole waveforms (ONNX)."""
    return Framer(lambda samples: samples[:, None], 1, 0, window, lambda batch: probabilities(batch[:, 0].numpy()))


def start_sample(k: int, hop: float, grid: int) -> int:
    """Start of window k: k * hop samples rounded to a multiple of grid (the front end's hop)."""
    return int(round(k * hop / grid)) * grid


def window_count(n_samples: int, window: int, hop: float, grid: int) -> int:
    """Windows every hop until one reaches the end; at least one."""
    count = 1 + max(0, math.ceil((n_samples - window) / hop))
    return count + (start_sample(count - 1, hop, grid) + window < n_samples)


class _Slider:
    """The state of one pass: unconsumed samples, computed frames, and the windows cut and scored so far."""

    def __init__(self, framer: Framer, window: int, hop: float, grid: int, batch_size: int) -> None:
        self.framer, self.window, self.hop, self.grid, self.batch_size = framer, window, hop, grid, batch_size
        # samples that determine a window's edge frames (a multiple of hop, as margin is)
        self.edge_span = min(window, (framer.edge + 1) * framer.hop + framer.margin)
        self.samples = np.zeros(0, dtype=np.float32)
        self.sample_start = 0  # global index of samples[0]
        self.n_samples = 0  # samples received so far
        self.frames = torch.zeros(0)
        self.frame_start = 0  # global index of frames[:, 0]
        self.next_frame = 0  # global index of the next frame to compute
        self.starts: list[int] = []
        self.pending: list[tuple[torch.Tensor, np.ndarray]] = []  # frames and samples of windows cut, not scored
        self.scores: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, block.astype(np.float32, copy=False)])
        self.n_samples += len(block)
        hop, margin = self.framer.hop, self.framer.margin
        end = (self.n_samples - margin + hop - 1) // hop  # frames whose support lies in the received samples
        if end > self.next_frame:
            self._compute(end, (end - 1) * hop + margin + 1)
            self._cut(limit=None)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Zero-pad to the end of the last window, score the remaining windows; (start samples, probabilities)."""
        count = window_count(self.n_samples, self.window, self.hop, self.grid)
        total = start_sample(count - 1, self.hop, self.grid) + self.window
        self.samples = np.pad(self.samples, (0, total - self.n_samples))
        self._compute(None, total)
        self._cut(limit=count)
        self._score()
        return np.asarray(self.starts), np.concatenate(self.scores)

    def _compute(self, end: int | None, sample_end: int) -> None:
        """Frames next_frame..end (all that the samples allow when end is None), from samples up to sample_end."""
        first = max(0, self.next_frame * self.framer.hop - self.framer.margin)
        chunk = torch.from_numpy(self.samples[first - self.sample_start : sample_end - self.sample_start])
        offset = first // self.framer.hop
        frames = self.framer.frames(chunk[None])[0, :, self.next_frame - offset : None if end is None else end - offset]
        self.frames = frames if not self.frames.numel() else torch.cat([self.frames, frames], dim=1)
        self.next_frame += frames.shape[1]

    def _cut(self, limit: int | None) -> None:
        """Cut every window whose frames are computed (up to `limit` windows), scoring full batches, then drop the
        frames and samples no later window needs."""
        width = self.framer.window_frames
        while limit is None or len(self.starts) < limit:
            start = start_sample(len(self.starts), self.hop, self.grid)
            first = start // self.framer.hop - self.frame_start
            if first + width > self.frames.shape[1]:
                break
            self.starts.append(start)
            samples = self.samples[start - self.sample_start : start - self.sample_start + self.window]
            self.pending.append((self.frames[:, first : first + width], samples))
            if len(self.pending) == self.batch_size:
                self._score()
        next_start = start_sample(len(self.starts), self.hop, self.grid)
        drop = next_start // self.framer.hop - self.frame_start
        self.frames, self.frame_start = self.frames[:, drop:], self.frame_start + drop
        keep = min(next_start, max(0, self.next_frame * self.framer.hop - self.framer.margin))
        self.samples, self.sample_start = self.samples[keep - self.sample_start :], keep

    def _score(self) -> None:
        """Score the pending windows, their edge frames recomputed from their own samples as a window alone sees
        them; windows of digital silence score 0."""
        if not self.pending:
            return
        batch = torch.stack([frames for frames, _ in self.pending])
        edge, span = self.framer.edge, self.edge_span
        if edge:
            batch = batch.clone()
            heads = torch.from_numpy(np.stack([samples[:span] for _, samples in self.pending]))
            tail_start = (self.window - span) // self.framer.hop * self.framer.hop
            tails = torch.from_numpy(np.stack([samples[tail_start:] for _, samples in self.pending]))
            batch[:, :, :edge] = self.framer.frames(heads)[:, :, :edge]
            batch[:, :, -edge:] = self.framer.frames(tails)[:, :, -edge:]
        loud = np.array([[samples.any()] for _, samples in self.pending])
        self.scores.append(self.framer.score(batch) * loud)
        self.pending = []


def slide(
    blocks: Iterable[np.ndarray], framer: Framer, window: int, hop: float, grid: int, batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Start samples and probabilities (windows, classes) of windows of `window` samples every `hop` samples (each
    start rounded to a multiple of grid) over a stream of sample blocks; the last window reaches the end and is
    zero-padded; windows of digital silence score 0 for every class."""
    slider = _Slider(framer, window, hop, grid, batch_size)
    for block in blocks:
        slider.feed(block)
    return slider.finish()


def frontend_framer(frontend: nn.Module, classify: Callable[[torch.Tensor], np.ndarray], window: int) -> Framer:
    """A framer for a front end with `frames`, `per_clip` and a PowerSTFT `stft` (LogMel, EfficientATMel), whose
    per-clip output `classify` maps to probabilities."""
    hop, n_fft = frontend.stft.hop_length, frontend.stft.n_fft
    with torch.inference_mode():
        width = frontend(torch.zeros(1, window)).shape[-1]
    return Framer(
        frontend.frames, hop, -(-(n_fft // 2) // hop) * hop, width,
        lambda batch: classify(frontend.per_clip(batch)),
    )
