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
DESCRIPTION = ("The `nonspeech` command: `predict` classifies recordings, `listen` detects events in a live stream, "
               "`export` writes a portable model, "
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


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --onnx, --bf16 and --threads: which model runs, and how."""
    parser.add_argument(
        "--model", type=Path, metavar="FILE",
        help=f"checkpoint (default {DEFAULT_MODEL}); with --onnx, only given to check the ONNX model agrees with it",
    )
    parser.add_argument("--onnx", type=Path, metavar="FILE", help="run this exported ONNX model with onnxruntime")
    parser.add_argument(
        "--bf16", action="store_true",
        help="run the network in bfloat16: faster on CPUs with bf16 units (AMX); probabilities move by up to about "
        f"{BF16_TOLERANCE} from float32 (at most 0.018 over 452 demo and real clips, top class unchanged for 99.6%%)",
    )
    parser.add_argument(
        "--threads", type=positive(int), metavar="N",
        help="CPU threads for the PyTorch and onnxruntime network (default: one per core; listen: 1); predict --window "
        "scores that many batches of windows side by side, one thread each",
    )


def add_timeline_options(parser: argparse.ArgumentParser) -> None:
    """The options of a timeline: windows, thresholds, hysteresis, minimum duration and pooling."""
    parser.add_argument(
        "--exact", action="store_true",
        help="in a timeline (predict --window, listen), run each window alone through the whole network, so that its probabilities depend on its "
        "own audio only (several times slower; by default overlapping windows share the network's convolutional body)",
    )
    parser.add_argument(
        "--hop", type=positive(float), metavar="SECONDS", help=f"window hop of a timeline (default {DEFAULT_HOP}; a detector's: its column, which its thresholds "
        "were calibrated at; at most what each window scores, the --span)",
    )
    parser.add_argument(
        "--span", type=positive(float), metavar="SECONDS",
        help="in a timeline, score each window from the centre SECONDS of the network's feature map only, as the "
        "probabilities of that stretch: finer event edges (default: half the model's window; an ONNX model scores "
        "whole windows)",
    )
    parser.add_argument(
        "--threshold", type=probability, metavar="P",
        help="a class is detected in a file, or an event starts, where its score is >= P, for every class: its "
        "probability, or p / (p + p(other)) for checkpoints whose decision rule is versus_other (default: the "
        "checkpoint's calibrated per-class thresholds, 0.5 for classes it has none for)",
    )
    parser.add_argument(
        "--hysteresis", type=probability, metavar="F",
        help="an event continues while the score stays >= (1 - F) x threshold (default: the hysteresis a detector's "
        "thresholds were chosen with, else 0.1)",
    )
    parser.add_argument(
        "--min-duration", type=float, default=0.0, metavar="SECONDS", help="drop events shorter than this (default 0)",
    )
    parser.add_argument("--pool", choices=POOLS, default="mean", help="how covering windows score a stretch (default mean)")


def add_listen(commands: argparse._SubParsersAction) -> None:
    """The listen command's parser."""
    listen = commands.add_parser(
        "listen", help="detect events in a live stream (stdin, a file, a sound card) as they happen",
        description="Run the timeline of `predict --window` on a stream, with the same model, resampling, windows, "
        "median filters, thresholds and hysteresis, keeping a bounded buffer: each event is written, and flushed, as "
        "soon as no later audio can change it (times in seconds of stream time). SOURCE `-` reads standard input: a "
        "WAV stream, or raw PCM with --raw; a file path reads the file, as fast as it decodes or with --realtime at "
        "its own pace; --mic reads a sound card.",
        epilog="Exit status: 0 at the end of the stream (pending events flushed, also after --timeout); 1 for a "
        "stream that cannot be read on (one line naming the byte offset or the header field; the events so far are "
        "kept); 2 for options that do not go together; 130 after Ctrl-C (events so far flushed); quiet when the "
        "reader of stdout goes away.",
    )
    listen.add_argument("source", nargs="?", metavar="SOURCE", help="`-` for standard input, or an audio file")
    listen.add_argument(
        "--mic", nargs="?", const="", metavar="DEVICE",
        help="read a sound card (PortAudio; a device name or index, default the system's input) instead of SOURCE",
    )
    listen.add_argument("--raw", action="store_true", help="standard input is headerless PCM (give --rate)")
    listen.add_argument("--rate", type=positive(int), metavar="HZ", help="sample rate of --raw input")
    listen.add_argument("--channels", type=positive(int), default=1, metavar="C", help="channels of --raw input (default 1)")
    listen.add_argument("--sample-format", choices=("s16le", "f32le"), default="s16le",
                        help="sample format of --raw input (default s16le)")
    listen.add_argument("--realtime", action="store_true", help="read a file no faster than it plays, as a live source")
    listen.add_argument("--timeout", type=positive(float), metavar="S",
                        help="end the run, with a note, when no input arrives for S seconds")
    listen.add_argument("--format", choices=("jsonl", "csv", "audacity"), default="jsonl",
                        help="jsonl (default): {class, start, end, max_probability} per line; csv; audacity labels")
    listen.add_argument("--onsets", action="store_true",
                        help="also write a line as soon as an event begins, with end null (jsonl) or empty (csv)")
    add_model_options(listen)
    add_timeline_options(listen)


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
    add_model_options(predict)
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
    add_timeline_options(predict)
    predict.add_argument(
        "--plot", type=Path, metavar="FILE",
        help="with --window, a PNG (FILE ending in .png) of class scores over time with events shaded (several "
        "recordings: FILE_<recording>.png)",
    )
    add_listen(commands)
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


def check_listen_args(args: argparse.Namespace) -> None:
    """OptionError for listen options that do not go together."""
    if (args.source is None) == (args.mic is None):
        raise OptionError("listen reads one source: `-` (standard input), a file, or --mic")
    if args.raw and args.source != "-":
        raise OptionError("--raw describes standard input: give `-` as the source")
    if args.raw and args.rate is None:
        raise OptionError("--raw needs --rate (and --channels, --sample-format unless 1 and s16le)")
    if not args.raw and args.rate is not None:
        raise OptionError("--rate, --channels and --sample-format describe --raw input; a WAV stream has its own")
    if args.realtime and args.source in (None, "-"):
        raise OptionError("--realtime paces a file; standard input and a sound card come at their own pace")
    if args.timeout is not None and args.source not in (None, "-"):
        raise OptionError("--timeout applies to standard input and --mic; a file never stalls")
    if args.onsets and args.format == "audacity":
        raise OptionError("--onsets: an Audacity label track holds closed events only; use --format jsonl or csv")


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
