"""Two CPU processes with gloo on loopback (torchrun --standalone): disjoint data, exact reduced metrics."""

import json
import sys
from pathlib import Path

import pytest
from conftest import sh

from nonspeech.data.loader import split_size
from nonspeech.evaluation.holdout import score_checkpoint
from nonspeech.models.checkpoint import load_checkpoint

pytestmark = pytest.mark.pipeline

TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")


def test_ranks_read_disjoint_samples_covering_the_epoch(precomputed_repo: Path, tmp_path: Path) -> None:
    shards, splits = precomputed_repo / "data/shards", ["fold0", "fold1"]
    sh(tmp_path, *TORCHRUN, str(Path(__file__).with_name("rank_samples.py")), str(shards), ",".join(splits), str(tmp_path))
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(s["world"] == 2 for s in seen)
    rank0, rank1 = set(seen[0]["ids"]), set(seen[1]["ids"])
    assert rank0 and rank1 and not rank0 & rank1
    assert len(seen[0]["ids"]) + len(seen[1]["ids"]) == len(rank0 | rank1) == split_size(shards, splits)


def test_ddp_training_reduces_validation_metrics_exactly(training_repo: Path) -> None:
    out = sh(training_repo, *TORCHRUN, "stages/train_cv.py", "0")
    assert "processes" in out.stdout and out.stdout.count("== train") == 1  # one summary: rank 0 alone reports
    metrics = json.loads((training_repo / "data/models/fold0/metrics.json").read_text())
    checkpoint = training_repo / "data/models/fold0/best.pt"
    assert load_checkpoint(checkpoint)["epoch"] == metrics["epoch"]
    single, _, _ = score_checkpoint(checkpoint, training_repo / "data/shards", ["fold0"], "cpu", 8, 0, False)
    assert single["macro_f1"] == metrics["val"]["macro_f1"]
    assert single["accuracy"] == metrics["val"]["accuracy"]
    assert single["loss"] == pytest.approx(metrics["val"]["loss"], rel=1e-5)
