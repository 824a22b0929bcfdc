"""A training stage end to end: check the inputs, fingerprint the run, fit, write the checkpoint and metrics."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from nonspeech.data.shard_set import check_stats_match, read_meta, shard_set
from nonspeech.devices.distributed import World, join_world, leave_world
from nonspeech.devices.select import resolve_device
from nonspeech.evaluation.holdout import predictions_table, score_checkpoint
from nonspeech.features.normalize import norm_values
from nonspeech.labels import negative_index
from nonspeech.models.checkpoint import make_checkpoint, save_checkpoint
from nonspeech.models.efficientat import load_audioset
from nonspeech.models.outputs import network_outputs
from nonspeech.models.registry import build_model, check_input_fits
from nonspeech.report import print_summary
from nonspeech.training.loop import TrainConfig, fit
from nonspeech.training.resume import clear_state, fingerprint


def nested(row: dict[str, float]) -> dict:
    """{'val/loss': 1.0} -> {'val': {'loss': 1.0}}, the layout of dvclive's summaries."""
    out: dict = {}
    for key, value in row.items():
        *parents, leaf = key.split("/")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return out


def train_and_save(
    shards_root: str | Path, stats_path: Path, train_splits: list[str], val_splits: list[str], stats_key: str,
    model_name: str, model_args: dict, model_weights: str | None, cfg: TrainConfig, checkpoint_path: Path,
    resume_path: Path, decision: dict | None = None,
) -> dict:
    """Train on train_splits (normalised with stats[stats_key]), starting from pretrained model_weights when
    given; keep the best epoch on val_splits or the last without them; write the checkpoint (with the embedding
    body for clip-embedding shards, and `decision` when given: its decision_rule and thresholds), metrics.json, curves and, with
    validation, the kept model's validation predictions.csv beside it (rank 0); return the metrics."""
    start = time.perf_counter()
    world = join_world(resolve_device(cfg.device))
    try:
        metrics = _train_and_save(
            shards_root, stats_path, train_splits, val_splits, stats_key, model_name, model_args, model_weights, cfg,
            checkpoint_path, resume_path, decision, world, start,
        )
    except BaseException:
        leave_world(finished=False)
        raise
    leave_world(finished=True)
    return metrics


def _train_and_save(
    shards_root: str | Path, stats_path: Path, train_splits: list[str], val_splits: list[str], stats_key: str,
    model_name: str, model_args: dict, model_weights: str | None, cfg: TrainConfig, checkpoint_path: Path,
    resume_path: Path, decision: dict | None, world: World, start: float,
) -> dict:
    meta = read_meta(shards_root)
    classes = meta["classes"]
    n_outputs = network_outputs(len(classes), cfg.output, negative_index(classes))
    check_input_fits(model_name, model_args, n_outputs, meta["shape"])
    embedding = meta["features"].get("embedding")
    embedder = load_audioset(embedding["weights"], embedding["width"], embedding["sha256"]) if embedding else None
    stats = json.loads(Path(stats_path).read_text())
    check_stats_match(stats, meta)
    if stats_key not in stats:
        raise ValueError(f"{stats_path} has no entry {stats_key!r}: rerun the stats stage for these folds")
    train_set = shard_set(shards_root, train_splits, classes)
    val_set = shard_set(shards_root, val_splits, classes) if val_splits else None
    normalization = norm_values(stats[stats_key], cfg.normalization)
    run = {  # everything the result depends on: resume only from a state written for the same run
        "model": {"name": model_name, "args": model_args, "weights": model_weights}, "train": dataclasses.asdict(cfg), "meta": meta,
        "normalization": normalization, "splits": [train_splits, val_splits],
        "class_counts": [train_set.class_counts.tolist(), val_set.class_counts.tolist() if val_set else None],
    }
    out_dir = checkpoint_path.parent
    result = fit(
        model_name, model_args, model_weights, classes, train_set.class_counts, normalization, meta["features"],
        train_set.urls, val_set.urls if val_set else [], cfg, out_dir, resume_path, fingerprint(run), world,
    )
    metrics = {"epoch": result.epoch, **nested(result.history[result.epoch])}
    if not world.is_main:
        return metrics
    model = build_model(model_name, n_outputs, **model_args)
    model.load_state_dict(result.model_state)
    checkpoint = make_checkpoint(
        model, model_name, model_args, classes, meta["features"], normalization,
        epoch=result.epoch, output=cfg.output, train=dataclasses.asdict(cfg), train_splits=list(train_splits),
        validation={k: v for k, v in result.metrics.items() if k != "confusion_matrix"} if val_set else None,
        **({"embedder_state": embedder.state_dict()} if embedder else {}),
        **(decision or {}),
    )
    save_checkpoint(checkpoint, checkpoint_path)
    if val_set:
        _, predictions, _ = score_checkpoint(
            checkpoint_path, shards_root, val_splits, "cpu", cfg.batch_size, cfg.workers, bf16=False,
        )
        predictions_table(predictions, classes).to_csv(out_dir / "predictions.csv", index=False)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    clear_state(resume_path)
    print_summary(f"train {checkpoint_path}", {
        "train clips": train_set.samples, "validation clips": val_set.samples if val_set else "none",
        "processes": world.size,
        "epochs": cfg.epochs, "kept epoch": result.epoch,
        **{k.replace("/", " "): round(v, 4) for k, v in result.history[result.epoch].items()},
        "seconds": round(time.perf_counter() - start, 1),
    })
    return metrics
