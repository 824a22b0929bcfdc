"""Export a checkpoint as one portable model, waveforms in and class probabilities out, and run the ONNX one.

The exported model takes mono float32 waveforms (batch, samples) at features.sample_rate, with
samples = round(features.seconds * sample_rate) (decode, downmix, resample, pad or truncate before),
and outputs class probabilities (batch, classes), computed as in training (nonspeech.outputs: softmax, or
per-class sigmoids with `other` = 1 - the highest). The log-mel front end and the normalisation
are inside. Class names and feature parameters are stored as JSON in the ONNX metadata_props (keys
"classes", "features", "model", "activation", "input", "output") or in the TorchScript extra file "nonspeech.json".
ONNX has no export for torch.stft's complex output, so the ONNX front end computes the STFT as a
conv1d over a windowed-DFT basis (PowerSTFT with conv=True).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from nonspeech.checkpoint import model_from_checkpoint, output_of
from nonspeech.labels import negative_index
from nonspeech.outputs import Probabilities
from nonspeech.predict import Model, ModelError, clip_samples
from nonspeech.preprocess import preprocessing

OPSET = 17
INPUT_DOC = "mono float32 waveforms (batch, samples) at features.sample_rate, samples = round(seconds * sample_rate)"
OUTPUT_DOC = "class probabilities (batch, classes), in the order of classes; activation: softmax or sigmoid"


def portable_network(checkpoint: dict, conv_stft: bool) -> nn.Sequential:
    """Waveforms (B, samples) to probabilities: the checkpoint's preprocessing, network and probability function,
    in eval mode."""
    probabilities = Probabilities(output_of(checkpoint), negative_index(list(checkpoint["classes"])))
    return nn.Sequential(preprocessing(checkpoint, conv_stft), model_from_checkpoint(checkpoint), probabilities).eval()


def metadata(checkpoint: dict) -> dict[str, str]:
    """What a user of the exported file needs, as JSON strings."""
    return {
        "classes": json.dumps(list(checkpoint["classes"])),
        "features": json.dumps(checkpoint["features"]),
        "model": json.dumps(checkpoint["model"]),
        "activation": output_of(checkpoint),
        "input": INPUT_DOC,
        "output": OUTPUT_DOC,
    }


def export_onnx(checkpoint: dict, out: Path) -> None:
    """Write the checkpoint as an ONNX model (opset 17, dynamic batch) with metadata_props."""
    example = torch.zeros(1, clip_samples(checkpoint["features"]))
    network = portable_network(checkpoint, conv_stft=True)
    axes = {"waveform": {0: "batch"}, "probabilities": {0: "batch"}}
    buffer = onnx_buffer(network, example, ("waveform", "probabilities"), axes)
    model = onnx.load_from_string(buffer)
    onnx.helper.set_model_props(model, metadata(checkpoint))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))


def onnx_buffer(
    module: nn.Module, example: torch.Tensor, names: tuple[str, str], dynamic_axes: dict[str, dict[int, str]],
) -> bytes:
    """The module traced on example as ONNX (opset 17), its input and output named `names`. Every submodule keeps
    its train/eval mode (the exporter would set them all to the root's afterwards)."""
    buffer = io.BytesIO()
    modes = {m: m.training for m in module.modules()}
    # The TorchScript-based exporter needs no onnxscript but is deprecated; reflect padding makes it note a Slice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=[names[0]],
            output_names=[names[1]], dynamic_axes=dynamic_axes,
        )
    for submodule, training in modes.items():
        submodule.training = training
    return buffer.getvalue()


def onnx_runner(module: nn.Module, example: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """A module from (1, bins, frames) to (1, C, F, columns) run by onnxruntime on CPU with torch's thread count,
    for any number of frames: about 3x faster than PyTorch for the mn04 body's depthwise convolutions."""
    with torch.inference_mode():
        model = onnx_buffer(module, example, ("input", "output"), {"input": {2: "frames"}, "output": {3: "columns"}})
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"input": np.ascontiguousarray(x.numpy())})[0])


def export_torchscript(checkpoint: dict, out: Path) -> None:
    """Write the checkpoint as a traced TorchScript module with the metadata in extra file nonspeech.json."""
    with torch.inference_mode():
        traced = torch.jit.trace(portable_network(checkpoint, conv_stft=False), torch.zeros(1, clip_samples(checkpoint["features"])))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(out), _extra_files={"nonspeech.json": json.dumps(metadata(checkpoint))})


def onnx_model(path: Path) -> Model:
    """An exported ONNX model run with onnxruntime on CPU, its classes and features read from the metadata."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX model {path} not found")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail, InvalidProtobuf, NoSuchFile, ...
        raise ModelError(f"{path}: not a usable ONNX model ({str(exc).strip()})") from exc
    props = session.get_modelmeta().custom_metadata_map
    try:
        classes, features = json.loads(props["classes"]), json.loads(props["features"])
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{path}: no nonspeech metadata (classes, features); export it with `nonspeech export`") from exc

    def probabilities(waveforms: np.ndarray) -> np.ndarray:
        return session.run(None, {"waveform": np.ascontiguousarray(waveforms, dtype=np.float32)})[0]

    return Model(classes, features, probabilities)
