"""A checkpoint's timeline on real scenes, scored against their reference events: 1 s segment F1 per class and macro,
false-alarm seconds per minute, and the speed of the timeline.

Usage: python bench/scene_timeline.py --model data/models/final/model.pt [--scenes ../shared/realsounds/scenes]
           [--hop 0.25] [--span S] [--exact] [--deviation] [--threshold P] [--hysteresis 0.1] [--min-duration 0] [--pool mean]
           [--sweep-thresholds 0.3 0.5 0.7 0.9]   (also print macro-F1 and false alarms for each, both pools)
           [--events]   (also list every reference event with its level over the scene's background and the classes
                         that scored highest inside it)
           [--oracle]   (also the per-class thresholds that score best on these scenes: a bound, not a result)
Without --threshold the checkpoint's per-class thresholds are used (0.5 where it has none), as `predict` does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nonspeech.audio import decode_mono
from nonspeech.events import POOLS, Windows, cell_scores, class_thresholds, detect
from nonspeech.labels import NEGATIVE
from nonspeech.predict import classify_recording, read_checkpoint, timeline_span, torch_model
from nonspeech.scoring import Event, Scores, read_reference, score_timeline

SCENES = Path(__file__).resolve().parents[2] / "shared/realsounds/scenes"
ORACLE_GRID = np.round(np.arange(0.05, 1.0, 0.05), 2)


def scores_for(windows: dict, reference: dict, model, thresholds, args: argparse.Namespace, pool: str) -> Scores:
    """Detect events in every scene's windows with these settings and score them."""
    system = {
        name: [Event(s.start, s.end, s.label) for s in detect(
            w, model.classes, thresholds, args.hysteresis, args.min_duration, pool)]
        for name, w in windows.items()
    }
    return score_timeline(reference, system, {name: w.seconds for name, w in windows.items()})


def deviation(windows: dict, checkpoint: dict, hop: float, span: float | None, scenes: Path) -> str:
    """How far the windows' probabilities are from those of `--exact` (each window alone) on the same scenes."""
    model = torch_model(checkpoint, exact=True, span=span)
    exact = [classify_recording(scenes / name, model, hop) for name in windows]
    shared = list(windows.values())
    difference = np.abs(np.concatenate([s.probabilities - e.probabilities for s, e in zip(shared, exact)]))
    same = np.concatenate([s.probabilities.argmax(1) == e.probabilities.argmax(1) for s, e in zip(shared, exact)])
    return (f"vs --exact: probabilities {difference.mean():.3f} apart on average, {difference.max():.2f} at most "
            f"(99th percentile of windows {np.quantile(difference.max(1), 0.99):.2f}); same top class for "
            f"{same.mean():.0%} of {len(same)} windows")


def oracle_thresholds(windows: dict, reference: dict, model, thresholds: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """Per target class, the threshold of ORACLE_GRID with the best segment F1 on these scenes (the lowest of ties),
    the other classes kept at theirs. Chosen on the scored scenes: the ceiling of threshold choice for this model."""
    best = thresholds.copy()
    for i, label in enumerate(model.classes):
        if label == NEGATIVE:
            continue

        def f1(threshold: float) -> float:
            trial = thresholds.copy()
            trial[i] = threshold
            return scores_for(windows, reference, model, trial, args, args.pool).per_class.get(label, {"f1": 0.0})["f1"]

        best[i] = max(ORACLE_GRID, key=f1)
    return best


def event_levels(path: Path, events: list[Event]) -> list[float]:
    """Per reference event, its power in dB over the scene's background: the mean power inside the event, less the
    background's, against the mean power outside every event of the scene."""
    audio = decode_mono(path)
    power = audio.samples ** 2
    spans = [slice(int(e.onset * audio.sample_rate), int(e.offset * audio.sample_rate)) for e in events]
    outside = np.ones(len(power), dtype=bool)
    for span in spans:
        outside[span] = False
    background = power[outside].mean()
    return [10 * np.log10(max(power[span].mean() / background - 1, 1e-6)) for span in spans]


def event_scores(windows: Windows, events: list[Event], levels: list[float], classes: list[str], pool: str) -> list[str]:
    """Per reference event: onset, offset, label, level over the background and the two classes with the highest
    score inside it."""
    edges, scores = cell_scores(windows, pool)
    middles = (edges[:-1] + edges[1:]) / 2
    lines = []
    for event, level in zip(events, levels):
        inside = scores[(middles >= event.onset) & (middles < event.offset)]
        best = inside.max(axis=0) if len(inside) else np.zeros(len(classes))
        top = ", ".join(f"{classes[i]} {best[i]:.2f}" for i in np.argsort(-best)[:2])
        lines.append(f"{event.onset:6.1f}-{event.offset:6.1f} s {event.label:9s} {level:5.1f} dB over the background, "
                     f"highest inside: {top}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="checkpoint")
    parser.add_argument("--scenes", type=Path, default=SCENES, help="folder of scene wavs and events.csv")
    parser.add_argument("--hop", type=float, default=0.25)
    parser.add_argument("--span", type=float, help="seconds at each window's centre that its scores describe (default: "
                        "half the window, as predict --window)")
    parser.add_argument("--threshold", type=float, help="one threshold for every class (default: the checkpoint's)")
    parser.add_argument("--hysteresis", type=float, default=0.1)
    parser.add_argument("--min-duration", type=float, default=0.0)
    parser.add_argument("--pool", choices=POOLS, default="mean")
    parser.add_argument("--exact", action="store_true", help="each window through the whole network (predict --exact)")
    parser.add_argument("--deviation", action="store_true", help="also print how far the windows are from --exact")
    parser.add_argument("--sweep-thresholds", type=float, nargs="*", default=[], metavar="P")
    parser.add_argument("--events", action="store_true", help="list each reference event's highest-scoring classes")
    parser.add_argument("--oracle", action="store_true", help="also the per-class thresholds that score best on these "
                        "scenes, and their macro-F1: tuned on the test scenes, the most thresholds can do for this model")
    args = parser.parse_args()
    checkpoint = read_checkpoint(args.model)
    model = torch_model(checkpoint, exact=args.exact, span=timeline_span(checkpoint, args.span))
    reference = read_reference(args.scenes / "events.csv")
    start = time.perf_counter()
    windows = {path.name: classify_recording(path, model, args.hop) for path in sorted(args.scenes.glob("*.wav"))}
    wall = time.perf_counter() - start
    seconds = sum(w.seconds for w in windows.values())
    print(f"{args.model}: {len(windows)} scenes, {seconds / 60:.1f} min, timeline at {seconds / wall:.0f}x real time "
          f"(hop {args.hop} s, span {model.span} s, {'exact' if args.exact else 'shared body'}); hysteresis {args.hysteresis}, "
          f"min duration {args.min_duration} s, pool {args.pool}")
    if args.deviation:
        print(deviation(windows, checkpoint, args.hop, model.span, args.scenes))
    thresholds = class_thresholds(model.classes, model.thresholds, args.threshold)
    print("thresholds: " + ", ".join(f"{c} {t:.2f}" for c, t in zip(model.classes, thresholds)))
    scores = scores_for(windows, reference, model, thresholds, args, args.pool)
    print("| class | precision | recall | segment F1 | reference segments | system segments |")
    print("|---|---|---|---|---|---|")
    for label, c in scores.per_class.items():
        print(f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['reference_segments']} "
              f"| {c['system_segments']} |")
    print(f"| **macro** | | | **{scores.macro_f1:.3f}** | | |")
    print(f"false alarms: {scores.false_alarms_per_minute:.1f} s per minute ({scores.false_alarm_seconds:.0f} s in "
          f"{scores.minutes:.1f} min)")
    for name, scene in windows.items() if args.events else ():
        events = reference.get(name, [])
        for line in event_scores(scene, events, event_levels(args.scenes / name, events), model.classes, args.pool):
            print(f"{name} {line}")
    if args.oracle:
        oracle = oracle_thresholds(windows, reference, model, thresholds, args)
        bound = scores_for(windows, reference, model, oracle, args, args.pool)
        print("oracle thresholds (chosen on these scenes): " + ", ".join(
            f"{c} {t:.2f}" for c, t in zip(model.classes, oracle) if c != NEGATIVE))
        print(f"oracle: macro-F1 {bound.macro_f1:.3f}, false alarms {bound.false_alarms_per_minute:.1f} s/min; per class "
              + ", ".join(f"{label} {c['f1']:.2f}" for label, c in bound.per_class.items()))
    for pool in POOLS if args.sweep_thresholds else ():
        for threshold in args.sweep_thresholds:
            swept = scores_for(windows, reference, model, class_thresholds(model.classes, {}, threshold), args, pool)
            print(f"pool {pool:4s} threshold {threshold:.2f}: macro-F1 {swept.macro_f1:.3f}, "
                  f"false alarms {swept.false_alarms_per_minute:.1f} s/min")


if __name__ == "__main__":
    main()
