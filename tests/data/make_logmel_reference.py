"""Regenerate `logmel_reference.npz`: torchaudio's values that `tests/test_melspec.py` checks LogMel against.

torchaudio is not a project dependency (its PyPI wheels do not import next to the project's CPU
torch), so run this from a throwaway venv outside the repository (PyPI's default torch wheel runs
on CPU; torchaudio's transforms need neither a GPU nor torchcodec):

    python3 -m venv /tmp/ta-venv
    /tmp/ta-venv/bin/pip install torch==2.9.1 torchaudio==2.9.1 numpy
    /tmp/ta-venv/bin/python tests/data/make_logmel_reference.py

The stored file was made with torch 2.9.1+cu128, torchaudio 2.9.1+cu128 and numpy 2.4.6 on CPU;
`versions` (JSON) records them. Two groups of arrays:

Fixed clips, per parameter set `<name>` in PARAM_SETS: `<name>_params` (JSON), `<name>_fbank`
(n_freqs, n_mels), `<name>_wave<i>` (int16 PCM; the input is wave / 32768 as float32, which is
exact) and `<name>_logmel<i>` (n_mels, frames), computed from the unbatched 1-D clip so the top_db
floor is per clip.

Grid, per parameter set `<name>` in GRID_PARAMS and clip length `<n>` in GRID_SAMPLES:
`grid_<name>_params` (JSON), `grid_<name>_fbank` (n_freqs, n_mels; `melscale_fbanks` with the set's
f_min and f_max, which equals MelSpectrogram's own `mel_scale.fb`), `grid_wave<n>` (3, n) float32:
seeded Gaussian noise at 0.5, 1e-2 and 1e-5 (the same for every set, so stored once, bit-exact),
`grid_<name>_<n>_logmel` (3, n_mels, frames): torchaudio on each clip alone, and, for sets without
top_db, `grid_<name>_<n>_batched` (3, n_mels, frames): torchaudio on the (3, n) batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torchaudio.functional import melscale_fbanks
from torchaudio.transforms import AmplitudeToDB, MelSpectrogram

OUT = Path(__file__).with_name("logmel_reference.npz")
PARAM_SETS: dict[str, dict] = {
    "default": {"sample_rate": 32000, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "top_db": 80.0},
    "small": {"sample_rate": 16000, "n_fft": 512, "hop_length": 160, "n_mels": 64, "top_db": None},
}
GRID_PARAMS: dict[str, dict] = {
    "default": {"sample_rate": 32000, "n_fft": 2048, "hop_length": 512, "n_mels": 128, "top_db": 80.0},
    "small": {"sample_rate": 16000, "n_fft": 512, "hop_length": 160, "n_mels": 64, "top_db": None},
    "odd_rate": {"sample_rate": 11025, "n_fft": 256, "hop_length": 64, "n_mels": 40, "top_db": 60.0, "f_min": 20.0},
    "band": {"sample_rate": 44100, "n_fft": 1024, "hop_length": 441, "n_mels": 96, "top_db": 80.0,
             "f_min": 50.0, "f_max": 14000.0},
}
GRID_SAMPLES = (2100, 16000, 32001, 48000)
GRID_LEVELS = (0.5, 1e-2, 1e-5)


def clips(sample_rate: int) -> list[np.ndarray]:
    """Two int16 clips: 1 s of sine + chirp + seeded noise, and 0.25 s of a quiet tone then digital silence."""
    rng = np.random.default_rng(0)
    t = np.arange(sample_rate) / sample_rate
    f_end = 0.45 * sample_rate
    chirp = np.sin(2 * np.pi * (100.0 * t + 0.5 * (f_end - 100.0) * t**2))
    loud = 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.3 * chirp + 0.05 * rng.standard_normal(t.size)
    n = sample_rate // 4
    quiet = np.zeros(n)
    quiet[: n // 2] = 0.003 * np.sin(2 * np.pi * 1000.0 * t[: n // 2]) + 0.0005 * rng.standard_normal(n // 2)
    return [np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16) for x in (loud, quiet)]


def transforms(params: dict) -> tuple[MelSpectrogram, AmplitudeToDB, torch.Tensor]:
    """torchaudio's MelSpectrogram, AmplitudeToDB and filterbank for LogMel keyword arguments `params`."""
    sr, n_fft, n_mels = params["sample_rate"], params["n_fft"], params["n_mels"]
    f_min, f_max = params.get("f_min", 0.0), params.get("f_max")
    mel = MelSpectrogram(
        sr, n_fft, hop_length=params["hop_length"], n_mels=n_mels, f_min=f_min, f_max=f_max, power=2.0,
        center=True, pad_mode="reflect", norm=None, mel_scale="htk",
    )
    to_db = AmplitudeToDB(stype="power", top_db=params["top_db"])
    f_max_used = f_max if f_max is not None else float(sr // 2)
    fbank = melscale_fbanks(n_fft // 2 + 1, f_min, f_max_used, n_mels, sr, norm=None, mel_scale="htk")
    assert torch.equal(fbank, mel.mel_scale.fb)
    return mel, to_db, fbank


def reference(params: dict) -> dict[str, np.ndarray]:
    """torchaudio filterbank, inputs and per-clip log-mel of the fixed clips for one parameter set."""
    mel, to_db, fbank = transforms(params)
    out = {"params": np.array(json.dumps(params)), "fbank": fbank.numpy()}
    for i, pcm in enumerate(clips(params["sample_rate"])):
        wave = torch.from_numpy(pcm.astype(np.float32) / 32768.0)
        out[f"wave{i}"] = pcm
        out[f"logmel{i}"] = to_db(mel(wave)).numpy()
    return out


def grid_waves(samples: int) -> torch.Tensor:
    """Three (float32) noise clips of `samples` samples at GRID_LEVELS, seeded by their length."""
    g = torch.Generator().manual_seed(samples)
    return torch.randn(len(GRID_LEVELS), samples, generator=g) * torch.tensor(GRID_LEVELS).unsqueeze(1)


def grid(waves: dict[int, torch.Tensor]) -> dict[str, np.ndarray]:
    """torchaudio filterbank and per-clip (and, without top_db, batched) log-mel for every grid set and clip length."""
    out: dict[str, np.ndarray] = {}
    for name, params in GRID_PARAMS.items():
        mel, to_db, fbank = transforms(params)
        out[f"grid_{name}_params"] = np.array(json.dumps(params))
        out[f"grid_{name}_fbank"] = fbank.numpy()
        for samples, batch in waves.items():
            out[f"grid_{name}_{samples}_logmel"] = torch.stack([to_db(mel(wave)) for wave in batch]).numpy()
            if params["top_db"] is None:
                out[f"grid_{name}_{samples}_batched"] = to_db(mel(batch)).numpy()
    return out


def main() -> None:
    """Write the reference file."""
    versions = {"torch": torch.__version__, "torchaudio": torchaudio.__version__, "numpy": np.__version__}
    arrays = {"versions": np.array(json.dumps(versions))}
    for name, params in PARAM_SETS.items():
        arrays.update({f"{name}_{key}": value for key, value in reference(params).items()})
    waves = {samples: grid_waves(samples) for samples in GRID_SAMPLES}
    arrays.update({f"grid_wave{samples}": batch.numpy() for samples, batch in waves.items()})
    arrays.update(grid(waves))
    assert all(a.dtype != np.float64 for a in arrays.values())
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB) with {versions}")


if __name__ == "__main__":
    main()
