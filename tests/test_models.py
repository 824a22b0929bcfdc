"""Model registry and the default resnet recipe."""

from __future__ import annotations

import pytest
import torch

from nonspeech.models.registry import MODELS, build_model

N_CLASSES = 7
SMALL = {"widths": [8, 16, 32, 64], "hidden": 32}


def batch() -> torch.Tensor:
    """Two clips of 128 mel bins by 251 frames (4 s at 32 kHz, hop 512)."""
    return torch.randn(2, 128, 251, generator=torch.Generator().manual_seed(0))


def n_params(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_default_resnet_shape_and_size() -> None:
    model = build_model("resnet", N_CLASSES)
    assert model(batch()).shape == (2, N_CLASSES)
    assert n_params(model) == 1_342_439  # widths [32, 64, 128, 256], hidden 512


@pytest.mark.parametrize("args", [SMALL, {"widths": [16, 32, 64, 128], "hidden": 256, "dropout": 0.2}])
def test_resnet_arguments_change_the_model(args: dict) -> None:
    model = build_model("resnet", N_CLASSES, **args)
    assert model(batch()).shape == (2, N_CLASSES)
    assert n_params(model) < n_params(build_model("resnet", N_CLASSES))


def test_resnet_accepts_odd_sizes_and_single_clip() -> None:
    model = build_model("resnet", 3, **SMALL).eval()
    assert model(torch.randn(1, 64, 37)).shape == (1, 3)


def test_backward_reaches_every_parameter() -> None:
    model = build_model("resnet", N_CLASSES, **SMALL)
    model(batch()).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_channels_last_matches_contiguous() -> None:
    model = build_model("resnet", N_CLASSES, **SMALL).eval()
    expected = model(batch())
    model = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(batch()), expected, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_runs() -> None:
    model = build_model("resnet", N_CLASSES, **SMALL).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), model(batch()), rtol=0.1, atol=0.05)


def test_wrong_number_of_widths_is_rejected() -> None:
    with pytest.raises(ValueError, match="4 widths"):
        build_model("resnet", N_CLASSES, widths=[8, 16, 32])


def test_unknown_model_lists_valid_names() -> None:
    assert "resnet" in MODELS
    with pytest.raises(ValueError, match="unknown model 'vgg'; valid: efficientat, embedding_head, frame_head, resnet"):
        build_model("vgg", N_CLASSES)


def test_a_detectors_clip_stack_gives_the_clip_and_leaves_the_timeline_to_the_members() -> None:
    torch.manual_seed(0)
    head = build_model("frame_head", N_CLASSES, dims=16, hidden=8, members=2, clip_context=2).eval()
    columns = torch.randn(3, 16, 11)
    with torch.inference_mode():
        members = torch.stack([member(columns) for member in head.head]).mean(dim=0)
        clip = head.clip_head(head.with_context(columns))
        assert torch.equal(head.clip_columns(columns), clip)
        assert torch.equal(head.frame_logits(columns), members)
        assert torch.equal(head(columns), clip.amax(dim=-1))
        assert head.stack_logits(columns).shape == (3, 3, N_CLASSES, 11)  # two members, then the clip stack
        context = head.with_context(columns)[:, 16:]
        assert torch.allclose(context[..., 5], columns[..., 3:8].mean(dim=-1))  # the 2 columns either side
        assert torch.allclose(context[..., 0], columns[..., :3].mean(dim=-1))  # at an edge, the columns there are
    plain = build_model("frame_head", N_CLASSES, dims=16, hidden=8, members=2).eval()
    assert plain.clip_head is None and torch.equal(plain(columns), plain.frame_logits(columns).amax(dim=-1))


def test_a_detectors_boundary_stacks_say_per_column_and_class_whether_and_where_an_event_begins_or_ends() -> None:
    torch.manual_seed(0)
    head = build_model("frame_head", N_CLASSES, dims=16, hidden=8, boundaries=["onset", "offset"]).eval()
    with torch.inference_mode():
        for kind in ("onset", "offset"):
            assert head.boundary_logits(torch.randn(3, 16, 11), kind).shape == (3, 2, N_CLASSES, 11)
    assert not build_model("frame_head", N_CLASSES, dims=16, hidden=8).boundary_heads
