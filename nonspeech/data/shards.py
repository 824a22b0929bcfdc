"""Write webdataset tar shards per fold and for the test split."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import webdataset as wds
import zarr

from nonspeech.report import print_summary

SHARD_PATTERN = "shard-{:05d}.tar"
READ_CLIPS = 4096  # clips whose features a split's writer holds at once (4 s log-mels: about 260 MB)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_split(
    out_dir: Path, features: zarr.Array, rows: pd.DataFrame, class_index: dict[str, int], n_shards: int, seed: int
) -> dict[str, int]:
    """Write one split (rows carry `row`, an index into features) round-robin into n_shards tars in seeded random
    order, reading the features of as many tars at a time as fit in READ_CLIPS clips (at least one tar's)."""
    if rows.empty:
        raise ValueError(f"no clips for {out_dir.name}: every fold and the test split need at least one clip")
    out_dir.mkdir(parents=True, exist_ok=True)
    order = rows.sample(frac=1.0, random_state=seed)
    records = list(order.itertuples(index=False))
    row_of_slot = order["row"].to_numpy()
    names = [SHARD_PATTERN.format(i) for i in range(min(n_shards, len(order)))]
    shard_of_slot = np.arange(len(order)) % len(names)
    per_pass = max(1, READ_CLIPS // -(-len(order) // len(names)))
    sizes = dict.fromkeys(names, 0)
    for first in range(0, len(names), per_pass):
        slots = np.flatnonzero((shard_of_slot >= first) & (shard_of_slot < first + per_pass))
        sorted_rows = np.sort(row_of_slot[slots])
        block = features.oindex[sorted_rows, :, :].astype(np.float16, copy=False)  # one chunk-friendly read per pass
        position = {row: i for i, row in enumerate(sorted_rows)}
        # an integer mtime: a float one makes tarfile add a PAX header to every member, doubling the reader's parsing
        writers = {shard: wds.TarWriter(str(out_dir / names[shard]), mtime=0, encoder=False)
                   for shard in range(first, min(first + per_pass, len(names)))}
        for slot in slots:
            rec, shard = records[slot], shard_of_slot[slot]
            meta = {"clip_id": rec.clip_id, "group": str(rec.group), "label": rec.label}
            writers[shard].write({
                "__key__": rec.clip_id,
                "npy": _npy_bytes(block[position[rec.row]]),
                "cls": str(class_index[rec.label]).encode(),
                "json": json.dumps(meta).encode(),
            })
            sizes[names[shard]] += 1
        for writer in writers.values():
            writer.close()
    (out_dir / "sizes.json").write_text(json.dumps({"samples": len(rows), "shards": sizes}, indent=1) + "\n")
    return sizes


def write_shards(
    features_path: Path, manifest: pd.DataFrame, folds: pd.DataFrame, classes: list[str],
    out_dir: Path, shards_per_split: int, seed: int,
) -> dict[str, object]:
    """Shard each fold's clips and the test clips; write meta.json with classes and feature parameters (and, when
    the test clips come from several sources, each one's source)."""
    start = time.perf_counter()
    features = zarr.open_array(features_path, mode="r")
    if features.shape[0] != len(manifest):
        raise ValueError(f"{features_path} has {features.shape[0]} clips but the manifest lists {len(manifest)}")
    rows = manifest.assign(row=np.arange(len(manifest)))
    unknown = sorted(set(rows["label"]) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the class list {classes}")
    class_index = {name: i for i, name in enumerate(classes)}
    train = rows.merge(folds[["clip_id", "fold"]], on="clip_id", how="inner", validate="one_to_one")
    if len(train) != (rows["split"] == "train").sum():
        raise ValueError("the fold table does not cover every training clip of the manifest; rerun the folds stage")
    splits = {f"fold{k}": train[train["fold"] == k] for k in sorted(folds["fold"].unique())}
    splits["test"] = rows[rows["split"] == "test"]
    counts = {name: len(part) for name, part in splits.items()}
    for name, part in splits.items():
        write_split(out_dir / name, features, part, class_index, shards_per_split, seed)
    meta = {
        "classes": classes, "features": {k: v for k, v in features.attrs.items() if k != "versions"},
        "shape": list(features.shape[1:]), "splits": counts,
    }
    if splits["test"]["source"].nunique() > 1:  # what evaluate reports per source, readable where only shards are
        meta["test_sources"] = dict(zip(splits["test"]["clip_id"], splits["test"]["source"]))
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    summary = {**{f"{k} clips": v for k, v in counts.items()}, "seconds": round(time.perf_counter() - start, 1)}
    print_summary("shards", summary)
    return summary
