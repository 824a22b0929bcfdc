"""What `nonspeech predict` reports per input: rows and JSON records of whole files or of timeline events, each
with the notes about its input, and their rendering as an aligned table, CSV, JSON or an Audacity label track."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from nonspeech.data.audio import AudioError
from nonspeech.inference.destinations import per_recording
from nonspeech.inference.detect import class_thresholds, detect, detections, top_k
from nonspeech.inference.model import LoadedModel

FILE_COLUMNS = ("file", "class", "probability")
WINDOW_COLUMNS = ("file", "start", "end", "class", "max_probability", "mean_probability")
LONG_FILE_SECONDS = 60.0  # longer files get a note that only their start was classified
Notify = Callable[[str, str, str], None]  # (kind: error | warning | note, input path, message)
Result = tuple[list[list], dict]  # an input's rows (each ending with its notes and error cells) and its JSON record


class Notes:
    """The warnings and notes about one input: told as they come, and kept for its record."""

    def __init__(self, path: str, notify: Notify) -> None:
        self.path, self.notify, self.lines = path, notify, []

    def add(self, kind: str, message: str) -> None:
        self.notify(kind, self.path, message)
        self.lines.append(f"{kind}: {message}")

    def cell(self) -> str:
        return "; ".join(self.lines)


def failed(path: str, reason: str, width: int, notify: Notify) -> Result:
    """An unusable input: reported, with its row (path, empty cells, no notes, error) and its JSON record."""
    notify("error", path, reason)
    return [[path, *[""] * (width - 1), "", reason]], {"file": path, "error": reason}


def file_columns(k: int) -> list[str]:
    """Column names of whole-file rows: file, class, probability, class_2, probability_2, ..., detected."""
    return [*FILE_COLUMNS, *(f"{name}_{rank}" for rank in range(2, k + 1) for name in FILE_COLUMNS[1:]), "detected"]


def file_results(model: LoadedModel, files: list[Path], k: int, threshold: float | None, notify: Notify) -> Iterator[Result]:
    """Classify whole files; per file, in input order, its row (the top k classes, then the classes detected at
    their thresholds, or none) and its JSON record."""
    thresholds = class_thresholds(model.classes, model.thresholds, threshold)
    order = {str(path): i for i, path in reversed(list(enumerate(files)))}
    for result in sorted(model.classify(files), key=lambda r: order[r.path]):
        if result.error:
            yield failed(result.path, result.error, len(file_columns(k)), notify)
            continue
        notes = Notes(result.path, notify)
        if result.warning:
            notes.add("warning", result.warning)
        if result.seconds > LONG_FILE_SECONDS:
            notes.add("note", f"{result.seconds:.0f} s long: classified by its first {model.features['seconds']:g} s "
                      "only (--window gives a timeline of the whole file)")
        top = top_k(result.probabilities, model.classes, k)
        found = detections(result.probabilities, model.classes, thresholds, model.decision_rule)
        row = [result.path, *(value for pair in top for value in pair), ",".join(label for label, _ in found) or "none"]
        yield [[*row, notes.cell(), ""]], {
            "file": result.path, "error": None, "seconds": result.seconds, "notes": notes.lines,
            "predictions": [{"class": label, "probability": p} for label, p in top],
            "detected": [{"class": label, "probability": p} for label, p in found],
        }


def timeline_results(
    model: LoadedModel, files: list[Path], hop: float, threshold: float | None, hysteresis: float, min_duration: float,
    pool: str, plot: Path | None, names: dict[Path, str], notify: Notify, workers: int = 1,
) -> Iterator[Result]:
    """Score windows of each file (`workers` batches of windows side by side); per file, its event rows (a row without
    an event when it has none but notes) and its JSON record, and a PNG timeline when `plot` (per recording, by
    `names`, when several)."""
    window_seconds = model.features["seconds"]
    thresholds = class_thresholds(model.classes, model.thresholds, threshold)
    for path in files:
        try:
            windows = model.timeline(path, hop, workers=workers)
        except AudioError as exc:
            yield failed(str(path), str(exc), len(WINDOW_COLUMNS), notify)
            continue
        notes = Notes(str(path), notify)
        if windows.warning:
            notes.add("warning", windows.warning)
        if windows.seconds < window_seconds:
            notes.add("note", f"{windows.seconds:.2f} s, shorter than one {window_seconds:g} s window: scored as one "
                      "window, zero-padded")
        events = detect(windows, model.classes, thresholds, hysteresis, min_duration, pool, model.decision_rule)
        if plot is not None:
            from nonspeech.inference.plot import plot_timeline  # matplotlib only when a plot is asked for

            plot_timeline(windows, model.classes, events, thresholds, pool, model.decision_rule,
                          per_recording(plot, names[path]) if names else plot, title=str(path))
        found = [[str(path), e.start, e.end, e.label, e.max_probability, e.mean_probability] for e in events]
        rows = found or ([[str(path), *[""] * (len(WINDOW_COLUMNS) - 1)]] if notes.lines else [])
        yield [[*row, notes.cell(), ""] for row in rows], {
            "file": str(path), "error": None, "seconds": windows.seconds, "notes": notes.lines,
            "classes": model.classes, "segments": [dict(zip(WINDOW_COLUMNS[1:], row[1:])) for row in found],
        }


def render(fmt: str, columns: list[str], rows: list[list], records: list[dict]) -> str:
    """The output text: JSON records, CSV rows with notes and error columns, Audacity labels (start, end, class of
    the timeline's events), or an aligned table of the classified rows with floats to 3 decimals (notes and errors
    are on stderr). Each row ends with its notes and error cells; rows without a result have an empty second cell."""
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([[*columns, "notes", "error"], *rows])
        return buffer.getvalue()
    shown = [row for row in rows if row[1] != ""]
    if fmt == "audacity":
        return "".join(f"{row[1]:.3f}\t{row[2]:.3f}\t{row[3]}\n" for row in shown)
    cells = [columns, *([f"{v:.3f}" if isinstance(v, float) else str(v) for v in row[:-2]] for row in shown)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in cells)
