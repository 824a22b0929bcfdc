"""Normalisation of features with training statistics."""

from __future__ import annotations

import torch
from torch import nn

NORMALIZATIONS = ("global", "per_bin", "none")


def norm_values(stats: dict, mode: str) -> dict[str, float | list[float]]:
    """Pick mean/std from one entry of stats.json (e.g. stats['fold0']) for a normalisation mode; `none` is the
    identity, for front ends with their own fixed scaling (the pretrained networks')."""
    if mode == "global":
        return {"mode": mode, "mean": stats["mean"], "std": stats["std"]}
    if mode == "per_bin":
        return {"mode": mode, "mean": stats["mean_per_bin"], "std": stats["std_per_bin"]}
    if mode == "none":
        return {"mode": mode, "mean": 0.0, "std": 1.0}
    raise ValueError(f"unknown normalization {mode!r}; valid: {', '.join(NORMALIZATIONS)}")


class Normalize(nn.Module):
    """(x - mean) / std on (..., bins, frames), with scalar or per-bin statistics."""

    def __init__(self, mean: float | list[float], std: float | list[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1).clamp_min(1e-6)
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std
