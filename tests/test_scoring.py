"""Segment-based scoring of timelines, on hand-made events with known answers, and `nonspeech evaluate-timeline`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import nonspeech

from nonspeech.evaluation.timeline import false_alarm_seconds, score_timeline, segment_activity
from nonspeech.evaluation.timeline_inputs import read_reference
from nonspeech.events import Event

REFERENCE = """scene,onset,offset,label
a.wav,1.5,3.0,cough
a.wav,4.0,6.0,other
a.wav,7.2,7.8,laugh
b.wav,0.0,2.0,laugh
"""


def test_a_segment_is_active_when_an_event_overlaps_it() -> None:
    events = [Event(1.5, 3.0, "cough"), Event(7.2, 7.8, "laugh"), Event(4.0, 6.0, "other"), Event(9.5, 12.0, "cough")]
    active = segment_activity(events, ["cough", "laugh"], seconds=10.0)
    assert active.shape == (10, 2)
    assert list(np.flatnonzero(active[:, 0])) == [1, 2, 9]  # [1.5, 3.0) touches segments 1 and 2, not 3; clipped at 10
    assert list(np.flatnonzero(active[:, 1])) == [7]


def test_false_alarms_are_system_seconds_outside_every_target_event() -> None:
    reference = [Event(1.5, 3.0, "cough"), Event(4.0, 6.0, "other")]
    system = [Event(1.0, 2.0, "cough"), Event(1.5, 2.5, "sneeze"), Event(4.0, 5.0, "yawn"), Event(8.0, 8.5, "cough")]
    # claimed: [1, 2.5) + [4, 5) + [8, 8.5) = 3.0 s; inside the cough: [1.5, 2.5) = 1.0 s; `other` does not count
    assert false_alarm_seconds(reference, system) == pytest.approx(2.0)


def test_scores_per_class_macro_and_false_alarms_per_minute(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(REFERENCE)
    reference = read_reference(tmp_path / "events.csv")
    system = {
        "a.wav": [Event(1.0, 2.0, "cough"), Event(4.0, 5.0, "cough"), Event(7.0, 8.0, "laugh")],
        "b.wav": [Event(0.0, 1.0, "laugh"), Event(10.0, 11.0, "sneeze")],
    }
    scores = score_timeline(reference, system, {"a.wav": 30.0, "b.wav": 30.0})
    # cough: truth {1, 2}, system {1, 4}: tp 1, fp 1, fn 1; laugh: truth {7} + {0, 1}, system {7} + {0}: tp 2, fn 1;
    # sneeze: system {10} only: fp 1
    assert scores.per_class["cough"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "reference_segments": 2, "system_segments": 2})
    assert scores.per_class["laugh"]["f1"] == pytest.approx(0.8)
    assert scores.per_class["sneeze"]["f1"] == 0.0 and np.isnan(scores.per_class["sneeze"]["recall"])
    assert set(scores.per_class) == {"cough", "laugh", "sneeze"}  # `other` is never a class
    assert scores.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # false alarms: a.wav [1, 1.5) + [4, 5) (an `other` sound) + [7, 7.2) + [7.8, 8) = 1.9 s, b.wav [10, 11) = 1 s
    assert scores.false_alarms_per_minute == pytest.approx(2.9)  # over 1 minute


CLASSES = ["cough", "laugh", "sneeze", "other"]


def test_evaluate_timeline_cli_reads_the_json_of_predict(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text(REFERENCE)
    timeline = [
        {"file": "/recordings/a.wav", "seconds": 30.0, "classes": CLASSES, "segments": [
            {"start": 1.0, "end": 3.0, "class": "cough", "max_probability": 0.9, "mean_probability": 0.8},
            {"start": 7.0, "end": 8.0, "class": "laugh", "max_probability": 0.9, "mean_probability": 0.8}]},
        {"file": "b.wav", "seconds": 30.0, "classes": CLASSES, "segments": [
            {"start": 0.0, "end": 2.0, "class": "laugh", "max_probability": 0.9, "mean_probability": 0.8}]},
    ]
    (tmp_path / "timeline.json").write_text(json.dumps(timeline))
    common = ("evaluate-timeline", tmp_path / "timeline.json", "--events", tmp_path / "events.csv")
    result = nonspeech(*common, "--format", "json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["macro_f1"] == pytest.approx(1.0)
    assert scores["false_alarms_per_minute"] == pytest.approx(0.9)  # [1, 1.5) + [7, 7.2) + [7.8, 8), in 1 minute
    table = nonspeech(*common)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "class", "precision", "recall", "f1", "reference_segments", "system_segments"]
    assert "macro-F1 1.000" in table.stdout and "false alarms 0.90 s per minute" in table.stdout
