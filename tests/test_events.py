"""Events from window probabilities, on hand-made windows with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from nonspeech.inference.detect import Boundaries, Windows, cell_scores, class_thresholds, detect


def spans(events: list) -> list[tuple[float, float, str]]:
    return [(e.start, e.end, e.label) for e in events]


def test_cells_are_cut_at_window_edges_and_scored_by_the_windows_covering_them() -> None:
    # windows of 2 s every 1 s over 4.5 s: cells [0,1) [1,2) [2,3) [3,4) [4,4.5)
    windows = Windows(np.arange(4.0), np.array([[0.2], [0.4], [0.6], [1.0]]), seconds=4.5, length=2.0)
    edges, mean = cell_scores(windows, "mean")
    np.testing.assert_allclose(edges, [0, 1, 2, 3, 4, 4.5])
    np.testing.assert_allclose(mean[:, 0], [0.2, 0.3, 0.5, 0.8, 1.0])
    _, low = cell_scores(windows, "min")
    np.testing.assert_allclose(low[:, 0], [0.2, 0.2, 0.4, 0.6, 1.0])
    _, high = cell_scores(windows, "max")
    np.testing.assert_allclose(high[:, 0], [0.2, 0.4, 0.6, 1.0, 1.0])


def test_an_isolated_detection_is_refined_to_the_hop() -> None:
    """A sound in [5, 6) seen by the four 4 s windows that contain it: the event is that one hop, not 7 s."""
    starts = np.arange(10.0)
    probs = np.where((starts >= 2) & (starts <= 5), 0.9, 0.05)[:, None]
    events = detect(Windows(starts, probs, 13.0, 4.0), ["cough"], np.array([0.5]), pool="min")
    assert spans(events) == [(5.0, 6.0, "cough")]
    mean = detect(Windows(starts, probs, 13.0, 4.0), ["cough"], np.array([0.5]), pool="mean")
    assert spans(mean) == [(4.0, 7.0, "cough")]  # cells where at least half the covering windows detect it
    assert mean[0].max_probability == pytest.approx(0.9)


def test_hysteresis_keeps_one_event_through_a_dip_and_min_duration_drops_blips() -> None:
    scores = np.array([0.1, 0.7, 0.45, 0.6, 0.1, 0.55, 0.1, 0.1])  # one window per cell: windows = hop = 1 s
    windows = Windows(np.arange(8.0), scores[:, None], seconds=8.0, length=1.0)
    plain = detect(windows, ["laugh"], np.array([0.5]))
    assert spans(plain) == [(1.0, 2.0, "laugh"), (3.0, 4.0, "laugh"), (5.0, 6.0, "laugh")]
    held = detect(windows, ["laugh"], np.array([0.5]), hysteresis=0.2)  # continues while >= 0.4
    assert spans(held) == [(1.0, 4.0, "laugh"), (5.0, 6.0, "laugh")]
    assert held[0].mean_probability == pytest.approx((0.7 + 0.45 + 0.6) / 3)
    long_only = detect(windows, ["laugh"], np.array([0.5]), hysteresis=0.2, min_duration=1.5)
    assert spans(long_only) == [(1.0, 4.0, "laugh")]


def test_per_class_thresholds_and_the_background_class() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6], [0.35, 0.05, 0.6]])
    windows = Windows(np.arange(3.0), probs, seconds=3.0, length=1.0)
    classes = ["cough", "sneeze", "other"]
    thresholds = class_thresholds(classes, {"cough": 0.55, "sneeze": 0.25}, None)
    np.testing.assert_allclose(thresholds, [0.55, 0.25, 0.5])  # other: absent, so the default 0.5
    assert spans(detect(windows, classes, thresholds)) == [(0.0, 1.0, "cough"), (0.0, 2.0, "sneeze")]
    everything = class_thresholds(classes, {"cough": 0.55, "sneeze": 0.25}, 0.3)
    np.testing.assert_allclose(everything, [0.3, 0.3, 0.3])
    assert spans(detect(windows, classes, everything)) == [
        (0.0, 1.0, "cough"), (0.0, 2.0, "sneeze"), (2.0, 3.0, "cough")]  # never `other`, though it reaches 0.6


def test_silent_windows_break_events_and_the_last_cell_ends_with_the_recording() -> None:
    probs = np.array([[0.9], [0.0], [0.0], [0.9]])  # windows 2 and 3 of 2 s are digital silence
    events = detect(Windows(np.array([0.0, 2.0, 4.0, 6.0]), probs, seconds=7.2, length=2.0), ["cry"], np.array([0.5]))
    assert spans(events) == [(0.0, 2.0, "cry"), (6.0, 7.2, "cry")]


def test_the_stretches_outside_centred_windows_take_the_nearest_window() -> None:
    """Windows that describe their centre (predict --span) leave the recording's two ends uncovered: those take the
    first and the last window's scores, so an event at the very start or end is still found."""
    windows = Windows(np.array([0.5, 1.5]), np.array([[0.9], [0.2]]), seconds=3.0, length=1.0)
    edges, scores = cell_scores(windows)
    np.testing.assert_allclose(edges, [0.0, 0.5, 1.5, 2.5, 3.0])
    np.testing.assert_allclose(scores[:, 0], [0.9, 0.9, 0.2, 0.2])
    assert spans(detect(windows, ["cough"], np.array([0.5]))) == [(0.0, 1.5, "cough")]


def test_versus_other_events_weigh_each_class_against_other_and_report_probabilities() -> None:
    probs = np.array([[0.45, 0.35, 0.2], [0.1, 0.1, 0.8], [0.45, 0.35, 0.2]])  # cough and sneeze share a sound
    windows = Windows(np.arange(3.0), probs, seconds=3.0, length=1.0)
    classes, half = ["cough", "sneeze", "other"], np.full(3, 0.6)
    assert detect(windows, classes, half) == []  # no probability reaches 0.6
    events = detect(windows, classes, half, rule="versus_other")  # 0.45 / 0.65 and 0.35 / 0.55 reach it
    assert spans(events) == [(0.0, 1.0, "cough"), (0.0, 1.0, "sneeze"), (2.0, 3.0, "cough"), (2.0, 3.0, "sneeze")]
    assert events[0].max_probability == pytest.approx(0.45)


def test_windows_that_abut_at_a_hop_of_float_error_give_one_event_not_one_per_window() -> None:
    """Windows of 0.16 s every 0.16 s: starts and ends computed in floating point differ by ~1e-15, which must not cut
    a sliver of a cell, scored by no window, between each pair."""
    starts = -0.075 + 0.16 * np.arange(40)
    probs = np.where((starts > 1.0) & (starts < 3.0), 0.9, 0.05)[:, None]
    events = detect(Windows(starts, probs, 6.4, 0.16), ["breath"], np.array([0.5]))
    assert len(events) == 1
    assert events[0].start == pytest.approx(1.045) and events[0].end == pytest.approx(3.125)


def test_an_event_starts_at_the_likeliest_onset_of_its_class_near_its_start() -> None:
    """Windows of 0.32 s every 0.08 s; cough found from 1.76 s to 3.04 s. Its onsets: 0.9 likely at 1.9 s (in the
    window centred 0.16 s after the start), 0.5 at 1.45 s; the laugh column's onset is not cough's."""
    starts = np.round(np.arange(0.0, 5.0, 0.08), 6)
    probs = np.zeros((len(starts), 2))
    probs[(starts >= 1.6) & (starts < 3.2 - 0.32 + 1e-9), 0] = 0.9
    presence, times = np.zeros_like(probs), np.zeros_like(probs)
    centres = starts + 0.16
    presence[np.isclose(centres, 1.92), 0], times[np.isclose(centres, 1.92), 0] = 0.9, 1.9
    presence[np.isclose(centres, 1.52), 0], times[np.isclose(centres, 1.52), 0] = 0.5, 1.45
    presence[np.isclose(centres, 1.84), 1], times[np.isclose(centres, 1.84), 1] = 1.0, 1.8
    windows = Windows(starts, probs, 5.0, 0.32, boundaries={"onset": Boundaries(presence, times, 0.64)})
    [plain] = detect(Windows(starts, probs, 5.0, 0.32), ["cough", "laugh"], np.array([0.5, 0.5]))
    [event] = detect(windows, ["cough", "laugh"], np.array([0.5, 0.5]))
    assert (plain.start, event.start, event.end) == (pytest.approx(1.76), 1.9, plain.end)
    narrow = Windows(starts, probs, 5.0, 0.32, boundaries={"onset": Boundaries(presence, times, 0.1)})  # none this near
    assert spans(detect(narrow, ["cough", "laugh"], np.array([0.5, 0.5]))) == spans([plain])
    late = Windows(starts, probs, 5.0, 0.32, boundaries={"onset": Boundaries(presence, times + 2.0, 0.64)})  # after its end
    assert spans(detect(late, ["cough", "laugh"], np.array([0.5, 0.5]))) == spans([plain])


def test_an_event_ends_at_the_likeliest_offset_of_its_class_near_its_end() -> None:
    """Cough found from 1.76 s to 3.04 s; its offsets: 0.8 likely at 2.95 s (in the window centred 0.08 s before the
    end), 0.3 at 3.2 s. With onsets too, both edges move, the start first; an end that would come by the start stays."""
    starts = np.round(np.arange(0.0, 5.0, 0.08), 6)
    probs = np.zeros((len(starts), 2))
    probs[(starts >= 1.6) & (starts < 3.2 - 0.32 + 1e-9), 0] = 0.9
    centres = starts + 0.16
    offsets = np.zeros_like(probs), np.zeros_like(probs)
    offsets[0][np.isclose(centres, 2.96), 0], offsets[1][np.isclose(centres, 2.96), 0] = 0.8, 2.95
    offsets[0][np.isclose(centres, 3.2), 0], offsets[1][np.isclose(centres, 3.2), 0] = 0.3, 3.2
    onsets = np.zeros_like(probs), np.zeros_like(probs)
    onsets[0][np.isclose(centres, 1.92), 0], onsets[1][np.isclose(centres, 1.92), 0] = 0.9, 1.9
    [plain] = detect(Windows(starts, probs, 5.0, 0.32), ["cough", "laugh"], np.array([0.5, 0.5]))
    ends = {"offset": Boundaries(*offsets, 0.32)}
    [event] = detect(Windows(starts, probs, 5.0, 0.32, boundaries=ends), ["cough", "laugh"], np.array([0.5, 0.5]))
    assert (event.start, event.end) == (plain.start, 2.95)
    both = {**ends, "onset": Boundaries(*onsets, 0.64)}
    [event] = detect(Windows(starts, probs, 5.0, 0.32, boundaries=both), ["cough", "laugh"], np.array([0.5, 0.5]))
    assert (event.start, event.end) == (1.9, 2.95)
    past = {**ends, "onset": Boundaries(onsets[0], onsets[1] + 1.1, 0.64)}  # an onset at 3.0 s, past the offset
    [event] = detect(Windows(starts, probs, 5.0, 0.32, boundaries=past), ["cough", "laugh"], np.array([0.5, 0.5]))
    assert (event.start, event.end) == (3.0, plain.end)  # the start moves first; the end then stays after it
