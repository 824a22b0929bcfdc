"""How `nonspeech listen` writes its decisions: a JSON object per line, CSV rows, or Audacity label lines, each
flushed as it is decided."""

from __future__ import annotations

import csv
import io
import json
from typing import TextIO

from nonspeech.inference.detect import Decision

FORMATS = ("jsonl", "csv", "audacity")
CSV_COLUMNS = ("class", "start", "end", "max_probability", "mean_probability")


def header(fmt: str) -> str:
    """What goes before the first decision: the CSV header row, else nothing."""
    return ",".join(CSV_COLUMNS) + "\n" if fmt == "csv" else ""


def line(fmt: str, decision: Decision) -> str:
    """One decision: an event (times in seconds of stream time), or with `end` null/empty an event that has begun."""
    event = decision.event
    end = round(event.end, 3) if decision.closed else None
    if fmt == "jsonl":
        return json.dumps({"class": event.label, "start": round(event.start, 3), "end": end,
                           "max_probability": round(event.max_probability, 4)}) + "\n"
    if fmt == "audacity":
        return f"{event.start:.3f}\t{event.end:.3f}\t{event.label}\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([
        event.label, round(event.start, 3), "" if end is None else end, round(event.max_probability, 4),
        round(event.mean_probability, 4) if decision.closed else "",
    ])
    return buffer.getvalue()


def write(out: TextIO, fmt: str, decisions: list[Decision], onsets: bool) -> None:
    """Write the decisions (events that have begun only with `onsets`) and flush at once."""
    text = "".join(line(fmt, d) for d in decisions if d.closed or onsets)
    if text:
        out.write(text)
        out.flush()
