"""A detector's scene set: scenes synthesised per pool (each CV fold from its own clips, the test split from its own),
so that no clip is heard on both sides of a split; written as a waveform store, a scene table and an annotation."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from nonspeech.data.audio import load_clips
from nonspeech.data.clip_arrays import CHUNK_CLIPS, create_waveforms, to_pcm16
from nonspeech.labels import NEGATIVE
from nonspeech.report import print_summary
from nonspeech.scenes.synthesis import (
    SceneParams,
    active_part,
    background,
    plan_events,
    render,
    trailing_silence_trimmed,
)

SCENE_COLUMNS = ("scene", "pool", "fold")
EVENT_COLUMNS = ("scene", "onset", "offset", "label", "source", "source_path", "source_offset", "duration", "snr")


def pool_name(fold: int) -> str:
    """fold<K> for a CV fold, test for the test split (fold -1)."""
    return "test" if fold < 0 else f"fold{fold}"


def pool_backgrounds(
    waves: np.ndarray, labels: np.ndarray, rows: np.ndarray, shared: list[np.ndarray] | None, seconds: float,
    rate: int, where: str,
) -> list[np.ndarray]:
    """The background pieces of a pool: `shared` (a data.backgrounds folder) when given, else the pool's own
    non-target clips; ValueError when there are none or they hold less than one scene."""
    pieces = shared if shared is not None else [
        trailing_silence_trimmed(waves[i]) for i in rows if labels[i] == NEGATIVE]
    pieces = [p for p in pieces if len(p)]
    origin = "data.backgrounds" if shared is not None else f"the non-target clips (data.negatives) of {where}"
    total = sum(len(p) for p in pieces) / rate
    if total < seconds:
        raise ValueError(f"scene backgrounds: {origin} hold {total:.1f} s of audio, less than one "
                         f"{seconds:g} s scene")
    return pieces


def write_block(store: tuple[zarr.Array, zarr.Array], first: int, audio: list[np.ndarray]) -> None:
    """Scenes first.. of a waveform store (pcm, peak) from float waveforms."""
    pcm, peak = to_pcm16(np.stack(audio))
    store[0][first:first + len(audio)], store[1][first:first + len(audio)] = pcm, peak


def synthesise_scenes(
    manifest: pd.DataFrame, rate: int, clip_seconds: float, fold_of_row: np.ndarray, params: SceneParams,
    shared_backgrounds: list[np.ndarray] | None, out_dir: Path,
) -> dict[str, object]:
    """Write params.count scenes per pool to out_dir from the manifest's clips (decoded at `rate`, clip_seconds
    long): waveforms.zarr (scenes of params.seconds), scenes.csv (scene, pool, fold) and events.csv (scene, onset,
    offset, label, source clip and its file, offset into it, duration, event-to-background ratio in dB), writing a
    chunk of scenes at a time."""
    start = time.perf_counter()
    waves = load_clips(list(manifest["file"]), rate, int(round(rate * clip_seconds)))
    labels = manifest["label"].to_numpy().astype(str)
    parts = np.array([active_part(w, rate, params.max_event_seconds) for w in waves])
    length = int(round(params.seconds * rate))
    pools = sorted(set(fold_of_row.tolist()), key=lambda k: (k < 0, k))
    out_dir.mkdir(parents=True, exist_ok=True)
    store = create_waveforms(out_dir / "waveforms.zarr", len(pools) * params.count, length,
                             {"sample_rate": rate, "seconds": params.seconds})
    scenes, events, audio = [], [], []
    for fold in pools:
        rows = np.flatnonzero((fold_of_row == fold) & (parts[:, 1] > 0))
        pool = pool_name(fold)
        pieces = pool_backgrounds(waves, labels, rows, shared_backgrounds, params.seconds, rate, pool)
        rng = np.random.default_rng([params.seed, fold + 1])
        for k in range(params.count):
            placed = [replace(p, source=int(rows[p.source])) for p in plan_events(params, parts[rows], labels[rows], rate, rng)]
            audio.append(render(placed, waves, background(pieces, length, rate, params.background_dbfs, rng)))
            scenes.append((f"{pool}_{k:05d}", pool, fold))
            events += [(scenes[-1][0], p.onset / rate, (p.onset + p.length) / rate, p.label,
                        manifest["clip_id"].iat[p.source], manifest["path"].iat[p.source], p.offset / rate,
                        p.length / rate, p.snr) for p in placed]
            if len(audio) == CHUNK_CLIPS or len(scenes) == store[0].shape[0]:  # a whole chunk at a time
                write_block(store, len(scenes) - len(audio), audio)
                audio = []
    pd.DataFrame(scenes, columns=SCENE_COLUMNS).to_csv(out_dir / "scenes.csv", index=False)
    table = pd.DataFrame(events, columns=EVENT_COLUMNS).round(4)
    table.to_csv(out_dir / "events.csv", index=False)
    summary = {
        "scenes": len(scenes), "seconds each": params.seconds, "events": len(events),
        "target events": int((table["label"] != NEGATIVE).sum()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print_summary("scenes", summary)
    return summary
