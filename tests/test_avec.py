"""AVEC2013/2014 indexing on small fake trees (section 4.1): layouts, labels, unmatched files, errors."""
from pathlib import Path

import pandas as pd
import pytest

from mddr_utils.data.avec import (
    INDEX_COLUMNS, AvecIndexWarning, index_avec2013, index_avec2014, read_label, subject_overlap,
)


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def avec2014_tree(root: Path, recordings: dict, labels_beside_videos: bool = False,
                  audio: str | None = None) -> None:
    """recordings: {split: {recording id: label}}; the official layout unless labels_beside_videos."""
    for split, labelled in recordings.items():
        for recording, label in labelled.items():
            for task in ("Freeform", "Northwind"):
                touch(root / split / task / f"{recording}_{task}_video.mp4")
                if audio:
                    touch(root / "Audio" / split / task / f"{recording}_{task}_audio.{audio}")
            folder = root / split / "Freeform" if labels_beside_videos else root / "Labels" / split
            touch(folder / f"{recording}_Depression.csv", f"{label}\n")


def test_official_layout_gives_one_row_per_video(tmp_path):
    avec2014_tree(tmp_path, {"Training": {"203_1": 10, "205_2": 33}, "Development": {"203_2": 12},
                             "Testing": {"206_1": 0}})
    index = index_avec2014(tmp_path)
    assert list(index.columns) == list(INDEX_COLUMNS)
    assert len(index) == 8
    assert index["split"].tolist()[:4] == ["Training"] * 4
    row = index.set_index("video_id").loc["205_2_Northwind"]
    assert (row["subject"], row["session"], row["task"]) == ("205", 2, "Northwind")
    assert (row["label"], row["recording"]) == (33, "205_2")
    assert row["audio_path"] == ""
    assert Path(row["video_path"]).is_absolute() and Path(row["video_path"]).name == "205_2_Northwind_video.mp4"
    assert index["label"].dtype == "int64" and index["session"].dtype == "int64"
    assert (index.groupby("recording")["label"].nunique() == 1).all()
    assert index.attrs["videos_without_label"] == [] and index.attrs["labels_without_video"] == []


def test_layout_variants_lowercase_folders_labels_beside_videos_and_audio(tmp_path):
    avec2014_tree(tmp_path, {"training": {"203_1": 10}, "DEV": {"204_1": 20}, "test": {"205_1": 30}},
                  labels_beside_videos=True, audio="wav")
    touch(tmp_path / "Audio" / "training" / "Freeform" / "203_1_Freeform_audio.mp4")
    touch(tmp_path / "training" / "Freeform" / "._203_1_Freeform_video.mp4")
    index = index_avec2014(tmp_path)
    assert sorted(set(index["split"])) == ["Development", "Testing", "Training"]
    assert len(index) == 6
    assert all(path.endswith("_audio.wav") for path in index["audio_path"])


def test_task_case_in_file_names_is_normalised(tmp_path):
    touch(tmp_path / "Training" / "203_1_FREEFORM_video.mp4")
    touch(tmp_path / "Training" / "203_1_northwind_video.MP4")
    touch(tmp_path / "Training" / "203_1_Depression.csv", "7")
    assert sorted(index_avec2014(tmp_path)["video_id"]) == ["203_1_Freeform", "203_1_Northwind"]


def test_missing_labels_and_orphan_labels_are_reported(tmp_path):
    avec2014_tree(tmp_path, {"Training": {"203_1": 10, "204_1": 11}})
    (tmp_path / "Labels" / "Training" / "204_1_Depression.csv").unlink()
    touch(tmp_path / "Labels" / "Training" / "299_1_Depression.csv", "5")
    with pytest.warns(AvecIndexWarning, match="204_1_Freeform_video.mp4") as caught:
        index = index_avec2014(tmp_path)
    message = str(caught[0].message)
    assert "299_1_Depression.csv" in message and "204_1_Northwind_video.mp4" in message
    assert sorted(index["recording"].unique()) == ["203_1"]
    assert [Path(path).name for path in index.attrs["videos_without_label"]] == [
        "204_1_Freeform_video.mp4", "204_1_Northwind_video.mp4"]
    assert [Path(path).name for path in index.attrs["labels_without_video"]] == ["299_1_Depression.csv"]
    with pytest.warns(AvecIndexWarning):
        kept = index_avec2014(tmp_path, keep_unlabelled=True)
    assert len(kept) == 4 and kept["label"].dtype == "Int64" and kept["label"].isna().sum() == 2


@pytest.mark.parametrize("content, problem", [
    ("", "empty"), ("  \n", "empty"), ("64", "outside the BDI-II range"), ("-1", "outside the BDI-II range"),
    ("12.5", "not an integer"), ("abc", "not an integer"), ("12,13", "holds 2 values"),
])
def test_bad_label_files_raise_naming_the_file(tmp_path, content, problem):
    avec2014_tree(tmp_path, {"Training": {"203_1": 10}})
    bad = touch(tmp_path / "Labels" / "Training" / "203_1_Depression.csv", content)
    with pytest.raises(ValueError, match=problem) as error:
        index_avec2014(tmp_path)
    assert str(bad) in str(error.value)


def test_label_reader_accepts_the_formats_seen_in_copies(tmp_path):
    assert read_label(touch(tmp_path / "a.csv", "\ufeff23\r\n")) == 23
    assert read_label(touch(tmp_path / "b.csv", "23.0")) == 23
    assert read_label(touch(tmp_path / "c.csv", "0")) == 0 and read_label(touch(tmp_path / "d.csv", "63")) == 63


def test_duplicate_video_ids_raise_naming_both_paths(tmp_path):
    avec2014_tree(tmp_path, {"Training": {"203_1": 10}})
    copy = touch(tmp_path / "backup" / "Training" / "203_1_Freeform_video.mp4")
    with pytest.raises(ValueError, match="203_1_Freeform appears twice") as error:
        index_avec2014(tmp_path)
    original = tmp_path / "Training" / "Freeform" / "203_1_Freeform_video.mp4"
    assert str(copy) in str(error.value) and str(original) in str(error.value)


def test_label_copies_must_agree(tmp_path):
    avec2014_tree(tmp_path, {"Training": {"203_1": 10}})
    touch(tmp_path / "Training" / "Freeform" / "203_1_Depression.csv", "10")
    assert set(index_avec2014(tmp_path)["label"]) == {10}
    touch(tmp_path / "Training" / "Freeform" / "203_1_Depression.csv", "11")
    with pytest.raises(ValueError, match="disagree"):
        index_avec2014(tmp_path)


def test_two_audio_files_of_one_kind_raise(tmp_path):
    avec2014_tree(tmp_path, {"Training": {"203_1": 10}}, audio="wav")
    touch(tmp_path / "more" / "Training" / "203_1_Freeform_audio.wav")
    with pytest.raises(ValueError, match="two audio files"):
        index_avec2014(tmp_path)


def test_missing_root_empty_root_and_video_outside_splits(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        index_avec2014(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="holds no AVEC2014 videos"):
        index_avec2014(tmp_path)
    stray = touch(tmp_path / "misc" / "203_1_Freeform_video.mp4")
    touch(tmp_path / "203_1_Depression.csv", "4")
    with pytest.raises(ValueError, match="cannot tell the split") as error:
        index_avec2014(tmp_path)
    assert str(stray) in str(error.value)


def test_avec2013_layout(tmp_path):
    for split, recording, label in [("Training", "203_1", 3), ("Development", "203_2", 9), ("Testing", "204_1", 40)]:
        touch(tmp_path / split / f"{recording}_cut_combined.mp4")
        touch(tmp_path / "DepressionLabels" / split / f"{recording}_Depression.csv", str(label))
    touch(tmp_path / "Training" / "203_1_cut_combined.wav")
    index = index_avec2013(tmp_path)
    assert index["video_id"].tolist() == ["203_1_Combined", "203_2_Combined", "204_1_Combined"]
    assert set(index["task"]) == {"Combined"}
    assert index["label"].tolist() == [3, 9, 40]
    assert index["audio_path"].tolist()[0].endswith("203_1_cut_combined.wav") and index["audio_path"].tolist()[1] == ""
    with pytest.raises(ValueError, match="holds no AVEC2013 videos"):
        index_avec2013(tmp_path / "DepressionLabels")


def test_subject_overlap_counts_people_shared_by_splits(tmp_path):
    avec2014_tree(tmp_path, {"Training": {"203_1": 1, "204_1": 2, "205_1": 3},
                             "Development": {"203_2": 4, "204_2": 5, "206_1": 6},
                             "Testing": {"203_3": 7, "207_1": 8}})
    overlap = subject_overlap(index_avec2014(tmp_path)).set_index(["split_a", "split_b"])
    assert overlap.loc[("Training", "Development"), "shared"] == 2
    assert overlap.loc[("Training", "Development"), "shared_subjects"] == ["203", "204"]
    assert overlap.loc[("Training", "Testing"), "shared"] == 1
    assert overlap.loc[("Development", "Testing"), "shared"] == 1
    assert overlap.loc[("Training", "Testing"), ["subjects_a", "subjects_b"]].tolist() == [3, 2]
    assert subject_overlap(pd.DataFrame({"split": ["Training"], "subject": ["1"]})).empty


def test_linked_split_folders_are_followed(tmp_path):
    elsewhere = tmp_path / "other_disk"
    avec2014_tree(elsewhere, {"Testing": {"206_1": 22}})
    root = tmp_path / "avec"
    avec2014_tree(root, {"Training": {"203_1": 10}})
    (root / "Testing").symlink_to(elsewhere / "Testing", target_is_directory=True)
    (root / "Labels" / "Testing").symlink_to(elsewhere / "Labels" / "Testing", target_is_directory=True)
    index = index_avec2014(root)
    assert sorted(set(index["split"])) == ["Testing", "Training"]
    assert index.set_index("video_id").loc["206_1_Freeform", "label"] == 22


def test_a_recording_whose_videos_sit_in_two_splits_is_refused_naming_them(tmp_path):
    avec2014_tree(tmp_path, {"Training": {"203_1": 10}, "Testing": {"204_1": 20}})
    moved = tmp_path / "Testing" / "Northwind" / "203_1_Northwind_video.mp4"
    (tmp_path / "Training" / "Northwind" / "203_1_Northwind_video.mp4").rename(moved)
    with pytest.raises(ValueError, match="recording 203_1 has videos in several splits") as error:
        index_avec2014(tmp_path)
    assert str(moved) in str(error.value) and "203_1_Freeform_video.mp4 is in Training" in str(error.value)
