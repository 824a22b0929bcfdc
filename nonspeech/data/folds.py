"""Cross-validation folds: stratified by label, grouped by source clip."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonspeech.data.grouped import grouped_folds


def assign_folds(manifest: pd.DataFrame, n_folds: int, seed: int) -> pd.DataFrame:
    """Return clip_id, group, label and fold for every training clip, with no group spanning two folds."""
    train = manifest[manifest["split"] == "train"].reset_index(drop=True)
    n_groups = train["group"].nunique()
    if n_groups < n_folds:
        raise ValueError(f"cv.folds={n_folds} needs at least that many source groups; the training split has {n_groups}")
    fold = np.full(len(train), -1, dtype=int)
    for k, held_out in enumerate(grouped_folds(train, n_folds, seed, f"cv.folds={n_folds} cross-validation folds")):
        fold[held_out] = k
    return train[["clip_id", "group", "label"]].assign(fold=fold)


def fold_counts(folds: pd.DataFrame) -> pd.DataFrame:
    """Clips per (label, fold), for the stage summary."""
    return folds.pivot_table(index="label", columns="fold", values="clip_id", aggfunc="count", fill_value=0)
