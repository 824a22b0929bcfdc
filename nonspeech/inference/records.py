"""What `nonspeech predict` reports per input: rows and JSON records of whole files or of timeline events, and
their rendering as an aligned table, CSV, JSON or an Audacity label track."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from nonspeech.data.audio import AudioError
from nonspeech.inference.detect import class_thresholds, detect, detections, top_k
from nonspeech.inference.model import LoadedModel

FILE_COLUMNS = ("file", "class", "probability")
WINDOW_COLUMNS = ("file", "start", "end", "class", "max_probability", "mean_probability")
LONG_FILE_SECONDS = 60.0  # longer files get a note that only their start was classified
Notify = Callable[[str, str, str], None]  # (kind: error | warning | note, input path, message)
Result = tuple[list[list], dict]  # an input's output rows (each ending with its error cell) and its JSON record


def failed(path: str, reason: str, width: int, notify: Notify) -> Result:
    """An unusable input: reported, with its row (path, empty cells, error) and its JSON record."""
    notify("error", path, reason)
    return [[path, *[""] * (width - 1), reason]], {"file": path, "error": reason}


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
        if result.warning:
            notify("warning", result.path, result.warning)
        if result.seconds > LONG_FILE_SECONDS:
            notify("note", result.path, f"{result.seconds:.0f} s long: classified by its first "
                   f"{model.features['seconds']:g} s only (--window gives a timeline of the whole file)")
        top = top_k(result.probabilities, model.classes, k)
        found = detections(result.probabilities, model.classes, thresholds)
        row = [result.path, *(value for pair in top for value in pair), ",".join(label for label, _ in found) or "none"]
        yield [[*row, ""]], {
            "file": result.path, "error": None, "seconds": result.seconds,
            "predictions": [{"class": label, "probability": p} for label, p in top],
            "detected": [{"class": label, "probability": p} for label, p in found],
        }


def per_recording(out: Path, recording: str, several: bool) -> Path:
    """`out`, or with several recordings out's stem + _ + the recording's stem, so each gets its own file."""
    return out.with_name(f"{out.stem}_{Path(recording).stem}{out.suffix}") if several else out


def timeline_results(
    model: LoadedModel, files: list[Path], hop: float, threshold: float | None, hysteresis: float, min_duration: float,
    pool: str, plot: Path | None, notify: Notify,
) -> Iterator[Result]:
    """Score windows of each file; per file, its event rows and its JSON record, and a PNG timeline when `plot`."""
    window_seconds = model.features["seconds"]
    thresholds = class_thresholds(model.classes, model.thresholds, threshold)
    for path in files:
        try:
            windows = model.timeline(path, hop)
        except AudioError as exc:
            yield failed(str(path), str(exc), len(WINDOW_COLUMNS), notify)
            continue
        if windows.warning:
            notify("warning", str(path), windows.warning)
        if windows.seconds < window_seconds:
            notify("note", str(path), f"{windows.seconds:.2f} s, shorter than one {window_seconds:g} s window: scored "
                   "as one window, zero-padded")
        events = detect(windows, model.classes, thresholds, hysteresis, min_duration, pool)
        if plot is not None:
            from nonspeech.inference.plot import plot_timeline  # matplotlib only when a plot is asked for

            plot_timeline(windows, model.classes, events, thresholds, pool, per_recording(plot, str(path), len(files) > 1),
                          title=str(path))
        found = [[str(path), e.start, e.end, e.label, e.max_probability, e.mean_probability] for e in events]
        yield [[*row, ""] for row in found], {
            "file": str(path), "error": None, "seconds": windows.seconds,
            "segments": [dict(zip(WINDOW_COLUMNS[1:], row[1:])) for row in found],
        }


def render(fmt: str, columns: list[str], rows: list[list], records: list[dict]) -> str:
    """The output text: JSON records, CSV rows with an error column, Audacity labels (start, end, class of the
    classified timeline rows), or an aligned table of the classified rows with floats to 3 decimals (errors are on
    stderr only). Each row ends with its error cell."""
    if fmt == "audacity":
        return "".join(f"{row[1]:.3f}\t{row[2]:.3f}\t{row[3]}\n" for row in rows if not row[-1])
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([[*columns, "error"], *rows])
        return buffer.getvalue()
    cells = [columns, *([f"{v:.3f}" if isinstance(v, float) else str(v) for v in row[:-1]] for row in rows if not row[-1])]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in cells)
