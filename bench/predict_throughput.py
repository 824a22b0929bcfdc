"""Predict throughput on CPU, in seconds of audio classified per second of wall time (x real time).

Modes: files (a batch of demo files); window (one long file in windows every --hop seconds: the front end once
over the recording, the network's body once over its frames, the head on each window's average of its feature
map, what `predict --window` does, --threads batches side by side on one thread each); window-exact (the same
windows, each a slice of the frames through the whole network: `predict --window --exact`); window-waveform (the
same windows cut from the waveform, each through the whole model: the path ONNX models take); breakdown (the time
of `files` per step); memory (peak RSS of `predict --window` on a --memory-minutes file, not run by default).
Models: the default and the demo resnet size (random weights), and the two pretrained recipes on the efficientat
front end over 6 s windows: `embed` (the frozen AudioSet mn04 body from ../shared/pretrained and a linear head) and
`finetune` (the whole mn04 network, random weights); and `detector` (configs/detector.yaml's frame head, random
weights, on that body).
Each figure is the best of --repeats runs, since other processes on a shared machine only ever slow a run down;
window modes also give the figure by CPU time / threads, which a loaded machine inflates less.
Usage: python bench/predict_throughput.py [--files 200] [--minutes 10] [--hop 1.0] [--threads N] [--repeats 3]
                                          [--sizes default demo embed finetune detector] [--modes files window ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from nonspeech.data.audio import decode_mono, load_clip, resample
from nonspeech.data.sources.demo import SYNTHS, generate_demo
from nonspeech.features.embed import embedding_spec
from nonspeech.features.frontends import feature_spec
from nonspeech.inference.model import BATCH_SIZE, LoadedModel, clip_samples
from nonspeech.inference.preprocessing import preprocessing
from nonspeech.inference.torch_model import inference_network, timeline_span, torch_model
from nonspeech.models.checkpoint import make_checkpoint, save_checkpoint
from nonspeech.models.efficientat import load_audioset
from nonspeech.models.fused import for_inference
from nonspeech.models.registry import build_model

LOGMEL = {"n_fft": 2048, "hop_length": 512, "n_mels": 128, "top_db": 80}
FEATURES = feature_spec("logmel", 32000, 4.0, LOGMEL)
PRETRAINED_FEATURES = feature_spec("efficientat", 32000, 6.0, LOGMEL)
NORMALIZATION = {"mode": "global", "mean": -40.0, "std": 20.0}
WEIGHTS = Path(__file__).resolve().parents[2] / "shared/pretrained/mn04_as_mAP_432.pt"
DETECTOR = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/detector.yaml").read_text())["detector"]["sed"]
SIZES = {
    "default": {"widths": [32, 64, 128, 256], "hidden": 512},
    "demo": {"widths": [8, 16, 32, 64], "hidden": 128},
    "embed": {"dims": 384, "hidden": 0, "dropout": 0.2},
    "finetune": {"width": 0.4, "dropout": 0.2},
    "detector": DETECTOR["model"],
}
LONG_RATE = 44100
MODES = ("files", "window", "window-exact", "window-waveform", "breakdown", "memory")


def checkpoint(name: str) -> dict:
    """A checkpoint of the named model, random weights except the embed recipe's pretrained body."""
    torch.manual_seed(0)
    classes, args = list(SYNTHS), SIZES[name]
    if name == "embed":
        body = load_audioset(WEIGHTS, 0.4)
        features = {**PRETRAINED_FEATURES, "embedding": embedding_spec(WEIGHTS, 0.4, False, body.dims)}
        norm = {"mode": "per_bin", "mean": [0.0] * body.dims, "std": [1.0] * body.dims}
        head = build_model("embedding_head", len(classes), **args)
        return make_checkpoint(head, "embedding_head", args, classes, features, norm, embedder_state=body.state_dict())
    if name == "detector":
        body = load_audioset(WEIGHTS, 0.4)
        dims, frames = args["dims"], {k: DETECTOR["body"][k] for k in ("time_stride", "frequency")}
        embedding = {**embedding_spec(WEIGHTS, 0.4, False, dims), "frames": True, **frames, "window_seconds": 6.0}
        norm = {"mode": "per_bin", "mean": [0.0] * dims, "std": [1.0] * dims}
        head = build_model("frame_head", len(classes), **args)
        return make_checkpoint(head, "frame_head", args, classes, {**PRETRAINED_FEATURES, "embedding": embedding}, norm,
                               output="sigmoid", column_seconds=0.32, hops_per_column=4, median_seconds=dict.fromkeys(classes, 0.96),
                               embedder_state=body.state_dict(),
                               boundary_radius={"onset": 2, "offset": 1})
    if name == "finetune":
        norm = {"mode": "none", "mean": 0.0, "std": 1.0}
        return make_checkpoint(build_model("efficientat", len(classes), **args), "efficientat", args, classes,
                               PRETRAINED_FEATURES, norm)
    return make_checkpoint(build_model("resnet", len(classes), **args), "resnet", args, classes, FEATURES, NORMALIZATION)


def long_recording(files: list[Path], path: Path, minutes: float) -> float:
    """Tile the clips (resampled to 44.1 kHz) into one wav of `minutes`; return its duration in seconds."""
    clips = [resample(d.samples, d.sample_rate, LONG_RATE) for d in map(decode_mono, files)]
    audio = np.concatenate(clips * int(np.ceil(minutes * 60 * LONG_RATE / sum(map(len, clips)))))
    audio = audio[: int(minutes * 60 * LONG_RATE)]
    sf.write(path, audio, LONG_RATE, subtype="PCM_16")
    return len(audio) / LONG_RATE


def timed(work: Callable[[], object], repeats: int) -> tuple[object, float]:
    """Result and best wall seconds of `repeats` runs of work()."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - start)
    return result, min(seconds)


def breakdown(files: list[Path], ckpt: dict, repeats: int) -> dict[str, float]:
    """Wall seconds of each step of the batch mode, run one after the other."""
    features = ckpt["features"]
    length = clip_samples(features)
    clips, decode_s = timed(lambda: np.stack([load_clip(f, features["sample_rate"], length)[0] for f in files]), repeats)
    frontend, network = for_inference(preprocessing(ckpt)), inference_network(ckpt)
    with torch.inference_mode():
        batches = torch.from_numpy(clips).split(BATCH_SIZE)
        network(frontend(batches[0]))  # warm-up
        mels, frontend_s = timed(lambda: [frontend(b) for b in batches], repeats)
        _, model_s = timed(lambda: [network(m) for m in mels], repeats)
    return {"decode + resample + pad": decode_s, "preprocessing": frontend_s, "model": model_s}


def measure(mode: str, ckpt: dict, files: list[Path], long_path: Path, long_seconds: float, args: argparse.Namespace) -> str:
    """One result line: x real time for `files` or `window`, or the time per step for `breakdown`."""
    if mode == "memory":
        return peak_memory(ckpt, args.memory_minutes, args.hop)
    if mode == "breakdown":
        steps = breakdown(files, ckpt, args.repeats)
        return "files, time per step: " + ", ".join(
            f"{step} {seconds:.2f} s ({100 * seconds / sum(steps.values()):.0f}%)" for step, seconds in steps.items())
    span = timeline_span(ckpt, None) if mode.startswith("window") else None  # as predict --window: a detector's column
    model = torch_model(ckpt, args.bf16, exact=mode == "window-exact", span=span)
    list(model.classify(files[:BATCH_SIZE]))  # warm-up
    if mode == "files":
        outcomes, wall = timed(lambda: list(model.classify(files)), args.repeats)
        seconds = sum(o.seconds for o in outcomes)
        return f"files:  {seconds / wall:5.0f}x real time ({len(files) / wall:.1f} files/s)"
    if mode == "window-waveform":
        model = LoadedModel(model.classes, model.features, model.probabilities)  # no framer: each window's waveform
    torch.set_num_threads(1)  # as predict --window: --threads batches of windows side by side, one thread each
    cpu = time.process_time()
    windows, wall = timed(lambda: model.timeline(long_path, args.hop, workers=args.threads), args.repeats)
    cpu = (time.process_time() - cpu) / args.repeats / args.threads
    torch.set_num_threads(args.threads)
    return (f"{mode}: {long_seconds / wall:5.0f}x real time ({len(windows.starts)} windows in {wall:.1f} s; "
            f"by CPU time / threads: {long_seconds / cpu:.0f}x)")


def peak_memory(ckpt: dict, minutes: float, hop: float) -> str:
    """Peak resident memory of `nonspeech predict --window` in a fresh process on a 1-minute and a long file of
    48 kHz noise bursts, and what decoding the long one whole would take."""
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.pt"
        save_checkpoint(ckpt, model)
        peaks = {}
        for length in (1.0, minutes):
            path = Path(tmp) / f"{length:g}min.wav"
            with sf.SoundFile(path, "w", 48000, 1, "PCM_16") as out:
                rng = np.random.default_rng(0)
                for _ in range(int(length * 6)):  # 10 s blocks: noise bursts over silence
                    out.write(np.where(np.arange(480000) % 96000 < 24000, rng.normal(0, 0.1, 480000), 0.0))
            code = (f"import resource, sys; from nonspeech.cli import main; main(['predict', '{path}', '--model', "
                    f"'{model}', '--window', '--hop', '{hop}', '--out', '{tmp}/out.txt']); "
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            peaks[length] = int(run.stdout.split()[-1]) / 1024
    whole = minutes * 60 * (48000 + 32000) * 4 / 2**20
    return (f"memory: peak RSS {peaks[1.0]:.0f} MB on a 1-minute file, {peaks[minutes]:.0f} MB on a {minutes:g}-minute "
            f"one (decoding it whole would add {whole:.0f} MB of float32 at 48 + 32 kHz)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--memory-minutes", type=float, default=60.0, help="length of the long file of `memory`")
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="network under bfloat16 autocast (predict --bf16)")
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=tuple(SIZES), help="models")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=MODES[:-1], help="default: all but memory")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        generate_demo(Path(tmp) / "demo", -(-args.files // 17), seed=0)  # about 2.5 files per clip and class
        files = sorted((Path(tmp) / "demo").rglob("*.wav"))[: args.files]
        long_path = Path(tmp) / "long.wav"
        long_seconds = long_recording(files[:40], long_path, args.minutes)
        print(f"{len(files)} demo files ({sum(sf.info(f).duration for f in files):.0f} s of audio), "
              f"one {long_seconds / 60:.1f}-minute file at {LONG_RATE} Hz, hop {args.hop} s, threads {args.threads}, "
              f"best of {args.repeats}{', bf16' if args.bf16 else ''}; other processes slow every figure (load average shown)")
        for name in args.sizes:
            for mode in args.modes:
                line = measure(mode, checkpoint(name), files, long_path, long_seconds, args)
                print(f"{name:8s}  {line}  [load {os.getloadavg()[0]:.1f}]", flush=True)


if __name__ == "__main__":
    main()
