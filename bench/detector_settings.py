"""Detector settings compared by cross-validation: configs/detector.yaml on real recordings in a throwaway git + DVC
copy of the project, one `dvc exp run -S ...` per setting (only the detector stages a setting touches rerun), each
scored on its out-of-fold synthesised scenes (the selection signal), its test scenes and the isolated test clips,
and, as a final check never used to choose, on the real scenes.

Usage: python bench/detector_settings.py [--root ../shared/realsounds] [--scenes ../shared/realsounds/scenes]
           --setting base= --setting n600=detector.sed.scenes.count=600 \
           --setting ctx=detector.sed.model.layers=3,detector.sed.model.kernel=5
A setting is NAME=KEY=VALUE[,KEY=VALUE...] (empty after NAME=: configs/detector.yaml as it is).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import yaml
from repro_time import PROJECT, copy_pipeline, timed_repro
from scene_timeline import SCENES, system_events

from nonspeech.evaluation.sed_metrics import sed_scores
from nonspeech.evaluation.timeline import score_timeline
from nonspeech.evaluation.timeline_inputs import read_reference
from nonspeech.inference.detect import class_thresholds
from nonspeech.inference.torch_model import read_checkpoint, timeline_span, torch_model


def detector_params(root: Path) -> dict:
    """configs/detector.yaml on a folder source with negatives/, which are also the scenes' backgrounds."""
    params = yaml.safe_load((PROJECT / "configs/detector.yaml").read_text())
    params["data"]["root"], params["data"]["negatives"] = str(root.resolve()), str((root / "negatives").resolve())
    params["detector"]["sed"]["backgrounds"] = params["data"]["negatives"]
    return params


def real_scene_figures(model_path: Path, scenes: Path) -> str:
    """Segment and event macro-F1 (sed_eval) and false alarms of the detector on the real scenes, as predict makes
    its events (a hop of one column, the checkpoint's thresholds, median filters and hysteresis)."""
    checkpoint = read_checkpoint(model_path)
    model = torch_model(checkpoint, span=timeline_span(checkpoint, None))
    reference = read_reference(scenes / "events.csv")
    windows = {path.name: model.timeline(path, model.timeline_hop) for path in sorted(scenes.glob("*.wav"))}
    args = argparse.Namespace(hysteresis=model.hysteresis, min_duration=0.0)
    system = system_events(windows, model, class_thresholds(model.classes, model.thresholds, None), args, "mean", {})
    durations = {name: w.seconds for name, w in windows.items()}
    sed = sed_scores(reference, system, durations, [c for c in model.classes if c != "other"])
    false_alarms = score_timeline(reference, system, durations).false_alarms_per_minute
    return f"{sed.segment_macro_f1:.3f} | {sed.event_macro_f1:.3f} | {false_alarms:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=PROJECT.parent / "shared/realsounds", help="folder source root")
    parser.add_argument("--scenes", type=Path, default=SCENES, help="real scenes with events.csv (final check)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=KEY=VALUE,...")
    args = parser.parse_args()
    settings = {name: [s for s in sets.split(",") if s] for name, _, sets in (s.partition("=") for s in args.setting)}
    print("| setting | CV segment F1 | CV event F1 | CV FA s/min | test-scene segment F1 | test-scene event F1 "
          "| isolated clips F1: test | CV | real scenes: segment F1 | event F1 | FA s/min | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        copy_pipeline(repo)
        (repo / "params.yaml").write_text(yaml.safe_dump(detector_params(args.root), sort_keys=False))
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qam",
                        "detector"], cwd=repo, check=True)
        for name, sets in settings.items():
            subprocess.run(["git", "checkout", "-q", "--", "params.yaml"], cwd=repo, check=True)  # each from the base
            seconds, _ = timed_repro(repo, [*sets, "detector.sed.train.device=cpu"])
            figures = json.loads((repo / "data/detector/sed/metrics.json").read_text())
            cv, test = figures["cv"], figures["test"]
            real = real_scene_figures(repo / "data/detector/sed/model.pt", args.scenes)
            print(f"| {name} | {cv['segment_macro_f1']:.3f} | {cv['event_macro_f1']:.3f} | "
                  f"{cv['false_alarms_per_minute']:.2f} | {test['segment_macro_f1']:.3f} | {test['event_macro_f1']:.3f} "
                  f"| {figures['clips']['macro_f1']:.3f} | {figures['clips']['cv_macro_f1']:.3f} | {real} | {seconds:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
