"""The residual CNN trained from scratch on log-mels (B, n_mels, frames): the original notebook's model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    """Same-padded convolution (no bias, BatchNorm supplies it) followed by BatchNorm."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut (1x1 conv+BN when channels change), then ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, c_out, 3), nn.ReLU(inplace=True), conv_bn(c_out, c_out, 3))
        self.shortcut = conv_bn(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class SpectrogramResNet(nn.Module):
    """Stem, three residual blocks, global average pool and an MLP head; adds the channel dim itself."""

    def __init__(self, n_classes: int, widths: Sequence[int], hidden: int, dropout: float) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"resnet needs 4 widths (stem + 3 blocks), got {list(widths)}")
        w0, w1, w2, w3 = widths
        self.features = nn.Sequential(
            conv_bn(1, w0, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            ResidualBlock(w0, w1), nn.MaxPool2d(2),
            ResidualBlock(w1, w2), nn.MaxPool2d(2),
            ResidualBlock(w2, w3),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(w3, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, n_classes),
        )

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output (B, channels, frequency, time), before the global average pool."""
        return self.features[:-2](x.unsqueeze(1))

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits from the feature map averaged over frequency and time (B, channels)."""
        return self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)))


def resnet(
    n_classes: int, widths: Sequence[int] = (32, 64, 128, 256), hidden: int = 512, dropout: float = 0.5,
) -> nn.Module:
    """The default recipe; see SpectrogramResNet."""
    return SpectrogramResNet(n_classes, widths, hidden, dropout)
