"""A checkpoint's timeline on real scenes, scored against their reference events: 1 s segment F1 per class and macro,
false-alarm seconds per minute, and the speed of the timeline.

Usage: python bench/scene_timeline.py --model data/models/final/model.pt [--scenes ../shared/realsounds/scenes]
           [--hop S] [--span S] [--exact] [--deviation] [--threshold P] [--floor P] [--hysteresis F]
           [--min-duration 0] [--pool mean]
           [--sweep-thresholds 0.3 0.5 0.7 0.9]   (also print macro-F1 and false alarms for each, both pools)
           [--events]   (also list every reference event with its level over the scene's background and the classes
                         that scored highest inside it)
           [--oracle]   (also the per-class thresholds that score best on these scenes: a bound, not a result)
           [--breakdown]   (also count the wrong 1 s segments by kind: edge, confusion, non-target, background)
           [--set-aside SCENE:ONSET ...]   (score without these reference events: the 1 s segments they touch count
                                            for no class and their seconds for no false alarm)
Without --threshold the checkpoint's per-class thresholds are used (0.5 where it has none), as `predict` does.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

from nonspeech.cli import hysteresis
from nonspeech.data.audio import decode_mono
from nonspeech.evaluation.sed_metrics import sed_scores
from nonspeech.evaluation.timeline import SEGMENT_SECONDS, Scores, score_timeline, segment_activity
from nonspeech.evaluation.timeline_inputs import read_reference
from nonspeech.events import POOLS, Event
from nonspeech.inference.detect import Windows, cell_scores, class_thresholds, detect
from nonspeech.inference.torch_model import read_checkpoint, timeline_span, torch_model
from nonspeech.labels import NEGATIVE

SCENES = Path(__file__).resolve().parents[2] / "shared/realsounds/scenes"
ORACLE_GRID = np.round(np.arange(0.05, 1.0, 0.05), 2)


def system_events(windows: dict, model, thresholds, args: argparse.Namespace, pool: str, aside: dict) -> dict:
    """Every scene's detected events with these settings, the set-aside stretches cut out."""
    return {
        name: cut_out(detect(w, model.classes, thresholds, args.hysteresis, args.min_duration, pool), aside.get(name, []))
        for name, w in windows.items()
    }


def scores_for(
    windows: dict, reference: dict, model, thresholds, args: argparse.Namespace, pool: str, aside: dict,
) -> Scores:
    """Detect events in every scene's windows with these settings and score them."""
    system = system_events(windows, model, thresholds, args, pool, aside)
    return score_timeline(reference, system, {name: w.seconds for name, w in windows.items()})


def cut_out(events: list[Event], stretches: list[tuple[float, float]]) -> list[Event]:
    """The events with the stretches removed from them (an event may split in two or vanish)."""
    kept = []
    for event in events:
        pieces = [(event.start, event.end)]
        for start, end in stretches:
            pieces = [p for a, b in pieces for p in ((a, min(b, start)), (max(a, end), b)) if p[1] > p[0]]
        kept += [Event(a, b, event.label) for a, b in pieces]
    return kept


def aside_stretches(reference: dict, specs: list[str]) -> dict:
    """Scene name to the whole 1 s segments touched by the reference events named SCENE:ONSET; ValueError naming a
    spec that matches no event."""
    stretches: dict = {}
    for spec in specs:
        name, _, onset = spec.rpartition(":")
        try:
            at = float(onset)
        except ValueError:
            raise ValueError(f"--set-aside {spec}: expected SCENE:ONSET, e.g. scene00.wav:23.887") from None
        found = [e for e in reference.get(name, []) if abs(e.start - at) < 1e-3]
        if not found:
            raise ValueError(f"--set-aside {spec}: no reference event of {name or '(no scene)'} starts at {onset} s")
        stretches.setdefault(name, []).extend(
            (math.floor(e.start / SEGMENT_SECONDS) * SEGMENT_SECONDS,
             math.ceil(e.end / SEGMENT_SECONDS) * SEGMENT_SECONDS) for e in found)
    return stretches


def error_kinds(reference: dict, system: dict, durations: dict) -> tuple[Counter, Counter]:
    """Wrong 1 s segments by kind: false ones next to an event of their class (edge), inside another target's event
    (confusion), inside a non-target event (non-target) or on background; missed ones where another target class
    was reported or none."""
    classes = sorted({e.label for events in reference.values() for e in events} - {NEGATIVE}) + [NEGATIVE]
    false, missed = Counter(), Counter()
    for name, seconds in durations.items():
        truth = segment_activity(reference.get(name, []), classes, seconds)
        found = segment_activity(system.get(name, []), classes, seconds)
        for k in range(len(classes) - 1):
            for t in np.nonzero(found[:, k] & ~truth[:, k])[0]:
                if truth[max(t - 1, 0):t + 2, k].any():
                    false["edge"] += 1
                elif truth[t, :-1].any():
                    false["confusion"] += 1
                else:
                    false["non-target" if truth[t, -1] else "background"] += 1
            for t in np.nonzero(truth[:, k] & ~found[:, k])[0]:
                missed["called another class" if found[t, :-1].any() else "nothing found"] += 1
    return false, missed


def deviation(windows: dict, checkpoint: dict, hop: float, span: float | None, scenes: Path) -> str:
    """How far the windows' probabilities are from those of `--exact` (each window alone) on the same scenes."""
    model = torch_model(checkpoint, exact=True, span=span)
    exact = [model.timeline(scenes / name, hop) for name in windows]
    shared = list(windows.values())
    difference = np.abs(np.concatenate([s.probabilities - e.probabilities for s, e in zip(shared, exact)]))
    same = np.concatenate([s.probabilities.argmax(1) == e.probabilities.argmax(1) for s, e in zip(shared, exact)])
    return (f"vs --exact: probabilities {difference.mean():.3f} apart on average, {difference.max():.2f} at most "
            f"(99th percentile of windows {np.quantile(difference.max(1), 0.99):.2f}); same top class for "
            f"{same.mean():.0%} of {len(same)} windows")


def oracle_thresholds(
    windows: dict, reference: dict, model, thresholds: np.ndarray, args: argparse.Namespace, aside: dict,
) -> np.ndarray:
    """Per target class, the threshold of ORACLE_GRID with the best segment F1 on these scenes (the lowest of ties),
    the other classes kept at theirs. Chosen on the scored scenes: the ceiling of threshold choice for this model."""
    best = thresholds.copy()
    for i, label in enumerate(model.classes):
        if label == NEGATIVE:
            continue

        def f1(threshold: float) -> float:
            trial = thresholds.copy()
            trial[i] = threshold
            scores = scores_for(windows, reference, model, trial, args, args.pool, aside)
            return scores.per_class.get(label, {"f1": 0.0})["f1"]

        best[i] = max(ORACLE_GRID, key=f1)
    return best


def event_levels(path: Path, events: list[Event]) -> list[float]:
    """Per reference event, its power in dB over the scene's background: the mean power inside the event, less the
    background's, against the mean power outside every event of the scene."""
    audio = decode_mono(path)
    power = audio.samples ** 2
    spans = [slice(int(e.start * audio.sample_rate), int(e.end * audio.sample_rate)) for e in events]
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
        inside = scores[(middles >= event.start) & (middles < event.end)]
        best = inside.max(axis=0) if len(inside) else np.zeros(len(classes))
        top = ", ".join(f"{classes[i]} {best[i]:.2f}" for i in np.argsort(-best)[:2])
        lines.append(f"{event.start:6.1f}-{event.end:6.1f} s {event.label:9s} {level:5.1f} dB over the background, "
                     f"highest inside: {top}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="checkpoint")
    parser.add_argument("--scenes", type=Path, default=SCENES, help="folder of scene wavs and events.csv")
    parser.add_argument("--hop", type=float, help="default: as predict, the model's calibrated hop, else 0.25")
    parser.add_argument("--span", type=float, help="seconds at each window's centre that its scores describe (default: "
                        "half the window, as predict --window)")
    parser.add_argument("--threshold", type=float, help="one threshold for every class (default: the checkpoint's)")
    parser.add_argument("--floor", type=float, default=0.0,
                        help="raise the checkpoint's thresholds below P to P (what thresholds.floor does in training)")
    parser.add_argument("--hysteresis", type=float, help="default: the checkpoint's (predict's default)")
    parser.add_argument("--min-duration", type=float, default=0.0)
    parser.add_argument("--pool", choices=POOLS, default="mean")
    parser.add_argument("--exact", action="store_true", help="each window through the whole network (predict --exact)")
    parser.add_argument("--deviation", action="store_true", help="also print how far the windows are from --exact")
    parser.add_argument("--sweep-thresholds", type=float, nargs="*", default=[], metavar="P")
    parser.add_argument("--events", action="store_true", help="list each reference event's highest-scoring classes")
    parser.add_argument("--breakdown", action="store_true", help="also count the wrong segments by kind")
    parser.add_argument("--set-aside", nargs="*", default=[], metavar="SCENE:ONSET",
                        help="reference events to score without, e.g. scene00.wav:23.887")
    parser.add_argument("--oracle", action="store_true", help="also the per-class thresholds that score best on these "
                        "scenes, and their macro-F1: tuned on the test scenes, the most thresholds can do for this model")
    args = parser.parse_args()
    checkpoint = read_checkpoint(args.model)
    model = torch_model(checkpoint, exact=args.exact, span=timeline_span(checkpoint, args.span))
    reference = read_reference(args.scenes / "events.csv")
    try:
        aside = aside_stretches(reference, args.set_aside)
    except ValueError as error:
        parser.error(str(error))
    reference = {name: cut_out(events, aside.get(name, [])) for name, events in reference.items()}
    start = time.perf_counter()
    args.hop = args.hop or model.timeline_hop or 0.25
    args.hysteresis = hysteresis(args, model)
    windows = {path.name: model.timeline(path, args.hop) for path in sorted(args.scenes.glob("*.wav"))}
    wall = time.perf_counter() - start
    seconds = sum(w.seconds for w in windows.values())
    print(f"{args.model}: {len(windows)} scenes, {seconds / 60:.1f} min, timeline at {seconds / wall:.0f}x real time "
          f"(hop {args.hop} s, span {model.span} s, {'exact' if args.exact else 'shared body'}); hysteresis {args.hysteresis}, "
          f"min duration {args.min_duration} s, pool {args.pool}")
    if args.deviation:
        print(deviation(windows, checkpoint, args.hop, model.span, args.scenes))
    thresholds = np.maximum(class_thresholds(model.classes, model.thresholds, args.threshold), args.floor)
    print("thresholds: " + ", ".join(f"{c} {t:.2f}" for c, t in zip(model.classes, thresholds)))
    durations = {name: w.seconds for name, w in windows.items()}
    system = system_events(windows, model, thresholds, args, args.pool, aside)
    scores = score_timeline(reference, system, durations)
    print("| class | precision | recall | segment F1 | reference segments | system segments |")
    print("|---|---|---|---|---|---|")
    for label, c in scores.per_class.items():
        print(f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['reference_segments']} "
              f"| {c['system_segments']} |")
    print(f"| **macro** | | | **{scores.macro_f1:.3f}** | | |")
    print(f"false alarms: {scores.false_alarms_per_minute:.1f} s per minute ({scores.false_alarm_seconds:.0f} s in "
          f"{scores.minutes:.1f} min)")
    sed = sed_scores(reference, system, durations)
    print(f"sed_eval: segment macro-F1 {sed.segment_macro_f1:.3f}, event macro-F1 (onset ±200 ms) "
          f"{sed.event_macro_f1:.3f}")
    if args.breakdown:
        false, missed = error_kinds(reference, system, durations)
        print("false segments: " + ", ".join(f"{false[k]} {k}" for k in ("edge", "confusion", "non-target", "background"))
              + "; missed segments: " + ", ".join(f"{missed[k]} {k}" for k in ("called another class", "nothing found")))
    for name, scene in windows.items() if args.events else ():
        events = reference.get(name, [])
        for line in event_scores(scene, events, event_levels(args.scenes / name, events), model.classes, args.pool):
            print(f"{name} {line}")
    if args.oracle:
        oracle = oracle_thresholds(windows, reference, model, thresholds, args, aside)
        bound = scores_for(windows, reference, model, oracle, args, args.pool, aside)
        print("oracle thresholds (chosen on these scenes): " + ", ".join(
            f"{c} {t:.2f}" for c, t in zip(model.classes, oracle) if c != NEGATIVE))
        print(f"oracle: macro-F1 {bound.macro_f1:.3f}, false alarms {bound.false_alarms_per_minute:.1f} s/min; per class "
              + ", ".join(f"{label} {c['f1']:.2f}" for label, c in bound.per_class.items()))
    for pool in POOLS if args.sweep_thresholds else ():
        for threshold in args.sweep_thresholds:
            fixed = class_thresholds(model.classes, {}, threshold)
            swept = scores_for(windows, reference, model, fixed, args, pool, aside)
            print(f"pool {pool:4s} threshold {threshold:.2f}: macro-F1 {swept.macro_f1:.3f}, "
                  f"false alarms {swept.false_alarms_per_minute:.1f} s/min")


if __name__ == "__main__":
    main()
