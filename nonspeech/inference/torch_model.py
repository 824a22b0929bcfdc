"""The PyTorch back end of the loaded model: a checkpoint read, checked and run with its training-time
preprocessing; timelines share the network's convolutional body between overlapping windows."""

from __future__ import annotations

import copy
import functools
import pickle
import zipfile
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.onnx.operators import shape_as_tensor

from nonspeech.decisions import check_rule
from nonspeech.errors import ModelError
from nonspeech.features.frontends import input_bins
from nonspeech.inference.columns import column_framer, time_reach
from nonspeech.inference.model import LoadedModel, clip_samples
from nonspeech.inference.preprocessing import preprocessing
from nonspeech.inference.sliding import Framer, centre_classifier, exact_framer, shared_framer
from nonspeech.labels import negative_index
from nonspeech.models.checkpoint import (
    decision_rule_of,
    hysteresis_of,
    load_checkpoint,
    model_from_checkpoint,
    output_of,
)
from nonspeech.models.efficientat import ChannelGate, half_span, localise_gates, split_at_first_gate
from nonspeech.models.fused import for_inference
from nonspeech.models.outputs import class_boundaries, class_probabilities

REQUIRED_FEATURES = ("sample_rate", "seconds", "n_mels")
TIMELINE_SPAN = 0.5  # timelines score the centre half of each window: finer event edges, better on real scenes
NO_ONNXRUNTIME = ("onnxruntime is not installed (pip install 'nonspeech[export]'): timelines run the network body "
                  "in PyTorch, about 3x slower")


def onnxruntime_installed() -> bool:
    """Whether onnxruntime can be imported (the optional `export` extra), without importing it."""
    return find_spec("onnxruntime") is not None
def check_checkpoint(checkpoint: dict, path: Path) -> None:
    """Raise ModelError unless the feature and normalisation parameters are complete and agree."""
    features = checkpoint.get("features", {})
    missing = [key for key in REQUIRED_FEATURES if key not in features]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks feature parameters {', '.join(missing)}")
    if "embedding" in features and "embedder_state" not in checkpoint:
        raise ModelError(f"{path}: trained on clip embeddings but holds no embedding body (embedder_state)")
    try:
        check_rule(decision_rule_of(checkpoint))
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    bins = input_bins(features)
    for key in ("mean", "std"):
        size = np.size(checkpoint.get("normalization", {}).get(key, []))
        if size not in (1, bins):
            raise ModelError(
                f"{path}: normalization {key} has {size} values but the features have {bins} bins "
                "(a checkpoint from a different feature configuration)"
            )


def check_same_features(model: LoadedModel, source: str, checkpoint: dict, checkpoint_path: Path) -> None:
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


def unreadable_reason(path: Path, exc: Exception) -> str:
    """Why a checkpoint could not be read, in words of its own: never torch's advice to load it unsafely."""
    text = str(exc).strip()
    if Path(path).stat().st_size == 0:
        return "empty file (0 bytes)"
    if not zipfile.is_zipfile(path):
        return "not a PyTorch checkpoint (torch.save writes a zip archive; this file is not one)"
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text.lower() or "weights only" in text.lower():
        return "holds Python objects beyond tensors and plain values, which nonspeech never loads"
    return f"damaged or not a nonspeech checkpoint ({text.splitlines()[0] if text else type(exc).__name__})"


def read_checkpoint(path: Path) -> dict:
    """Load and check a checkpoint; FileNotFoundError when absent, ModelError when unusable."""
    try:
        checkpoint = load_checkpoint(path)
    except FileNotFoundError:
        raise
    except ValueError as exc:  # a readable file of another format
        raise ModelError(str(exc)) from exc
    except Exception as exc:  # torch.load raises UnpicklingError, RuntimeError, EOFError, ...
        raise ModelError(f"{path}: not a usable checkpoint: {unreadable_reason(path, exc)}") from exc
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


def column_margin(layer: nn.Module) -> int | None:
    """Columns either side of an output column that a layer keeping the time axis reads in its input: its
    convolutions' reach and its gates' half spans; None when it strides in time or a gate reads the whole input."""
    stride, reach = time_reach(layer)
    spans = [gate.span for gate in layer.modules() if isinstance(gate, ChannelGate)]
    if stride != 1 or None in spans:
        return None
    return reach + sum(half_span(span) for span in spans)


def columns_around(first: torch.Tensor, end: torch.Tensor, margin: int,
                   total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The columns first - margin <= j < end + margin of a map of `total` columns, and the first of them (tensors, so
    that an exported graph keeps them dynamic)."""
    start = torch.clamp(first - margin, min=0)
    return start, torch.arange(start, torch.minimum(end + margin, total))


class ColumnLogits(nn.Module):
    """A detector from the frames of its body's first layers (B, rows, frames) to the per-column logits (B, logits,
    columns) of the columns span[0] <= j < span[1] that the stretch has: its head's, then each of its boundary
    stacks' (2 per class), in the order of `kinds`. One module, so that onnxruntime runs the rest of the body and the
    head as one graph. The body's layers after its last time stride (`late`) and the head run only over the columns
    asked for and those they read: `margins[i]` either side at late layer i's input, the head's `reach` at its own."""

    def __init__(
        self, rest: nn.Sequential, embedder: nn.Module, normalize: nn.Module, head: nn.Module, kinds: list[str],
    ) -> None:
        super().__init__()
        self.embedder, self.normalize, self.head, self.kinds = embedder, normalize, head, kinds
        self.reach = max(time_reach(stack)[1] for stack in [*head.head, *(head.boundary_heads[k] for k in kinds)])
        self.margins: list[int] = []
        late = len(rest)
        while late and (margin := column_margin(rest[late - 1])) is not None:
            self.margins.insert(0, margin + (self.margins[0] if self.margins else self.reach))
            late -= 1
        self.early, self.late = rest[:late], rest[late:]

    def forward(self, x: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        maps = self.early(x)
        total = shape_as_tensor(maps)[-1]  # the exporter keeps a shape read this way dynamic; late layers keep it
        end, offset = torch.minimum(span[1], total), torch.zeros_like(span[0])  # maps' first column
        for layer, margin in zip(self.late, self.margins):
            first, read = columns_around(span[0], end, margin, total)
            maps, offset = layer(maps.index_select(3, read - offset)), first
        first, read = columns_around(span[0], end, self.reach, total)
        columns = self.normalize(self.embedder.from_maps(maps.index_select(3, read - offset)))
        stacks = [self.head.boundary_logits(columns, kind=kind).flatten(1, 2) for kind in self.kinds]
        logits = torch.cat([self.head.frame_logits(columns), *stacks], dim=1)
        return logits.index_select(2, torch.arange(span[0], end) - first)


def shared_parts(after_frontend: nn.Sequential, network: nn.Module) -> tuple[nn.Module, Callable]:
    """The network split for sharing between windows: (body, head), front-end frames (B, bins, frames) to the
    body's feature map (B, C, F, columns), and that map's mean over frequency and a window's columns (B, C) to
    logits; for embedding-trained models the body is the frozen embedding body, the head everything after it."""
    first = after_frontend[0]
    if hasattr(first, "feature_map"):  # AudioSetEmbedder
        rest = after_frontend[1:]
        return FeatureMap(first), lambda pooled: network(rest(first.from_pooled(pooled)))
    return nn.Sequential(*after_frontend, FeatureMap(network)), network.from_pooled


def body_runner(body: nn.Module, examples: tuple[torch.Tensor, ...], bf16: bool) -> Callable[..., torch.Tensor]:
    """The body run by onnxruntime when it is installed and bf16 is off, else by PyTorch (see NO_ONNXRUNTIME)."""
    if bf16 or not onnxruntime_installed():
        return body
    from nonspeech.inference.onnx_model import onnx_runner  # onnxruntime is the optional `export` extra

    return onnx_runner(body, *examples)


def is_detector(features: dict) -> bool:
    """Whether a model with these feature parameters is a frame-level detector (a head on the body's columns)."""
    return bool(features.get("embedding", {}).get("frames"))


def timeline_span(checkpoint: dict, span: float | None) -> float:
    """The span timelines use: `span` seconds when given, else a detector's column, else TIMELINE_SPAN of the
    checkpoint's window."""
    if span is not None:
        return span
    features = checkpoint["features"]
    return checkpoint["column_seconds"] if is_detector(features) else TIMELINE_SPAN * features["seconds"]


def torch_model(checkpoint: dict, bf16: bool = False, exact: bool = False, span: float | None = None) -> LoadedModel:
    """The checkpoint's preprocessing and network run by PyTorch; with bf16, the network under bfloat16 autocast
    (several times faster on CPUs with bf16 matrix units; probabilities move by up to about 0.02). Timelines share
    the network's body between overlapping windows (sliding.shared_framer; squeeze-excitation over the window
    centred on each column; the body by onnxruntime when installed); with exact, each window runs the whole
    network and equals the window alone. With a `span` (seconds), a timeline window's probabilities come from the
    feature map's centre `span` seconds only, and describe those. A detector's timeline is its per-column
    probabilities (the body's layers before its first gate once over the recording, the rest and the head once over
    each stretch, as one onnxruntime graph), each window scoring the column at its centre, followed, from each
    boundary stack, by that column's onsets or offsets (columns.column_framer)."""
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

    def detector_framer() -> Framer:
        embedder, normalize = after_frontend
        prefix, rest = split_at_first_gate(copy.deepcopy(embedder.network).requires_grad_(False), frontend.fb.shape[1])
        logits = ColumnLogits(rest, embedder, normalize, network, list(boundary_radius))
        with torch.inference_mode():
            example = frontend(torch.zeros(1, window))
            middle = prefix(example)
        run_prefix = body_runner(prefix, (example,), bf16)
        run_logits = body_runner(logits, (middle, torch.tensor([0, middle.shape[-1]])), bf16)

        def column_outputs(column_logits: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
            n = len(column_logits) // (1 + 2 * len(boundary_radius))  # the head's logits, then 2 per class per stack
            head, *stacks = column_logits.split([n] + [2 * n] * len(boundary_radius))
            return class_probabilities(head.T, output, negative).T, [
                class_boundaries(stack.reshape(1, 2, n, -1), negative)[0].transpose(0, 1) for stack in stacks]

        def column_logits(frames: torch.Tensor, first: int, end: int) -> torch.Tensor:
            return run(lambda x: run_logits(x, torch.tensor([first, end])), frames)

        return column_framer(frontend, prefix, lambda x: run(run_prefix, x), column_logits, column_outputs, window,
                             centre, features["sample_rate"])

    @functools.cache
    def framer() -> Framer:
        if detector:
            return detector_framer()
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
        run_body = body_runner(body, (example,), bf16)
        return shared_framer(frontend, lambda x: run(run_body, x), head_probabilities, window, centre)

    window, detector = clip_samples(features), is_detector(features)
    boundary_radius = checkpoint.get("boundary_radius", {}) if detector else {}
    thresholds = {str(k): float(v) for k, v in (checkpoint.get("thresholds") or {}).items()}
    median_seconds = {str(k): float(v) for k, v in (checkpoint.get("median_seconds") or {}).items()}
    return LoadedModel(list(checkpoint["classes"]), features, probabilities, framer, thresholds, span,
                       decision_rule_of(checkpoint), median_seconds, pad_edges=detector,
                       timeline_hop=checkpoint["column_seconds"] / checkpoint["hops_per_column"] if detector else None,
                       boundary_radius={kind: radius * checkpoint["column_seconds"] for kind, radius in boundary_radius.items()},
                       hysteresis=hysteresis_of(checkpoint))

