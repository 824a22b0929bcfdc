"""Stage train_cv@K: train on every fold but K, keep the epoch with the best macro-F1 on fold K."""

import sys
from functools import partial
from pathlib import Path

from common import checkpoint_of, resume_path, run
from launch import launch

from nonspeech.training.loop import TrainConfig
from nonspeech.training.run import train_and_save

USAGE = "usage: python stages/train_cv.py FOLD   (FOLD: an entry of cv.fold_ids; `dvc repro train_cv@FOLD` runs it)"


def fold_argument(argv: list[str]) -> int:
    """The fold number given on the command line; a usage line and exit status 2 otherwise."""
    if len(argv) != 2 or not argv[1].isdigit():
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    return int(argv[1])


def main(params: dict, fold: int) -> None:
    fold_ids = list(params["cv"]["fold_ids"])
    if fold not in fold_ids:
        raise ValueError(f"fold {fold} is not in cv.fold_ids {fold_ids}")
    cfg = TrainConfig.from_dict(params["train"])
    stage = f"train_cv@{fold}"
    launch(partial(
        train_and_save,
        Path("data/shards"), Path("data/stats/stats.json"),
        train_splits=[f"fold{k}" for k in fold_ids if k != fold], val_splits=[f"fold{fold}"], stats_key=f"fold{fold}",
        model_name=params["model"]["name"], model_args=params["model"]["args"], model_weights=params["model"]["weights"],
        cfg=cfg,
        checkpoint_path=checkpoint_of(stage), resume_path=resume_path(stage),
    ), cfg.device)


if __name__ == "__main__":
    run(partial(main, fold=fold_argument(sys.argv)))
