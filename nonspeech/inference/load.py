"""Load the model `predict` runs: a checkpoint by PyTorch, or an exported ONNX file by onnxruntime (checked against
its checkpoint when one is given)."""

from __future__ import annotations

from pathlib import Path

from nonspeech.errors import ModelError, OptionError
from nonspeech.inference.model import LoadedModel
from nonspeech.inference.torch_model import (
    check_same_features,
    is_detector,
    onnxruntime_installed,
    read_checkpoint,
    timeline_span,
    torch_model,
)


def checkpoint_at(path: Path) -> dict:
    """read_checkpoint, saying how to make a missing one."""
    try:
        return read_checkpoint(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; train one with `dvc repro train_final` or pass --model") from exc


def load_model(
    checkpoint: Path, onnx: Path | None = None, check_against: bool = False, bf16: bool = False, exact: bool = False,
    timeline: bool = False, span: float | None = None,
) -> LoadedModel:
    """The PyTorch model of `checkpoint`, or with `onnx` the ONNX model, checked against `checkpoint` when
    check_against; `timeline` prepares windows of the checkpoint's timeline span (or `span` seconds)."""
    if onnx is None:
        weights = checkpoint_at(checkpoint)
        if exact and is_detector(weights["features"]):
            raise OptionError(f"--exact: {checkpoint} is a detector, which scores every column of a recording once; "
                              "--exact applies to window classifiers")
        return torch_model(weights, bf16, exact, timeline_span(weights, span) if timeline else None)
    if not onnxruntime_installed():
        raise ModelError(f"--onnx {onnx}: running ONNX models needs onnxruntime (pip install 'nonspeech[export]')")
    from nonspeech.inference.onnx_model import onnx_model  # onnxruntime is the optional `export` extra

    try:
        model = onnx_model(onnx)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; write one with `nonspeech export`") from exc
    if check_against:
        check_same_features(model, f"ONNX model {onnx}", checkpoint_at(checkpoint), checkpoint)
    if timeline and is_detector(model.features):
        raise OptionError(f"--onnx {onnx}: an exported detector classifies whole windows only; timelines need its "
                          "checkpoint: --model without --onnx")
    return model
