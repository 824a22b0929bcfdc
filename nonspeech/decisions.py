"""Clip decisions: the score each class's threshold applies to, by a decision rule, and the classes detected.

`probability`: a class is detected when its probability reaches its threshold. `versus_other`: the most probable
target class is detected when p(class) / (p(class) + p(other)) reaches its threshold, so probability spread over
similar classes (a cough that is a little like a sneeze) does not hide it; without an `other` class the score is
the probability.
"""

from __future__ import annotations

import numpy as np

from nonspeech.labels import NEGATIVE, negative_index

RULES = ("probability", "versus_other")
DEFAULT_RULE = "probability"  # what checkpoints that name no rule were calibrated with


def check_rule(rule: str) -> str:
    """`rule`, or ValueError naming the valid ones."""
    if rule not in RULES:
        raise ValueError(f"unknown decision rule {rule!r}; valid: {', '.join(RULES)}")
    return rule


def decision_scores(probabilities: np.ndarray, classes: list[str], rule: str) -> np.ndarray:
    """Scores (..., classes) that thresholds apply to under `rule`; NEGATIVE's column is 0."""
    other = negative_index(classes)
    if check_rule(rule) == "probability" or other is None:
        scores = np.array(probabilities, dtype=np.float64)
    else:
        p = np.asarray(probabilities, dtype=np.float64)
        scores = p / np.maximum(p + p[..., other: other + 1], np.finfo(np.float64).tiny)
    if other is not None:
        scores[..., other] = 0.0
    return scores


def candidate_scores(probabilities: np.ndarray, classes: list[str], rule: str) -> np.ndarray:
    """decision_scores where `rule` can detect the class, -inf elsewhere: NEGATIVE always, and under `versus_other`
    every target class but the most probable."""
    targets = np.array([label != NEGATIVE for label in classes])
    candidates = np.broadcast_to(targets, np.shape(probabilities))
    if rule == "versus_other":
        top = np.argmax(np.where(targets, np.asarray(probabilities), -np.inf), axis=-1)
        candidates = candidates & (np.arange(len(classes)) == top[..., None])
    return np.where(candidates, decision_scores(probabilities, classes, rule), -np.inf)


def detected(probabilities: np.ndarray, classes: list[str], thresholds: np.ndarray, rule: str) -> np.ndarray:
    """Boolean (clips, classes): under `probability` every target class whose probability reaches its threshold,
    under `versus_other` the most probable target class when its score reaches its threshold."""
    return candidate_scores(probabilities, classes, rule) >= np.asarray(thresholds)
