"""Stage evaluate: the shipped model on the test split, plus the cross-validation summary."""

from pathlib import Path

import yaml
from common import checkpoint_of, run

from nonspeech.evaluation.holdout import evaluate_model


def fold_metrics(fold_ids: list[int], dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, Path]:
    """Each CV fold's metrics.json; ValueError when dvc.yaml's evaluate deps do not list one (DVC would neither
    order nor pull that fold before this stage)."""
    paths = {f"fold{k}": checkpoint_of(f"train_cv@{k}").with_name("metrics.json") for k in fold_ids}
    declared = set(yaml.safe_load(dvc_yaml.read_text())["stages"]["evaluate"]["deps"])
    missing = [str(path) for path in paths.values() if str(path) not in declared]
    if missing:
        raise ValueError(f"{dvc_yaml}: the evaluate stage's deps lack {missing}: list one metrics.json per cv.fold_ids entry")
    return paths


def main(params: dict) -> None:
    train = params["train"]
    evaluate_model(
        checkpoint_of("train_final"), Path("data/shards"), ["test"], fold_metrics=fold_metrics(params["cv"]["fold_ids"]),
        out_dir=Path("data/eval"), device_name=train["device"], batch_size=train["batch_size"],
        workers=train["workers"], bf16=train["bf16"], n_errors=params["evaluate"]["n_errors"],
    )


if __name__ == "__main__":
    run(main)
