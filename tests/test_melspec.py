"""LogMel and mel_filterbank against torchaudio: stored reference values, and live where torchaudio imports.

The reference file comes from `tests/data/make_logmel_reference.py` (torch/torchaudio 2.9.1).
Observed max abs differences there: filterbank 0, log-mel about 1.5e-5 dB; the tolerances below
leave room for other torch builds while still catching real definition changes (an odd-rate
f_max slip, for instance, is 0.04 dB).

dtype: the module computes in its buffers' dtype, like any nn.Module. A float32 LogMel rejects
float64 input with a RuntimeError (as torchaudio's MelSpectrogram does); `LogMel(...).double()`
takes float64.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nonspeech.frontends.logmel import LogMel, mel_filterbank

REFERENCE = Path(__file__).parent / "data" / "logmel_reference.npz"
PARAM_SETS = ("default", "small")
FBANK_ATOL = 1e-6
DB_ATOL = 1e-3
LIVE_PARAMS = [
    {"sample_rate": 32000, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "top_db": 80.0},
    {"sample_rate": 16000, "n_fft": 512, "hop_length": 160, "n_mels": 64, "top_db": None},
    {"sample_rate": 11025, "n_fft": 256, "hop_length": 64, "n_mels": 40, "top_db": 60.0, "f_min": 20.0},
    {"sample_rate": 44100, "n_fft": 1024, "hop_length": 441, "n_mels": 96, "top_db": 80.0,
     "f_min": 50.0, "f_max": 14000.0},
]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """The stored torchaudio values."""
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


def params_of(reference: dict[str, np.ndarray], name: str) -> dict:
    """LogMel keyword arguments of one stored parameter set."""
    return json.loads(str(reference[f"{name}_params"]))


def clip(reference: dict[str, np.ndarray], name: str, i: int) -> torch.Tensor:
    """Stored int16 clip as the float32 waveform torchaudio saw."""
    return torch.from_numpy(reference[f"{name}_wave{i}"].astype(np.float32) / 32768.0)


def close(actual: torch.Tensor, expected: torch.Tensor | np.ndarray, atol: float) -> None:
    """Assert equal shapes and max abs difference within atol."""
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=atol)


@pytest.mark.parametrize("name", PARAM_SETS)
def test_filterbank_matches_reference(reference: dict[str, np.ndarray], name: str) -> None:
    p = params_of(reference, name)
    n_freqs, sr = p["n_fft"] // 2 + 1, p["sample_rate"]
    expected = reference[f"{name}_fbank"]
    close(mel_filterbank(n_freqs, 0.0, float(sr // 2), p["n_mels"], sr), expected, FBANK_ATOL)
    close(LogMel(**p).fb, expected, FBANK_ATOL)


@pytest.mark.parametrize("name", PARAM_SETS)
@pytest.mark.parametrize("i", [0, 1])
def test_logmel_matches_reference(reference: dict[str, np.ndarray], name: str, i: int) -> None:
    close(LogMel(**params_of(reference, name))(clip(reference, name, i)), reference[f"{name}_logmel{i}"], DB_ATOL)


def test_reference_exercises_floor_and_silence(reference: dict[str, np.ndarray]) -> None:
    """The quiet clip hits the 80 dB floor under the default set and the 1e-10 clamp (-100 dB) without a floor."""
    quiet = reference["default_logmel1"]
    assert np.isclose(quiet.min(), quiet.max() - 80.0, atol=1e-4)
    assert reference["small_logmel1"].min() == -100.0


def test_float64_needs_a_float64_module(reference: dict[str, np.ndarray]) -> None:
    wave = clip(reference, "default", 0).double()
    with pytest.raises(RuntimeError, match="dtype"):
        LogMel(**params_of(reference, "default"))(wave)
    out = LogMel(**params_of(reference, "default")).double()(wave)
    assert out.dtype == torch.float64
    close(out, reference["default_logmel0"], DB_ATOL)


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
@pytest.mark.parametrize("samples", [2049, 16000, 32511])
def test_shape(lead: tuple[int, ...], samples: int) -> None:
    hop, n_mels = 512, 128
    out = LogMel(32000, 2048, hop, n_mels)(torch.randn(*lead, samples))
    assert out.shape == (*lead, n_mels, samples // hop + 1)


@pytest.mark.parametrize("params", LIVE_PARAMS[:2], ids=["default", "small"])
def test_clip_does_not_depend_on_its_batch(params: dict) -> None:
    """A quiet clip gives identical features alone and next to a loud one (floor per clip)."""
    g = torch.Generator().manual_seed(0)
    loud, quiet = torch.randn(2, 16000, generator=g) * torch.tensor([[1.0], [1e-4]])
    mel = LogMel(**{**params, "top_db": 80.0})
    alone = mel(quiet)
    assert torch.equal(mel(torch.stack([loud, quiet]))[1], alone)
    assert torch.equal(mel(torch.stack([loud, quiet]).reshape(1, 2, -1))[0, 1], alone)
    assert (alone < mel(loud).max() - 80.0).any()  # a batch-wide floor would have changed it


@pytest.mark.parametrize("params", LIVE_PARAMS, ids=["default", "small", "odd_rate", "band"])
def test_filterbank_matches_torchaudio(params: dict) -> None:
    torchaudio = pytest.importorskip("torchaudio")
    sr, n_fft, n_mels = params["sample_rate"], params["n_fft"], params["n_mels"]
    f_min, f_max = params.get("f_min", 0.0), params.get("f_max")
    ta_mel = torchaudio.transforms.MelSpectrogram(
        sr, n_fft, f_min=f_min, f_max=f_max, n_mels=n_mels, norm=None, mel_scale="htk",
    )
    f_max_used = f_max if f_max is not None else float(sr // 2)
    expected = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, f_min, f_max_used, n_mels, sr, norm=None, mel_scale="htk",
    )
    close(mel_filterbank(n_fft // 2 + 1, f_min, f_max_used, n_mels, sr), expected, FBANK_ATOL)
    close(LogMel(**params).fb, ta_mel.mel_scale.fb, FBANK_ATOL)


@pytest.mark.parametrize("params", LIVE_PARAMS, ids=["default", "small", "odd_rate", "band"])
@pytest.mark.parametrize("samples", [2100, 16000, 32001, 48000])
def test_logmel_matches_torchaudio(params: dict, samples: int) -> None:
    """Batched LogMel equals torchaudio run on each clip alone; without top_db, torchaudio batched too."""
    torchaudio = pytest.importorskip("torchaudio")
    ta_mel = torchaudio.transforms.MelSpectrogram(
        params["sample_rate"], params["n_fft"], hop_length=params["hop_length"], n_mels=params["n_mels"],
        f_min=params.get("f_min", 0.0), f_max=params.get("f_max"), power=2.0, center=True,
        pad_mode="reflect", norm=None, mel_scale="htk",
    )
    to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=params["top_db"])
    g = torch.Generator().manual_seed(samples)
    waves = torch.randn(3, samples, generator=g) * torch.tensor([[0.5], [1e-2], [1e-5]])
    out = LogMel(**params)(waves)
    for wave, features in zip(waves, out):
        close(features, to_db(ta_mel(wave)), DB_ATOL)
    if params["top_db"] is None:
        close(out, to_db(ta_mel(waves)), DB_ATOL)
