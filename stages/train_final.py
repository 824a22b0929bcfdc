"""Stage train_final: per-class thresholds from the CV folds' out-of-fold predictions under the decision rule,
then train on all training folds for train.epochs; the last epoch, with the rule and thresholds, is the shipped
model."""

from functools import partial
from pathlib import Path

import pandas as pd
from common import checkpoint_of, resume_path, run
from launch import launch

from nonspeech.evaluation.thresholds import calibrate, table_classes
from nonspeech.training.loop import TrainConfig
from nonspeech.training.run import train_and_save


def main(params: dict) -> None:
    cfg = TrainConfig.from_dict(params["train"])
    fold_ids = params["cv"]["fold_ids"]
    out_of_fold = pd.concat([pd.read_csv(f"data/models/fold{k}/predictions.csv") for k in fold_ids])
    classes = table_classes(out_of_fold)
    decide = params["thresholds"]
    launch(partial(
        train_and_save,
        Path("data/shards"), Path("data/stats/stats.json"),
        train_splits=[f"fold{k}" for k in fold_ids], val_splits=[], stats_key="full",
        model_name=params["model"]["name"], model_args=params["model"]["args"], model_weights=params["model"]["weights"],
        cfg=cfg,
        checkpoint_path=checkpoint_of("train_final"), resume_path=resume_path("train_final"),
        decision={"decision_rule": decide["rule"], "thresholds": calibrate(
            out_of_fold, classes, decide["rule"], decide["precision"], decide["floor"], decide["ceiling"])},
    ), cfg.device)


if __name__ == "__main__":
    run(main)
