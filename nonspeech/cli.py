"""The `nonspeech` command: `predict` classifies recordings, `export` writes a portable model, `evaluate-timeline`
scores a timeline against reference events."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

from nonspeech.audio import AudioError
from nonspeech.events import POOLS, class_thresholds, detect
from nonspeech.predict import (
    Model, ModelError, check_same_features, classify_files, classify_recording, find_audio,
    read_checkpoint, top_k, torch_model,
)

DEFAULT_MODEL = Path("data/models/final/model.pt")
EXPORT_OUT = {"onnx": Path("model.onnx"), "torchscript": Path("model.torchscript.pt")}
FILE_COLUMNS = ("file", "class", "probability")
LONG_FILE_SECONDS = 60.0  # longer files get a note that only their start was classified
WINDOW_COLUMNS = ("file", "start", "end", "class", "max_probability", "mean_probability")


class UsageError(ValueError):
    """Options that do not go together; the message says why."""


def positive(kind: type) -> Callable[[str], int | float]:
    """An argparse type accepting values of `kind` above zero."""

    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def probability(text: str) -> float:
    """An argparse type accepting a float in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of both subcommands."""
    parser = argparse.ArgumentParser(prog="nonspeech", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict", help="classify audio files or folders",
        description="Classify audio files (any rate, channels, length, soundfile format) with the training-time "
        "preprocessing stored in the checkpoint: each file by its first `seconds` (zero-padded when shorter), or, "
        "with --window, by overlapping windows of that length. Folders are searched recursively.",
        epilog="Each file that cannot be used gets one `error: PATH: reason` line on stderr and the rest are still "
        "classified; the exit status is 1 only when nothing could be classified.",
    )
    predict.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    predict.add_argument(
        "--model", type=Path, metavar="FILE",
        help=f"checkpoint (default {DEFAULT_MODEL}); with --onnx, only given to check the ONNX model agrees with it",
    )
    predict.add_argument("--onnx", type=Path, metavar="FILE", help="run this exported ONNX model with onnxruntime")
    predict.add_argument(
        "--bf16", action="store_true",
        help="run the network in bfloat16: faster on CPUs with bf16 units (AMX), probabilities within about 1e-3",
    )
    predict.add_argument(
        "--top-k", type=positive(int), default=1, metavar="K", help="classes shown per file (default 1; not with --window)",
    )
    predict.add_argument(
        "--format", choices=("table", "json", "csv", "audacity"), default="table",
        help="output format; audacity (with --window): a label track, `start<TAB>end<TAB>class` lines, one per event",
    )
    predict.add_argument(
        "--out", type=Path, metavar="FILE",
        help="write the output here instead of stdout (audacity with several recordings: FILE_<recording>.txt each)",
    )
    predict.add_argument(
        "--window", action="store_true",
        help="print a timeline of events (start, end, class, max and mean score): windows every --hop seconds, each "
        "stretch between window edges scored by the mean probability of the windows covering it, events where a class "
        "reaches its threshold",
    )
    predict.add_argument("--hop", type=positive(float), default=1.0, metavar="SECONDS", help="window hop (default 1.0)")
    predict.add_argument(
        "--threshold", type=probability, metavar="P",
        help="an event starts where a class's score is >= P, for every class (default: the checkpoint's calibrated "
        "per-class thresholds, 0.5 for classes it has none for)",
    )
    predict.add_argument(
        "--hysteresis", type=probability, default=0.1, metavar="F",
        help="an event continues while the score stays >= (1 - F) x threshold (default 0.1)",
    )
    predict.add_argument(
        "--min-duration", type=float, default=0.0, metavar="SECONDS", help="drop events shorter than this (default 0)",
    )
    predict.add_argument("--pool", choices=POOLS, default="mean", help="how covering windows score a stretch (default mean)")
    predict.add_argument(
        "--plot", type=Path, metavar="FILE",
        help="with --window, a PNG of class scores over time with events shaded (several recordings: FILE_<recording>.png)",
    )
    export = commands.add_parser(
        "export", help="write the model as ONNX or TorchScript",
        description="Write the checkpoint as one model from waveforms (batch, round(seconds * sample_rate)) at the "
        "checkpoint's sample rate to softmax class probabilities, log-mel front end inside; class names and "
        "feature parameters go into the metadata.",
    )
    export.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, metavar="FILE", help=f"checkpoint (default {DEFAULT_MODEL})",
    )
    export.add_argument("--out", type=Path, metavar="FILE", help="output file (default model.onnx or model.torchscript.pt)")
    export.add_argument("--format", choices=tuple(EXPORT_OUT), default="onnx", help="model format (default onnx)")
    evaluate = commands.add_parser(
        "evaluate-timeline", help="score a timeline against reference events",
        description="Score the JSON timeline of `nonspeech predict --window --format json` against reference events "
        "(a CSV with columns scene, onset, offset, label; recordings matched by file name; label `other` marks "
        "non-target sounds): 1 s segment precision, recall and F1 per class, macro-F1, and false-alarm seconds "
        "(the system reports a target class, the reference has none) per minute.",
    )
    evaluate.add_argument("timeline", type=Path, metavar="TIMELINE", help="JSON output of predict --window")
    evaluate.add_argument("--events", type=Path, required=True, metavar="CSV", help="reference events")
    evaluate.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    return parser


def report(path: str, reason: str, kind: str = "error") -> None:
    """One `error:` (or other kind of) line on stderr naming the input and the reason."""
    print(f"{kind}: {path}: {reason}", file=sys.stderr)


def per_recording(out: Path, recording: str, several: bool) -> Path:
    """`out`, or with several recordings out's stem + _ + the recording's stem, so each gets its own file."""
    return out.with_name(f"{out.stem}_{Path(recording).stem}{out.suffix}") if several else out


def checkpoint_at(path: Path) -> dict:
    """read_checkpoint, saying how to make a missing one."""
    try:
        return read_checkpoint(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; train one with `dvc repro train_final` or pass --model") from exc


def load_model(args: argparse.Namespace) -> Model:
    """The PyTorch model from --model, or the ONNX model from --onnx checked against --model when given."""
    if args.onnx is None:
        return torch_model(checkpoint_at(args.model or DEFAULT_MODEL), args.bf16)
    from nonspeech.export import onnx_model  # onnx and onnxruntime are the optional `export` extra

    try:
        model = onnx_model(args.onnx)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; write one with `nonspeech export`") from exc
    if args.model is not None:
        check_same_features(model, f"ONNX model {args.onnx}", checkpoint_at(args.model), args.model)
    return model


def file_rows(args: argparse.Namespace, model: Model, files: list[Path], k: int) -> tuple[list[list], list[dict]]:
    """Classify whole files; rows of the top k classes and JSON records of the classified ones."""
    rows, records = [], []
    for outcome in classify_files(files, model):
        if outcome.error:
            report(outcome.path, outcome.error)
            continue
        if outcome.seconds > LONG_FILE_SECONDS:
            report(outcome.path, f"{outcome.seconds:.0f} s long: classified by its first {model.features['seconds']:g} s "
                   "only (--window gives a timeline of the whole file)", kind="note")
        top = top_k(outcome.probabilities, model.classes, k)
        rows.append([outcome.path, *(value for pair in top for value in pair)])
        records.append({
            "file": outcome.path, "seconds": outcome.seconds,
            "predictions": [{"class": label, "probability": p} for label, p in top],
        })
    return rows, records


def window_rows(args: argparse.Namespace, model: Model, files: list[Path]) -> tuple[list[list], list[dict]]:
    """Classify windows of each file; timeline rows and JSON records of the classified files."""
    rows, records = [], []
    window_seconds = model.features["seconds"]
    thresholds = class_thresholds(model.classes, model.thresholds, args.threshold)
    for path in files:
        try:
            windows = classify_recording(path, model, args.hop)
        except AudioError as exc:
            report(str(path), str(exc))
            continue
        if windows.seconds < window_seconds:
            report(str(path), f"{windows.seconds:.2f} s, shorter than one {window_seconds:g} s window: scored as one "
                   "window, zero-padded", kind="note")
        segments = detect(windows, model.classes, window_seconds, thresholds, args.hysteresis, args.min_duration, args.pool)
        if args.plot is not None:
            from nonspeech.plot import plot_timeline  # matplotlib only when a plot is asked for

            plot_timeline(windows, model.classes, window_seconds, segments, thresholds, args.pool,
                          per_recording(args.plot, str(path), len(files) > 1), title=str(path))
        found = [[str(path), s.start, s.end, s.label, s.max_probability, s.mean_probability] for s in segments]
        rows.extend(found)
        records.append({
            "file": str(path), "seconds": windows.seconds,
            "segments": [dict(zip(WINDOW_COLUMNS[1:], row[1:])) for row in found],
        })
    return rows, records


def file_columns(k: int) -> list[str]:
    """Column names of top-k rows: file, class, probability, class_2, probability_2, ..."""
    return [*FILE_COLUMNS, *(f"{name}_{rank}" for rank in range(2, k + 1) for name in FILE_COLUMNS[1:])]


def render(fmt: str, columns: list[str], rows: list[list], records: list[dict]) -> str:
    """The output text: JSON records, CSV rows, Audacity labels (start, end, class of timeline rows), or an aligned
    table with floats to 3 decimals."""
    if fmt == "audacity":
        return "".join(f"{row[1]:.3f}\t{row[2]:.3f}\t{row[3]}\n" for row in rows)
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([columns, *rows])
        return buffer.getvalue()
    cells = [columns, *([f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in cells)


def run_predict(args: argparse.Namespace) -> int:
    """Classify; 0 when at least one file was classified."""
    if (args.format == "audacity" or args.plot is not None) and not args.window:
        raise UsageError("--format audacity and --plot need --window")
    model = load_model(args)
    files, errors = find_audio(args.paths)
    if args.format == "audacity" and len(files) > 1 and args.out is None:
        raise UsageError("--format audacity writes one label track per recording: with several, give --out")
    for path, reason in errors:
        report(path, reason)
    k = min(args.top_k, len(model.classes))
    if args.window:
        (rows, records), columns = window_rows(args, model, files), list(WINDOW_COLUMNS)
    else:
        (rows, records), columns = file_rows(args, model, files, k), file_columns(k)
    if not records:
        print("error: nothing could be classified", file=sys.stderr)
        return 1
    if args.format == "audacity" and len(files) > 1:
        for record in records:
            write(per_recording(args.out, record["file"], True), render(args.format, columns, [
                row for row in rows if row[0] == record["file"]], [record]))
    else:
        write(args.out, render(args.format, columns, rows, records))
    return 0


def write(out: Path | None, text: str) -> None:
    """Write text to the file `out` (creating its folder), or to stdout when None."""
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def run_evaluate_timeline(args: argparse.Namespace) -> int:
    """Print segment scores of a predict --window JSON timeline against reference events."""
    from nonspeech.scoring import Event, read_reference, score_timeline  # pandas only for this command

    records = json.loads(args.timeline.read_text())
    system = {Path(r["file"]).name: [Event(s["start"], s["end"], s["class"]) for s in r["segments"]] for r in records}
    durations = {Path(r["file"]).name: r["seconds"] for r in records}
    scores = score_timeline(read_reference(args.events), system, durations)
    if args.format == "json":
        print(json.dumps({"per_class": scores.per_class, "macro_f1": scores.macro_f1,
                          "false_alarms_per_minute": scores.false_alarms_per_minute, "minutes": scores.minutes}, indent=2))
        return 0
    columns = ["class", "precision", "recall", "f1", "reference_segments", "system_segments"]
    rows = [[label, *(values[c] for c in columns[1:])] for label, values in scores.per_class.items()]
    sys.stdout.write(render("table", columns, rows, []))
    print(f"macro-F1 {scores.macro_f1:.3f} (1 s segments); false alarms {scores.false_alarms_per_minute:.2f} s per "
          f"minute over {scores.minutes:.1f} min of {len(durations)} recordings")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the exported model and say where."""
    from nonspeech.export import export_onnx, export_torchscript  # the optional `export` extra

    out = args.out or EXPORT_OUT[args.format]
    {"onnx": export_onnx, "torchscript": export_torchscript}[args.format](checkpoint_at(args.model), out)
    print(f"wrote {out} ({args.format}): waveforms in, class probabilities out")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nonspeech` console script."""
    args = build_parser().parse_args(argv)
    commands = {"predict": run_predict, "export": run_export, "evaluate-timeline": run_evaluate_timeline}
    try:
        return commands[args.command](args)
    except (FileNotFoundError, ModelError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
