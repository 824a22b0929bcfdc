"""params.yaml (demo defaults) and configs/nonspeech7k.yaml (full recipe) are interchangeable files."""

from __future__ import annotations

import pytest
import yaml
from conftest import PROJECT

from nonspeech.training.augment import AugmentConfig
from nonspeech.training.loop import TrainConfig


def key_paths(node: object, prefix: str = "") -> set[str]:
    """Dotted paths of every key in nested mappings (lists are values)."""
    if not isinstance(node, dict):
        return set()
    return {f"{prefix}{k}" for k in node} | {p for k, v in node.items() for p in key_paths(v, f"{prefix}{k}.")}


def load(name: str) -> dict:
    """A params file of the project."""
    return yaml.safe_load((PROJECT / name).read_text())


def recipe_keys(params: dict) -> set[str]:
    """Key paths, less those whose names depend on the recipe: embeddings by name, the model's arguments."""
    return {p for p in key_paths(params) if not p.startswith(("embed.", "model.args.", "detector."))}


@pytest.mark.parametrize("config", ["configs/nonspeech7k.yaml", "configs/pretrained.yaml", "configs/timeline.yaml",
                                    "configs/detector.yaml"])
def test_configs_have_the_same_keys_as_params_yaml(config: str) -> None:
    assert recipe_keys(load(config)) == recipe_keys(load("params.yaml"))


def test_full_recipe_values() -> None:
    full = load("configs/nonspeech7k.yaml")
    assert full["data"]["source"] == "nonspeech7k"
    assert full["model"] == {"name": "resnet", "weights": None, "args": {"widths": [32, 64, 128, 256], "hidden": 512, "dropout": 0.5}}
    train = TrainConfig.from_dict(full["train"])
    assert (train.lr, train.weight_decay, train.batch_size, train.epochs, train.seed) == (1e-3, 1e-4, 32, 50, 42)
    assert (train.grad_clip, train.plateau_factor, train.plateau_patience) == (1.0, 0.5, 3)
    assert train.augment == AugmentConfig(freq_mask=15, time_mask=30, time_shift=0.1, gain=(0.8, 1.2), noise=0.001)


def test_demo_train_section_parses() -> None:
    assert TrainConfig.from_dict(load("params.yaml")["train"]).epochs < 50
