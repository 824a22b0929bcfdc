"""Precompute outputs: round trip from zarr to shards, fold integrity, exact statistics, bad input."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import zarr
from nonspeech7k_replica import make_nonspeech7k_replica

from nonspeech.data.audio import AudioError, decode_mono, load_clips
from nonspeech.data.clip_arrays import from_pcm16, to_pcm16
from nonspeech.data.ingest import IngestError, ingest
from nonspeech.data.loader import batch_loader, batch_pipeline, shard_urls
from nonspeech.data.sources.listing import list_clips
from nonspeech.features.compute import compute_features

LOGMEL = {"n_fft": 1024, "hop_length": 320, "n_mels": 64, "top_db": 80}


def _outputs(repo: Path) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, list[str]]:
    manifest = pd.read_csv(repo / "data/ingest/manifest.csv")
    folds = pd.read_csv(repo / "data/folds/folds.csv")
    features = zarr.open_array(repo / "data/features/logmel.zarr", mode="r")[:]
    classes = json.loads((repo / "data/ingest/classes.json").read_text())
    return manifest, folds, features, classes


def test_every_clip_in_exactly_one_split_and_no_group_crosses_folds(precomputed_repo: Path) -> None:
    manifest, folds, _, _ = _outputs(precomputed_repo)
    train = manifest[manifest["split"] == "train"]
    assert sorted(folds["clip_id"]) == sorted(train["clip_id"])
    assert folds.groupby("group")["fold"].nunique().max() == 1
    assert set(folds["fold"]) == {0, 1, 2}
    seen = []
    for split in ["fold0", "fold1", "fold2", "test"]:
        for _, _, ids in batch_pipeline(shard_urls(precomputed_repo / "data/shards", [split]), 4, shuffle=False):
            seen += ids
    assert sorted(seen) == sorted(manifest["clip_id"])


def test_shards_round_trip_equals_zarr_features_as_float16(precomputed_repo: Path) -> None:
    manifest, _, features, classes = _outputs(precomputed_repo)
    row_of = {cid: i for i, cid in enumerate(manifest["clip_id"])}
    urls = shard_urls(precomputed_repo / "data/shards", ["fold0", "fold1", "fold2", "test"])
    checked = 0
    for x, y, ids in batch_loader(batch_pipeline(urls, 5, shuffle=True, seed=3), workers=2):
        for xi, yi, cid in zip(x.numpy(), y.tolist(), ids):
            row = row_of[cid]
            np.testing.assert_array_equal(xi, features[row].astype(np.float16))
            assert classes[yi] == manifest.loc[row, "label"]
            checked += 1
    assert checked == len(manifest)


def test_shuffled_reading_is_seeded(precomputed_repo: Path) -> None:
    urls = shard_urls(precomputed_repo / "data/shards", ["fold0", "fold1"])

    def order(seed: int, epoch: int) -> list[str]:
        return [i for _, _, ids in batch_pipeline(urls, 4, True, seed, epoch) for i in ids]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)


def test_stats_equal_direct_float64_computation(precomputed_repo: Path) -> None:
    manifest, folds, features, _ = _outputs(precomputed_repo)
    stats = json.loads((precomputed_repo / "data/stats/stats.json").read_text())
    fold_of = manifest[["clip_id"]].merge(folds, on="clip_id", how="left")["fold"].fillna(-1).to_numpy()
    for name, rows in [("fold0", np.isin(fold_of, [1, 2])), ("full", fold_of >= 0)]:
        values = features[rows].astype(np.float64)
        assert stats[name]["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert stats[name]["std"] == pytest.approx(values.std(), rel=1e-9)
        np.testing.assert_allclose(stats[name]["mean_per_bin"], values.mean(axis=(0, 2)), atol=1e-5)
        np.testing.assert_allclose(stats[name]["std_per_bin"], values.std(axis=(0, 2)), atol=1e-5)
    assert stats["features"]["n_mels"] == features.shape[1]


def _bad_files(root: Path) -> dict[str, str]:
    """Write one file per kind of bad input; return {file name: expected reason prefix}."""
    good = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
    sf.write(root / "truncated.wav", good, 16000, subtype="PCM_16")
    data = (root / "truncated.wav").read_bytes()
    (root / "truncated.wav").write_bytes(data[:30])
    write_cut_short(root / "cut_short.wav", good)
    (root / "empty.wav").write_bytes(b"")
    (root / "text.wav").write_text("this is not audio\n")
    sf.write(root / "zeros.wav", np.zeros(16000, np.float32), 16000)
    nan = good.copy()
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    for i in range(12):
        sf.write(root / f"good{i}.wav", good * (0.1 + i / 20), 16000)
    return {"truncated.wav": "undecodable", "cut_short.wav": "truncated", "empty.wav": "empty",
            "text.wav": "undecodable", "zeros.wav": "silent", "nan.wav": "non-finite"}


def write_cut_short(path: Path, samples: np.ndarray, rate: int = 16000, keep: float = 1 / 3) -> None:
    """A wav whose header still claims all of `samples` but whose file holds only the first `keep` of them."""
    sf.write(path, samples, rate, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _clips(root: Path) -> pd.DataFrame:
    paths = sorted(str(p) for p in root.glob("*.wav"))
    return pd.DataFrame({"path": paths, "label": "cough", "group": paths, "split": "train", "source": "folder"})


def test_bad_audio_is_quarantined_with_its_reason_and_nothing_is_lost(tmp_path: Path) -> None:
    expected = _bad_files(tmp_path)
    clips = _clips(tmp_path)
    out = tmp_path / "out"
    summary = ingest(clips, pd.DataFrame(columns=["path", "reason"]), tmp_path, out, 32000, 1.0, 0.5, 1)
    report = pd.read_csv(out / "quarantine.csv")
    reasons = {Path(p).name: r for p, r in zip(report["path"], report["reason"])}
    assert set(reasons) == set(expected)
    for name, prefix in expected.items():
        assert reasons[name].startswith(prefix), (name, reasons[name])
    manifest = pd.read_csv(out / "manifest.csv")
    assert len(manifest) + len(report) == len(clips) == summary["listed"]
    waves = load_clips(list(manifest["file"]), 32000, 32000)  # what the stages after ingest decode
    assert waves.shape == (12, 32000) and np.isfinite(waves).all() and (np.abs(waves).max(axis=1) > 0).all()
    assert sorted(p.name for p in out.iterdir()) == ["classes.json", "manifest.csv", "quarantine.csv", "summary.json"]


def test_waveforms_keep_16_bits_below_each_clips_own_peak() -> None:
    """A quiet clip (peak -60 dBFS) keeps its shape: rounding is relative to its peak, not to full scale."""
    t = np.arange(16000) / 16000
    clips = np.stack([0.9 * np.sin(2 * np.pi * 440 * t), 0.001 * np.sin(2 * np.pi * 440 * t), np.zeros(16000)])
    pcm, peak = to_pcm16(clips)
    assert pcm.dtype == np.int16 and np.abs(pcm[:2]).max(axis=1).tolist() == [32767, 32767] and peak[2] == 0
    error = np.abs(from_pcm16(pcm, peak) - clips).max(axis=1)
    assert (error <= peak / 32767).all() and error[1] < 1e-7


def test_too_many_bad_clips_fail_with_a_clear_message(tmp_path: Path) -> None:
    _bad_files(tmp_path)
    with pytest.raises(IngestError, match=r"6 of 18 clips .*ingest\.max_quarantine_fraction=0\.1"):
        ingest(_clips(tmp_path), pd.DataFrame(columns=["path", "reason"]), tmp_path, tmp_path / "o", 32000, 1.0, 0.1, 1)


def test_missing_listed_file_fails_naming_it(tmp_path: Path) -> None:
    _bad_files(tmp_path)
    clips = pd.concat([_clips(tmp_path), pd.DataFrame([{
        "path": str(tmp_path / "gone.wav"), "label": "cough", "group": "g", "split": "train", "source": "folder"}])])
    with pytest.raises(IngestError, match="gone.wav"):
        ingest(clips, pd.DataFrame(columns=["path", "reason"]), tmp_path, tmp_path / "o", 32000, 1.0, 0.5, 1)


def test_a_kept_file_gone_after_ingest_stops_features_naming_it(tmp_path: Path) -> None:
    """Features decode the kept files again (ingest stores no waveforms): a file removed since is one error naming it."""
    _bad_files(tmp_path)
    ingest(_clips(tmp_path), pd.DataFrame(columns=["path", "reason"]), tmp_path, tmp_path / "o", 32000, 1.0, 0.5, 1)
    files = list(pd.read_csv(tmp_path / "o" / "manifest.csv")["file"])
    Path(files[3]).unlink()
    with pytest.raises(AudioError, match=rf"^{re.escape(files[3])}: .*rerun `dvc repro`"):
        compute_features(files, 32000, 1.0, tmp_path / "logmel.zarr", "logmel", LOGMEL, 2)


def test_nonspeech7k_layout_ingests_with_leaks_reported(tmp_path: Path) -> None:
    root = make_nonspeech7k_replica(tmp_path / "ns7k")
    clips, excluded = list_clips("nonspeech7k", root, 0.2, 0)
    assert len(excluded) > 0
    summary = ingest(clips, excluded, root, tmp_path / "out", 32000, 1.0, 0.1, 2)
    report = pd.read_csv(tmp_path / "out" / "quarantine.csv")
    assert (report["reason"].str.contains("leak")).sum() == len(excluded)
    assert summary["kept"] + len(report) == summary["listed"]
    assert json.loads((tmp_path / "out" / "classes.json").read_text()) == [
        "breath", "cough", "crying", "laugh", "screaming", "sneeze", "yawn"]


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("AIFF", "PCM_24"), ("W64", "PCM_16")])
def test_a_file_holding_less_than_its_header_claims_is_truncated(tmp_path: Path, fmt: str, subtype: str) -> None:
    samples = np.sin(np.linspace(0, 3000, int(3.12 * 16000))).astype(np.float32)
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, samples, 16000, format=fmt, subtype=subtype)
    assert decode_mono(path).truncation == ""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    decoded = decode_mono(path)
    assert decoded.seconds == pytest.approx(1.04, abs=0.02)
    assert re.fullmatch(r"truncated: the header claims 3\.1\d s but the file holds 1\.0\d s", decoded.truncation)


def test_an_unknown_data_size_from_a_streaming_writer_is_not_truncation(tmp_path: Path) -> None:
    path = tmp_path / "stream.wav"
    sf.write(path, np.sin(np.linspace(0, 300, 16000)).astype(np.float32), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # the data chunk's size field
    path.write_bytes(bytes(data))
    assert decode_mono(path).truncation == "" and decode_mono(path).frames == 16000


def test_truncated_clip_is_quarantined_or_kept_with_a_warning(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    good = np.sin(np.linspace(0, 3000, int(3.12 * 16000))).astype(np.float32)
    for i in range(9):
        sf.write(tmp_path / f"good{i}.wav", good * (0.1 + i / 20), 16000)
    write_cut_short(tmp_path / "cut_short.wav", good)
    clips, none = _clips(tmp_path), pd.DataFrame(columns=["path", "reason"])

    ingest(clips, none, tmp_path, tmp_path / "strict", 32000, 1.0, 0.2, 1, "quarantine")
    report = pd.read_csv(tmp_path / "strict" / "quarantine.csv")
    assert list(map(os.path.basename, report["path"])) == ["cut_short.wav"]
    assert report["reason"][0].startswith("truncated: the header claims 3.12 s but the file holds 1.04 s")

    summary = ingest(clips, none, tmp_path, tmp_path / "lenient", 32000, 1.0, 0.2, 1, "warn")
    manifest = pd.read_csv(tmp_path / "lenient" / "manifest.csv")
    assert summary["kept"] == 10 and summary["kept_truncated"] == 1
    assert manifest.loc[manifest["path"] == "cut_short.wav", "orig_seconds"].item() == pytest.approx(1.04, abs=0.01)
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {tmp_path / 'cut_short.wav'}: truncated: the header claims 3.12 s but the file "
                        "holds 1.04 s; kept (ingest.truncated=warn)"]
    with pytest.raises(ValueError, match="ingest.truncated must be one of quarantine, warn, got 'keep'"):
        ingest(clips, none, tmp_path, tmp_path / "bad", 32000, 1.0, 0.2, 1, "keep")


def test_ingest_prints_the_classes_with_their_clip_counts(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for label, n in (("cough", 3), ("laugh", 2), ("misc", 1)):
        for i in range(n):
            sf.write(tmp_path / f"{label}{i}.wav", np.sin(np.linspace(0, 500 + i, 8000)).astype(np.float32), 8000)
    paths = sorted(str(p) for p in tmp_path.glob("*.wav"))
    clips = pd.DataFrame({"path": paths, "label": [Path(p).stem.rstrip("0123456789") for p in paths], "group": paths,
                          "split": ["test" if p.endswith("0.wav") else "train" for p in paths], "source": "folder"})
    ingest(clips, pd.DataFrame(columns=["path", "reason"]), tmp_path, tmp_path / "out", 16000, 0.5, 0.0, 1)
    out = capsys.readouterr().out
    assert "== classes (3: clips per split) ==" in out
    for line in ("cough  2 train, 1 test", "laugh  1 train, 1 test", "misc   0 train, 1 test"):
        assert line in out, out
