"""Frame embeddings of a scene set by the frozen AudioSet body, with strong labels at the body's column rate: per
scene the body's columns (dims, columns), each target class's share of every column that its events cover, and
where in a column each event begins and ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import zarr

from nonspeech.data.audio import load_clips
from nonspeech.data.clip_arrays import CHUNK_CLIPS, create_clip_array, from_pcm16, open_waveforms
from nonspeech.events import BOUNDARIES
from nonspeech.features.efficientat_mel import SAMPLE_RATE, EfficientATMel
from nonspeech.features.embed import embedding_spec
from nonspeech.inference.feature_map import column_grid
from nonspeech.labels import NEGATIVE
from nonspeech.models.efficientat import finer_time, load_audioset, localise_gates
from nonspeech.models.embedding import AudioSetEmbedder
from nonspeech.models.fused import for_inference
from nonspeech.report import print_summary

BATCH = 4


def frame_embedder(
    weights: Path, width: float, tags: bool, time_stride: int, frequency: str, window_seconds: float,
    frontend: EfficientATMel,
) -> AudioSetEmbedder:
    """The frozen body giving column embeddings of time_stride frames, its map averaged over frequency or each bin
    kept (`frequency`: mean, bins; with `tags`, each column's AudioSet probabilities too), its squeeze-excitation
    gates over the window_seconds centred on each column (as in a window of that length alone): what training and
    `predict --window` both run."""
    network = finer_time(load_audioset(weights, width), time_stride)
    embedder = for_inference(AudioSetEmbedder(network, tags, frames=True, frequency=frequency))
    probe = torch.zeros(1, int(round(window_seconds * SAMPLE_RATE)))
    with torch.inference_mode():
        localise_gates(embedder, lambda: embedder(frontend(probe)))
    return embedder


def column_seconds(embedder: AudioSetEmbedder, frontend: EfficientATMel) -> tuple[float, float]:
    """Length of one column and where column 0 begins, in seconds."""
    hop = frontend.stft.hop_length / SAMPLE_RATE
    stride, phase = column_grid(lambda x: embedder.network.feature_map(x), frontend.fb.shape[1])
    return stride * hop, phase * hop


def frame_targets(events: pd.DataFrame, targets: list[str], columns: int, length: float, start: float) -> np.ndarray:
    """(targets, columns): the share of each column [start + j length, start + (j + 1) length) covered by events
    (onset, offset, label) of each target class; other labels cover nothing."""
    edges = start + length * np.arange(columns + 1)
    share = np.zeros((len(targets), columns), dtype=np.float32)
    for onset, offset, label in events[["onset", "offset", "label"]].itertuples(index=False):
        if label in targets:
            overlap = np.clip(np.minimum(edges[1:], offset) - np.maximum(edges[:-1], onset), 0, None)
            share[targets.index(label)] += overlap / length
    return np.clip(share, 0.0, 1.0)


def boundary_targets(
    events: pd.DataFrame, kind: str, targets: list[str], columns: int, length: float, start: float,
) -> np.ndarray:
    """(targets, columns): where in each column [start + j length, start + (j + 1) length) an event of each target
    class has its boundary `kind` (the events' column of that name: onset or offset), as the fraction of the column
    before it; NaN where none has (the last, if several)."""
    where = np.full((len(targets), columns), np.nan, dtype=np.float32)
    for at, label in events[[kind, "label"]].itertuples(index=False):
        column = int(np.floor((at - start) / length))
        if label in targets and 0 <= column < columns:
            where[targets.index(label), column] = (at - start) / length - column
    return where


def embed_into(out: zarr.Array, blocks: Iterator[np.ndarray], embedder: AudioSetEmbedder, frontend: EfficientATMel) -> None:
    """Fill `out` (items, dims, columns) with the frame embeddings of consecutive blocks of waveforms (items, samples)."""
    lo = 0
    with torch.inference_mode():
        for waves in blocks:
            out[lo:lo + len(waves)] = torch.cat([embedder(frontend(part)) for part in torch.from_numpy(waves).split(
                BATCH)]).numpy().astype(np.float16)
            lo += len(waves)


def clip_targets(labels: pd.Series, targets: list[str]) -> np.ndarray:
    """(clips, targets) weak labels: 1 for the clip's class, none for a non-target clip."""
    return np.stack([[float(label == t) for t in targets] for label in labels]).astype(np.float16)


def compute_frames(
    scenes_dir: Path, manifest: pd.DataFrame, fold_of_row: np.ndarray, classes: list[str], weights: Path,
    width: float, tags: bool, time_stride: int, frequency: str, window_seconds: float, out_path: Path,
) -> dict[str, object]:
    """Write out_path, a zarr group: `embeddings` (scenes, dims, columns) float16 and `targets` (scenes, target
    classes, columns) float16, the strong labels; `boundaries` (scenes, boundary kinds, target classes, columns)
    float16, where events begin and end (boundary_targets of the kinds in events.BOUNDARIES); `clip_embeddings`
    (clips, dims, columns) of the manifest's clips (window_seconds long), `clip_targets` (clips, target classes), their weak labels, and `clip_folds` (clips,),
    each clip's CV fold (-1: test); with the embedding spec, the column length and start, and the targets' and
    boundary kinds' names."""
    start = time.perf_counter()
    pcm, peak, stored = open_waveforms(scenes_dir / "waveforms.zarr")
    files, clip_length = list(manifest["file"]), int(round(SAMPLE_RATE * window_seconds))
    scenes = pd.read_csv(scenes_dir / "scenes.csv")
    events = pd.read_csv(scenes_dir / "events.csv")
    frontend = EfficientATMel()
    embedder = frame_embedder(weights, width, tags, time_stride, frequency, window_seconds, frontend)
    length, first = column_seconds(embedder, frontend)
    targets = [c for c in classes if c != NEGATIVE]
    with torch.inference_mode():
        columns = embedder(frontend(torch.zeros(1, pcm.shape[1]))).shape[-1]
        clip_columns = embedder(frontend(torch.zeros(1, clip_length))).shape[-1]
    spec = embedding_spec(weights, width, tags, embedder.dims)
    attrs = {
        "embedding": {**spec, "frames": True, "time_stride": time_stride, "frequency": frequency,
                      "window_seconds": window_seconds},
        "column_seconds": length, "column_start": first, "targets": targets, "scene_seconds": stored["seconds"],
        "boundaries": list(BOUNDARIES),
        "versions": {p: version(p) for p in ("torch", "numpy", "zarr")},
    }
    zarr.open_group(out_path, mode="w", attributes=attrs)
    scene_blocks = (from_pcm16(pcm[lo:lo + CHUNK_CLIPS], peak[lo:lo + CHUNK_CLIPS]) for lo in range(0, len(scenes), CHUNK_CLIPS))
    clip_blocks = (load_clips(files[lo:lo + CHUNK_CLIPS], SAMPLE_RATE, clip_length) for lo in range(0, len(files), CHUNK_CLIPS))
    embed_into(create_clip_array(out_path / "embeddings", (len(scenes), embedder.dims, columns), "float16", {}),
               scene_blocks, embedder, frontend)
    embed_into(create_clip_array(out_path / "clip_embeddings", (len(manifest), embedder.dims, clip_columns), "float16",
                                 {}), clip_blocks, embedder, frontend)
    by_scene = dict(tuple(events.groupby("scene")))
    create_clip_array(out_path / "targets", (len(scenes), len(targets), columns), "float16", {})[:] = np.stack([
        frame_targets(by_scene.get(name, events.iloc[:0]), targets, columns, length, first) for name in scenes["scene"]
    ]).astype(np.float16)
    create_clip_array(out_path / "boundaries", (len(scenes), len(BOUNDARIES), len(targets), columns), "float16",
                      {})[:] = np.stack([
        [boundary_targets(by_scene.get(name, events.iloc[:0]), kind, targets, columns, length, first) for kind in BOUNDARIES]
        for name in scenes["scene"]]).astype(np.float16)
    create_clip_array(out_path / "clip_targets", (len(manifest), len(targets)), "float16", {})[:] = clip_targets(
        manifest["label"], targets)
    create_clip_array(out_path / "clip_folds", (len(manifest),), "int16", {})[:] = fold_of_row.astype(np.int16)
    seconds = time.perf_counter() - start
    summary = {
        "scenes": len(scenes), "clips": len(manifest), "columns": f"{columns} of {length:.2f} s", "dims": embedder.dims,
        "seconds": round(seconds, 1),
    }
    print_summary("scene frames", summary)
    return summary
