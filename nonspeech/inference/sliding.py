"""Score overlapping windows of a streamed recording: the frame-wise front end runs once over the audio, block by
block, so memory stays bounded and almost no sample is transformed twice. Windows are scored a batch at a time
from the frames of the stretch they cover: either exactly (each window a slice of its frames, the few frames at
its edges recomputed from its own samples, so that it equals the window alone) or shared (the network's
convolutional body once over the stretch, its feature map averaged over each window's frames, then the head). A
detector's framer is in `columns`."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nonspeech.inference.feature_map import centre_pooling, frame_layout
from nonspeech.inference.heap import release_free_memory

Scorer = Callable[[torch.Tensor, np.ndarray, np.ndarray | None], np.ndarray]
SHARED_WINDOWS = 8  # window lengths of starts per pass of the shared body: 12% recomputed, peak memory +40 MB
RELEASE_WINDOWS = 10  # window lengths scored between giving free heap pages back: without, RSS grew (bench/README)
BATCHES_AHEAD = 16  # batches in flight per scoring thread: with 2 they ran dry while a block's frames were computed
SOUND_PROBE = 1024  # samples `audible` looks at before it looks at every sample


@dataclass(frozen=True)
class Framer:
    """How a model reads windows: `frames` maps samples (B, n) to (B, bins, frames) every `hop` samples, frame g
    centred at sample g * hop and depending only on samples within `margin` (a multiple of hop) of it; `score` maps
    the frames of a stretch (bins, frames), the first frames in it of windows of `window_frames` frames and their
    samples (windows, samples; None unless `reads_samples`) to class probabilities (windows, classes); windows whose
    starts lie within `batch_span` samples are scored together (0: a fixed number of windows), from a stretch that
    begins `history` frames before the first of them (where the stream has them)."""

    frames: Callable[[torch.Tensor], torch.Tensor]
    hop: int
    margin: int
    window_frames: int
    score: Scorer
    batch_span: int = 0
    history: int = 0
    reads_samples: bool = True


def waveform_framer(probabilities: Callable[[np.ndarray], np.ndarray], window: int) -> Framer:
    """A framer whose frames are the samples themselves, for models that take whole waveforms (ONNX)."""
    return Framer(lambda samples: samples[:, None], 1, 0, window, lambda _, __, samples: probabilities(samples))


def start_sample(k: int, hop: float, grid: int) -> int:
    """Start of window k: k * hop samples rounded to a multiple of grid (the front end's hop)."""
    return int(round(k * hop / grid)) * grid


def window_count(n_samples: int, window: int, hop: float, grid: int) -> int:
    """Windows every hop until one reaches the end; at least one."""
    count = 1 + max(0, math.ceil((n_samples - window) / hop))
    return count + (start_sample(count - 1, hop, grid) + window < n_samples)


def audible(samples: np.ndarray, offsets: np.ndarray, window: int) -> np.ndarray:
    """Whether each window of samples [offset, offset + window) (offsets ascending) holds a nonzero sample. Sound at
    the start of the stretch every window holds settles them all; else one pass over the samples they cover, split
    where a window begins or ends."""
    if samples[offsets[-1] : offsets[0] + window][:SOUND_PROBE].any():
        return np.ones(len(offsets), dtype=bool)
    edges = np.unique(np.concatenate([offsets, offsets + window]))
    parts = np.logical_or.reduceat(samples[edges[0] : edges[-1]] != 0, edges[:-1] - edges[0])
    first, last = np.searchsorted(edges, offsets), np.searchsorted(edges, offsets + window)
    return np.array([parts[a:b].any() for a, b in zip(first, last)])


class Slider:
    """The state of one pass over a stream: unconsumed samples, computed frames, and the windows cut and scored but
    not yet taken. Windows are scored a batch at a time: `batch_size` windows, or more when the framer asks for a
    longer `batch_span`. Their starts are rounded to the grid, or to the framer's frames where those are coarser.
    With a `pool` of threads, batches are scored in it while the next frames are computed, at most `ahead` at once."""

    def __init__(self, framer: Framer, window: int, hop: float, grid: int, batch_size: int,
                 pool: Executor | None = None, ahead: int = 1) -> None:
        self.framer, self.window, self.hop, self.grid = framer, window, hop, max(grid, framer.hop)
        self.batch_size = max(batch_size, math.ceil(framer.batch_span / hop))
        self.samples = np.zeros(0, dtype=np.float32)
        self.sample_start = 0  # global index of samples[0]
        self.n_samples = 0  # samples received so far
        self.frames = torch.zeros(0)
        self.frame_start = 0  # global index of frames[:, 0]
        self.next_frame = 0  # global index of the next frame to compute
        self.cut = 0  # windows cut so far
        self.pending: list[int] = []  # starts of the windows cut but not scored
        self.scored: list[tuple[np.ndarray, np.ndarray]] = []  # (starts, probabilities) of batches not yet taken
        self.pool, self.ahead = pool, ahead
        self.running: deque[tuple[np.ndarray, Future]] = deque()  # batches in the pool, oldest first
        self.released = 0  # the first start scored since free memory was last given back

    def feed(self, block: np.ndarray) -> None:
        """Take the next samples; compute the frames they complete and score every full batch of windows."""
        self.samples = np.concatenate([self.samples, block.astype(np.float32, copy=False)])
        self.n_samples += len(block)
        hop, margin = self.framer.hop, self.framer.margin
        end = (self.n_samples - margin + hop - 1) // hop  # frames whose support lies in the received samples
        if end > self.next_frame:
            self._compute(end, (end - 1) * hop + margin + 1)
            self._cut(limit=None)

    def finish(self) -> None:
        """Zero-pad to the end of the last window and score the remaining windows."""
        count = window_count(self.n_samples, self.window, self.hop, self.grid)
        total = start_sample(count - 1, self.hop, self.grid) + self.window
        self.samples = np.pad(self.samples, (0, total - self.n_samples))
        self._compute(None, total)
        self._cut(limit=count)
        self._score()

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """Start samples and probabilities (windows, classes) of the windows scored since the last take."""
        self._wait(0)
        batches, self.scored = self.scored, []
        if not batches:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.concatenate([starts for starts, _ in batches]), np.concatenate([scores for _, scores in batches])

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
        frames and samples no unscored window needs."""
        while limit is None or self.cut < limit:
            start = start_sample(self.cut, self.hop, self.grid)
            if start // self.framer.hop - self.frame_start + self.framer.window_frames > self.frames.shape[1]:
                break
            self.cut += 1
            self.pending.append(start)
            if len(self.pending) == self.batch_size:
                self._score()
        first = start_sample(self.cut - len(self.pending), self.hop, self.grid)
        drop = max(0, first // self.framer.hop - self.framer.history - self.frame_start)
        self.frames, self.frame_start = self.frames[:, drop:], self.frame_start + drop
        keep = min(first, max(0, self.next_frame * self.framer.hop - self.framer.margin))
        self.samples, self.sample_start = self.samples[keep - self.sample_start :], keep

    def _score(self) -> None:
        """Score the pending windows from the frames of the stretch they cover; windows of digital silence score 0."""
        if not self.pending:
            return
        starts, self.pending = np.asarray(self.pending), []
        first = starts // self.framer.hop - self.frame_start
        lo = max(0, first[0] - self.framer.history)
        stretch = self.frames[:, lo : first[-1] + self.framer.window_frames]
        offsets = starts - self.sample_start
        loud = audible(self.samples, offsets, self.window)
        samples = np.stack([self.samples[o : o + self.window] for o in offsets]) if self.framer.reads_samples else None

        def scores() -> np.ndarray:
            with torch.inference_mode():  # thread-local: a pool's threads start without it
                return self.framer.score(stretch, first - lo, samples) * loud[:, None]

        if self.pool is None:
            self._keep(starts, scores())
        else:
            self.running.append((starts, self.pool.submit(scores)))
        self._wait(self.ahead)  # bounded memory

    def _wait(self, running: int) -> None:
        """Keep the probabilities of the oldest batches in the pool, waiting for them, until `running` are left."""
        while len(self.running) > running:
            starts, future = self.running.popleft()
            self._keep(starts, future.result())

    def _keep(self, starts: np.ndarray, scores: np.ndarray) -> None:
        """Keep a batch's probabilities until taken; give free memory back every RELEASE_WINDOWS window lengths."""
        self.scored.append((starts, scores))
        if starts[-1] - self.released >= RELEASE_WINDOWS * self.window:
            release_free_memory()
            self.released = starts[-1]


def slide(
    blocks: Iterable[np.ndarray], framer: Framer, window: int, hop: float, grid: int, batch_size: int, workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Start samples and probabilities (windows, classes) of windows of `window` samples every `hop` samples (each
    start rounded to a multiple of grid, or of the framer's hop where coarser) over a stream of sample blocks; the
    last window reaches the end and is zero-padded; windows of digital silence score 0 for every class. With several
    `workers`, that many threads score batches side by side (each batch as alone: the same probabilities)."""
    with ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
        slider = Slider(framer, window, hop, grid, batch_size, pool, BATCHES_AHEAD * workers)
        for block in blocks:
            slider.feed(block)
        slider.finish()
        return slider.take()


def exact_framer(frontend: nn.Module, classify: Callable[[torch.Tensor], np.ndarray], window: int) -> Framer:
    """Each window a slice of the frames, its edge frames recomputed from its own samples and the front end's
    per-clip step applied, through the whole network (`classify`): what the window alone gives."""
    hop, margin, width = frame_layout(frontend, window)
    edge = margin // hop  # frames at each end of a window that see past it
    span = min(window, (edge + 1) * hop + margin)  # samples that determine them (a multiple of hop)
    tail = (window - span) // hop * hop

    def score(stretch: torch.Tensor, firsts: np.ndarray, samples: np.ndarray) -> np.ndarray:
        batch = torch.stack([stretch[:, f : f + width] for f in firsts])
        if edge:
            batch[:, :, :edge] = frontend.frames(torch.from_numpy(samples[:, :span]))[:, :, :edge]
            batch[:, :, -edge:] = frontend.frames(torch.from_numpy(samples[:, tail:]))[:, :, -edge:]
        return classify(frontend.per_clip(batch))

    return Framer(frontend.frames, hop, margin, width, score)


def centre_classifier(
    body: Callable[[torch.Tensor], torch.Tensor], head: Callable[[torch.Tensor], np.ndarray], bins: int, width: int,
    centre: float,
) -> Callable[[torch.Tensor], np.ndarray]:
    """Probabilities of windows (B, bins, width frames) alone, pooled over the `centre` fraction in the middle of
    their feature map."""
    pooled = centre_pooling(body, bins, width, centre)

    def classify(features: torch.Tensor) -> np.ndarray:
        maps = body(features).float().mean(dim=2)
        return head(torch.cat([pooled(columns, torch.zeros(1)) for columns in maps]))

    return classify


def shared_framer(
    frontend: nn.Module, body: Callable[[torch.Tensor], torch.Tensor],
    head: Callable[[torch.Tensor], np.ndarray], window: int, centre: float = 1.0,
) -> Framer:
    """The network's `body` once over the frames of a batch of windows (SHARED_WINDOWS window lengths of starts),
    the top-db floor from the window centred on each frame; each window's probabilities are `head` of the body's
    feature map (1, C, F, columns) averaged over frequency and the `centre` fraction in the middle of the window's
    frames.
    Not the window alone: the body sees past the window's edges, and a body with per-window statistics
    (squeeze-excitation) must take them over the window centred on each column (models.efficientat.localise_gates)."""
    hop, margin, width = frame_layout(frontend, window)
    pooled = centre_pooling(body, frontend.fb.shape[1], width, centre)

    def score(stretch: torch.Tensor, firsts: np.ndarray, samples: np.ndarray | None) -> np.ndarray:
        columns = body(frontend.per_clip(stretch[None], span=width))[0].float().mean(dim=1)
        return head(pooled(columns, torch.from_numpy(firsts)))

    return Framer(frontend.frames, hop, margin, width, score, SHARED_WINDOWS * window, reads_samples=False)
