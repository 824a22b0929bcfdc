"""Classification metrics computed from a confusion matrix, so summed per-rank matrices give exact results.

Conventions match scikit-learn with zero_division=0 and labels=range(n_classes): a class with no
predictions has precision 0, one with no samples recall 0, and macro-F1 averages over every class.
With a background class NEGATIVE (non-target sounds), accuracy, macro-F1 and the per-class scores
are those of the target clips among the target classes (their classification, as without
negatives), and `negatives_called_a_class` is the share of NEGATIVE clips predicted as a target: whose
most probable class is a target (softmax), or with some target probability >= 0.5 (sigmoid outputs, whose
NEGATIVE column is 1 - the highest target probability; nonspeech/models/outputs.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nonspeech.labels import NEGATIVE


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes) int64, rows true labels and columns predictions."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and equally long, got {y_true.shape} and {y_pred.shape}")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den is 0."""
    return np.divide(num, den, out=np.zeros(num.shape, dtype=np.float64), where=den > 0)


def metrics_from_confusion(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the matrix itself, as JSON-ready values."""
    full = np.asarray(cm, dtype=np.int64)
    if full.shape != (len(class_names), len(class_names)):
        raise ValueError(f"confusion matrix shape {full.shape} does not match {len(class_names)} class names")
    names, negatives = list(class_names), {}
    if NEGATIVE in names:
        i = names.index(NEGATIVE)
        row = full[i]
        negatives = {"negatives_called_a_class": float((row.sum() - row[i]) / row.sum()) if row.sum() else 0.0}
        names.pop(i)
        cm = np.delete(np.delete(full, i, axis=0), i, axis=1)
    else:
        cm = full
    tp = np.diag(cm).astype(np.float64)
    total = cm.sum()
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()),
        **negatives,
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)
        },
        "confusion_matrix": full.tolist(),
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """metrics_from_confusion of the confusion matrix of integer labels y_true and y_pred."""
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(class_names)), class_names)


def cv_summary(per_fold_macro_f1: Mapping[str, float]) -> dict[str, Any]:
    """Per-fold macro-F1 with its mean and population standard deviation (ddof=0) across folds."""
    if not per_fold_macro_f1:
        raise ValueError("cv_summary needs at least one fold")
    scores = np.array(list(per_fold_macro_f1.values()), dtype=np.float64)
    return {
        "per_fold": {fold: float(v) for fold, v in per_fold_macro_f1.items()},
        "mean": float(scores.mean()),
        "std": float(scores.std()),
    }
