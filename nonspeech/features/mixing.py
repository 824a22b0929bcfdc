"""Background mixing: each clip of a training batch gets, with some probability, a random non-target clip of
the same batch added at a random signal-to-background ratio, as mel powers, on the batch's device. The embed
stage mixes its noisy views with the same functions.

Adding mel powers is what adding the two sounds does to their spectrograms on average (uncorrelated
sources); the ratio compares the clips' total mel power. Labels are kept: the target still dominates
at ratios above 0 dB, and a non-target clip mixed with another stays non-target.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nonspeech.features.frontends import power_domain


def add_at_snr(power: Tensor, background: Tensor, snr_db: Tensor) -> Tensor:
    """Mel powers (B, bins, frames) plus `background` powers scaled to snr_db (B,) below each clip's total power."""
    scale = power.sum(dim=(1, 2)) / background.sum(dim=(1, 2)).clamp_min(1e-12) * 10 ** (-snr_db / 10)
    return power + background * scale[:, None, None]


def delay(power: Tensor, frames: Tensor) -> Tensor:
    """Mel powers (B, bins, frames) each shifted later by frames (B,), silence (zero power) coming in at the start."""
    source = torch.arange(power.shape[-1], device=power.device)[None, :] - frames[:, None]
    shifted = power.gather(2, source.clamp_min(0)[:, None, :].expand(-1, power.shape[1], -1))
    return shifted * (source >= 0)[:, None, :]


def background_mixer(
    spec: dict, negative: int | None, snr_db: tuple[float, float], probability: float,
) -> Callable[[Tensor, Tensor, torch.Generator], Tensor]:
    """mix(x, y, generator) for features of `spec`, mixing in the clips labelled `negative` (the class index of
    non-target sounds); ValueError when there is no such class."""
    if negative is None:
        raise ValueError("background mixing takes its backgrounds from data.negatives, but there are none")
    to_power, from_power = power_domain(spec)
    low, high = snr_db

    def mix(x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        pool = torch.nonzero(y == negative).flatten()
        if len(pool) == 0:
            return x
        dev, batch = generator.device, len(y)
        pick = pool[torch.randint(0, len(pool), (batch,), generator=generator, device=dev).to(pool.device)]
        snr = low + (high - low) * torch.rand(batch, generator=generator, device=dev).to(x.device)
        chosen = (torch.rand(batch, generator=generator, device=dev) < probability).to(x.device)
        power = to_power(x.float())
        mixed = from_power(add_at_snr(power, power[pick], snr)).to(x.dtype)
        return torch.where(chosen[:, None, None], mixed, x)  # the others keep their exact values

    return mix
