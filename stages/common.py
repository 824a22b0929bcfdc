"""What every stage entry point shares: reading params.yaml, failing with one clear line, and where the training
stages keep their checkpoints and resume states."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

RESUME_ROOT = Path("data/resume")


def load_params(path: str = "params.yaml") -> dict:
    """The pipeline's parameters."""
    return yaml.safe_load(Path(path).read_text())


def fold_of_row(manifest: pd.DataFrame) -> np.ndarray:
    """Each manifest row's CV fold from data/folds/folds.csv; -1 for test clips."""
    folds = pd.read_csv("data/folds/folds.csv")
    return manifest[["clip_id"]].merge(folds, on="clip_id", how="left")["fold"].fillna(-1).astype(int).to_numpy()


def checkpoint_of(stage: str) -> Path | None:
    """The checkpoint a training stage writes (train_cv@K or train_final); None for any other name."""
    if stage == "train_final":
        return Path("data/models/final/model.pt")
    name, _, fold = stage.partition("@")
    return Path(f"data/models/fold{fold}/best.pt") if name == "train_cv" and fold.isdigit() else None


def resume_path(stage: str) -> Path:
    """Where a training stage keeps the state it resumes from after an interruption."""
    return RESUME_ROOT / stage / "state.pt"


def remove_stale_resume_states(root: Path = RESUME_ROOT) -> None:
    """Delete every training stage's resume state that sits beside that stage's checkpoint.

    DVC deletes a stage's outputs before running it, and a run writes its checkpoint only on completion (then
    deletes its state); so a state next to a checkpoint is left from a killed run whose stage DVC has since
    restored from its run cache (or checked out), without running the command that would have cleared it."""
    for state_dir in sorted(root.glob("*")) if root.is_dir() else []:
        checkpoint = checkpoint_of(state_dir.name)
        if checkpoint is not None and checkpoint.is_file():
            shutil.rmtree(state_dir, ignore_errors=True)
            print(f"resume: removed {state_dir}, left by an interrupted run; {checkpoint} is in place")


def run(main: Callable[[dict], object]) -> None:
    """Call main(params) after removing stale resume states; turn expected input errors into a one-line message
    and exit status 1."""
    try:
        remove_stale_resume_states()
        main(load_params())
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
