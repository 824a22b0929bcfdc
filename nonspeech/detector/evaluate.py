"""The detector's figures, by the field's scorer (sed_eval): 1 s segment F1 and event F1 (onset ±200 ms) with false
alarms, and how far into events their onsets are decided, on the out-of-fold CV scenes and on the test scenes; and
top-class macro-F1 on the isolated clips (test, and CV out of fold)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from nonspeech.data.audio import load_clips
from nonspeech.detector.fit import column_boundaries, column_probabilities
from nonspeech.detector.postprocess import Columns, scene_decisions
from nonspeech.detector.train import load_out_of_fold, normalised, scene_columns
from nonspeech.evaluation.metrics import classification_metrics
from nonspeech.evaluation.sed_metrics import sed_scores
from nonspeech.evaluation.timeline import score_timeline
from nonspeech.evaluation.timeline_inputs import read_reference
from nonspeech.events import Event
from nonspeech.inference.detect import Decision, closed_events
from nonspeech.inference.model import clip_samples
from nonspeech.inference.torch_model import torch_model
from nonspeech.labels import NEGATIVE, negative_index
from nonspeech.models.checkpoint import hysteresis_of, model_from_checkpoint
from nonspeech.report import print_summary

BATCH = 16
EARLY = 1.0  # a decision may begin this long before a reference event's onset and still be that event's


def decisions_of(event: Event, told: list[Decision]) -> list[int]:
    """Indices of the decisions of the reference event's class whose event begins from EARLY seconds before its onset
    to its end: the event's own."""
    return [k for k, d in enumerate(told)
            if d.event.label == event.label and event.start - EARLY <= d.event.start <= event.end]


def onset_heard(told: dict[str, list[Decision]], reference: dict[str, list[Event]]) -> np.ndarray:
    """Per reference target event of the scenes (their decisions by name: scene_decisions), how far into it the cell
    that decided its onset ends: when `listen` has heard enough to begin it (its onset line comes the look-ahead and
    a batch later); NaN where none begins."""
    heard = []
    for name, made in told.items():
        onsets = [d for d in made if not d.closed]
        for event in (e for e in reference.get(name, []) if e.label != NEGATIVE):
            mine = decisions_of(event, onsets)
            heard.append(onsets[mine[0]].at - event.start if mine else np.nan)
    return np.array(heard)


def heard_figures(heard: np.ndarray) -> dict[str, float | None]:
    """p50 and p95 of onset_heard over the events begun, and the share of all events begun within 1 s of their onset."""
    begun = heard[~np.isnan(heard)]
    return {"onset_heard_p50": float(np.percentile(begun, 50)) if len(begun) else None,
            "onset_heard_p95": float(np.percentile(begun, 95)) if len(begun) else None,
            "onset_heard_within_1s": float(np.sum(begun <= 1.0) / len(heard)) if len(heard) else None}


def scene_figures(checkpoint: dict, scenes: dict[str, Columns], reference: dict) -> dict[str, object]:
    """Segment and event macro-F1 (sed_eval), false-alarm seconds per minute, how far into events their onsets are
    decided (heard_figures) and per-class F1s of the scenes' events under the checkpoint's thresholds and median
    filters."""
    classes = list(checkpoint["classes"])
    decided = scene_decisions(scenes, classes, checkpoint["thresholds"], checkpoint["median_seconds"],
                              checkpoint["hops_per_column"], hysteresis_of(checkpoint),
                              checkpoint.get("boundary_radius", {}))
    system = {name: closed_events(told, windows, classes) for name, (windows, told) in decided.items()}
    durations = {name: c.seconds for name, c in scenes.items()}
    targets = [c for c in classes if c != NEGATIVE]
    sed = sed_scores(reference, system, durations, targets)
    return {
        "segment_macro_f1": sed.segment_macro_f1, "event_macro_f1": sed.event_macro_f1,
        "false_alarms_per_minute": score_timeline(reference, system, durations).false_alarms_per_minute,
        **heard_figures(onset_heard({name: told for name, (_, told) in decided.items()}, reference)),
        "segment_f1": {k: v["f1"] for k, v in sed.segment_per_class.items()},
        "event_f1": {k: v["f1"] for k, v in sed.event_per_class.items()},
    }


def top_class_figures(probabilities: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Top-class macro-F1 and accuracy of clips' class probabilities against their labels."""
    scores = classification_metrics(np.array([classes.index(t) for t in labels]), probabilities.argmax(1), classes)
    return {"macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"]}


def clip_figures(checkpoint: dict, manifest: pd.DataFrame, out_of_fold: np.ndarray) -> dict[str, object]:
    """Top-class figures of the detector on the isolated test clips, as `predict` classifies them, and (`cv_`) of
    the CV clips scored out of fold (out_of_fold: probabilities of the manifest's clips, NaN for the test split's)."""
    features, test = checkpoint["features"], manifest["split"] == "test"
    files = list(manifest.loc[test, "file"])
    model = torch_model(checkpoint)
    probabilities = np.concatenate([
        model.probabilities(load_clips(files[lo:lo + BATCH], features["sample_rate"], clip_samples(features)))
        for lo in range(0, len(files), BATCH)])
    scored = ~np.isnan(out_of_fold).any(axis=1)
    cv = top_class_figures(out_of_fold[scored], manifest["label"].to_numpy()[scored], model.classes)
    return {**top_class_figures(probabilities, manifest.loc[test, "label"].to_numpy(), model.classes),
            **{f"cv_{key}": value for key, value in cv.items()}}


def evaluate_detector(
    checkpoint: dict, scenes_dir: Path, frames_path: Path, out_of_fold_path: Path,
    manifest: pd.DataFrame,
) -> dict[str, object]:
    """metrics.json of a detector: `cv` (out-of-fold scenes), `test` (test scenes) and `clips` (isolated test clips)."""
    group = zarr.open_group(frames_path, mode="r")
    attrs = dict(group.attrs)
    table = pd.read_csv(scenes_dir / "scenes.csv")
    reference = read_reference(scenes_dir / "events.csv")
    cv, clips = load_out_of_fold(out_of_fold_path, attrs)
    test = (table["fold"] < 0).to_numpy()
    head, negative = model_from_checkpoint(checkpoint), negative_index(list(checkpoint["classes"]))
    embeddings = normalised(group["embeddings"].oindex[np.flatnonzero(test)], checkpoint["normalization"])
    test_columns = scene_columns(table["scene"][test], column_probabilities(head, embeddings, negative),
                                 column_boundaries(head, embeddings, negative), attrs)
    metrics = {
        "cv": scene_figures(checkpoint, cv, reference),
        "test": scene_figures(checkpoint, test_columns, reference),
        "clips": clip_figures(checkpoint, manifest, clips),
    }
    print_summary("detector evaluation", {
        f"{part} {key}": round(value, 3) for part, figures in metrics.items() for key, value in figures.items()
        if isinstance(value, float)})
    return metrics
