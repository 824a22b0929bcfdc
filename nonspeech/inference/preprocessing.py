"""A checkpoint's whole preprocessing as one module: waveforms (B, samples) to the normalised network input."""

from __future__ import annotations

from torch import nn

from nonspeech.features.frontends import build_frontend
from nonspeech.features.normalize import Normalize
from nonspeech.models.efficientat import AUDIOSET_CLASSES, MobileNetAT
from nonspeech.models.embedding import AudioSetEmbedder


def preprocessing(checkpoint: dict, conv_stft: bool = False) -> nn.Sequential:
    """Front end, the frozen embedding body for embedding-trained models, and the normalisation, in eval mode."""
    features, normalization = checkpoint["features"], checkpoint["normalization"]
    stages = [build_frontend(features, conv_stft)]
    if "embedding" in features:
        network = MobileNetAT(AUDIOSET_CLASSES, features["embedding"]["width"])
        network.load_state_dict(checkpoint["embedder_state"])
        stages.append(AudioSetEmbedder(network, features["embedding"]["tags"]))
    stages.append(Normalize(normalization["mean"], normalization["std"]))
    return nn.Sequential(*stages).eval()
