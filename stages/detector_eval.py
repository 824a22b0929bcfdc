"""Stage detector_eval@NAME: detector NAME scored by sed_eval on its out-of-fold and test scenes, and on the isolated
clips (test, and CV out of fold)."""

import json
import sys
from pathlib import Path

import pandas as pd
from common import run
from detectors import detector_name

from nonspeech.detector.evaluate import evaluate_detector
from nonspeech.models.checkpoint import load_checkpoint


def main(params: dict) -> None:
    name = detector_name(params, sys.argv)
    out = Path(f"data/detector/{name}")
    metrics = evaluate_detector(load_checkpoint(out / "model.pt"), out / "scenes", out / "frames.zarr",
                                out / "out_of_fold.npz", pd.read_csv("data/ingest/manifest.csv"))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")


if __name__ == "__main__":
    run(main)
