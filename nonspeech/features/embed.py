"""Clip embeddings of the feature store by a frozen AudioSet-pretrained body, into a zarr store of their own.

Besides the clip as recorded (view 0), each clip can get noisy views: the clip delayed by up to half its window
and a non-target clip of its own fold (the test split's for test clips) added at a random signal-to-background
ratio, as mel powers. Training picks one view per clip at random; validation and test read view 0. So the
frozen body sees targets in noise, as `predict --window` sees them in long recordings.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import zarr

from nonspeech.data.clip_arrays import CHUNK_CLIPS, create_clip_array
from nonspeech.features.frontends import power_domain
from nonspeech.features.mixing import add_at_snr, delay
from nonspeech.models.efficientat import file_sha256, load_audioset
from nonspeech.models.embedding import AudioSetEmbedder
from nonspeech.models.fused import for_inference
from nonspeech.report import print_summary

BATCH = 16
MAX_DELAY = 0.5  # noisy views delay the clip by up to this fraction of the window


def embedding_spec(weights: Path, width: float, tags: bool, dims: int) -> dict:
    """What identifies the embeddings: the body's width, its weights file (path and SHA-256), tags, dimensions."""
    return {"model": "efficientat", "width": width, "weights": str(weights), "sha256": file_sha256(weights), "tags": tags, "dims": dims}


def plan_views(
    pool_of_row: np.ndarray, is_negative: np.ndarray, views: int, snr_db: tuple[float, float], frames: int, seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background rows, signal-to-background ratios (dB) and delays (frames) of each clip's noisy views, each
    (clips, views); a clip's backgrounds are negatives of its own pool (CV fold, or -1 for the test split)."""
    if not is_negative.any():
        raise ValueError("noisy views mix non-target clips into the clips, but there are none: set data.negatives, "
                         "or the embed stage's views.count to 0")
    rng = np.random.default_rng(seed)
    backgrounds = np.zeros((len(pool_of_row), views), dtype=np.int64)
    for pool in np.unique(pool_of_row):
        rows = np.flatnonzero(pool_of_row == pool)
        candidates = np.flatnonzero(is_negative & (pool_of_row == pool))
        if len(candidates) == 0:
            where = "the test split" if pool < 0 else f"CV fold {pool}"
            raise ValueError(f"{where} has no non-target clips (data.negatives) to mix into its clips' noisy views")
        backgrounds[rows] = rng.choice(candidates, size=(len(rows), views))
    snr = rng.uniform(*snr_db, size=backgrounds.shape).astype(np.float32)
    delays = rng.integers(0, int(frames * MAX_DELAY) + 1, size=backgrounds.shape)
    return backgrounds, snr, delays


def noisy_views(
    block: torch.Tensor, backgrounds: torch.Tensor, snr: torch.Tensor, delays: torch.Tensor, spec: dict,
) -> torch.Tensor:
    """Features (B, bins, frames) of clips delayed by delays (B,) with backgrounds (B, bins, frames) at snr (B,) dB."""
    to_power, from_power = power_domain(spec)
    return from_power(add_at_snr(delay(to_power(block), delays), to_power(backgrounds), snr))


def compute_embeddings(
    features_path: Path, out_path: Path, weights: Path, width: float, tags: bool,
    views: int = 0, pool_of_row: np.ndarray | None = None, is_negative: np.ndarray | None = None,
    snr_db: tuple[float, float] = (0.0, 20.0), seed: int = 0,
) -> dict[str, object]:
    """Write (clips, dims, 1 + views) float32 embeddings of efficientat features: view 0 the clip as recorded, then
    `views` noisy views (see the module docstring; pool_of_row and is_negative say where backgrounds come from).
    The attributes are the features' spec plus `embedding`, so everything downstream knows what it holds."""
    start = time.perf_counter()
    features = zarr.open_array(features_path, mode="r")
    spec = {k: v for k, v in features.attrs.items() if k != "versions"}
    if spec.get("frontend") != "efficientat":
        raise ValueError(
            f"{features_path} holds {spec.get('frontend', 'logmel')} features, but the pretrained body reads the "
            "efficientat front end: set features.frontend: efficientat"
        )
    embedder = for_inference(AudioSetEmbedder(load_audioset(weights, width), tags))
    n_clips = features.shape[0]
    if views:
        plan = [torch.from_numpy(a) for a in plan_views(pool_of_row, is_negative, views, snr_db, features.shape[2], seed)]
        negative_rows = np.flatnonzero(is_negative)
        negatives = torch.from_numpy(features.get_orthogonal_selection((negative_rows,)).astype(np.float32))
        position = torch.from_numpy(np.searchsorted(negative_rows, plan[0].numpy()))
    attrs = {
        **spec, "embedding": {**embedding_spec(weights, width, tags, embedder.dims), "views": views},
        "versions": {p: version(p) for p in ("torch", "numpy", "zarr")},
    }
    out = create_clip_array(out_path, (n_clips, embedder.dims, 1 + views), "float32", attrs)

    def embed(clips: torch.Tensor) -> torch.Tensor:
        return torch.cat([embedder(part) for part in clips.split(BATCH)])

    with torch.inference_mode():
        for lo in range(0, n_clips, CHUNK_CLIPS):
            block = torch.from_numpy(features[lo:lo + CHUNK_CLIPS].astype(np.float32))
            hi = lo + len(block)
            columns = [embed(block)] + [
                embed(noisy_views(block, negatives[position[lo:hi, v]], plan[1][lo:hi, v], plan[2][lo:hi, v], spec))
                for v in range(views)
            ]
            out[lo:hi] = torch.cat(columns, dim=2).numpy()
    seconds = time.perf_counter() - start
    summary = {
        "clips": n_clips, "views": 1 + views, "dims": embedder.dims, "weights": str(weights), "seconds": round(seconds, 1),
        "embeddings/s": round(n_clips * (1 + views) / max(seconds, 1e-9)),
    }
    print_summary("embed", summary)
    return summary
