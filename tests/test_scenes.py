"""Scene synthesis, strong labels and the detector's post-processing, on real clips from ../shared/realsounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT

from nonspeech.data.audio import load_clip
from nonspeech.inference.detect import median_filtered
from nonspeech.scenes.backgrounds import read_backgrounds
from nonspeech.scenes.frames import boundary_targets, frame_targets
from nonspeech.scenes.scene_set import pool_backgrounds
from nonspeech.scenes.synthesis import SceneParams, active_part, background, plan_events, render, rms

REALSOUNDS = PROJECT.parent / "shared/realsounds"
RATE = 32000
PARAMS = {"count": 4, "seconds": 20.0, "events": [3, 7], "target_share": 0.7, "snr": [0, 30], "background_dbfs": -35,
          "max_event_seconds": 5.0, "gap": 0.5, "overlap": False, "seed": 0}


def real_clips(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n clips of each kind (targets, then negatives) at 32 kHz in 6 s slots, with their labels."""
    table = pd.read_csv(REALSOUNDS / "labels.csv").groupby("label").head(2).head(n)
    negatives = pd.read_csv(REALSOUNDS / "negatives/labels.csv").head(n)
    waves = [load_clip(REALSOUNDS / p, RATE, 6 * RATE)[0] for p in table["path"]]
    waves += [load_clip(REALSOUNDS / "negatives" / p, RATE, 6 * RATE)[0] for p in negatives["path"]]
    return np.stack(waves), np.array([*table["label"], *negatives["label"]])


@pytest.mark.parametrize(("change", "named"), [
    ({"seconds": -1}, "scenes.seconds"), ({"events": [5, 2]}, "scenes.events"), ({"snr": [20, 0]}, "scenes.snr"),
    ({"events": [10, 60], "seconds": 10.0}, "scenes.events"), ({"max_event_seconds": 30}, "scenes.max_event_seconds"),
])
def test_scene_params_that_cannot_be_met_are_one_line_naming_the_parameter(change: dict, named: str) -> None:
    with pytest.raises(ValueError, match=f"^{named} ") as error:
        SceneParams.from_dict({**PARAMS, **change})
    assert "\n" not in str(error.value)


def test_active_part_trims_silence_around_a_real_clip() -> None:
    waves, _ = real_clips(1)
    padded = np.concatenate([np.zeros(RATE, np.float32), waves[0]])
    offset, length = active_part(padded, RATE, 5.0)
    assert offset >= RATE and 0 < length <= 5 * RATE
    assert rms(padded[offset:offset + length]) > rms(padded)


def test_events_fit_the_scene_apart_and_at_their_ratio() -> None:
    waves, labels = real_clips(14)
    params = SceneParams.from_dict(PARAMS)
    parts = np.array([active_part(w, RATE, params.max_event_seconds) for w in waves])
    rng = np.random.default_rng(0)
    placed = plan_events(params, parts, labels, RATE, rng)
    again = plan_events(params, parts, labels, RATE, np.random.default_rng(0))
    assert placed == again and 3 <= len(placed) <= 7
    ordered = sorted(placed, key=lambda p: p.onset)
    assert all(a.onset + a.length + 0.5 * RATE <= b.onset for a, b in zip(ordered, ordered[1:]))
    assert all(0 <= p.onset and p.onset + p.length <= 20 * RATE for p in placed)
    bed = background([waves[-1]], 20 * RATE, RATE, -35.0, rng)
    assert 20 * np.log10(rms(bed)) == pytest.approx(-35.0, abs=0.01)
    first = placed[0]
    scene = render([first], waves, bed)
    part = scene[first.onset:first.onset + first.length] - bed[first.onset:first.onset + first.length]
    assert 20 * np.log10(rms(part) / rms(bed)) == pytest.approx(first.snr, abs=0.01)


def test_frame_targets_are_the_share_of_each_column_an_event_covers() -> None:
    events = pd.DataFrame({"onset": [0.16, 1.0], "offset": [0.8, 1.2], "label": ["cough", "other"]})
    share = frame_targets(events, ["cough", "laugh"], 4, 0.32, -0.16)  # columns [-0.16, 0.16), [0.16, 0.48), ...
    np.testing.assert_allclose(share[0], [0.0, 1.0, 1.0, 0.0], atol=1e-6)
    assert not share[1].any()


def test_boundary_targets_say_where_in_its_column_each_target_event_begins_and_ends() -> None:
    events = pd.DataFrame({"onset": [0.24, 0.9, 1.0, 5.0], "offset": [0.5, 1.1, 1.05, 5.5],
                           "label": ["cough", "laugh", "other", "cough"]})
    where = boundary_targets(events, "onset", ["cough", "laugh"], 4, 0.32, -0.16)  # columns [-0.16, 0.16), ...
    np.testing.assert_allclose(where[0, 1], 0.25, atol=1e-6)  # 0.24 s: a quarter into [0.16, 0.48)
    np.testing.assert_allclose(where[1, 3], 0.3125, atol=1e-6)  # 0.9 s: 0.1 s into [0.8, 1.12)
    assert np.isnan(where).sum() == 6  # other labels and onsets past the last column begin nowhere
    ends = boundary_targets(events, "offset", ["cough", "laugh"], 4, 0.32, -0.16)
    np.testing.assert_allclose(ends[0, 2], 0.0625, atol=1e-6)  # 0.5 s: 0.02 s into [0.48, 0.8)
    np.testing.assert_allclose(ends[1, 3], 0.9375, atol=1e-6)  # 1.1 s: 0.3 s into [0.8, 1.12)
    assert np.isnan(ends).sum() == 6


def test_backgrounds_shorter_than_one_scene_or_without_audio_stop_with_one_line(tmp_path: Path) -> None:
    waves, labels = real_clips(1)
    with pytest.raises(ValueError, match="less than one 60 s scene") as error:
        pool_backgrounds(waves, labels, np.arange(len(waves)), None, 60.0, RATE, "fold0")
    assert "non-target clips (data.negatives) of fold0" in str(error.value)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/notes.txt").write_text("no audio here")
    with pytest.raises(ValueError, match="holds no usable audio"):
        read_backgrounds(tmp_path / "empty", RATE, tmp_path / "report")


def test_unusable_background_files_are_reported_and_the_rest_used(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "rooms"
    folder.mkdir()
    source = next((REALSOUNDS / "negatives/clips").rglob("*.wav"))
    (folder / "room.wav").write_bytes(source.read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF0000WAVEnot audio")
    pieces = read_backgrounds(folder, RATE, tmp_path / "report")
    assert len(pieces) == 1
    report = pd.read_csv(tmp_path / "report/background_quarantine.csv")
    assert report["path"].tolist() == [str(folder / "broken.wav")]
    assert capsys.readouterr().err.count("warning:") == 1


def test_median_filter_removes_blips_shorter_than_half_its_length() -> None:
    probabilities = np.zeros((20, 2))
    probabilities[5, 0] = 1.0
    probabilities[10:16, 1] = 1.0
    filtered = median_filtered(probabilities, ["cough", "laugh"], {"cough": 0.96, "laugh": 0.96}, 0.32)
    assert not filtered[:, 0].any()
    np.testing.assert_array_equal(filtered[:, 1], probabilities[:, 1])


def test_scene_params_with_a_missing_or_unknown_key_name_them() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['density'\], missing keys \['gap'\]"):
        SceneParams.from_dict({**{k: v for k, v in PARAMS.items() if k != "gap"}, "density": 3})
