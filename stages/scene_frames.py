"""Stage scene_frames@NAME: frame embeddings of detector NAME's scenes by the frozen pretrained body, with each
column's strong labels, and of the ingested clips, with their clip labels."""

import json
import sys
from pathlib import Path

import pandas as pd
from common import fold_of_row, run
from detectors import detector_name

from nonspeech.scenes.frames import compute_frames


def main(params: dict) -> None:
    name = detector_name(params, sys.argv)
    body, out = params["detector"][name]["body"], Path(f"data/detector/{name}")
    manifest = pd.read_csv("data/ingest/manifest.csv")
    compute_frames(out / "scenes", manifest, fold_of_row(manifest),
                   json.loads(Path("data/ingest/classes.json").read_text()), Path(body["weights"]), body["width"],
                   body["tags"], body["time_stride"], body["frequency"], params["audio"]["seconds"], out / "frames.zarr")


if __name__ == "__main__":
    run(main)
