"""Stage features: front-end features (log-mels) of every ingested clip into a zarr store."""

from pathlib import Path

from common import run

from nonspeech.features.compute import compute_features


def main(params: dict) -> None:
    f = params["features"]
    compute_features(
        Path("data/ingest/waveforms.zarr"), Path("data/features/logmel.zarr"), f["frontend"], f, f["workers"],
    )


if __name__ == "__main__":
    run(main)
