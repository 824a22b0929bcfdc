"""The model file: weights plus everything needed to use them later."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from nonspeech.decisions import DEFAULT_RULE
from nonspeech.events import DEFAULT_HYSTERESIS
from nonspeech.labels import negative_index
from nonspeech.models.outputs import network_outputs
from nonspeech.models.registry import build_model

FORMAT = 1


def make_checkpoint(
    model: nn.Module, model_name: str, model_args: dict, classes: list[str],
    features: dict, normalization: dict, **extra: object,
) -> dict:
    """Bundle weights, architecture, classes, feature and normalisation parameters and versions."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {
        "format": FORMAT, "model_state": state, "model": {"name": model_name, "args": model_args},
        "classes": list(classes), "features": dict(features), "normalization": dict(normalization),
        "versions": {p: version(p) for p in ("nonspeech", "torch", "numpy")}, **extra,
    }


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """Write atomically, so a preempted job never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by save_checkpoint, on CPU."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a nonspeech model checkpoint (format {checkpoint.get('format')!r})")
    return checkpoint


def output_of(checkpoint: dict) -> str:
    """How the checkpoint's outputs become probabilities (nonspeech.models.outputs); softmax for checkpoints from before
    the choice."""
    return checkpoint.get("output", "softmax")


def decision_rule_of(checkpoint: dict) -> str:
    """The rule its thresholds apply by (nonspeech.decisions); `probability` for checkpoints from before the choice."""
    return checkpoint.get("decision_rule", DEFAULT_RULE)


def hysteresis_of(checkpoint: dict) -> float:
    """The hysteresis its timeline thresholds were chosen with (a detector's); DEFAULT_HYSTERESIS for the others."""
    return float(checkpoint.get("hysteresis", DEFAULT_HYSTERESIS))


def model_from_checkpoint(checkpoint: dict) -> nn.Module:
    """Rebuild the network and load its weights, in eval mode."""
    spec, classes = checkpoint["model"], list(checkpoint["classes"])
    model = build_model(spec["name"], network_outputs(len(classes), output_of(checkpoint), negative_index(classes)), **spec["args"])
    model.load_state_dict(checkpoint["model_state"])
    return model.eval()
