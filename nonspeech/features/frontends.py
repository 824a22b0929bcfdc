"""Front ends: waveforms (B, samples) to the (B, bins, frames) features a network reads, named by a feature spec.

A feature spec is the dict stored with every feature store, shard set and checkpoint: `frontend`, the
audio's `sample_rate` and `seconds`, the front end's own parameters and, for clip embeddings, `embedding`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from nonspeech.features.efficientat_mel import SAMPLE_RATE as EFFICIENTAT_RATE
from nonspeech.features.efficientat_mel import EfficientATMel
from nonspeech.features.logmel import LogMel

FRONTENDS = ("logmel", "efficientat")
LOGMEL_KEYS = ("n_fft", "hop_length", "n_mels", "top_db")
EFFICIENTAT_ARGS = {
    "n_fft": 1024, "win_length": 800, "hop_length": 320, "n_mels": 128, "f_min": 0.0, "f_max": 15000.0,
    "preemphasis": 0.97,
}


def feature_spec(frontend: str, sample_rate: int, seconds: float, logmel: dict) -> dict:
    """The spec of `frontend` on audio at sample_rate: `logmel` (n_fft, hop_length, n_mels, top_db) sets the
    logmel front end; the efficientat one has the fixed parameters its pretrained networks expect."""
    if frontend == "logmel":
        return {"frontend": frontend, "sample_rate": sample_rate, "seconds": seconds, **{k: logmel[k] for k in LOGMEL_KEYS}}
    if frontend == "efficientat":
        if sample_rate != EFFICIENTAT_RATE:
            raise ValueError(f"the efficientat front end needs audio.sample_rate {EFFICIENTAT_RATE}, got {sample_rate}")
        return {"frontend": frontend, "sample_rate": sample_rate, "seconds": seconds, **EFFICIENTAT_ARGS}
    raise ValueError(f"unknown front end {frontend!r}; valid: {', '.join(FRONTENDS)}")


def build_frontend(spec: dict, conv_stft: bool = False) -> nn.Module:
    """The spec's front end module; conv_stft computes the STFT as a conv1d, for ONNX export."""
    name = spec.get("frontend", "logmel")  # checkpoints written before front ends had names are logmel
    if name == "logmel":
        return LogMel(spec["sample_rate"], *(spec[k] for k in LOGMEL_KEYS), conv_stft=conv_stft)
    if name == "efficientat":
        return EfficientATMel(**{k: spec[k] for k in EFFICIENTAT_ARGS}, conv_stft=conv_stft)
    raise ValueError(f"unknown front end {name!r}; valid: {', '.join(FRONTENDS)}")


def input_bins(spec: dict) -> int:
    """Rows of one network input: the embedding's dimensions for clip embeddings, else the mel bins."""
    return spec["embedding"]["dims"] if "embedding" in spec else spec["n_mels"]


def describe(spec: dict) -> str:
    """A short human description of a feature spec, for error messages."""
    if "embedding" in spec:
        emb = spec["embedding"]
        return f"{emb['dims']}-d clip embeddings of {emb['weights']} (width {emb['width']})"
    name = spec.get("frontend", "logmel")
    details = ", ".join(f"{k} {spec[k]}" for k in ("sample_rate", "seconds", *LOGMEL_KEYS) if k in spec)
    return f"{name} features ({details})"


def power_domain(spec: dict) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Functions from the spec's features to mel power and back, so sounds can be added as powers; ValueError for
    clip embeddings, which have no such domain."""
    if "embedding" in spec:
        raise ValueError("background mixing needs spectrogram features; clip embeddings cannot be mixed")
    if spec.get("frontend", "logmel") == "efficientat":
        return (lambda x: torch.exp(5.0 * x - 4.5)), (lambda power: (torch.log(power) + 4.5) / 5.0)
    top_db = spec["top_db"]

    def to_db(power: Tensor) -> Tensor:
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        return db if top_db is None else torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - top_db)

    return (lambda x: 10.0 ** (x / 10.0)), to_db
