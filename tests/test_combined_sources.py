"""Several datasets in one run (data.sources): real recordings of two sets (../shared/realsounds and
../shared/realsounds-extra, whose infant cries are named babycry) through real DVC, and the bad configurations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import (
    LEARNABLE_PARAMS,
    PROJECT,
    TINY_TRAIN_PARAMS,
    commit_all,
    dvc,
    make_pipeline_repo,
    set_params,
    shared_repo,
    stages_run,
    write_folder,
)

from nonspeech.data.sources.extra import list_extra_source, read_listing
from nonspeech.data.sources.listing import list_clips
from nonspeech.evaluation.holdout import source_scores

pytestmark = pytest.mark.pipeline

REALSOUNDS = PROJECT.parent / "shared/realsounds"
EXTRA = PROJECT.parent / "shared/realsounds-extra"
SOURCES = {
    "extra": {"root": str(EXTRA), "class_map": {"babycry": "crying", "cough": "cough"}},
    "extra_negatives": {"root": str(EXTRA / "negatives")},
}


@pytest.fixture(scope="session")
def combined_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline repo on realsounds plus realsounds-extra (and both sets' negatives), reproduced to evaluate with a
    tiny resnet."""

    def reproduce(repo: Path) -> None:
        make_pipeline_repo(repo, {
            **LEARNABLE_PARAMS, **TINY_TRAIN_PARAMS, "train.epochs": 1, "data.source": "folder",
            "data.root": str(REALSOUNDS), "data.negatives": str(REALSOUNDS / "negatives"), "data.sources": SOURCES,
        })
        ran = stages_run(dvc(repo, "repro").stdout)
        assert {"sources@extra", "sources@extra_negatives", "ingest", "evaluate"} <= ran
        commit_all(repo, "combined")

    return shared_repo(tmp_path_factory, "combined", reproduce)


def test_sources_merge_into_one_manifest_with_their_names_and_apart_groups(combined_repo: Path) -> None:
    manifest = pd.read_csv(combined_repo / "data/ingest/manifest.csv")
    assert set(manifest["source"]) == {"folder", "negatives", "extra", "extra_negatives"}
    extra = manifest[manifest["source"] == "extra"]
    assert set(extra["label"]) == {"cough", "crying"} and extra["group"].str.startswith("extra:").all()
    assert extra["clip_id"].str.startswith("extra_clips_").all()
    listed = pd.read_csv(EXTRA / "labels.csv")
    assert len(extra) == len(listed)  # every file kept, each in the split its labels.csv gives
    assert dict(extra["split"].value_counts()) == dict(listed["split"].value_counts())
    assert set(manifest.loc[manifest["source"] == "extra_negatives", "label"]) == {"other"}
    by_group = manifest.groupby("group")["source"].nunique()
    assert (by_group == 1).all()
    summary = json.loads((combined_repo / "data/ingest/summary.json").read_text())
    assert summary["kept"] + summary["quarantined"] + summary["excluded_by_loader"] == summary["listed"]


def test_evaluate_reports_each_source(combined_repo: Path) -> None:
    metrics = json.loads((combined_repo / "data/eval/metrics.json").read_text())
    sources = metrics["sources"]
    assert set(sources) == {"folder", "negatives", "extra", "extra_negatives"}
    assert {"macro_f1", "accuracy", "detection_recall"} <= set(sources["extra"])
    assert sources["extra"]["clips"] == int((pd.read_csv(EXTRA / "labels.csv")["split"] == "test").sum())
    assert "macro_f1" not in sources["negatives"] and "negatives_detected" in sources["negatives"]


def test_a_class_map_change_reruns_its_listing_and_what_follows_and_drops_are_reported(
    combined_repo: Path, tmp_path: Path,
) -> None:
    repo = Path(shutil.copytree(combined_repo, tmp_path / "repo", symlinks=True))
    assert stages_run(dvc(repo, "repro", "ingest").stdout) == set()
    set_params(repo, {"data.sources.extra.class_map": {"babycry": "crying"}, "data.sources.extra.unmapped": "drop"})
    assert stages_run(dvc(repo, "repro", "ingest").stdout) == {"sources@extra", "ingest"}
    quarantine = pd.read_csv(repo / "data/ingest/quarantine.csv", keep_default_na=False)
    dropped = quarantine[quarantine["reason"].str.contains("not in data.sources.extra.class_map")]
    assert len(dropped) == int((pd.read_csv(EXTRA / "labels.csv")["label"] == "cough").sum())
    set_params(repo, {"data.sources.extra.class_map": {"babycry": "wail"}})
    failed = dvc(repo, "repro", "ingest", check=False)
    assert failed.returncode != 0
    assert ("error: data.sources.extra: class(es) ['wail'] are not target classes "
            "['breath', 'cough', 'crying', 'laugh', 'screaming', 'sneeze', 'yawn']") in failed.stderr


def test_a_changed_file_in_an_extra_source_reruns_ingest(tmp_path: Path) -> None:
    """The listing holds each file's md5, so new bytes under an unchanged name reach ingest."""
    root = write_folder(tmp_path / "more", ["cough"], 4)
    spec = {"root": str(root)}
    before = list_extra_source("more", spec, 0.25, 0)
    write_folder(tmp_path / "more", ["cough"], 1, seed=1)
    after = list_extra_source("more", spec, 0.25, 0)
    assert (before["md5"] != after["md5"]).sum() == 1 and before["path"].equals(after["path"])


def test_hold_out_rules_of_an_extra_source(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "more", ["cough", "laugh"], 10)
    carved = list_extra_source("more", {"root": str(root), "test_fraction": 0.3}, 0.2, 0)
    assert 4 <= (carved["split"] == "test").sum() <= 8
    assert set(list_extra_source("more", {"root": str(root), "test_fraction": 0}, 0.2, 0)["split"]) == {"train"}
    assert set(list_extra_source("more", {"root": str(root), "test_fraction": 1}, 0.2, 0)["split"]) == {"test"}


def listed(tmp_path: Path, name: str, spec: dict) -> pd.DataFrame:
    """An extra source's kept clips, written and read back as ingest reads them."""
    path = tmp_path / f"{name}.csv"
    list_extra_source(name, spec, 0.2, 0).to_csv(path, index=False)
    return read_listing(path, name)[0]


@pytest.mark.parametrize(("spec", "message"), [
    ({"class_map": {"babycry": "wail"}}, r"^data.sources.more: class\(es\) \['wail'\] are not target classes"),
    ({}, r"^data.sources.more: class\(es\) \['babycry'\] are not target classes"),
])
def test_a_class_that_is_not_a_target_is_one_line_naming_the_source(tmp_path: Path, spec: dict, message: str) -> None:
    main = write_folder(tmp_path / "main", ["cough", "crying"], 5)
    more = listed(tmp_path, "more", {"root": str(write_folder(tmp_path / "more", ["babycry"], 5)), **spec})
    with pytest.raises(ValueError, match=message):
        list_clips("folder", main, 0.2, 0, extra={"more": more})


def test_two_sources_listing_one_file_is_one_line_naming_both(tmp_path: Path) -> None:
    main = write_folder(tmp_path / "main", ["cough", "crying"], 5)
    again = listed(tmp_path, "again", {"root": str(main)})
    with pytest.raises(ValueError, match=r"^sources folder and again both list 10 file\(s\), e\.g\. .*main/"):
        list_clips("folder", main, 0.2, 0, extra={"again": again})


def test_class_map_errors_name_the_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = str(write_folder(tmp_path / "more", ["babycry", "cough"], 5))
    with pytest.raises(ValueError, match=r"^data.sources.more: its class_map \{'yawning': 'yawn'\} leaves no clips"):
        list_extra_source("more", {"root": root, "class_map": {"yawning": "yawn"}, "unmapped": "drop"}, 0.2, 0)
    assert "warning: data.sources.more: class_map names ['yawning'], of which the source has no files" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"^data.sources.more: class\(es\) \['cough'\] are not in its class_map"):
        list_extra_source("more", {"root": root, "class_map": {"babycry": "crying"}}, 0.2, 0)
    with pytest.raises(ValueError, match=r"^data.sources.more: unknown key\(s\) \['classmap'\]"):
        list_extra_source("more", {"root": root, "classmap": {}}, 0.2, 0)
    with pytest.raises(FileNotFoundError, match=r"^data.sources.more: data root .*absent does not exist"):
        list_extra_source("more", {"root": str(tmp_path / "absent")}, 0.2, 0)
    main = write_folder(tmp_path / "main", ["cough"], 5)
    with pytest.raises(ValueError, match="^data.sources.negatives: the name 'negatives' is taken by data.negatives"):
        list_clips("folder", main, 0.2, 0, extra={"negatives": listed(tmp_path, "negatives", {"root": str(main)})})


def test_source_scores_average_over_the_classes_a_source_has() -> None:
    classes = ["cough", "crying", "laugh", "other"]
    table = pd.DataFrame({
        "clip_id": list("abcde"), "label": ["cough", "cough", "crying", "crying", "other"],
        "cough": [0.9, 0.2, 0.1, 0.6, 0.1], "crying": [0.05, 0.7, 0.8, 0.3, 0.1],
        "laugh": [0.05, 0.1, 0.1, 0.1, 0.1], "other": [0.0, 0.0, 0.0, 0.0, 0.7],
    })
    scores = source_scores(table, classes, {"cough": 0.5, "crying": 0.5, "laugh": 0.5}, "probability")
    # targets: cough 1 of 2 right, crying 1 of 2 (one crying called cough): F1 cough 0.5, crying 0.5
    assert scores["clips"] == 5 and scores["accuracy"] == 0.5 and np.isclose(scores["macro_f1"], 0.5)
    assert scores["negatives_detected"] == 0.0 and json.dumps(scores)
