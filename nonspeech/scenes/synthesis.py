"""Scene synthesis with strong labels, after Scaper: foreground clips (their active part) mixed at random times onto a
background at a reference level, each at its own event-to-background ratio, every event's source, offset into it,
onset, duration and ratio recorded. Pure numpy; seeded, so a scene set is a function of its inputs and params."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from nonspeech.labels import NEGATIVE

FRAME_SECONDS = 0.02  # activity is judged on frames this long
ACTIVE_DB = 30.0  # a frame is active within this many dB of the clip's loudest frame
CROSSFADE_SECONDS = 0.05  # background pieces are joined with a linear crossfade this long
MIN_EVENT_SECONDS = 0.1


@dataclass(frozen=True)
class SceneParams:
    """The `scenes` params of a detector: scenes per pool, their length, events per scene, the share of target
    events, event-to-background ratios (dB), the background level (dBFS RMS), the longest event, the shortest gap
    between events (when they may not overlap) and the seed."""

    count: int
    seconds: float
    events: tuple[int, int]
    target_share: float
    snr: tuple[float, float]
    background_dbfs: float
    max_event_seconds: float
    gap: float
    overlap: bool
    seed: int

    @classmethod
    def from_dict(cls, d: dict) -> SceneParams:
        """Checked params; ValueError naming unknown or missing keys, or the first value that cannot be met."""
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise ValueError(f"scenes params: unknown keys {sorted(set(d) - names)}, missing keys {sorted(names - set(d))}")
        p = cls(int(d["count"]), float(d["seconds"]), tuple(d["events"]), float(d["target_share"]), tuple(d["snr"]),
                float(d["background_dbfs"]), float(d["max_event_seconds"]), float(d["gap"]), bool(d["overlap"]),
                int(d["seed"]))
        problems = [
            ("count", p.count >= 1, "must be at least 1"),
            ("seconds", p.seconds > 0, "must be positive"),
            ("events", len(p.events) == 2 and 0 <= p.events[0] <= p.events[1], "must be [min, max] with 0 <= min <= max"),
            ("target_share", 0 <= p.target_share <= 1, "must be between 0 and 1"),
            ("snr", len(p.snr) == 2 and p.snr[0] <= p.snr[1], "must be [low, high] dB with low <= high"),
            ("background_dbfs", p.background_dbfs < 0, "must be below 0 dBFS"),
            ("max_event_seconds", MIN_EVENT_SECONDS <= p.max_event_seconds <= p.seconds,
             f"must be between {MIN_EVENT_SECONDS} s and the scene length, {p.seconds:g} s"),
            ("gap", p.gap >= 0, "must not be negative"),
            ("events", p.overlap or p.events[1] * (MIN_EVENT_SECONDS + p.gap) <= p.seconds,
             f"{p.events[1]} events of at least {MIN_EVENT_SECONDS} s, {p.gap:g} s apart, do not fit in "
             f"{p.seconds:g} s scenes: lower scenes.events or scenes.gap, or allow scenes.overlap"),
        ]
        for name, ok, why in problems:
            if not ok:
                raise ValueError(f"scenes.{name} {getattr(p, name)!r}: {why}")
        return p


@dataclass(frozen=True)
class Placement:
    """Where one foreground event goes in a scene: the source row, the offset (samples) and length of its part, where it starts
    in the scene (samples), its label and its event-to-background ratio (dB)."""

    source: int
    offset: int
    length: int
    onset: int
    label: str
    snr: float


def active_part(wave: np.ndarray, rate: int, max_seconds: float) -> tuple[int, int]:
    """(offset, length) in samples of a clip's active part: from its first to its last frame within ACTIVE_DB of its
    loudest, at most max_seconds long (from its first active frame)."""
    frame = max(1, int(rate * FRAME_SECONDS))
    usable = len(wave) // frame * frame
    power = (wave[:usable].reshape(-1, frame).astype(np.float64) ** 2).mean(axis=1)
    if not len(power) or power.max() <= 0:
        return 0, 0
    active = np.flatnonzero(power >= power.max() * 10 ** (-ACTIVE_DB / 10))
    first, last = active[0] * frame, (active[-1] + 1) * frame
    return int(first), int(min(last - first, max_seconds * rate))


def rms(wave: np.ndarray) -> float:
    """Root mean square of a waveform."""
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0


def trailing_silence_trimmed(wave: np.ndarray) -> np.ndarray:
    """A waveform without the zeros padded after it."""
    loud = np.flatnonzero(wave)
    return wave[: loud[-1] + 1] if len(loud) else wave[:0]


def background(pieces: list[np.ndarray], length: int, rate: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """`length` samples of randomly chosen background pieces joined by crossfades, at level_dbfs RMS."""
    fade = int(CROSSFADE_SECONDS * rate)
    out = np.zeros(0, dtype=np.float32)
    while len(out) < length:
        piece = pieces[rng.integers(len(pieces))]
        start = rng.integers(0, max(1, len(piece) - length)) if len(out) == 0 else 0
        piece = piece[start:]
        overlap = min(fade, len(out), len(piece))
        if overlap:
            ramp = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
            out[-overlap:] = out[-overlap:] * (1 - ramp) + piece[:overlap] * ramp
        out = np.concatenate([out, piece[overlap:]])
    out = out[:length]
    level = rms(out)
    return out * np.float32(10 ** (level_dbfs / 20) / level) if level > 0 else out


def plan_events(
    params: SceneParams, parts: np.ndarray, labels: np.ndarray, rate: int, rng: np.random.Generator,
) -> list[Placement]:
    """The events of one scene: a target class drawn uniformly then one of its clips (or, 1 - target_share of the
    time, a non-target clip), at random times; without overlap, events that do not fit are dropped."""
    targets = sorted(set(labels) - {NEGATIVE})
    negatives = np.flatnonzero(labels == NEGATIVE)
    n = int(rng.integers(params.events[0], params.events[1] + 1))
    picks = []
    for _ in range(n):
        if len(negatives) and (not targets or rng.random() >= params.target_share):
            picks.append(int(rng.choice(negatives)))
        elif targets:
            picks.append(int(rng.choice(np.flatnonzero(labels == targets[rng.integers(len(targets))]))))
    length = int(round(params.seconds * rate))
    lengths = [min(int(parts[i, 1]), length) for i in picks]
    snrs = rng.uniform(*params.snr, size=len(picks))
    if params.overlap:
        onsets = [int(rng.integers(0, length - d + 1)) for d in lengths]
    else:
        gap = int(params.gap * rate)
        while picks and sum(lengths) + gap * (len(picks) - 1) > length:
            picks, lengths, snrs = picks[:-1], lengths[:-1], snrs[:-1]
        free = length - sum(lengths) - gap * max(len(picks) - 1, 0)
        cuts = np.sort(rng.integers(0, free + 1, size=len(picks)))
        onsets = [int(c + sum(lengths[:i]) + gap * i) for i, c in enumerate(cuts)]
    return [Placement(i, int(parts[i, 0]), d, on, str(labels[i]), float(s))
            for i, d, on, s in zip(picks, lengths, onsets, snrs)]


def render(events: list[Placement], waves: np.ndarray, bed: np.ndarray) -> np.ndarray:
    """The background `bed` with each event's part added at its ratio to the background's RMS."""
    scene = bed.astype(np.float32, copy=True)
    level = rms(bed)
    for e in events:
        part = waves[e.source, e.offset:e.offset + e.length]
        gain = level * 10 ** (e.snr / 20) / max(rms(part), 1e-9)
        scene[e.onset:e.onset + e.length] += part * np.float32(gain)
    return scene
