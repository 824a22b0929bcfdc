"""Power spectrogram of a centred, reflect-padded STFT, by torch.stft or by an ONNX-exportable conv1d."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class PowerSTFT(nn.Module):
    """|STFT|^2 of (batch, samples) waveforms: (batch, n_fft // 2 + 1, frames).

    `window` may be shorter than n_fft; it is zero-padded to n_fft on both sides, as torch.stft does.
    With conv=True the STFT is a strided conv1d over a fixed windowed-DFT basis, which ONNX can export.
    """

    def __init__(self, n_fft: int, hop_length: int, window: torch.Tensor, conv: bool = False) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.conv = n_fft, hop_length, conv
        left = (n_fft - len(window)) // 2
        padded = F.pad(window, (left, n_fft - len(window) - left))
        self.register_buffer("window", padded, persistent=False)
        if conv:
            n = torch.arange(n_fft, dtype=torch.float64)
            k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
            angle = 2 * math.pi * torch.remainder(torch.outer(k, n), n_fft) / n_fft
            basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * padded.double()
            self.register_buffer("basis", basis.float().unsqueeze(1), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if self.conv:
            padded = F.pad(waveforms.unsqueeze(1), (self.n_fft // 2, self.n_fft // 2), mode="reflect")
            real, imag = F.conv1d(padded, self.basis, stride=self.hop_length).chunk(2, dim=1)
            return real.square() + imag.square()
        spec = torch.stft(
            waveforms, self.n_fft, self.hop_length, window=self.window,
            center=True, pad_mode="reflect", return_complex=True,
        )
        parts = torch.view_as_real(spec)
        return parts[..., 0].square() + parts[..., 1].square()
