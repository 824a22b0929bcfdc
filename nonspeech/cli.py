"""The `nonspeech` command: `predict` classifies recordings, `export` writes a portable model, `plots-template`
writes an offline page template for `dvc plots show`."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch, numpy and soundfile load only when a command needs them: --help stays fast
    from nonspeech.predict import Model

DEFAULT_MODEL = Path("data/models/final/model.pt")
EXPORT_OUT = {"onnx": Path("model.onnx"), "torchscript": Path("model.torchscript.pt")}
PLOTS_TEMPLATE = Path("dvc_plots/offline_template.html")
FILE_COLUMNS = ("file", "class", "probability")
WINDOW_COLUMNS = ("file", "start", "end", "class", "max_probability", "mean_probability")
DEFAULT_HOP = 1.0
BF16_TOLERANCE = 0.02  # max |p_bf16 - p_float32| of the demo model on 237 real and 215 demo clips was 0.018


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('nonspeech')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict", help="classify audio files or folders",
        description="Classify audio files (any rate, channels, length, soundfile format) with the training-time "
        "preprocessing stored in the checkpoint: each file by its first `seconds` (zero-padded when shorter), or, "
        "with --window, by overlapping windows of that length. Folders are searched recursively.",
        epilog="Each file that cannot be used gets one `error: PATH: reason` line on stderr (and, in JSON and CSV output, "
        "a record with its error) and the rest are still classified; the exit status is 1 only when nothing could be "
        "classified. A file holding less audio than its header claims is classified with a `warning:` line.",
    )
    predict.set_defaults(parser=predict)  # for usage errors about option combinations
    predict.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    predict.add_argument(
        "--model", type=Path, metavar="FILE",
        help=f"checkpoint (default {DEFAULT_MODEL}); with --onnx, only given to check the ONNX model agrees with it",
    )
    predict.add_argument("--onnx", type=Path, metavar="FILE", help="run this exported ONNX model with onnxruntime")
    predict.add_argument(
        "--bf16", action="store_true",
        help="run the network in bfloat16: faster on CPUs with bf16 units (AMX); probabilities move by up to about "
        f"{BF16_TOLERANCE} from float32 (at most 0.018 over 452 demo and real clips, top class unchanged for 99.6%%)",
    )
    predict.add_argument(
        "--top-k", type=positive(int), metavar="K", help="classes shown per file (default 1; not with --window)",
    )
    predict.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    predict.add_argument(
        "--out", type=Path, metavar="FILE", help="write the output here instead of stdout (never over an input file)",
    )
    predict.add_argument(
        "--window", action="store_true",
        help="print a timeline: segments (start, end, class, max and mean window probability) where a class reaches "
        "--threshold, overlapping windows of a class merged",
    )
    predict.add_argument(
        "--hop", type=positive(float), metavar="SECONDS", help=f"window hop with --window (default {DEFAULT_HOP})",
    )
    predict.add_argument(
        "--threshold", type=probability, default=0.5, metavar="P",
        help="a window detects a class when its probability is >= P (default 0.5)",
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
    plots = commands.add_parser(
        "plots-template", help="write an offline HTML template for `dvc plots show`",
        description="Write an HTML page template with the Vega, Vega-Lite and Vega-Embed libraries inlined, so that "
        "`dvc plots show --html-template FILE` draws its plots with no network.",
    )
    plots.add_argument(
        "--out", type=Path, default=PLOTS_TEMPLATE, metavar="FILE", help=f"output file (default {PLOTS_TEMPLATE})",
    )
    return parser


def check_predict_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error for options that do not go together."""
    if args.window and args.top_k is not None:
        parser.error("--top-k applies to whole files; --window prints every class reaching --threshold instead")
    if not args.window and args.hop is not None:
        parser.error("--hop only applies with --window")


def report(path: str, reason: str) -> None:
    """One error line on stderr naming the input and the reason."""
    print(f"error: {path}: {reason}", file=sys.stderr)


def checkpoint_at(path: Path) -> dict:
    """read_checkpoint, saying how to make a missing one."""
    from nonspeech.predict import read_checkpoint

    try:
        return read_checkpoint(path)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}; train one with `dvc repro train_final` or pass --model") from exc


def load_model(args: argparse.Namespace) -> Model:
    """The PyTorch model from --model, or the ONNX model from --onnx checked against --model when given."""
    from nonspeech.predict import check_same_features, torch_model

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


def failed(path: str, reason: str, width: int) -> tuple[list[list], dict]:
    """Report an unusable input on stderr; its output row (path, empty cells, error) and JSON record."""
    report(path, reason)
    return [[path, *[""] * (width - 1), reason]], {"file": path, "error": reason}


def warn(path: str, warning: str) -> None:
    """One warning line on stderr about an input that was still classified."""
    if warning:
        print(f"warning: {path}: {warning}", file=sys.stderr)


def file_rows(model: Model, files: list[Path], k: int) -> Iterator[tuple[list[list], dict]]:
    """Classify whole files; per file, in input order, its row of the top k classes and its JSON record."""
    from nonspeech.predict import classify_files, top_k

    order = {str(path): i for i, path in reversed(list(enumerate(files)))}
    for outcome in sorted(classify_files(files, model), key=lambda o: order[o.path]):
        if outcome.error:
            yield failed(outcome.path, outcome.error, 1 + 2 * k)
            continue
        warn(outcome.path, outcome.warning)
        top = top_k(outcome.probabilities, model.classes, k)
        yield [[outcome.path, *(value for pair in top for value in pair), ""]], {
            "file": outcome.path, "error": None, "seconds": outcome.seconds,
            "predictions": [{"class": label, "probability": p} for label, p in top],
        }


def window_rows(model: Model, files: list[Path], hop: float, threshold: float) -> Iterator[tuple[list[list], dict]]:
    """Classify windows of each file; per file, its timeline rows (one per segment) and its JSON record."""
    from nonspeech.audio import AudioError
    from nonspeech.predict import classify_recording, timeline

    for path in files:
        try:
            windows = classify_recording(path, model, hop)
        except AudioError as exc:
            yield failed(str(path), str(exc), len(WINDOW_COLUMNS))
            continue
        warn(str(path), windows.warning)
        segments = timeline(windows, model.classes, model.features["seconds"], threshold)
        found = [[str(path), s.start, s.end, s.label, s.max_probability, s.mean_probability] for s in segments]
        yield [[*row, ""] for row in found], {
            "file": str(path), "error": None, "seconds": windows.seconds,
            "segments": [dict(zip(WINDOW_COLUMNS[1:], row[1:])) for row in found],
        }


def file_columns(k: int) -> list[str]:
    """Column names of top-k rows: file, class, probability, class_2, probability_2, ..."""
    return [*FILE_COLUMNS, *(f"{name}_{rank}" for rank in range(2, k + 1) for name in FILE_COLUMNS[1:])]


def shown_classes(top_k: int | None, classes: list[str]) -> int:
    """How many classes each file row shows: --top-k (default 1), with a note when the model has fewer."""
    wanted = top_k or 1
    if wanted > len(classes):
        print(f"note: --top-k {wanted} is more than the model's {len(classes)} classes; showing all {len(classes)}",
              file=sys.stderr)
    return min(wanted, len(classes))


def render(fmt: str, columns: list[str], rows: list[list], records: list[dict]) -> str:
    """The output text: JSON records, CSV rows with an error column, or an aligned table of the classified rows
    with floats to 3 decimals (errors are on stderr only). Each row ends with its error cell."""
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([[*columns, "error"], *rows])
        return buffer.getvalue()
    cells = [columns, *([f"{v:.3f}" if isinstance(v, float) else str(v) for v in row[:-1]] for row in rows if not row[-1])]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in cells)


def check_out(out: Path | None, files: list[Path]) -> None:
    """FileExistsError when --out is one of the input audio files."""
    if out is not None and out.exists() and any(os.path.samefile(out, path) for path in files):
        raise FileExistsError(f"--out {out} is one of the input audio files; refusing to overwrite it")


def run_predict(args: argparse.Namespace) -> int:
    """Classify; 0 when at least one file was classified."""
    from nonspeech.predict import find_audio

    files, unusable = find_audio(args.paths)
    check_out(args.out, files)
    model = load_model(args)
    if args.window:
        columns = list(WINDOW_COLUMNS)
        classified = window_rows(model, files, args.hop or DEFAULT_HOP, args.threshold)
    else:
        k = shown_classes(args.top_k, model.classes)
        columns = file_columns(k)
        classified = file_rows(model, files, k)
    results = [failed(path, reason, len(columns)) for path, reason in unusable] + list(classified)
    records = [record for _, record in results]
    if all(record["error"] for record in records):
        print("error: nothing could be classified", file=sys.stderr)
        return 1
    text = render(args.format, columns, [row for rows, _ in results for row in rows], records)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the exported model and say where."""
    from nonspeech.export import export_onnx, export_torchscript  # the optional `export` extra

    out = args.out or EXPORT_OUT[args.format]
    {"onnx": export_onnx, "torchscript": export_torchscript}[args.format](checkpoint_at(args.model), out)
    print(f"wrote {out} ({args.format}): waveforms in, class probabilities out")
    return 0


def run_plots_template(args: argparse.Namespace) -> int:
    """Write the offline template and say how to use it."""
    from nonspeech.plots_template import write_template

    write_template(args.out)
    print(f"wrote {args.out}; draw the plots offline with: dvc plots show --html-template {args.out}")
    return 0


COMMANDS = {"predict": run_predict, "export": run_export, "plots-template": run_plots_template}


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that are the user's to fix: shown as one `error:` line (imported only once one is raised)."""
    from nonspeech.predict import ModelError

    return FileNotFoundError, FileExistsError, ModelError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nonspeech` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "predict":
        check_predict_args(args.parser, args)
    try:
        return COMMANDS[args.command](args)
    except user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
