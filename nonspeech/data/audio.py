"""Decode, downmix, resample and fix the length of audio clips."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

# libsndfile logs "data : 99840 (should be 33250)" when the audio chunk (WAV data, AIFF SSND, or the whole
# W64/RF64 container) is declared longer than the bytes present; 0xFFFFFFFF is a streaming writer's "unknown".
SIZE_MISMATCH = re.compile(r"^\s*(?:data|SSND|riff|Riff size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
UNKNOWN_SIZE = 0xFFFFFFFF


class AudioError(ValueError):
    """A clip that cannot be used; the message names the reason."""


@dataclass(frozen=True)
class Decoded:
    """A mono float32 waveform with what it looked like on disk; header_seconds is the duration its header claims."""

    samples: np.ndarray
    sample_rate: int
    channels: int
    frames: int
    header_seconds: float

    @property
    def seconds(self) -> float:
        """Duration of the audio actually present."""
        return self.frames / self.sample_rate

    @property
    def truncation(self) -> str:
        """'truncated: ...' when the file holds less audio than its header claims, else ''."""
        return truncation_message(self.header_seconds, self.seconds)


def truncation_message(claimed: float, present: float) -> str:
    """'truncated: ...' when a header claims more seconds than are present, else ''."""
    if claimed <= present:
        return ""
    return f"truncated: the header claims {claimed:.2f} s but the file holds {present:.2f} s"


def header_seconds(log: str, seconds: float) -> float:
    """The duration a file's header claims, from libsndfile's log of it and the duration actually decoded."""
    claimed = seconds
    for declared, present in SIZE_MISMATCH.findall(log):
        if int(present) < int(declared) < UNKNOWN_SIZE:
            claimed = max(claimed, seconds * int(declared) / max(int(present), 1))
    return claimed


def check_not_empty(path: str | Path) -> None:
    """AudioError for a 0-byte file, which decoders would call unrecognised."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise AudioError("empty: 0-byte file")


def decode_mono(path: str | Path) -> Decoded:
    """Read any soundfile-readable file as float32 and average its channels to mono."""
    check_not_empty(path)
    try:
        with sf.SoundFile(str(path)) as f:
            data, rate, log = f.read(dtype="float32", always_2d=True), f.samplerate, f.extra_info
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError or TypeError
        raise AudioError(f"undecodable: {exc}") from exc
    frames, channels = data.shape
    if frames == 0:
        raise AudioError("empty: no samples")
    if not np.isfinite(data).all():
        raise AudioError("non-finite samples (NaN or inf)")
    mono = data.mean(axis=1) if channels > 1 else data[:, 0]
    return Decoded(np.ascontiguousarray(mono), int(rate), channels, frames, header_seconds(log, frames / rate))


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a mono waveform with soxr's high-quality filter."""
    if rate_in == rate_out:
        return samples
    return soxr.resample(samples, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def fix_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or truncate to exactly `length` samples."""
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))


def load_clip(path: str | Path, sample_rate: int, length: int) -> tuple[np.ndarray, Decoded]:
    """Decode, downmix, resample and fix the length; reject silent clips."""
    decoded = decode_mono(path)
    clip = fix_length(resample(decoded.samples, decoded.sample_rate, sample_rate), length)
    if not np.any(clip):
        raise AudioError("silent: every sample is zero")
    return clip, decoded


def load_clips(paths: Sequence[str | Path], sample_rate: int, length: int) -> np.ndarray:
    """(clips, length) float32 waveforms of files ingest has kept, each as load_clip gives it; a file that no longer
    decodes raises AudioError naming it."""
    clips = np.zeros((len(paths), length), dtype=np.float32)
    for row, path in enumerate(paths):
        try:
            clips[row] = load_clip(path, sample_rate, length)[0]
        except AudioError as exc:
            raise AudioError(f"{path}: {exc} (it changed since ingest: rerun `dvc repro`)") from exc
    return clips
