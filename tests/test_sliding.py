"""The shared path of `predict --window`: the body once over a stretch of frames, each window the mean of its part."""

from __future__ import annotations

import dataclasses
import platform

import numpy as np
import pytest
import torch

from nonspeech.features.efficientat_mel import EfficientATMel
from nonspeech.features.logmel import LogMel, centred_max
from nonspeech.inference.columns import column_framer
from nonspeech.inference.feature_map import window_means
from nonspeech.inference.heap import malloc_trim, release_free_memory
from nonspeech.inference.sliding import (
    Framer,
    Slider,
    audible,
    centre_classifier,
    shared_framer,
    slide,
)
from nonspeech.models.efficientat import ChannelGate, MobileNetAT, centred_mean, localise_gates, split_at_first_gate

RATE = 32000


def test_window_means_integrate_piecewise_constant_columns() -> None:
    """Fractional window edges weigh the columns they cut by the part they cover; windows are clipped to the map."""
    columns = torch.randn(3, 6)
    fine = columns.repeat_interleave(4, dim=1)  # quarter columns
    means = window_means(columns, torch.tensor([0.0, 1.5, 3.25, 5.0]), 2.0)
    expected = [fine[:, quarter : quarter + 8].mean(dim=1) for quarter in (0, 6, 13)] + [columns[:, 5]]
    torch.testing.assert_close(means, torch.stack(expected), rtol=0, atol=1e-6)


def test_centred_mean_and_max_cover_the_odd_span_around_each_column() -> None:
    x = torch.randn(2, 3, 9)
    for span in (4, 5):  # 4 rounds up to 5: two columns each side
        near = [slice(max(0, t - 2), t + 3) for t in range(9)]
        torch.testing.assert_close(centred_mean(x, span), torch.stack([x[..., s].mean(-1) for s in near], dim=-1))
        torch.testing.assert_close(centred_max(x[:, :1], span), torch.stack([x[:, :1, s].amax(-1) for s in near], dim=-1))


def test_a_gate_whose_span_covers_its_input_is_the_squeeze_excitation_of_the_whole() -> None:
    gate = ChannelGate(8, 4)
    x = torch.randn(2, 8, 3, 20)
    whole = gate(x)
    gate.span = 2 * 20 - 1  # every column's centred span reaches both ends
    torch.testing.assert_close(gate(x), whole)


def test_localised_gates_take_the_columns_of_a_window_alone() -> None:
    """mn04's squeeze-excitation blocks read 3 s windows (300 frames) at strides 8, 16 and 32."""
    network = MobileNetAT(3, 0.4).eval()
    with torch.inference_mode():
        localise_gates(network, lambda: network(torch.zeros(1, 128, 300)))
    spans = [m.span for m in network.modules() if isinstance(m, ChannelGate)]
    assert spans == [38, 38, 38, 19, 19, 10, 10, 10]


def test_shared_windows_of_a_pointwise_body_are_the_means_of_their_frames() -> None:
    """With a body that passes frames through (a column per frame, bins as channels), each window's scores are the
    mean of its frames of the whole recording: across block edges, stretch edges and the zero-padded end; windows
    of digital silence score 0."""
    frontend = LogMel(RATE, 256, 64, 16, top_db=None)
    window, hop = RATE // 2, 0.37 * RATE
    framer = shared_framer(frontend, lambda x: x.unsqueeze(2), lambda pooled: pooled.numpy(), window)
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 30 * RATE).astype(np.float32)
    audio[10 * RATE : 12 * RATE] = 0.0
    edges = np.cumsum(rng.integers(RATE // 3, 4 * RATE, 20))
    with torch.inference_mode():
        starts, scores = slide(np.split(audio, edges[edges < len(audio)]), framer, window, hop, 64, 8)
        padded = np.pad(audio, (0, starts[-1] + window - len(audio)))
        frames = frontend.frames(torch.from_numpy(padded)[None])[0]
    width = framer.window_frames
    expected = np.stack([frames[:, s // 64 : s // 64 + width].mean(dim=1).numpy() for s in starts])
    loud = np.array([padded[s : s + window].any() for s in starts])
    assert len(starts) > 3 * int(np.ceil(16 * window / hop)) and not loud.all()  # several stretches, silent windows
    np.testing.assert_allclose(scores, expected * loud[:, None], rtol=0, atol=1e-3)


def test_a_span_scores_the_centre_of_each_window() -> None:
    """With centre 0.5 each window scores the mean of its centre half of frames (fractional frames weighed by the part
    covered), over the shared stretch (shared_framer) and for a window alone (centre_classifier)."""
    frontend = LogMel(RATE, 256, 64, 16, top_db=None)
    window, hop = RATE // 2, 0.37 * RATE
    body, head = (lambda x: x.unsqueeze(2)), (lambda pooled: pooled.numpy())
    framer = shared_framer(frontend, body, head, window, centre=0.5)
    audio = np.random.default_rng(1).normal(0, 0.1, 8 * RATE).astype(np.float32)
    with torch.inference_mode():
        starts, scores = slide([audio], framer, window, hop, 64, 8)
        padded = np.pad(audio, (0, starts[-1] + window - len(audio)))
        frames = frontend.frames(torch.from_numpy(padded)[None])[0].repeat_interleave(4, dim=1)  # quarter frames
        alone = centre_classifier(body, head, 16, framer.window_frames, 0.5)(
            frontend.frames(torch.from_numpy(np.stack([padded[s : s + window] for s in starts]))))
    width = framer.window_frames  # 251 frames: the centre 125.5 start 62.75 frames in
    expected = np.stack([frames[:, 4 * (s // 64) + 251 : 4 * (s // 64) + 251 + 502].mean(dim=1).numpy() for s in starts])
    assert width == 251 and len(starts) > 10
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(alone, expected, rtol=0, atol=1e-4)  # the centre frames never see past the window


def detector_framer(window: int) -> Framer:
    """A detector framer on a randomly initialised mn04 with localised gates and a head of its first 3 columns."""
    frontend = EfficientATMel()
    network = MobileNetAT(3, 0.4).eval()
    with torch.inference_mode():
        localise_gates(network, lambda: network(frontend(torch.zeros(1, window))))
        prefix, rest = split_at_first_gate(network, 128)
        return column_framer(frontend, prefix, prefix, lambda x, first, end: rest(x).mean(dim=2)[..., first:end],
                             lambda columns: (torch.sigmoid(columns[:3]), []), window, 0.32 / 6, RATE)


def test_a_detector_computes_the_body_before_its_first_gate_once_over_a_stream() -> None:
    """mn04's layers before its first gate are a detector framer's frames, one every 8 front-end frames (0.08 s):
    computed block by block, the blocks cut anywhere, they equal those of the whole stream; window starts fall on
    them, and each window's scores come from the rest of the body over its stretch."""
    window = 6 * RATE
    framer = detector_framer(window)
    with torch.inference_mode():
        audio = np.random.default_rng(2).normal(0, 0.1, 20 * RATE).astype(np.float32)
        whole = framer.frames(torch.from_numpy(audio)[None])[0]
        slider = Slider(framer, window, 0.1 * RATE, 320, 8)
        for block in np.split(audio, [1001, 50000, 170001, 400000]):
            slider.feed(block)
            if slider.next_frame:  # none yet after the first 1001 samples
                torch.testing.assert_close(slider.frames, whole[:, slider.frame_start : slider.next_frame], rtol=0,
                                           atol=1e-5)
        slider.finish()
        starts, scores = slider.take()
    assert framer.hop == 8 * 320 and slider.next_frame > 200 and len(starts) > 100
    assert not (starts % framer.hop).any() and scores.shape == (len(starts), 3)


def test_a_window_is_audible_when_any_of_its_samples_is_not_zero() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        samples = rng.normal(size=200) * (rng.random(200) < rng.choice([0.002, 0.02, 1.0]))
        window = int(rng.integers(1, 60))
        offsets = np.sort(rng.choice(201 - window, size=int(rng.integers(1, 9)), replace=False))
        expected = [samples[o : o + window].any() for o in offsets]
        assert audible(samples, offsets, window).tolist() == expected


def test_batches_scored_side_by_side_give_what_one_after_another_gives() -> None:
    """With several workers, a detector's batches are scored on a pool of threads while the next frames are
    computed: the same windows and probabilities, in order; a scorer's error reaches the caller."""
    window = 6 * RATE
    framer = detector_framer(window)
    with torch.inference_mode():
        audio = np.random.default_rng(4).normal(0, 0.1, 30 * RATE).astype(np.float32)
        blocks = np.split(audio, [70001, 300000, 650001])
        alone = slide(blocks, framer, window, 0.08 * RATE, 320, 8)
        side_by_side = slide(blocks, framer, window, 0.08 * RATE, 320, 8, workers=3)

        def failing(*_: object) -> np.ndarray:
            raise RuntimeError("scorer failed")

        broken = dataclasses.replace(framer, score=failing)
        with pytest.raises(RuntimeError, match="scorer failed"):
            slide(blocks, broken, window, 0.08 * RATE, 320, 8, workers=2)
    assert len(alone[0]) > 200
    np.testing.assert_array_equal(side_by_side[0], alone[0])
    np.testing.assert_allclose(side_by_side[1], alone[1], rtol=0, atol=1e-6)


def test_free_heap_memory_is_given_back_where_the_c_library_can() -> None:
    """On glibc (Linux: this machine, CI) malloc_trim is found and called; elsewhere it is skipped."""
    assert (malloc_trim() is not None) == (platform.libc_ver()[0] == "glibc")
    release_free_memory()
