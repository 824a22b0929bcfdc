"""Resume state: used only for the exact run it was written for, invisible to git, gone once the run completes."""

from __future__ import annotations

from pathlib import Path

import torch

from nonspeech.training.resume import clear_state, fingerprint, load_state, save_state


def test_state_round_trips_only_for_its_own_fingerprint(tmp_path: Path, capsys) -> None:
    path = tmp_path / "resume/train_cv@0/state.pt"
    run = fingerprint({"train": {"lr": 1e-3}, "fold": 0})
    save_state(path, {"fingerprint": run, "model": {"w": torch.ones(2)}, "history": [{"train/loss": 1.0}]})
    assert (path.parent / ".gitignore").read_text() == "*\n"
    state = load_state(path, run)
    assert torch.equal(state["model"]["w"], torch.ones(2)) and state["history"] == [{"train/loss": 1.0}]
    assert load_state(path, fingerprint({"train": {"lr": 5e-4}, "fold": 0})) is None
    assert "ignoring" in capsys.readouterr().out
    clear_state(path)
    assert not path.parent.exists() and load_state(path, run) is None


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_clearing_state_keeps_other_files_in_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "models/state.pt"
    save_state(path, {"fingerprint": "x"})
    (path.parent / "model.pt").write_bytes(b"weights")
    clear_state(path)
    assert not path.exists() and (path.parent / "model.pt").read_bytes() == b"weights"
