"""Shared fixtures: a throwaway git + DVC copy of the project, run with tiny parameters; the `nonspeech` command."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from filelock import FileLock

from nonspeech.cli import main as cli_main

PROJECT = Path(__file__).resolve().parents[1]
PIPELINE_FILES = (
    "dvc.yaml", "params.yaml", "stages", "nonspeech", "models", "configs", "data/raw/negatives", "data/sources", ".dvc/config",
    ".dvc/plots", ".dvcignore",
)
PRECOMPUTE_STAGES = ("shards", "stats")
TRAINING_STAGES = {"train_cv@0", "train_cv@1", "train_cv@2", "train_final", "evaluate"}
TINY_PARAMS = {"demo.clips_per_class": 3, "shards.shards_per_split": 2, "ingest.workers": 1, "features.workers": 1}
CONSOLE_SCRIPT = Path(sys.executable).with_name("nonspeech")

# One CPU thread for PyTorch in this process and in every process the tests start (stages, console scripts): the two
# pytest-xdist workers fill the 2 cores, the models are tiny, and two threads that spin-wait while another process holds
# a core made a training stage take 6-25 s instead of 4 s.
torch.set_num_threads(1)
os.environ["OMP_NUM_THREADS"] = "1"
# Ctrl-C at its default for the commands the tests interrupt, even when this run was started ignoring it (a shell's
# background job is), which those commands would inherit.
signal.signal(signal.SIGINT, signal.default_int_handler)


def nonspeech(*args: object) -> subprocess.CompletedProcess:
    """Run the `nonspeech` command in this process (the console script's `main`, without an interpreter's start-up)
    and capture its output and exit status; the CPU threads it may set are restored."""
    argv, out, err, threads = list(map(str, args)), io.StringIO(), io.StringIO(), torch.get_num_threads()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli_main(argv)
    except SystemExit as exit:  # argparse: usage errors, --help, --version
        status = exit.code
    finally:
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["nonspeech", *argv], status, out.getvalue(), err.getvalue())


def console_script(*args: object) -> subprocess.CompletedProcess:
    """Run the installed `nonspeech` console script in a fresh interpreter and capture its output."""
    return subprocess.run([str(CONSOLE_SCRIPT), *map(str, args)], capture_output=True, text=True)


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the `pipeline` modules' tests first (order otherwise kept), so that the short tests left for last even out
    when the two pytest-xdist workers end."""
    items.sort(key=lambda item: item.get_closest_marker("pipeline") is None)


def shared_repo(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """The repo that `build` makes at the path it is given, made once per test run: under pytest-xdist (`-n 2`,
    pyproject.toml) by the first worker that needs it, while another that needs it too waits for it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' common folder
    with FileLock(root / f"{name}.lock"):
        if not (root / name / "built").exists():
            shutil.rmtree(root / name, ignore_errors=True)  # what a failed build left
            build(root / name / "repo")
            (root / name / "built").touch()
    return root / name / "repo"


def precompute(repo: Path, overrides: dict[str, object]) -> None:
    """Make a pipeline repo at `repo` with param overrides and run its precompute stages (up to the shards)."""
    make_pipeline_repo(repo, overrides)
    dvc(repo, "repro", *PRECOMPUTE_STAGES)


@pytest.fixture(scope="session")
def precomputed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline repo on a tiny demo set with the precompute stages (up to shards) already run."""
    return shared_repo(tmp_path_factory, "precomputed", lambda repo: precompute(repo, {}))


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
    return shared_repo(tmp_path_factory, "learnable", lambda repo: precompute(repo, LEARNABLE_PARAMS))


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

    def train(repo: Path) -> None:
        shutil.copytree(learnable_repo, repo, symlinks=True)
        set_params(repo, TINY_TRAIN_PARAMS)
        assert stages_run(dvc(repo, "repro").stdout) == TRAINING_STAGES
        commit_all(repo, "trained")

    return shared_repo(tmp_path_factory, "trained", train)


@pytest.fixture
def trained_copy(trained_repo: Path, tmp_path: Path) -> Path:
    """A private copy of trained_repo that a test may change."""
    return Path(shutil.copytree(trained_repo, tmp_path / "repo", symlinks=True))


# The detector recipe (issue 21) on real recordings, shared by the detector and listen tests.
REALSOUNDS = PROJECT.parent / "shared/realsounds"
DETECTOR_STAGES = {"scenes@sed", "scene_frames@sed", "detector@sed", "detector_eval@sed"}


def detector_params() -> dict[str, object]:
    """configs/detector.yaml on realsounds, with few short scenes and a few epochs."""
    config = yaml.safe_load((PROJECT / "configs/detector.yaml").read_text())
    sed = config["detector"]["sed"]
    sed["backgrounds"] = str(REALSOUNDS / "negatives")
    sed["scenes"] |= {"count": 6, "seconds": 10.0, "events": [2, 4]}
    sed["train"] |= {"epochs": 3, "schedule": "constant"}  # a rate decaying over 3 epochs leaves the head near flat
    return {"data.source": "folder", "data.root": str(REALSOUNDS), "data.negatives": str(REALSOUNDS / "negatives"),
            "audio.seconds": config["audio"]["seconds"], "features.frontend": "efficientat", "detector": config["detector"]}


@pytest.fixture(scope="session")
def detector_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline repo on realsounds with the detector stages (and what they need) reproduced."""

    def reproduce(repo: Path) -> None:
        make_pipeline_repo(repo, detector_params())
        ran = stages_run(dvc(repo, "repro", "detector_eval@sed").stdout)
        assert DETECTOR_STAGES | {"ingest", "folds"} <= ran
        commit_all(repo, "detector")

    return shared_repo(tmp_path_factory, "detector", reproduce)
