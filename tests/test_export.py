"""`nonspeech export` and `predict --onnx`: the exported model equals the PyTorch one on the same waveforms.

The checkpoint has random weights with randomised BatchNorm statistics and a scaled-up head, so its
probabilities are far from uniform and a front-end mismatch would show in them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
import torch
from conftest import CONSOLE_SCRIPT, nonspeech
from torch import nn

from nonspeech.data.audio import load_clip
from nonspeech.data.sources.demo import SYNTHS, generate_demo
from nonspeech.features.logmel import LogMel
from nonspeech.inference.model import clip_samples
from nonspeech.inference.onnx_model import onnx_model, onnx_runner
from nonspeech.inference.preprocessing import preprocessing
from nonspeech.inference.torch_model import ColumnLogits, FeatureMap, read_checkpoint, torch_model
from nonspeech.models.checkpoint import make_checkpoint, model_from_checkpoint, save_checkpoint
from nonspeech.models.efficientat import MobileNetAT, localise_gates, split_at_first_gate
from nonspeech.models.embedding import AudioSetEmbedder
from nonspeech.models.frame_head import frame_head
from nonspeech.models.registry import build_model

FEATURES = {"sample_rate": 32000, "seconds": 4.0, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "top_db": 80}
MODEL_ARGS = {"widths": [4, 8, 8, 16], "hidden": 16, "dropout": 0.0}
PROBABILITY_ATOL = 1e-4
DB_ATOL = 1e-2  # float32 DFT-by-convolution sums 2048 terms; observed up to 6e-3 dB, on bins far below the peak


def random_checkpoint(features: dict, seed: int = 0, output: str = "softmax") -> dict:
    """A checkpoint of a tiny resnet with random weights, BatchNorm statistics and per-bin normalisation; with
    sigmoid outputs, the demo classes with `other` among them."""
    torch.manual_seed(seed)
    classes = list(SYNTHS) if output == "softmax" else [*list(SYNTHS)[:3], "other", *list(SYNTHS)[3:]]
    model = build_model("resnet", len(SYNTHS), **MODEL_ARGS)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.head[-1].weight.data *= 20
    n_mels = features["n_mels"]
    normalization = {"mode": "per_bin", "mean": np.linspace(-60, -30, n_mels).tolist(), "std": [15.0] * n_mels}
    return make_checkpoint(model, "resnet", MODEL_ARGS, classes, features, normalization, output=output)


@pytest.fixture(scope="module", params=["softmax", "sigmoid"])
def checkpoint_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random checkpoint on disk, with softmax or sigmoid outputs."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(random_checkpoint(FEATURES, output=request.param), path)
    return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo set: mixed rates, channels, lengths and subtypes."""
    root = tmp_path_factory.mktemp("demo")
    generate_demo(root, clips_per_class=2, seed=3)
    return root / "test"


@pytest.fixture(scope="module")
def waveforms(audio: Path) -> np.ndarray:
    """The demo test clips preprocessed as in training: (clips, samples) float32."""
    return np.stack([load_clip(f, FEATURES["sample_rate"], clip_samples(FEATURES))[0] for f in sorted(audio.rglob("*.wav"))])


@pytest.fixture(scope="module")
def onnx_path(checkpoint_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint exported by the CLI."""
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    result = nonspeech("export", "--model", checkpoint_path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    return out


def reference_probabilities(checkpoint: dict, waveforms: np.ndarray) -> np.ndarray:
    """The plain PyTorch model (torch.stft front end, unfused network) on waveforms: softmax, or sigmoids with
    `other` = 1 - the highest in its column."""
    network = torch.nn.Sequential(
        preprocessing(checkpoint), model_from_checkpoint(checkpoint),
    )
    with torch.inference_mode():
        logits = network(torch.from_numpy(waveforms))
    if checkpoint["output"] == "softmax":
        return torch.softmax(logits, dim=-1).numpy()
    targets = torch.sigmoid(logits).numpy()
    other = checkpoint["classes"].index("other")
    return np.insert(targets, other, 1 - targets.max(axis=1), axis=1)


@pytest.mark.parametrize("params", [
    {"sample_rate": 32000, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "top_db": 80.0},
    {"sample_rate": 16000, "n_fft": 512, "hop_length": 160, "n_mels": 64, "top_db": None},
])
def test_conv_stft_logmel_equals_logmel(params: dict, waveforms: np.ndarray) -> None:
    """Compared down to 80 dB below each clip's peak (the floor without top_db is float32 rounding noise)."""
    waves = torch.from_numpy(waveforms[:, : 3 * params["sample_rate"]])
    with torch.inference_mode():
        expected, actual = LogMel(**params)(waves), LogMel(**params, conv_stft=True)(waves)
    floor = expected.amax(dim=(1, 2), keepdim=True) - 80
    expected, actual = torch.maximum(expected, floor), torch.maximum(actual, floor)
    print(f"conv-STFT LogMel vs LogMel max abs difference: {(actual - expected).abs().max():.1e} dB")
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=DB_ATOL)


def test_onnx_has_the_documented_interface(onnx_path: Path, checkpoint_path: Path) -> None:
    model = onnx.load(str(onnx_path))
    props = {p.key: p.value for p in model.metadata_props}
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert json.loads(props["classes"]) == checkpoint["classes"]
    assert json.loads(props["features"]) == FEATURES and props["activation"] == checkpoint["output"]
    assert "probabilities" in props["output"] and "waveform" in props["input"]
    (waveform,), (probabilities,) = model.graph.input, model.graph.output
    dims = [d.dim_param or d.dim_value for d in waveform.type.tensor_type.shape.dim]
    assert (waveform.name, dims) == ("waveform", ["batch", clip_samples(FEATURES)])
    assert probabilities.name == "probabilities"


def test_onnx_matches_pytorch_on_the_same_waveforms(onnx_path: Path, checkpoint_path: Path, waveforms: np.ndarray) -> None:
    expected = reference_probabilities(torch.load(checkpoint_path, weights_only=True), waveforms)
    model = onnx_model(onnx_path)
    actual = np.concatenate([model.probabilities(waveforms[:1]), model.probabilities(waveforms[1:])])
    assert expected.max(axis=1).min() > 0.3, "probabilities too flat to test with"
    print(f"ONNX vs PyTorch max abs probability difference: {np.abs(actual - expected).max():.2e}")
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=PROBABILITY_ATOL)


def test_predict_onnx_equals_predict(onnx_path: Path, checkpoint_path: Path, audio: Path) -> None:
    common = ("predict", audio, "--model", checkpoint_path, "--format", "json", "--top-k", len(SYNTHS) + 1)
    by_torch, by_onnx = nonspeech(*common), nonspeech(*common, "--onnx", onnx_path)
    assert by_torch.returncode == by_onnx.returncode == 0, by_onnx.stderr
    torch_records, onnx_records = json.loads(by_torch.stdout), json.loads(by_onnx.stdout)
    assert [r["file"] for r in onnx_records] == [r["file"] for r in torch_records]
    for mine, theirs in zip(onnx_records, torch_records):
        assert mine["predictions"][0]["class"] == theirs["predictions"][0]["class"]
        expected = {p["class"]: p["probability"] for p in theirs["predictions"]}
        assert all(p["probability"] == pytest.approx(expected[p["class"]], abs=PROBABILITY_ATOL) for p in mine["predictions"])
        assert [d["class"] for d in mine["detected"]] == [d["class"] for d in theirs["detected"]]


def test_onnx_timeline_takes_the_per_window_path_and_equals_pytorch(
    onnx_path: Path, checkpoint_path: Path, waveforms: np.ndarray, tmp_path: Path
) -> None:
    """The ONNX model takes waveforms, so its windows are cut from the streamed waveform; same windows, same scores
    as PyTorch's exact path."""
    sf.write(tmp_path / "long.wav", waveforms.reshape(-1), FEATURES["sample_rate"], subtype="FLOAT")
    by_torch = torch_model(read_checkpoint(checkpoint_path), exact=True).timeline(tmp_path / "long.wav", 1.5)
    by_onnx = onnx_model(onnx_path).timeline(tmp_path / "long.wav", 1.5)
    assert len(by_onnx.starts) == 1 + int(np.ceil((len(waveforms) * 4.0 - 4.0) / 1.5))
    np.testing.assert_array_equal(by_onnx.starts, by_torch.starts)
    np.testing.assert_allclose(by_onnx.probabilities, by_torch.probabilities, rtol=0, atol=PROBABILITY_ATOL)


def test_listen_with_an_onnx_model_gives_the_events_of_predict_window(
    onnx_path: Path, waveforms: np.ndarray, tmp_path: Path,
) -> None:
    """`nonspeech listen --onnx` on a 16-bit WAV stream on stdin: the events of `predict --window --onnx`."""
    recording = tmp_path / "long.wav"
    sf.write(recording, waveforms.reshape(-1), FEATURES["sample_rate"], subtype="PCM_16")
    options = ["--onnx", onnx_path, "--hop", "0.5", "--threshold", "0.3"]
    offline = nonspeech("predict", recording, "--window", "--format", "json", *options)
    assert offline.returncode == 0, offline.stderr
    expected = sorted((s["class"], round(s["start"], 3), round(s["end"], 3)) for s in json.loads(offline.stdout)[0]["segments"])
    live = subprocess.run([str(CONSOLE_SCRIPT), "listen", "-", *map(str, options)], input=recording.read_bytes(),
                          capture_output=True, timeout=120)
    assert live.returncode == 0, live.stderr.decode()
    heard = sorted((e["class"], e["start"], e["end"]) for e in map(json.loads, live.stdout.decode().splitlines()))
    assert expected and heard == expected


@pytest.mark.parametrize("split", [False, True])
def test_onnx_runner_equals_a_localised_mn04_body_for_any_number_of_frames(split: bool) -> None:
    """The shared timeline's body by onnxruntime (or a detector's, after its first gate, from the frames of the
    layers before it): traced on one window, it reads stretches of any length, its squeeze-excitation over the
    window centred on each column as in PyTorch."""
    torch.manual_seed(0)
    network = MobileNetAT(3, 0.4).eval().requires_grad_(False)
    body, prefix = FeatureMap(network), nn.Identity()
    window = torch.zeros(1, 128, 300)
    with torch.inference_mode():
        localise_gates(body, lambda: body(window))
        if split:
            prefix, body = split_at_first_gate(network, 128)
        runner = onnx_runner(body, prefix(window))
        for frames in (300, 1001):
            x = prefix(torch.randn(1, 128, frames))
            torch.testing.assert_close(runner(x), body(x), rtol=0, atol=1e-4)


@pytest.mark.parametrize("frequency", ["mean", "bins"])
def test_a_detectors_graph_gives_the_columns_asked_for_from_a_stretch_of_any_length(frequency: str) -> None:
    """A detector's body after its first gate and its head as one onnxruntime graph (ColumnLogits), traced on one
    window, gives for a stretch of any length the logits of the columns asked for, its layers after the last time
    stride and its head run only over them and the columns they read: those of every column, cut to them. A span
    past the stretch's end stops at it. Columns averaged over frequency or with each frequency bin kept."""
    torch.manual_seed(0)
    network = MobileNetAT(3, 0.4).eval().requires_grad_(False)
    embedder = AudioSetEmbedder(network, tags=False, frames=True, frequency=frequency)
    assert embedder.dims == network.dims * (4 if frequency == "bins" else 1)
    head = frame_head(3, embedder.dims, members=2, boundaries=["onset", "offset"]).eval().requires_grad_(False)
    with torch.inference_mode():
        localise_gates(embedder, lambda: embedder(torch.zeros(1, 128, 300)))
        prefix, rest = split_at_first_gate(network, 128)
        logits = ColumnLogits(rest, embedder, nn.Identity(), head, ["onset", "offset"])
        window = prefix(torch.zeros(1, 128, 300))
        runner = onnx_runner(logits, window, torch.tensor([0, window.shape[-1]]))
        assert logits.margins == [16, 9, 2]  # at the inputs of the last two gated blocks and the 1x1 after them
        for frames, (first, end) in ((300, (3, 5)), (1001, (20, 31)), (2001, (25, 30)), (1001, (0, 1000)),
                                     (640, (15, 90))):
            x = prefix(torch.randn(1, 128, frames))
            every = logits(x, torch.tensor([0, frames]))  # every column: nothing cut
            expected = every[..., first:end]
            assert expected.shape[-1] == min(end, every.shape[-1]) - first > 0
            torch.testing.assert_close(logits(x, torch.tensor([first, end])), expected, rtol=0, atol=1e-6)
            torch.testing.assert_close(runner(x, torch.tensor([first, end])), expected, rtol=0, atol=1e-4)


def test_onnx_runner_leaves_every_submodule_in_its_mode() -> None:
    """Tracing must not switch a module's parts to its root's mode: a body built as a new nn.Sequential (train
    mode) around a network in eval mode would otherwise leave that network's dropout on for the timeline's head."""
    network = MobileNetAT(3, 0.4).eval()
    body = nn.Sequential(FeatureMap(network)).requires_grad_(False)
    modes = {name: m.training for name, m in body.named_modules()}
    with torch.inference_mode():
        onnx_runner(body, torch.zeros(1, 128, 100))
    assert {name: m.training for name, m in body.named_modules()} == modes and not network.training


def test_onnx_from_another_feature_configuration_is_refused(
    onnx_path: Path, checkpoint_path: Path, audio: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.pt"
    output = torch.load(checkpoint_path, weights_only=True)["output"]
    save_checkpoint(random_checkpoint({**FEATURES, "n_mels": 64}, output=output), other)
    result = nonspeech("predict", audio, "--onnx", onnx_path, "--model", other)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: ONNX model {onnx_path} has a different feature configuration than checkpoint {other}: n_mels 128 vs 64"
    ]


def test_missing_onnx_model_says_how_to_make_one(audio: Path, tmp_path: Path) -> None:
    result = nonspeech("predict", audio, "--onnx", tmp_path / "none.onnx")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: ONNX model {tmp_path / 'none.onnx'} not found; write one with `nonspeech export`"
    ]


def test_torchscript_export_matches_pytorch(checkpoint_path: Path, waveforms: np.ndarray, tmp_path: Path) -> None:
    out = tmp_path / "model.torchscript.pt"
    result = nonspeech("export", "--model", checkpoint_path, "--format", "torchscript", "--out", out)
    assert result.returncode == 0, result.stderr
    extra = {"nonspeech.json": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(json.loads(extra["nonspeech.json"])["features"]) == FEATURES
    with torch.inference_mode():
        actual = module(torch.from_numpy(waveforms)).numpy()
    expected = reference_probabilities(torch.load(checkpoint_path, weights_only=True), waveforms)
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=1e-5)
