"""Where a live stream comes from: standard input (a WAV stream, or raw PCM), a file (as fast as it decodes, or at
its own pace) or a sound card; each as mono float32 blocks at the model's rate, decoded, downmixed and resampled
as `predict` does a file, with the seconds of input received so far."""

from __future__ import annotations

import importlib.util
import os
import queue
import select
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from nonspeech.data.stream import open_recording
from nonspeech.errors import InputError

READ_BYTES = 16384  # per read of a pipe: about 0.1 s of 16-bit stereo at 44.1 kHz
FILE_BLOCK_SECONDS = 0.1
SAMPLE_FORMATS = {"s16le": ("<i2", 2), "f32le": ("<f4", 4)}
RATES = (1000, 768000)  # sample rates a stream may have
WAV_PCM, WAV_FLOAT, WAV_EXTENSIBLE = 1, 3, 0xFFFE


class Stalled(Exception):
    """No input arrived within the timeout."""


@dataclass(frozen=True)
class PcmFormat:
    """Interleaved samples: rate, channels, and numpy type and size of one sample (24-bit: 3 bytes, as '<i3')."""

    rate: int
    channels: int
    dtype: str
    width: int

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.width

    def decode(self, data: bytes) -> np.ndarray:
        """Frames (n, channels) as float32 in [-1, 1), as libsndfile reads them."""
        if self.dtype == "<i3":
            raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            samples = ((raw[:, 0] << 8) | (raw[:, 1] << 16) | (raw[:, 2] << 24)).astype(np.float32) / 2.0**31
        else:
            samples = np.frombuffer(data, dtype=self.dtype)
            if samples.dtype.kind == "i":
                samples = samples.astype(np.float32) / float(2 ** (8 * self.width - 1))
        return samples.astype(np.float32, copy=False).reshape(-1, self.channels)


class Stream:
    """Blocks of one input with a clock: `blocks()` yields mono float32 at the model's rate; `seconds` is the input
    received so far, in seconds of stream time."""

    def __init__(self, name: str, blocks: Callable[[Stream], Iterator[np.ndarray]]) -> None:
        self.name, self._blocks, self.seconds = name, blocks, 0.0

    def blocks(self) -> Iterator[np.ndarray]:
        return self._blocks(self)


class ByteReader:
    """Reads of a file descriptor that wait at most `timeout` seconds for data (None: forever), never spinning;
    `offset` counts the bytes read."""

    def __init__(self, fd: int, timeout: float | None) -> None:
        self.fd, self.timeout, self.offset = fd, timeout, 0

    def read(self, size: int) -> bytes:
        """Up to `size` bytes as soon as any are there; b'' at the end of the input. Stalled after the timeout."""
        if self.timeout is not None and not select.select([self.fd], [], [], self.timeout)[0]:
            raise Stalled()
        data = os.read(self.fd, size)
        self.offset += len(data)
        return data

    def read_exact(self, size: int) -> bytes:
        """Exactly `size` bytes, fewer only at the end of the input."""
        parts, wanted = [], size
        while wanted:
            data = self.read(wanted)
            if not data:
                break
            parts.append(data)
            wanted -= len(data)
        return b"".join(parts)


def raw_format(rate: int, channels: int, sample_format: str) -> PcmFormat:
    """The PcmFormat of --raw --rate --channels --sample-format."""
    check_rate(rate, "--rate")
    dtype, width = SAMPLE_FORMATS[sample_format]
    return PcmFormat(rate, channels, dtype, width)


def check_rate(rate: int, what: str) -> None:
    if not RATES[0] <= rate <= RATES[1]:
        raise InputError(f"{what} {rate} Hz is not a sample rate this reads ({RATES[0]}–{RATES[1]} Hz)")


def read_wav_header(reader: ByteReader) -> tuple[PcmFormat, int | None]:
    """The format of a WAV stream and its data chunk's size (None when unknown: 0 or 0xFFFFFFFF, as streaming
    writers leave it), reading up to the data; InputError naming what is not supported."""
    riff = reader.read_exact(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise InputError("not a WAV stream (no RIFF/WAVE header); for headerless samples give --raw --rate R "
                         "--channels C --sample-format s16le|f32le")
    fmt = None
    while True:
        head = reader.read_exact(8)
        if len(head) < 8:
            raise InputError("the WAV stream ended before its data chunk")
        chunk, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk == b"data":
            if fmt is None:
                raise InputError("the WAV stream has no fmt chunk before its data")
            return fmt, None if size in (0, 0xFFFFFFFF) else size
        body = reader.read_exact(size + size % 2)
        if chunk == b"fmt ":
            fmt = wav_format(body)


def wav_format(body: bytes) -> PcmFormat:
    """The PcmFormat of a WAV fmt chunk: 16-, 24- or 32-bit integer or 32-bit float PCM."""
    if len(body) < 16:
        raise InputError("the WAV stream's fmt chunk is too short")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == WAV_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]
    kinds = {(WAV_PCM, 16): ("<i2", 2), (WAV_PCM, 24): ("<i3", 3), (WAV_PCM, 32): ("<i4", 4), (WAV_FLOAT, 32): ("<f4", 4)}
    if (tag, bits) not in kinds:
        raise InputError(f"unsupported WAV sample format (format tag {tag}, {bits} bits); this reads 16-, 24- and "
                         "32-bit integer and 32-bit float PCM")
    if not channels:
        raise InputError("the WAV stream's header says 0 channels")
    check_rate(rate, "the WAV stream's rate")
    return PcmFormat(rate, channels, *kinds[(tag, bits)])


def pcm_stream(fd: int, rate: int, timeout: float | None, raw: PcmFormat | None = None) -> Stream:
    """Samples read from a file descriptor (WAV, or `raw` PCM), resampled to `rate`."""

    def blocks(stream: Stream) -> Iterator[np.ndarray]:
        reader = ByteReader(fd, timeout)
        fmt, remaining = (raw, None) if raw else read_wav_header(reader)
        resampler = None if fmt.rate == rate else soxr.ResampleStream(fmt.rate, rate, 1, dtype="float32", quality="HQ")
        pending, frames = b"", 0
        while remaining is None or remaining > 0:
            data = reader.read(READ_BYTES if remaining is None else min(READ_BYTES, remaining))
            if not data:
                break
            remaining = None if remaining is None else remaining - len(data)
            pending += data
            whole = len(pending) // fmt.frame_bytes * fmt.frame_bytes
            samples, pending = fmt.decode(pending[:whole]), pending[whole:]
            if not np.isfinite(samples).all():
                raise InputError(f"non-finite samples (NaN or inf) before byte offset {reader.offset}")
            frames += len(samples)
            stream.seconds = frames / fmt.rate
            mono = samples.mean(axis=1) if fmt.channels > 1 else samples[:, 0]
            yield mono if resampler is None else resampler.resample_chunk(mono, last=False)
        if pending:
            raise InputError(f"the stream ended {len(pending)} byte(s) into a frame of {fmt.frame_bytes} bytes, at byte "
                             f"offset {reader.offset}: not a whole number of frames")
        if resampler is not None:
            yield resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)

    return Stream("-", blocks)


def file_stream(path: Path, rate: int, realtime: bool) -> Stream:
    """A file's samples at `rate`, as fast as they decode, or with `realtime` no faster than they would play."""

    def blocks(stream: Stream) -> Iterator[np.ndarray]:
        recording = open_recording(path, rate, block_seconds=FILE_BLOCK_SECONDS)
        started, sent = time.monotonic(), 0
        for block in recording.blocks:
            sent += len(block)
            stream.seconds = min(sent / rate, recording.seconds)
            if realtime:
                time.sleep(max(0.0, started + sent / rate - time.monotonic()))
            yield block
        stream.seconds = recording.seconds

    return Stream(str(path), blocks)


NO_MIC = ("--mic reads a sound card through PortAudio: pip install 'nonspeech[live]' (the sounddevice package) "
          "and the PortAudio library (Debian/Ubuntu: apt-get install libportaudio2; macOS: brew install portaudio)")
PIPE_HINT = "or pipe audio in: `arecord -q -f S16_LE -r 16000 -c 1 -t wav | nonspeech listen -`"


@dataclass(frozen=True)
class Microphone:
    """A sound card input found through PortAudio: its device (a name, an index or None: the default) and rate."""

    device: str | int | None
    rate: int


def find_microphone(device: str | None) -> Microphone:
    """The sound card input `device` (a name or index; None: the default); InputError with the way out when
    PortAudio or the device is missing. Cheap: run it before loading a model."""
    if importlib.util.find_spec("sounddevice") is None:
        raise InputError(f"{NO_MIC} (sounddevice is not installed); {PIPE_HINT}")
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises it when the PortAudio library is missing
        raise InputError(f"{NO_MIC} ({exc}); {PIPE_HINT}") from exc
    chosen = int(device) if device and device.isdigit() else device
    try:
        info = sounddevice.query_devices(chosen, "input")
    except (ValueError, sounddevice.PortAudioError) as exc:
        raise InputError(f"--mic {device or ''}: no input device ({exc}); {PIPE_HINT}") from exc
    return Microphone(chosen, int(info["default_samplerate"]))


def microphone_stream(mic: Microphone, rate: int, timeout: float | None) -> Stream:
    """The sound card's input, resampled to `rate`."""
    import sounddevice

    chosen, device_rate = mic.device, mic.rate

    def blocks(stream: Stream) -> Iterator[np.ndarray]:
        arrived: queue.Queue[np.ndarray] = queue.Queue()
        resampler = None if device_rate == rate else soxr.ResampleStream(device_rate, rate, 1, dtype="float32", quality="HQ")
        frames = 0
        with sounddevice.InputStream(device=chosen, channels=1, samplerate=device_rate, dtype="float32",
                                     callback=lambda data, *_: arrived.put(data[:, 0].copy())):
            while True:
                try:
                    block = arrived.get(timeout=timeout)
                except queue.Empty:
                    raise Stalled() from None
                frames += len(block)
                stream.seconds = frames / device_rate
                yield block if resampler is None else resampler.resample_chunk(block, last=False)

    return Stream(f"mic {chosen if chosen is not None else 'default'}", blocks)
