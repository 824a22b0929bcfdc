"""`nonspeech listen` on real scenes, fed on a simulated clock: how long after an event's true onset its `--onsets`
line comes, and its closing line after its true end (p50, p95), the speed on one thread, and the memory over an
hour of stream.

Usage: python bench/listen.py --model data/detector/sed/model.pt [--scenes ../shared/realsounds/scenes]
                              [--block 0.1] [--minutes 60] [--slowest 6]

The scenes are fed block by block (--block seconds of audio each) through the same LiveTimeline as the command, on
one thread. The clock: a block is there once its last sample is (stream time), and its decisions are out when its
processing ends, waiting for the processing of the blocks before it. A reference event (not `other`) is found by
the first decision of its class whose event overlaps it (within 1 s before its onset). The model's look-ahead for a
class is the audio after a moment that its decision needs: half a window, the class's median filter's half (or a
detector's onset radius, when longer: the windows that place an event's start) and one hop; how far beyond it an
onset line comes is measured against its event's class. The `--slowest` onset lines by that measure are listed,
each with its scene, class and reference onset.
Memory: the scenes one after another as one stream of --minutes, the RSS after the first minute and at the end.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch

from nonspeech.data.stream import open_recording
from nonspeech.detector.evaluate import decisions_of
from nonspeech.evaluation.timeline_inputs import read_reference
from nonspeech.inference.detect import class_thresholds, median_sizes
from nonspeech.inference.load import load_model
from nonspeech.labels import NEGATIVE
from nonspeech.live.timeline import LiveTimeline

SCENES = Path(__file__).resolve().parents[2] / "shared/realsounds/scenes"
KEYS = ("onset", "beyond", "heard", "waited", "streaming", "close")


def rss_mb() -> float:
    """Resident memory now, in MB (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024


def blocks_of(path: Path, rate: int, block: float) -> list[np.ndarray]:
    """A scene's samples at `rate`, as blocks of `block` seconds."""
    samples = np.concatenate(list(open_recording(path, rate).blocks))
    size = int(round(block * rate))
    return [samples[i:i + size] for i in range(0, len(samples), size)]


def listen_scene(timeline: LiveTimeline, blocks: list[np.ndarray], rate: int) -> tuple[list, float]:
    """Every decision with the clock time it came out, and the processing seconds."""
    clock, stream, busy, out = 0.0, 0.0, 0.0, []
    for block in blocks:
        stream += len(block) / rate
        started = time.perf_counter()
        decisions = timeline.feed(block)
        spent = time.perf_counter() - started
        busy += spent
        clock = max(clock, stream) + spent
        out += [(d, clock) for d in decisions]
    started = time.perf_counter()
    decisions = timeline.finish(stream)
    spent = time.perf_counter() - started
    return out + [(d, max(clock, stream) + spent) for d in decisions], busy + spent


def delays(reference: list, decisions: list, ahead: dict[str, float]) -> tuple[dict[str, list[float]], list]:
    """Per found reference event: the onset line's delay after its onset, and `beyond` its class's look-ahead
    (`ahead`), split into `heard` (how far into the event the stretch that decided it ends) and `waited` (from there
    to the line; `streaming`: that less the look-ahead); the closing line's after its end. Then (beyond, heard,
    event) of each event with an onset line."""
    found: dict[str, list[float]] = {key: [] for key in KEYS}
    onsets = []
    for event in reference:
        mine = [decisions[k] for k in decisions_of(event, [d for d, _ in decisions])]
        began = [(d, at) for d, at in mine if not d.closed]
        closed = [at for d, at in mine if d.closed]
        if began:
            decision, at = began[0]
            found["onset"].append(at - event.start)
            found["beyond"].append(at - event.start - ahead[event.label])
            found["heard"].append(decision.at - event.start)
            found["waited"].append(at - decision.at)
            found["streaming"].append(at - decision.at - ahead[event.label])
            onsets.append((found["beyond"][-1], found["heard"][-1], event))
        if closed:
            found["close"].append(closed[0] - event.end)
    return found, onsets


def look_ahead(model, hop: float) -> dict[str, float]:
    """Per class, the seconds of audio after a moment that its decision needs."""
    sizes = median_sizes(model.classes, model.median_seconds, hop)
    return {label: model.features["seconds"] / 2 + max(size // 2 * hop, model.boundary_radius.get("onset", 0.0)) + hop
            for label, size in zip(model.classes, sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="checkpoint")
    parser.add_argument("--scenes", type=Path, default=SCENES, help="folder of scene wavs and events.csv")
    parser.add_argument("--block", type=float, default=0.1, help="seconds of audio per block fed")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the stream memory is measured over")
    parser.add_argument("--slowest", type=int, default=6, help="onset lines listed, the furthest beyond the look-ahead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, timeline=True)
    rate, hop = model.features["sample_rate"], model.timeline_hop or 0.25
    thresholds = class_thresholds(model.classes, model.thresholds, None)

    def fresh() -> LiveTimeline:
        return LiveTimeline(model, hop, thresholds, model.hysteresis, 0.0, "mean")

    scenes = sorted(args.scenes.glob("*.wav"))
    reference = read_reference(args.scenes / "events.csv")
    blocks = {path.name: blocks_of(path, rate, args.block) for path in scenes}
    found: dict[str, list[float]] = {key: [] for key in KEYS}
    busy, seconds, total, ahead, onsets = 0.0, 0.0, 0, look_ahead(model, hop), []
    for name, parts in blocks.items():
        decisions, spent = listen_scene(fresh(), parts, rate)
        targets = [e for e in reference.get(name, []) if e.label != NEGATIVE]
        delayed, told = delays(targets, decisions, ahead)
        for key, values in delayed.items():
            found[key] += values
        onsets += [(beyond, heard, name, event) for beyond, heard, event in told]
        total += len(targets)
        busy, seconds = busy + spent, seconds + sum(len(b) for b in parts) / rate

    def spread(key: str) -> str:
        return f"p50 {np.percentile(found[key], 50):.2f} s, p95 {np.percentile(found[key], 95):.2f} s"

    print(f"{args.model}: {len(scenes)} scenes, {seconds / 60:.1f} min, blocks of {args.block:g} s, hop {hop:g} s, "
          f"one thread")
    print(f"look-ahead of the model (half its {model.features['seconds']:g} s window, the class's median filter's "
          f"half or the onset radius ({model.boundary_radius.get('onset', 0.0):.2f} s), one hop): "
          + ", ".join(f"{label} {s:.2f} s" for label, s in ahead.items() if label != NEGATIVE))
    print(f"onset line after the true onset: {spread('onset')}; beyond its class's look-ahead: {spread('beyond')}; "
          f"{len(found['onset'])} of {total} target events")
    print(f"  of which heard: the stretch that decided it ends {spread('heard')} after the true onset")
    print(f"  of which waited: from that stretch's end to the line {spread('waited')}; less the look-ahead "
          f"{spread('streaming')} (batches, blocks, compute; below 0 where the onset radius outlasts the filter)")
    slowest = sorted(onsets, key=lambda told: -told[0])[:args.slowest]
    print(f"  the slowest {len(slowest)}: " + "; ".join(
        f"{name} {event.label} at {event.start:g} s: {beyond:.2f} s beyond, heard {heard:.2f} s"
        for beyond, heard, name, event in slowest))
    print(f"closing line after the true end: {spread('close')} ({len(found['close'])} events)")
    print(f"speed: {seconds / busy:.0f}x real time on one thread ({100 * busy / seconds:.1f}% of a core)")

    timeline, fed, minute_rss, cycle = fresh(), 0.0, 0.0, [b for parts in blocks.values() for b in parts]
    while fed < args.minutes * 60:
        for block in cycle:
            timeline.feed(block)
            fed += len(block) / rate
            if not minute_rss and fed >= 60:
                minute_rss = rss_mb()
            if fed >= args.minutes * 60:
                break
    timeline.finish(fed)
    print(f"memory: RSS {minute_rss:.0f} MB after 1 min of stream, {rss_mb():.0f} MB after {fed / 60:.0f} min "
          f"(peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
