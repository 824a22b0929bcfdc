"""`nonspeech listen` through the real CLI: the same events as `predict --window` on every real dev scene fed on
stdin, streams cut mid-frame, and streams that misbehave."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import resource
import signal
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import CONSOLE_SCRIPT, REALSOUNDS, nonspeech

from nonspeech.data.stream import open_recording
from nonspeech.inference.detect import class_thresholds
from nonspeech.inference.load import load_model
from nonspeech.live.streams import ByteReader, pcm_stream
from nonspeech.live.timeline import LiveTimeline, lanes_of

pytestmark = pytest.mark.pipeline

SCENES = sorted((REALSOUNDS / "scenes").glob("*.wav"))
THRESHOLD = "0.2"  # the test detector is trained for a few epochs on a few scenes: a low threshold gives it events


@pytest.fixture(scope="module")
def detector(detector_repo: Path) -> Path:
    return detector_repo / "data/detector/sed/model.pt"


def listen(model: Path, *args: object, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The console script `nonspeech listen --model MODEL ARGS`, fed `stdin`."""
    return subprocess.run([str(CONSOLE_SCRIPT), "listen", "--model", str(model), "--threshold", THRESHOLD, *map(str, args)],
                          input=stdin, capture_output=True, timeout=timeout)


def events(stdout: bytes) -> list[tuple[str, float, float]]:
    """The closed events of jsonl output, sorted as predict sorts them."""
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    return sorted((e["class"], e["start"], e["end"]) for e in lines if e["end"] is not None)


def offline(model: Path, *paths: Path) -> dict[str, list[tuple[str, float, float]]]:
    """predict --window's events per file, rounded as listen writes them."""
    result = nonspeech("predict", "--window", "--model", model, "--threshold", THRESHOLD, "--format", "json", *paths)
    assert result.returncode == 0, result.stderr
    return {Path(r["file"]).name: sorted((s["class"], round(s["start"], 3), round(s["end"], 3)) for s in r["segments"])
            for r in json.loads(result.stdout)}


def same_events(live: list, reference: list, frame: float) -> bool:
    """The same classes in the same order, onsets and offsets within one output frame."""
    return len(live) == len(reference) and all(
        a[0] == b[0] and abs(a[1] - b[1]) <= frame and abs(a[2] - b[2]) <= frame for a, b in zip(live, reference))


def test_stdin_gives_the_events_of_predict_window_on_every_dev_scene(detector: Path) -> None:
    reference = offline(detector, *SCENES)
    assert sum(map(len, reference.values())) > 0
    for scene in SCENES:
        result = listen(detector, "-", stdin=scene.read_bytes())
        assert result.returncode == 0, result.stderr.decode()
        assert same_events(events(result.stdout), reference[scene.name], 0.08), scene.name


def test_a_stream_cut_mid_frame_into_odd_pieces_and_onset_lines(detector: Path, tmp_path: Path) -> None:
    """Raw stereo PCM written in pieces of 1001 bytes (cutting frames and blocks), with --onsets: every closed event
    of predict, each announced once before it closes, in the order they were decided."""
    audio, rate = sf.read(SCENES[1], dtype="int16")
    stereo = np.stack([audio, audio], axis=1)
    wav = tmp_path / "stereo.wav"
    sf.write(wav, stereo, rate, subtype="PCM_16")
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "listen", "--model", str(detector), "--threshold", THRESHOLD, "--onsets", "-", "--raw",
         "--rate", str(rate), "--channels", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data = stereo.tobytes()
    for i in range(0, len(data), 1001):
        process.stdin.write(data[i:i + 1001])
    process.stdin.close()
    out, err = process.stdout.read(), process.stderr.read()
    assert process.wait() == 0, err.decode()
    assert same_events(events(out), offline(detector, wav)["stereo.wav"], 0.08)
    lines = [json.loads(line) for line in out.decode().splitlines()]
    for i, line in enumerate(lines):
        if line["end"] is not None:
            began = [j for j, other in enumerate(lines) if other["end"] is None
                     and (other["class"], other["start"]) == (line["class"], line["start"])]
            assert len(began) == 1 and began[0] < i


def test_csv_and_audacity_formats(detector: Path) -> None:
    scene = SCENES[0].read_bytes()
    closed = events(listen(detector, "-", stdin=scene).stdout)
    table = listen(detector, "-", "--format", "csv", stdin=scene).stdout.decode().splitlines()
    assert table[0] == "class,start,end,max_probability,mean_probability" and len(table) == 1 + len(closed)
    labels = listen(detector, "-", "--format", "audacity", stdin=scene).stdout.decode().splitlines()
    assert sorted((c, float(a), float(b)) for a, b, c in (line.split("\t") for line in labels)) == closed


def test_stdin_closed_mid_stream_flushes_what_it_heard(detector: Path, tmp_path: Path) -> None:
    """A WAV header that promises 60 s, closed after 25 s: exit 0 and the events of those 25 s."""
    audio, rate = sf.read(SCENES[0], dtype="int16")
    half = tmp_path / "half.wav"
    sf.write(half, audio[: 25 * rate], rate, subtype="PCM_16")
    cut = SCENES[0].read_bytes()[: len(half.read_bytes())]
    result = listen(detector, "-", stdin=cut)
    assert result.returncode == 0, result.stderr.decode()
    assert same_events(events(result.stdout), offline(detector, half)["half.wav"], 0.08)


def test_a_raw_stream_ending_inside_a_frame_names_the_byte_offset_and_keeps_the_events(detector: Path) -> None:
    audio, rate = sf.read(SCENES[0], dtype="int16")
    data = audio.tobytes() + b"\x01"
    result = listen(detector, "-", "--raw", "--rate", rate, stdin=data)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"error: -: the stream ended 1 byte(s) into a frame of 2 bytes, at byte offset {len(data)}: not a whole number "
        "of frames; the events so far are written"]
    assert events(result.stdout)


def wav_header(tag: int, channels: int, rate: int, bits: int) -> bytes:
    """A WAV stream's header with an unknown data size, as streaming writers leave it."""
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF)


@pytest.mark.parametrize(("header", "message"), [
    (wav_header(1, 1, 16000, 8), "unsupported WAV sample format (format tag 1, 8 bits); this reads 16-, 24- and 32-bit "
     "integer and 32-bit float PCM"),
    (wav_header(7, 1, 8000, 8), "unsupported WAV sample format (format tag 7, 8 bits); this reads 16-, 24- and 32-bit "
     "integer and 32-bit float PCM"),
    (wav_header(1, 1, 0, 16), "the WAV stream's rate 0 Hz is not a sample rate this reads (1000–768000 Hz)"),
    (b"ID3\x04" + bytes(40), "not a WAV stream (no RIFF/WAVE header); for headerless samples give --raw --rate R "
     "--channels C --sample-format s16le|f32le"),
])
def test_an_unsupported_header_is_one_line(detector: Path, header: bytes, message: str) -> None:
    result = listen(detector, "-", stdin=header + bytes(3200))
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [f"error: -: {message}; the events so far are written"]


def test_a_stalled_stream_waits_without_spinning_and_times_out_with_a_note(detector: Path) -> None:
    """A writer that sends 5 s and then nothing: --timeout 6 ends the run with a note, after a wait that cost almost
    no CPU (the whole run's CPU time stays well under its wall time)."""
    audio, rate = sf.read(SCENES[0], dtype="int16")
    buffer = io.BytesIO()
    sf.write(buffer, audio[: 5 * rate], rate, subtype="PCM_16", format="WAV")
    read, write = os.pipe()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "listen", "--model", str(detector), "-", "--timeout", "6"],
                               stdin=read, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(read)
    os.write(write, buffer.getvalue()[:-100])  # the header claims 100 bytes more: the reader waits for them
    out, err = process.communicate(timeout=120)
    waited = time.monotonic() - started
    os.close(write)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert process.returncode == 0
    assert err.decode().splitlines() == ["note: -: no input for 6 s (--timeout): stopping"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert waited >= 6 and cpu < waited - 4, f"{cpu:.1f} s of CPU in {waited:.1f} s: the wait spun"


def test_ctrl_c_flushes_the_events_so_far_and_exits_130(detector: Path) -> None:
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "listen", "--model", str(detector), "--threshold", "0.01",
                                str(SCENES[0]), "--realtime"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(12)  # model loading, then some seconds of the scene at its own pace
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.decode().splitlines() == ["interrupted"]
    heard = events(out)
    assert heard and max(end for _, _, end in heard) < 12


def test_each_class_is_decided_as_soon_as_its_own_median_filter_allows(detector: Path) -> None:
    """A 1.6 s median filter (21 windows of 0.08 s) on cough alone: the other classes' cells are decided 10 windows
    (0.8 s) further into the stream than cough's, not held back to its pace; without a filter, every cell that ends
    by the next window's start (which no later window covers) is decided."""
    assert lanes_of(["breath", "cough", "other", "sneeze"], [17, 13, 1, 1]) == [
        ([3], [1, 1, 1, 1]), ([1], [1, 13, 1, 1]), ([0], [17, 1, 1, 1])]
    model = dataclasses.replace(load_model(detector, timeline=True), median_seconds={"cough": 1.6})
    timeline = LiveTimeline(model, model.timeline_hop, class_thresholds(model.classes, model.thresholds, None), 0.1, 0.0,
                            "mean")
    recording = open_recording(SCENES[0], model.features["sample_rate"])
    samples = np.concatenate(list(recording.blocks))[:20 * model.features["sample_rate"]]
    timeline.feed(samples)
    unfiltered, cough = timeline.lanes
    assert cough.runs.targets == [model.classes.index("cough")]
    assert unfiltered.decided - cough.decided == pytest.approx(0.8, abs=1e-6)
    assert unfiltered.decided == pytest.approx(timeline.start_of(unfiltered.median.done), abs=1e-6)


def test_a_closed_stdout_ends_quietly(detector: Path) -> None:
    process = subprocess.Popen([str(CONSOLE_SCRIPT), "listen", "--model", str(detector), "--threshold", "0.01", "-"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    _, err = process.communicate(SCENES[0].read_bytes(), timeout=120)
    assert err == b"" and process.returncode != 0


def test_no_sound_card_is_one_line_naming_stdin(detector: Path, tmp_path: Path) -> None:
    """Said before any model is loaded: a model that does not exist is never reached."""
    for model in (detector, tmp_path / "missing.pt"):
        result = listen(model, "--mic")
        assert result.returncode == 1
        (line,) = result.stderr.decode().splitlines()
        assert line.startswith("error: --mic reads a sound card through PortAudio") and "nonspeech listen -" in line


@pytest.mark.parametrize(("args", "message"), [
    (["-", "--mic"], "listen reads one source: `-` (standard input), a file, or --mic"),
    (["-", "--raw"], "--raw needs --rate (and --channels, --sample-format unless 1 and s16le)"),
    (["-", "--realtime"], "--realtime paces a file; standard input and a sound card come at their own pace"),
    (["-", "--onsets", "--format", "audacity"], "--onsets: an Audacity label track holds closed events only; use "
     "--format jsonl or csv"),
])
def test_options_that_do_not_go_together(detector: Path, args: list[str], message: str) -> None:
    result = nonspeech("listen", "--model", detector, *args)
    assert result.returncode == 2 and result.stderr.splitlines() == [f"error: {message}"]


def test_pcm_stream_reads_24_bit_and_float_wav_as_soundfile_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((4000, 2))).astype(np.float32)
    for subtype in ("PCM_24", "PCM_32", "FLOAT"):
        path = tmp_path / f"{subtype}.wav"
        sf.write(path, audio, 16000, subtype=subtype)
        expected = sf.read(path, dtype="float32")[0].mean(axis=1)
        with path.open("rb") as handle:
            got = np.concatenate(list(pcm_stream(handle.fileno(), 16000, None).blocks()))
        np.testing.assert_array_equal(got, expected)
    with (tmp_path / "PCM_24.wav").open("rb") as handle:
        reader = ByteReader(handle.fileno(), 1.0)
        assert len(reader.read_exact(44)) == 44 and reader.offset == 44
