"""Stage shards: webdataset tar shards per fold and for the test split."""

import json
from pathlib import Path

import pandas as pd
from common import run

from nonspeech.data.shards import write_shards


def main(params: dict) -> None:
    write_shards(
        Path(params["inputs"]), pd.read_csv("data/ingest/manifest.csv"),
        pd.read_csv("data/folds/folds.csv"), json.loads(Path("data/ingest/classes.json").read_text()),
        Path("data/shards"), params["shards"]["shards_per_split"], params["cv"]["seed"],
    )


if __name__ == "__main__":
    run(main)
