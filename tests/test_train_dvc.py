"""Training stages under real DVC: experiments rerun only what they must and compare on one screen, and a killed
stage resumes, or has its state removed once DVC restores the stage from its run cache."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import PRECOMPUTE_STAGES, PROJECT, TRAINING_STAGES, dvc, run_env, set_params, stages_run

pytestmark = pytest.mark.pipeline

COMPARED = {"test.macro_f1", "test.accuracy", "test.loss", "test.detection_recall", "test.detection_recall_min",
            "cv.macro_f1", "cv.macro_f1_std"}


def readme_exp_show() -> list[str]:
    """The arguments of the README's one-screen `dvc exp show` command."""
    line = next(line for line in (PROJECT / "README.md").read_text().splitlines() if line.startswith("dvc exp show "))
    return shlex.split(line.split(" #")[0])[1:]


def test_metrics_are_only_the_compared_numbers(trained_repo: Path) -> None:
    (workspace,) = json.loads(dvc(trained_repo, "metrics", "show", "--json").stdout).values()
    shown = workspace["data"]
    assert list(shown) == ["data/eval/metrics.json"]
    metrics = shown["data/eval/metrics.json"]["data"]
    assert {f"{group}.{key}" for group, values in metrics.items() for key in values} == COMPARED


def test_exp_run_with_new_lr_reruns_only_training_and_compares_in_80_columns(trained_copy: Path) -> None:
    out = dvc(trained_copy, "exp", "run", "-S", "train.lr=5e-4").stdout
    assert stages_run(out) == TRAINING_STAGES
    for stage in PRECOMPUTE_STAGES + ("features",):
        assert f"Stage '{stage}' didn't change, skipping" in out
    diff = dvc(trained_copy, "metrics", "diff").stdout
    assert "data/eval/metrics.json" in diff and "data/models/fold0/metrics.json" not in diff
    rows = list(csv.DictReader(io.StringIO(dvc(trained_copy, "exp", "show", "--csv").stdout)))
    assert {"0.001", "0.0005"} <= {row["train.lr"] for row in rows}
    assert all(row["test.macro_f1"] for row in rows if row["rev"] != "workspace")
    table = dvc(trained_copy, *readme_exp_show()).stdout.splitlines()
    assert max(map(len, table)) <= 80, "\n".join(table)
    assert table[1].split() == ["Experiment", "test.macro_f1", "cv.macro_f1", "train.lr"], "\n".join(table)
    assert len(table) == 7, "\n".join(table)  # rules around the header, workspace, main, the experiment, rule


def outputs(repo: Path) -> tuple[str, dict[str, str], dict[str, torch.Tensor]]:
    """Fold 0's metrics.json, curve files and best weights."""
    fold = repo / "data/models/fold0"
    curves = {str(p.relative_to(fold)): p.read_text() for p in sorted((fold / "plots").rglob("*.tsv"))}
    return (fold / "metrics.json").read_text(), curves, torch.load(fold / "best.pt", weights_only=True)["model_state"]


def kill_after_first_epoch(repo: Path, state: Path, *extra: str) -> None:
    """Run the fold-0 stage under DVC and SIGKILL its whole process group once epoch 0's resume state exists."""
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", *extra, "train_cv@0"]
    proc = subprocess.Popen(cmd, cwd=repo, env=run_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not state.exists():
        assert proc.poll() is None, "training finished before its first epoch's resume state was seen"
        assert time.monotonic() < deadline, "no resume state after 90 s"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_killed_training_resumes_and_ends_like_an_uninterrupted_run(training_repo: Path) -> None:
    set_params(training_repo, {"model.args.widths": [8, 16, 32, 64], "train.epochs": 4})
    state = training_repo / "data/resume/train_cv@0/state.pt"
    kill_after_first_epoch(training_repo, state)
    completed = len(torch.load(state, weights_only=True)["history"])
    assert 1 <= completed < 4
    assert not (training_repo / "data/models/fold0/best.pt").exists()

    resumed = dvc(training_repo, "repro", "--single-item", "train_cv@0").stdout
    assert f"resume: continuing after epoch {completed} of 4" in resumed
    assert not state.parent.exists()
    after_resume = outputs(training_repo)

    fresh = dvc(training_repo, "repro", "--single-item", "--force", "train_cv@0").stdout
    assert "Running stage 'train_cv@0'" in fresh and "resume:" not in fresh
    uninterrupted = outputs(training_repo)
    assert after_resume[:2] == uninterrupted[:2]
    assert all(torch.equal(after_resume[2][k], uninterrupted[2][k]) for k in uninterrupted[2])


def test_repro_restoring_a_killed_stage_from_the_run_cache_removes_its_resume_state(trained_copy: Path) -> None:
    state = trained_copy / "data/resume/train_cv@0/state.pt"
    kill_after_first_epoch(trained_copy, state, "--force")
    assert state.exists() and not (trained_copy / "data/models/fold0/best.pt").exists()

    set_params(trained_copy, {"evaluate.n_errors": 3})
    out = dvc(trained_copy, "repro").stdout
    assert "Stage 'train_cv@0' is cached - skipping run, checking out outputs" in out
    assert stages_run(out) == {"evaluate"}
    assert "resume: removed data/resume/train_cv@0, left by an interrupted run" in out
    assert not state.parent.exists() and (trained_copy / "data/models/fold0/best.pt").is_file()
