"""Model registry: classifiers over feature batches shaped (B, bins, frames), and their pretrained weights.

Every model has a `head` (the layers after its body); fine-tuning may train it at a higher learning rate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from nonspeech.models.efficientat import efficientat, init_from_audioset
from nonspeech.models.embedding import embedding_head
from nonspeech.models.frame_head import frame_head
from nonspeech.models.resnet import resnet

MODELS: dict[str, Callable[..., nn.Module]] = {"resnet": resnet, "efficientat": efficientat, "embedding_head": embedding_head,
                                               "frame_head": frame_head}
PRETRAINED: dict[str, Callable[[nn.Module, str | Path], None]] = {"efficientat": init_from_audioset}


def build_model(name: str, n_classes: int, **args: object) -> nn.Module:
    """Instantiate the registered model `name` with `args` (the params.yaml `model:` arguments)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](n_classes, **args)
    except TypeError as exc:  # an argument the model does not take
        raise ValueError(f"model.args {args} do not fit model {name}: {exc}") from exc


def load_pretrained(model: nn.Module, name: str, weights: str | Path) -> None:
    """Initialise the model's body from a pretrained weights file (ValueError for models that have none)."""
    if name not in PRETRAINED:
        raise ValueError(f"model {name!r} has no pretrained weights; set model.weights to null (pretrained: {', '.join(PRETRAINED)})")
    PRETRAINED[name](model, weights)


def check_input_fits(name: str, args: dict, n_classes: int, shape: list[int]) -> None:
    """ValueError unless model `name` maps one input of `shape` (bins, frames) to n_classes logits."""
    model = build_model(name, n_classes, **args).eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(1, *shape))
    except RuntimeError as exc:
        raise ValueError(
            f"model {name} with args {args} cannot read the inputs, of shape {list(shape)} (bins, frames): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    if logits.shape != (1, n_classes):
        raise ValueError(f"model {name} gives outputs of shape {list(logits.shape)}, not (1, {n_classes})")
