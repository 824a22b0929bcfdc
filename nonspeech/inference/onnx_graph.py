"""A torch module traced to an in-memory ONNX graph (opset 17), for export and for onnxruntime inference."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

OPSET = 17


def onnx_buffer(
    module: nn.Module, examples: tuple[torch.Tensor, ...], names: tuple[str, ...],
    dynamic_axes: dict[str, dict[int, str]],
) -> bytes:
    """The module traced on its example inputs as ONNX (opset 17), its inputs then its output named `names`. Every
    submodule keeps its train/eval mode (the exporter would set them all to the root's afterwards)."""
    buffer = io.BytesIO()
    modes = {m: m.training for m in module.modules()}
    # The TorchScript-based exporter needs no onnxscript but is deprecated; reflect padding makes it note a Slice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        torch.onnx.export(
            module, examples, buffer, dynamo=False, opset_version=OPSET, input_names=list(names[:-1]),
            output_names=[names[-1]], dynamic_axes=dynamic_axes,
        )
    for submodule, training in modes.items():
        submodule.training = training
    return buffer.getvalue()
