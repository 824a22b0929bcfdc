"""An event: a labelled stretch of a recording, as detected in a timeline or listed in a reference; and the ways
the overlapping windows of a timeline can score a stretch (no numpy: `nonspeech --help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass

POOLS = ("mean", "min", "max")  # max: a stretch is detected when any window covering it is
BOUNDARIES = {"onset": "start", "offset": "end"}  # a detector's boundary stacks, and the edge of an event each places
DEFAULT_HYSTERESIS = 0.1  # for models that store none: clip models, and detectors from before it was chosen


@dataclass(frozen=True)
class Event:
    """A stretch [start, end) seconds of a recording labelled with one class; a detected event also carries the max
    and mean of its scores."""

    start: float
    end: float
    label: str
    max_probability: float | None = None
    mean_probability: float | None = None
