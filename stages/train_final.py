"""Stage train_final: train on all training folds for train.epochs; the last epoch is the shipped model."""

from functools import partial
from pathlib import Path

from common import checkpoint_of, resume_path, run
from launch import launch

from nonspeech.train import TrainConfig
from nonspeech.training_run import train_and_save


def main(params: dict) -> None:
    cfg = TrainConfig.from_dict(params["train"])
    launch(partial(
        train_and_save,
        Path("data/shards"), Path("data/stats/stats.json"),
        train_splits=[f"fold{k}" for k in params["cv"]["fold_ids"]], val_splits=[], stats_key="full",
        model_name=params["model"]["name"], model_args=params["model"]["args"],
        cfg=cfg,
        checkpoint_path=checkpoint_of("train_final"), resume_path=resume_path("train_final"),
    ), cfg.device)


if __name__ == "__main__":
    run(main)
