"""List Nonspeech7k (zenodo 6967442) as distributed, smoothing over the quirks of its metadata."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from nonspeech.data.sources.folder import clip_path, read_csv

CLASSES = frozenset({"breath", "cough", "crying", "laugh", "screaming", "sneeze", "yawn"})
CLASS_FIXES = {"yawm": "yawn"}
METADATA = {"train": "metadata of train set .csv", "test": "metadata of test set.csv"}
COLUMNS = {  # squashed header (both CSVs spell them differently) -> canonical name
    "filename": "filename",
    "fileid": "file_id",
    "classname": "class_name",
    "augmentationtype": "augmentation_type",
    "source": "source",
}


def list_nonspeech7k(root: Path) -> pd.DataFrame:
    """List both official splits; group = "source:file_id", shared by a clip and its augmented copies."""
    if not root.is_dir():
        raise FileNotFoundError(f"Nonspeech7k root {root} is not a directory")
    files_by_dir = {Path(folder): names for folder, _, names in os.walk(root)}
    return pd.concat(
        [list_split(find_metadata(files_by_dir, name, root), split, files_by_dir) for split, name in METADATA.items()],
        ignore_index=True,
    )


def squash(text: str) -> str:
    """Lower-case and drop everything but letters and digits, so header and file-name variants compare equal."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def find_metadata(files_by_dir: dict[Path, list[str]], name: str, root: Path) -> Path:
    """Find a metadata CSV anywhere under root, matching its name up to case and spacing."""
    hits = sorted(
        folder / file for folder, files in files_by_dir.items() for file in files if squash(file) == squash(name)
    )
    if not hits:
        raise FileNotFoundError(f"Nonspeech7k metadata {name!r} not found under {root}")
    return hits[0]


def read_metadata(csv_path: Path) -> pd.DataFrame:
    """Read one metadata CSV with canonical column names and class names; unknown classes are a ValueError."""
    table = read_csv(csv_path)
    table.columns = [COLUMNS.get(squash(column), column) for column in table.columns]
    missing = sorted(set(COLUMNS.values()) - set(table.columns))
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}; found {list(table.columns)}")
    labels = table["class_name"].str.lower().replace(CLASS_FIXES)
    unknown = sorted(set(table.loc[~labels.isin(CLASSES), "class_name"]))
    if unknown:
        raise ValueError(f"{csv_path}: unknown class name(s) {unknown}; expected one of {sorted(CLASSES)}")
    return table.assign(class_name=labels)


def audio_dir(files_by_dir: dict[Path, list[str]], names: set[str], csv_path: Path) -> Path:
    """The directory holding most of the listed files, however deep the archive nests it."""
    hits = {folder: len(names.intersection(file.strip() for file in files)) for folder, files in files_by_dir.items()}
    best = max(sorted(hits), key=hits.__getitem__)
    if hits[best] == 0:
        raise FileNotFoundError(f"no directory under the Nonspeech7k root holds the files listed in {csv_path}")
    return best


def list_split(csv_path: Path, split: str, files_by_dir: dict[Path, list[str]]) -> pd.DataFrame:
    """List one official split; listed files missing on disk are kept (ingest reports them)."""
    table = read_metadata(csv_path)
    folder = audio_dir(files_by_dir, set(table["filename"]), csv_path)
    on_disk = {file.strip(): file for file in files_by_dir[folder]}
    return pd.DataFrame(
        {
            "path": [clip_path(folder, on_disk.get(name, name)) for name in table["filename"]],
            "label": table["class_name"],
            "group": table["source"] + ":" + table["file_id"],
            "split": split,
        }
    )
