"""The sound-event detector through real DVC on real recordings (../shared/realsounds): scenes, frame embeddings,
the head with post-processing chosen out of fold, its figures, and `predict --window` with it."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import PROJECT, REALSOUNDS, detector_params, dvc, nonspeech, sh, stages_run

from nonspeech.detector.fit import SCHEDULES, HeadTraining, column_boundaries, column_probabilities, fit_head
from nonspeech.models.checkpoint import load_checkpoint

pytestmark = pytest.mark.pipeline

SCENE = REALSOUNDS / "scenes/scene00.wav"


@pytest.fixture
def detector_copy(detector_repo: Path, tmp_path: Path) -> Path:
    """A private copy of detector_repo that a test may change."""
    return Path(shutil.copytree(detector_repo, tmp_path / "repo", symlinks=True))


def test_scenes_of_a_pool_hold_only_its_own_clips_within_the_scene(detector_repo: Path) -> None:
    root = detector_repo / "data/detector/sed/scenes"
    scenes, events = pd.read_csv(root / "scenes.csv"), pd.read_csv(root / "events.csv")
    folds = pd.read_csv(detector_repo / "data/folds/folds.csv").set_index("clip_id")["fold"]
    manifest = pd.read_csv(detector_repo / "data/ingest/manifest.csv").set_index("clip_id")
    assert scenes.groupby("pool").size().to_dict() == {"fold0": 6, "fold1": 6, "fold2": 6, "test": 6}
    merged = events.merge(scenes, on="scene")
    source_fold = [folds.get(clip, -1) if manifest.at[clip, "split"] == "train" else -1 for clip in merged["source"]]
    assert (merged["fold"].to_numpy() == source_fold).all()
    assert ((merged["onset"] >= 0) & (merged["offset"] <= 10.0) & (merged["offset"] > merged["onset"])).all()
    assert (merged["label"] == [manifest.at[clip, "label"] for clip in merged["source"]]).all()


def test_metrics_report_scenes_by_sed_eval_and_isolated_clips(detector_repo: Path) -> None:
    metrics = json.loads((detector_repo / "data/detector/sed/metrics.json").read_text())
    for part in ("cv", "test"):
        assert set(metrics[part]) >= {"segment_macro_f1", "event_macro_f1", "false_alarms_per_minute",
                                      "onset_heard_p50", "onset_heard_p95", "onset_heard_within_1s"}
        assert 0 <= metrics[part]["segment_macro_f1"] <= 1 and metrics[part]["false_alarms_per_minute"] >= 0
        assert -1 <= metrics[part]["onset_heard_p50"] <= metrics[part]["onset_heard_p95"]
        assert 0 <= metrics[part]["onset_heard_within_1s"] <= 1
    assert 0 <= metrics["clips"]["macro_f1"] <= 1 and 0 <= metrics["clips"]["cv_macro_f1"] <= 1
    clips = np.load(detector_repo / "data/detector/sed/out_of_fold.npz")["isolated_clips"]
    test = pd.read_csv(detector_repo / "data/ingest/manifest.csv")["split"] == "test"
    assert (np.isnan(clips).any(axis=1) == test).all()  # every CV clip scored by the head that never saw its fold
    shown = dvc(detector_repo, "metrics", "show", "--json").stdout
    assert "event_macro_f1" in shown


def test_checkpoint_carries_thresholds_and_median_filters_chosen_out_of_fold(detector_repo: Path) -> None:
    checkpoint = load_checkpoint(detector_repo / "data/detector/sed/model.pt")
    targets = [c for c in checkpoint["classes"] if c != "other"]
    assert sorted(checkpoint["thresholds"]) == sorted(checkpoint["median_seconds"]) == sorted(targets)
    assert checkpoint["column_seconds"] == pytest.approx(0.32)
    assert checkpoint["features"]["embedding"]["frames"] is True
    assert checkpoint["features"]["embedding"]["frequency"] == "bins" and len(checkpoint["normalization"]["mean"]) == 1536
    assert checkpoint["boundary_radius"] == {"onset": 2, "offset": 1}
    assert checkpoint["hysteresis"] == detector_params()["detector"]["sed"]["hysteresis"]
    stored = np.load(detector_repo / "data/detector/sed/out_of_fold.npz")
    assert list(stored["boundary_kinds"]) == ["onset", "offset"]
    assert stored["boundaries"].shape == (2, *stored["probabilities"].shape, 2) == (2, 18, 32, len(checkpoint["classes"]), 2)


def test_a_training_parameter_reruns_neither_synthesis_nor_frames(detector_copy: Path) -> None:
    params = yaml.safe_load((detector_copy / "params.yaml").read_text())
    params["detector"]["sed"]["train"]["epochs"] = 2
    (detector_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = stages_run(dvc(detector_copy, "repro", "detector_eval@sed").stdout)
    assert ran == {"detector@sed", "detector_eval@sed"}


def test_a_model_dims_the_frames_do_not_have_stops_the_detector_stage_with_one_line(detector_copy: Path) -> None:
    params = yaml.safe_load((detector_copy / "params.yaml").read_text())
    params["detector"]["sed"]["model"]["dims"] = 384
    (detector_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = sh(detector_copy, sys.executable, "stages/detector.py", "sed", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: detector model.dims 384: the frames have 1536 per column (384 per frequency bin kept, body.frequency; "
        "527 more with body.tags)"]


def test_a_background_folder_without_audio_stops_the_scenes_stage_with_one_line(detector_copy: Path) -> None:
    empty = detector_copy.parent / "rooms"
    empty.mkdir()
    params = yaml.safe_load((detector_copy / "params.yaml").read_text())
    params["detector"]["sed"]["backgrounds"] = str(empty)
    (detector_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = sh(detector_copy, sys.executable, "stages/scenes.py", "sed", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: scene backgrounds: {empty} holds no usable audio (a folder of background recordings, or the "
        "data.negatives folder to use each pool's own non-target clips)"]


def test_predict_window_with_the_detector_keeps_the_json_shape(detector_repo: Path, tmp_path: Path) -> None:
    model = detector_repo / "data/detector/sed/model.pt"
    result = nonspeech("predict", "--window", "--model", model, "--hop", "0.16", "--format", "json", "--threshold", "0.2",
                       SCENE)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["file"] == str(SCENE) and record["seconds"] == pytest.approx(60.0)
    assert record["segments"], "a detector at threshold 0.2 finds something in a minute of real events"
    assert all({"class", "start", "end"} <= set(s) and s["end"] > s["start"] for s in record["segments"])
    plot, labels = tmp_path / "timeline.png", tmp_path / "labels.txt"
    drawn = nonspeech("predict", "--window", "--model", model, "--hop", "0.16", "--threshold", "0.2", "--plot", plot,
                      "--format", "audacity", "--out", labels, SCENE)
    assert drawn.returncode == 0, drawn.stderr
    assert plot.stat().st_size > 0
    tracks = [line.split("\t") for line in labels.read_text().splitlines()]
    assert [(float(a), float(b), c) for a, b, c in tracks] == [(s["start"], s["end"], s["class"]) for s in record["segments"]]
    table = nonspeech("predict", "--window", "--model", model, "--hop", "0.16", "--threshold", "0.2", "--format", "csv",
                      SCENE)
    assert len(table.stdout.strip().splitlines()) == 1 + len(record["segments"])
    stored = str(load_checkpoint(model)["hysteresis"])
    at = {value: json.loads(nonspeech("predict", "--window", "--model", model, "--hop", "0.16", "--threshold", "0.2",
                                      "--hysteresis", value, "--format", "json", SCENE).stdout)[0]["segments"]
          for value in (stored, "0.1")}
    assert at[stored] == record["segments"] != at["0.1"], "by default, the hysteresis its thresholds were chosen with"


def test_a_detector_exports_to_onnx_for_clips_and_refuses_exact_or_onnx_timelines(
    detector_repo: Path, tmp_path: Path,
) -> None:
    model, onnx = detector_repo / "data/detector/sed/model.pt", tmp_path / "detector.onnx"
    clips = sorted((REALSOUNDS / "clips/cough").glob("*.wav"))[:3]
    assert nonspeech("export", "--model", model, "--out", onnx).returncode == 0
    by_torch = json.loads(nonspeech("predict", "--model", model, "--format", "json", "--top-k", "8", *clips).stdout)
    by_onnx = json.loads(nonspeech("predict", "--onnx", onnx, "--format", "json", "--top-k", "8", *clips).stdout)
    for a, b in zip(by_torch, by_onnx):
        assert [p["class"] for p in a["predictions"]] == [p["class"] for p in b["predictions"]]
        assert max(abs(p["probability"] - q["probability"]) for p, q in zip(a["predictions"], b["predictions"])) < 1e-4
    exact = nonspeech("predict", "--window", "--exact", "--model", model, SCENE)
    assert exact.returncode == 2 and exact.stderr.startswith("error: --exact: ") and exact.stderr.count("\n") == 1
    window = nonspeech("predict", "--window", "--onnx", onnx, SCENE)
    assert window.returncode == 2 and "timelines need its checkpoint" in window.stderr


def test_the_weak_clip_loss_teaches_each_class_its_highest_column() -> None:
    rng = np.random.default_rng(0)
    scenes, targets = rng.normal(size=(16, 8, 10)).astype(np.float32), np.zeros((16, 2, 10), dtype=np.float32)
    clips = 0.3 * rng.normal(size=(40, 8, 10)).astype(np.float32)
    labels = np.zeros((40, 2), dtype=np.float32)
    labels[:20, 0] = 1.0
    clips[:20, 0, 4] += 4.0  # class 0's clips: one loud column in dimension 0
    args = {"dims": 8, "hidden": 8, "layers": 1, "kernel": 3, "dropout": 0.0}
    cfg = HeadTraining("cpu", 0.01, 0.0, 8, 40, 0, 1.0, 1.0, 1.0, "constant")
    head = fit_head(args, 2, scenes, targets, {}, cfg, (clips, labels))
    clip_probabilities = column_probabilities(head, clips, None).max(axis=1)
    assert clip_probabilities[:20, 0].mean() > 0.5 > clip_probabilities[20:, 0].mean()
    without = fit_head(args, 2, scenes, targets, {}, replace(cfg, weak_weight=0.0),
                       (clips, labels))
    assert column_probabilities(without, clips, None).max(axis=1)[:20, 0].mean() < 0.5


@pytest.mark.parametrize(("kind", "schedule"), [("onset", "constant"), ("offset", "cosine")])
def test_a_boundary_stack_learns_in_which_column_and_where_in_it_an_event_begins_or_ends(
    kind: str, schedule: str,
) -> None:
    """Each scene's event begins (ends) in one column, a fraction f into it; dimension 0 of that column says so and
    dimension 1 says f; at a constant learning rate, or one decaying to 0 along a half cosine."""
    rng = np.random.default_rng(0)
    scenes = 0.1 * rng.normal(size=(32, 4, 12)).astype(np.float32)
    onsets = np.full((32, 1, 12), np.nan, dtype=np.float32)
    columns, fractions = rng.integers(1, 11, 32), rng.uniform(0.1, 0.9, 32)
    for k, (column, fraction) in enumerate(zip(columns, fractions)):
        scenes[k, :2, column] += [3.0, 4.0 * fraction - 2.0]
        onsets[k, 0, column] = fraction
    args = {"dims": 4, "hidden": 16, "layers": 1, "kernel": 1, "dropout": 0.0, "boundaries": [kind]}
    head = fit_head(args, 1, scenes, np.zeros_like(onsets), {kind: onsets}, HeadTraining(
        "cpu", 0.01, 0.0, 8, 150, 0, 1.0, 0.0, 5.0, schedule), (scenes[:0], np.zeros((0, 1))))
    where = column_boundaries(head, scenes, negative=1)[kind]  # (scenes, columns, classes + other, 2)
    begins = ~np.isnan(onsets[:, 0])
    assert where[..., 0, 0][begins].min() > 0.5 > where[..., 0, 0][~begins].max()
    assert np.abs(where[..., 0, 1][begins] - fractions).max() < 0.15
    assert not where[..., 1, :].any()  # `other` begins nowhere
    with pytest.raises(ValueError, match=r"model.boundaries \['middle'\]: the scene frames hold no such targets"):
        fit_head({**args, "boundaries": ["middle"]}, 1, scenes, np.zeros_like(onsets), {kind: onsets}, HeadTraining(
            "cpu", 0.01, 0.0, 8, 1, 0, 1.0, 0.0, 5.0, "constant"), (scenes[:0], np.zeros((0, 1))))


def test_the_detector_training_params_of_the_config_load_and_a_bad_schedule_is_one_line() -> None:
    train = yaml.safe_load((PROJECT / "configs/detector.yaml").read_text())["detector"]["sed"]["train"]
    assert HeadTraining.from_dict(train).schedule in SCHEDULES
    with pytest.raises(ValueError, match=r"^detector train.schedule 'linear': one of constant, cosine$"):
        HeadTraining.from_dict({**train, "schedule": "linear"})
