"""One entry of data.sources, a dataset beside the main one: listed by its loader, its labels mapped by its class map,
split by its own hold-out rule, each file fingerprinted so that a changed file reruns ingest."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from nonspeech.data.files import file_md5
from nonspeech.data.sources.listing import LOADER_COLUMNS, LOADERS, with_test_split

SOURCE_KEYS = ("root", "source", "class_map", "unmapped", "test_fraction")
UNMAPPED_POLICIES = ("error", "drop")
LISTING_COLUMNS = ["path", "label", "group", "split", "md5", "reason"]


def list_extra_source(name: str, spec: dict, test_fraction: float, split_seed: int) -> pd.DataFrame:
    """Every file of data.sources entry `name` (spec: root, and optionally source, class_map, unmapped,
    test_fraction): kept files with their mapped label, group prefixed `name:`, split and md5; files its class map
    leaves out (unmapped: drop) with a reason instead."""
    check_spec(name, spec)
    loader = spec.get("source", "folder")
    try:
        listed = LOADERS[loader](Path(spec["root"]))
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(f"data.sources.{name}: {exc}") from exc
    clips, dropped = map_classes(name, listed, spec.get("class_map") or {}, spec.get("unmapped", "error"))
    clips = held_out(clips, spec.get("test_fraction", test_fraction), split_seed)
    clips = clips[LOADER_COLUMNS].astype(str).assign(
        group=lambda t: f"{name}:" + t["group"], md5=[file_md5(Path(p)) for p in clips["path"]], reason="",
    )
    dropped = dropped[["path", "label", "reason"]].reindex(columns=LISTING_COLUMNS, fill_value="").astype(str)
    return pd.concat([clips, dropped], ignore_index=True)[LISTING_COLUMNS]


def check_spec(name: str, spec: object) -> None:
    """ValueError naming the entry when it is not a mapping with a root, names an unknown key, loader or policy."""
    if not isinstance(spec, dict) or "root" not in spec:
        raise ValueError(f"data.sources.{name} must be a mapping with at least a root, got {spec!r}")
    unknown = sorted(set(spec) - set(SOURCE_KEYS))
    if unknown:
        raise ValueError(f"data.sources.{name}: unknown key(s) {unknown}; valid keys: {', '.join(SOURCE_KEYS)}")
    if spec.get("source", "folder") not in LOADERS:
        raise ValueError(f"data.sources.{name}: unknown source {spec['source']!r}; valid sources: {', '.join(sorted(LOADERS))}")
    if spec.get("unmapped", "error") not in UNMAPPED_POLICIES:
        raise ValueError(f"data.sources.{name}: unmapped must be one of {', '.join(UNMAPPED_POLICIES)}, got {spec['unmapped']!r}")
    class_map = spec.get("class_map") or {}
    if not isinstance(class_map, dict):
        raise ValueError(f"data.sources.{name}: class_map must map the source's class names to target classes, got {class_map!r}")


def map_classes(name: str, clips: pd.DataFrame, class_map: dict, unmapped: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clips relabelled by class_map, clips left out); no map keeps every label. A label outside a map is an error,
    or left out with a reason (unmapped: drop); a map that leaves nothing is an error; map keys the source lacks get a
    warning line."""
    if not class_map:
        return clips, pd.DataFrame(columns=["path", "label", "reason"])
    class_map = {str(key): str(value) for key, value in class_map.items()}
    labels = clips["label"].astype(str)
    absent = sorted(set(class_map) - set(labels))
    if absent:
        print(f"warning: data.sources.{name}: class_map names {absent}, of which the source has no files", file=sys.stderr)
    keep = labels.isin(list(class_map))
    unlisted = sorted(set(labels[~keep]))
    if unlisted and unmapped == "error":
        raise ValueError(f"data.sources.{name}: class(es) {unlisted} are not in its class_map; map them, or set "
                         "unmapped: drop to leave them out")
    if not keep.any():
        raise ValueError(f"data.sources.{name}: its class_map {class_map} leaves no clips (the source's classes: "
                         f"{sorted(set(labels))})")
    dropped = clips[~keep].assign(reason=lambda t: "class " + t["label"].astype(str)
                                  + f" is not in data.sources.{name}.class_map (unmapped: drop)")
    return clips[keep].assign(label=labels[keep].map(class_map)), dropped


def held_out(clips: pd.DataFrame, test_fraction: float, seed: int) -> pd.DataFrame:
    """The clips with their listed split when any is test; otherwise all train (test_fraction 0), all test (1), or
    about test_fraction of each class's groups carved out as test."""
    if (clips["split"] == "test").any() or 0 < test_fraction < 1:
        return with_test_split(clips, test_fraction, seed)
    if test_fraction not in (0, 1):
        raise ValueError(f"test_fraction must lie between 0 and 1, got {test_fraction}")
    return clips.assign(split="test" if test_fraction == 1 else "train")


def read_listing(path: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept clips, dropped rows with a reason) of a listing written by list_extra_source."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}, the listing of data.sources.{name}, is missing: run `dvc repro` (stage sources@{name})")
    listing = pd.read_csv(path, dtype=str, keep_default_na=False)
    dropped = listing["reason"] != ""
    return listing.loc[~dropped, LOADER_COLUMNS], listing.loc[dropped, ["path", "reason"]]
