"""Clip embeddings: the frozen AudioSet body that makes them, and the small head trained on them."""

from __future__ import annotations

import torch
from torch import nn

from nonspeech.models.efficientat import AUDIOSET_CLASSES, MobileNetAT

FREQUENCY = ("mean", "bins")


class AudioSetEmbedder(nn.Module):
    """Log-mels (B, 128, frames) to clip embeddings (B, dims, 1): the pooled body output and, with `tags`, the
    527 AudioSet probabilities after it; with `frames`, the body's columns (B, dims, columns), its map averaged over
    frequency or, with `frequency` "bins", each frequency bin's channels kept (with `tags`, each column's AudioSet
    probabilities after them). Always in eval mode: it is never trained."""

    def __init__(self, network: MobileNetAT, tags: bool, frames: bool = False, frequency: str = "mean") -> None:
        super().__init__()
        if frequency not in FREQUENCY:
            raise ValueError(f"frequency {frequency!r}: must be one of {', '.join(FREQUENCY)}")
        self.network, self.tags, self.frames, self.frequency = network.eval(), tags, frames, frequency
        with torch.no_grad():
            bins = network.feature_map(torch.zeros(1, 128, 64)).shape[2] if frequency == "bins" else 1
        self.dims = network.dims * bins + (AUDIOSET_CLASSES if tags else 0)

    def train(self, mode: bool = True) -> AudioSetEmbedder:
        return super().train(False)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The body's output (B, dims, frequency, time)."""
        return self.network.feature_map(x)

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Clip embeddings (B, dims, 1) from the feature map averaged over frequency and time (B, body dims)."""
        if self.tags:
            pooled = torch.cat([pooled, torch.sigmoid(self.network.from_pooled(pooled))], dim=1)
        return pooled.unsqueeze(-1)

    def from_maps(self, maps: torch.Tensor) -> torch.Tensor:
        """Frame embeddings (B, dims, columns) from the feature map (B, body dims, frequency, columns)."""
        columns = maps.flatten(1, 2) if self.frequency == "bins" else maps.mean(dim=2)
        if not self.tags:
            return columns
        tags = torch.sigmoid(self.network.from_pooled(maps.mean(dim=2).transpose(1, 2))).transpose(1, 2)
        return torch.cat([columns, tags], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frames:
            return self.from_maps(self.network.feature_map(x))
        return self.from_pooled(self.network.embed(x))


def pick_view(x: torch.Tensor, training: bool) -> torch.Tensor:
    """(B, dims, 1) from embeddings (B, dims, views): a random view per clip in training, else view 0 (the clip as
    recorded)."""
    if x.shape[-1] == 1 or not training:
        return x[..., :1]
    index = torch.randint(0, x.shape[-1], (len(x),), device=x.device)
    return x[torch.arange(len(x), device=x.device), :, index].unsqueeze(-1)


class EmbeddingHead(nn.Module):
    """Embeddings (B, dims, views) to logits: a linear layer (hidden 0) or an MLP with one hidden layer, on one view
    per clip (see pick_view)."""

    def __init__(self, n_classes: int, dims: int, hidden: int, dropout: float) -> None:
        super().__init__()
        layers = [nn.Linear(dims, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)] if hidden else []
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), *layers, nn.Linear(hidden or dims, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(pick_view(x, self.training))


def embedding_head(n_classes: int, dims: int = 384, hidden: int = 0, dropout: float = 0.0) -> EmbeddingHead:
    """A linear (hidden 0) or one-hidden-layer classifier on clip embeddings of `dims` dimensions."""
    return EmbeddingHead(n_classes, dims, hidden, dropout)
