"""Decode, downmix and resample a recording block by block, so that a long file is never held in memory whole."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from nonspeech.data.audio import AudioError, check_not_empty, fix_length, header_seconds, truncation_message

BLOCK_SECONDS = 30.0  # of input audio per read: a few MB, and few block edges to recompute


@dataclass(frozen=True)
class Recording:
    """An opened recording: its duration on disk, the iterator of its mono float32 blocks at the target rate, and
    a warning about it ('truncated: ...') or ''."""

    seconds: float
    blocks: Iterator[np.ndarray]
    warning: str


def open_recording(path: str | Path, rate: int, block_seconds: float = BLOCK_SECONDS) -> Recording:
    """Open a soundfile-readable file; AudioError when it cannot be read, is empty, and (while iterating) when a
    block holds NaN or inf or the whole file is silent."""
    check_not_empty(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioError(f"undecodable: {exc}") from exc
    if info.frames == 0:
        raise AudioError("empty: no samples")
    seconds = info.frames / info.samplerate
    warning = truncation_message(header_seconds(info.extra_info, seconds), seconds)
    return Recording(seconds, _blocks(Path(path), info.samplerate, rate, block_seconds), warning)


def _blocks(path: Path, rate_in: int, rate_out: int, block_seconds: float) -> Iterator[np.ndarray]:
    resampler = None if rate_in == rate_out else soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality="HQ")
    audible = False
    with sf.SoundFile(str(path)) as file:
        for block in file.blocks(blocksize=max(1, round(block_seconds * rate_in)), dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise AudioError("non-finite samples (NaN or inf)")
            mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
            audible = audible or bool(np.any(mono))
            yield mono if resampler is None else resampler.resample_chunk(mono, last=False)
    if resampler is not None:
        yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if not audible:
        raise AudioError("silent: every sample is zero")


def head_clip(path: str | Path, rate: int, length: int) -> tuple[np.ndarray, Recording]:
    """The first `length` samples at `rate` (zero-padded when shorter) and the opened recording (its duration and
    warning), reading only the blocks that hold them; AudioError as open_recording, and when those samples are all
    zero."""
    recording = open_recording(path, rate, block_seconds=min(BLOCK_SECONDS, 2.0 * length / rate))
    parts, received = [], 0
    for block in recording.blocks:
        parts.append(block)
        received += len(block)
        if received > length:  # a resampler's output is final once emitted, so no more context is needed
            break
    clip = fix_length(np.concatenate(parts), length)
    if not np.any(clip):
        raise AudioError("silent: every sample is zero")
    return clip, recording
