"""What training and evaluation check about a set of shard splits before reading them (any fsspec root)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nonspeech.data.loader import read_shards_json, shard_bytes, shard_urls
from nonspeech.data.tarstream import tar_members
from nonspeech.features.frontends import describe


@dataclass(frozen=True)
class ShardSet:
    """The shard URLs of some splits and their per-class clip counts."""

    urls: list[str]
    class_counts: np.ndarray

    @property
    def samples(self) -> int:
        """Number of clips in the splits."""
        return int(self.class_counts.sum())


def read_meta(root: str | Path) -> dict:
    """The shards' meta.json: classes, feature parameters, shape and split counts."""
    return read_shards_json(root, "meta.json")


def class_counts(urls: list[str], classes: list[str]) -> np.ndarray:
    """Clips per class, from the shards' .cls members; ValueError on an id outside the class list."""
    counts = np.zeros(len(classes), dtype=np.int64)
    for url in urls:
        for name, data in tar_members(shard_bytes(url), url):
            if not name.endswith(".cls"):
                continue
            label = int(bytes(data))
            if not 0 <= label < len(classes):
                raise ValueError(f"{url}: {name} has class id {label}, outside the {len(classes)} classes {classes}")
            counts[label] += 1
    return counts


def shard_set(root: str | Path, splits: list[str], classes: list[str]) -> ShardSet:
    """Shards of `splits` with their class counts; ValueError when any split is empty."""
    urls, counts = [], np.zeros(len(classes), dtype=np.int64)
    for split in splits:
        split_urls = shard_urls(root, [split])
        split_counts = class_counts(split_urls, classes)
        if split_counts.sum() == 0:
            raise ValueError(f"split {split} in {root} has no clips: every fold and the test split need at least one")
        urls += split_urls
        counts += split_counts
    return ShardSet(urls, counts)


def check_stats_match(stats: dict, meta: dict) -> None:
    """ValueError unless stats.json was computed on the shards' features (same spec, same number of bins)."""
    if stats["features"] != meta["features"]:
        raise ValueError(
            f"stats.json is for {describe(stats['features'])} but the shards hold {describe(meta['features'])}: "
            "rerun the stats stage"
        )
    bins = meta["shape"][0]
    wrong = [key for key, entry in stats.items() if key != "features" and len(entry["mean_per_bin"]) != bins]
    if wrong:
        raise ValueError(f"stats.json entries {wrong} do not have {bins} per-bin values: rerun the stats stage")
