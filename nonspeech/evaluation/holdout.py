"""The evaluate stage: the shipped model on the held-out test split, the CV summary, and their report files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nonspeech.data.loader import batch_loader, batch_pipeline
from nonspeech.data.shard_set import read_meta, shard_set
from nonspeech.devices.select import on_device, resolve_device
from nonspeech.evaluation.metrics import classification_metrics, cv_summary
from nonspeech.evaluation.sums import Predictions, evaluate, padded, summarize
from nonspeech.evaluation.thresholds import detection_scores, detection_summary
from nonspeech.features.frontends import describe
from nonspeech.features.normalize import Normalize
from nonspeech.labels import NEGATIVE, negative_index
from nonspeech.models.checkpoint import decision_rule_of, load_checkpoint, model_from_checkpoint, output_of
from nonspeech.report import print_summary


def confident_errors(predictions: Predictions, classes: list[str], n: int) -> pd.DataFrame:
    """The n misclassified clips whose predicted class got the highest probability."""
    predicted = predictions.probabilities.argmax(1)
    table = pd.DataFrame({
        "clip_id": predictions.clip_ids,
        "true": [classes[i] for i in predictions.labels],
        "predicted": [classes[i] for i in predicted],
        "probability": predictions.probabilities.max(1).round(4),
        "true_probability": predictions.probabilities[np.arange(len(predicted)), predictions.labels].round(4),
    })
    wrong = table[predicted != predictions.labels]
    return wrong.sort_values(["probability", "clip_id"], ascending=[False, True]).head(n)


def predictions_table(predictions: Predictions, classes: list[str]) -> pd.DataFrame:
    """One row per clip: clip_id, true label and the probability of every class."""
    table = pd.DataFrame(predictions.probabilities, columns=classes).round(6)
    return pd.concat([pd.DataFrame({"clip_id": predictions.clip_ids, "label": [classes[i] for i in predictions.labels]}), table], axis=1)


def check_compatible(checkpoint: dict, meta: dict, model_path: Path, shards_root: str | Path) -> None:
    """ValueError unless the model was trained on these classes and feature parameters."""
    if checkpoint["classes"] != meta["classes"]:
        raise ValueError(f"{model_path}: the model's classes {checkpoint['classes']} differ from the shards' {meta['classes']}")
    if checkpoint["features"] != meta["features"]:
        raise ValueError(
            f"{model_path} was trained on {describe(checkpoint['features'])}, but {shards_root} holds "
            f"{describe(meta['features'])}: retrain it, or evaluate it on shards made with its features"
        )


def score_checkpoint(
    model_path: Path, shards_root: str | Path, splits: list[str], device_name: str, batch_size: int, workers: int,
    bf16: bool,
) -> tuple[dict, Predictions, list[str]]:
    """Metrics and per-clip predictions of a saved model on `splits`, and the class names."""
    checkpoint, meta = load_checkpoint(model_path), read_meta(shards_root)
    check_compatible(checkpoint, meta, model_path, shards_root)
    classes = meta["classes"]
    shards = shard_set(shards_root, splits, classes)
    device = resolve_device(device_name)
    model = model_from_checkpoint(checkpoint).to(device)
    normalize = Normalize(checkpoint["normalization"]["mean"], checkpoint["normalization"]["std"]).to(device)
    batches = padded(batch_loader(batch_pipeline(shards.urls, batch_size, shuffle=False), workers), batch_size)
    sums, predictions = evaluate(
        lambda x: model(normalize(x)), on_device(batches, device), len(classes), device, bf16, keep_predictions=True,
        negative=negative_index(classes), output=output_of(checkpoint),
    )
    return summarize(sums, classes), predictions, classes


def source_scores(table: pd.DataFrame, classes: list[str], thresholds: dict[str, float], rule: str) -> dict:
    """Figures of one source's rows of a predictions table: clip count; for its target clips the top-class accuracy
    and macro-F1 over the target classes it has (the most probable target class predicted); detection figures."""
    scores: dict = {"clips": len(table)}
    targets = table[table["label"] != NEGATIVE]
    if len(targets):
        names = [name for name in classes if name != NEGATIVE]
        truth = targets["label"].map(names.index).to_numpy()
        predicted = targets[names].to_numpy().argmax(1)
        per_class = classification_metrics(truth, predicted, names)["per_class"]
        scores["accuracy"] = float((truth == predicted).mean())
        scores["macro_f1"] = float(np.mean([v["f1"] for v in per_class.values() if v["support"]]))
    return {**scores, **detection_summary(detection_scores(table, thresholds, rule))}


def evaluate_model(
    model_path: Path, shards_root: str | Path, splits: list[str], fold_metrics: dict[str, Path], out_dir: Path,
    device_name: str, batch_size: int, workers: int, bf16: bool, n_errors: int,
) -> dict:
    """Score the model on `splits`; write to out_dir metrics.json (the numbers experiments are compared by: test
    macro-F1, accuracy and loss, and with negatives how often they are called a class; mean and std of the
    folds' macro-F1; when the shards' meta.json names several sources of the test clips, source_scores of
    each), per_class.csv, confusion.csv, cv_folds.csv, errors.csv and detection.json (per-class precision and
    recall at the model's thresholds)."""
    start = time.perf_counter()
    test, predictions, classes = score_checkpoint(model_path, shards_root, splits, device_name, batch_size, workers, bf16)
    folds = {name: json.loads(Path(path).read_text())["val"]["macro_f1"] for name, path in fold_metrics.items()}
    cv = cv_summary(folds)
    checkpoint = load_checkpoint(model_path)
    thresholds, rule = checkpoint.get("thresholds") or {}, decision_rule_of(checkpoint)
    table = predictions_table(predictions, classes)
    detection = detection_scores(table, thresholds, rule)
    metrics = {
        "test": {
            **{key: test[key] for key in ("macro_f1", "accuracy", "loss", "negatives_called_a_class") if key in test},
            **detection_summary(detection),
        },
        "cv": {"macro_f1": cv["mean"], "macro_f1_std": cv["std"]},
    }
    source_of = table["clip_id"].map(read_meta(shards_root).get("test_sources", {}))
    if source_of.nunique() > 1:
        metrics["sources"] = {name: source_scores(table[source_of == name], classes, thresholds, rule)
                              for name in sorted(source_of.dropna().unique())}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    pd.DataFrame.from_dict(test["per_class"], orient="index").rename_axis("class").to_csv(out_dir / "per_class.csv")
    pd.DataFrame({
        "clip_id": predictions.clip_ids,
        "actual": [classes[i] for i in predictions.labels],
        "predicted": [classes[i] for i in predictions.probabilities.argmax(1)],
    }).to_csv(out_dir / "confusion.csv", index=False)
    pd.DataFrame({"fold": list(folds), "macro_f1": list(folds.values())}).to_csv(out_dir / "cv_folds.csv", index=False)
    errors = confident_errors(predictions, classes, n_errors)
    errors.to_csv(out_dir / "errors.csv", index=False)
    (out_dir / "detection.json").write_text(json.dumps(detection, indent=1) + "\n")
    print_summary("evaluate", {
        "test clips": len(predictions.clip_ids), "test loss": round(test["loss"], 4),
        "test accuracy": round(test["accuracy"], 4), "test macro-F1": round(test["macro_f1"], 4),
        "CV macro-F1": f"{cv['mean']:.4f} ± {cv['std']:.4f} over {len(folds)} folds",
        "errors listed": len(errors), "seconds": round(time.perf_counter() - start, 1),
    })
    if "sources" in metrics:
        print_summary("test by source", {name: ", ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                                                         for key, value in scores.items())
                                         for name, scores in metrics["sources"].items()})
    return metrics
