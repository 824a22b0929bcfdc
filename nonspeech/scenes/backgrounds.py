"""Background recordings from a folder (data a user brings: their own room noise), every file accounted for: decoded
and resampled, or listed with the reason in a report."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from nonspeech.data.audio import AudioError, decode_mono, resample
from nonspeech.data.files import find_audio

REPORT = "background_quarantine.csv"


def read_backgrounds(folder: Path, rate: int, report_dir: Path) -> list[np.ndarray]:
    """Every audio file below `folder` at `rate`; unusable ones get one `warning:` line each and a row of
    report_dir/background_quarantine.csv (path, reason); ValueError when no file is usable."""
    files, unusable = find_audio([folder])
    pieces, skipped = [], [(path, reason) for path, reason in unusable if path != str(folder)]
    for path in files:
        try:
            decoded = decode_mono(path)
            pieces.append(resample(decoded.samples, decoded.sample_rate, rate))
        except AudioError as exc:
            skipped.append((str(path), str(exc)))
    for path, reason in skipped:
        print(f"warning: {path}: {reason}; not used as a background", file=sys.stderr)
    report_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(report_dir / REPORT, index=False)
    if not pieces:
        raise ValueError(f"scene backgrounds: {folder} holds no usable audio (a folder of background recordings, or "
                         "the data.negatives folder to use each pool's own non-target clips)")
    return pieces
