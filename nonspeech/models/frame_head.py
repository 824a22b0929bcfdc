"""The detector's head: per-column class logits from the frozen body's column embeddings, by 1-D convolutions over
time (a bounded context, so a column scores the same in a scene or in a stream)."""

from __future__ import annotations

import torch
from torch import nn


def conv_stack(n_classes: int, dims: int, hidden: int, layers: int, kernel: int, dropout: float) -> nn.Sequential:
    """Dropout, `layers` convolutions of `kernel` columns and `hidden` channels with ReLU and dropout, then a 1x1
    convolution to n_classes logits per column."""
    blocks: list[nn.Module] = [nn.Dropout(dropout)]
    width = dims
    for _ in range(layers):
        blocks += [nn.Conv1d(width, hidden, kernel, padding=kernel // 2), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*blocks, nn.Conv1d(width, n_classes, 1))


class FrameHead(nn.Module):
    """Column embeddings (B, dims, columns) to per-column logits (B, classes, columns) by `frame_logits`: the mean of
    `members` convolution stacks, each from its own initialisation and trained on its own loss (an ensemble); the
    module's output is each class's highest column logit (B, classes), a clip's."""

    def __init__(
        self, n_classes: int, dims: int, hidden: int, layers: int, kernel: int, dropout: float, members: int,
    ) -> None:
        super().__init__()
        self.head = nn.ModuleList([conv_stack(n_classes, dims, hidden, layers, kernel, dropout) for _ in range(members)])

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's per-column logits (members, B, classes, columns): what training fits, each on its own."""
        return torch.stack([member(x) for member in self.head])

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-column logits (B, classes, columns), the members' mean."""
        return self.member_logits(x).mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x).amax(dim=-1)


def frame_head(
    n_classes: int, dims: int = 384, hidden: int = 128, layers: int = 2, kernel: int = 3, dropout: float = 0.2,
    members: int = 1,
) -> FrameHead:
    """A detector head of `layers` convolutions of `kernel` columns and `hidden` channels (0 layers: linear), the mean
    of `members` of them."""
    return FrameHead(n_classes, dims, hidden, layers, kernel, dropout, members)
