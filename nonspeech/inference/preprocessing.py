"""A checkpoint's whole preprocessing as one module: waveforms (B, samples) to the normalised network input."""

from __future__ import annotations

import torch
from torch import nn

from nonspeech.features.frontends import build_frontend
from nonspeech.features.normalize import Normalize
from nonspeech.inference.model import clip_samples
from nonspeech.models.efficientat import AUDIOSET_CLASSES, MobileNetAT, finer_time, localise_gates
from nonspeech.models.embedding import AudioSetEmbedder


def preprocessing(checkpoint: dict, conv_stft: bool = False) -> nn.Sequential:
    """Front end, the frozen embedding body for embedding-trained models (a detector's with its gates local), and
    the normalisation, in eval mode."""
    features, normalization = checkpoint["features"], checkpoint["normalization"]
    stages = [build_frontend(features, conv_stft)]
    if "embedding" in features:
        embedding = features["embedding"]
        network = MobileNetAT(AUDIOSET_CLASSES, embedding["width"])
        network.load_state_dict(checkpoint["embedder_state"])
        if "time_stride" in embedding:
            finer_time(network, embedding["time_stride"])
        embedder = AudioSetEmbedder(network, embedding["tags"], embedding.get("frames", False),
                                    embedding.get("frequency", "mean"))
        if embedder.frames:  # gated over the model's window centred on each column, as its training scenes were
            probe = stages[0](torch.zeros(1, clip_samples(features)))
            with torch.inference_mode():
                localise_gates(embedder, lambda: embedder(probe))
        stages.append(embedder)
    stages.append(Normalize(normalization["mean"], normalization["std"]))
    return nn.Sequential(*stages).eval()
