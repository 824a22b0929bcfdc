"""The two inputs of timeline scoring, read and checked: reference events (a CSV of scene, onset, offset, label)
and a `predict --window --format json` timeline. Every bad row or record is one line naming the file and where."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pandas as pd

from nonspeech.errors import InputError
from nonspeech.events import Event
from nonspeech.labels import NEGATIVE

REFERENCE_COLUMNS = ("scene", "onset", "offset", "label")


def row_problem(row: pd.Series, classes: list[str] | None, recordings: set[str] | None) -> str:
    """What is wrong with one reference row, or an empty string."""
    try:
        onset, offset = float(row["onset"]), float(row["offset"])
    except ValueError:
        return f"onset {row['onset']!r} and offset {row['offset']!r} must be numbers of seconds"
    if not (math.isfinite(onset) and math.isfinite(offset)):
        return "onset and offset must both be given"
    if onset < 0:
        return f"onset {onset:g} s is before the recording starts"
    if offset <= onset:
        return f"offset {offset:g} s is not after onset {onset:g} s"
    label, known = str(row["label"]), [*(classes or []), NEGATIVE]
    if classes is not None and label not in known:
        cased = [name for name in known if name.lower() == label.lower()]
        hint = f" (labels are case-sensitive: {cased[0]})" if cased else ""
        return f"label {label!r} is not a class of the model{hint}; known: {', '.join(known)}"
    if recordings is not None and str(row["scene"]) not in recordings:
        return f"scene {row['scene']!r} is not a recording of the timeline"
    return ""


def read_reference(path: Path, classes: list[str] | None = None, recordings: set[str] | None = None) -> dict[str, list[Event]]:
    """Events by scene (file name) from a CSV with columns scene, onset, offset, label; with `classes` and
    `recordings`, every label must be one of the classes (or `other`) and every scene one of the recordings."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file; needs the header {','.join(REFERENCE_COLUMNS)} and a row per event") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a CSV file ({str(exc).strip()})") from None
    missing = [c for c in REFERENCE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: lacks columns {', '.join(missing)} (needs {', '.join(REFERENCE_COLUMNS)})")
    if table.empty:
        raise InputError(f"{path}: no events, only a header")
    table = table.replace("", math.nan)
    problems = [f"{path} line {i + 2}: {problem}" for i, row in table.iterrows()
                if (problem := row_problem(row, classes, recordings))]
    if problems:
        raise InputError("\n".join(problems))
    events: dict[str, list[Event]] = defaultdict(list)
    for row in table.itertuples(index=False):
        events[str(row.scene)].append(Event(float(row.onset), float(row.offset), str(row.label)))
    return dict(events)


def read_timeline(path: Path) -> tuple[dict[str, list[Event]], dict[str, float], list[str]]:
    """The events and durations by file name of the scored recordings in a `predict --window --format json`
    timeline, and the model's classes."""
    try:
        records = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and "file" in r for r in records):
        raise InputError(f"{path}: not a timeline: expected the JSON list of `nonspeech predict --window --format json`")
    scored = [r for r in records if not r.get("error")]
    for i, record in enumerate(scored):
        if "segments" not in record or "classes" not in record:
            what = "no segments (predict's output without --window)" if "segments" not in record else (
                "no classes (an older predict's output; run predict again)")
            raise InputError(f"{path} record {i + 1} ({record['file']}): {what}")
    if not scored:
        raise InputError(f"{path}: no scored recordings in it")
    by_name: dict[str, list[str]] = defaultdict(list)
    for record in scored:
        by_name[Path(record["file"]).name].append(record["file"])
    clashes = [", ".join(files) for files in by_name.values() if len(files) > 1]
    if clashes:
        raise InputError(f"{path}: recordings are matched to reference scenes by file name, and these share one: "
                         + "; ".join(clashes))
    events = {Path(r["file"]).name: [Event(s["start"], s["end"], s["class"]) for s in r["segments"]] for r in scored}
    durations = {Path(r["file"]).name: float(r["seconds"]) for r in scored}
    return events, durations, sorted({label for r in scored for label in r["classes"]} - {NEGATIVE})
