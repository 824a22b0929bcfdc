"""Every training recipe on real recordings: a whole `dvc repro` (ingest to evaluate) per recipe, in a throwaway
git + DVC copy of the project, with test macro-F1, CV macro-F1 and wall time as a table.

Usage: python bench/realsounds_recipes.py [--root ../shared/realsounds] [--recipes embed finetune scratch timeline]
                                          [--negatives] [--background] [--keep DIR] [--seconds S]
                                          [--set train.epochs=20 ...]
                                          [--extra ../shared/realsounds-extra --map babycry=crying]

Recipes start from configs/pretrained.yaml (embed: frozen AudioSet body + linear head) and change only
what README "Real recordings" says to change for fine-tuning or for the resnet from scratch; `timeline` is
configs/timeline.yaml as it stands (fine-tuning on 2 s clips with the negatives mixed in: needs --negatives);
`detector` is configs/detector.yaml (the embed recipe plus the sound-event detector on scenes synthesised over the
negatives: needs --negatives), whose detector figures (data/detector/sed/metrics.json) are printed too.
With --extra, a second folder source (labels mapped by --map) and its negatives/ are trained on too, as
data.sources entries `extra` and `extra_negatives`, each with the test split it has alone (so bench/decisions.py
scores each set's own test split); the evaluate stage's per-source figures are printed under the row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from repro_time import PROJECT, copy_pipeline, timed_repro

from nonspeech.data.sources.folder import list_folder

FINETUNE_KEYS = ("embed", "inputs", "model", "train")  # taken from configs/timeline.yaml: fine-tuning mn04
SCRATCH_KEYS = ("features", "embed", "inputs", "model", "train")  # taken from params.yaml: the demo resnet recipe
RECIPES = ("embed", "finetune", "scratch", "timeline", "detector")


def load(config: str) -> dict:
    """A params file of the project."""
    return yaml.safe_load((PROJECT / config).read_text())


def recipe_params(name: str, root: Path, negatives: bool, background: bool, seconds: float | None = None) -> dict:
    """configs/pretrained.yaml on `root`, changed into recipe `name` (timeline: configs/timeline.yaml); with
    `negatives`, root/negatives as data.negatives; with `background`, those mixed into training clips (spectrogram
    recipes; the timeline recipe always mixes them); `seconds` sets the clip and window length."""
    params = load({"timeline": "configs/timeline.yaml", "detector": "configs/detector.yaml"}.get(name, "configs/pretrained.yaml"))
    params["data"]["root"] = str(root.resolve())
    params["data"]["negatives"] = str((root / "negatives").resolve()) if negatives else "data/raw/negatives"
    for detector in params["detector"].values():
        detector["backgrounds"] = params["data"]["negatives"]
    if name == "finetune":
        timeline = load("configs/timeline.yaml")
        params = {**params, **{key: timeline[key] for key in FINETUNE_KEYS}}
    if name == "scratch":
        demo = load("params.yaml")
        params = {**params, **{key: demo[key] for key in SCRATCH_KEYS}}
        params["train"] = {**params["train"], "epochs": 30}
    if name not in ("timeline", "detector"):
        params["train"]["augment"]["background"]["enabled"] = background
    if seconds:
        params["audio"]["seconds"] = seconds
    return params


def set_dotted(params: dict, assignment: str) -> None:
    """Apply one `a.b.c=VALUE` (VALUE read as YAML) to nested params."""
    dotted, _, value = assignment.partition("=")
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = yaml.safe_load(value)


def extra_sources(root: Path, class_map: dict[str, str]) -> dict[str, dict]:
    """data.sources entries for a second folder source and its negatives/: every class kept, those in class_map
    renamed."""
    labels = sorted(set(list_folder(root.resolve())["label"]))
    sources = {"extra": {"root": str(root.resolve()), "class_map": {label: class_map.get(label, label) for label in labels}}}
    if (root / "negatives").is_dir():
        sources["extra_negatives"] = {"root": str((root / "negatives").resolve())}
    return sources


def run_recipe(
    name: str, root: Path, negatives: bool, background: bool, keep: Path | None, seconds: float | None,
    assignments: list[str],
) -> dict:
    """Test and CV metrics and wall time of one recipe's whole `dvc repro`; its model copied to keep/NAME.pt, its
    data/eval metrics.json and detection.json to keep/NAME_metrics.json and NAME_detection.json, and each CV fold's
    out-of-fold predictions (what thresholds are calibrated on) to keep/NAME_fold{k}_predictions.csv."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        copy_pipeline(repo)
        params = recipe_params(name, root, negatives, background, seconds)
        for assignment in assignments:
            set_dotted(params, assignment)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qam", name],
                       cwd=repo, check=True)
        total, stages = timed_repro(repo, [])
        metrics = json.loads((repo / "data/eval/metrics.json").read_text())
        detection = json.loads((repo / "data/eval/detection.json").read_text())
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(repo / "data/models/final/model.pt", keep / f"{name}.pt")
            for report in ("metrics", "detection"):
                shutil.copy(repo / f"data/eval/{report}.json", keep / f"{name}_{report}.json")
            for predictions in sorted((repo / "data/models").glob("fold*/predictions.csv")):
                shutil.copy(predictions, keep / f"{name}_{predictions.parent.name}_predictions.csv")
            for detector in sorted((repo / "data/detector").glob("*/model.pt")):
                shutil.copy(detector, keep / f"{name}_{detector.parent.name}.pt")
                shutil.copy(detector.parent / "metrics.json", keep / f"{name}_{detector.parent.name}_metrics.json")
        detectors = {path.parent.name: json.loads(path.read_text())
                     for path in sorted((repo / "data/detector").glob("*/metrics.json"))}
    print(f"{name}: " + ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in stages.items()))
    return {"recipe": name, "seconds": total, "detection": detection, "detectors": detectors, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=PROJECT.parent / "shared/realsounds", help="folder source root")
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--negatives", action="store_true", help="train with root/negatives as class other")
    parser.add_argument("--background", action="store_true", help="mix the negatives into training clips")
    parser.add_argument("--keep", type=Path, help="copy each recipe's final model.pt (and reports) here")
    parser.add_argument("--seconds", type=float, help="audio.seconds: clip and window length (default the config's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a further param change")
    parser.add_argument("--extra", type=Path, help="a second folder source with negatives/, trained on too")
    parser.add_argument("--map", nargs="*", default=[], metavar="FROM=TO", help="label map for --extra")
    args = parser.parse_args()
    if {"timeline", "detector"} & set(args.recipes) and not args.negatives:
        parser.error("the timeline and detector recipes mix the negatives into training: add --negatives")
    if args.extra and not args.negatives:
        parser.error("--extra merges both sets' negatives/: add --negatives")
    if args.extra:
        class_map = dict(item.split("=", 1) for item in args.map)
        args.set.insert(0, "data.sources=" + json.dumps(extra_sources(args.extra, class_map)))
    run_recipes(args)


def run_recipes(args: argparse.Namespace) -> None:
    """Each recipe's whole `dvc repro`, its row printed when done, the table at the end."""
    header = (
        f"\n== recipes on {args.root}, negatives {args.negatives}, background {args.background} ({os.cpu_count()} cores) ==\n"
        "| recipe | test macro-F1 | test accuracy | CV macro-F1 (3 folds) | negatives called a class: top class "
        "| at calibrated thresholds | whole `dvc repro` |\n"
        "|---|---|---|---|---|---|---|"
    )
    lines = []
    for name in args.recipes:  # each row printed as soon as its recipe is done, the table again at the end
        row = run_recipe(name, args.root, args.negatives, args.background, args.keep, args.seconds, args.set)
        test, cv = row["test"], row["cv"]
        called = (test.get("negatives_called_a_class"), row["detection"].get("other", {}).get("called_a_class"))
        lines.append(f"| {name} | {test['macro_f1']:.3f} | {test['accuracy']:.3f} | {cv['macro_f1']:.3f} ± "
                     f"{cv['macro_f1_std']:.3f} | {' | '.join('-' if c is None else f'{c:.3f}' for c in called)} "
                     f"| {row['seconds']:.0f} s |")
        print(lines[-1], flush=True)
        for source, figures in row.get("sources", {}).items():
            print(f"  source {source}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in figures.items()), flush=True)
        for detector, figures in row["detectors"].items():
            print(f"detector {detector}: " + "; ".join(
                f"{part} " + ", ".join(f"{k} {v:.3f}" for k, v in values.items() if isinstance(v, float))
                for part, values in figures.items()), flush=True)
    print(header)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
