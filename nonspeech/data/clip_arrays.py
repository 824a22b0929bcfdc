"""Clip-major zarr arrays (clips first) in chunks of CHUNK_CLIPS clips, so that a store of 100k clips is a few
hundred files; writers fill whole chunks at a time. Waveforms (a detector's synthesised scenes) are kept as 16-bit
PCM scaled to each item's peak, so their rounding stays 96 dB below its loudest sample, under any front end's floor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec

CHUNK_CLIPS = 256  # clips per chunk file: the unit a writer fills at once (zarr's shards cost readers memory)
FULL_SCALE = 32767.0


def create_clip_array(path: Path, shape: tuple[int, ...], dtype: str, attributes: dict) -> zarr.Array:
    """A new (clips, ...) array at `path` in chunks of CHUNK_CLIPS clips, lz4 after bit shuffling (real 16-bit audio to
    about half its size, as fast as plain lz4)."""
    return zarr.create_array(
        store=path, shape=shape, chunks=(CHUNK_CLIPS, *shape[1:]), dtype=dtype,
        compressors=BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle"), overwrite=True, attributes=attributes,
    )


def create_waveforms(path: Path, clips: int, length: int, attributes: dict) -> tuple[zarr.Array, zarr.Array]:
    """A new waveform store at `path` (a zarr group with `attributes`): `pcm` (clips, length) int16 and `peak`
    (clips,) float32."""
    zarr.open_group(path, mode="w", attributes=attributes)
    return (create_clip_array(path / "pcm", (clips, length), "int16", {}),
            create_clip_array(path / "peak", (clips,), "float32", {}))


def open_waveforms(path: Path) -> tuple[zarr.Array, zarr.Array, dict]:
    """The `pcm` and `peak` arrays of a waveform store and its attributes."""
    group = zarr.open_group(path, mode="r")
    return group["pcm"], group["peak"], dict(group.attrs)


def to_pcm16(waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float waveforms (clips, samples) as int16 at each clip's peak (full scale) and those peaks (clips,)."""
    waves = np.asarray(waves, dtype=np.float32)
    peak = np.abs(waves).max(axis=-1)
    scale = np.divide(np.float32(FULL_SCALE), peak, out=np.zeros_like(peak), where=peak > 0)
    return np.round(waves * scale[..., None]).astype(np.int16), peak.astype(np.float32)


def from_pcm16(pcm: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """The float32 waveforms (clips, samples) of int16 clips and their peaks."""
    return np.asarray(pcm, dtype=np.float32) * (np.asarray(peak, dtype=np.float32) / np.float32(FULL_SCALE))[..., None]
