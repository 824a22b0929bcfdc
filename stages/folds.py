"""Stage folds: assign grouped, stratified cross-validation folds to the training clips."""

from pathlib import Path

import pandas as pd
from common import run

from nonspeech.data.folds import assign_folds, fold_counts


def main(params: dict) -> None:
    cv = params["cv"]
    if list(cv["fold_ids"]) != list(range(cv["folds"])):
        raise ValueError(f"cv.fold_ids {cv['fold_ids']} must be {list(range(cv['folds']))} for cv.folds={cv['folds']}")
    folds = assign_folds(pd.read_csv("data/ingest/manifest.csv"), cv["folds"], cv["seed"])
    Path("data/folds").mkdir(parents=True, exist_ok=True)
    folds.to_csv("data/folds/folds.csv", index=False)
    print("\n== folds (clips per class and fold) ==")
    print(fold_counts(folds).to_string())


if __name__ == "__main__":
    run(main)
