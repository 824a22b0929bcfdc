"""Stage train_cv@K: train on every fold but K, keep the epoch with the best macro-F1 on fold K."""

import sys
from functools import partial
from pathlib import Path

from common import run
from launch import launch

from nonspeech.train import TrainConfig
from nonspeech.training_run import train_and_save


def main(params: dict) -> None:
    fold, fold_ids = int(sys.argv[1]), list(params["cv"]["fold_ids"])
    if fold not in fold_ids:
        raise ValueError(f"fold {fold} is not in cv.fold_ids {fold_ids}")
    cfg = TrainConfig.from_dict(params["train"])
    launch(partial(
        train_and_save,
        Path("data/shards"), Path("data/stats/stats.json"),
        train_splits=[f"fold{k}" for k in fold_ids if k != fold], val_splits=[f"fold{fold}"], stats_key=f"fold{fold}",
        model_name=params["model"]["name"], model_args=params["model"]["args"], model_weights=params["model"]["weights"],
        cfg=cfg,
        checkpoint_path=Path(f"data/models/fold{fold}/best.pt"), resume_path=Path(f"data/resume/train_cv@{fold}/state.pt"),
    ), cfg.device)


if __name__ == "__main__":
    run(main)
