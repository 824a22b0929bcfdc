"""Batched, per-clip training augmentations of normalised log-mels shaped (B, n_mels, frames).

Every clip gets its own random draw, all taken from the caller's generator (on the generator's
device, then moved to the batch's), so a seed reproduces a batch exactly on any device.
Inputs are normalised (mean 0 per mel bin), so masks write 0, the mean. "Gain" here is a
multiplicative scale of the normalised features, i.e. a contrast change around the mean: a
true waveform gain would instead be an additive dB offset, which normalisation largely removes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

# params.yaml section -> its parameter names, in the order they are stored on AugmentConfig.
SECTIONS: dict[str, tuple[str, ...]] = {
    "freq_mask": ("max_bins",),
    "time_mask": ("max_frames",),
    "time_shift": ("max_fraction",),
    "gain": ("low", "high"),
    "noise": ("std",),
    "background": ("snr_low", "snr_high", "probability"),  # applied before normalisation: nonspeech/features/mixing.py
}


def _section_params(name: str, section: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The section's parameters when enabled, else None; rejects unknown keys and missing parameters."""
    keys = SECTIONS[name]
    unknown = set(section) - {"enabled", *keys}
    if unknown:
        raise ValueError(f"augment.{name}: unknown key(s) {sorted(unknown)}; expected enabled, {', '.join(keys)}")
    if not section.get("enabled", False):
        return None
    missing = [k for k in keys if k not in section]
    if missing:
        raise ValueError(f"augment.{name} is enabled but lacks {missing}")
    return tuple(section[k] for k in keys)


@dataclass(frozen=True)
class AugmentConfig:
    """Enabled augmentations and their parameters; None disables one (the default is the identity)."""

    freq_mask: int | None = None  # max masked mel bins
    time_mask: int | None = None  # max masked frames
    time_shift: float | None = None  # max circular shift, as a fraction of the frames
    gain: tuple[float, float] | None = None  # (low, high) scale of the normalised features
    noise: float | None = None  # std of additive Gaussian noise
    background: tuple[float, float, float] | None = None  # (snr_low dB, snr_high dB, probability) of mixing in negatives

    def __post_init__(self) -> None:
        valid = {
            "freq_mask": self.freq_mask is None or self.freq_mask >= 0,
            "time_mask": self.time_mask is None or self.time_mask >= 0,
            "time_shift": self.time_shift is None or 0 <= self.time_shift <= 1,
            "gain": self.gain is None or 0 <= self.gain[0] <= self.gain[1],
            "noise": self.noise is None or self.noise >= 0,
            "background": self.background is None or (self.background[0] <= self.background[1] and 0 <= self.background[2] <= 1),
        }
        bad = [name for name, ok in valid.items() if not ok]
        if bad:
            raise ValueError(f"invalid augmentation parameters for {bad}: {self}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, Any]]) -> AugmentConfig:
        """Build from params like {"freq_mask": {"enabled": true, "max_bins": 15}, ...}; absent sections are off."""
        unknown = set(d) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; valid: {', '.join(SECTIONS)}")
        params = {name: _section_params(name, d.get(name, {})) for name in SECTIONS}
        # Single-parameter sections are stored as the bare value, the others as tuples.
        return cls(**{name: p[0] if p is not None and len(p) == 1 else p for name, p in params.items()})


def _band_mask(batch: int, length: int, max_width: int, generator: torch.Generator) -> Tensor:
    """(batch, length) bool mask with one band per row, width uniform in [0, max_width], start uniform."""
    dev = generator.device
    width = torch.randint(0, min(max_width, length) + 1, (batch,), generator=generator, device=dev)
    start = (torch.rand(batch, generator=generator, device=dev) * (length - width + 1)).long()
    start = torch.minimum(start, length - width)
    pos = torch.arange(length, device=dev)
    return (pos >= start[:, None]) & (pos < (start + width)[:, None])


def augment(x: Tensor, cfg: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Augmented copy of x (x itself if nothing is enabled): time shift, gain, noise, then frequency and time masks."""
    batch, n_mels, frames = x.shape
    dev = generator.device
    if cfg.time_shift is not None:
        max_shift = int(cfg.time_shift * frames)
        shift = torch.randint(-max_shift, max_shift + 1, (batch,), generator=generator, device=dev).to(x.device)
        src = (torch.arange(frames, device=x.device) - shift[:, None]) % frames
        x = torch.gather(x, 2, src[:, None, :].expand(batch, n_mels, frames))
    if cfg.gain is not None:
        low, high = cfg.gain
        scale = low + (high - low) * torch.rand(batch, generator=generator, device=dev)
        x = x * scale.to(x.device, x.dtype)[:, None, None]
    if cfg.noise is not None:
        noise = torch.randn(x.shape, generator=generator, device=dev)
        x = x + cfg.noise * noise.to(x.device, x.dtype)
    if cfg.freq_mask is not None:
        rows = _band_mask(batch, n_mels, cfg.freq_mask, generator).to(x.device)
        x = x.masked_fill(rows[:, :, None], 0.0)
    if cfg.time_mask is not None:
        cols = _band_mask(batch, frames, cfg.time_mask, generator).to(x.device)
        x = x.masked_fill(cols[:, None, :], 0.0)
    return x
