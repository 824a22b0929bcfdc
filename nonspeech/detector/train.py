"""The detector end to end on a scene set's frame embeddings: one head per CV fold scoring that fold's scenes, the
median filters and thresholds that score best on those out-of-fold scenes, then the shipped head on every fold."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from nonspeech.detector.fit import (
    HeadTraining,
    clip_probabilities,
    column_boundaries,
    column_probabilities,
    column_statistics,
    fit_head,
)
from nonspeech.detector.postprocess import Columns, choose_postprocessing
from nonspeech.evaluation.timeline_inputs import read_reference
from nonspeech.features.frontends import feature_spec
from nonspeech.labels import negative_index
from nonspeech.models.checkpoint import make_checkpoint, save_checkpoint
from nonspeech.models.efficientat import load_audioset
from nonspeech.report import print_summary


def normalised(embeddings: np.ndarray, stats: dict[str, list[float]]) -> np.ndarray:
    """Embeddings (scenes, dims, columns) less the per-dimension mean, over the standard deviation."""
    mean, std = (np.asarray(stats[k], dtype=np.float32)[None, :, None] for k in ("mean", "std"))
    return (embeddings.astype(np.float32) - mean) / np.maximum(std, 1e-6)


def scene_columns(
    names: Iterable[str], probabilities: np.ndarray, boundaries: dict[str, np.ndarray], attrs: dict,
) -> dict[str, Columns]:
    """Scenes by name with their column probabilities (scenes, columns, classes) and boundaries
    (fit.column_boundaries)."""
    return {name: Columns(p, attrs["column_seconds"], attrs["column_start"], attrs["scene_seconds"],
                          {kind: where[k] for kind, where in boundaries.items()})
            for k, (name, p) in enumerate(zip(names, probabilities))}


def save_out_of_fold(path: Path, scored: dict[str, Columns], clips: np.ndarray) -> None:
    """out_of_fold.npz: `scenes` (names), `probabilities` (scenes, columns, classes), `boundary_kinds` (names) and
    `boundaries` (kinds, scenes, columns, classes, 2) of the boundary stacks, and `isolated_clips` (clips, classes)."""
    columns = list(scored.values())
    kinds = list(columns[0].boundaries)
    boundaries = np.stack([[c.boundaries[kind] for c in columns] for kind in kinds]) if kinds else np.zeros(0)
    np.savez_compressed(path, scenes=np.array(list(scored)), probabilities=np.stack([c.probabilities for c in columns]),
                        boundary_kinds=np.array(kinds, dtype=str), boundaries=boundaries, isolated_clips=clips)


def load_out_of_fold(path: Path, attrs: dict) -> tuple[dict[str, Columns], np.ndarray]:
    """The out-of-fold scenes and isolated clips that save_out_of_fold wrote."""
    stored = np.load(path)
    boundaries = dict(zip(stored["boundary_kinds"], stored["boundaries"]))
    return scene_columns(stored["scenes"], stored["probabilities"], boundaries, attrs), stored["isolated_clips"]


def scene_boundaries(group: zarr.Group) -> dict[str, np.ndarray]:
    """frames.zarr's boundary targets by kind (scenes, target classes, columns)."""
    return dict(zip(group.attrs["boundaries"], np.moveaxis(group["boundaries"][:], 1, 0)))


def rows_of(boundaries: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every kind's boundary targets of these scenes (a boolean mask or indices)."""
    return {kind: where[rows] for kind, where in boundaries.items()}


def clips_of(group: zarr.Group, folds: np.ndarray, stats: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """The isolated clips of these CV folds: normalised frame embeddings and clip targets."""
    rows = np.flatnonzero(np.isin(group["clip_folds"][:], folds))
    return normalised(group["clip_embeddings"].oindex[rows], stats), group["clip_targets"].oindex[rows]


def out_of_fold(
    group: zarr.Group, embeddings: np.ndarray, targets: np.ndarray, boundaries: dict[str, np.ndarray],
    scenes: pd.DataFrame, model_args: dict, cfg: HeadTraining, attrs: dict, negative: int | None,
) -> tuple[dict[str, Columns], np.ndarray]:
    """Every CV scene scored by the head trained on the other folds' scenes (and isolated clips), and every isolated
    clip of a CV fold (clip probabilities of frames.zarr's clips; NaN for the test split's)."""
    scored, clip_folds = {}, group["clip_folds"][:]
    clips = np.full((len(clip_folds), targets.shape[1] + (negative is not None)), np.nan, dtype=np.float32)
    folds = sorted(k for k in scenes["fold"].unique() if k >= 0)
    if len(folds) < 2:
        raise ValueError(f"the scene set has {len(folds)} CV fold(s): cross-validation needs at least 2")
    for fold in folds:
        train, held = (scenes["fold"] >= 0) & (scenes["fold"] != fold), scenes["fold"] == fold
        stats = column_statistics(embeddings[train.to_numpy()])
        head = fit_head(model_args, targets.shape[1], normalised(embeddings[train.to_numpy()], stats),
                        targets[train.to_numpy()], rows_of(boundaries, train.to_numpy()), cfg,
                        clips_of(group, np.setdiff1d(folds, [fold]), stats))
        held_embeddings = normalised(embeddings[held.to_numpy()], stats)
        scored |= scene_columns(scenes["scene"][held], column_probabilities(head, held_embeddings, negative),
                                column_boundaries(head, held_embeddings, negative), attrs)
        rows = np.flatnonzero(clip_folds == fold)
        clips[rows] = clip_probabilities(head, normalised(group["clip_embeddings"].oindex[rows], stats), negative)
    return scored, clips


def train_detector(
    scenes_dir: Path, frames_path: Path, classes: list[str], model_args: dict, cfg: HeadTraining,
    median_filters: list[float], precision: float, hops: int, hysteresis: float, boundary_radius: dict[str, int],
    out_dir: Path,
) -> dict[str, object]:
    """Write out_dir/model.pt (the head on every CV fold's scenes, with the frozen body, normalisation, per-class
    thresholds and median filters chosen out of fold, at segment precision `precision` where they can, for timelines
    at a hop of 1 / hops column and this hysteresis, and with boundary stacks, events' starts and ends moved to the
    likeliest onset and offset within boundary_radius[kind] columns) and out_dir/out_of_fold.npz (save_out_of_fold:
    the CV scenes and isolated clips scored out of fold)."""
    if hops < 1:
        raise ValueError(f"detector hops_per_column {hops}: must be at least 1 (one span per column)")
    start = time.perf_counter()
    group = zarr.open_group(frames_path, mode="r")
    attrs = dict(group.attrs)
    embeddings, targets, boundaries = group["embeddings"][:], group["targets"][:], scene_boundaries(group)
    if model_args.get("dims") != embeddings.shape[1]:
        raise ValueError(f"detector model.dims {model_args.get('dims')}: the frames have {embeddings.shape[1]} per column "
                         "(384 per frequency bin kept, body.frequency; 527 more with body.tags)")
    unplaced = sorted(set(model_args.get("boundaries", ())) - set(boundary_radius))
    if unplaced:
        raise ValueError(f"model.boundaries {unplaced}: boundary_radius gives them no radius")
    scenes = pd.read_csv(scenes_dir / "scenes.csv")
    reference = read_reference(scenes_dir / "events.csv")
    scored, clips = out_of_fold(group, embeddings, targets, boundaries, scenes, model_args, cfg, attrs,
                                negative_index(classes))
    thresholds, median_seconds, f1 = choose_postprocessing(scored, reference, classes, median_filters, precision, hops,
                                                     hysteresis)
    training = (scenes["fold"] >= 0).to_numpy()
    stats = column_statistics(embeddings[training])
    head = fit_head(model_args, targets.shape[1], normalised(embeddings[training], stats), targets[training],
                    rows_of(boundaries, training), cfg,
                    clips_of(group, scenes.loc[training, "fold"].unique(), stats))
    embedding = attrs["embedding"]
    features = {**feature_spec("efficientat", 32000, embedding["window_seconds"], {}), "embedding": embedding}
    body = load_audioset(embedding["weights"], embedding["width"], embedding["sha256"])
    checkpoint = make_checkpoint(
        head, "frame_head", model_args, classes, features, {"mode": "per_bin", **stats},
        output="sigmoid", decision_rule="probability", thresholds=thresholds, median_seconds=median_seconds,
        column_seconds=attrs["column_seconds"], hops_per_column=hops, hysteresis=hysteresis,
        embedder_state=body.state_dict(),
        boundary_radius={kind: boundary_radius[kind] for kind in head.boundary_heads},
        train={"model": model_args, **vars(cfg)},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, out_dir / "model.pt")
    save_out_of_fold(out_dir / "out_of_fold.npz", scored, clips)
    summary = {
        "CV scenes": len(scored), "out-of-fold segment F1": ", ".join(f"{k} {v:.2f}" for k, v in f1.items()),
        "thresholds": ", ".join(f"{k} {v:.2f}" for k, v in thresholds.items()),
        "median filters (s)": ", ".join(f"{k} {v:g}" for k, v in median_seconds.items()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print_summary(f"detector {out_dir / 'model.pt'}", summary)
    return summary
