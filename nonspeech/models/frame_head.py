"""The detector's head: per-column class logits from the frozen body's column embeddings, by 1-D convolutions over
time (a bounded context, so a column scores the same in a scene or in a stream), a clip's logits and, optionally,
where in each column events begin and end."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def conv_stack(n_classes: int, dims: int, hidden: int, layers: int, kernel: int, dropout: float) -> nn.Sequential:
    """Dropout of whole input channels (one embedding dimension of an item), `layers` convolutions of `kernel`
    columns and `hidden` channels with ReLU and dropout, then a 1x1 convolution to n_classes logits per column."""
    blocks: list[nn.Module] = [nn.Dropout1d(dropout)]
    width = dims
    for _ in range(layers):
        blocks += [nn.Conv1d(width, hidden, kernel, padding=kernel // 2), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*blocks, nn.Conv1d(width, n_classes, 1))


class FrameHead(nn.Module):
    """Column embeddings (B, dims, columns) to per-column logits (B, classes, columns) by `frame_logits`: the mean of
    `members` convolution stacks, each from its own initialisation and trained on its own loss (an ensemble). The
    module's output is a clip's logits (B, classes): each class's highest column of those or, with `clip_context`, of
    a stack of its own that reads each column beside the mean of the `clip_context` columns on either side of it. Each
    of the `boundaries` (kinds: onset, offset) has a stack giving per column and class whether an event begins (or
    ends) in it and where (`boundary_logits`)."""

    def __init__(
        self, n_classes: int, dims: int, hidden: int, layers: int, kernel: int, dropout: float, members: int,
        clip_context: int, boundaries: list[str],
    ) -> None:
        super().__init__()
        self.head = nn.ModuleList([conv_stack(n_classes, dims, hidden, layers, kernel, dropout) for _ in range(members)])
        self.clip_context = clip_context
        self.clip_head = conv_stack(n_classes, 2 * dims, hidden, layers, kernel, dropout) if clip_context else None
        self.boundary_heads = nn.ModuleDict({kind: conv_stack(2 * n_classes, dims, hidden, layers, kernel, dropout)
                                             for kind in boundaries})

    def with_context(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2 dims, columns): each column, then the mean of the columns within clip_context of it."""
        mean = F.avg_pool1d(x, 2 * self.clip_context + 1, stride=1, padding=self.clip_context, count_include_pad=False)
        return torch.cat([x, mean], dim=1)

    def clip_columns(self, x: torch.Tensor) -> torch.Tensor:
        """The clip stack's per-column logits (B, classes, columns)."""
        return self.clip_head(self.with_context(x))

    def stack_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every stack's per-column logits (stacks, B, classes, columns), each trained on its own loss: the members,
        then the clip stack."""
        clip = [] if self.clip_head is None else [self.clip_columns(x)]
        return torch.stack([member(x) for member in self.head] + clip)

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-column logits (B, classes, columns), the members' mean."""
        return torch.stack([member(x) for member in self.head]).mean(dim=0)

    def boundary_logits(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """(B, 2, classes, columns): per column and class, the logit that an event of the class has its boundary
        `kind` (onset, offset) in it, and the logit of where (a sigmoid of it: the fraction of the column before it)."""
        return self.boundary_heads[kind](x).unflatten(1, (2, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = self.frame_logits(x) if self.clip_head is None else self.clip_columns(x)
        return columns.amax(dim=-1)


def frame_head(
    n_classes: int, dims: int = 384, hidden: int = 128, layers: int = 2, kernel: int = 3, dropout: float = 0.2,
    members: int = 1, clip_context: int = 0, boundaries: Sequence[str] = (),
) -> FrameHead:
    """A detector head of `layers` convolutions of `kernel` columns and `hidden` channels (0 layers: linear), the mean
    of `members` of them; with `clip_context`, a clip stack beside them (a clip's logits; 0: the members'); a
    boundary stack for each of `boundaries` (the kinds of boundary its training targets hold: onset, offset)."""
    return FrameHead(n_classes, dims, hidden, layers, kernel, dropout, members, clip_context, list(boundaries))
