"""The accelerator-VM workflow on one machine: a workstation pushes to a remote and a fresh clone runs the README's
`dvc repro --pull --allow-missing evaluate`. With only the shards and stats pushed it trains and evaluates without
rerunning (or ever holding) the precompute inputs; with everything pushed it reruns nothing, and a change to an
evaluation parameter reruns evaluate alone on the pulled models."""

from pathlib import Path

import pytest
from conftest import PRECOMPUTE_STAGES, TRAINING_STAGES, dvc, set_params, sh, stages_run

pytestmark = pytest.mark.pipeline

VM_COMMAND = ("repro", "--pull", "--allow-missing", "evaluate")


def push_and_clone(workstation: Path, tmp_path: Path, *targets: str) -> Path:
    """Push the outputs of the workstation's stages `targets` (all when none) to a remote; return a fresh clone of
    its committed pipeline that pulls from that remote."""
    remote = tmp_path / "remote"
    dvc(workstation, "remote", "modify", "--local", "storage", "url", str(remote))
    dvc(workstation, "push", *targets)
    vm = tmp_path / "vm"
    sh(tmp_path, "git", "clone", "-q", str(workstation), str(vm))
    dvc(vm, "remote", "modify", "--local", "storage", "url", str(remote))
    return vm


def assert_no_precompute_inputs(vm: Path) -> None:
    """Neither the raw audio nor the log-mels were ever needed on the VM."""
    assert not (vm / "data/raw/demo").exists() and not list(vm.rglob("*.wav"))
    assert not (vm / "data/features/logmel.zarr").exists()


def test_vm_pulls_shards_and_trains_without_precompute(training_repo: Path, tmp_path: Path) -> None:
    vm = push_and_clone(training_repo, tmp_path, *PRECOMPUTE_STAGES)
    out = dvc(vm, *VM_COMMAND).stdout

    assert stages_run(out) == TRAINING_STAGES
    assert (vm / "data/eval/metrics.json").is_file() and (vm / "data/models/final/model.pt").is_file()
    assert_no_precompute_inputs(vm)
    assert stages_run(dvc(vm, "repro", "--allow-missing", "evaluate").stdout) == set()


def test_vm_after_a_full_push_retrains_nothing_and_reevaluates_the_pulled_model(
    trained_copy: Path, tmp_path: Path
) -> None:
    vm = push_and_clone(trained_copy, tmp_path)
    committed = (vm / "data/eval/metrics.json").read_text()

    assert stages_run(dvc(vm, *VM_COMMAND).stdout) == set()
    assert (vm / "data/eval/metrics.json").read_text() == committed

    set_params(vm, {"evaluate.n_errors": 2})
    out = dvc(vm, *VM_COMMAND).stdout
    assert stages_run(out) == {"evaluate"}
    assert (vm / "data/models/final/model.pt").is_file() and len((vm / "data/eval/errors.csv").read_text().splitlines()) <= 3
    assert (vm / "data/eval/metrics.json").read_text() == committed
    assert_no_precompute_inputs(vm)
