"""Shard-reader throughput (samples/s into batches) beside the notebook's per-sample decode + log-mel Dataset.

Usage: python bench/reader_throughput.py [--clips 4096] [--workers 2] [--epochs 3] [--shards 16]
(at AudioSet scale: --clips 100000 --epochs 1 --shards 128; the features are float16, as the shards hold them)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import zarr
from synthetic import write_wavs

from nonspeech.data.audio import load_clip
from nonspeech.data.loader import batch_loader, batch_pipeline, shard_urls
from nonspeech.data.shards import write_split
from nonspeech.features.logmel import LogMel

SR, SECONDS, N_FFT, HOP, N_MELS, TOP_DB, BATCH = 32000, 4.0, 2048, 512, 128, 80, 32
BASELINE_CLIPS = 256  # clips the per-sample baseline decodes each epoch
CHUNK = 256  # clips per zarr chunk, as the features stage writes them


class PerSampleDataset(torch.utils.data.Dataset):
    """The notebook's way: every epoch, decode, resample and log-mel each clip on access."""

    def __init__(self, paths: list[str], labels: list[int]) -> None:
        self.paths, self.labels = paths, labels
        self.logmel = LogMel(SR, N_FFT, HOP, N_MELS, TOP_DB)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        clip, _ = load_clip(self.paths[i], SR, int(SR * SECONDS))
        with torch.inference_mode():
            return self.logmel(torch.from_numpy(clip)), self.labels[i]


def samples_per_second(batches, epochs: int) -> float:
    """Samples/s over `epochs` passes of a batch iterator factory, after one warm-up batch."""
    count, start = 0, None
    for epoch in range(epochs):
        for x, *_ in batches(epoch):
            start = start or time.perf_counter()
            count += len(x)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--shards", type=int, default=16, help="tar shards the clips are written into")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = write_wavs(root / "wavs", min(args.clips, BASELINE_CLIPS), SECONDS)  # the baseline decodes these
        features = zarr.create_array(store=root / "f.zarr", shape=(args.clips, N_MELS, 251), chunks=(CHUNK, N_MELS, 251),
                                     dtype="float16")
        rng = np.random.default_rng(0)
        for lo in range(0, args.clips, CHUNK):  # a chunk at a time: 100k clips of features are 6.4 GB
            size = min(CHUNK, args.clips - lo)
            features[lo:lo + size] = rng.normal(-30, 20, (size, N_MELS, 251)).astype(np.float16)
        rows = pd.DataFrame({"clip_id": [f"c{i}" for i in range(args.clips)], "row": range(args.clips),
                             "label": [f"class{i % 7}" for i in range(args.clips)], "group": [f"g{i}" for i in range(args.clips)]})
        write_split(root / "shards" / "train", features, rows, {f"class{i}": i for i in range(7)}, args.shards, 0)
        urls = shard_urls(root / "shards", ["train"])
        shards = {workers: samples_per_second(
            lambda epoch: batch_loader(batch_pipeline(urls, BATCH, True, 0, epoch), workers), args.epochs,
        ) for workers in sorted({0, args.workers})}
        labels = [int(lbl[5:]) for lbl in clips["label"]]
        torch.set_num_threads(1)
        baseline_set = PerSampleDataset(list(clips["path"]), labels)
        baseline = samples_per_second(lambda epoch: torch.utils.data.DataLoader(
            baseline_set, BATCH, shuffle=True, num_workers=args.workers), 1)
    print(f"\nclips: {args.clips} x {SECONDS:.0f} s, batch {BATCH}, loader workers: {args.workers}, cores: {os.cpu_count()}")
    print(f"baseline, decode + log-mel per sample, {args.workers} workers:  {baseline:8.0f} samples/s")
    for workers, rate in shards.items():
        print(f"shard reader, {workers} workers:                         {rate:8.0f} samples/s  {rate / baseline:6.1f}x")


if __name__ == "__main__":
    main()
