"""Metrics equal scikit-learn's (zero_division=0) and survive summing confusion matrices across ranks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from nonspeech.evaluation.metrics import classification_metrics, confusion_matrix, cv_summary, metrics_from_confusion

NAMES = ["breath", "cough", "cry", "laugh", "scream", "sneeze", "yawn"]
LABELS = list(range(len(NAMES)))


def labels(n: int, seed: int, n_classes: int = len(NAMES)) -> tuple[np.ndarray, np.ndarray]:
    """Random true labels and predictions that agree about half of the time."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, n_classes, n))
    return y_true, y_pred


def assert_matches_sklearn(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    """Every field of classification_metrics equals scikit-learn's value."""
    m = classification_metrics(y_true, y_pred, NAMES)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=LABELS, zero_division=0)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, labels=LABELS, average="macro", zero_division=0))
    assert [m["per_class"][n]["precision"] for n in NAMES] == pytest.approx(p)
    assert [m["per_class"][n]["recall"] for n in NAMES] == pytest.approx(r)
    assert [m["per_class"][n]["f1"] for n in NAMES] == pytest.approx(f)
    assert [m["per_class"][n]["support"] for n in NAMES] == s.tolist()
    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=LABELS).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_labels(seed: int) -> None:
    assert_matches_sklearn(*labels(300, seed))


def test_matches_sklearn_with_unpredicted_and_absent_classes() -> None:
    y_true, y_pred = labels(50, seed=9, n_classes=5)  # classes 5 and 6 never occur
    y_pred[y_pred == 2] = 3  # class 2 is never predicted
    assert_matches_sklearn(y_true, y_pred)
    assert classification_metrics(y_true, y_pred, NAMES)["per_class"]["yawn"] == {
        "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0,
    }


def test_perfect_and_empty_predictions() -> None:
    y = np.arange(14) % 7
    assert classification_metrics(y, y, NAMES)["macro_f1"] == 1.0
    empty = classification_metrics(np.array([], dtype=int), np.array([], dtype=int), NAMES)
    assert empty["accuracy"] == 0.0 and empty["macro_f1"] == 0.0


def test_summed_rank_confusion_matrices_give_identical_metrics() -> None:
    y_true, y_pred = labels(301, seed=1)
    shards = np.array_split(np.arange(301), 4)  # four ranks with unequal shares
    summed = sum(confusion_matrix(y_true[i], y_pred[i], len(NAMES)) for i in shards)
    assert metrics_from_confusion(summed, NAMES) == classification_metrics(y_true, y_pred, NAMES)
    json.dumps(metrics_from_confusion(summed, NAMES))  # plain Python values, ready for dvclive / JSON


def test_confusion_matrix_rows_are_true_labels() -> None:
    cm = confusion_matrix(np.array([0, 0, 1]), np.array([1, 1, 1]), 3)
    assert cm.tolist() == [[0, 2, 0], [0, 1, 0], [0, 0, 0]]
    assert cm.dtype == np.int64


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="labels must lie"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 7)
    with pytest.raises(ValueError, match="equally long"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 7)
    with pytest.raises(ValueError, match="does not match"):
        metrics_from_confusion(np.zeros((3, 3)), NAMES)


def test_cv_summary() -> None:
    summary = cv_summary({"0": 0.5, "1": 0.7, "2": 0.9})
    assert summary["per_fold"] == {"0": 0.5, "1": 0.7, "2": 0.9}
    assert summary["mean"] == pytest.approx(0.7)
    assert summary["std"] == pytest.approx(np.std([0.5, 0.7, 0.9]))
    assert cv_summary({"0": 0.4})["std"] == 0.0
    with pytest.raises(ValueError):
        cv_summary({})
