"""Read shards back: shard list -> shuffle -> split by node -> split by worker -> decode -> batch.

Shards are opened with fsspec, so the root may be a local directory, an http(s) URL, or any fsspec
URL whose filesystem is installed (gs:// with gcsfs, s3:// with s3fs).
"""

from __future__ import annotations

import ast
import json
import mmap
import random
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import fsspec
import numpy as np
import torch
import webdataset as wds
from webdataset.utils import pytorch_worker_info

from nonspeech.data.tarstream import tar_samples


def read_shards_json(root: str | Path, name: str) -> dict:
    """A JSON file the shards stage wrote under root (meta.json, fold0/sizes.json, …), from any fsspec URL."""
    url = f"{str(root).rstrip('/')}/{name}"
    try:
        with fsspec.open(url, "r") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{url} not found: has the shards stage run (or been pulled)?") from None


def _sizes(root: str | Path, split: str) -> dict:
    return read_shards_json(root, f"{split}/sizes.json")


def shard_urls(root: str | Path, splits: list[str]) -> list[str]:
    """Shard URLs of the given splits (e.g. fold0, test), listed by each split's sizes.json."""
    base = str(root).rstrip("/")
    return [f"{base}/{split}/{name}" for split in splits for name in _sizes(root, split)["shards"]]


def split_size(root: str | Path, splits: list[str]) -> int:
    """Number of samples in the given splits."""
    return sum(_sizes(root, split)["samples"] for split in splits)


def shard_bytes(url: str) -> mmap.mmap | bytes:
    """A whole shard: a local file memory-mapped (read without copying), any other URL downloaded."""
    if "://" not in url:
        with open(url, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    with fsspec.open(url, "rb") as stream:
        return stream.read()


def _tar_samples(src: Iterator[dict]) -> Iterator[dict]:
    for shard in src:
        yield from tar_samples(shard_bytes(shard["url"]), shard["url"])


def _rng(seed: int, epoch: int) -> random.Random:
    rank, _, worker, _ = pytorch_worker_info()
    return random.Random(f"{seed}-{epoch}-{rank}-{worker}")


def _shuffle_shards(seed: int, epoch: int):
    def stage(src: Iterator[dict]) -> Iterator[dict]:
        shards = list(src)
        random.Random(f"{seed}-{epoch}").shuffle(shards)  # same order on every rank and worker
        yield from shards
    return stage


def _shuffle_samples(seed: int, epoch: int, buffer: int):
    def stage(src: Iterator[dict]) -> Iterator[dict]:
        rng, pool = _rng(seed, epoch), []
        for sample in src:
            pool.append(sample)
            if len(pool) >= buffer:
                i = rng.randrange(len(pool))
                pool[i], pool[-1] = pool[-1], pool[i]
                yield pool.pop()
        rng.shuffle(pool)
        yield from pool
    return stage


@lru_cache(maxsize=64)
def _npy_layout(header: bytes) -> tuple[np.dtype, tuple[int, ...]]:
    """dtype and shape from a .npy header dict (NEP 1 format), parsed once per distinct header."""
    fields = ast.literal_eval(header[header.index(b"{"):].decode("latin1"))
    if fields["fortran_order"]:
        raise ValueError("Fortran-ordered .npy members are not supported")
    return np.dtype(fields["descr"]), tuple(fields["shape"])


def decode_sample(sample: dict) -> tuple[np.ndarray, int, str]:
    """Raw tar members to (features float16, class id, clip id), without re-parsing a known .npy header."""
    data = sample["npy"]
    width = 2 if data[6] == 1 else 4  # format version 1 stores the header length in 2 bytes, later ones in 4
    offset = 8 + width + int.from_bytes(data[8:8 + width], "little")
    dtype, shape = _npy_layout(bytes(data[:offset]))
    return np.frombuffer(data, dtype, offset=offset).reshape(shape), int(bytes(sample["cls"])), sample["__key__"]


def collate(samples: list[tuple[np.ndarray, int, str]]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Stack a batch into (B, n_mels, frames) float16, (B,) int64 labels and the clip ids."""
    features, labels, ids = zip(*samples)
    return torch.from_numpy(np.stack(features)), torch.tensor(labels), list(ids)


def batch_pipeline(
    urls: list[str], batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0,
    drop_last: bool = False, buffer: int = 1000,
) -> wds.DataPipeline:
    """A webdataset pipeline of batches; shuffling is seeded by (seed, epoch) so reruns are identical."""
    stages = [wds.SimpleShardList(urls)]
    if shuffle:
        stages.append(_shuffle_shards(seed, epoch))
    stages += [wds.split_by_node, wds.split_by_worker, _tar_samples]
    if shuffle:
        stages.append(_shuffle_samples(seed, epoch, buffer))
    stages += [wds.map(decode_sample), wds.batched(batch_size, collation_fn=collate, partial=not drop_last)]
    return wds.DataPipeline(*stages)


def batch_loader(pipeline: wds.DataPipeline, workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader over an already-batched pipeline, with `workers` processes each taking whole shards."""
    return torch.utils.data.DataLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=False)
