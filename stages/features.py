"""Stage features: front-end features (log-mels) of every ingested clip into a zarr store."""

from pathlib import Path

import pandas as pd
from common import run

from nonspeech.features.compute import compute_features


def main(params: dict) -> None:
    f, audio = params["features"], params["audio"]
    compute_features(
        list(pd.read_csv("data/ingest/manifest.csv")["file"]), audio["sample_rate"], audio["seconds"],
        Path("data/features/logmel.zarr"), f["frontend"], f, f["workers"],
    )


if __name__ == "__main__":
    run(main)
