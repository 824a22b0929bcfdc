"""List a data source as one table of clips (path, label, group, split) plus the rows it dropped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from nonspeech.grouped import grouped_folds
from nonspeech.sources.folder import list_folder
from nonspeech.sources.nonspeech7k import list_nonspeech7k

CLIP_COLUMNS = ["path", "label", "group", "split"]
EXCLUDED_COLUMNS = ["path", "reason"]
LEAK_REASON = "group also in test split (leak)"

LOADERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "demo": list_folder,  # the demo stage writes labels.csv, read by the folder CSV loader
    "folder": list_folder,
    "nonspeech7k": list_nonspeech7k,
}


def list_clips(
    source: str, root: Path, test_fraction: float, split_seed: int, classes: list[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load `source` from `root` (only `classes`, when given), carve a test split if it has none and drop
    leaking train rows. Returns (clips, excluded); clips are sorted by split, then path."""
    if source not in LOADERS:
        raise ValueError(f"unknown data source {source!r}; valid sources: {', '.join(sorted(LOADERS))}")
    clips = LOADERS[source](Path(root))
    if classes:
        check_classes(clips, classes, Path(root))
    if not (clips["split"] == "test").any():
        clips = carve_test_split(clips, test_fraction, split_seed)
    clips, excluded = drop_leaks(clips)
    clips = clips[CLIP_COLUMNS].astype(str).sort_values(["split", "path"], kind="stable")
    return clips.reset_index(drop=True), excluded


def carve_test_split(clips: pd.DataFrame, test_fraction: float, seed: int) -> pd.DataFrame:
    """Mark one fold of a seeded StratifiedGroupKFold (about `test_fraction` of groups per label) as test."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    n_splits = max(2, round(1 / test_fraction))
    ordered = clips.sort_values(["path", "group", "label"], kind="stable").reset_index(drop=True)
    n_groups = ordered["group"].nunique()
    if n_groups < n_splits:
        raise ValueError(f"carving test fraction {test_fraction} needs at least {n_splits} groups, found {n_groups}")
    purpose = f"holding out data.test_fraction={test_fraction} of each class"
    test_rows = grouped_folds(ordered, n_splits, seed, purpose)[0]
    split = np.full(len(ordered), "train", dtype=object)
    split[test_rows] = "test"
    return ordered.assign(split=split)


def check_classes(clips: pd.DataFrame, classes: list[str], root: Path) -> None:
    """ValueError naming any label outside `classes` (with an example file) and any listed class with no files."""
    labels = clips["label"].astype(str)
    unexpected = sorted(set(labels) - set(classes))
    if unexpected:
        examples = "; ".join(f"{label}: {clips.loc[labels == label, 'path'].iloc[0]}" for label in unexpected)
        raise ValueError(
            f"{root}: class(es) {unexpected} are not in data.classes {list(classes)} (e.g. {examples}); "
            "remove those files or add the classes to data.classes"
        )
    absent = [label for label in classes if label not in set(labels)]
    if absent:
        raise ValueError(f"{root}: data.classes lists {absent}, which have no files")


def drop_leaks(clips: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove train rows whose group also occurs in the test split; return (kept, excluded)."""
    test_groups = set(clips.loc[clips["split"] == "test", "group"])
    leak = (clips["split"] == "train") & clips["group"].isin(test_groups)
    leaked = clips.loc[leak, "path"].astype(str)
    excluded = pd.DataFrame({"path": leaked, "reason": LEAK_REASON}, columns=EXCLUDED_COLUMNS)
    return clips[~leak], excluded.sort_values("path").reset_index(drop=True)


def class_names(clips: pd.DataFrame) -> list[str]:
    """Sorted unique labels: the class order used everywhere downstream."""
    return sorted(str(label) for label in clips["label"].unique())
