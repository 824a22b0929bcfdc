"""LogMel and mel_filterbank against torchaudio's values, stored in `tests/data/logmel_reference.npz`.

torchaudio is not a dependency (its wheels do not import next to the project's CPU torch), so its
outputs are computed once, in a throwaway venv, by `tests/data/make_logmel_reference.py` (the
script's docstring says how to rerun it) and stored with the exact inputs it saw; the file's
`versions` says which torch/torchaudio made it (now torch 2.9.1 and torchaudio 2.9.1, on CPU).
Nothing here imports torchaudio, so no case skips. Two groups:

- fixed clips (`default`, `small`): a tone + chirp + noise clip and a quiet clip ending in digital
  silence, stored as int16 PCM;
- the grid: four parameter sets (`default`, `small`, `odd_rate` with f_min, `band` with f_min and
  f_max) by four clip lengths, each a float32 batch of seeded noise at 0.5, 1e-2 and 1e-5,
  with torchaudio's filterbank, its output for every clip alone and, without top_db, for the batch.

Observed max abs differences (project torch 2.13 CPU): filterbank 0, log-mel up to 1.5e-5 dB;
regenerating the file on another CPU with the same torchaudio moved its log-mel values by up to
7e-5 dB. The tolerances below leave room for other torch builds while still catching real
definition changes (an odd-rate f_max slip, sample_rate / 2 for sample_rate // 2, is 0.03-0.04 dB).

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

from nonspeech.features.logmel import LogMel, mel_filterbank

REFERENCE = Path(__file__).parent / "data" / "logmel_reference.npz"
PARAM_SETS = ("default", "small")
FBANK_ATOL = 1e-6
DB_ATOL = 1e-3
GRID_SETS = ("default", "small", "odd_rate", "band")
GRID_SAMPLES = (2100, 16000, 32001, 48000)


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


@pytest.mark.parametrize("name", GRID_SETS[:2])
def test_clip_does_not_depend_on_its_batch(reference: dict[str, np.ndarray], name: str) -> None:
    """A quiet clip gives identical features alone and next to a loud one (floor per clip)."""
    g = torch.Generator().manual_seed(0)
    loud, quiet = torch.randn(2, 16000, generator=g) * torch.tensor([[1.0], [1e-4]])
    mel = LogMel(**{**params_of(reference, f"grid_{name}"), "top_db": 80.0})
    alone = mel(quiet)
    assert torch.equal(mel(torch.stack([loud, quiet]))[1], alone)
    assert torch.equal(mel(torch.stack([loud, quiet]).reshape(1, 2, -1))[0, 1], alone)
    assert (alone < mel(loud).max() - 80.0).any()  # a batch-wide floor would have changed it


@pytest.mark.parametrize("name", GRID_SETS)
def test_filterbank_matches_torchaudio(reference: dict[str, np.ndarray], name: str) -> None:
    """Against torchaudio's melscale_fbanks with the set's f_min and f_max (equal to its MelSpectrogram's own)."""
    p = params_of(reference, f"grid_{name}")
    sr, n_fft, n_mels = p["sample_rate"], p["n_fft"], p["n_mels"]
    f_min, f_max = p.get("f_min", 0.0), p.get("f_max")
    f_max_used = f_max if f_max is not None else float(sr // 2)
    expected = reference[f"grid_{name}_fbank"]
    close(mel_filterbank(n_fft // 2 + 1, f_min, f_max_used, n_mels, sr), expected, FBANK_ATOL)
    close(LogMel(**p).fb, expected, FBANK_ATOL)


@pytest.mark.parametrize("name", GRID_SETS)
@pytest.mark.parametrize("samples", GRID_SAMPLES)
def test_logmel_matches_torchaudio(reference: dict[str, np.ndarray], name: str, samples: int) -> None:
    """Batched LogMel equals torchaudio run on each clip alone; without top_db, torchaudio batched too."""
    p = params_of(reference, f"grid_{name}")
    waves = torch.from_numpy(reference[f"grid_wave{samples}"])
    assert waves.dtype == torch.float32 and waves.shape == (3, samples)
    out = LogMel(**p)(waves)
    for features, expected in zip(out, reference[f"grid_{name}_{samples}_logmel"], strict=True):
        close(features, expected, DB_ATOL)
    if p["top_db"] is None:
        close(out, reference[f"grid_{name}_{samples}_batched"], DB_ATOL)
