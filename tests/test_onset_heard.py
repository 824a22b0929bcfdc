"""How far into reference events a detector's onsets are decided (the detector's figures), on hand-made columns
with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from nonspeech.detector.evaluate import heard_figures, onset_heard
from nonspeech.detector.postprocess import Columns, scene_decisions
from nonspeech.events import Event


def test_an_onset_is_heard_when_the_cell_that_decides_it_ends_and_a_missed_event_counts_against_the_share() -> None:
    probabilities = np.zeros((31, 2))  # columns of 0.32 s: cough, other
    probabilities[10:15, 0] = 0.9  # cough from 3.2 s
    scene = Columns(probabilities, 0.32, 0.0, 10.0)
    reference = {"a": [Event(2.9, 5.0, "cough"), Event(7.0, 8.0, "cough"), Event(8.0, 9.0, "other")]}
    decided = scene_decisions({"a": scene}, ["cough", "other"], {"cough": 0.5}, {}, 4, 0.0)
    heard = onset_heard({name: told for name, (_, told) in decided.items()}, reference)
    # windows of one column every 0.08 s rise 0, 0.225, 0.45, 0.675, 0.9 from 2.88 s; the cell [3.2, 3.28) is the
    # first whose four windows average 0.5 or more
    assert heard[0] == pytest.approx(3.28 - 2.9) and np.isnan(heard[1]) and len(heard) == 2
    figures = heard_figures(heard)
    assert figures["onset_heard_p50"] == figures["onset_heard_p95"] == pytest.approx(0.38)
    assert figures["onset_heard_within_1s"] == 0.5
    assert heard_figures(np.array([np.nan]))["onset_heard_p95"] is None
