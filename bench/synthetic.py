"""Synthetic wav files for the benchmarks: noise-and-tone clips at mixed rates and channel counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

RATES = (16000, 22050, 44100, 48000)


def write_wavs(out_dir: Path, n_clips: int, seconds: float, seed: int = 0) -> pd.DataFrame:
    """Write n_clips wavs of `seconds` seconds; return a clip table (path, label, group, split, source) as ingest
    takes it."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_clips):
        rate, channels = RATES[i % len(RATES)], 1 + (i % 3 == 0)
        t = np.arange(int(rate * seconds)) / rate
        tone = np.sin(2 * np.pi * rng.uniform(100, 2000) * t)[:, None]
        audio = 0.3 * tone + 0.05 * rng.standard_normal((len(t), channels))
        path = out_dir / f"clip{i:05d}.wav"
        sf.write(path, audio.astype(np.float32), rate, subtype="PCM_16")
        rows.append({"path": str(path), "label": f"class{i % 7}", "group": f"g{i}", "split": "train", "source": "folder"})
    return pd.DataFrame(rows)
