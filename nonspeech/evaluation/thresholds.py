"""Per-class decision thresholds chosen on out-of-fold predictions for a target precision, and detection
precision/recall at given thresholds. A clip detects class c when its probability of c reaches c's threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def calibrate(predictions: pd.DataFrame, classes: list[str], precision: float, floor: float) -> dict[str, float]:
    """Thresholds of every target class from predictions with columns `label` and one probability per class: each
    class's threshold for `precision`, raised to `floor` where it is lower."""
    if not 0.0 < precision <= 1.0:
        raise ValueError(f"thresholds.precision must be above 0 and at most 1, got {precision}")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"thresholds.floor must be between 0 and 1, got {floor}")
    return {
        name: max(floor, threshold_for_precision(
            predictions[name].to_numpy(), (predictions["label"] == name).to_numpy(), precision))
        for name in classes if name != NEGATIVE
    }


def detection_scores(predictions: pd.DataFrame, thresholds: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per class: threshold, detection precision and recall, and support; plus how many negatives (clips of no
    target class) raise at least one detection."""
    detected = pd.DataFrame({name: predictions[name] >= t for name, t in thresholds.items()})
    out: dict[str, dict[str, float]] = {}
    for name, threshold in thresholds.items():
        positive = predictions["label"] == name
        hits = int((detected[name] & positive).sum())
        out[name] = {
            "threshold": round(threshold, 4), "precision": hits / max(int(detected[name].sum()), 1),
            "recall": hits / max(int(positive.sum()), 1), "support": int(positive.sum()),
        }
    negatives = predictions["label"] == NEGATIVE
    if negatives.any():
        out[NEGATIVE] = {"called_a_class": float(detected[negatives].any(axis=1).mean()), "support": int(negatives.sum())}
    return out
