"""One training loop for CPU, CUDA and XLA: seeded per epoch, resumable at epoch boundaries, best epoch kept.

Under torchrun or torch_xla's launcher each rank reads its own shards, gradients are averaged (DDP, or
XLA's reduction), loss and confusion sums are added across ranks, and only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from nonspeech.data.loader import batch_loader, batch_pipeline
from nonspeech.devices import xla
from nonspeech.devices.distributed import World, all_sum, data_parallel, local_device, sync_buffers, uneven_inputs
from nonspeech.devices.select import autocast_context, on_device, resolve_device
from nonspeech.evaluation.sums import EvalSums, evaluate, padded, summarize
from nonspeech.features.mixing import background_mixer
from nonspeech.features.normalize import Normalize
from nonspeech.labels import negative_index
from nonspeech.models.outputs import check_output, network_outputs, prior_logits, weighted_loss
from nonspeech.models.registry import build_model, load_pretrained
from nonspeech.training.augment import AugmentConfig, augment
from nonspeech.training.curves import log_epoch, open_curves
from nonspeech.training.resume import load_state, save_state

Mixer = Callable[[Tensor, Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """The params.yaml `train:` section."""

    device: str
    lr: float
    body_lr_scale: float
    freeze_batchnorm: bool
    weight_decay: float
    batch_size: int
    epochs: int
    seed: int
    grad_clip: float
    plateau_factor: float
    plateau_patience: int
    normalization: str
    workers: int
    bf16: bool
    channels_last: bool
    compile: bool
    output: str  # softmax | sigmoid, see nonspeech/models/outputs.py
    augment: AugmentConfig

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from the params section; unknown or missing keys are a ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(d) - names, names - set(d)
        if unknown or missing:
            raise ValueError(f"train params: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        if d["batch_size"] < 2 or d["epochs"] < 1:
            raise ValueError(f"train.batch_size must be >= 2 and train.epochs >= 1, got {d['batch_size']}, {d['epochs']}")
        check_output(d["output"])
        return cls(**{**d, "augment": AugmentConfig.from_dict(d["augment"])})


@dataclass(frozen=True)
class FitResult:
    """The kept weights (best validation epoch, or the last without validation), that epoch's metrics, the history."""

    model_state: dict[str, Tensor]
    epoch: int
    metrics: dict
    history: list[dict[str, float]]


def class_weights(counts: np.ndarray, classes: list[str]) -> Tensor:
    """Inverse-frequency weights n / (classes * n_c); ValueError when a class has no training clips."""
    absent = [name for name, n in zip(classes, counts) if n == 0]
    if absent:
        raise ValueError(f"classes {absent} have no training clips")
    return torch.as_tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)


def seed_epoch(seed: int, device: torch.device, rank: int = 0) -> torch.Generator:
    """Seed torch (and the XLA device) for one epoch; return this rank's augmentation generator, on CUDA when
    training there."""
    torch.manual_seed(seed)
    if device.type == "xla":
        xla.manual_seed(seed)
    return torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed + 104729 * rank)


def epoch_batches(urls: list[str], cfg: TrainConfig, epoch: int, training: bool) -> Iterable[tuple]:
    """Host batches of one epoch: shuffled full batches for training, padded ordered batches for evaluation."""
    pipeline = batch_pipeline(urls, cfg.batch_size, shuffle=training, seed=cfg.seed, epoch=epoch, drop_last=training)
    batches = batch_loader(pipeline, cfg.workers)
    return batches if training else padded(batches, cfg.batch_size)


def prepare_model(
    model_name: str, model_args: dict, weights: str | None, n_outputs: int, cfg: TrainConfig, device: torch.device,
    world: World, bias: Tensor | None = None,
) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The model, initialised from cfg.seed, then from pretrained `weights` when given, its last layer's bias set to
    `bias` when given, on `device`
    (channels_last on CUDA if enabled); the module that trains it (DDP across ranks under torchrun); and that
    module's forward, compiled if enabled. The model itself holds the weights to save."""
    torch.manual_seed(cfg.seed)
    model = build_model(model_name, n_outputs, **model_args)
    if weights:
        load_pretrained(model, model_name, weights)
    if bias is not None:
        with torch.no_grad():
            model.head[-1].bias.copy_(bias)
    model = model.to(device)
    if device.type == "cuda" and cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    trained = data_parallel(model, world, device)
    return model, trained, torch.compile(trained) if cfg.compile else trained


def param_groups(model: nn.Module, lr: float, body_lr_scale: float) -> list[dict]:
    """The model's head at lr and the rest of it (the body) at lr * body_lr_scale."""
    head = {id(p) for p in model.head.parameters()}
    body = [p for p in model.parameters() if id(p) not in head]
    groups = [{"params": [p for p in model.parameters() if id(p) in head], "lr": lr}]
    return groups + ([{"params": body, "lr": lr * body_lr_scale}] if body else [])


def body_batchnorms(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of the model's body (everything outside `model.head`); DDP's wrapper is looked through."""
    model = model.module if isinstance(model, DistributedDataParallel) else model
    head = set(model.head.modules())
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m not in head]


def train_mode(model: nn.Module, freeze_batchnorm: bool) -> None:
    """Put the model in training mode; with freeze_batchnorm its body's BatchNorm layers stay in eval mode, normalising
    with their (pretrained) running statistics and leaving them unchanged. Their affine weights still train."""
    model.train()
    for module in body_batchnorms(model) if freeze_batchnorm else []:
        module.eval()


def train_epoch(
    trained: nn.Module, forward: nn.Module, normalize: nn.Module, mix: Mixer | None, batches: Iterable[tuple],
    criterion: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig, generator: torch.Generator,
    device: torch.device, world: World,
) -> float:
    """One pass of fwd+bwd+step over every rank's batches (backgrounds mixed in first when `mix` is given);
    returns the mean batch loss (one host sync)."""
    train_mode(trained, cfg.freeze_batchnorm)
    total = torch.zeros(2, device=device)  # loss sum, steps
    with uneven_inputs(trained):
        for x, y, _ in batches:
            x = augment(normalize(mix(x, y, generator) if mix else x), cfg.augment, generator)
            with autocast_context(device, cfg.bf16):
                loss = criterion(forward(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if device.type == "xla":
                xla.reduce_gradients(optimizer)  # average across replicas before clipping
            nn.utils.clip_grad_norm_(trained.parameters(), cfg.grad_clip)
            optimizer.step()
            total += torch.stack([loss.detach().float(), torch.ones((), device=device)])
    loss_sum, steps = all_sum(total, world).tolist()
    if steps == 0:
        raise ValueError(f"the training split is smaller than one batch of {cfg.batch_size}; lower train.batch_size")
    return loss_sum / steps


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    """A CPU copy of the model's weights and buffers."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def validate(
    forward: nn.Module, normalize: nn.Module, urls: list[str], classes: list[str], cfg: TrainConfig,
    device: torch.device, world: World,
) -> dict:
    """Loss, accuracy, macro-F1 and per-class scores on the validation shards (model already in eval mode),
    summed over every rank's share of them."""
    batches = on_device(epoch_batches(urls, cfg, 0, training=False), device)
    negative = negative_index(classes)
    sums, _ = evaluate(
        lambda x: forward(normalize(x)), batches, len(classes), device, cfg.bf16, negative=negative, output=cfg.output,
    )
    return summarize(EvalSums(all_sum(sums.loss, world), all_sum(sums.confusion, world)), classes)


def check_same_start(epochs_done: int, world: World, device: torch.device) -> None:
    """RuntimeError unless every rank resumes after the same epoch (their resume states must agree)."""
    done, ranks = all_sum(torch.tensor([epochs_done, 1], device=device), world).tolist()
    if done != epochs_done * ranks:
        raise RuntimeError("ranks found different resume states: keep data/resume on storage every host shares, or delete it")


def mixer(features: dict, classes: list[str], cfg: TrainConfig) -> Mixer | None:
    """The background mixer the augment.background params ask for, or None."""
    if cfg.augment.background is None:
        return None
    low, high, probability = cfg.augment.background
    return background_mixer(features, negative_index(classes), (low, high), probability)


def fit(
    model_name: str, model_args: dict, weights: str | None, classes: list[str], counts: np.ndarray, normalization: dict,
    features: dict, train_urls: list[str], val_urls: list[str], cfg: TrainConfig,
    live_dir: Path, resume_path: Path, run_fingerprint: str, world: World = World(),
) -> FitResult:
    """Train for cfg.epochs, validating on val_urls when given; resumes from resume_path when it matches the run."""
    device = local_device(resolve_device(cfg.device), world)
    negative = negative_index(classes)
    n_outputs = network_outputs(len(classes), cfg.output, negative)
    loss_weights = class_weights(counts, classes)
    bias = prior_logits(loss_weights, counts, negative) if cfg.output == "sigmoid" else None
    model, trained, forward = prepare_model(model_name, model_args, weights, n_outputs, cfg, device, world, bias)
    eval_forward = forward if trained is model else (torch.compile(model) if cfg.compile else model)
    normalize = Normalize(normalization["mean"], normalization["std"]).to(device)
    mix = mixer(features, classes, cfg)
    criterion = weighted_loss(loss_weights.to(device), cfg.output, negative)
    optimizer = torch.optim.AdamW(param_groups(model, cfg.lr, cfg.body_lr_scale), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience,
    )
    history, best = [], None
    state = load_state(resume_path, run_fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best = state["history"], state["best"]
        print(f"resume: continuing after epoch {len(history)} of {cfg.epochs} from {resume_path}")
    check_same_start(len(history), world, device)
    live = open_curves(live_dir, history) if world.is_main else None
    epochs = range(len(history), cfg.epochs)
    for epoch in tqdm(epochs, desc="epochs", initial=len(history), total=cfg.epochs, disable=not world.is_main):
        generator = seed_epoch(cfg.seed * 1000 + epoch, device, world.rank)
        row = {"lr": optimizer.param_groups[0]["lr"]}
        batches = on_device(epoch_batches(train_urls, cfg, epoch, training=True), device)
        row["train/loss"] = train_epoch(
            trained, forward, normalize, mix, batches, criterion, optimizer, cfg, generator, device, world,
        )
        if val_urls:
            model.eval()
            sync_buffers(model, world)
            metrics = validate(eval_forward, normalize, val_urls, classes, cfg, device, world)
            row |= {"val/loss": metrics["loss"], "val/macro_f1": metrics["macro_f1"], "val/accuracy": metrics["accuracy"]}
            if best is None or metrics["macro_f1"] > best["metrics"]["macro_f1"]:
                best = {"epoch": epoch, "metrics": metrics, "model": snapshot(model)}
        scheduler.step(row["val/loss"] if val_urls else row["train/loss"])
        history.append(row)
        if world.is_main:
            log_epoch(live, row)
            save_state(resume_path, {
                "fingerprint": run_fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "history": history, "best": best,
            })
    if world.is_main:
        live.end()
    if best is None:
        return FitResult(snapshot(model), cfg.epochs - 1, history[-1], history)
    return FitResult(best["model"], best["epoch"], best["metrics"], history)
