"""Where windows lie in a network body's feature map: a window's frames, the map's columns, and the means over the
centre of each window, for the timelines that share the body between windows (sliding, columns)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

T = TypeVar("T", np.ndarray, torch.Tensor)


def frame_layout(frontend: nn.Module, window: int) -> tuple[int, int, int]:
    """Hop, margin and frames of a window of `window` samples, for a front end with `frames`, `per_clip` and a
    PowerSTFT `stft` (LogMel, EfficientATMel)."""
    hop, n_fft = frontend.stft.hop_length, frontend.stft.n_fft
    with torch.inference_mode():
        width = frontend(torch.zeros(1, window)).shape[-1]
    return hop, -(-(n_fft // 2) // hop) * hop, width


def column_grid(body: Callable[[torch.Tensor], torch.Tensor], bins: int) -> tuple[int, float]:
    """Frames per column s of the body's feature map and where column 0 begins, frame i spanning [i, i + 1): 0 when
    the body floors (pooling: column j is frames [j s, (j + 1) s)), (1 - s) / 2 when it pads (odd-kernel strided
    convolutions centre column j on frame j s)."""
    frames = 1024
    columns = body(torch.zeros(1, bins, frames)).shape[-1]
    stride = frames // columns
    padded = body(torch.zeros(1, bins, frames + 1)).shape[-1] > columns
    return stride, (1 - stride) / 2 if padded else 0.0


def window_means(columns: torch.Tensor, firsts: torch.Tensor, width: float) -> torch.Tensor:
    """Means (windows, C) of columns (C, T), a piecewise-constant function of position, over [first, first + width)
    (in columns, fractional) clipped to [0, T]."""
    total = columns.shape[-1]
    cumulative = F.pad(columns.double().cumsum(-1), (1, 0))

    def integral(x: torch.Tensor) -> torch.Tensor:
        column = x.floor().long().clamp(max=total - 1)
        return cumulative[:, column] + (x - column) * columns.double()[:, column]

    lo, hi = firsts.double().clamp(0, total), (firsts + width).double().clamp(0, total)
    return ((integral(hi) - integral(lo)) / (hi - lo)).T.float()


def centre_columns(firsts: T, width: int, centre: float, stride: int, phase: float) -> tuple[T, float]:
    """Where the `centre` fraction in the middle of windows of `width` frames, starting at frames `firsts`, begins
    in the columns of a feature map of this stride and phase (column_grid), and how many columns it spans."""
    focus = width * centre
    return (firsts + (width - focus) / 2 - phase) / stride, focus / stride


def centre_pooling(
    body: Callable[[torch.Tensor], torch.Tensor], bins: int, width: int, centre: float,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Means (windows, C) over frequency and the `centre` fraction in the middle of windows of `width` frames of the
    body's feature map; given a map's columns (C, columns) and the first frame of each window in it."""
    with torch.inference_mode():
        stride, phase = column_grid(body, bins)

    def pooled(columns: torch.Tensor, firsts: torch.Tensor) -> torch.Tensor:
        return window_means(columns, *centre_columns(firsts, width, centre, stride, phase))

    return pooled
