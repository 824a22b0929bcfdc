"""The `nonspeech` command's arguments: the parser with every option's help, and the checks of option combinations
that argparse cannot express."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from nonspeech.errors import OptionError
from nonspeech.events import POOLS

DEFAULT_MODEL = Path("data/models/final/model.pt")
EXPORT_OUT = {"onnx": Path("model.onnx"), "torchscript": Path("model.torchscript.pt")}
PLOTS_TEMPLATE = Path("dvc_plots/offline_template.html")
DEFAULT_HOP = 0.25
BF16_TOLERANCE = 0.02  # max |p_bf16 - p_float32| of the demo model on 237 real and 215 demo clips was 0.018
DESCRIPTION = ("The `nonspeech` command: `predict` classifies recordings, `export` writes a portable model, "
               "`evaluate-timeline` scores a timeline against reference events, `plots-template` writes an offline "
               "page template for `dvc plots show`.")


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
    parser = argparse.ArgumentParser(prog="nonspeech", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('nonspeech')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict", help="classify audio files or folders",
        description="Classify audio files (any rate, channels, length, soundfile format) with the training-time "
        "preprocessing stored in the checkpoint: each file by its first `seconds` (zero-padded when shorter), or, "
        "with --window, by overlapping windows of that length. Folders are searched recursively. Per file: the top "
        "--top-k classes with their probabilities, and `detected`, the classes whose probability reaches their "
        "threshold (most probable first; `none` when no class does; the background class `other` never).",
        epilog="Each file that cannot be used gets one `error: PATH: reason` line on stderr (and, in JSON and CSV output, "
        "a record with its error) and the rest are still classified. Warnings and notes about a file (e.g. it holds less "
        "audio than its header claims) are `warning:`/`note:` lines and in its JSON and CSV record. Exit status: 1 when "
        "nothing could be classified or the model is unusable; 2, before any work, for options that do not go "
        "together and for destinations that would overwrite an input or cannot be written; 130 after Ctrl-C.",
    )
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
        "--threads", type=positive(int), metavar="N",
        help="CPU threads for the PyTorch and onnxruntime network (default: one per core); on a machine busy with "
        "other work, 1 is several times faster (no thread waits for another that is descheduled)",
    )
    predict.add_argument(
        "--top-k", type=positive(int), metavar="K", help="classes shown per file (default 1; not with --window)",
    )
    predict.add_argument(
        "--format", choices=("table", "json", "csv", "audacity"), default="table",
        help="output format; audacity (with --window): a label track, `start<TAB>end<TAB>class` lines, one per event",
    )
    predict.add_argument(
        "--out", type=Path, metavar="FILE",
        help="write the output here instead of stdout, never over an input file (audacity with several recordings: "
        "FILE_<recording>.txt each)",
    )
    predict.add_argument(
        "--window", action="store_true",
        help="print a timeline of events (start, end, class, max and mean score): windows every --hop seconds, each "
        "scoring the --span seconds at its centre; each stretch between those edges scored by the mean probability of "
        "the spans covering it, events where a class reaches its threshold",
    )
    predict.add_argument(
        "--exact", action="store_true",
        help="with --window, run each window alone through the whole network, so that its probabilities depend on its "
        "own audio only (several times slower; by default overlapping windows share the network's convolutional body)",
    )
    predict.add_argument(
        "--hop", type=positive(float), metavar="SECONDS", help=f"window hop with --window (default {DEFAULT_HOP}; a detector's: its column, which its thresholds "
        "were calibrated at; at most what each window scores, the --span)",
    )
    predict.add_argument(
        "--span", type=positive(float), metavar="SECONDS",
        help="with --window, score each window from the centre SECONDS of the network's feature map only, as the "
        "probabilities of that stretch: finer event edges (default: half the model's window; an ONNX model scores "
        "whole windows)",
    )
    predict.add_argument(
        "--threshold", type=probability, metavar="P",
        help="a class is detected in a file, or an event starts, where its score is >= P, for every class: its "
        "probability, or p / (p + p(other)) for checkpoints whose decision rule is versus_other (default: the "
        "checkpoint's calibrated per-class thresholds, 0.5 for classes it has none for)",
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
        help="with --window, a PNG (FILE ending in .png) of class scores over time with events shaded (several "
        "recordings: FILE_<recording>.png)",
    )
    export = commands.add_parser(
        "export", help="write the model as ONNX or TorchScript",
        description="Write the checkpoint as one model from waveforms (batch, round(seconds * sample_rate)) at the "
        "checkpoint's sample rate to class probabilities (softmax, or sigmoids, as the checkpoint was trained), "
        "log-mel front end inside; class names, feature parameters and thresholds go into the metadata. Never writes "
        "over its checkpoint.",
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
    plots = commands.add_parser(
        "plots-template", help="write an offline HTML template for `dvc plots show`",
        description="Write an HTML page template with the Vega, Vega-Lite and Vega-Embed libraries inlined, so that "
        "`dvc plots show --html-template FILE` draws its plots with no network.",
    )
    plots.add_argument(
        "--out", type=Path, default=PLOTS_TEMPLATE, metavar="FILE", help=f"output file (default {PLOTS_TEMPLATE})",
    )
    return parser


def check_predict_args(args: argparse.Namespace) -> None:
    """OptionError for options that do not go together."""
    if args.window and args.top_k is not None:
        raise OptionError("--top-k applies to whole files; --window prints every class reaching --threshold instead")
    if not args.window and args.hop is not None:
        raise OptionError("--hop only applies with --window")
    if not args.window and args.exact:
        raise OptionError("--exact only applies with --window")
    if not args.window and args.span is not None:
        raise OptionError("--span only applies with --window")
    if args.onnx is not None and args.span is not None:
        raise OptionError("--span needs the checkpoint's network (--model), not an ONNX model")
    if args.onnx is not None and args.bf16:
        raise OptionError("--bf16 runs the checkpoint's network in PyTorch; an ONNX model runs in float32")
    if not args.window and (args.format == "audacity" or args.plot is not None):
        raise OptionError("--format audacity and --plot need --window")
