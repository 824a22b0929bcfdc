"""Stage detector@NAME: a head per CV fold on the other folds' scene frames, per-class median filters and thresholds
chosen on the out-of-fold scenes, then the shipped detector trained on every fold."""

import json
import sys
from pathlib import Path

from common import run
from detectors import detector_name

from nonspeech.detector.fit import HeadTraining
from nonspeech.detector.train import train_detector


def main(params: dict) -> None:
    name = detector_name(params, sys.argv)
    spec, out = params["detector"][name], Path(f"data/detector/{name}")
    train_detector(out / "scenes", out / "frames.zarr", json.loads(Path("data/ingest/classes.json").read_text()),
                   spec["model"], HeadTraining.from_dict(spec["train"]), spec["median_filters"],
                   spec["precision"], spec["hops_per_column"], spec["hysteresis"], spec["boundary_radius"], out)


if __name__ == "__main__":
    run(main)
