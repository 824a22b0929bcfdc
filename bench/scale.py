"""Disk, file counts, memory and time of the precompute stages at scale, on N synthesised clips in a throwaway
git + DVC copy of the project: per stage the wall time, clips/s, peak RSS (the stage and DVC), bytes and files in
the workspace outputs and in the DVC cache; then the time of `dvc status` and of a no-op `dvc repro`.

Usage: python bench/scale.py [--clips 100000] [--seconds 4] [--rate 32000] [--embed] [--dir DIR]
       python bench/scale.py --demo 391   (the demo set at 391 source clips per class, about 6,800 clips)

The clips are 16-bit mono WAVs of tones in noise, seven classes in class folders (the `folder` source), written
in parallel under DIR/repo/data/raw/scale (DIR: a temporary folder, removed at the end, unless given). Disk figures
count every file once, however many hard links it has; "raw" is the synthesised audio.
`--embed` adds the pretrained recipe's `embed@mn04` stage (the efficientat front end and the mn04 body).
`--demo N` measures the demo set instead (its `demo` stage first; its WAVs, mixed rates and formats, are then a DVC
output, in the cache too), with "raw" its WAVs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml
from repro_time import PROJECT, copy_pipeline

CLASSES = ("breath", "cough", "crying", "laugh", "screaming", "sneeze", "yawn")
PRECOMPUTE = ("ingest", "folds", "features", "stats", "shards")


def write_clips(root: Path, start: int, stop: int, seconds: float, rate: int) -> int:
    """Clips start..stop-1: a class tone with harmonics in noise, at a random level."""
    rng = np.random.default_rng(start)
    t = np.arange(int(rate * seconds)) / rate
    for i in range(start, stop):
        label = CLASSES[i % len(CLASSES)]
        pitch = 150.0 * (1 + i % len(CLASSES)) * rng.uniform(0.9, 1.1)
        audio = sum(np.sin(2 * np.pi * k * pitch * t) / k for k in (1, 2, 3)) * rng.uniform(0.05, 0.3)
        audio += 0.02 * rng.standard_normal(len(t))
        sf.write(root / label / f"clip{i:06d}.wav", audio.astype(np.float32), rate, subtype="PCM_16")
    return stop - start


def synthesise(root: Path, clips: int, seconds: float, rate: int, workers: int) -> None:
    """Write `clips` WAVs under root/<class>/ with `workers` processes."""
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
    step = 500
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(write_clips, root, lo, min(lo + step, clips), seconds, rate) for lo in range(0, clips, step)]
        assert sum(job.result() for job in jobs) == clips


def disk(path: Path, seen: set[tuple[int, int]]) -> tuple[int, int]:
    """Bytes and files under path, each inode counted once across calls sharing `seen`."""
    size = files = 0
    for folder, _, names in os.walk(path):
        for name in names:
            stat = os.lstat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                size, files = size + stat.st_size, files + 1
    return size, files


def run_measured(cmd: list[str], repo: Path, env: dict) -> tuple[float, float]:
    """Run cmd in repo; wall seconds and the peak RSS in MB of it and its waited-for descendants."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:  # a pipe would fill with progress bars and stall the stage
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status):
            errors.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{errors.read()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def params_for(repo: Path, seconds: float, embed: bool, demo: int | None) -> dict:
    """The repo's params on the synthesised folder (or the demo set of `demo` clips per class); with `embed`,
    configs/pretrained.yaml's front end and embedder."""
    params = yaml.safe_load((PROJECT / ("configs/pretrained.yaml" if embed else "params.yaml")).read_text())
    if demo:
        params["data"] |= {"source": "demo", "root": "data/raw/demo", "negatives": "data/raw/negatives"}
        params["demo"]["clips_per_class"] = demo
    else:
        params["data"] |= {"source": "folder", "root": "data/raw/scale", "negatives": "data/raw/negatives"}
    params["audio"]["seconds"] = seconds
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rate", type=int, default=32000, help="sample rate of the synthesised WAVs")
    parser.add_argument("--embed", action="store_true", help="also run embed@mn04 (configs/pretrained.yaml)")
    parser.add_argument("--dir", type=Path, help="work here (kept) instead of a temporary folder")
    parser.add_argument("--demo", type=int, metavar="N", help="the demo set at N source clips per class instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = (args.dir or Path(tmp)) / "repo"
        repo.mkdir(parents=True)
        copy_pipeline(repo)
        params = params_for(repo, args.seconds, args.embed, args.demo)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "PYTHONPATH": str(repo)}
        dvc = [sys.executable, "-m", "dvc"]
        start = time.perf_counter()
        if args.demo:
            run_measured([*dvc, "repro", "--single-item", "demo"], repo, env)
            args.clips = sum(1 for _ in (repo / "data/raw/demo").rglob("*.wav"))
        else:
            synthesise(repo / params["data"]["root"], args.clips, args.seconds, args.rate, os.cpu_count() or 1)
        raw, raw_files = disk(repo / params["data"]["root"], set())
        what = f"the demo set ({args.demo} per class)" if args.demo else f"clips of {args.seconds:g} s at {args.rate} Hz"
        print(f"\n== {args.clips} {what} ({os.cpu_count()} cores): {raw / 1e9:.2f} GB of WAV in "
              f"{time.perf_counter() - start:.0f} s ==")
        stages = [*PRECOMPUTE[:3], *(["embed@mn04"] if args.embed else []), *PRECOMPUTE[3:]]
        print("| stage | wall s | clips/s | peak RSS MB | workspace outputs GB (files) | DVC cache GB (files) | "
              "all / raw |")
        print("|---|---|---|---|---|---|---|")
        for stage in stages:
            seconds, rss = run_measured([*dvc, "repro", "--single-item", stage], repo, env)
            seen: set[tuple[int, int]] = set()
            work, work_files = disk(repo / "data", seen)
            work, work_files = work - raw, work_files - raw_files  # the raw audio is counted once, below
            cache, cache_files = disk(repo / ".dvc/cache", seen)
            print(f"| {stage} | {seconds:.1f} | {args.clips / seconds:.0f} | {rss:.0f} | {work / 1e9:.2f} "
                  f"({work_files}) | {cache / 1e9:.2f} ({cache_files}) | {(raw + work + cache) / raw:.2f} |", flush=True)
        for command in ("status", "repro"):  # of the precompute stages, all up to date
            seconds, rss = run_measured([*dvc, command, stages[-1]], repo, env)
            print(f"no-op `dvc {command} {stages[-1]}`: {seconds:.1f} s, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
