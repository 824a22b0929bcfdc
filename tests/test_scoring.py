"""Scoring of timelines, on hand-made events with known answers and against sed_eval on the real scenes, and
`nonspeech evaluate-timeline`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import nonspeech

from nonspeech.evaluation.sed_metrics import sed_scores
from nonspeech.evaluation.timeline import false_alarm_seconds, score_timeline, segment_activity
from nonspeech.evaluation.timeline_inputs import read_reference
from nonspeech.events import Event
from nonspeech.labels import NEGATIVE

SCENES = Path(__file__).resolve().parents[2] / "shared" / "realsounds" / "scenes"

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


def test_segment_scores_are_those_of_sed_eval_on_the_real_scenes() -> None:
    reference = read_reference(SCENES / "events.csv")
    durations = {path.name: sf.info(path).duration for path in sorted(SCENES.glob("*.wav"))}

    def late_and_incomplete(events: list[Event]) -> list[Event]:
        """Every target event 0.3 s late, every third dropped, and a false cough at the start."""
        targets = [e for e in events if e.label != NEGATIVE]
        return [Event(e.start + 0.3, e.end + 0.3, e.label) for i, e in enumerate(targets) if i % 3 != 2] + [
            Event(0.0, 0.5, "cough")]

    system = {name: late_and_incomplete(events) for name, events in reference.items()}
    ours, theirs = score_timeline(reference, system, durations), sed_scores(reference, system, durations)
    assert len(ours.per_class) == 7 and 0.5 < ours.macro_f1 < 0.9  # every target class of the scenes, some wrong
    assert theirs.segment_macro_f1 == pytest.approx(ours.macro_f1, abs=1e-9)
    assert {label: c["f1"] for label, c in theirs.segment_per_class.items()} == pytest.approx(
        {label: c["f1"] for label, c in ours.per_class.items()}, abs=1e-9)
    # 0.3 s late is outside the 0.2 s onset collar: no event is found, whatever its offset
    assert theirs.event_macro_f1 == 0.0 and {c["f1"] for c in theirs.event_per_class.values()} == {0.0}


def test_event_scores_count_onsets_within_200_ms_and_ignore_offsets() -> None:
    reference = {"a.wav": [Event(1.0, 2.0, "cough"), Event(5.0, 6.0, "cough"), Event(3.0, 3.5, "laugh"),
                           Event(8.0, 9.0, "other"), Event(10.0, 11.0, "yawn")]}
    system = {"a.wav": [Event(1.15, 4.0, "cough"), Event(5.3, 6.0, "cough"), Event(2.9, 3.2, "laugh"),
                        Event(8.0, 9.0, "other")]}
    scores = sed_scores(reference, system, {"a.wav": 12.0})
    # cough: 0.15 s late hits (its offset 2 s late does not matter), 0.3 s late misses: tp 1, fp 1, fn 1;
    # laugh: 0.1 s early hits; yawn: never reported, F1 0; `other` is never a class
    assert scores.event_per_class == {"cough": {"f1": 0.5, "precision": 0.5, "recall": 0.5},
                                      "laugh": {"f1": 1.0, "precision": 1.0, "recall": 1.0},
                                      "yawn": {"f1": 0.0, "precision": 0.0, "recall": 0.0}}
    assert scores.event_macro_f1 == pytest.approx(0.5)
    assert scores.segment_macro_f1 == pytest.approx(score_timeline(reference, system, {"a.wav": 12.0}).macro_f1)
    # a class absent from both sides has no F1 and leaves the macro-F1 alone
    with_sneeze = sed_scores(reference, system, {"a.wav": 12.0}, ["cough", "laugh", "sneeze", "yawn"])
    assert np.isnan(with_sneeze.event_per_class["sneeze"]["f1"])
    assert np.isnan(with_sneeze.segment_per_class["sneeze"]["f1"])
    assert (with_sneeze.event_macro_f1, with_sneeze.segment_macro_f1) == pytest.approx(
        (scores.event_macro_f1, scores.segment_macro_f1))


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
    assert scores["sed_eval_segment_macro_f1"] == pytest.approx(1.0)
    assert set(scores["event_per_class"]) == {"cough", "laugh"} and scores["event_per_class"]["cough"]["f1"] == 0.0
    assert scores["event_macro_f1"] == pytest.approx(np.mean([c["f1"] for c in scores["event_per_class"].values()]))
    table = nonspeech(*common)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "class", "precision", "recall", "f1", "reference_segments", "system_segments"]
    assert "macro-F1 1.000" in table.stdout and "false alarms 0.90 s per minute" in table.stdout
    assert (f"event macro-F1 {scores['event_macro_f1']:.3f} (onset ±200 ms, offsets ignored); sed_eval's segment "
            "macro-F1 1.000") in table.stdout
