"""Stage embed@NAME: clip embeddings of the features by the frozen pretrained body configured as embed.NAME, with
its noisy views (negatives of the clip's own fold mixed in)."""

import sys
from pathlib import Path

import pandas as pd
from common import fold_of_row, run

from nonspeech.features.embed import compute_embeddings
from nonspeech.labels import NEGATIVE

NO_VIEWS = {"count": 0, "snr_low": 0.0, "snr_high": 0.0, "seed": 0}  # an embed entry without `views:`


def main(params: dict) -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in params["embed"]:
        raise ValueError(f"usage: python stages/embed.py NAME, NAME one of embed: {sorted(params['embed'])}")
    name = sys.argv[1]
    spec = params["embed"][name]
    views = spec.get("views", NO_VIEWS)
    manifest = pd.read_csv("data/ingest/manifest.csv")
    compute_embeddings(
        Path("data/features/logmel.zarr"), Path(f"data/embed/{name}.zarr"), Path(spec["weights"]), spec["width"],
        spec["tags"], views["count"], fold_of_row(manifest), (manifest["label"] == NEGATIVE).to_numpy(),
        (views["snr_low"], views["snr_high"]), views["seed"],
    )


if __name__ == "__main__":
    run(main)
