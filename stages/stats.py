"""Stage stats: exact normalisation statistics for each fold's training set and the full training set."""

import json
from pathlib import Path

import pandas as pd
import zarr
from common import fold_of_row, run

from nonspeech.features.stats import fold_statistics


def main(params: dict) -> None:
    folds = fold_of_row(pd.read_csv("data/ingest/manifest.csv"))
    features = zarr.open_array(params["inputs"], mode="r")
    stats = fold_statistics(features, folds, list(params["cv"]["fold_ids"]))
    stats["features"] = {k: v for k, v in features.attrs.items() if k != "versions"}
    Path("data/stats").mkdir(parents=True, exist_ok=True)
    Path("data/stats/stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(f"\n== stats ==\n  full training set: mean {stats['full']['mean']:.3f}, std {stats['full']['std']:.3f}")


if __name__ == "__main__":
    run(main)
