"""The EfficientAT network, its front end and AudioSet weights, and both transfer recipes through real DVC.

Reads the shipped models/pretrained/mn04_as_mAP_432.pt and real recordings from ../shared/realsounds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import zarr
from conftest import (
    PROJECT,
    commit_all,
    dvc,
    make_pipeline_repo,
    nonspeech,
    set_params,
    shared_repo,
    stages_run,
    write_folder,
)

from nonspeech.data.audio import decode_mono, load_clip, resample
from nonspeech.features.efficientat_mel import kaldi_mel, kaldi_mel_filterbank
from nonspeech.features.embed import compute_embeddings, embedding_spec, noisy_views, plan_views
from nonspeech.features.frontends import build_frontend, feature_spec
from nonspeech.inference.model import LoadedModel, clip_samples
from nonspeech.inference.onnx_model import onnx_model
from nonspeech.inference.torch_model import torch_model
from nonspeech.models.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from nonspeech.models.efficientat import MobileNetAT, WeightsError, load_audioset, read_weights
from nonspeech.models.embedding import pick_view
from nonspeech.models.registry import build_model, load_pretrained
from nonspeech.training.loop import param_groups

pytestmark = pytest.mark.pipeline

WEIGHTS = PROJECT / "models/pretrained/mn04_as_mAP_432.pt"
REALSOUNDS = PROJECT.parent / "shared/realsounds"
COUGH, SNEEZE = 47, 49
# Official widths: stem channels, last conv channels, classifier hidden size.
WIDTHS = {0.4: (8, 384, 512), 0.5: (8, 480, 640), 1.0: (16, 960, 1280), 2.0: (32, 1920, 2560)}
EMBED_PARAMS = {
    "demo.clips_per_class": 3, "audio.seconds": 2.0, "features.frontend": "efficientat",
    "embed": {"mn04": {"weights": "models/pretrained/mn04_as_mAP_432.pt", "width": 0.4, "tags": False,
                      "views": {"count": 2, "snr_low": 0, "snr_high": 20, "seed": 0}}},
    "inputs": "data/embed/mn04.zarr", "model.name": "embedding_head", "model.args": {"dims": 384, "hidden": 0, "dropout": 0.2},
    "train.normalization": "per_bin", "train.epochs": 3, "train.batch_size": 8, "train.device": "cpu",
}
FINE_TUNE_PARAMS = {
    "embed": {}, "inputs": "data/features/logmel.zarr", "model.name": "efficientat",
    "model.weights": "models/pretrained/mn04_as_mAP_432.pt", "model.args": {"width": 0.4, "dropout": 0.2},
    "train.normalization": "none", "train.body_lr_scale": 0.1, "train.epochs": 1,
}
TRAINING = {"train_cv@0", "train_cv@1", "train_cv@2", "train_final", "evaluate"}


def test_network_keys_and_shapes_equal_the_official_checkpoint() -> None:
    official = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    ours = MobileNetAT(527, width=0.4).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in official.items()}
    network = load_audioset(WEIGHTS, 0.4)
    assert sum(p.numel() for p in network.parameters()) == 983_599
    assert not network.training


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_other_official_widths_build_and_reload_strictly(width: float, tmp_path: Path) -> None:
    stem, last, hidden = WIDTHS[width]
    state = MobileNetAT(527, width).state_dict()
    assert state["features.0.0.weight"].shape[0] == stem
    assert state["classifier.2.weight"].shape == (hidden, last)
    torch.save(state, tmp_path / "w.pt")
    assert load_audioset(tmp_path / "w.pt", width).dims == last


def test_weights_of_another_width_or_kind_or_truncated_are_one_clear_error(tmp_path: Path) -> None:
    torch.save(MobileNetAT(527, 1.0).state_dict(), tmp_path / "mn10.pt")
    with pytest.raises(WeightsError, match=r"mn10.pt: not an EfficientAT AudioSet model of width 0.4 .*its stem has 16 channels"):
        load_audioset(tmp_path / "mn10.pt", 0.4)
    torch.save(build_model("resnet", 7).state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(WeightsError, match=r"resnet.pt: not an EfficientAT AudioSet model of width 0.4"):
        load_audioset(tmp_path / "resnet.pt", 0.4)
    (tmp_path / "cut.pt").write_bytes(WEIGHTS.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match=r"cut.pt: not a readable PyTorch weights file"):
        read_weights(tmp_path / "cut.pt")
    with pytest.raises(WeightsError, match=r"SHA-256 differs"):
        read_weights(WEIGHTS, sha256="0" * 64)


def test_kaldi_filterbank_triangles() -> None:
    fb = kaldi_mel_filterbank(1024, 32000, 128, 0.0, 15000.0)
    assert fb.shape == (513, 128) and fb.min() >= 0 and fb.max() <= 1
    assert torch.all(fb[-1] == 0) and torch.all(fb[0] == 0)  # Nyquist bin unused; 0 Hz is every triangle's foot
    assert torch.all(fb[kaldi_mel(torch.arange(513) * 31.25) > kaldi_mel(15000.0)] == 0)
    peaks = fb.argmax(dim=0)
    assert torch.all(peaks[1:] >= peaks[:-1])  # centres rise with the band index


def test_audioset_head_tags_real_coughs_and_sneezes() -> None:
    """Zero-shot, no training: the loaded AudioSet head on the front end recognises real recordings."""
    labels = pd.read_csv(REALSOUNDS / "labels.csv")
    network, frontend = load_audioset(WEIGHTS, 0.4), build_frontend(feature_spec("efficientat", 32000, 6.0, {}))
    for label, index, least in (("cough", COUGH, 0.8), ("sneeze", SNEEZE, 0.6)):
        top = []
        for path in labels[labels["label"] == label]["path"]:
            decoded = decode_mono(REALSOUNDS / path)
            wave = torch.from_numpy(resample(decoded.samples, decoded.sample_rate, 32000))
            with torch.inference_mode():
                top.append(int(network(frontend(wave[None])).argmax()))
        assert np.mean(np.array(top) == index) >= least, (label, top)


def test_fine_tuning_starts_from_audioset_and_trains_the_body_slower() -> None:
    model = build_model("efficientat", 7, width=0.4)
    load_pretrained(model, "efficientat", WEIGHTS)
    official = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert torch.equal(model.state_dict()["features.5.block.0.0.weight"], official["features.5.block.0.0.weight"])
    assert model.classifier[5].out_features == 7
    head, body = param_groups(model, 1e-3, 0.1)
    assert head["lr"] == 1e-3 and body["lr"] == pytest.approx(1e-4)
    assert len(head["params"]) + len(body["params"]) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="model 'resnet' has no pretrained weights"):
        load_pretrained(build_model("resnet", 7), "resnet", WEIGHTS)


@pytest.fixture(scope="session")
def embed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo pipeline on the embed recipe with negatives and two noisy views per clip, reproduced end to end."""

    def reproduce(repo: Path) -> None:
        negatives = write_folder(repo.parent / "negatives", ["rain", "hum"], 8)
        make_pipeline_repo(repo, {**EMBED_PARAMS, "data.negatives": str(negatives)})
        ran = stages_run(dvc(repo, "repro").stdout)
        assert {"ingest", "features", "embed@mn04", "stats", "shards"} | TRAINING <= ran
        assert zarr.open_array(repo / "data/embed/mn04.zarr", mode="r").shape[1:] == (384, 3)
        commit_all(repo, "embed recipe")

    return shared_repo(tmp_path_factory, "embed", reproduce)


@pytest.fixture
def embed_copy(embed_repo: Path, tmp_path: Path) -> Path:
    """A private copy of embed_repo that a test may change."""
    return Path(shutil.copytree(embed_repo, tmp_path / "repo", symlinks=True))


def test_embed_recipe_checkpoint_runs_body_and_head_in_predict_and_onnx(embed_repo: Path, tmp_path: Path) -> None:
    model_path = embed_repo / "data/models/final/model.pt"
    checkpoint = load_checkpoint(model_path)
    assert checkpoint["features"]["embedding"]["dims"] == 384 and "embedder_state" in checkpoint
    clips = sorted((embed_repo / "data/raw/demo/test").rglob("*.wav"))[:6]
    model = torch_model(checkpoint)
    waves = np.stack([load_clip(c, 32000, clip_samples(model.features))[0] for c in clips])
    expected = model.probabilities(waves)
    assert expected.shape == (6, len(checkpoint["classes"]))
    result = nonspeech("predict", *clips, "--model", model_path, "--format", "csv")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 7, result.stderr
    out = tmp_path / "model.onnx"
    assert nonspeech("export", "--model", model_path, "--out", out).returncode == 0
    np.testing.assert_allclose(onnx_model(out).probabilities(waves), expected, atol=1e-4)


def test_head_change_reruns_neither_features_nor_embeddings(embed_copy: Path) -> None:
    set_params(embed_copy, {"model.args.hidden": 16})
    assert stages_run(dvc(embed_copy, "repro").stdout) == TRAINING


def test_new_weights_file_reruns_exactly_the_stages_that_read_it(embed_copy: Path) -> None:
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    state["classifier.5.bias"] += 1.0  # a different file that still loads
    torch.save(state, embed_copy / "models/pretrained/mn04_as_mAP_432.pt")
    assert stages_run(dvc(embed_copy, "repro").stdout) == {"embed@mn04", "stats", "shards"} | TRAINING


def test_embed_checkpoint_on_log_mel_shards_is_one_clear_error(embed_copy: Path, tmp_path: Path) -> None:
    save_checkpoint(load_checkpoint(embed_copy / "data/models/final/model.pt"), tmp_path / "embed.pt")
    set_params(embed_copy, {"inputs": "data/features/logmel.zarr", "embed": {}})
    dvc(embed_copy, "repro", "shards")
    shutil.copy(tmp_path / "embed.pt", embed_copy / "data/models/final/model.pt")
    result = subprocess.run([sys.executable, "stages/evaluate.py"], cwd=embed_copy, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: data/models/final/model.pt was trained on 384-d clip embeddings of models/pretrained/mn04_as_mAP_432.pt "
        "(width 0.4), but data/shards holds efficientat features (sample_rate 32000, seconds 2.0, n_fft 1024, "
        "hop_length 320, n_mels 128): retrain it, or evaluate it on shards made with its features"
    ]


def test_weights_file_of_another_width_stops_the_embed_stage_with_one_line(embed_copy: Path) -> None:
    set_params(embed_copy, {"embed.mn04.width": 1.0})
    result = subprocess.run([sys.executable, "stages/embed.py", "mn04"], cwd=embed_copy, capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: models/pretrained/mn04_as_mAP_432.pt: not an EfficientAT AudioSet model of width 1.0 (stem 16 channels)"
    ), lines


def test_fine_tune_recipe_trains_the_pretrained_network(embed_copy: Path, tmp_path: Path) -> None:
    """Switched to on the embed recipe's repo: the same efficientat front end, so the features are not recomputed."""
    set_params(embed_copy, FINE_TUNE_PARAMS)
    assert stages_run(dvc(embed_copy, "repro").stdout) == {"stats", "shards"} | TRAINING
    checkpoint = load_checkpoint(embed_copy / "data/models/final/model.pt")
    assert checkpoint["model"] == {"name": "efficientat", "args": {"width": 0.4, "dropout": 0.2}}
    assert checkpoint["features"]["frontend"] == "efficientat" and "embedder_state" not in checkpoint
    out = tmp_path / "ft.onnx"
    assert nonspeech("export", "--model", embed_copy / "data/models/final/model.pt", "--out", out).returncode == 0
    clips = sorted((embed_copy / "data/raw/demo/test").rglob("*.wav"))[:4]
    model = torch_model(checkpoint)
    waves = np.stack([load_clip(c, 32000, clip_samples(model.features))[0] for c in clips])
    np.testing.assert_allclose(onnx_model(out).probabilities(waves), model.probabilities(waves), atol=1e-4)


@pytest.fixture(scope="module")
def embedding_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """A checkpoint of the frozen mn04 body and a random head on 6 s windows (probabilities far from uniform), and
    a recording of six real clips in a row at 44.1 kHz."""
    body = load_audioset(WEIGHTS, 0.4)
    features = {**feature_spec("efficientat", 32000, 6.0, {}), "embedding": embedding_spec(WEIGHTS, 0.4, False, body.dims)}
    torch.manual_seed(0)
    head = build_model("embedding_head", 3, dims=body.dims)
    head.head[-1].weight.data *= 10  # probabilities far from uniform, so that a mismatch would show
    norm = {"mode": "none", "mean": 0.0, "std": 1.0}
    checkpoint = make_checkpoint(head, "embedding_head", {"dims": body.dims}, ["a", "b", "c"], features, norm,
                                 embedder_state=body.state_dict())
    clips = sorted((REALSOUNDS / "clips").rglob("*.wav"))[:6]
    audio = np.concatenate([resample(d.samples, d.sample_rate, 44100) for d in map(decode_mono, clips)])
    path = tmp_path_factory.mktemp("recording") / "recording.wav"
    sf.write(path, audio, 44100, subtype="FLOAT")
    return checkpoint, path


def test_exact_timeline_of_an_embedding_model_equals_each_window_alone(embedding_recording: tuple[dict, Path]) -> None:
    """With exact, efficientat frames of the whole recording, sliced per 6 s window, through the frozen mn04 body
    and a head: the same probabilities as each window's waveform through the whole model (the ONNX path), within
    1e-5."""
    checkpoint, path = embedding_recording
    model = torch_model(checkpoint, exact=True)
    sliced = model.timeline(path, 1.5)
    whole = LoadedModel(model.classes, model.features, model.probabilities).timeline(path, 1.5)
    assert len(sliced.starts) > 5 and sliced.probabilities.std(axis=0).max() > 0.02
    np.testing.assert_array_equal(sliced.starts, whole.starts)
    np.testing.assert_allclose(sliced.probabilities, whole.probabilities, rtol=0, atol=1e-5)


def test_shared_timeline_of_an_embedding_model_stays_near_the_exact_one(embedding_recording: tuple[dict, Path]) -> None:
    """The default path (mn04's body once over a stretch of windows, each window the head on its part of the
    feature map) sees past each window's edges and gates by the window centred on each column, so it is not the
    window alone: same starts, probabilities within 0.08 of the exact ones on average and 0.3 at most (measured
    0.055 and 0.18), the same top class (measured: every window)."""
    checkpoint, path = embedding_recording
    exact = torch_model(checkpoint, exact=True).timeline(path, 1.5)
    shared = torch_model(checkpoint).timeline(path, 1.5)
    np.testing.assert_array_equal(shared.starts, exact.starts)
    difference = np.abs(shared.probabilities - exact.probabilities)
    assert difference.mean() < 0.08 and difference.max() < 0.3, (difference.mean(), difference.max())
    assert np.mean(shared.probabilities.argmax(1) == exact.probabilities.argmax(1)) > 0.9


def test_noisy_views_draw_negatives_of_the_clips_own_fold() -> None:
    pool = np.array([0, 0, 0, 1, 1, 1, -1, -1])
    negative = np.array([0, 1, 1, 0, 1, 0, 1, 0], dtype=bool)
    backgrounds, snr, delays = plan_views(pool, negative, 5, (-5.0, 5.0), 100, seed=0)
    assert backgrounds.shape == snr.shape == delays.shape == (8, 5)
    assert negative[backgrounds].all() and (pool[backgrounds] == pool[:, None]).all()
    assert snr.min() >= -5 and snr.max() <= 5 and delays.min() >= 0 and delays.max() <= 50
    with pytest.raises(ValueError, match="^CV fold 1 has no non-target clips"):
        plan_views(pool, negative & (pool != 1), 2, (0.0, 20.0), 100, seed=0)
    with pytest.raises(ValueError, match="^noisy views mix non-target clips into the clips, but there are none"):
        plan_views(pool, np.zeros(8, dtype=bool), 2, (0.0, 20.0), 100, seed=0)


def test_a_noisy_view_is_the_delayed_clip_plus_its_background_as_mel_powers() -> None:
    spec = feature_spec("efficientat", 32000, 1.0, {})
    clip, background = 0.1 * torch.randn(2, 128, 20) - 1, 0.1 * torch.randn(2, 128, 20) - 1
    quiet = noisy_views(clip, background, torch.tensor([80.0, 80.0]), torch.tensor([0, 5]), spec)
    torch.testing.assert_close(quiet[0], clip[0], atol=1e-3, rtol=0)  # background 80 dB below: the clip itself
    torch.testing.assert_close(quiet[1, :, 5:], clip[1, :, :15], atol=1e-3, rtol=0)  # delayed by 5 frames
    equal = noisy_views(clip, background, torch.tensor([0.0, 0.0]), torch.tensor([0, 0]), spec)
    power = lambda x: torch.exp(5 * x - 4.5).sum(dim=(1, 2))  # noqa: E731
    torch.testing.assert_close(power(equal), 2 * power(clip), rtol=1e-4, atol=0)  # 0 dB: as loud as the clip


def test_the_head_trains_on_a_random_view_and_predicts_from_the_clip_as_recorded() -> None:
    x = torch.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    assert torch.equal(pick_view(x, training=False), x[..., :1])
    torch.manual_seed(0)
    picked = torch.cat([pick_view(x, training=True) for _ in range(50)], dim=-1)
    assert {int(v) for v in picked[0, 0]} == {0, 1, 2, 3}  # every view is drawn
    assert torch.equal(picked[:, 1:] - picked[:, :1], torch.tensor([4.0, 8.0])[None, :, None].expand(2, 2, 50))


def test_view_zero_is_the_embedding_without_views(tmp_path: Path) -> None:
    features = zarr.create_array(store=tmp_path / "f.zarr", shape=(4, 128, 101), chunks=(4, 128, 101), dtype="float32",
                                 attributes=feature_spec("efficientat", 32000, 1.0, {}))
    features[:] = np.random.default_rng(0).normal(-1.0, 0.5, (4, 128, 101)).astype(np.float32)
    compute_embeddings(tmp_path / "f.zarr", tmp_path / "plain.zarr", WEIGHTS, 0.4, False)
    compute_embeddings(tmp_path / "f.zarr", tmp_path / "views.zarr", WEIGHTS, 0.4, False, 2, np.zeros(4, int),
                       np.array([0, 1, 1, 0], dtype=bool))
    plain, views = (zarr.open_array(tmp_path / f"{n}.zarr", mode="r") for n in ("plain", "views"))
    assert plain.shape == (4, 384, 1) and views.shape == (4, 384, 3) and views.attrs["embedding"]["views"] == 2
    np.testing.assert_allclose(views[:, :, 0], plain[:, :, 0], atol=1e-5)
    assert np.abs(views[:, :, 1:] - views[:, :, :1]).max() > 0.01
