"""Stratified, grouped splits (scikit-learn's StratifiedGroupKFold) that explain thin classes in one line."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold


def thin_classes(table: pd.DataFrame, n_splits: int) -> dict[str, int]:
    """Classes with fewer distinct groups than n_splits, and their group counts."""
    groups = table.groupby("label")["group"].nunique()
    return {str(label): int(n) for label, n in groups.items() if n < n_splits}


def grouped_folds(table: pd.DataFrame, n_splits: int, seed: int, purpose: str) -> list[np.ndarray]:
    """Held-out row indices of each of n_splits seeded StratifiedGroupKFold splits of table (label, group columns).

    A class with fewer groups than n_splits cannot be in every split: one `warning:` line on stderr names it,
    its group count and `purpose` (what n_splits is for), instead of scikit-learn's generic UserWarning."""
    thin = thin_classes(table, n_splits)
    if thin:
        listed = ", ".join(f"{label} ({n} group{'s' if n != 1 else ''})" for label, n in thin.items())
        print(f"warning: class {listed} {'has' if len(thin) == 1 else 'have'} fewer source groups than the {n_splits} "
              f"needed for {purpose}, so some of the {n_splits} splits get none of {'it' if len(thin) == 1 else 'them'}",
              file=sys.stderr)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class in y", category=UserWarning)
        return [held for _, held in splitter.split(table, table["label"], table["group"])]
