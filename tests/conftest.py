"""Shared fixtures: a throwaway git + DVC copy of the project, run with tiny parameters."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

PROJECT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = (
    "dvc.yaml", "params.yaml", "stages", "nonspeech", "models", "configs", "data/raw/negatives", ".dvc/config",
    ".dvc/plots", ".dvcignore",
)
PRECOMPUTE_STAGES = ("shards", "stats")
TRAINING_STAGES = {"train_cv@0", "train_cv@1", "train_cv@2", "train_final", "evaluate"}
TINY_PARAMS = {"demo.clips_per_class": 3, "shards.shards_per_split": 2, "ingest.workers": 1, "features.workers": 1}


def write_folder(root: Path, labels: list[str], per_label: int, seed: int = 0) -> Path:
    """`labels` class folders of short noise wavs."""
    rng = np.random.default_rng(seed)
    for label in labels:
        for i in range(per_label):
            path = root / label / f"{label}{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
    return root


def set_params(repo: Path, overrides: dict[str, object]) -> None:
    """Set dotted keys (e.g. 'features.n_mels') in the repo's params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_env() -> dict[str, str]:
    """Environment in which DVC stage commands' `python` is this interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    for role in ("AUTHOR", "COMMITTER"):  # dvc exp run commits experiment refs
        env.setdefault(f"GIT_{role}_NAME", "nonspeech tests")
        env.setdefault(f"GIT_{role}_EMAIL", "tests@nonspeech.invalid")
    return env


def sh(repo: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command in the repo and capture its output."""
    result = subprocess.run(cmd, cwd=repo, env=run_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the dvc CLI of this interpreter's environment in the repo."""
    return sh(repo, sys.executable, "-m", "dvc", *args, check=check)


def stages_run(output: str) -> set[str]:
    """Names of the stages a `dvc repro`/`dvc exp run` output says it ran."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_pipeline_repo(dest: Path, overrides: dict[str, object]) -> Path:
    """Copy the pipeline's files into a fresh git repo, apply param overrides and commit."""
    dest.mkdir(parents=True)
    for name in PIPELINE_FILES:
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "tmp", "cache"))
        elif src.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    set_params(dest, {**TINY_PARAMS, **overrides})
    sh(dest, "git", "init", "-q", "-b", "main")
    sh(dest, "git", "add", "-A")
    sh(dest, "git", "commit", "-qm", "pipeline")
    return dest


@pytest.fixture(scope="session")
def precomputed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline repo on a tiny demo set with the precompute stages (up to shards) already run."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("precomputed") / "repo", {})
    dvc(repo, "repro", *PRECOMPUTE_STAGES)
    return repo


@pytest.fixture
def repo_copy(precomputed_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the precomputed repo (git, DVC cache and outputs included) that a test may change."""
    return Path(shutil.copytree(precomputed_repo, tmp_path / "repo", symlinks=True))


# Training tests (issue 3): a demo set big enough to learn from, with small features so training is quick.
LEARNABLE_PARAMS = {"demo.clips_per_class": 8, "audio.seconds": 2.0, "features.n_mels": 64}
TINY_TRAIN_PARAMS = {
    "model.args.widths": [4, 8, 8, 16], "model.args.hidden": 16,
    "train.epochs": 2, "train.batch_size": 8, "train.device": "cpu",
}


def commit_all(repo: Path, message: str) -> None:
    """Stage and commit everything in the repo."""
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", message)


@pytest.fixture(scope="session")
def learnable_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline repo precomputed up to the shards on ~140 demo clips of 2 s at 64 mel bins."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("learnable") / "repo", LEARNABLE_PARAMS)
    dvc(repo, "repro", *PRECOMPUTE_STAGES)
    return repo


@pytest.fixture
def training_repo(learnable_repo: Path, tmp_path: Path) -> Path:
    """A private copy of learnable_repo with tiny training params, committed as a baseline."""
    repo = Path(shutil.copytree(learnable_repo, tmp_path / "repo", symlinks=True))
    set_params(repo, TINY_TRAIN_PARAMS)
    commit_all(repo, "tiny training")
    return repo


@pytest.fixture(scope="session")
def trained_repo(learnable_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """learnable_repo with tiny training params, the whole pipeline run and committed (run cache included)."""
    repo = Path(shutil.copytree(learnable_repo, tmp_path_factory.mktemp("trained") / "repo", symlinks=True))
    set_params(repo, TINY_TRAIN_PARAMS)
    assert stages_run(dvc(repo, "repro").stdout) == TRAINING_STAGES
    commit_all(repo, "trained")
    return repo


@pytest.fixture
def trained_copy(trained_repo: Path, tmp_path: Path) -> Path:
    """A private copy of trained_repo that a test may change."""
    return Path(shutil.copytree(trained_repo, tmp_path / "repo", symlinks=True))
