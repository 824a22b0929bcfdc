"""`nonspeech predict` as a user runs it, on demo audio with a checkpoint trained here (1 epoch, tiny widths).

A one-epoch model is barely better than chance, so the timeline tests use a threshold of 1/classes: the class
scores of every stretch covered only by non-silent windows sum to 1, so one of them reaches it, and events must
then be found and cover everything but digital silence.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
import zarr
from conftest import console_script, nonspeech
from test_precompute import write_cut_short

from nonspeech.arguments import BF16_TOLERANCE
from nonspeech.data.audio import decode_mono, fix_length, resample
from nonspeech.features.normalize import Normalize
from nonspeech.inference.model import LoadedModel, clip_samples
from nonspeech.inference.records import WINDOW_COLUMNS
from nonspeech.inference.torch_model import read_checkpoint, torch_model
from nonspeech.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from nonspeech.training.loop import TrainConfig
from nonspeech.training.run import train_and_save

TINY_MODEL = {"widths": [4, 8, 8, 16], "hidden": 16, "dropout": 0.0}
LONG_RATE = 44100
GAP_SECONDS = 9.0  # windows of 4 s every 1 s: those around the middle of the gap are all silent


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The non-empty stderr lines."""
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def trained_model(precomputed_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint trained for one epoch on the precomputed demo shards, through the training stage's function."""
    params = yaml.safe_load((precomputed_repo / "params.yaml").read_text())
    cfg = TrainConfig.from_dict({**params["train"], "epochs": 1, "device": "cpu", "batch_size": 8})
    out = tmp_path_factory.mktemp("trained")
    train_and_save(
        precomputed_repo / "data/shards", precomputed_repo / "data/stats/stats.json",
        train_splits=[f"fold{k}" for k in params["cv"]["fold_ids"]], val_splits=[], stats_key="full",
        model_name="resnet", model_args=TINY_MODEL, model_weights=None, cfg=cfg,
        checkpoint_path=out / "model/model.pt", resume_path=out / "resume/state.pt",
    )
    return out / "model/model.pt"


@pytest.fixture(scope="session")
def test_audio(precomputed_repo: Path) -> Path:
    """The demo test split (mixed rates, channels and lengths), which training never saw."""
    return precomputed_repo / "data/raw/demo/test"


@pytest.fixture(scope="session")
def long_recording(test_audio: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, list[float]]:
    """Demo clips of every class, then digital silence, then more clips: a 44.1 kHz stereo wav.

    Returns its path, duration and the (start, end) seconds of the silent gap."""
    clips = [resample(d.samples, d.sample_rate, LONG_RATE) for d in map(decode_mono, sorted(test_audio.rglob("*.wav")))]
    half = len(clips) // 2
    gap = np.zeros(int(GAP_SECONDS * LONG_RATE), dtype=np.float32)
    audio = np.concatenate([*clips[:half], gap, *clips[half:]])
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, np.stack([audio, 0.5 * audio], axis=1), LONG_RATE, subtype="PCM_16")
    gap_start = sum(map(len, clips[:half])) / LONG_RATE
    return path, len(audio) / LONG_RATE, [gap_start, gap_start + GAP_SECONDS]


def test_table_lists_the_top_class_of_every_file(trained_model: Path, test_audio: Path) -> None:
    """Through the installed console script, as a user runs it (the other tests call its `main` in-process)."""
    result = console_script("predict", test_audio, "--model", trained_model)
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == []
    header, *rows = [line.split() for line in result.stdout.splitlines()]
    classes = load_checkpoint(trained_model)["classes"]
    assert header == ["file", "class", "probability", "detected"]
    assert [Path(r[0]) for r in rows] == sorted(test_audio.rglob("*.wav"))
    assert all(r[1] in classes and 1 / len(classes) <= float(r[2]) <= 1 for r in rows)
    assert all(r[3] == "none" or set(r[3].split(",")) <= set(classes) for r in rows)


def test_json_top_k_equals_the_model_on_the_training_features(
    trained_model: Path, test_audio: Path, precomputed_repo: Path
) -> None:
    """Same probabilities as the network on the precomputed log-mels: exactly the training-time preprocessing."""
    result = nonspeech("predict", test_audio, "--model", trained_model, "--format", "json", "--top-k", "3")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert all(len(r["predictions"]) == 3 for r in records)
    assert all(p[0]["probability"] >= p[1]["probability"] >= p[2]["probability"] for p in (r["predictions"] for r in records))
    manifest = pd.read_csv(precomputed_repo / "data/ingest/manifest.csv")
    root = precomputed_repo / "data/raw/demo"
    rows = [manifest.index[manifest["path"] == str(Path(r["file"]).relative_to(root))][0] for r in records]
    logmels = zarr.open_array(precomputed_repo / "data/features/logmel.zarr", mode="r").get_orthogonal_selection(rows)
    checkpoint = load_checkpoint(trained_model)
    norm = Normalize(checkpoint["normalization"]["mean"], checkpoint["normalization"]["std"])
    with torch.inference_mode():
        expected = torch.softmax(model_from_checkpoint(checkpoint)(norm(torch.from_numpy(logmels))), dim=-1).numpy()
    classes = checkpoint["classes"]
    for record, probs in zip(records, expected):
        for prediction in record["predictions"]:
            assert prediction["probability"] == pytest.approx(probs[classes.index(prediction["class"])], abs=1e-5)


def test_bf16_probabilities_stay_close_to_float32(trained_model: Path, test_audio: Path) -> None:
    def probabilities(*extra: str) -> dict[tuple[str, str], float]:
        result = nonspeech("predict", test_audio, "--model", trained_model, "--format", "json", "--top-k", "7", *extra)
        assert result.returncode == 0, result.stderr
        return {(r["file"], p["class"]): p["probability"] for r in json.loads(result.stdout) for p in r["predictions"]}

    fp32, bf16 = probabilities(), probabilities("--bf16")
    assert fp32.keys() == bf16.keys()
    assert max(abs(fp32[key] - bf16[key]) for key in fp32) < BF16_TOLERANCE


def test_csv_top_k_goes_to_the_out_file(trained_model: Path, test_audio: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "predictions.csv"
    result = nonspeech("predict", test_audio / "cough", test_audio / "yawn", "--model", trained_model,
                       "--format", "csv", "--top-k", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    header, *rows = list(csv.reader(out.open()))
    assert header == ["file", "class", "probability", "class_2", "probability_2", "detected", "notes", "error"]
    assert len(rows) == len(list(test_audio.glob("cough/*.wav"))) + len(list(test_audio.glob("yawn/*.wav")))
    assert all(float(r[2]) >= float(r[4]) and r[1] != r[3] for r in rows)


def test_window_timeline_covers_the_recording_except_silence(
    trained_model: Path, long_recording: tuple[Path, float, list[float]], test_audio: Path
) -> None:
    path, duration, (gap_start, gap_end) = long_recording
    short = min(test_audio.rglob("*.wav"), key=lambda f: sf.info(f).duration)
    classes = load_checkpoint(trained_model)["classes"]
    threshold = 1 / len(classes)
    result = nonspeech("predict", path, short, "--model", trained_model, "--window", "--hop", "1",
                       "--threshold", threshold, "--hysteresis", "0", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == [
        f"note: {short}: {sf.info(short).duration:.2f} s, shorter than one 4 s window: scored as one window, zero-padded"
    ]
    long, clip = json.loads(result.stdout)
    assert long["seconds"] == pytest.approx(duration, abs=1e-3)
    segments = long["segments"]
    assert segments and all(s["class"] in classes for s in segments)
    assert all(0 <= s["start"] < s["end"] <= duration for s in segments)
    assert all(threshold <= s["mean_probability"] <= s["max_probability"] <= 1 for s in segments)
    for label in classes:
        mine = [s for s in segments if s["class"] == label]
        assert all(a["end"] < b["start"] for a, b in zip(mine, mine[1:])), f"{label} segments not merged"
    def covered(t: float) -> bool:
        return any(s["start"] <= t < s["end"] for s in segments)

    assert all(covered(t) for t in np.arange(0, gap_start, 0.5))
    assert not covered(gap_start + GAP_SECONDS / 2), "a window of pure silence detected a class"
    assert all(covered(t) for t in np.arange(gap_end + 0.5, duration, 0.5))
    assert clip["segments"], "the short clip's one padded window detected nothing"
    assert all((s["start"], s["end"]) == (0.0, pytest.approx(clip["seconds"])) for s in clip["segments"])


def test_each_exact_window_is_classified_like_a_clip_cut_from_the_recording(
    trained_model: Path, long_recording: tuple[Path, float, list[float]]
) -> None:
    """With exact (predict --window --exact), the frames of the whole recording, sliced per window (edge frames
    recomputed from the window's samples), give what the window alone gives: within 1e-5 (measured: 3e-8, from
    resampling in blocks); so does the per-window path that ONNX models take. Starts are multiples of the front
    end's hop, within half of it of k x hop."""
    path, duration, (gap_start, _) = long_recording
    model = torch_model(read_checkpoint(trained_model), exact=True)
    rate, window, hop = model.features["sample_rate"], clip_samples(model.features), 2.5
    windows = model.timeline(path, hop)
    by_waveform = LoadedModel(model.classes, model.features, model.probabilities).timeline(path, hop)
    decoded = decode_mono(path)
    samples = resample(decoded.samples, decoded.sample_rate, rate)
    assert windows.seconds == pytest.approx(duration)
    assert windows.starts[-1] < duration <= windows.starts[-1] + window / rate < duration + hop
    grid = model.features["hop_length"] / rate
    np.testing.assert_allclose(windows.starts, np.arange(len(windows.starts)) * hop, atol=grid / 2)
    np.testing.assert_allclose(windows.starts / grid, np.round(windows.starts / grid), atol=1e-9)
    np.testing.assert_array_equal(by_waveform.starts, windows.starts)
    np.testing.assert_allclose(by_waveform.probabilities, windows.probabilities, rtol=0, atol=1e-5)
    silent = int(np.ceil(gap_start / hop))
    assert not windows.probabilities[silent].any()
    for k in (0, 1, silent - 1, silent + 2, len(windows.starts) - 1):
        clip = fix_length(samples[round(windows.starts[k] * rate):], window)
        np.testing.assert_allclose(windows.probabilities[k], model.probabilities(clip[None])[0], rtol=0, atol=1e-5)


def test_shared_windows_of_a_trained_model_stay_near_the_exact_ones(
    trained_model: Path, long_recording: tuple[Path, float, list[float]]
) -> None:
    """The default timeline (the resnet's body once over a stretch of windows, each window the head on the mean of
    its part of the feature map): the same starts and silent windows as the exact path, probabilities within 0.01
    on average and 0.1 at most (measured 0.002 and 0.027) and the same top class (measured: every window), with the
    head scaled up so that they are far from uniform, as a one-epoch model's are not."""
    path, _, _ = long_recording
    checkpoint = read_checkpoint(trained_model)
    checkpoint["model_state"]["head.3.weight"] *= 20
    exact = torch_model(checkpoint, exact=True).timeline(path, 1.0)
    shared = torch_model(checkpoint).timeline(path, 1.0)
    np.testing.assert_array_equal(shared.starts, exact.starts)
    np.testing.assert_array_equal(shared.probabilities.any(axis=1), exact.probabilities.any(axis=1))
    difference = np.abs(shared.probabilities - exact.probabilities)
    assert difference.mean() < 0.01 and difference.max() < 0.1, (difference.mean(), difference.max())
    assert np.mean(shared.probabilities.argmax(1) == exact.probabilities.argmax(1)) > 0.9


def test_a_span_places_each_window_score_at_its_centre(
    trained_model: Path, long_recording: tuple[Path, float, list[float]]
) -> None:
    """--span S: each window's probabilities come from the centre S seconds of its feature map and describe those
    (starts move by (window - S) / 2); the whole window as span changes nothing; the shared and exact paths stay
    near each other as without a span; a span longer than the window is refused in one line."""
    path, _, _ = long_recording
    checkpoint = read_checkpoint(trained_model)
    checkpoint["model_state"]["head.3.weight"] *= 20
    seconds = checkpoint["features"]["seconds"]
    plain = torch_model(checkpoint).timeline(path, 1.0)
    whole = torch_model(checkpoint, span=seconds).timeline(path, 1.0)
    np.testing.assert_array_equal(whole.probabilities, plain.probabilities)
    assert whole.length == plain.length == seconds
    shared = torch_model(checkpoint, span=1.0).timeline(path, 1.0)
    exact = torch_model(checkpoint, exact=True, span=1.0).timeline(path, 1.0)
    for centred in (shared, exact):
        np.testing.assert_allclose(centred.starts, plain.starts + (seconds - 1.0) / 2)
        assert centred.length == 1.0
    assert np.abs(shared.probabilities - plain.probabilities).max() > 0.05
    difference = np.abs(shared.probabilities - exact.probabilities)
    assert difference.mean() < 0.02 and difference.max() < 0.2, (difference.mean(), difference.max())
    result = nonspeech("predict", path, "--model", trained_model, "--window", "--span", seconds + 1)
    assert result.returncode == 1 and result.stdout == ""
    assert error_lines(result) == [
        f"error: span {seconds + 1:g} s: must be more than 0 and at most the model's window, {seconds:g} s"
    ]


def test_one_thread_gives_the_same_timeline(trained_model: Path, test_audio: Path) -> None:
    """--threads sets the network's CPU threads (PyTorch and onnxruntime): one gives the timeline that two give."""
    clips = sorted(test_audio.rglob("*.wav"))[:3]
    common = ("predict", *clips, "--model", trained_model, "--window", "--format", "json")
    two, one = nonspeech(*common, "--threads", "2"), nonspeech(*common, "--threads", "1")
    assert two.returncode == one.returncode == 0, one.stderr
    mine, theirs = json.loads(one.stdout), json.loads(two.stdout)
    assert [r["file"] for r in mine] == [r["file"] for r in theirs]
    for a, b in zip(mine, theirs):
        assert [(s["start"], s["end"], s["class"]) for s in a["segments"]] == [
            (s["start"], s["end"], s["class"]) for s in b["segments"]]
        scores = [s["mean_probability"] for s in b["segments"]]
        assert [s["mean_probability"] for s in a["segments"]] == pytest.approx(scores, abs=1e-5)


def test_window_table_structure_and_a_threshold_nothing_reaches(
    trained_model: Path, long_recording: tuple[Path, float, list[float]]
) -> None:
    result = nonspeech("predict", long_recording[0], "--model", trained_model, "--window", "--threshold", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["file", "start", "end", "class", "max_probability", "mean_probability"]


def calibrated_copy(model: Path, out: Path) -> list[str]:
    """A copy of the model whose first class is `other`, with thresholds 0 for every class but classes[1] (1.0)
    and classes[2] (none, so 0.5); its classes."""
    checkpoint = load_checkpoint(model)
    classes = ["other", *checkpoint["classes"][1:]]
    checkpoint["classes"] = classes
    checkpoint["thresholds"] = {**{label: 0.0 for label in classes}, classes[1]: 1.0}
    del checkpoint["thresholds"][classes[2]]
    save_checkpoint(checkpoint, out)
    return classes


def test_checkpoint_thresholds_are_the_default_and_other_is_never_an_event(
    trained_model: Path, long_recording: tuple[Path, float, list[float]], tmp_path: Path
) -> None:
    """Threshold 0 makes an event of the whole recording; 1.0 none; a class without a threshold gets 0.5."""
    path, duration, _ = long_recording
    classes = calibrated_copy(trained_model, tmp_path / "calibrated.pt")
    result = nonspeech("predict", path, "--model", tmp_path / "calibrated.pt", "--window", "--format", "json")
    assert result.returncode == 0, result.stderr
    segments = json.loads(result.stdout)[0]["segments"]
    whole = {s["class"] for s in segments if (s["start"], s["end"]) == (0.0, pytest.approx(duration))}
    assert whole == set(classes[3:])  # not other (threshold 0, but never reported) nor classes[1] (threshold 1)
    assert all(s["class"] == classes[2] for s in segments if s["class"] not in whole)  # the 0.5 default
    overridden = nonspeech("predict", path, "--model", tmp_path / "calibrated.pt", "--window", "--threshold", "1")
    assert overridden.returncode == 0, overridden.stderr
    assert len(overridden.stdout.splitlines()) == 1  # the header: --threshold replaces every class's threshold


def test_whole_files_report_the_classes_reaching_the_checkpoint_thresholds(
    trained_model: Path, test_audio: Path, tmp_path: Path
) -> None:
    """Threshold 0 detects a class in every file, 1.0 in none, a class without one gets 0.5; never `other`."""
    classes = calibrated_copy(trained_model, tmp_path / "calibrated.pt")
    args = ("predict", test_audio, "--model", tmp_path / "calibrated.pt", "--top-k", "7")
    records = json.loads(nonspeech(*args, "--format", "json").stdout)
    for record in records:
        probability = {p["class"]: p["probability"] for p in record["predictions"]}
        expected = [*classes[3:], *([classes[2]] if probability[classes[2]] >= 0.5 else [])]
        assert sorted(d["class"] for d in record["detected"]) == sorted(expected)
        assert [d["probability"] for d in record["detected"]] == sorted((probability[c] for c in expected), reverse=True)
    rows = list(csv.DictReader(io.StringIO(nonspeech(*args, "--format", "csv").stdout)))
    assert [r["detected"] for r in rows] == [",".join(d["class"] for d in r["detected"]) or "none" for r in records]
    for threshold, detected in (("1", {"none"}), ("0", set(classes[1:]))):
        header, *table = [line.split() for line in nonspeech(*args, "--threshold", threshold).stdout.splitlines()]
        assert header[-1] == "detected" and all(set(row[-1].split(",")) == detected for row in table)


def test_audacity_labels_and_plots_one_file_per_recording(
    trained_model: Path, long_recording: tuple[Path, float, list[float]], test_audio: Path, tmp_path: Path
) -> None:
    path, duration, _ = long_recording
    clip = sorted(test_audio.rglob("*.wav"))[0]
    threshold = 1 / len(load_checkpoint(trained_model)["classes"])
    common = ("predict", path, clip, "--model", trained_model, "--window", "--threshold", threshold)
    result = nonspeech(*common, "--format", "audacity", "--out", tmp_path / "labels.txt", "--plot", tmp_path / "plot.png")
    assert result.returncode == 0, result.stderr
    for recording in (path, clip):
        lines = (tmp_path / f"labels_{recording.stem}.txt").read_text().splitlines()
        assert lines, "no events at threshold 1/classes"
        for line in lines:
            start, end, label = line.split("\t")
            assert 0 <= float(start) < float(end) <= sf.info(recording).duration + 1e-3
            assert label in load_checkpoint(trained_model)["classes"]
        png = (tmp_path / f"plot_{recording.stem}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    one = nonspeech("predict", path, "--model", trained_model, "--window", "--threshold", threshold, "--format", "audacity")
    assert one.returncode == 0, one.stderr
    assert one.stdout == (tmp_path / f"labels_{path.stem}.txt").read_text()
    several = nonspeech(*common, "--format", "audacity")
    assert several.returncode == 2  # option errors, as for the other option combinations
    assert error_lines(several) == [
        "error: --format audacity writes one label track per recording: with several, give --out"]
    no_window = nonspeech("predict", path, "--model", trained_model, "--plot", tmp_path / "p.png")
    assert no_window.returncode == 2
    assert error_lines(no_window)[-1] == "error: --format audacity and --plot need --window"


def peak_rss_mb(*args: object) -> tuple[float, subprocess.CompletedProcess]:
    """Peak resident memory in MB of `nonspeech` run with args in a fresh interpreter, and the run."""
    code = ("import resource, sys; from nonspeech.cli import main; code = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1]) / 1024, result


def test_a_long_recording_is_streamed_in_bounded_memory(trained_model: Path, tmp_path: Path) -> None:
    """Ten minutes at 48 kHz would be 110 MB as float32 and 74 MB more at 32 kHz; streamed, the peak stays that of
    a one-minute file, with --window and without (which reads only the first seconds, and says so)."""
    rng = np.random.default_rng(0)
    for minutes in (1, 10):
        with sf.SoundFile(tmp_path / f"{minutes}min.wav", "w", 48000, 1, "PCM_16") as out:
            for _ in range(minutes * 6):
                out.write(rng.normal(0, 0.05, 480000).astype(np.float32))
    common = ("--model", trained_model, "--window", "--hop", "2", "--out", tmp_path / "out.json", "--format", "json")
    short, _ = peak_rss_mb("predict", tmp_path / "1min.wav", *common)
    long, _ = peak_rss_mb("predict", tmp_path / "10min.wav", *common)
    assert long - short < 40, (short, long)
    assert json.loads((tmp_path / "out.json").read_text())[0]["seconds"] == pytest.approx(600.0)
    whole_file, run = peak_rss_mb("predict", tmp_path / "10min.wav", "--model", trained_model)
    assert whole_file - short < 40, (short, whole_file)
    assert len(run.stdout.splitlines()) == 3  # header, the one file, the RSS
    assert error_lines(run) == [f"note: {tmp_path / '10min.wav'}: 600 s long: classified by its first 4 s only "
                                "(--window gives a timeline of the whole file)"]


def test_bad_files_are_reported_and_the_rest_classified(trained_model: Path, test_audio: Path, tmp_path: Path) -> None:
    good = sorted(test_audio.glob("screaming/*.wav"))
    (tmp_path / "truncated.wav").write_bytes(good[0].read_bytes()[:30])
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not audio")
    sf.write(tmp_path / "silent.flac", np.zeros(16000), 16000)
    (tmp_path / "empty").mkdir()
    write_cut_short(tmp_path / "cut_short.wav", decode_mono(good[0]).samples, decode_mono(good[0]).sample_rate)
    inputs = [*good, tmp_path / "truncated.wav", tmp_path / "zero.wav", tmp_path / "notes.txt", tmp_path / "silent.flac",
              tmp_path / "missing.wav", tmp_path / "empty", tmp_path / "cut_short.wav"]
    failures = [("missing.wav", "no such file"), ("empty", "empty folder"), ("truncated.wav", "undecodable"),
                ("zero.wav", "empty: 0-byte file"), ("notes.txt", "undecodable"), ("silent.flac", "silent")]
    result = nonspeech("predict", *inputs, "--model", trained_model, "--format", "csv")
    assert result.returncode == 0, result.stderr
    header, *rows = list(csv.reader(result.stdout.splitlines()))
    assert header[-1] == "error"
    assert [Path(row[0]) for row in rows if not row[-1]] == [*good, tmp_path / "cut_short.wav"]
    assert [(Path(row[0]).name, row[1], row[2]) for row in rows if row[-1]] == [(name, "", "") for name, _ in failures]
    errors = error_lines(result)
    assert len(errors) == len(failures) + 1
    for name, reason in failures:
        assert any(line.startswith(f"error: {tmp_path / name}: {reason}") for line in errors), (name, errors)
        assert any(Path(row[0]).name == name and row[-1].startswith(reason) for row in rows), (name, rows)
    assert any(re.fullmatch(rf"warning: {re.escape(str(tmp_path / 'cut_short.wav'))}: truncated: the header claims "
                            r"\d+\.\d\d s but the file holds \d+\.\d\d s", line) for line in errors), errors


def test_json_and_window_outputs_list_every_input_with_its_error(trained_model: Path, test_audio: Path, tmp_path: Path) -> None:
    good = sorted(test_audio.glob("cough/*.wav"))[:2]
    (tmp_path / "zero.wav").write_bytes(b"")
    inputs = [tmp_path / "zero.wav", *good, tmp_path / "missing.wav"]
    files = json.loads(nonspeech("predict", *inputs, "--model", trained_model, "--format", "json").stdout)
    assert [(Path(r["file"]).name, r["error"]) for r in files] == [
        ("missing.wav", "no such file or folder"), ("zero.wav", "empty: 0-byte file"), *((g.name, None) for g in good)]
    assert all(r["predictions"] for r in files if r["error"] is None)
    windows = nonspeech("predict", *inputs, "--model", trained_model, "--window", "--format", "json")
    assert [(Path(r["file"]).name, r["error"]) for r in json.loads(windows.stdout)] == [
        ("missing.wav", "no such file or folder"), ("zero.wav", "empty: 0-byte file"), *((g.name, None) for g in good)]
    table = nonspeech("predict", *inputs, "--model", trained_model, "--window", "--format", "csv", "--threshold", "0")
    header, *rows = list(csv.reader(table.stdout.splitlines()))
    assert header == [*WINDOW_COLUMNS, "notes", "error"]
    assert [row[-1] for row in rows[:2]] == ["no such file or folder", "empty: 0-byte file"]
    assert {Path(row[0]) for row in rows[2:]} == set(good) and not any(row[-1] for row in rows[2:])


def test_out_never_overwrites_an_input_audio_file(trained_model: Path, test_audio: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(sorted(test_audio.glob("laugh/*.wav"))[0].read_bytes())
    before = clip.read_bytes()
    for target, inputs in ((clip, [clip]), (tmp_path / "." / "clip.wav", [tmp_path])):
        result = nonspeech("predict", *inputs, "--model", trained_model, "--out", target)
        assert result.returncode == 2
        assert error_lines(result) == [f"error: --out {target} is one of the input recordings; refusing to overwrite it"]
    assert clip.read_bytes() == before


def test_options_that_do_not_apply_are_errors_or_notes(trained_model: Path, test_audio: Path) -> None:
    clip = sorted(test_audio.glob("yawn/*.wav"))[0]
    for extra, message in ((["--window", "--top-k", "2"], "--top-k applies to whole files"),
                           (["--hop", "2"], "--hop only applies with --window"),
                           (["--exact"], "--exact only applies with --window"),
                           (["--span", "1"], "--span only applies with --window"),
                           (["--window", "--span", "1", "--onnx", "model.onnx"], "--span needs the checkpoint's network")):
        result = nonspeech("predict", clip, "--model", trained_model, *extra)
        assert result.returncode == 2 and result.stdout == ""
        assert error_lines(result)[0].startswith(f"error: {message}") and len(error_lines(result)) == 1
    classes = load_checkpoint(trained_model)["classes"]
    result = nonspeech("predict", clip, "--model", trained_model, "--top-k", "99", "--format", "json")
    assert result.returncode == 0
    assert error_lines(result) == [f"note: --top-k 99 is more than the model's {len(classes)} classes; showing all {len(classes)}"]
    assert len(json.loads(result.stdout)[0]["predictions"]) == len(classes)


def test_help_and_version_do_not_load_torch_numpy_or_soundfile() -> None:
    probe = ("import sys\nfrom nonspeech.cli import main\n"
             "for argv in (['--help'], ['predict', '--help'], ['--version']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('torch', 'numpy', 'soundfile', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert "nonspeech 0.1.0" in result.stdout
    assert console_script("--version").stdout == "nonspeech 0.1.0\n"


def test_train_cv_without_a_fold_prints_its_usage(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "stages" / "train_cv.py"
    for argv in ([], ["zero"], ["0", "1"]):
        result = subprocess.run([sys.executable, str(script), *argv], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.splitlines() == [
            "usage: python stages/train_cv.py FOLD   (FOLD: an entry of cv.fold_ids; `dvc repro train_cv@FOLD` runs it)"]


def test_nothing_classified_fails(trained_model: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = nonspeech("predict", tmp_path / "missing.wav", tmp_path / "empty", "--model", trained_model)
    assert result.returncode == 1
    assert result.stdout == ""
    assert error_lines(result) == [
        f"error: {tmp_path / 'missing.wav'}: no such file or folder",
        f"error: {tmp_path / 'empty'}: empty folder: no audio files in it or below",
        "error: nothing could be classified",
    ]


def test_missing_checkpoint_says_how_to_make_one(
    test_audio: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = nonspeech("predict", test_audio)
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: checkpoint data/models/final/model.pt not found; "
        "train one with `dvc repro train_final` or pass --model"
    ]


def test_checkpoint_from_another_feature_configuration_is_refused(
    trained_model: Path, test_audio: Path, tmp_path: Path
) -> None:
    checkpoint = load_checkpoint(trained_model)
    checkpoint["normalization"] = {"mode": "per_bin", "mean": [0.0] * 64, "std": [1.0] * 64}
    save_checkpoint(checkpoint, tmp_path / "other.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    result = nonspeech("predict", test_audio, "--model", tmp_path / "other.pt")
    assert result.returncode == 1
    assert error_lines(result) == [
        f"error: {tmp_path / 'other.pt'}: normalization mean has 64 values but the features have 128 bins "
        "(a checkpoint from a different feature configuration)"
    ]
    result = nonspeech("predict", test_audio, "--model", tmp_path / "garbage.pt")
    assert result.returncode == 1
    assert error_lines(result)[0].startswith(f"error: {tmp_path / 'garbage.pt'}: not a usable checkpoint")
