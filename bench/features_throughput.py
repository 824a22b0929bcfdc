"""Feature throughput, wav to zarr (ingest + features stages), beside the notebook's per-sample way.

Usage: python bench/features_throughput.py [--clips 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from synthetic import write_wavs

from nonspeech.data.audio import load_clip
from nonspeech.data.ingest import ingest
from nonspeech.features.compute import compute_features
from nonspeech.features.logmel import LogMel

SR, SECONDS = 32000, 4.0
LOGMEL = {"n_fft": 2048, "hop_length": 512, "n_mels": 128, "top_db": 80}


def per_sample_baseline(paths: list[str], limit: int) -> float:
    """Clips/s of decode + resample + log-mel one clip at a time, as the notebook's Dataset did."""
    logmel = LogMel(SR, *LOGMEL.values())
    start = time.perf_counter()
    with torch.inference_mode():
        for path in paths[:limit]:
            clip, _ = load_clip(path, SR, int(SR * SECONDS))
            logmel(torch.from_numpy(clip))
    return limit / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = write_wavs(root / "wavs", args.clips, SECONDS)
        empty = pd.DataFrame(columns=["path", "reason"])
        start = time.perf_counter()
        ingest(clips, empty, root / "wavs", root / "ingest", SR, SECONDS, 0.0, args.workers)
        ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        files = list(pd.read_csv(root / "ingest/manifest.csv")["file"])
        compute_features(files, SR, SECONDS, root / "logmel.zarr", "logmel", LOGMEL, args.workers)
        features_s = time.perf_counter() - start
        torch.set_num_threads(1)
        baseline = per_sample_baseline(list(clips["path"]), min(200, args.clips))
    total = ingest_s + features_s
    print(f"\nclips: {args.clips} x {SECONDS:.0f} s, mixed 16-48 kHz, workers: {args.workers}, cores: {os.cpu_count()}")
    print(f"ingest (decode + resample, checked): {args.clips / ingest_s:8.0f} clips/s")
    print(f"features (decode + resample + log-mel -> zarr): {args.clips / features_s:8.0f} clips/s")
    print(f"wav to features, end to end:          {args.clips / total:8.0f} clips/s")
    print(f"baseline, per sample, one core:       {baseline:8.0f} clips/s (per epoch, every epoch)")


if __name__ == "__main__":
    main()
