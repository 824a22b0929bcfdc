"""Nothing lost, nothing silent: every bad input, option or destination of the CLI gets one line and the right exit
code (1 unusable input, 2 bad option or destination, 130 Ctrl-C; quiet on a closed pipe), before any work where it
can be known before; ONNX exports carry the checkpoint's thresholds. Checkpoints here are small untrained resnets
on real clips: what is checked is the plumbing, not the model."""

from __future__ import annotations

import csv
import datetime
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from nonspeech.cli import main
from nonspeech.data.files import find_audio
from nonspeech.decisions import decision_scores
from nonspeech.features.frontends import feature_spec
from nonspeech.inference.onnx_model import onnx_model
from nonspeech.inference.torch_model import read_checkpoint, torch_model
from nonspeech.models.checkpoint import make_checkpoint, save_checkpoint
from nonspeech.models.registry import build_model

REALSOUNDS = Path(__file__).resolve().parents[2] / "shared" / "realsounds" / "clips"
CLI = Path(sys.executable).with_name("nonspeech")
CLASSES = ["breath", "cough", "crying", "laugh", "screaming", "sneeze", "yawn"]
LOGMEL = {"n_fft": 512, "hop_length": 256, "n_mels": 32, "top_db": 80.0}


def checkpoint(path: Path, thresholds: dict[str, float] | None = None, classes: list[str] = CLASSES, **extra) -> Path:
    """A seeded untrained resnet on 1 s log-mels at 16 kHz, with `thresholds` and any `extra` keys, saved at `path`."""
    torch.manual_seed(0)
    network = build_model("resnet", len(classes), widths=[4, 8, 8, 16], hidden=16, dropout=0.0)
    features = feature_spec("logmel", 16000, 1.0, LOGMEL)
    extra |= {"thresholds": thresholds} if thresholds else {}
    save_checkpoint(make_checkpoint(network, "resnet", {"widths": [4, 8, 8, 16], "hidden": 16, "dropout": 0.0},
                                    classes, features, {"mode": "global", "mean": -40.0, "std": 20.0}, **extra), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real recordings sharing the file name clip: a/clip.wav, b/clip.wav and b/clip.flac."""
    root = tmp_path_factory.mktemp("clips")
    for sub, cls, suffix in (("a", "cough", ".wav"), ("b", "laugh", ".wav"), ("b", "laugh", ".flac")):
        audio, rate = sf.read(sorted((REALSOUNDS / cls).glob("*.wav"))[0])
        (root / sub).mkdir(exist_ok=True)
        sf.write(root / sub / f"clip{suffix}", audio, rate)
    return root


def run(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, list[str]]:
    """`nonspeech ARGS` in-process: exit code, stdout and the stderr lines."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_per_recording_files_never_collide(capsys: pytest.CaptureFixture, model: Path, clips: Path, tmp_path: Path) -> None:
    code, _, _ = run(capsys, "predict", clips, "--window", "--format", "audacity", "--out", tmp_path / "o.txt",
                     "--plot", tmp_path / "p.png", "--model", model, "--threshold", "0")
    assert code == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["o_a_clip.wav.txt", "o_b_clip.flac.txt", "o_b_clip.wav.txt",
                       "p_a_clip.wav.png", "p_b_clip.flac.png", "p_b_clip.wav.png"]
    assert all((tmp_path / name).read_text().strip() for name in written if name.endswith(".txt"))


@pytest.mark.parametrize("destination,message", [
    (lambda tmp, clips: ["--plot", tmp / "same.png", "--out", tmp / "same.png"], "--out and --plot both write"),
    (lambda tmp, clips: ["--plot", clips / "a/clip.wav"], "writes a PNG image"),
    (lambda tmp, clips: ["--plot", clips / "a"], "writes a PNG image"),
    (lambda tmp, clips: ["--plot", clips / "a.png"], "is a folder"),
    (lambda tmp, clips: ["--out", clips / "a/clip.wav"], "is one of the input recordings"),
    (lambda tmp, clips: ["--out", clips / "a"], "is a folder"),
    (lambda tmp, clips: ["--out", clips / "a/clip.wav/x.csv"], "is a file, not a folder"),
], ids=["plot-is-out", "plot-is-input", "plot-is-folder", "plot-png-folder", "out-is-input", "out-is-folder",
        "out-under-a-file"])
def test_bad_destinations_are_one_line_and_exit_2_before_any_work(
    capsys: pytest.CaptureFixture, model: Path, clips: Path, tmp_path: Path, destination, message: str,
) -> None:
    (clips / "a.png").mkdir(exist_ok=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run(capsys, "predict", clips / "a/clip.wav", "--window", "--model", tmp_path / "absent.pt",
                         *destination(tmp_path, clips))
    assert (code, out, len(err)) == (2, "", 1) and message in err[0] and err[0].startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no model even looked for


def test_unwritable_destination_is_refused_before_any_work(capsys: pytest.CaptureFixture, model: Path, clips: Path,
                                                           tmp_path: Path) -> None:
    """/proc refuses new files even to root, where permission bits do not."""
    code, _, err = run(capsys, "predict", clips, "--out", "/proc/nonspeech.csv", "--model", model)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --out /proc/nonspeech.csv cannot be written (")
    code, _, err = run(capsys, "export", "--model", model, "--out", "/proc/model.onnx")
    assert code == 2 and len(err) == 1 and "cannot be written" in err[0]


def test_export_never_overwrites_its_checkpoint(capsys: pytest.CaptureFixture, model: Path) -> None:
    before = model.read_bytes()
    code, _, err = run(capsys, "export", "--model", model, "--out", model)
    assert (code, err) == (2, [f"error: --out {model} is the checkpoint being exported; refusing to overwrite it"])
    assert model.read_bytes() == before


@pytest.mark.parametrize("hop", ["3", "59", "100"])
def test_a_hop_longer_than_what_a_window_scores_is_refused(capsys: pytest.CaptureFixture, model: Path, clips: Path,
                                                           hop: str) -> None:
    code, out, err = run(capsys, "predict", clips, "--window", "--hop", hop, "--model", model)
    assert (code, out) == (2, "") and err == [
        f"error: --hop {hop} s is longer than the 0.5 s each window scores, so the audio between windows would never "
        "be scored; use --hop 0.5 or less"]


def test_bf16_with_onnx_is_refused(capsys: pytest.CaptureFixture, clips: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "predict", clips, "--bf16", "--onnx", tmp_path / "m.onnx")
    assert (code, err) == (2, ["error: --bf16 runs the checkpoint's network in PyTorch; an ONNX model runs in float32"])


@pytest.mark.parametrize("content,reason", [
    (b"not a checkpoint\n", "not a PyTorch checkpoint (torch.save writes a zip archive; this file is not one)"),
    (b"", "empty file (0 bytes)"),
], ids=["text", "empty"])
def test_unusable_checkpoints_name_the_file_and_reason_and_never_suggest_unsafe_loading(
    capsys: pytest.CaptureFixture, clips: Path, tmp_path: Path, content: bytes, reason: str,
) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    code, _, err = run(capsys, "predict", clips, "--model", path)
    assert (code, err) == (1, [f"error: {path}: not a usable checkpoint: {reason}"])


def test_a_checkpoint_of_arbitrary_objects_is_refused_without_unsafe_advice(capsys: pytest.CaptureFixture, clips: Path,
                                                                           tmp_path: Path) -> None:
    path = tmp_path / "pickled.pt"
    torch.save({"format": 1, "model": datetime.date(2026, 12, 5)}, path)
    code, _, err = run(capsys, "predict", clips, "--model", path)
    assert code == 1 and len(err) == 1 and "weights_only" not in err[0]
    assert err[0] == f"error: {path}: not a usable checkpoint: holds Python objects beyond tensors and plain values, " \
        "which nonspeech never loads"


def test_notes_about_an_input_are_in_its_record_in_every_format(capsys: pytest.CaptureFixture, model: Path,
                                                                tmp_path: Path) -> None:
    """A truncated file and one shorter than a window: their notes on stderr, and in the JSON and CSV records."""
    audio, rate = sf.read(sorted((REALSOUNDS / "cough").glob("*.wav"))[0])
    sf.write(tmp_path / "short.wav", audio[: rate // 4], rate)
    sf.write(tmp_path / "cut.wav", audio, rate, subtype="PCM_16")
    data = (tmp_path / "cut.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    for window in ([], ["--window"]):
        code, out, err = run(capsys, "predict", tmp_path, "--model", model, "--format", "json", *window)
        notes = {Path(r["file"]).name: r["notes"] for r in json.loads(out)}
        assert code == 0 and notes["cut.wav"] and notes["cut.wav"][0].startswith("warning: truncated:")
        assert any(line.startswith(f"warning: {tmp_path / 'cut.wav'}: truncated") for line in err)
        code, out, _ = run(capsys, "predict", tmp_path, "--model", model, "--format", "csv", *window)
        rows = {Path(r["file"]).name: r["notes"] for r in csv.DictReader(io.StringIO(out))}
        assert rows["cut.wav"].startswith("warning: truncated:")
    assert "shorter than one 1 s window" in notes["short.wav"][0] and "shorter than one 1 s window" in rows["short.wav"]


def test_onnx_export_carries_the_thresholds_and_detects_as_the_checkpoint_on_every_real_clip(
    capsys: pytest.CaptureFixture, tmp_path: Path,
) -> None:
    """Thresholds set in the widest gap of the PyTorch probabilities, so that only a lost threshold could differ."""
    files, _ = find_audio([REALSOUNDS])
    probabilities = np.stack([r.probabilities for r in torch_model(read_checkpoint(checkpoint(tmp_path / "raw.pt")))
                              .classify(files)])
    thresholds = {}
    for label, column in zip(CLASSES, np.sort(probabilities, axis=0).T):
        middle = column[len(column) // 4: 3 * len(column) // 4]
        gap = int(np.argmax(np.diff(middle)))
        thresholds[label] = float(middle[gap: gap + 2].mean())
    model = checkpoint(tmp_path / "model.pt", thresholds)
    assert run(capsys, "export", "--model", model, "--out", tmp_path / "model.onnx")[0] == 0
    assert onnx_model(tmp_path / "model.onnx").thresholds == thresholds
    detected = []
    for source in (["--model", model], ["--onnx", tmp_path / "model.onnx"]):
        code, out, _ = run(capsys, "predict", REALSOUNDS, *source, "--format", "json")
        detected.append({r["file"]: [d["class"] for d in r["detected"]] for r in json.loads(out)})
    assert code == 0 and len(detected[0]) == len(files) and detected[0] == detected[1]
    assert 0 < sum(map(len, detected[0].values())) < len(files) * len(CLASSES)  # the thresholds decide something


def test_onnx_export_carries_the_decision_rule_and_decides_as_the_checkpoint(
    capsys: pytest.CaptureFixture, tmp_path: Path,
) -> None:
    """versus_other with `other` among the classes: the top target only, at its score against other."""
    classes = [*CLASSES, "other"]
    files, _ = find_audio([REALSOUNDS])
    plain = torch_model(read_checkpoint(checkpoint(tmp_path / "raw.pt", classes=classes)))
    scores = decision_scores(np.stack([r.probabilities for r in plain.classify(files)]), classes, "versus_other")
    thresholds = {label: float(np.median(scores[:, i])) for i, label in enumerate(CLASSES)}
    model = checkpoint(tmp_path / "model.pt", thresholds, classes, decision_rule="versus_other")
    assert run(capsys, "export", "--model", model, "--out", tmp_path / "model.onnx")[0] == 0
    assert onnx_model(tmp_path / "model.onnx").decision_rule == "versus_other"
    detected = []
    for source in (["--model", model], ["--onnx", tmp_path / "model.onnx"]):
        code, out, _ = run(capsys, "predict", REALSOUNDS, *source, "--format", "json")
        detected.append({r["file"]: [d["class"] for d in r["detected"]] for r in json.loads(out)})
    assert code == 0 and detected[0] == detected[1]
    assert max(map(len, detected[0].values())) == 1 and 0 < sum(map(len, detected[0].values())) < len(files)


def test_a_checkpoint_with_an_unknown_decision_rule_is_one_line(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    model = checkpoint(tmp_path / "model.pt", decision_rule="odds")
    code, _, err = run(capsys, "predict", REALSOUNDS / "cough", "--model", model)
    assert code == 1 and err == [f"error: {model}: unknown decision rule 'odds'; valid: probability, versus_other"]


@pytest.fixture
def timeline(capsys: pytest.CaptureFixture, model: Path, clips: Path, tmp_path: Path) -> Path:
    """The JSON timeline of a.wav and b.wav (two real recordings) by predict --window."""
    for name, sub in (("a.wav", "a/clip.wav"), ("b.wav", "b/clip.wav")):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes((clips / sub).read_bytes())
    assert run(capsys, "predict", tmp_path / "in", "--window", "--format", "json", "--out", tmp_path / "t.json",
               "--model", model)[0] == 0
    return tmp_path / "t.json"


@pytest.mark.parametrize("rows,message", [
    ("", "empty file; needs the header scene,onset,offset,label"),
    ("scene,onset,label\na.wav,1,cough\n", "lacks columns offset"),
    ("scene,onset,offset,label\n", "no events, only a header"),
    ("scene,onset,offset,label\na.wav,abc,2,cough\n", "line 2: onset 'abc' and offset '2' must be numbers"),
    ("scene,onset,offset,label\na.wav,2,1,cough\n", "line 2: offset 1 s is not after onset 2 s"),
    ("scene,onset,offset,label\na.wav,-1,1,cough\n", "line 2: onset -1 s is before the recording starts"),
    ("scene,onset,offset,label\na.wav,0,1,Cough\n", "line 2: label 'Cough' is not a class of the model (labels are "
     "case-sensitive: cough)"),
    ("scene,onset,offset,label\na.wav,0,1,cough\na.wav,0,1,wheeze\n", "line 3: label 'wheeze' is not a class"),
    ("scene,onset,offset,label\nc.wav,0,1,cough\n", "line 2: scene 'c.wav' is not a recording of the timeline"),
], ids=["empty", "missing-column", "header-only", "onset-not-a-number", "offset-before-onset", "negative-onset",
        "mis-cased-label", "unknown-label", "unknown-scene"])
def test_bad_reference_rows_are_one_line_each_naming_file_and_row(
    capsys: pytest.CaptureFixture, timeline: Path, tmp_path: Path, rows: str, message: str,
) -> None:
    (tmp_path / "events.csv").write_text(rows)
    code, out, err = run(capsys, "evaluate-timeline", timeline, "--events", tmp_path / "events.csv")
    assert (code, out, len(err)) == (1, "", 1) and err[0].startswith(f"error: {tmp_path / 'events.csv'}")
    assert message in err[0]


def test_bad_timelines_are_one_line(capsys: pytest.CaptureFixture, model: Path, clips: Path, timeline: Path,
                                    tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("scene,onset,offset,label\na.wav,0,1,cough\n")
    (tmp_path / "text.json").write_text("not json")
    run(capsys, "predict", clips / "a/clip.wav", "--format", "json", "--out", tmp_path / "files.json", "--model", model)
    run(capsys, "predict", clips, "--window", "--format", "json", "--out", tmp_path / "same.json", "--model", model)
    for name, message in (("text.json", "not JSON"), ("files.json", "no segments (predict's output without --window)"),
                          ("same.json", "recordings are matched to reference scenes by file name, and these share one")):
        code, out, err = run(capsys, "evaluate-timeline", tmp_path / name, "--events", events)
        assert (code, out, len(err)) == (1, "", 1) and message in err[0], err


def test_recordings_without_reference_events_are_counted(capsys: pytest.CaptureFixture, timeline: Path,
                                                         tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text("scene,onset,offset,label\na.wav,0,1,cough\n")
    code, out, _ = run(capsys, "evaluate-timeline", timeline, "--events", tmp_path / "events.csv")
    assert code == 0 and "of 2 recordings, 1 of them without reference events (b.wav)" in out
    code, out, _ = run(capsys, "evaluate-timeline", timeline, "--events", tmp_path / "events.csv", "--format", "json")
    assert json.loads(out)["recordings_without_reference_events"] == ["b.wav"]


def test_a_closed_pipe_exits_quietly(model: Path) -> None:
    """`nonspeech predict ... | head`: the reader goes away; no traceback, exit 141 as after SIGPIPE."""
    run = subprocess.Popen([CLI, "predict", REALSOUNDS, "--model", model, "--format", "json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    run.stdout.close()
    assert (run.wait(timeout=120), run.stderr.read()) == (141, b"")


def test_ctrl_c_prints_one_line_and_exits_130(model: Path) -> None:
    """Interrupted 4 s in, long before it would end: 30 passes over the real clips, about 0.7 s each on one thread
    (three passes ended before the 4 s)."""
    run = subprocess.Popen([CLI, "predict", *[REALSOUNDS] * 30, "--model", model, "--window"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(4)
    run.send_signal(signal.SIGINT)
    assert (run.wait(timeout=60), run.stderr.read().decode().splitlines()[-1:]) == (130, ["interrupted"])
