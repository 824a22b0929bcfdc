"""Exact per-fold normalisation statistics from streamed float64 moments."""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
import zarr


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations per mel bin (Chan et al.'s mergeable form)."""

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @staticmethod
    def of(block: np.ndarray) -> "Moments":
        """Moments of a (clips, n_mels, frames) block, per mel bin."""
        values = block.astype(np.float64).transpose(1, 0, 2).reshape(block.shape[1], -1)
        mean = values.mean(axis=1)
        return Moments(values.shape[1], mean, ((values - mean[:, None]) ** 2).sum(axis=1))

    def merge(self, other: "Moments") -> "Moments":
        """Moments of the union of two disjoint sets."""
        if self.count == 0:
            return other
        if other.count == 0:
            return self
        total = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / total
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / total
        return Moments(total, mean, m2)

    def summary(self) -> dict[str, object]:
        """Per-bin and global mean/std (population std), JSON-ready."""
        if self.count == 0:
            raise ValueError("no training clips to compute statistics from")
        var = self.m2 / self.count
        mean = float(self.mean.mean())
        global_var = float((var + (self.mean - mean) ** 2).mean())
        return {
            "count_frames": self.count, "mean": mean, "std": float(np.sqrt(global_var)),
            "mean_per_bin": [round(float(v), 6) for v in self.mean],
            "std_per_bin": [round(float(v), 6) for v in np.sqrt(var)],
        }


def fold_statistics(features: zarr.Array, fold_of_row: np.ndarray, folds: list[int]) -> dict[str, dict]:
    """Stats of each fold's training set (all other folds) and of the full training set; rows with fold -1 are ignored."""
    zero = Moments(0, np.zeros(features.shape[1]), np.zeros(features.shape[1]))
    per_fold = {k: zero for k in folds}
    step = features.chunks[0]
    for lo in range(0, features.shape[0], step):
        block = features[lo:lo + step]
        block_folds = fold_of_row[lo:lo + step]
        for k in folds:
            rows = block[block_folds == k]
            if len(rows):
                per_fold[k] = per_fold[k].merge(Moments.of(rows))
    def union(parts) -> Moments:
        return reduce(Moments.merge, parts, zero)

    out = {f"fold{k}": union(per_fold[o] for o in folds if o != k).summary() for k in folds}
    out["full"] = union(per_fold.values()).summary()
    return out
