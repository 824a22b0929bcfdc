"""Classify audio files and long recordings with a trained model, preprocessed exactly as in training."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from nonspeech.audio import AudioError, decode_mono, load_clip, resample
from nonspeech.checkpoint import load_checkpoint, model_from_checkpoint
from nonspeech.frontend import front_end

BATCH_SIZE = 8  # clips per forward pass: small batches keep activations in cache (fastest on 2 CPU cores)
FEATURE_KEYS = ("sample_rate", "seconds", "n_fft", "hop_length", "n_mels", "top_db")
AUDIO_EXTENSIONS = frozenset(
    {f".{name.lower()}" for name in sf.available_formats() if name != "RAW"} | {".aif", ".oga", ".opus", ".wave"}
)


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class Model:
    """Class names, feature parameters and a function from waveforms (B, samples) to probabilities (B, classes)."""

    classes: list[str]
    features: dict
    probabilities: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Outcome:
    """One file's class probabilities, duration in seconds and any warning about it, or why it could not be
    classified."""

    path: str
    probabilities: np.ndarray | None = None
    seconds: float = 0.0
    error: str = ""
    warning: str = ""


@dataclass(frozen=True)
class Windows:
    """Class probabilities (windows, classes) of windows starting at `starts` seconds in a recording, and any
    warning about the recording."""

    starts: np.ndarray
    probabilities: np.ndarray
    seconds: float
    warning: str = ""


@dataclass(frozen=True)
class Segment:
    """A stretch of a recording where one class's window probability reached the threshold."""

    start: float
    end: float
    label: str
    max_probability: float
    mean_probability: float


def clip_samples(features: dict) -> int:
    """Samples in one model input: features['seconds'] at features['sample_rate'], rounded as in ingest."""
    return int(round(features["sample_rate"] * features["seconds"]))


def check_checkpoint(checkpoint: dict, path: Path) -> None:
    """Raise ModelError unless the feature and normalisation parameters are complete and agree."""
    missing = [key for key in FEATURE_KEYS if key not in checkpoint.get("features", {})]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks feature parameters {', '.join(missing)}")
    n_mels = checkpoint["features"]["n_mels"]
    for key in ("mean", "std"):
        size = np.size(checkpoint.get("normalization", {}).get(key, []))
        if size not in (1, n_mels):
            raise ModelError(
                f"{path}: normalization {key} has {size} values but features.n_mels is {n_mels} "
                "(a checkpoint from a different feature configuration)"
            )


def check_same_features(model: Model, source: str, checkpoint: dict, checkpoint_path: Path) -> None:
    """Raise ModelError when a model's feature parameters or classes differ from a checkpoint's."""
    diffs = [
        f"{key} {model.features.get(key)!r} vs {checkpoint['features'][key]!r}"
        for key in FEATURE_KEYS if model.features.get(key) != checkpoint["features"][key]
    ]
    if model.classes != list(checkpoint["classes"]):
        diffs.append(f"classes {model.classes} vs {list(checkpoint['classes'])}")
    if diffs:
        raise ModelError(
            f"{source} has a different feature configuration than checkpoint {checkpoint_path}: {'; '.join(diffs)}"
        )


def read_checkpoint(path: Path) -> dict:
    """Load and check a checkpoint; FileNotFoundError when absent, ModelError when unusable."""
    try:
        checkpoint = load_checkpoint(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch.load raises UnpicklingError, RuntimeError, EOFError, ...
        raise ModelError(f"{path}: not a usable checkpoint ({exc})") from exc
    check_checkpoint(checkpoint, path)
    return checkpoint


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold each BatchNorm2d that follows a Conv2d inside an nn.Sequential into the convolution (eval only)."""
    for block in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(block) - 1):
            if isinstance(block[i], nn.Conv2d) and isinstance(block[i + 1], nn.BatchNorm2d):
                block[i], block[i + 1] = fuse_conv_bn_eval(block[i], block[i + 1]), nn.Identity()
    return model


def inference_network(checkpoint: dict) -> nn.Module:
    """The checkpoint's network for CPU inference: BatchNorm folded into the convolutions, channels_last."""
    return fold_batchnorm(model_from_checkpoint(checkpoint)).to(memory_format=torch.channels_last)


def torch_model(checkpoint: dict, bf16: bool = False) -> Model:
    """The checkpoint's front end and network run by PyTorch; with bf16, the network under bfloat16 autocast
    (several times faster on CPUs with bf16 matrix units; probabilities move by up to about 0.02)."""
    frontend = front_end(checkpoint["features"], checkpoint["normalization"])
    network = inference_network(checkpoint)

    def probabilities(waveforms: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = frontend(torch.from_numpy(waveforms))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = network(inputs)
            return torch.softmax(logits.float(), dim=-1).numpy()

    return Model(list(checkpoint["classes"]), dict(checkpoint["features"]), probabilities)


def find_audio(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand folders recursively into audio files; return the files and (path, reason) for unusable inputs."""
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
            files.extend(found)
            if not found:
                errors.append((str(raw), "empty folder: no audio files in it or below"))
        elif path.is_file():
            files.append(path)
        else:
            errors.append((str(raw), "no such file or folder"))
    return files, errors


def classify_files(paths: Iterable[Path], model: Model, batch_size: int = BATCH_SIZE) -> Iterator[Outcome]:
    """Probabilities per file from its first features.seconds (zero-padded when shorter), in batches.

    Failures are yielded as soon as they occur; classified files keep their input order."""
    rate, length = model.features["sample_rate"], clip_samples(model.features)
    batch: list[tuple[str, np.ndarray, float, str]] = []
    for path in paths:
        try:
            clip, decoded = load_clip(path, rate, length)
        except AudioError as exc:
            yield Outcome(str(path), error=str(exc))
            continue
        batch.append((str(path), clip, decoded.seconds, decoded.truncation))
        if len(batch) == batch_size:
            yield from _classified(batch, model)
            batch = []
    yield from _classified(batch, model)


def _classified(batch: list[tuple[str, np.ndarray, float, str]], model: Model) -> list[Outcome]:
    if not batch:
        return []
    probabilities = model.probabilities(np.stack([clip for _, clip, _, _ in batch]))
    return [
        Outcome(path, probs, seconds, warning=warning) for (path, _, seconds, warning), probs in zip(batch, probabilities)
    ]


def window_starts(n_samples: int, window: int, hop: int) -> np.ndarray:
    """Start samples of windows every `hop` until one reaches the end; at least one window."""
    return np.arange(1 + max(0, math.ceil((n_samples - window) / hop))) * hop


def classify_recording(path: Path, model: Model, hop_seconds: float, batch_size: int = BATCH_SIZE) -> Windows:
    """Probabilities of windows every hop_seconds; the last is zero-padded, all-zero ones score 0 for every class.

    Raises AudioError for an unusable file."""
    rate, window = model.features["sample_rate"], clip_samples(model.features)
    decoded = decode_mono(path)
    samples = resample(decoded.samples, decoded.sample_rate, rate)
    if not np.any(samples):
        raise AudioError("silent: every sample is zero")
    hop = max(1, round(hop_seconds * rate))
    starts = window_starts(len(samples), window, hop)
    padded = np.pad(samples, (0, starts[-1] + window - len(samples)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)[::hop]  # a read-only view; batches are copied
    parts = []
    for i in range(0, len(windows), batch_size):
        batch = windows[i : i + batch_size].copy()
        parts.append(model.probabilities(batch) * batch.any(axis=1, keepdims=True))
    return Windows(starts / rate, np.concatenate(parts), decoded.seconds, decoded.truncation)


def timeline(windows: Windows, classes: list[str], window_seconds: float, threshold: float) -> list[Segment]:
    """Segments where a class's window probability is >= threshold, merging windows that overlap or touch."""
    segments = []
    for index, label in enumerate(classes):
        scores = windows.probabilities[:, index]
        run: list[int] = []
        for i in np.flatnonzero(scores >= threshold):
            if run and windows.starts[i] > windows.starts[run[-1]] + window_seconds:
                segments.append(_segment(windows, run, scores, label, window_seconds))
                run = []
            run.append(int(i))
        if run:
            segments.append(_segment(windows, run, scores, label, window_seconds))
    return sorted(segments, key=lambda s: (s.start, s.label))


def _segment(windows: Windows, run: list[int], scores: np.ndarray, label: str, window_seconds: float) -> Segment:
    end = min(windows.starts[run[-1]] + window_seconds, windows.seconds)
    return Segment(float(windows.starts[run[0]]), float(end), label, float(scores[run].max()), float(scores[run].mean()))


def top_k(probabilities: np.ndarray, classes: list[str], k: int) -> list[tuple[str, float]]:
    """The k most probable classes with their probabilities, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(classes[i], float(probabilities[i])) for i in order]
