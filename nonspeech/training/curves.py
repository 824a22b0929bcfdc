"""Per-epoch training curves written with dvclive, for `dvc plots show`."""

from __future__ import annotations

from pathlib import Path

from dvclive import Live


def log_epoch(live: Live, row: dict[str, float]) -> None:
    """Log one epoch's values (keys like 'train/loss') and advance to the next step."""
    for name, value in row.items():
        live.log_metric(name, value)
    live.next_step()


def open_curves(directory: Path, history: list[dict[str, float]]) -> Live:
    """A fresh dvclive logger in `directory` with the epochs of a resumed run replayed into it.

    DVC deletes a stage's outputs before rerunning it, so curves are rebuilt from the resume state
    rather than appended to; dvclive writes no dvc.yaml or experiment of its own.
    """
    live = Live(dir=str(directory), dvcyaml=None, save_dvc_exp=False)
    for row in history:
        log_epoch(live, row)
    return live
