"""Evaluation kept on the device as sums (loss, confusion matrix), so per-rank sums add up to exact metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nonspeech.devices.select import autocast_context
from nonspeech.evaluation.metrics import metrics_from_confusion
from nonspeech.models.outputs import class_probabilities, clip_losses

Batch = tuple[Tensor, Tensor, list[str]]
PaddedBatch = tuple[Tensor, Tensor, Tensor, list[str]]


@dataclass(frozen=True)
class EvalSums:
    """Summed loss (nonspeech.models.outputs.clip_losses) of the real (unpadded) clips and their confusion matrix, both on
    the device."""

    loss: Tensor
    confusion: Tensor


@dataclass(frozen=True)
class Predictions:
    """Per-clip outputs of an evaluation, on the host."""

    clip_ids: list[str]
    labels: np.ndarray
    probabilities: np.ndarray  # (clips, classes), nonspeech.models.outputs.class_probabilities


def padded(batches: Iterable[Batch], batch_size: int) -> Iterator[PaddedBatch]:
    """Every batch padded to batch_size, with a mask of its real clips: one shape, so XLA compiles once."""
    for x, y, ids in batches:
        missing = batch_size - len(y)
        valid = torch.arange(batch_size) < len(y)
        if missing:
            x = torch.cat([x, x.new_zeros((missing, *x.shape[1:]))])
            y = torch.cat([y, y.new_zeros(missing)])
        yield x, y, valid, ids


def predicted_classes(probabilities: Tensor, labels: Tensor, negative: int | None) -> Tensor:
    """The most probable class; for clips of a target class, the most probable target class (the negative class
    `negative` left out), so the confusion matrix scores their classification apart from rejection."""
    if negative is None:
        return probabilities.argmax(1)
    targets_only = probabilities.index_fill(1, torch.tensor([negative], device=probabilities.device), -1.0).argmax(1)
    return torch.where(labels == negative, probabilities.argmax(1), targets_only)


def evaluate(
    forward: Callable[[Tensor], Tensor], batches: Iterable[PaddedBatch], n_classes: int,
    device: torch.device, bf16: bool, keep_predictions: bool = False, negative: int | None = None,
    output: str = "softmax",
) -> tuple[EvalSums, Predictions | None]:
    """Loss and confusion sums of `forward` (features to network outputs, read as `output`) over padded batches
    already on `device`; see predicted_classes for the clips of a negative class."""
    loss = torch.zeros((), device=device)
    confusion = torch.zeros(n_classes * n_classes, dtype=torch.int64, device=device)
    ids, labels, probabilities, masks = [], [], [], []
    with torch.no_grad():
        for x, y, valid, clip_ids in batches:
            with autocast_context(device, bf16):
                logits = forward(x).float()
            probs = class_probabilities(logits, output, negative)
            loss += (clip_losses(logits, y, output, negative) * valid).sum()
            confusion.index_add_(0, y * n_classes + predicted_classes(probs, y, negative), valid.long())
            if keep_predictions:
                ids += clip_ids
                labels.append(y)
                probabilities.append(probs)
                masks.append(valid)
    sums = EvalSums(loss, confusion.view(n_classes, n_classes))
    if not keep_predictions:
        return sums, None
    real = torch.cat(masks).cpu().numpy()
    return sums, Predictions(
        ids, torch.cat(labels).cpu().numpy()[real], torch.cat(probabilities).cpu().numpy()[real],
    )


def summarize(sums: EvalSums, classes: list[str]) -> dict:
    """Mean loss, accuracy, macro-F1, per-class scores and the confusion matrix, read from the device once."""
    confusion = sums.confusion.cpu().numpy()
    count = int(confusion.sum())
    if count == 0:
        raise ValueError("nothing was evaluated: the split yielded no clips")
    return {"loss": float(sums.loss.item()) / count, **metrics_from_confusion(confusion, classes)}
