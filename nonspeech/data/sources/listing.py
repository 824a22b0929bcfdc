"""List a data source as one table of clips (path, label, group, split) plus the rows it dropped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from nonspeech.data.files import is_audio
from nonspeech.data.grouped import grouped_folds
from nonspeech.data.sources.folder import LABELS_CSV, list_folder
from nonspeech.data.sources.nonspeech7k import list_nonspeech7k
from nonspeech.labels import NEGATIVE

LOADER_COLUMNS = ["path", "label", "group", "split"]  # what a loader lists (split blank where it has none)
CLIP_COLUMNS = [*LOADER_COLUMNS, "source"]
NEGATIVES_SOURCE = "negatives"  # the source name of data.negatives' clips
EXCLUDED_COLUMNS = ["path", "reason"]
LEAK_REASON = "group also in test split (leak)"

LOADERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "demo": list_folder,  # the demo stage writes labels.csv, read by the folder CSV loader
    "folder": list_folder,
    "nonspeech7k": list_nonspeech7k,
}


def list_clips(
    source: str, root: Path, test_fraction: float, split_seed: int, classes: list[str] | None = None,
    negatives: Path | None = None, extra: dict[str, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load `source` from `root` (only `classes`, when given), the non-target clips of the folder source
    `negatives` (labelled NEGATIVE) and the already listed `extra` sources (nonspeech/data/sources/extra.py), carve a
    test split where one has none and drop leaking train rows. Returns (clips, excluded); clips carry their source's
    name (`source`, NEGATIVES_SOURCE or the extra source's) and are sorted by split, then path."""
    if source not in LOADERS:
        raise ValueError(f"unknown data source {source!r}; valid sources: {', '.join(sorted(LOADERS))}")
    clips = LOADERS[source](Path(root))
    if classes:
        check_classes(clips, classes, Path(root))
    clips = with_test_split(clips, test_fraction, split_seed).assign(source=source)
    targets = list(classes or class_names(clips))
    parts = [clips]
    if negatives is not None:
        parts.append(list_negatives(Path(negatives), targets, test_fraction, split_seed).assign(source=NEGATIVES_SOURCE))
    for name, listed in (extra or {}).items():
        check_extra_source(name, listed, targets, reserved=(source, NEGATIVES_SOURCE))
        parts.append(listed.assign(source=name))
    clips = pd.concat(parts, ignore_index=True)
    check_duplicates(clips)
    clips, excluded = drop_leaks(clips)
    clips = clips[CLIP_COLUMNS].astype(str).sort_values(["split", "path"], kind="stable")
    return clips.reset_index(drop=True), excluded


def with_test_split(clips: pd.DataFrame, test_fraction: float, seed: int) -> pd.DataFrame:
    """The clips as listed when some are marked test, else with a test split carved out."""
    return clips if (clips["split"] == "test").any() else carve_test_split(clips, test_fraction, seed)


def list_negatives(root: Path, targets: list[str], test_fraction: float, seed: int) -> pd.DataFrame:
    """Non-target clips from a folder source, relabelled NEGATIVE, their groups kept apart from the targets';
    none (with a warning) when the folder holds neither audio nor a labels.csv; ValueError when its classes
    collide with targets."""
    if not root.is_dir():
        raise FileNotFoundError(f"data.negatives {root} is not a folder")
    if not (root / LABELS_CSV).is_file() and not any(is_audio(p) for p in root.rglob("*")):
        print(f"warning: data.negatives {root} holds no audio files: training without negatives")
        return pd.DataFrame(columns=CLIP_COLUMNS)
    if NEGATIVE in targets:
        raise ValueError(f"the data source has a class named {NEGATIVE!r}, the label reserved for data.negatives")
    clips = list_folder(root)
    clash = sorted(set(clips["label"]) & set(targets))
    if clash:
        raise ValueError(f"data.negatives {root}: class(es) {clash} are target classes; negatives must be other sounds")
    clips = with_test_split(clips, test_fraction, seed)
    return clips.assign(label=NEGATIVE, group="negative:" + clips["group"].astype(str))


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


def check_extra_source(name: str, clips: pd.DataFrame, targets: list[str], reserved: tuple[str, ...]) -> None:
    """ValueError naming data.sources entry `name` when its name is taken or a label of its clips (after its class
    map) is neither a target class nor NEGATIVE."""
    if name in reserved:
        raise ValueError(f"data.sources.{name}: the name {name!r} is taken by {'the main source' if name == reserved[0] else 'data.negatives'}; rename the entry")
    strays = sorted(set(clips["label"]) - set(targets) - {NEGATIVE})
    if strays:
        raise ValueError(f"data.sources.{name}: class(es) {strays} are not target classes {targets}; map them to one "
                         f"(or to {NEGATIVE!r}) in its class_map, or list them in data.classes")


def check_duplicates(clips: pd.DataFrame) -> None:
    """ValueError when one file is listed by two sources, naming both, the count and an example."""
    resolved = clips.assign(file=[str(Path(p).resolve()) for p in clips["path"]])
    sources_of = resolved.groupby("file")["source"].unique()
    shared = sources_of[sources_of.map(len) > 1]
    if len(shared):
        first, second = shared.iloc[0][:2]
        both = shared[shared.map(lambda names: first in names and second in names)]
        raise ValueError(f"sources {first} and {second} both list {len(both)} file(s), e.g. {both.index[0]}; "
                         "list each file in one source only")


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
