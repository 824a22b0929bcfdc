"""Training on real demo shards: it learns, it is deterministic, and bad input stops the stage clearly."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest
import torch
import yaml
from conftest import PROJECT, TINY_TRAIN_PARAMS, dvc

from nonspeech.devices.distributed import World
from nonspeech.evaluation.holdout import score_checkpoint
from nonspeech.models.registry import build_model
from nonspeech.training.loop import TrainConfig, body_batchnorms, param_groups, seed_epoch, train_epoch
from nonspeech.training.run import train_and_save

pytestmark = pytest.mark.pipeline

FOLDS = ["fold0", "fold1", "fold2"]


def project_params() -> dict:
    """The project's params.yaml."""
    return yaml.safe_load((PROJECT / "params.yaml").read_text())


def config(**overrides: object) -> TrainConfig:
    """The project's train params on the CPU, with overrides."""
    return TrainConfig.from_dict({**project_params()["train"], "device": "cpu", **overrides})


def train_fold0(repo: Path, out: Path, cfg: TrainConfig) -> dict:
    """Train the tiny model on folds 1-2, validating on fold 0; return its metrics."""
    return train_and_save(
        repo / "data/shards", repo / "data/stats/stats.json", ["fold1", "fold2"], ["fold0"], "fold0",
        "resnet", {"widths": TINY_TRAIN_PARAMS["model.args.widths"], "hidden": 16, "dropout": 0.5}, None, cfg,
        out / "best.pt", out / "resume/state.pt",
    )


def curves(out: Path) -> dict[str, str]:
    """The dvclive curve files under out, by relative path."""
    return {str(p.relative_to(out)): p.read_text() for p in sorted((out / "plots").rglob("*.tsv"))}


def test_learned_model_beats_chance_on_held_out_demo_clips(learnable_repo: Path, tmp_path: Path) -> None:
    model_args = project_params()["model"]["args"]
    train_and_save(
        learnable_repo / "data/shards", learnable_repo / "data/stats/stats.json", FOLDS, [], "full",
        "resnet", model_args, None, config(epochs=8, batch_size=8), tmp_path / "model.pt", tmp_path / "resume/state.pt",
    )
    metrics, predictions, classes = score_checkpoint(
        tmp_path / "model.pt", learnable_repo / "data/shards", ["test"], "cpu", 8, 0, False,
    )
    chance = 1 / len(classes)
    assert len(predictions.clip_ids) >= 30
    assert metrics["macro_f1"] > 2 * chance and metrics["accuracy"] > 2 * chance, metrics


def test_same_seed_same_data_gives_identical_results(learnable_repo: Path, tmp_path: Path) -> None:
    first = train_fold0(learnable_repo, tmp_path / "a", config(epochs=2, batch_size=8))
    second = train_fold0(learnable_repo, tmp_path / "b", config(epochs=2, batch_size=8))
    assert first == second
    assert curves(tmp_path / "a") == curves(tmp_path / "b")
    weights = [torch.load(tmp_path / run / "best.pt", weights_only=True)["model_state"] for run in "ab"]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not (tmp_path / "a/resume").exists()  # resume state is removed once the run completes
    other_seed = train_fold0(learnable_repo, tmp_path / "c", config(epochs=2, batch_size=8, seed=1))
    assert other_seed != first


def rewrite_first_label(shard: Path, label: bytes) -> None:
    """Rewrite a shard with its first sample's class id replaced."""
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    first_cls = next(m.name for m, _ in members if m.name.endswith(".cls"))
    with tarfile.open(shard, "w") as tar:
        for member, data in members:
            data = label if member.name == first_cls else data
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def corrupt_class_id(repo: Path) -> None:
    rewrite_first_label(repo / "data/shards/fold1/shard-00000.tar", b"9")


def empty_fold(repo: Path) -> None:
    fold = repo / "data/shards/fold2"
    for shard in fold.glob("*.tar"):
        shard.unlink()
    (fold / "sizes.json").write_text(json.dumps({"samples": 0, "shards": {}}))


def stats_for_32_mels(repo: Path) -> None:
    path = repo / "data/stats/stats.json"
    stats = json.loads(path.read_text())
    stats["features"]["n_mels"] = 32
    for key in ["fold0", "fold1", "fold2", "full"]:
        stats[key]["mean_per_bin"] = stats[key]["mean_per_bin"][:32]
        stats[key]["std_per_bin"] = stats[key]["std_per_bin"][:32]
    path.write_text(json.dumps(stats))


@pytest.mark.parametrize(("corrupt", "message"), [
    (corrupt_class_id, r"shard-00000.tar: .*\.cls has class id 9, outside the 7 classes"),
    (empty_fold, r"split fold2 in data/shards has no clips"),
    (stats_for_32_mels, r"stats.json is for logmel features \(.*n_mels 32, top_db 80\) but the shards hold logmel features \(.*n_mels 64, top_db 80\): rerun the stats stage"),
])
def test_bad_input_stops_the_training_stage(training_repo: Path, corrupt, message: str) -> None:
    corrupt(training_repo)
    result = dvc(training_repo, "repro", "--single-item", "train_cv@0", check=False)
    assert result.returncode != 0
    assert any(line.startswith("error: ") for line in result.stderr.splitlines()), result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (training_repo / "data/models/fold0/best.pt").exists()


def batchnorm_tensors(model: torch.nn.Module, names: tuple[str, ...]) -> list[torch.Tensor]:
    """Copies of the named tensors (e.g. running_mean, weight) of every BatchNorm layer in the model's body."""
    return [getattr(m, name).detach().clone() for m in body_batchnorms(model) for name in names]


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_batchnorm_keeps_running_statistics_and_trains_affine_weights(freeze: bool) -> None:
    cfg = config(freeze_batchnorm=freeze)
    torch.manual_seed(0)
    model = build_model("resnet", 3, widths=[4, 8, 8, 16], hidden=16, dropout=0.5)
    stats, weights = batchnorm_tensors(model, ("running_mean", "running_var")), batchnorm_tensors(model, ("weight", "bias"))
    optimizer = torch.optim.AdamW(param_groups(model, cfg.lr, cfg.body_lr_scale), lr=cfg.lr)
    batch = (torch.randn(4, 128, 40) * 3 + 1, torch.tensor([0, 1, 2, 0]), [])
    train_epoch(model, model, torch.nn.Identity(), None, [batch], torch.nn.CrossEntropyLoss(), optimizer, cfg,
                seed_epoch(0, torch.device("cpu")), torch.device("cpu"), World())
    after = batchnorm_tensors(model, ("running_mean", "running_var"))
    assert all(torch.equal(a, b) for a, b in zip(stats, after)) == freeze
    assert not any(torch.equal(a, b) for a, b in zip(weights, batchnorm_tensors(model, ("weight", "bias"))))
    assert model.training and all(m.training != freeze for m in body_batchnorms(model))
