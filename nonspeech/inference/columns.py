"""A detector's framer: the body's layers before its first gate once over the stream, the rest once over each
batch's stretch, then the head's per-column probabilities and boundaries."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from nonspeech.inference.feature_map import centre_columns, column_grid, frame_layout, window_means
from nonspeech.inference.sliding import Framer

# A detector's columns depend on audio well beyond its window (every squeeze-excitation layer gates over 6 s of the
# layer before), so each batch's stretch is fixed by the stream alone: the windows starting in 0.5 s (at least 8
# windows: 0.64 s at the 0.08 s hop), with 6 s of audio before them. `predict --window` and `listen` then compute the
# same columns, and a decision waits at most a batch more than the window's half (docs/listen.md: what they cost
# and gave beside other settings). The layers before the first gate see only nearby audio: they run once over the
# stream, and each stretch runs the rest.
BATCH_SECONDS = 0.5
HISTORY_SECONDS = 6.0


def time_reach(convolutions: nn.Module) -> tuple[int, int]:
    """Stride and reach along time (the last axis) of a stack of convolutions, one after the other, in input frames:
    output column j is centred on input frame j * stride and depends on the frames within reach of it."""
    stride, reach = 1, 0
    for conv in (m for m in convolutions.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))):
        reach += (conv.kernel_size[-1] - 1) // 2 * conv.dilation[-1] * stride
        stride *= conv.stride[-1]
    return stride, reach


def column_framer(
    frontend: nn.Module, prefix: nn.Module, run_prefix: Callable[[torch.Tensor], torch.Tensor],
    body: Callable[[torch.Tensor, int, int], torch.Tensor],
    outputs: Callable[[torch.Tensor], tuple[torch.Tensor, list[torch.Tensor]]], window: int, centre: float, rate: int,
) -> Framer:
    """A detector's framer. Its frames are the columns of `prefix` (run by `run_prefix`), the body's layers before its
    first gate: they depend only on nearby audio, so they are computed once over the stream like the front end's.
    The rest (`body`, to per-column values (1, C, columns): the head's logits, of the columns first <= j < end that
    the stretch has) runs once over the frames of a batch of windows, for the columns they read; then `outputs` of
    those: per-column class probabilities (classes, columns) and, from each boundary stack, its boundaries (classes,
    columns, 2: the probability that an event begins (ends) in the column, and the fraction of it before). Each
    window scores the `centre` fraction in its middle (one column: that column, or the two it straddles, by
    overlap), followed, per boundary stack, by the boundaries of the column holding its centre frame: their
    probabilities, then their times in seconds after the window's start (windows, classes + 2 classes each).
    Window starts fall on the prefix's columns."""
    hop, margin, width = frame_layout(frontend, window)
    bins = frontend.fb.shape[1]
    step, reach = time_reach(prefix)  # front-end frames per frame of this framer, and the frames each depends on
    with torch.inference_mode():
        stride, phase = column_grid(lambda x: body(run_prefix(x), 0, x.shape[-1]), bins)

    def frames(samples: torch.Tensor) -> torch.Tensor:
        return run_prefix(frontend.frames(samples))

    def score(stretch: torch.Tensor, firsts: np.ndarray, samples: np.ndarray | None) -> np.ndarray:
        firsts = firsts * step  # in front-end frames
        starts, focus = centre_columns(firsts, width, centre, stride, phase)  # the columns each window scores
        held = np.floor((firsts + (width - 1) / 2 - phase) / stride).astype(int)  # the column of the centre frame
        first = max(0, min(int(np.floor(starts[0])), held[0]))
        end = max(int(np.floor(starts[-1] + focus)), held[-1]) + 1
        probabilities, boundaries = outputs(body(stretch[None], first, end)[0])
        parts = [window_means(probabilities, torch.from_numpy(starts - first), focus).numpy()]
        held = np.minimum(held, first + probabilities.shape[1] - 1)
        for stack in boundaries:
            where = stack[:, held - first].numpy()  # (classes, windows, 2)
            parts += [where[..., 0].T, (((held + where[..., 1]) * stride + phase - firsts) * hop / rate).T]
        return np.concatenate(parts, axis=1)

    grid = hop * step
    support = -(-(margin + reach * hop) // grid) * grid  # samples each frame depends on, either side
    # a stretch ends with the last frame that needs no audio past its last window's end: no decision waits longer
    return Framer(frames, grid, support, (window - support) // grid + 1, score,
                  int(round(BATCH_SECONDS * rate)), int(round(HISTORY_SECONDS * rate / grid)),
                  reads_samples=False)
