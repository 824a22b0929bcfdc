"""Clip embeddings of the feature store by a frozen AudioSet-pretrained body, into a zarr store of their own."""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path

import torch
import zarr
from zarr.codecs import BloscCodec

from nonspeech.models.efficientat import file_sha256, load_audioset
from nonspeech.models.embedding import AudioSetEmbedder
from nonspeech.models.inference import for_inference
from nonspeech.report import print_summary

CHUNK_CLIPS = 256
BATCH = 16


def embedding_spec(weights: Path, width: float, tags: bool, dims: int) -> dict:
    """What identifies the embeddings: the body's width, its weights file (path and SHA-256), tags, dimensions."""
    return {"model": "efficientat", "width": width, "weights": str(weights), "sha256": file_sha256(weights), "tags": tags, "dims": dims}


def compute_embeddings(features_path: Path, out_path: Path, weights: Path, width: float, tags: bool) -> dict[str, object]:
    """Write (clips, dims, 1) float32 embeddings of efficientat features; the attributes are the features' spec
    plus `embedding`, so the shards, stats and checkpoints downstream know what they hold."""
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
    attrs = {
        **spec, "embedding": embedding_spec(weights, width, tags, embedder.dims),
        "versions": {p: version(p) for p in ("torch", "numpy", "zarr")},
    }
    out = zarr.create_array(
        store=out_path, shape=(n_clips, embedder.dims, 1), chunks=(CHUNK_CLIPS, embedder.dims, 1), dtype="float32",
        compressors=BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"), overwrite=True, attributes=attrs,
    )
    with torch.inference_mode():
        for lo in range(0, n_clips, CHUNK_CLIPS):
            block = torch.from_numpy(features[lo:lo + CHUNK_CLIPS])
            out[lo:lo + len(block)] = torch.cat([embedder(part) for part in block.split(BATCH)]).numpy()
    seconds = time.perf_counter() - start
    summary = {
        "clips": n_clips, "dims": embedder.dims, "weights": str(weights), "seconds": round(seconds, 1),
        "clips/s": round(n_clips / max(seconds, 1e-9)),
    }
    print_summary("embed", summary)
    return summary
