"""Training the detector's head on scene frame embeddings held in memory (a few MB): frame-level binary
cross-entropy against each column's covered share (and, for each boundary stack, against the columns events begin or
end in, with the L1 distance to where), seeded, a fixed number of epochs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nonspeech.devices.select import resolve_device
from nonspeech.models.outputs import class_boundaries, class_probabilities
from nonspeech.models.registry import build_model

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class HeadTraining:
    """The `train` params of a detector."""

    device: str
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    seed: int
    positive_weight: float  # extra weight of covered columns in the loss (their share of columns is small)
    weak_weight: float  # weight of the clip-level loss on the isolated clips (each class's highest column), 0: none
    boundary_weight: float  # extra weight of the columns an event begins (ends) in, in a boundary stack's loss
    schedule: str  # the learning rate: "constant", or "cosine" (falling along a half cosine to 0 by the last step)

    @classmethod
    def from_dict(cls, d: dict) -> HeadTraining:
        """Build from the params section; unknown or missing keys are a ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        if set(d) != names:
            raise ValueError(f"detector train params: unknown keys {sorted(set(d) - names)}, missing {sorted(names - set(d))}")
        if d["batch_size"] < 1 or d["epochs"] < 1:
            raise ValueError(f"detector train.batch_size and train.epochs must be >= 1, got {d['batch_size']}, {d['epochs']}")
        if d["schedule"] not in SCHEDULES:
            raise ValueError(f"detector train.schedule {d['schedule']!r}: one of {', '.join(SCHEDULES)}")
        return cls(**d)


def column_statistics(embeddings: np.ndarray) -> dict[str, list[float]]:
    """Per-dimension mean and standard deviation over every column of (scenes, dims, columns) embeddings."""
    flat = embeddings.astype(np.float64).transpose(1, 0, 2).reshape(embeddings.shape[1], -1)
    return {"mean": flat.mean(axis=1).tolist(), "std": flat.std(axis=1).tolist()}


def boundary_loss(logits: torch.Tensor, where: torch.Tensor, weight: float) -> torch.Tensor:
    """A boundary stack's loss: binary cross-entropy of `logits` (B, 2, classes, columns) [0] against whether an
    event's boundary lies in the column (where (B, classes, columns): the fraction of the column before it, NaN where
    none), those columns weighing `weight` times more, plus the L1 distance of sigmoid([1]) to where, over them."""
    holds = ~torch.isnan(where)
    target = holds.float()
    loss = F.binary_cross_entropy_with_logits(logits[:, 0], target, weight=1.0 + (weight - 1.0) * target)
    if holds.any():
        loss = loss + F.l1_loss(torch.sigmoid(logits[:, 1][holds]), where[holds])
    return loss


def fit_head(
    model_args: dict, n_classes: int, embeddings: np.ndarray, targets: np.ndarray, boundaries: dict[str, np.ndarray],
    cfg: HeadTraining, clips: tuple[np.ndarray, np.ndarray],
) -> nn.Module:
    """A frame_head trained on normalised embeddings (scenes, dims, columns) against targets (scenes, classes,
    columns) and, for each boundary stack, boundaries[kind] (the same shape: where in each column an event begins or
    ends, NaN where none; a kind missing is a ValueError), plus, with cfg.weak_weight, each class's highest column of
    isolated clips (normalised embeddings, clip targets) against the clip's labels, a batch of clips per step;
    returned on the CPU in eval mode."""
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = build_model("frame_head", n_classes, **model_args).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(embeddings) // cfg.batch_size)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cfg.schedule == "cosine" else None
    x = torch.from_numpy(embeddings.astype(np.float32)).to(device)
    y = torch.from_numpy(targets.astype(np.float32)).to(device)
    missing = sorted(set(model.boundary_heads) - set(boundaries))
    if missing:
        raise ValueError(f"model.boundaries {missing}: the scene frames hold no such targets (only {sorted(boundaries)})")
    where = {kind: torch.from_numpy(boundaries[kind].astype(np.float32)).to(device) for kind in model.boundary_heads}
    clip_x, clip_y = (torch.from_numpy(a.astype(np.float32)).to(device) for a in clips)
    generator = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _ in range(cfg.epochs):
        for batch in torch.randperm(len(x), generator=generator).split(cfg.batch_size):
            batch = batch.to(device)
            inputs = x[batch]
            logits = model.stack_logits(inputs)  # each stack on its own loss
            target = y[batch].expand_as(logits)
            weight = 1.0 + (cfg.positive_weight - 1.0) * target
            loss = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
            for kind in model.boundary_heads:
                loss = loss + boundary_loss(model.boundary_logits(inputs, kind), where[kind][batch], cfg.boundary_weight)
            if cfg.weak_weight and len(clip_x):
                pick = torch.randint(0, len(clip_x), (cfg.batch_size,), generator=generator).to(device)
                clip_logits = model.stack_logits(clip_x[pick]).amax(dim=-1)
                loss = loss + cfg.weak_weight * F.binary_cross_entropy_with_logits(
                    clip_logits, clip_y[pick].expand_as(clip_logits))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if decay:
                decay.step()
    return model.cpu().eval()


def column_probabilities(model: nn.Module, embeddings: np.ndarray, negative: int | None) -> np.ndarray:
    """Per-column class probabilities (scenes, columns, classes) of normalised embeddings, as `predict` computes them
    (models.outputs.class_probabilities: sigmoids, the class at index `negative` 1 - the highest)."""
    with torch.inference_mode():
        logits = model.frame_logits(torch.from_numpy(embeddings.astype(np.float32))).transpose(1, 2)
        scenes, columns, outputs = logits.shape
        return class_probabilities(logits.reshape(-1, outputs), "sigmoid", negative).reshape(scenes, columns, -1).numpy()


def column_boundaries(model: nn.Module, embeddings: np.ndarray, negative: int | None) -> dict[str, np.ndarray]:
    """Per boundary stack, per column and class (scenes, columns, classes, 2): the probability that an event of the
    class begins (ends) in the column and where (the fraction of the column before it), 0 for the class at index
    `negative`."""
    x = torch.from_numpy(embeddings.astype(np.float32))
    with torch.inference_mode():
        return {kind: class_boundaries(model.boundary_logits(x, kind), negative).numpy() for kind in model.boundary_heads}


def clip_probabilities(model: nn.Module, embeddings: np.ndarray, negative: int | None) -> np.ndarray:
    """Class probabilities (clips, classes) of isolated clips' normalised column embeddings, as `predict` computes a
    clip's: the model's clip logits, through class_probabilities."""
    with torch.inference_mode():
        return class_probabilities(model(torch.from_numpy(embeddings.astype(np.float32))), "sigmoid", negative).numpy()
