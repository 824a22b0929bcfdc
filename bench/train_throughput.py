"""Training throughput of the real training step, and the full Nonspeech7k recipe's projected training time.

Usage: python bench/train_throughput.py [--device auto] [--steps 5]            # step samples/s per model/variant
       python bench/train_throughput.py --recipe [--clips 6289] [--model default]  # projection from real epochs

A step is the training loop's own: normalise, augment, forward, backward, clip, AdamW (batch 32, 128 x 251
log-mels, recipe params from configs/nonspeech7k.yaml). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
import zarr

from nonspeech.data.shard_set import shard_set
from nonspeech.data.shards import write_shards
from nonspeech.devices.distributed import World
from nonspeech.devices.select import on_device, resolve_device
from nonspeech.evaluation.sums import evaluate
from nonspeech.features.normalize import Normalize
from nonspeech.training.loop import TrainConfig, class_weights, epoch_batches, prepare_model, seed_epoch, train_epoch

PROJECT = Path(__file__).resolve().parents[1]
RECIPE = yaml.safe_load((PROJECT / "configs/nonspeech7k.yaml").read_text())
MODELS = {"default": RECIPE["model"]["args"], "demo": yaml.safe_load((PROJECT / "params.yaml").read_text())["model"]["args"]}
N_MELS, FRAMES, CLASSES = 128, 251, [f"class{i}" for i in range(7)]
NONSPEECH7K_TRAIN_CLIPS, FOLDS, EPOCHS = 6289, 3, RECIPE["train"]["epochs"]
VARIANTS = {  # name -> (bf16, channels_last, compile); all but fp32 need CUDA
    "fp32": (False, False, False), "bf16": (True, False, False), "channels_last": (False, True, False),
    "bf16+channels_last": (True, True, False), "bf16+channels_last+compile": (True, True, True),
}


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); the CPU runs synchronously."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_throughput(model_args: dict, cfg: TrainConfig, device: torch.device, steps: int) -> float:
    """Samples/s of training steps on one resident synthetic batch, after warm-up steps."""
    model, trained, forward = prepare_model("resnet", model_args, None, len(CLASSES), cfg, device, World())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    criterion = torch.nn.CrossEntropyLoss()
    normalize = Normalize(-40.0, 15.0).to(device)
    x = torch.randn(cfg.batch_size, N_MELS, FRAMES, device=device).mul(15).sub(40).half()
    y = torch.randint(0, len(CLASSES), (cfg.batch_size,), device=device)
    generator = seed_epoch(0, device)
    train_epoch(trained, forward, normalize, None, [(x, y, [])] * 3, criterion, optimizer, cfg, generator, device, World())
    sync(device)
    start = time.perf_counter()
    train_epoch(trained, forward, normalize, None, [(x, y, [])] * steps, criterion, optimizer, cfg, generator, device, World())
    sync(device)
    return cfg.batch_size * steps / (time.perf_counter() - start)


def synthetic_shards(root: Path, clips: int) -> Path:
    """Shards of `clips` random log-mel clips in 3 folds (plus a 7-clip test split), written by the shards stage's code."""
    rng = np.random.default_rng(0)
    total = clips + len(CLASSES)
    features = zarr.create_array(
        store=str(root / "logmel.zarr"), shape=(total, N_MELS, FRAMES), chunks=(64, N_MELS, FRAMES), dtype="float16",
        attributes={"sample_rate": 32000, "seconds": 4.0, "n_fft": 2048, "hop_length": 512, "n_mels": N_MELS, "top_db": 80},
    )
    for lo in range(0, total, 512):
        hi = min(lo + 512, total)
        features[lo:hi] = rng.normal(-40, 15, (hi - lo, N_MELS, FRAMES)).astype(np.float16)
    ids = [f"clip{i:05d}" for i in range(total)]
    manifest = pd.DataFrame({
        "clip_id": ids, "label": [CLASSES[i % len(CLASSES)] for i in range(total)], "group": ids,
        "split": ["train"] * clips + ["test"] * len(CLASSES),
    })
    folds = pd.DataFrame({"clip_id": ids[:clips], "fold": np.arange(clips) % FOLDS})
    write_shards(root / "logmel.zarr", manifest, folds, CLASSES, root / "shards", 16, 0)
    return root / "shards"


def timed(fn) -> float:
    """Seconds fn() takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def recipe_projection(model_args: dict, cfg: TrainConfig, clips: int) -> None:
    """Time a warm epoch of the real loop (fold 0: train on folds 1-2, validate on fold 0); project the recipe."""
    device = resolve_device(cfg.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = synthetic_shards(Path(tmp), clips)
        train, val = shard_set(root, ["fold1", "fold2"], CLASSES), shard_set(root, ["fold0"], CLASSES)
        model, trained, forward = prepare_model("resnet", model_args, None, len(CLASSES), cfg, device, World())
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        criterion = torch.nn.CrossEntropyLoss(weight=class_weights(train.class_counts, CLASSES).to(device))
        normalize = Normalize(-40.0, 15.0).to(device)

        def train_pass(epoch: int) -> None:
            batches = on_device(epoch_batches(train.urls, cfg, epoch, training=True), device)
            generator = seed_epoch(epoch, device)
            train_epoch(trained, forward, normalize, None, batches, criterion, optimizer, cfg, generator, device, World())

        def val_pass() -> None:
            batches = on_device(epoch_batches(val.urls, cfg, 0, training=False), device)
            model.eval()
            sums, _ = evaluate(lambda x: forward(normalize(x)), batches, len(CLASSES), device, cfg.bf16)
            sums.confusion.cpu()

        warmup = timed(lambda: (train_pass(0), val_pass()))
        train_s, val_s = timed(lambda: train_pass(1)), timed(val_pass)
    train_rate, val_rate = train.samples / train_s, val.samples / val_s
    fold_train, fold_val = NONSPEECH7K_TRAIN_CLIPS * (FOLDS - 1) / FOLDS, NONSPEECH7K_TRAIN_CLIPS / FOLDS
    cv_epoch = fold_train / train_rate + fold_val / val_rate
    final_epoch = NONSPEECH7K_TRAIN_CLIPS / train_rate
    total_min = EPOCHS * (FOLDS * cv_epoch + final_epoch) / 60
    print(f"\n== full recipe projection on {device} (measured on {clips} synthetic clips) ==")
    print(f"  first epoch (warm-up, compile)   {warmup:8.1f} s")
    print(f"  training                         {train_rate:8.1f} samples/s")
    print(f"  validation                       {val_rate:8.1f} samples/s")
    print(f"  CV fold epoch at 6,289 clips     {cv_epoch:8.1f} s  ({fold_train:.0f} train + {fold_val:.0f} val)")
    print(f"  final epoch at 6,289 clips       {final_epoch:8.1f} s")
    print(f"  {FOLDS} folds + final x {EPOCHS} epochs      {total_min:8.1f} min (+ warm-up per stage)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--recipe", action="store_true", help="project the full recipe from timed epochs")
    parser.add_argument("--clips", type=int, default=NONSPEECH7K_TRAIN_CLIPS)
    parser.add_argument("--model", choices=list(MODELS), default="default")
    parser.add_argument("--workers", type=int, default=RECIPE["train"]["workers"])
    args = parser.parse_args()
    cfg = TrainConfig.from_dict({**RECIPE["train"], "device": args.device, "workers": args.workers})
    device = resolve_device(args.device)
    if args.recipe:
        recipe_projection(MODELS[args.model], cfg, args.clips)
        return
    print(f"\n== training step throughput on {device}, batch {cfg.batch_size}, {N_MELS} x {FRAMES} ==")
    for name, model_args in MODELS.items():
        for variant, (bf16, channels_last, compile_) in VARIANTS.items():
            if variant != "fp32" and device.type != "cuda":
                continue
            variant_cfg = dataclasses.replace(cfg, bf16=bf16, channels_last=channels_last, compile=compile_)
            rate = step_throughput(model_args, variant_cfg, device, args.steps)
            print(f"  {name:<8} {str(model_args['widths']):<20} {variant:<28} {rate:8.1f} samples/s")
    if device.type != "cuda":
        print("  (bf16, channels_last and torch.compile variants need CUDA; skipped)")


if __name__ == "__main__":
    main()
