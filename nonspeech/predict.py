"""Classify audio files and long recordings with a trained model, preprocessed exactly as in training."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from nonspeech.audio import AudioError
from nonspeech.checkpoint import load_checkpoint, model_from_checkpoint, output_of
from nonspeech.events import Windows
from nonspeech.labels import NEGATIVE, negative_index
from nonspeech.models.efficientat import localise_gates
from nonspeech.models.inference import for_inference
from nonspeech.outputs import class_probabilities
from nonspeech.frontends import input_bins
from nonspeech.preprocess import preprocessing
from nonspeech.sliding import Framer, centre_classifier, exact_framer, shared_framer, slide, waveform_framer
from nonspeech.stream import head_clip, open_recording

BATCH_SIZE = 8  # clips per forward pass: small batches keep activations in cache (fastest on 2 CPU cores)
REQUIRED_FEATURES = ("sample_rate", "seconds", "n_mels")
TIMELINE_SPAN = 0.5  # timelines score the centre half of each window: finer event edges, better on real scenes
AUDIO_EXTENSIONS = frozenset(
    {f".{name.lower()}" for name in sf.available_formats() if name != "RAW"} | {".aif", ".oga", ".opus", ".wave"}
)


class ModelError(ValueError):
    """A model file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class Model:
    """Class names, feature parameters, a function from waveforms (B, samples) to probabilities (B, classes), a
    function giving the framer that slides it over a recording's frames, made on first use (None: windows are cut
    from the waveform), per-class decision thresholds (absent: 0.5) and the seconds at the centre of each timeline
    window that its probabilities describe (None: the whole window)."""

    classes: list[str]
    features: dict
    probabilities: Callable[[np.ndarray], np.ndarray]
    framer: Callable[[], Framer] | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    span: float | None = None


@dataclass(frozen=True)
class Outcome:
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


def check_checkpoint(checkpoint: dict, path: Path) -> None:
    """Raise ModelError unless the feature and normalisation parameters are complete and agree."""
    features = checkpoint.get("features", {})
    missing = [key for key in REQUIRED_FEATURES if key not in features]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks feature parameters {', '.join(missing)}")
    if "embedding" in features and "embedder_state" not in checkpoint:
        raise ModelError(f"{path}: trained on clip embeddings but holds no embedding body (embedder_state)")
    bins = input_bins(features)
    for key in ("mean", "std"):
        size = np.size(checkpoint.get("normalization", {}).get(key, []))
        if size not in (1, bins):
            raise ModelError(
                f"{path}: normalization {key} has {size} values but the features have {bins} bins "
                "(a checkpoint from a different feature configuration)"
            )


def check_same_features(model: Model, source: str, checkpoint: dict, checkpoint_path: Path) -> None:
    """Raise ModelError when a model's feature parameters or classes differ from a checkpoint's."""
    keys = sorted(set(model.features) | set(checkpoint["features"]))
    diffs = [
        f"{key} {model.features.get(key)!r} vs {checkpoint['features'].get(key)!r}"
        for key in keys if model.features.get(key) != checkpoint["features"].get(key)
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


def inference_network(checkpoint: dict) -> nn.Module:
    """The checkpoint's network for CPU inference: BatchNorm folded into the convolutions, channels_last."""
    return for_inference(model_from_checkpoint(checkpoint))


class FeatureMap(nn.Module):
    """A network's convolutional body as a module: its `feature_map`, (B, bins, frames) to (B, C, F, columns)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.feature_map(x)


def shared_parts(after_frontend: nn.Sequential, network: nn.Module) -> tuple[nn.Module, Callable]:
    """The network split for sharing between windows: (body, head), front-end frames (B, bins, frames) to the
    body's feature map (B, C, F, columns), and that map's mean over frequency and a window's columns (B, C) to
    logits; for embedding-trained models the body is the frozen embedding body, the head everything after it."""
    first = after_frontend[0]
    if hasattr(first, "feature_map"):  # AudioSetEmbedder
        rest = after_frontend[1:]
        return FeatureMap(first), lambda pooled: network(rest(first.from_pooled(pooled)))
    return nn.Sequential(*after_frontend, FeatureMap(network)), network.from_pooled


def body_runner(body: nn.Module, example: torch.Tensor, bf16: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """The body run by onnxruntime when it is installed (the `export` extra) and bf16 is off, else by PyTorch."""
    if not bf16:
        try:
            from nonspeech.export import onnx_runner
        except ImportError:
            pass
        else:
            return onnx_runner(body, example)
    return body


def timeline_span(checkpoint: dict, span: float | None) -> float:
    """The span timelines use: `span` seconds when given, else TIMELINE_SPAN of the checkpoint's window."""
    return span if span is not None else TIMELINE_SPAN * checkpoint["features"]["seconds"]


def torch_model(checkpoint: dict, bf16: bool = False, exact: bool = False, span: float | None = None) -> Model:
    """The checkpoint's preprocessing and network run by PyTorch; with bf16, the network under bfloat16 autocast
    (several times faster on CPUs with bf16 matrix units; probabilities move by up to about 0.02). Timelines share
    the network's body between overlapping windows (sliding.shared_framer; squeeze-excitation over the window
    centred on each column; the body by onnxruntime when installed); with exact, each window runs the whole
    network and equals the window alone. With a `span` (seconds), a timeline window's probabilities come from the
    feature map's centre `span` seconds only, and describe those."""
    features = dict(checkpoint["features"])
    if span is not None and not 0 < span <= features["seconds"]:
        raise ModelError(f"span {span:g} s: must be more than 0 and at most the model's window, {features['seconds']:g} s")
    centre = (span or features["seconds"]) / features["seconds"]  # the fraction of each window its scores describe
    stages = for_inference(preprocessing(checkpoint))
    frontend, after_frontend = stages[0], stages[1:]
    network = inference_network(checkpoint)
    output, negative = output_of(checkpoint), negative_index(list(checkpoint["classes"]))

    def run(module: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return module(inputs).float()

    def probabilities_of(head: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor) -> np.ndarray:
        return class_probabilities(run(head, inputs), output, negative).numpy()

    def classify(features: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return probabilities_of(network, after_frontend(features))

    def probabilities(waveforms: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return classify(frontend(torch.from_numpy(waveforms)))

    @functools.cache
    def framer() -> Framer:
        if exact and centre == 1.0:
            return exact_framer(frontend, classify, window)
        body, head = shared_parts(*copy.deepcopy([after_frontend, network]))
        body.requires_grad_(False)

        def head_probabilities(pooled: torch.Tensor) -> np.ndarray:
            return probabilities_of(head, pooled)

        with torch.inference_mode():
            example = frontend(torch.zeros(1, window))
        if exact:
            bins, width = example.shape[1:]
            alone = centre_classifier(lambda x: run(body, x), head_probabilities, bins, width, centre)
            return exact_framer(frontend, alone, window)
        with torch.inference_mode():
            localise_gates(body, lambda: body(example))
        run_body = body_runner(body, example, bf16)
        return shared_framer(frontend, lambda x: run(run_body, x), head_probabilities, window, centre)

    window = clip_samples(features)
    thresholds = {str(k): float(v) for k, v in (checkpoint.get("thresholds") or {}).items()}
    return Model(list(checkpoint["classes"]), features, probabilities, framer, thresholds, span)


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
    """Probabilities per file from its first features.seconds (zero-padded when shorter; only those are read), in
    batches. Failures are yielded as soon as they occur; classified files keep their input order."""
    rate, length = model.features["sample_rate"], clip_samples(model.features)
    batch: list[tuple[str, np.ndarray, float, str]] = []
    for path in paths:
        try:
            clip, recording = head_clip(path, rate, length)
        except AudioError as exc:
            yield Outcome(str(path), error=str(exc))
            continue
        batch.append((str(path), clip, recording.seconds, recording.warning))
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


def classify_recording(path: Path, model: Model, hop_seconds: float, batch_size: int = BATCH_SIZE) -> Windows:
    """Probabilities of windows every hop_seconds (starts rounded to the front end's hop), streamed block by block,
    as stretches of model.span seconds centred in them (the whole window by default); the last window is
    zero-padded, windows of digital silence score 0 for every class. Raises AudioError for an unusable file."""
    rate, window = model.features["sample_rate"], clip_samples(model.features)
    recording = open_recording(path, rate)
    framer = model.framer() if model.framer else waveform_framer(model.probabilities, window)
    with torch.inference_mode():
        starts, probabilities = slide(
            recording.blocks, framer, window, hop_seconds * rate, int(model.features.get("hop_length", 1)), batch_size,
        )
    length = model.span or model.features["seconds"]
    offset = (model.features["seconds"] - length) / 2
    return Windows(starts / rate + offset, probabilities, recording.seconds, length, recording.warning)


def top_k(probabilities: np.ndarray, classes: list[str], k: int) -> list[tuple[str, float]]:
    """The k most probable classes with their probabilities, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(classes[i], float(probabilities[i])) for i in order]


def detections(probabilities: np.ndarray, classes: list[str], thresholds: np.ndarray) -> list[tuple[str, float]]:
    """The target classes whose probability reaches their threshold, most probable first (NEGATIVE never)."""
    return [(label, p) for label, p in top_k(probabilities, classes, len(classes))
            if label != NEGATIVE and p >= thresholds[classes.index(label)]]
