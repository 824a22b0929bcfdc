"""Tests of the data-source layer: demo synthesis, folder and CSV listing, Nonspeech7k quirks, test carving."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from nonspeech7k_replica import CLASSES, LEAK_CLASS, NON_ASCII_SOURCE, make_nonspeech7k_replica

from nonspeech.data.folds import assign_folds
from nonspeech.data.sources.demo import SAMPLE_RATES, generate_demo
from nonspeech.data.sources.listing import CLIP_COLUMNS, EXCLUDED_COLUMNS, class_names, list_clips


def file_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root by its relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def touch(root: Path, *names: str) -> None:
    """Create empty files (the loaders list files, they never decode them)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()


def assert_well_formed(clips: pd.DataFrame, excluded: pd.DataFrame) -> None:
    """Columns, split values, sort order and no group on both sides."""
    assert list(clips.columns) == CLIP_COLUMNS
    assert list(excluded.columns) == EXCLUDED_COLUMNS
    assert set(clips["split"]) == {"train", "test"}
    assert clips.equals(clips.sort_values(["split", "path"]).reset_index(drop=True))
    by_split = clips.groupby("group")["split"].nunique()
    assert (by_split == 1).all(), f"groups in both splits: {list(by_split[by_split > 1].index)}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default demo set (12 clips per class, seed 7)."""
    root = tmp_path_factory.mktemp("demo")
    generate_demo(root, 12, 7)
    return root


def test_demo_is_byte_identical_for_a_seed(tmp_path: Path) -> None:
    generate_demo(tmp_path / "a", 3, 1)
    time.sleep(1.0)  # libsndfile stamps float WAVs with the time in seconds: make sure the clock has moved
    generate_demo(tmp_path / "b", 3, 1)
    generate_demo(tmp_path / "c", 3, 2)
    first, second = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert first == second
    assert first != file_bytes(tmp_path / "c")


def test_demo_covers_every_ingest_path(demo: Path) -> None:
    table = pd.read_csv(demo / "labels.csv")
    assert list(table.columns) == ["path", "label", "group", "split"]
    infos = [sf.info(str(demo / path)) for path in table["path"]]
    assert {info.samplerate for info in infos} == set(SAMPLE_RATES)
    assert {info.channels for info in infos} == {1, 2}
    subtypes = pd.Series([info.subtype for info in infos]).value_counts()
    assert set(subtypes.index) == {"PCM_16", "PCM_24", "FLOAT"}
    assert subtypes["PCM_16"] > len(infos) / 2
    durations = [info.duration for info in infos]
    assert 0.5 <= min(durations) < 1.0 and 5.0 < max(durations) <= 6.0
    copies = table.groupby("group").size()
    assert copies.between(2, 3).all()  # the source clip plus one or two augmented copies
    assert sorted(table["label"].unique()) == sorted(CLASSES)
    test_share = table.drop_duplicates("group")["split"].eq("test").mean()
    assert 0.1 <= test_share <= 0.3
    assert 150 <= len(table) <= 260


def test_demo_lists_through_the_csv_loader(demo: Path) -> None:
    clips, excluded = list_clips("demo", demo, 0.2, 0)
    assert_well_formed(clips, excluded)
    assert excluded.empty
    assert class_names(clips) == sorted(CLASSES)
    assert len(clips) == len(pd.read_csv(demo / "labels.csv"))
    assert all(os.path.isfile(path) for path in clips["path"])


def test_class_folders_without_splits_get_a_carved_test_split(tmp_path: Path) -> None:
    for label, ext in (("cough", "wav"), ("laugh", "FLAC"), ("sneeze", "ogg")):
        touch(tmp_path, *(f"{label}/{i}.{ext}" for i in range(5)))
    touch(tmp_path, "cough/notes.txt", ".hidden/x.wav", "laugh/deeper/extra.mp3")
    clips, excluded = list_clips("folder", tmp_path, 0.2, 0)
    assert_well_formed(clips, excluded)
    assert len(clips) == 16 and class_names(clips) == ["cough", "laugh", "sneeze"]
    assert (clips["group"] == clips["path"]).all()
    assert clips.groupby("label")["split"].apply(lambda s: (s == "test").sum()).ge(1).all()


def test_class_folders_under_train_and_test_keep_their_split(tmp_path: Path) -> None:
    touch(tmp_path, "train/cough/a.wav", "train/cough/b.wav", "train/yawn/c.aiff")
    touch(tmp_path, "test/cough/d.wav", "test/yawn/e.aif")
    clips, _ = list_clips("folder", tmp_path, 0.2, 0)
    assert dict(zip(map(os.path.basename, clips["path"]), clips["split"])) == {
        "a.wav": "train", "b.wav": "train", "c.aiff": "train", "d.wav": "test", "e.aif": "test"
    }
    assert dict(zip(map(os.path.basename, clips["path"]), clips["label"]))["e.aif"] == "yawn"


def test_csv_with_group_and_split_is_taken_as_given(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "abs.wav"
    pd.DataFrame(
        {
            "path": ["clips/a.wav", "clips/b.wav", " clips/c.wav ", str(absolute), "missing.wav"],
            "label": ["cough", "cough", "laugh", "laugh", "laugh"],
            "group": ["g1", "g1", "g2", "g3", ""],
            "split": ["train", "train", "TEST", "test", "train"],
        }
    ).to_csv(tmp_path / "labels.csv", index=False)
    for root in (tmp_path, tmp_path / "labels.csv"):
        clips, excluded = list_clips("folder", root, 0.2, 0)
        assert excluded.empty
        rows = {os.path.basename(p): (g, s) for p, g, s in zip(clips["path"], clips["group"], clips["split"])}
        missing = os.path.normpath(tmp_path / "missing.wav")
        assert rows == {"a.wav": ("g1", "train"), "b.wav": ("g1", "train"), "c.wav": ("g2", "test"),
                        "abs.wav": ("g3", "test"), "missing.wav": (missing, "train")}
        assert set(clips["path"]) >= {os.path.normpath(tmp_path / "clips/a.wav"), str(absolute), missing}


def test_csv_without_group_or_split_is_carved_with_each_file_its_own_group(tmp_path: Path) -> None:
    names = [f"sub/{label}{i}.wav" for label in ("breath", "yawn") for i in range(10)]
    csv = tmp_path / "meta" / "list.csv"
    csv.parent.mkdir()
    pd.DataFrame({"path": names, "label": [n[4:-5] for n in names]}).to_csv(csv, index=False)
    clips, _ = list_clips("folder", csv, 0.2, 3)
    assert (clips["group"] == clips["path"]).all()
    assert clips["path"].str.startswith(str(tmp_path / "meta" / "sub")).all()
    assert clips.groupby("label")["split"].apply(lambda s: (s == "test").sum()).to_dict() == {"breath": 2, "yawn": 2}


def test_carved_split_is_grouped_stratified_and_seeded(tmp_path: Path) -> None:
    rows = [
        {"path": f"{label}/g{group}_{copy}.wav", "label": label, "group": f"{label}-{group}"}
        for label, n_groups in (("cough", 10), ("laugh", 20), ("yawn", 30))
        for group in range(n_groups)
        for copy in range(3)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    clips, excluded = list_clips("folder", tmp_path, 0.2, 0)
    assert_well_formed(clips, excluded)
    test_groups = clips[clips["split"] == "test"].groupby("label")["group"].nunique().to_dict()
    assert test_groups == {"cough": 2, "laugh": 4, "yawn": 6}
    assert clips.equals(list_clips("folder", tmp_path, 0.2, 0)[0])
    assert not clips.equals(list_clips("folder", tmp_path, 0.2, 1)[0])
    three_folds = list_clips("folder", tmp_path, 0.3, 0)[0]  # round(1 / 0.3) = 3 folds: a third of the groups
    assert three_folds.loc[three_folds["split"] == "test", "group"].nunique() == 20


def test_nonspeech7k_replica_parses_with_every_quirk_handled(tmp_path: Path) -> None:
    root = make_nonspeech7k_replica(tmp_path / "nonspeech7k", clips_per_class=4)
    clips, excluded = list_clips("nonspeech7k", root, 0.2, 0)
    assert_well_formed(clips, excluded)
    assert class_names(clips) == sorted(CLASSES)  # "yawm" became yawn, " Breath " became breath
    assert all(os.path.isfile(path) for path in clips["path"])  # names stripped, train/train and test/test found
    assert clips.loc[clips["split"] == "train", "path"].str.contains(f"train{os.sep}train{os.sep}").all()
    assert clips.loc[clips["split"] == "test", "path"].str.contains(f"test{os.sep}test{os.sep}").all()
    assert f"{NON_ASCII_SOURCE}:1001" in set(clips["group"])  # latin-1 CSV decoded
    assert (clips[clips["split"] == "train"].groupby("group").size() == 2).all()  # original + augmented copy
    leak_id = 1000 * (CLASSES.index(LEAK_CLASS) + 1)
    assert sorted(map(os.path.basename, excluded["path"])) == [f"{leak_id}-0.wav", f"{leak_id}-1.wav"]
    assert excluded["reason"].str.contains("leak").all()
    assert clips.loc[clips["group"] == f"freesound:{leak_id}", "split"].tolist() == ["test"]
    assert len(clips) == 7 * 4 * 2 - 2 + 8


def test_nonspeech7k_unknown_class_names_the_csv_and_the_value(tmp_path: Path) -> None:
    root = make_nonspeech7k_replica(tmp_path, clips_per_class=2)
    csv = root / "metadata of test set.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("yawm", "snore"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"metadata of test set\.csv.*'snore'"):
        list_clips("nonspeech7k", root, 0.2, 0)


def test_nonspeech7k_missing_metadata_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path, "train/train/a.wav")
    with pytest.raises(FileNotFoundError, match="metadata of train set"):
        list_clips("nonspeech7k", tmp_path, 0.2, 0)


def test_empty_inputs_are_errors_naming_the_root(tmp_path: Path) -> None:
    (tmp_path / "empty" / "cough").mkdir(parents=True)
    with pytest.raises(ValueError, match=str(tmp_path / "empty")):
        list_clips("folder", tmp_path / "empty", 0.2, 0)
    (tmp_path / "headers.csv").write_text("path,label,group,split\n")
    with pytest.raises(ValueError, match="headers.csv"):
        list_clips("folder", tmp_path / "headers.csv", 0.2, 0)
    for name, text in (("blank.csv", ""), ("commas.csv", "path,label\n , \n,\n")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=name):
            list_clips("folder", tmp_path / name, 0.2, 0)


def test_bad_csv_contents_are_errors(tmp_path: Path) -> None:
    cases = {
        "nolabel.csv": ("path\na.wav\n", "missing column"),
        "badsplit.csv": ("path,label,split\na.wav,cough,dev\n", "dev"),
        "partial.csv": ("path,label,split\na.wav,cough,test\nb.wav,cough,\n", "lack a split"),
        "blankcell.csv": ("path,label\na.wav,\n", "empty path or label"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            list_clips("folder", tmp_path / name, 0.2, 0)


def test_unknown_source_names_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="demo, folder, nonspeech7k"):
        list_clips("esc50", tmp_path, 0.2, 0)


def test_unexpected_class_folder_is_rejected_when_data_classes_is_given(tmp_path: Path) -> None:
    for label in ("cough", "laugh", "misc"):
        touch(tmp_path, *(f"{label}/{i}.wav" for i in range(5)))
    clips, _ = list_clips("folder", tmp_path, 0.2, 0)
    assert class_names(clips) == ["cough", "laugh", "misc"]  # without data.classes every folder is a class
    with pytest.raises(ValueError, match=rf"\['misc'\] are not in data.classes \['cough', 'laugh'\] "
                                         rf"\(e\.g\. misc: {tmp_path / 'misc' / '0.wav'}\)"):
        list_clips("folder", tmp_path, 0.2, 0, ["cough", "laugh"])
    with pytest.raises(ValueError, match=r"data.classes lists \['yawn'\], which have no files"):
        list_clips("folder", tmp_path, 0.2, 0, ["cough", "laugh", "misc", "yawn"])
    assert list_clips("folder", tmp_path, 0.2, 0, ["misc", "laugh", "cough"])[0].equals(clips)


def test_thin_class_is_one_clear_line_naming_the_test_hold_out_not_a_sklearn_warning(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    touch(tmp_path, *(f"cough/{i}.wav" for i in range(10)), "misc/a.wav", "misc/b.wav")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's UserWarning would fail the test
        list_clips("folder", tmp_path, 0.2, 0)
    assert capfd.readouterr().err.splitlines() == [
        "warning: class misc (2 groups) has fewer source groups than the 5 needed for holding out "
        "data.test_fraction=0.2 of each class, so some of the 5 splits get none of it"
    ]


def test_thin_class_in_cross_validation_names_cv_folds(capfd: pytest.CaptureFixture) -> None:
    rows = [("cough", f"c{i}") for i in range(6)] + [("misc", "m0"), ("misc", "m1"), ("yawn", "y0")]
    manifest = pd.DataFrame({"clip_id": [g for _, g in rows], "label": [label for label, _ in rows],
                             "group": [g for _, g in rows], "split": "train"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        folds = assign_folds(manifest, 3, 0)
    assert sorted(folds["fold"].unique()) == [0, 1, 2]
    assert capfd.readouterr().err.splitlines() == [
        "warning: class misc (2 groups), yawn (1 group) have fewer source groups than the 3 needed for "
        "cv.folds=3 cross-validation folds, so some of the 3 splits get none of them"
    ]
