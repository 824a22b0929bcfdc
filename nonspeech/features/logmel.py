"""Log-mel spectrogram as a torch module, matching torchaudio's definitions.

`LogMel` equals torchaudio's `MelSpectrogram(power=2, center=True, pad_mode="reflect",
norm=None, mel_scale="htk")` followed by `AmplitudeToDB("power", top_db)`, except that the
top_db floor is taken per clip (torchaudio takes it over the whole batch of a 3-D input).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from nonspeech.features.stft import PowerSTFT


def hz_to_mel(freq: float) -> float:
    """HTK mel scale."""
    return 2595.0 * math.log10(1.0 + freq / 700.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK filters without area normalisation, shape (n_freqs, n_mels), as torchaudio.melscale_fbanks."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


def centred_max(x: torch.Tensor, span: int) -> torch.Tensor:
    """Maximum of x (batch, 1, frames) over the span frames (rounded up to odd) centred on each frame, fewer at the
    ends."""
    odd = span | 1
    return F.max_pool1d(x, odd, stride=1, padding=odd // 2)


class LogMel(nn.Module):
    """Waveforms (..., samples) to log-mel power in dB (..., n_mels, frames), floored per clip."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int,
        top_db: float | None = 80.0,
        f_min: float = 0.0,
        f_max: float | None = None,
        conv_stft: bool = False,
    ) -> None:
        super().__init__()
        self.top_db = top_db
        f_max = f_max if f_max is not None else float(sample_rate // 2)  # torchaudio's default
        fb = mel_filterbank(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate)
        self.stft = PowerSTFT(n_fft, hop_length, torch.hann_window(n_fft), conv_stft)
        self.register_buffer("fb", fb, persistent=False)

    def frames(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Log-mel power in dB of (batch, samples), without the per-clip floor: (batch, n_mels, frames)."""
        mel = torch.matmul(self.stft(waveforms).transpose(-1, -2), self.fb).transpose(-1, -2)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))

    def per_clip(self, db: torch.Tensor, span: int | None = None) -> torch.Tensor:
        """The top_db floor of each clip (batch, n_mels, frames): its maximum minus top_db; with `span`, each frame's
        floor from the maximum of the span frames centred on it (as if each frame were the middle of a clip)."""
        if self.top_db is None:
            return db
        peak = db.amax(dim=(-2, -1), keepdim=True) if span is None else centred_max(db.amax(dim=-2, keepdim=True), span)
        return torch.maximum(db, peak - self.top_db)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        shape = waveforms.shape
        db = self.per_clip(self.frames(waveforms.reshape(-1, shape[-1])))
        return db.reshape(*shape[:-1], *db.shape[-2:])

