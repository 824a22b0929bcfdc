"""Rejecting non-target sounds: negatives as data, background mixing, per-class thresholds, and their metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import (
    LEARNABLE_PARAMS,
    TINY_TRAIN_PARAMS,
    TRAINING_STAGES,
    dvc,
    make_pipeline_repo,
    stages_run,
    write_folder,
)

from nonspeech.data.sources.listing import list_clips
from nonspeech.decisions import decision_scores, detected
from nonspeech.evaluation.metrics import classification_metrics
from nonspeech.evaluation.sums import predicted_classes
from nonspeech.evaluation.thresholds import calibrate, detection_scores, threshold_for_precision
from nonspeech.features.efficientat_mel import EfficientATMel
from nonspeech.features.frontends import feature_spec, power_domain
from nonspeech.features.logmel import LogMel
from nonspeech.features.mixing import background_mixer
from nonspeech.models.checkpoint import load_checkpoint, model_from_checkpoint
from nonspeech.models.outputs import class_probabilities, clip_losses, network_outputs, prior_logits, weighted_loss
from nonspeech.training.loop import class_weights

pytestmark = pytest.mark.pipeline

TARGETS = ["cough", "laugh"]
NOISES = ["rain", "hum", "traffic"]


def test_negatives_join_as_class_other_with_their_own_groups_and_test_split(tmp_path: Path) -> None:
    targets = write_folder(tmp_path / "targets", TARGETS, 6)
    negatives = write_folder(tmp_path / "negatives", NOISES, 5)
    clips, _ = list_clips("folder", targets, 0.2, 0, negatives=negatives)
    other = clips[clips["label"] == "other"]
    assert len(other) == 15 and set(clips["label"]) == {"cough", "laugh", "other"}
    assert other["group"].str.startswith("negative:").all()
    assert set(other["split"]) == {"train", "test"}


def test_negatives_listed_by_a_labels_csv_of_paths_elsewhere(tmp_path: Path) -> None:
    """A folder holding only labels.csv (absolute paths, explicit splits) is a negatives source, not an empty one."""
    targets = write_folder(tmp_path / "targets", TARGETS, 6)
    audio = write_folder(tmp_path / "audio", NOISES, 2)
    paths = sorted(str(p) for p in audio.rglob("*.wav"))
    (tmp_path / "listed").mkdir()
    pd.DataFrame({"path": paths, "label": "other", "split": ["test", "train"] * 3}).to_csv(
        tmp_path / "listed/labels.csv", index=False)
    clips, _ = list_clips("folder", targets, 0.2, 0, negatives=tmp_path / "listed")
    other = clips[clips["label"] == "other"]
    assert sorted(other["path"]) == paths and (other["split"] == "test").sum() == 3


def test_negatives_folder_errors_and_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    targets = write_folder(tmp_path / "targets", TARGETS, 6)
    (tmp_path / "empty").mkdir()
    clips, _ = list_clips("folder", targets, 0.2, 0, negatives=tmp_path / "empty")
    assert "other" not in set(clips["label"])
    assert capsys.readouterr().out.strip() == (
        f"warning: data.negatives {tmp_path / 'empty'} holds no audio files: training without negatives"
    )
    clash = write_folder(tmp_path / "clash", ["rain", "cough"], 3)
    with pytest.raises(ValueError, match=r"clash: class\(es\) \['cough'\] are target classes"):
        list_clips("folder", targets, 0.2, 0, negatives=clash)
    named_other = write_folder(tmp_path / "with_other", ["cough", "other"], 6)
    with pytest.raises(ValueError, match="a class named 'other', the label reserved for data.negatives"):
        list_clips("folder", named_other, 0.2, 0, negatives=write_folder(tmp_path / "n", ["rain"], 3))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        list_clips("folder", targets, 0.2, 0, negatives=tmp_path / "absent")


def test_target_clips_are_scored_among_targets_and_negatives_by_how_often_they_are_called_a_class() -> None:
    names = ["cough", "laugh", "other"]
    logits = torch.tensor([[2.0, 0, 5], [3, 1, 0], [0, 2, 1], [1, 0, 4], [0, 1, 3], [1, 0, 0], [0, 1, 0]])
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    predicted = predicted_classes(logits.softmax(1), y, negative=2)
    assert predicted.tolist() == [0, 0, 1, 0, 2, 0, 1]  # target clips never "other"; negatives take the full argmax
    metrics = classification_metrics(y.numpy(), predicted.numpy(), names)
    assert metrics["macro_f1"] == pytest.approx((2 * 2 / 3 / (1 + 2 / 3) + 2 * 0.5 / 1.5) / 2)
    assert metrics["accuracy"] == 0.75 and set(metrics["per_class"]) == {"cough", "laugh"}
    assert metrics["negatives_called_a_class"] == pytest.approx(2 / 3)
    assert np.array(metrics["confusion_matrix"]).sum() == 7


def test_sigmoid_outputs_score_targets_only_and_call_a_negative_a_class_when_one_reaches_half() -> None:
    """One output per target class; `other` is 1 - the highest target probability, so it is the argmax exactly
    when no target reaches 0.5; a negative's targets are all 0 in the loss."""
    assert network_outputs(3, "sigmoid", 1) == 2 and network_outputs(3, "sigmoid", None) == network_outputs(3, "softmax", 1) == 3
    logits = torch.tensor([[2.0, -1.0], [-0.5, -3.0], [0.0, 1.0]])
    probabilities = class_probabilities(logits, "sigmoid", 1)  # classes cough, other, laugh
    targets = torch.sigmoid(logits)
    torch.testing.assert_close(probabilities[:, [0, 2]], targets)
    torch.testing.assert_close(probabilities[:, 1], 1 - targets.max(1).values)
    assert probabilities.argmax(1).tolist() == [0, 1, 2]
    y = torch.tensor([0, 1, 2])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]), reduction="none").sum(1)
    torch.testing.assert_close(clip_losses(logits, y, "sigmoid", 1), expected)
    weights = torch.tensor([1.0, 3.0, 2.0])
    torch.testing.assert_close(weighted_loss(weights, "sigmoid", 1)(logits, y), (expected * weights).sum() / weights.sum())
    softmax_logits = torch.randn(3, 3)
    torch.testing.assert_close(weighted_loss(weights, "softmax", 1)(softmax_logits, y),
                               torch.nn.functional.cross_entropy(softmax_logits, y, weight=weights))
    counts = np.array([10, 60, 30])  # weighted by inverse frequency, every class is a third of the weighted clips
    torch.testing.assert_close(torch.sigmoid(prior_logits(class_weights(counts, ["a", "b", "c"]), counts, 1)),
                               torch.full((2,), 1 / 3))
    with pytest.raises(ValueError, match="unknown output 'tanh'"):
        network_outputs(3, "tanh", 1)


def test_threshold_reaches_the_target_precision_at_the_lowest_score() -> None:
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    positive = np.array([1, 1, 0, 1, 1, 0, 0], dtype=bool)
    assert threshold_for_precision(scores, positive, 0.8) == 0.6  # 4 of 5 above 0.6 are positive
    assert threshold_for_precision(scores, positive, 1.0) == 0.9
    assert threshold_for_precision(scores, np.zeros(7, dtype=bool), 0.9) == 1.0
    unreachable = np.array([0, 1, 1, 0, 0, 0, 0], dtype=bool)  # top score negative: precision 1 is impossible
    assert threshold_for_precision(scores, unreachable, 1.0) == 0.8  # best F1 instead


def test_calibrated_thresholds_and_detection_scores() -> None:
    table = pd.DataFrame({
        "clip_id": list("abcdef"), "label": ["cough", "cough", "laugh", "laugh", "other", "other"],
        "cough": [0.9, 0.6, 0.2, 0.1, 0.7, 0.1], "laugh": [0.05, 0.3, 0.7, 0.8, 0.1, 0.1],
        "other": [0.05, 0.1, 0.1, 0.1, 0.2, 0.8],
    })
    classes = ["cough", "laugh", "other"]
    thresholds = calibrate(table, classes, "probability", precision=1.0, floor=0.0, ceiling=1.0)
    assert thresholds == {"cough": 0.9, "laugh": 0.7}
    assert calibrate(table, classes, "probability", precision=1.0, floor=0.8, ceiling=1.0) == {"cough": 0.9, "laugh": 0.8}
    with pytest.raises(ValueError, match="0 <= floor <= ceiling <= 1, got 1.5 and 1.0"):
        calibrate(table, classes, "probability", precision=1.0, floor=1.5, ceiling=1.0)
    with pytest.raises(ValueError, match="thresholds.precision must be above 0 and at most 1, got 70"):
        calibrate(table, classes, "probability", precision=70, floor=0.5, ceiling=1.0)
    scores = detection_scores(table, thresholds, "probability")
    assert scores["cough"] == {"threshold": 0.9, "precision": 1.0, "recall": 0.5, "support": 2}
    assert scores["other"] == {"called_a_class": 0.0, "support": 2}
    assert detection_scores(table, {"cough": 0.5, "laugh": 0.5}, "probability")["other"]["called_a_class"] == 0.5
    # versus_other: cough b is 0.6 / (0.6 + 0.1) = 0.857 against other, laugh c 0.7 / 0.8 = 0.875; ceiling caps
    assert calibrate(table, classes, "versus_other", 1.0, 0.0, 1.0) == pytest.approx({"cough": 6 / 7, "laugh": 0.875})
    assert calibrate(table, classes, "versus_other", 1.0, 0.0, 0.86) == pytest.approx({"cough": 6 / 7, "laugh": 0.86})
    both = detection_scores(table, {"cough": 0.85, "laugh": 0.85}, "versus_other")
    assert [both[c]["recall"] for c in ("cough", "laugh")] == [1.0, 1.0] and both["other"]["called_a_class"] == 0.0


def test_versus_other_detects_the_top_target_against_other_alone() -> None:
    classes = ["cough", "other", "sneeze"]
    probabilities = np.array([[0.45, 0.2, 0.35], [0.2, 0.7, 0.1], [0.3, 0.0, 0.7]])
    half = np.full(3, 0.5)
    assert not detected(probabilities, classes, half, "probability")[0].any()  # spread over similar classes: none
    np.testing.assert_array_equal(detected(probabilities, classes, half, "versus_other"),
                                  [[True, False, False], [False, False, False], [False, False, True]])
    np.testing.assert_allclose(decision_scores(probabilities, classes, "versus_other")[0], [0.45 / 0.65, 0, 0.35 / 0.55])
    np.testing.assert_allclose(decision_scores(probabilities[:, [0, 2]], ["cough", "sneeze"], "versus_other"),
                               probabilities[:, [0, 2]])  # no other: the probabilities
    with pytest.raises(ValueError, match="unknown decision rule 'odds'; valid: probability, versus_other"):
        decision_scores(probabilities, classes, "odds")


@pytest.mark.parametrize("frontend", ["logmel", "efficientat"])
def test_background_mixing_adds_mel_powers_at_the_drawn_ratio(frontend: str) -> None:
    spec = feature_spec(frontend, 32000, 1.0, {"n_fft": 1024, "hop_length": 320, "n_mels": 64, "top_db": None})
    module = LogMel(32000, 1024, 320, 64, None) if frontend == "logmel" else EfficientATMel()
    g = torch.Generator().manual_seed(0)
    waves = torch.randn(4, 32000, generator=g) * torch.tensor([[1.0], [0.5], [0.1], [0.2]])
    x, y = module(waves), torch.tensor([0, 1, 2, 2])
    to_power, from_power = power_domain(spec)
    torch.testing.assert_close(from_power(to_power(x)), x, rtol=0, atol=1e-4)
    mix = background_mixer(spec, negative=2, snr_db=(10.0, 10.0), probability=1.0)
    mixed = mix(x, y, torch.Generator().manual_seed(1))
    gained = to_power(mixed).sum(dim=(1, 2)) / to_power(x).sum(dim=(1, 2))
    torch.testing.assert_close(gained, torch.full((4,), 1.1), rtol=1e-3, atol=0)  # background at -10 dB
    assert torch.equal(mix(x, torch.tensor([0, 1, 0, 1]), torch.Generator()), x)  # no negative in the batch
    assert torch.equal(background_mixer(spec, 2, (0.0, 20.0), 0.0)(x, y, torch.Generator()), x)


def test_background_mixing_needs_negatives_and_spectrograms() -> None:
    spec = feature_spec("efficientat", 32000, 1.0, {})
    with pytest.raises(ValueError, match="takes its backgrounds from data.negatives, but there are none"):
        background_mixer(spec, None, (0.0, 20.0), 0.5)
    with pytest.raises(ValueError, match="clip embeddings cannot be mixed"):
        background_mixer({**spec, "embedding": {"dims": 384}}, 2, (0.0, 20.0), 0.5)


def test_pipeline_with_negatives_and_background_mixing(tmp_path: Path) -> None:
    negatives = write_folder(tmp_path / "negatives", NOISES, 6)
    repo = make_pipeline_repo(tmp_path / "repo", {
        **LEARNABLE_PARAMS, **TINY_TRAIN_PARAMS, "demo.clips_per_class": 3, "data.negatives": str(negatives),
        "train.augment.background.enabled": True, "thresholds.floor": 0.99,
    })
    ran = stages_run(dvc(repo, "repro").stdout)
    assert {"ingest", "train_cv@0", "train_final", "evaluate"} <= ran
    checkpoint = load_checkpoint(repo / "data/models/final/model.pt")
    assert "other" in checkpoint["classes"] and set(checkpoint["thresholds"]) == set(checkpoint["classes"]) - {"other"}
    assert min(checkpoint["thresholds"].values()) >= 0.99  # thresholds.floor reaches the shipped model
    detection = json.loads((repo / "data/eval/detection.json").read_text())
    assert set(detection["other"]) == {"called_a_class", "support"} and detection["other"]["support"] > 0
    assert "negatives_called_a_class" in json.loads((repo / "data/eval/metrics.json").read_text())["test"]
    predictions = pd.read_csv(repo / "data/models/fold0/predictions.csv")
    assert list(predictions.columns) == ["clip_id", "label", *checkpoint["classes"]]
    assert stages_run(dvc(repo, "exp", "run", "-S", "train.output=sigmoid").stdout) == TRAINING_STAGES
    checkpoint = load_checkpoint(repo / "data/models/final/model.pt")
    assert checkpoint["output"] == "sigmoid" and "other" in checkpoint["classes"]
    assert model_from_checkpoint(checkpoint).head[-1].out_features == len(checkpoint["classes"]) - 1
    predictions = pd.read_csv(repo / "data/models/fold0/predictions.csv")
    targets = predictions[[c for c in checkpoint["classes"] if c != "other"]]
    np.testing.assert_allclose(predictions["other"], 1 - targets.max(axis=1), atol=2e-6)
    metrics = json.loads((repo / "data/eval/metrics.json").read_text())["test"]
    assert 0 <= metrics["negatives_called_a_class"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    (negatives / "rain" / "rain0.wav").unlink()
    assert "ingest" in stages_run(dvc(repo, "repro", "--single-item", "ingest").stdout)  # negatives: a tracked input
