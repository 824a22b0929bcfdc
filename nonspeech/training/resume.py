"""Resume state of an interrupted training run: kept outside DVC's outputs, used only when its fingerprint matches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from nonspeech.models.checkpoint import save_checkpoint


def fingerprint(spec: dict) -> str:
    """Hash of everything that determines a training run's result (JSON-serialisable)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def to_cpu(obj: object) -> object:
    """obj with every tensor (nested in dicts, lists, tuples) detached and moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def save_state(path: Path, state: dict) -> None:
    """Write the state atomically; its directory ignores itself so git never picks it up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / ".gitignore").write_text("*\n")
    save_checkpoint(to_cpu(state), path)


def load_state(path: Path, expected_fingerprint: str) -> dict | None:
    """The saved state if there is one for this exact run, else None (a stale one is reported and ignored)."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != expected_fingerprint:
        print(f"resume: ignoring {path}, written for other parameters or data")
        return None
    return state


def clear_state(path: Path) -> None:
    """Remove the state once the run has completed, and its directory if nothing else is left there."""
    path.unlink(missing_ok=True)
    ignore = path.parent / ".gitignore"
    if path.parent.is_dir() and {p.name for p in path.parent.iterdir()} <= {".gitignore"}:
        ignore.unlink(missing_ok=True)
        path.parent.rmdir()
