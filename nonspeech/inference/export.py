"""Export a checkpoint as one portable model file, waveforms in and class probabilities out.

The exported model takes mono float32 waveforms (batch, samples) at features.sample_rate, with
samples = round(features.seconds * sample_rate) (decode, downmix, resample, pad or truncate before),
and outputs class probabilities (batch, classes), computed as in training (nonspeech.models.outputs: softmax, or
per-class sigmoids with `other` = 1 - the highest). The log-mel front end and the normalisation
are inside. Class names and feature parameters are stored as JSON in the ONNX metadata_props (keys
"classes", "features", "model", "activation", "thresholds", "decision_rule", "input", "output") or in the TorchScript extra file "nonspeech.json".
ONNX has no export for torch.stft's complex output, so the ONNX front end computes the STFT as a
conv1d over a windowed-DFT basis (PowerSTFT with conv=True).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
from torch import nn

from nonspeech.inference.model import clip_samples
from nonspeech.inference.onnx_graph import onnx_buffer
from nonspeech.inference.preprocessing import preprocessing
from nonspeech.labels import negative_index
from nonspeech.models.checkpoint import decision_rule_of, model_from_checkpoint, output_of
from nonspeech.models.outputs import Probabilities

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
        "thresholds": json.dumps({str(k): float(v) for k, v in (checkpoint.get("thresholds") or {}).items()}),
        "decision_rule": decision_rule_of(checkpoint),
        "input": INPUT_DOC,
        "output": OUTPUT_DOC,
    }


def export_onnx(checkpoint: dict, out: Path) -> None:
    """Write the checkpoint as an ONNX model (opset 17, dynamic batch) with metadata_props."""
    example = torch.zeros(1, clip_samples(checkpoint["features"]))
    network = portable_network(checkpoint, conv_stft=True)
    axes = {"waveform": {0: "batch"}, "probabilities": {0: "batch"}}
    buffer = onnx_buffer(network, (example,), ("waveform", "probabilities"), axes)
    model = onnx.load_from_string(buffer)
    onnx.helper.set_model_props(model, metadata(checkpoint))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))



def export_torchscript(checkpoint: dict, out: Path) -> None:
    """Write the checkpoint as a traced TorchScript module with the metadata in extra file nonspeech.json."""
    with torch.inference_mode():
        traced = torch.jit.trace(portable_network(checkpoint, conv_stft=False), torch.zeros(1, clip_samples(checkpoint["features"])))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(out), _extra_files={"nonspeech.json": json.dumps(metadata(checkpoint))})
