"""The precompute stages under real DVC: caching and exactly which stages rerun."""

import json
from pathlib import Path

import pytest
import soundfile as sf
from conftest import PRECOMPUTE_STAGES, dvc, make_pipeline_repo, set_params, stages_run
from nonspeech7k_replica import make_nonspeech7k_replica

pytestmark = pytest.mark.pipeline


def test_second_repro_reruns_nothing(repo_copy: Path) -> None:
    out = dvc(repo_copy, "repro", *PRECOMPUTE_STAGES).stdout
    assert stages_run(out) == set()
    assert "up to date" in dvc(repo_copy, "status", *PRECOMPUTE_STAGES).stdout


def test_n_mels_change_reruns_features_stats_shards_not_ingest(repo_copy: Path) -> None:
    set_params(repo_copy, {"features.n_mels": 64})
    out = dvc(repo_copy, "repro", *PRECOMPUTE_STAGES).stdout
    assert stages_run(out) == {"features", "stats", "shards"}


def test_cv_seed_change_reruns_from_fold_assignment_not_decode(repo_copy: Path) -> None:
    set_params(repo_copy, {"cv.seed": 7})
    out = dvc(repo_copy, "repro", *PRECOMPUTE_STAGES).stdout
    assert stages_run(out) == {"folds", "stats", "shards"}


def test_library_change_reruns_the_stages_that_import_it(repo_copy: Path) -> None:
    stats_module = repo_copy / "nonspeech" / "features" / "stats.py"
    stats_module.write_text(stats_module.read_text() + "\n")
    out = dvc(repo_copy, "repro", *PRECOMPUTE_STAGES).stdout
    assert stages_run(out) == {"stats"}


def test_nonspeech7k_download_outside_the_repo_runs_through_dvc(tmp_path: Path) -> None:
    root = make_nonspeech7k_replica(tmp_path / "Nonspeech7k")
    repo = make_pipeline_repo(tmp_path / "repo", {"data.source": "nonspeech7k", "data.root": str(root)})
    assert stages_run(dvc(repo, "repro", *PRECOMPUTE_STAGES).stdout) == {"ingest", "folds", "features", "stats", "shards"}
    summary = json.loads((repo / "data/ingest/summary.json").read_text())
    assert summary["classes"] == 7 and summary["excluded_by_loader"] > 0
    assert summary["kept"] + summary["quarantined"] + summary["excluded_by_loader"] == summary["listed"]
    assert stages_run(dvc(repo, "repro", *PRECOMPUTE_STAGES).stdout) == set()
    wav = next((root / "train" / "train").rglob("*.wav"))  # new bytes, same length: the manifest's md5 changes,
    samples, rate = sf.read(wav, dtype="float32")            # and features decode the file anew
    sf.write(wav, samples[::-1].copy(), rate, subtype="PCM_16")
    assert stages_run(dvc(repo, "repro", *PRECOMPUTE_STAGES).stdout) == {"ingest", "folds", "features", "stats", "shards"}
    (root / "train" / "train").rename(root / "train" / "moved")  # the external data changed: ingest reruns
    assert stages_run(dvc(repo, "repro", "--single-item", "ingest").stdout) == {"ingest"}
