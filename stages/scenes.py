"""Stage scenes@NAME: synthesise detector NAME's scenes with strong labels, each CV fold's from its own clips and the
test split's from its own, onto backgrounds (the pools' own non-target clips, or a folder of background recordings)."""

import sys
from pathlib import Path

import pandas as pd
from common import fold_of_row, run
from detectors import detector_name

from nonspeech.scenes.backgrounds import read_backgrounds
from nonspeech.scenes.scene_set import synthesise_scenes
from nonspeech.scenes.synthesis import SceneParams


def main(params: dict) -> None:
    name = detector_name(params, sys.argv)
    spec, out = params["detector"][name], Path(f"data/detector/{name}")
    scenes = SceneParams.from_dict(spec["scenes"])
    own = Path(spec["backgrounds"]).resolve() == Path(params["data"]["negatives"]).resolve()
    shared = None if own else read_backgrounds(Path(spec["backgrounds"]), params["audio"]["sample_rate"], out / "scenes")
    manifest = pd.read_csv("data/ingest/manifest.csv")
    audio = params["audio"]
    synthesise_scenes(manifest, audio["sample_rate"], audio["seconds"], fold_of_row(manifest), scenes, shared,
                      out / "scenes")


if __name__ == "__main__":
    run(main)
