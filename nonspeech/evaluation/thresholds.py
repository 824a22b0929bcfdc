"""Per-class decision thresholds chosen on out-of-fold predictions for a target precision, and detection
precision/recall at given thresholds, under a decision rule (nonspeech/decisions.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nonspeech.decisions import decision_scores, detected
from nonspeech.labels import NEGATIVE


def threshold_for_precision(scores: np.ndarray, positive: np.ndarray, precision: float) -> float:
    """The lowest threshold whose detections (scores >= it) reach `precision`; where none does, the one with the
    best F1. 1.0 when there are no positives."""
    if not positive.any():
        return 1.0
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(positive[order])
    precisions = hits / np.arange(1, len(order) + 1)
    last_of_tie = np.r_[scores[order][1:] != scores[order][:-1], True]  # a threshold takes every tied score
    reaching = np.flatnonzero((precisions >= precision) & last_of_tie)
    if len(reaching):
        return float(scores[order][reaching[-1]])
    f1 = 2 * hits / (np.arange(1, len(order) + 1) + positive.sum())
    return float(scores[order][np.argmax(np.where(last_of_tie, f1, -1))])


def table_classes(predictions: pd.DataFrame) -> list[str]:
    """The class columns of a predictions table (clip_id, label, one probability column per class)."""
    return [c for c in predictions.columns if c not in ("clip_id", "label")]


def calibrate(
    predictions: pd.DataFrame, classes: list[str], rule: str, precision: float, floor: float, ceiling: float,
) -> dict[str, float]:
    """Thresholds of every target class from predictions with columns `label` and one probability per class: each
    class's threshold on its decision score (by `rule`) for `precision`, kept between `floor` and `ceiling`."""
    if not 0.0 < precision <= 1.0:
        raise ValueError(f"thresholds.precision must be above 0 and at most 1, got {precision}")
    if not 0.0 <= floor <= ceiling <= 1.0:
        raise ValueError(f"thresholds.floor and thresholds.ceiling must satisfy 0 <= floor <= ceiling <= 1, got "
                         f"{floor} and {ceiling}")
    scores = decision_scores(predictions[classes].to_numpy(), classes, rule)
    return {
        name: float(np.clip(threshold_for_precision(
            scores[:, i], (predictions["label"] == name).to_numpy(), precision), floor, ceiling))
        for i, name in enumerate(classes) if name != NEGATIVE
    }


def detection_scores(predictions: pd.DataFrame, thresholds: dict[str, float], rule: str) -> dict[str, dict[str, float]]:
    """Per class: threshold, detection precision and recall, and support, of the decisions by `rule`; plus how many
    negatives (clips of no target class) raise a detection."""
    classes = table_classes(predictions)
    limits = np.array([thresholds.get(name, np.inf) for name in classes])
    found = pd.DataFrame(detected(predictions[classes].to_numpy(), classes, limits, rule), columns=classes)
    labels = predictions["label"].to_numpy()
    out: dict[str, dict[str, float]] = {}
    for name, threshold in thresholds.items():
        positive = labels == name
        hits = int((found[name].to_numpy() & positive).sum())
        out[name] = {
            "threshold": round(threshold, 4), "precision": hits / max(int(found[name].sum()), 1),
            "recall": hits / max(int(positive.sum()), 1), "support": int(positive.sum()),
        }
    negatives = labels == NEGATIVE
    if negatives.any():
        out[NEGATIVE] = {"called_a_class": float(found[negatives].any(axis=1).mean()), "support": int(negatives.sum())}
    return out


def detection_summary(detection: dict[str, dict[str, float]]) -> dict[str, float]:
    """The figures of detection_scores that experiments are compared by: detection recall (mean over the classes
    with test clips, and the lowest) and the share of negatives detected as a class, when there are any."""
    recalls = [v["recall"] for name, v in detection.items() if name != NEGATIVE and v["support"]]
    summary = {"detection_recall": float(np.mean(recalls)), "detection_recall_min": float(min(recalls))} if recalls else {}
    if NEGATIVE in detection:
        summary["negatives_detected"] = detection[NEGATIVE]["called_a_class"]
    return summary
