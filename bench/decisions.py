"""Clip decisions of trained checkpoints on real test clips, threshold-free and at the shipped thresholds: per class
the detection recall and precision at the checkpoint's thresholds, average precision (of the probability), and the
recall where 5% of the test negatives are detected as that class (by the rule's score: the probability, or for the
top target p / (p + p(other)));
the share of test negatives detected at all; the thresholds; the top-class macro-F1 of the target clips (over the
classes the set has).

Usage: python bench/decisions.py --models DIR1/embed.pt DIR2/embed.pt ... [--root ../shared/realsounds]
                                 [--extra ../shared/realsounds-extra --map babycry=crying]
                                 [--threshold T] [--rule probability|versus_other]
                                 [--ensemble-with DIR1/finetune.pt DIR2/finetune.pt ...]

Each model is one training run (e.g. a seed: `python bench/realsounds_recipes.py --recipes embed --negatives
--keep DIR --set train.seed=1`). The test split is the one ingest makes from `--root` (and its negatives/, whose
test share is carved with configs/pretrained.yaml's data.test_fraction and split_seed). With `--extra`, the test
split of a second set, its labels mapped by `--map`, is scored the same way. Figures per model, then the mean.
With `--ensemble-with`, each run is an ensemble: the mean of its model's probabilities and its partner's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import average_precision_score, f1_score

from nonspeech.data.sources.listing import list_clips
from nonspeech.decisions import RULES, candidate_scores, detected
from nonspeech.inference.detect import class_thresholds
from nonspeech.inference.model import LoadedModel
from nonspeech.inference.torch_model import read_checkpoint, torch_model
from nonspeech.labels import NEGATIVE

PROJECT = Path(__file__).resolve().parents[1]
NEGATIVES_DETECTED = 0.05  # the operating point: this share of test negatives detected as the class


def source_clips(root: Path, class_map: dict[str, str]) -> pd.DataFrame:
    """Every clip of a folder source and its negatives/ (label NEGATIVE), split as configs/pretrained.yaml's
    data.test_fraction and split_seed split them, labels mapped, absolute paths."""
    data = yaml.safe_load((PROJECT / "configs/pretrained.yaml").read_text())["data"]
    root = root.resolve()
    negatives = root / "negatives"
    clips, _ = list_clips("folder", root, data["test_fraction"], data["split_seed"], None,
                          negatives if negatives.is_dir() else None)
    paths = [p if Path(p).is_absolute() else str(root / p) for p in clips["path"]]
    return clips.assign(path=paths, label=clips["label"].replace(class_map))


def test_clips(root: Path, class_map: dict[str, str]) -> pd.DataFrame:
    """The test split of source_clips."""
    clips = source_clips(root, class_map)
    return clips[clips["split"] == "test"].reset_index(drop=True)


def clip_probabilities(model: LoadedModel, clips: pd.DataFrame) -> np.ndarray:
    """(clips, classes) probabilities of the clips, as `predict` gives them."""
    results = list(model.classify([Path(p) for p in clips["path"]]))
    assert not any(r.error for r in results), [r.error for r in results if r.error]
    return np.stack([r.probabilities for r in results])


def scores(
    model_paths: list[Path], clips: pd.DataFrame, threshold: float | None, rule: str | None,
) -> dict[str, dict[str, float]]:
    """Per target class present in `clips`: recall, precision, AP and recall at 5% negatives detected of its
    decision score, threshold (the first checkpoint's, or `threshold` for all, by its rule or `rule`); under
    NEGATIVE the share of negatives with any detection, and the top-class macro-F1 of the target clips. Several
    checkpoints (with the same classes) are an ensemble: the mean of their probabilities."""
    models = [torch_model(read_checkpoint(path)) for path in model_paths]
    model = models[0]
    if any(m.classes != model.classes for m in models):
        raise SystemExit(f"an ensemble needs the same classes: {model_paths} differ")
    probabilities = np.mean([clip_probabilities(m, clips) for m in models], axis=0)
    rule = rule or model.decision_rule
    thresholds = class_thresholds(model.classes, model.thresholds, threshold)
    found = detected(probabilities, model.classes, thresholds, rule)
    targets = [i for i, label in enumerate(model.classes) if label != NEGATIVE]
    score = np.maximum(candidate_scores(probabilities, model.classes, rule), 0.0)  # 0 where the rule cannot detect
    labels = clips["label"].to_numpy()
    negative = labels == NEGATIVE
    table = {}
    for i in targets:
        label = model.classes[i]
        truth = labels == label
        if not truth.any():
            continue
        at_5 = np.quantile(score[negative, i], 1 - NEGATIVES_DETECTED) if negative.any() else 1.0
        table[label] = {
            "recall": found[truth, i].mean(),
            "precision": (truth & found[:, i]).sum() / max(found[:, i].sum(), 1),
            "ap": average_precision_score(truth, probabilities[:, i]),
            "recall_at_5": (score[truth, i] > at_5).mean(),
            "threshold": thresholds[i],
        }
    top = np.array(model.classes)[np.array(targets)[probabilities[~negative][:, targets].argmax(1)]]
    table[NEGATIVE] = {"detected": found[np.ix_(negative, targets)].any(axis=1).mean() if negative.any() else np.nan,
                       "macro_f1": f1_score(labels[~negative], top, labels=sorted(set(labels[~negative])), average="macro")}
    return table


def print_table(title: str, per_model: list[dict[str, dict[str, float]]]) -> None:
    """One markdown table: each class's figures as the mean over models, with the thresholds' range."""
    classes = [label for label in per_model[0] if label != NEGATIVE]
    print(f"\n== {title}: mean of {len(per_model)} model(s) ==")
    print("| class | detection recall | precision | AP | recall at 5% negatives detected | thresholds (range) |")
    print("|---|---|---|---|---|---|")
    for label in classes:
        mean = {key: np.mean([m[label][key] for m in per_model]) for key in ("recall", "precision", "ap", "recall_at_5")}
        low, high = (f([m[label]["threshold"] for m in per_model]) for f in (min, max))
        print(f"| {label} | {mean['recall']:.3f} | {mean['precision']:.3f} | {mean['ap']:.3f} | "
              f"{mean['recall_at_5']:.3f} | {low:.2f}–{high:.2f} |")
    shares, f1 = ([m[NEGATIVE][key] for m in per_model] for key in ("detected", "macro_f1"))
    print(f"test negatives detected as a class: {np.mean(shares):.3f} (" + " / ".join(f"{s:.3f}" for s in shares) + ")")
    print(f"top-class macro-F1 of the target clips: {np.mean(f1):.3f} (" + " / ".join(f"{s:.3f}" for s in f1) + ")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="checkpoints, one per training run")
    parser.add_argument("--root", type=Path, default=PROJECT.parent / "shared/realsounds")
    parser.add_argument("--extra", type=Path, help="a second folder source, scored on its own test split")
    parser.add_argument("--map", nargs="*", default=[], metavar="FROM=TO", help="label map for --extra")
    parser.add_argument("--threshold", type=float, help="decide every class at this threshold, not the checkpoint's")
    parser.add_argument("--rule", choices=RULES, help="decide by this rule, not the checkpoint's")
    parser.add_argument("--ensemble-with", type=Path, nargs="+", action="append", default=[], metavar="CHECKPOINT",
                        help="one checkpoint per --models entry: each run is scored as the mean of its model's and "
                             "this one's probabilities (repeat for larger ensembles)")
    args = parser.parse_args()
    if any(len(partners) != len(args.models) for partners in args.ensemble_with):
        parser.error("--ensemble-with takes one checkpoint per --models entry")
    sets = [(args.root, {})]
    if args.extra:
        sets.append((args.extra, dict(item.split("=", 1) for item in args.map)))
    for root, class_map in sets:
        clips = test_clips(root, class_map)
        counts = ", ".join(f"{label} {n}" for label, n in clips["label"].value_counts().sort_index().items())
        print(f"\n{root}: {len(clips)} test clips ({counts})")
        runs = [[path, *partners] for path, *partners in zip(args.models, *args.ensemble_with)]
        per_model = [scores(run, clips, args.threshold, args.rule) for run in runs]
        for run, table in zip(runs, per_model):
            recalls = " ".join(f"{label} {v['recall']:.2f}" for label, v in table.items() if label != NEGATIVE)
            print(f"{' + '.join(map(str, run))}: detection recall {recalls}")
        print_table(str(root), per_model)


if __name__ == "__main__":
    main()
