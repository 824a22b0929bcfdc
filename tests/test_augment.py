"""Per-clip batched augmentations: each one changes only what it should, reproducibly."""

from __future__ import annotations

import pytest
import torch

from nonspeech.training.augment import AugmentConfig, augment

FULL = {
    "freq_mask": {"enabled": True, "max_bins": 15},
    "time_mask": {"enabled": True, "max_frames": 30},
    "time_shift": {"enabled": True, "max_fraction": 0.1},
    "gain": {"enabled": True, "low": 0.8, "high": 1.2},
    "noise": {"enabled": True, "std": 0.001},
}


def clips(batch: int = 64, n_mels: int = 40, frames: int = 50, seed: int = 0) -> torch.Tensor:
    """Random clips kept away from 0 so that masked cells are recognisable."""
    x = torch.rand(batch, n_mels, frames, generator=torch.Generator().manual_seed(seed))
    return x + 1.0


def run(x: torch.Tensor, cfg: AugmentConfig, seed: int = 1) -> torch.Tensor:
    """augment with a freshly seeded CPU generator."""
    return augment(x, cfg, torch.Generator().manual_seed(seed))


def test_from_dict_reads_every_section() -> None:
    cfg = AugmentConfig.from_dict(FULL)
    assert cfg == AugmentConfig(freq_mask=15, time_mask=30, time_shift=0.1, gain=(0.8, 1.2), noise=0.001)


def test_from_dict_disabled_or_absent_sections_are_off() -> None:
    off = {name: {**section, "enabled": False} for name, section in FULL.items()}
    assert AugmentConfig.from_dict(off) == AugmentConfig() == AugmentConfig.from_dict({})
    assert AugmentConfig.from_dict({"noise": {"enabled": False}}) == AugmentConfig()


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"mixup": {"enabled": True}}, "unknown augmentation"),
        ({"freq_mask": {"enabled": True, "max_bin": 15}}, "unknown key"),
        ({"gain": {"enabled": True, "low": 0.8}}, "lacks"),
        ({"gain": {"enabled": True, "low": 1.2, "high": 0.8}}, "invalid"),
        ({"time_shift": {"enabled": True, "max_fraction": 1.5}}, "invalid"),
        ({"noise": {"enabled": True, "std": -1.0}}, "invalid"),
    ],
)
def test_from_dict_rejects_bad_params(d: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AugmentConfig.from_dict(d)


def test_disabled_config_is_identity() -> None:
    x = clips()
    assert torch.equal(run(x, AugmentConfig()), x)


def test_freq_mask_zeroes_whole_bands_of_rows_per_clip() -> None:
    x = clips(batch=256)
    y = run(x, AugmentConfig(freq_mask=8))
    zero_rows = (y == 0).all(dim=2)  # (B, n_mels)
    assert torch.equal(y[~zero_rows], x[~zero_rows])  # every other row untouched
    assert not ((y == 0) & ~zero_rows[:, :, None]).any()  # no partial rows
    widths = zero_rows.sum(dim=1)
    assert set(widths.tolist()) == set(range(9))  # width uniform over [0, max_bins]
    starts = zero_rows.float().argmax(dim=1)
    for row, start, width in zip(zero_rows, starts, widths):  # each mask is one contiguous band
        assert row[start:start + width].all()
    assert len({tuple(r.nonzero().flatten().tolist()) for r in zero_rows}) > 50  # different rows per clip


def test_time_mask_zeroes_whole_bands_of_frames_per_clip() -> None:
    x = clips(batch=256)
    y = run(x, AugmentConfig(time_mask=10))
    zero_cols = (y == 0).all(dim=1)  # (B, frames)
    assert torch.equal(y.transpose(1, 2)[~zero_cols], x.transpose(1, 2)[~zero_cols])
    assert not ((y == 0) & ~zero_cols[:, None, :]).any()
    assert set(zero_cols.sum(dim=1).tolist()) == set(range(11))
    assert len({tuple(c.nonzero().flatten().tolist()) for c in zero_cols}) > 50


def test_mask_wider_than_axis_is_clamped() -> None:
    y = run(clips(batch=128, n_mels=6), AugmentConfig(freq_mask=100))
    assert ((y == 0).all(dim=2).sum(dim=1) <= 6).all()
    assert (y == 0).all(dim=(1, 2)).any()  # some clip lost all of its rows


def test_time_shift_is_a_circular_roll_per_clip() -> None:
    x = clips(batch=128, frames=50)
    y = run(x, AugmentConfig(time_shift=0.1))
    shifts = []
    for xi, yi in zip(x, y):
        matches = [s for s in range(-5, 6) if torch.equal(torch.roll(xi, s, dims=-1), yi)]
        assert len(matches) == 1  # a roll by at most 10 % of 50 frames, values preserved
        shifts.append(matches[0])
    assert set(shifts) == set(range(-5, 6))


def test_gain_scales_each_clip_by_its_own_factor() -> None:
    x = clips(batch=256)
    y = run(x, AugmentConfig(gain=(0.5, 2.0)))
    factors = y / x
    per_clip = factors[:, :1, :1]
    torch.testing.assert_close(factors, per_clip.expand_as(factors))
    assert 0.5 <= per_clip.min() and per_clip.max() <= 2.0
    assert per_clip.std() > 0.3  # roughly uniform(0.5, 2.0), std 0.43


def test_noise_is_additive_gaussian_with_the_given_std() -> None:
    x = clips(batch=64)
    delta = run(x, AugmentConfig(noise=0.1)) - x
    assert abs(delta.mean().item()) < 0.005
    assert abs(delta.std().item() - 0.1) < 0.005


def test_same_seed_same_output_other_seed_other_output() -> None:
    cfg = AugmentConfig.from_dict(FULL)
    x = clips()
    assert torch.equal(run(x, cfg, seed=3), run(x, cfg, seed=3))
    assert not torch.equal(run(x, cfg, seed=3), run(x, cfg, seed=4))


def test_clips_get_independent_draws_and_do_not_mix() -> None:
    cfg = AugmentConfig.from_dict(FULL)
    same = clips(batch=1).expand(16, -1, -1)
    y = run(same, cfg)
    assert len({tuple(yi.flatten().tolist()) for yi in y}) == 16  # identical clips, distinct outputs
    changed = clips()
    changed[5] = -changed[5]
    y_a, y_b = run(clips(), cfg), run(changed, cfg)
    others = torch.arange(len(changed)) != 5
    assert torch.equal(y_a[others], y_b[others])  # a clip's output depends on its own input only


def test_keeps_dtype_and_leaves_input_untouched() -> None:
    cfg = AugmentConfig.from_dict(FULL)
    x = clips().to(torch.bfloat16)
    before = x.clone()
    assert run(x, cfg).dtype == torch.bfloat16
    assert torch.equal(x, before)
