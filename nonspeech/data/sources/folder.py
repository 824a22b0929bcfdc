"""List plain user audio: class folders (optionally under train/ and test/) or a CSV of path,label[,group][,split]."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from nonspeech.data.files import is_audio

LABELS_CSV = "labels.csv"
SPLIT_DIRS = ("train", "test")


def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV as whitespace-stripped strings (UTF-8, else latin-1) without all-blank rows.
    A CSV with no rows left is a ValueError naming it."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="latin-1")
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    table = table.apply(lambda column: column.str.strip())
    table = table[(table != "").any(axis=1)].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{path}: the CSV has no rows")
    table.columns = [str(column).strip() for column in table.columns]
    return table


def clip_path(base: Path, name: str) -> str:
    """Join a listed name onto its base directory (absolute names stay) and normalise it."""
    return os.path.normpath(os.path.join(base, name))


def list_folder(root: Path) -> pd.DataFrame:
    """List clips from a CSV (root itself, or root/labels.csv) or else from class folders under root."""
    if not root.exists():
        raise FileNotFoundError(f"data root {root} does not exist")
    if root.is_file():
        return list_csv(root)
    if (root / LABELS_CSV).is_file():
        return list_csv(root / LABELS_CSV)
    return list_class_dirs(root)


def list_csv(csv_path: Path) -> pd.DataFrame:
    """List the rows of a path,label[,group][,split] CSV; paths are relative to its directory."""
    table = read_csv(csv_path)
    table.columns = [column.lower() for column in table.columns]
    missing = sorted({"path", "label"} - set(table.columns))
    if missing:
        raise ValueError(f"{csv_path}: missing column(s) {missing}; expected path,label[,group][,split]")
    blank = table.index[(table["path"] == "") | (table["label"] == "")]
    if len(blank):
        raise ValueError(f"{csv_path}: empty path or label on data row(s) {[int(i) + 1 for i in blank[:10]]}")
    paths = [clip_path(csv_path.parent, name) for name in table["path"]]
    groups = table["group"] if "group" in table else pd.Series("", index=table.index)
    splits = table["split"].str.lower() if "split" in table else pd.Series("", index=table.index)
    check_splits(splits, csv_path)
    return pd.DataFrame(
        {
            "path": paths,
            "label": table["label"],
            "group": [group or path for group, path in zip(groups, paths)],
            "split": splits,
        }
    )


def check_splits(splits: pd.Series, csv_path: Path) -> None:
    """Splits must be train, test or blank, and blank only when no row is test (then one is carved)."""
    bad = sorted(set(splits) - {"train", "test", ""})
    if bad:
        raise ValueError(f"{csv_path}: unknown split value(s) {bad}; expected train or test")
    if (splits == "test").any() and (splits == "").any():
        raise ValueError(f"{csv_path}: {int((splits == '').sum())} row(s) lack a split while others are test")


def list_class_dirs(root: Path) -> pd.DataFrame:
    """List audio files under root/<class>/ or root/{train,test}/<class>/; each file is its own group."""
    bases = [(root / split, split) for split in SPLIT_DIRS if (root / split).is_dir()] or [(root, "")]
    rows = [
        (os.path.normpath(file), class_dir.name, split)
        for base, split in bases
        for class_dir in sorted(base.iterdir())
        if class_dir.is_dir() and not class_dir.name.startswith(".")
        for file in sorted(class_dir.rglob("*"))
        if is_audio(file)
    ]
    if not rows:
        raise ValueError(f"no audio files (any format soundfile decodes) in class folders under {root}")
    paths, labels, splits = zip(*rows)
    return pd.DataFrame({"path": paths, "label": labels, "group": paths, "split": splits})
