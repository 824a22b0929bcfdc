"""The front end the EfficientAT AudioSet models were trained with, as a torch module.

Mono 32 kHz waveforms; pre-emphasis y[n] = x[n+1] - 0.97 x[n]; STFT with n_fft 1024, a symmetric
Hann window of 800 samples and hop 320 (centred, reflect padding); power; 128 Kaldi-style mel
triangles from 0 to 15 kHz (triangles in mel space, mel = 1127 ln(1 + f / 700), no area
normalisation); log(mel + 1e-5); then (x + 4.5) / 5.
"""

from __future__ import annotations

import torch
from torch import nn

from nonspeech.features.stft import PowerSTFT

SAMPLE_RATE = 32000


def kaldi_mel(freq: torch.Tensor | float) -> torch.Tensor:
    """Kaldi's mel scale, 1127 ln(1 + f / 700)."""
    return 1127.0 * torch.log1p(torch.as_tensor(freq, dtype=torch.float64) / 700.0)


def kaldi_mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangles evenly spaced in mel, evaluated at each FFT bin's mel value: (n_fft // 2 + 1, n_mels), Nyquist bin 0."""
    step = (kaldi_mel(f_max) - kaldi_mel(f_min)) / (n_mels + 1)
    left = kaldi_mel(f_min) + step * torch.arange(n_mels, dtype=torch.float64).unsqueeze(0)
    bin_mel = kaldi_mel(torch.arange(n_fft // 2, dtype=torch.float64) * sample_rate / n_fft).unsqueeze(1)
    rising, falling = (bin_mel - left) / step, (left + 2 * step - bin_mel) / step
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return torch.cat([weights, weights.new_zeros(1, n_mels)]).float()


class EfficientATMel(nn.Module):
    """Waveforms (..., samples) at 32 kHz to scaled log-mels (..., n_mels, frames), frames = (samples - 1) // hop + 1."""

    def __init__(
        self, n_fft: int = 1024, win_length: int = 800, hop_length: int = 320, n_mels: int = 128,
        f_min: float = 0.0, f_max: float = 15000.0, preemphasis: float = 0.97, conv_stft: bool = False,
    ) -> None:
        super().__init__()
        self.preemphasis = preemphasis
        window = torch.hann_window(win_length, periodic=False)
        self.stft = PowerSTFT(n_fft, hop_length, window, conv_stft)
        self.register_buffer("fb", kaldi_mel_filterbank(n_fft, SAMPLE_RATE, n_mels, f_min, f_max), persistent=False)

    def frames(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Scaled log-mels of (batch, samples): (batch, n_mels, frames); every frame depends only on nearby samples."""
        emphasised = waveforms[:, 1:] - self.preemphasis * waveforms[:, :-1]
        mel = torch.matmul(self.stft(emphasised).transpose(-1, -2), self.fb).transpose(-1, -2)
        return (torch.log(mel + 1e-5) + 4.5) / 5.0

    def per_clip(self, features: torch.Tensor, span: int | None = None) -> torch.Tensor:
        """Nothing is computed per clip: the identity."""
        return features

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        shape = waveforms.shape
        scaled = self.frames(waveforms.reshape(-1, shape[-1]))
        return scaled.reshape(*shape[:-1], *scaled.shape[-2:])
