"""The `nonspeech` command: parse the arguments, call the library, and turn what the user must fix into one line
on stderr (exit 1 for unusable inputs, 2 for bad options or destinations, 130 on Ctrl-C; quiet on a closed pipe)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nonspeech.arguments import (
    DEFAULT_HOP,
    DEFAULT_MODEL,
    EXPORT_OUT,
    build_parser,
    check_listen_args,
    check_predict_args,
)
from nonspeech.errors import InputError, ModelError, OptionError, OutputError

if TYPE_CHECKING:  # the model (numpy, torch) is imported only when a command needs it
    from nonspeech.inference.model import LoadedModel


def report(kind: str, path: str, message: str) -> None:
    """One `error:`, `warning:` or `note:` line on stderr naming the input and the message."""
    print(f"{kind}: {path}: {message}", file=sys.stderr)


def write(out: Path | None, text: str) -> None:
    """Write text to the file `out` (creating its folder), or to stdout when None."""
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def checked_hop(args: argparse.Namespace, model: LoadedModel) -> float:
    """--hop (default: the hop the model's thresholds were calibrated at, a detector's column; else 0.25 s), refused
    when longer than what each window scores: audio between would go unscored."""
    hop, scored = args.hop or model.timeline_hop or DEFAULT_HOP, model.span or model.features["seconds"]
    if hop > scored:
        raise OptionError(f"--hop {hop:g} s is longer than the {scored:g} s each window scores, so the audio between "
                          f"windows would never be scored; use --hop {scored:g} or less")
    return hop


def hysteresis(args: argparse.Namespace, model: LoadedModel) -> float:
    """--hysteresis, by default the one the model's timeline thresholds were chosen with."""
    return model.hysteresis if args.hysteresis is None else args.hysteresis


def run_predict(args: argparse.Namespace) -> int:
    """Classify; 0 when at least one file was classified."""
    from nonspeech.data.files import find_audio
    from nonspeech.inference import records
    from nonspeech.inference.destinations import per_recording, plan_predict
    from nonspeech.inference.load import load_model
    from nonspeech.inference.torch_model import NO_ONNXRUNTIME, onnxruntime_installed

    files, unusable = find_audio(args.paths)
    per_file_out = args.format == "audacity" and len(files) > 1
    if per_file_out and args.out is None:
        raise OptionError("--format audacity writes one label track per recording: with several, give --out")
    names = plan_predict(args.out, args.plot, files, per_file_out)
    import torch

    threads = args.threads or torch.get_num_threads()
    # a timeline scores its batches of windows on that many threads side by side, one thread each: faster than
    # splitting each batch's small convolutions between threads
    torch.set_num_threads(1 if args.window else threads)
    model = load_model(args.model or DEFAULT_MODEL, args.onnx, args.model is not None, args.bf16, args.exact,
                       args.window, args.span)
    if args.onnx is not None and not model.thresholds and args.threshold is None:
        report("note", str(args.onnx), "carries no calibrated thresholds (exported before they were stored, or from "
               "a checkpoint without them): detecting at 0.5; export it again or give --threshold")
    if args.window:
        hop = checked_hop(args, model)
        if args.onnx is None and not args.bf16 and not onnxruntime_installed():
            print(f"note: {NO_ONNXRUNTIME}", file=sys.stderr)
        columns = list(records.WINDOW_COLUMNS)
        classified = records.timeline_results(model, files, hop, args.threshold, hysteresis(args, model),
                                              args.min_duration, args.pool, args.plot, names, report, threads)
    else:
        k, n = args.top_k or 1, len(model.classes)
        if k > n:
            print(f"note: --top-k {k} is more than the model's {n} classes; showing all {n}", file=sys.stderr)
            k = n
        columns = records.file_columns(k)
        classified = records.file_results(model, files, k, args.threshold, report)
    results = [records.failed(path, reason, len(columns), report) for path, reason in unusable] + list(classified)
    if all(record["error"] for _, record in results):
        print("error: nothing could be classified", file=sys.stderr)
        return 1
    if per_file_out:
        for rows, record in results:
            if not record["error"]:
                text = records.render(args.format, columns, rows, [record])
                write(per_recording(args.out, names[Path(record["file"])]), text)
    else:
        rows = [row for rows, _ in results for row in rows]
        write(args.out, records.render(args.format, columns, rows, [record for _, record in results]))
    return 0


def run_listen(args: argparse.Namespace) -> int:
    """Detect events in a stream as it arrives; 0 at its end, 1 when it cannot be read on, 130 after Ctrl-C."""
    import torch

    from nonspeech.data.audio import AudioError
    from nonspeech.inference.detect import class_thresholds
    from nonspeech.inference.load import load_model
    from nonspeech.live import output
    from nonspeech.live.streams import Stalled, file_stream, find_microphone, microphone_stream, pcm_stream, raw_format
    from nonspeech.live.timeline import LiveTimeline

    mic = None if args.mic is None else find_microphone(args.mic or None)  # before the model: a missing card says so at once
    torch.set_num_threads(args.threads or 1)
    model = load_model(args.model or DEFAULT_MODEL, args.onnx, args.model is not None, args.bf16, args.exact, True,
                       args.span)
    rate = model.features["sample_rate"]
    if mic is not None:
        stream = microphone_stream(mic, rate, args.timeout)
    elif args.source == "-":
        raw = raw_format(args.rate, args.channels, args.sample_format) if args.raw else None
        stream = pcm_stream(sys.stdin.buffer.fileno(), rate, args.timeout, raw)
    else:
        stream = file_stream(Path(args.source), rate, args.realtime)
    timeline = LiveTimeline(model, checked_hop(args, model), class_thresholds(model.classes, model.thresholds, args.threshold),
                            hysteresis(args, model), args.min_duration, args.pool)
    sys.stdout.write(output.header(args.format))

    def emit(decisions: list) -> None:
        output.write(sys.stdout, args.format, decisions, args.onsets)

    try:
        for block in stream.blocks():
            emit(timeline.feed(block))
    except Stalled:
        report("note", stream.name, f"no input for {args.timeout:g} s (--timeout): stopping")
    except (InputError, AudioError) as exc:
        emit(timeline.finish(stream.seconds))
        raise InputError(f"{stream.name}: {exc}; the events so far are written") from exc
    except KeyboardInterrupt:
        emit(timeline.finish(stream.seconds))
        raise
    emit(timeline.finish(stream.seconds))
    return 0


def run_evaluate_timeline(args: argparse.Namespace) -> int:
    """Print segment and event scores of a predict --window JSON timeline against reference events."""
    from nonspeech.evaluation.sed_metrics import sed_scores  # sed_eval only here
    from nonspeech.evaluation.timeline import score_timeline  # pandas only here
    from nonspeech.evaluation.timeline_inputs import read_reference, read_timeline
    from nonspeech.inference.records import render

    system, durations, classes = read_timeline(args.timeline)
    reference = read_reference(args.events, classes, set(durations))
    scores = score_timeline(reference, system, durations)
    sed = sed_scores(reference, system, durations)
    unreferenced = sorted(set(durations) - set(reference))
    if args.format == "json":
        print(json.dumps({"per_class": scores.per_class, "macro_f1": scores.macro_f1,
                          "event_macro_f1": sed.event_macro_f1, "event_per_class": sed.event_per_class,
                          "sed_eval_segment_macro_f1": sed.segment_macro_f1,
                          "false_alarms_per_minute": scores.false_alarms_per_minute, "minutes": scores.minutes,
                          "recordings": len(durations), "recordings_without_reference_events": unreferenced},
                         indent=2))
        return 0
    columns = ["class", "precision", "recall", "f1", "reference_segments", "system_segments"]
    rows = [[label, *(values[c] for c in columns[1:]), "", ""] for label, values in scores.per_class.items()]
    sys.stdout.write(render("table", columns, rows, []))
    print(f"macro-F1 {scores.macro_f1:.3f} (1 s segments); false alarms {scores.false_alarms_per_minute:.2f} s per "
          f"minute over {scores.minutes:.1f} min of {len(durations)} recordings, {len(unreferenced)} of them without "
          "reference events" + (f" ({', '.join(unreferenced)})" if unreferenced else ""))
    print(f"event macro-F1 {sed.event_macro_f1:.3f} (onset ±200 ms, offsets ignored); sed_eval's segment "
          f"macro-F1 {sed.segment_macro_f1:.3f}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the exported model and say where."""
    from nonspeech.inference.destinations import check_export
    from nonspeech.inference.export import export_onnx, export_torchscript  # the optional `export` extra
    from nonspeech.inference.load import checkpoint_at

    out = args.out or EXPORT_OUT[args.format]
    check_export(out, args.model)
    {"onnx": export_onnx, "torchscript": export_torchscript}[args.format](checkpoint_at(args.model), out)
    print(f"wrote {out} ({args.format}): waveforms in, class probabilities out")
    return 0


def run_plots_template(args: argparse.Namespace) -> int:
    """Write the offline template and say how to use it."""
    from nonspeech.evaluation.plots_template import write_template
    from nonspeech.inference.destinations import check_writable

    check_writable(args.out, "--out")
    write_template(args.out)
    print(f"wrote {args.out}; draw the plots offline with: dvc plots show --html-template {args.out}")
    return 0


COMMANDS = {
    "predict": run_predict, "listen": run_listen, "export": run_export, "evaluate-timeline": run_evaluate_timeline,
    "plots-template": run_plots_template,
}
EXIT_CODES = {OptionError: 2, OutputError: 2, FileNotFoundError: 1, ModelError: 1, InputError: 1}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nonspeech` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "predict":
            check_predict_args(args)
        if args.command == "listen":
            check_listen_args(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except tuple(EXIT_CODES) as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return next(code for kind, code in EXIT_CODES.items() if isinstance(exc, kind))
    except BrokenPipeError:  # e.g. `nonspeech predict ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
