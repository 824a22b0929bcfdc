"""How the network's outputs become class probabilities and a loss: `softmax` over every class (the background
class NEGATIVE one of them), or `sigmoid`, one independent output per target class.

Probabilities always have one column per class, in the order of the classes. With `sigmoid` the column of
NEGATIVE is 1 - the highest target probability, so the most probable class is NEGATIVE exactly when no target
class reaches 0.5 (ties aside): the argmax means "called a class" for both outputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

OUTPUTS = ("softmax", "sigmoid")


def check_output(output: str) -> None:
    """ValueError unless `output` is one of OUTPUTS."""
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; valid: {', '.join(OUTPUTS)}")


def network_outputs(n_classes: int, output: str, negative: int | None) -> int:
    """Outputs of the network: one per class for softmax, one per target class for sigmoid."""
    check_output(output)
    return n_classes - 1 if output == "sigmoid" and negative is not None else n_classes


def class_probabilities(logits: Tensor, output: str, negative: int | None) -> Tensor:
    """Probabilities (B, classes) from the network's outputs (B, network_outputs)."""
    if output == "softmax":
        return logits.softmax(-1)
    targets = logits.sigmoid()
    if negative is None:
        return targets
    other = 1.0 - targets.max(-1, keepdim=True).values
    return torch.cat([targets[:, :negative], other, targets[:, negative:]], -1)


def class_boundaries(logits: Tensor, negative: int | None) -> Tensor:
    """A boundary stack's logits (B, 2, target classes, columns) as (B, columns, classes, 2): the probability that an
    event of each class begins (or ends) in the column and where (the fraction of the column before it), 0 for the
    class at index `negative`."""
    where = torch.sigmoid(logits).permute(0, 3, 2, 1)
    if negative is None:
        return where
    return torch.cat([where[:, :, :negative], torch.zeros_like(where[:, :, :1]), where[:, :, negative:]], dim=2)


def prior_logits(weights: Tensor, counts: np.ndarray, negative: int | None) -> Tensor:
    """Per target class, the logit of its share of the class-weighted training clips: the bias sigmoid outputs
    start from, so that they begin at their prior rather than 0.5 (a linear head would need thousands of steps to
    get there)."""
    mass = weights.cpu() * torch.as_tensor(counts, dtype=torch.float32)
    share = mass / mass.sum()
    return torch.logit(share if negative is None else torch.cat([share[:negative], share[negative + 1:]]))


def clip_losses(logits: Tensor, labels: Tensor, output: str, negative: int | None) -> Tensor:
    """Per-clip loss (B,): cross-entropy, or binary cross-entropy summed over the target outputs (a clip of
    NEGATIVE has every target 0)."""
    if output == "softmax":
        return F.cross_entropy(logits, labels, reduction="none")
    targets = F.one_hot(labels, logits.shape[-1] + (negative is not None)).to(logits.dtype)
    if negative is not None:
        targets = torch.cat([targets[:, :negative], targets[:, negative + 1:]], -1)
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)


class Probabilities(nn.Module):
    """class_probabilities as a module, for exported models."""

    def __init__(self, output: str, negative: int | None) -> None:
        super().__init__()
        check_output(output)
        self.output, self.negative = output, negative

    def forward(self, logits: Tensor) -> Tensor:
        return class_probabilities(logits, self.output, self.negative)


class WeightedBinaryLoss(nn.Module):
    """The sigmoid clip_losses' mean weighted by each clip's class weight, as nn.CrossEntropyLoss weights."""

    def __init__(self, weights: Tensor, negative: int | None) -> None:
        super().__init__()
        self.register_buffer("weights", weights)
        self.negative = negative

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        w = self.weights[labels]
        return (clip_losses(logits.float(), labels, "sigmoid", self.negative) * w).sum() / w.sum()


def weighted_loss(weights: Tensor, output: str, negative: int | None) -> nn.Module:
    """The training loss of `output` with per-class weights."""
    check_output(output)
    return nn.CrossEntropyLoss(weight=weights) if output == "softmax" else WeightedBinaryLoss(weights, negative)
