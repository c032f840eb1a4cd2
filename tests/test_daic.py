"""DAIC-WOZ and E-DAIC on synthetic trees in the distributed layouts: indexes, label files, the session
streams (12 head columns, visual rows, timelines), participant speech and the cross-corpus overlap refusal;
and what the synthetic trees hold (rendered sessions, the interview's turns, the renderer's action units)."""
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import wavfile

from mddr_utils.data.avec import INDEX_COLUMNS
from mddr_utils.data.daic import (
    DAIC_INDEX_COLUMNS, DAICWOZ, DAICWOZ_AU_COLUMNS, DAICWOZ_VISUAL_DIM, EDAIC, DaicIndexWarning,
    ParticipantOverlapError, head_columns_as_written, index_daicwoz, index_edaic, load_daicwoz_session,
    load_edaic_session, load_session, participant_intervals, participant_speech_mask, read_daicwoz_transcript,
    read_edaic_transcript, read_resnet_mat, refuse_participant_overlap, speech_mask,
)
from mddr_utils.data.daic_sessions import (
    FAILED_FRAME_PERIOD, SESSION_FRAME_SIZE, interview_turns, renderer_label,
)
from mddr_utils.data.daic_synthetic import (
    ABSENT_DAICWOZ_IDS, CLNF_AUS_HEADER, CLNF_GAZE_HEADER, CLNF_POSE_HEADER, SYNTHETIC_MANIFEST, SYNTHETIC_SIZES,
    make_synthetic_corpus, synthetic_participants, write_clnf_file, write_daicwoz_transcript, write_daicwoz_tree,
    write_edaic_tree, write_label_file, write_resnet_mat, write_wav,
)
from mddr_utils.data.demo_cohort import write_demo_video

# The smoke profile's participants, and 318 (a transcript out of sync) in DAIC-WOZ: the sessions are rendered
# once per test run (daic_sessions keeps them), and the tree load_cohort writes for the smoke profile reuses them.
EDAIC_SESSIONS = {"Training": {300: 18, 301: 2}, "Development": {302: 9, 303: 17}, "Testing": {600: 12, 601: 11}}
DAICWOZ_SESSIONS = {"Training": {300: 18, 301: 2, 318: 12}, "Development": {302: 9, 303: 17},
                    "Testing": {304: 12, 305: 11}}
SECONDS = SYNTHETIC_SIZES["smoke"]["seconds"]


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)


def expected_mask(intervals, num_frames, rate=50.0):
    """Frame k is speech when its centre (k + 1/2) / rate lies in an interval, written out frame by frame."""
    return np.array([any(start <= (k + 0.5) / rate < stop for start, stop in intervals) for k in range(num_frames)])


def write_small_daicwoz_session(root: Path, participant: int) -> None:
    """A DAIC-WOZ session folder of three frames, written from small arrays: what the index needs, no rendering."""
    folder = root / f"{participant}_P"
    frames = np.column_stack([np.arange(1, 4), np.arange(3) / 30, np.full(3, 0.95), np.ones(3)])
    for header, name in ((CLNF_POSE_HEADER, "pose"), (CLNF_GAZE_HEADER, "gaze"), (CLNF_AUS_HEADER, "AUs")):
        write_clnf_file(folder / f"{participant}_CLNF_{name}.txt", header,
                        np.column_stack([frames, np.zeros((3, len(header) - 4))]))
    write_wav(folder / f"{participant}_AUDIO.wav", np.zeros(1600))
    write_daicwoz_transcript(folder / f"{participant}_TRANSCRIPT.csv", [(0.02, 0.08, "Ellie", "hi")])


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Both trees, written once; E-DAIC first, so a participant of both is rendered once, with its ResNet rows."""
    made = {}
    for name, write, sessions in (("edaic", write_edaic_tree, EDAIC_SESSIONS),
                                  ("daicwoz", write_daicwoz_tree, DAICWOZ_SESSIONS)):
        root = tmp_path_factory.mktemp(name)
        made[name] = (root, write(root, sessions, seconds=SECONDS))
    return made


@pytest.fixture
def daicwoz(originals, tmp_path):
    """A copy of the DAIC-WOZ tree that a test may change, and what was planted in it."""
    root, planted = originals["daicwoz"]
    return Path(shutil.copytree(root, tmp_path / "daicwoz")), planted


@pytest.fixture
def edaic(originals, tmp_path):
    """A copy of the E-DAIC tree that a test may change, and what was planted in it."""
    root, planted = originals["edaic"]
    return Path(shutil.copytree(root, tmp_path / "edaic")), planted


def test_daicwoz_index_has_the_avec_columns_splits_and_labels(daicwoz):
    root, planted = daicwoz
    index = quietly(index_daicwoz, root)
    assert list(index.columns) == list(DAIC_INDEX_COLUMNS)
    assert list(index.columns[:len(INDEX_COLUMNS)]) == list(INDEX_COLUMNS)
    assert index["video_id"].tolist() == [f"{pid}_Interview" for pid in (300, 301, 318, 302, 303, 304, 305)]
    assert index["split"].tolist() == ["Training"] * 3 + ["Development"] * 2 + ["Testing"] * 2
    assert index["label"].tolist() == [18, 2, 12, 9, 17, 12, 11] and index["label"].dtype == "int64"
    assert set(index["scale"]) == {"PHQ-8"} and index.attrs["scale"] == "PHQ-8"
    assert index.attrs["visual_dim"] == DAICWOZ_VISUAL_DIM == 20
    assert index["gender"].tolist() == [planted[pid]["gender"] for pid in index["subject"]]
    row = index.iloc[0]
    assert row["video_path"] == "" and Path(row["audio_path"]).name == "300_AUDIO.wav"
    assert Path(row["visual_path"]).name == "300_CLNF_AUs.txt" and Path(row["gaze_path"]).name == "300_CLNF_gaze.txt"
    assert Path(index.iloc[-1]["label_path"]).name == "full_test_split.csv"


def test_edaic_index_reads_labels_folder_features_folder_and_gender_strings(edaic):
    root, planted = edaic
    index = quietly(index_edaic, root)
    assert index["subject"].tolist() == ["300", "301", "302", "303", "600", "601"]
    assert index["label"].tolist() == [18, 2, 9, 17, 12, 11]
    assert set(index["gender"]) <= {"male", "female"} and index.attrs["dataset"] == "E-DAIC"
    assert (index["gaze_path"] == "").all() and index.attrs["visual_dim"] == 2048
    assert Path(index.iloc[0]["visual_path"]).parent.name == "features"


def test_headers_with_spaces_after_commas_and_lowercase_ids_are_read_alike(tmp_path):
    sessions = {"Training": {300: 18}, "Development": {302: 9}}
    spaced = write_edaic_tree(tmp_path / "spaced", sessions, seconds=SECONDS, separator=", ", label_separator=", ")
    write_edaic_tree(tmp_path / "plain", sessions, seconds=SECONDS)
    assert open(next((tmp_path / "spaced").rglob("*OpenFace*.csv"))).readline().startswith("frame, timestamp,")
    first, second = quietly(index_edaic, tmp_path / "spaced"), quietly(index_edaic, tmp_path / "plain")
    assert first[["subject", "label", "gender"]].equals(second[["subject", "label", "gender"]])
    a, b = load_edaic_session(first.iloc[0]), load_edaic_session(second.iloc[0])
    np.testing.assert_array_equal(a.head, b.head)
    planted_head = spaced["300"]["head"][a.frame_index].astype(np.float32)
    np.testing.assert_array_equal(a.head, planted_head * a.head_valid[:, None])
    daicwoz_root = tmp_path / "daicwoz"
    write_daicwoz_tree(daicwoz_root, {**sessions, "Testing": {304: 12}}, seconds=SECONDS, separator=",",
                       label_separator=", ")
    index = quietly(index_daicwoz, daicwoz_root)
    assert index["label"].tolist() == [18, 9, 12]
    assert open(daicwoz_root / "test_split_Depression_AVEC2017.csv").readline().startswith("participant_ID, Gender")


def test_daicwoz_testing_without_full_test_split_is_left_out_or_kept_unlabelled(daicwoz):
    root, _ = daicwoz
    (root / "full_test_split.csv").unlink()
    with pytest.warns(DaicIndexWarning, match="2 session.*without a PHQ-8 score, left out.*304_Interview, 305_"):
        index = index_daicwoz(root)
    assert "Testing" not in set(index["split"]) and index.attrs["unlabelled"] == ["304_Interview", "305_Interview"]
    with pytest.warns(DaicIndexWarning, match="kept with a missing label"):
        kept = index_daicwoz(root, keep_unlabelled=True)
    testing = kept[kept["split"] == "Testing"]
    assert testing["subject"].tolist() == ["304", "305"] and testing["label"].isna().all()
    assert kept["label"].dtype == "Int64"


def test_edaic_test_split_without_scores_gives_unlabelled_testing_rows(edaic):
    root, _ = edaic
    write_label_file(root / "labels" / "test_split.csv", ("Participant_ID", "Gender", "PHQ_Binary", "PHQ_Score"),
                     [(600, "male", "", ""), (601, "female", "", "")])
    with pytest.warns(DaicIndexWarning, match="600_Interview, 601_Interview"):
        index = index_edaic(root)
    assert sorted(set(index["split"])) == ["Development", "Training"]


def test_missing_label_file_is_named(daicwoz):
    root, _ = daicwoz
    (root / "dev_split_Depression_AVEC2017.csv").unlink()
    with pytest.raises(FileNotFoundError, match="dev_split_Depression_AVEC2017.csv"):
        index_daicwoz(root)


@pytest.mark.parametrize("cells, message", [
    (("300", "0", "25", "1"), "participant 300.*outside the PHQ-8 range 0..24"),
    (("300", "0", "ten", "1"), "participant 300.*not a number"),
    (("300", "0", "", "1"), "participant 300.*score is empty"),
    (("3x0", "0", "4", "1"), "participant ID '3x0' is not a whole number"),
])
def test_malformed_labels_name_the_file_and_participant(daicwoz, cells, message):
    root, _ = daicwoz
    write_label_file(root / "train_split_Depression_AVEC2017.csv",
                     ("Participant_ID", "PHQ8_Binary", "PHQ8_Score", "Gender"),
                     [cells, ("301", "0", "2", "1"), ("318", "1", "12", "0")])
    with pytest.raises(ValueError, match=message) as error:
        index_daicwoz(root)
    assert "train_split_Depression_AVEC2017.csv" in str(error.value)


def test_label_file_without_id_column_or_with_a_participant_twice_is_refused(daicwoz):
    root, _ = daicwoz
    path = root / "train_split_Depression_AVEC2017.csv"
    write_label_file(path, ("ID", "PHQ8_Score"), [("300", "4")])
    with pytest.raises(ValueError, match="no Participant_ID column"):
        index_daicwoz(root)
    write_label_file(path, ("Participant_ID", "PHQ8_Score"), [("300", "4"), ("300", "5")])
    with pytest.raises(ValueError, match="listed more than once: 300"):
        index_daicwoz(root)
    write_label_file(path, ("Participant_ID", "PHQ8_Score"), [("300", "4"), ("302", "5")])
    with pytest.raises(ValueError, match="302 in .*train_split.*dev_split"):
        index_daicwoz(root)


def test_documented_label_defects_are_tolerated_and_an_unknown_one_warns(tmp_path):
    for participant in (319, 409, 320, 321):
        write_small_daicwoz_session(tmp_path, participant)
    header = ("Participant_ID", "PHQ8_Binary", "PHQ8_Score", "Gender", "PHQ8_NoInterest", "PHQ8_Depressed",
              "PHQ8_Sleep", "PHQ8_Tired", "PHQ8_Appetite", "PHQ8_Failure", "PHQ8_Concentrating", "PHQ8_Moving")
    write_label_file(tmp_path / "train_split_Depression_AVEC2017.csv", header,
                     [(319, 0, 8, 1, 1, 1, "", 1, 1, 1, 1, 0), (409, 0, 10, 0, 2, 1, 1, 2, 1, 1, 1, 1),
                      (320, 1, 12, 0, 2, 2, 2, 2, 1, 1, 1, 1)])
    dev_split = tmp_path / "dev_split_Depression_AVEC2017.csv"
    write_label_file(dev_split, ("Participant_ID", "PHQ8_Binary", "PHQ8_Score"), [(321, 0, 3)])
    write_label_file(tmp_path / "test_split_Depression_AVEC2017.csv", ("participant_ID", "Gender"), [])
    index = quietly(index_daicwoz, tmp_path)
    assert index.set_index("subject").loc[["319", "409"], "label"].tolist() == [8, 10]
    assert index.attrs["binary_disagreements"] == ["409"]
    write_label_file(dev_split, ("Participant_ID", "PHQ8_Binary", "PHQ8_Score"), [(321, 1, 3)])
    with pytest.warns(DaicIndexWarning, match=r"disagrees with PHQ-8 >= 10 for participants \['321'\]"):
        index_daicwoz(tmp_path)


def test_missing_session_file_archives_and_orphans_are_reported(daicwoz):
    root, _ = daicwoz
    (root / "302_P" / "302_CLNF_gaze.txt").unlink()
    with pytest.raises(FileNotFoundError, match="302_P: lacks 302_CLNF_gaze.txt"):
        index_daicwoz(root)
    shutil.rmtree(root / "302_P")
    with pytest.warns(DaicIndexWarning, match="without a session folder, left out: 302"):
        index = index_daicwoz(root)
    assert "302" not in set(index["subject"]) and index.attrs["labels_without_session"] == ["302"]
    (root / "302_P.zip").write_bytes(b"PK")
    with pytest.raises(ValueError, match="unpack them in place first.*302_P.zip"):
        index_daicwoz(root)


def test_session_folder_in_no_split_file_is_left_out_with_a_warning(daicwoz, tmp_path):
    root, _ = daicwoz
    write_small_daicwoz_session(root, 330)
    with pytest.warns(DaicIndexWarning, match="in no split file, left out: 330"):
        index = index_daicwoz(root)
    assert index.attrs["sessions_without_label"] == ["330"]


def test_daicwoz_session_streams_read_aus_and_the_12_head_columns_on_sampled_frames(daicwoz):
    root, planted = daicwoz
    row = quietly(index_daicwoz, root).iloc[0]
    streams = load_daicwoz_session(row)
    truth = planted["300"]
    frames = int(SECONDS * 30)
    assert streams.frame_index.tolist() == [i for i in range(frames) if i % 100 in (0, 25, 50, 75)]
    np.testing.assert_allclose(streams.times, truth["timestamps"][streams.frame_index], atol=1e-9)
    failed = ~truth["success"][streams.frame_index]
    assert failed[streams.frame_index % FAILED_FRAME_PERIOD == FAILED_FRAME_PERIOD // 2].all() and failed.any()
    assert (streams.head_valid == ~failed).all() and (streams.visual_valid == ~failed).all()
    np.testing.assert_allclose(streams.head, truth["head"][streams.frame_index], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(streams.visual, truth["action_units"][streams.frame_index], rtol=1e-6, atol=1e-6)
    assert (streams.head[failed] == 0).all() and streams.visual.shape[1] == DAICWOZ_VISUAL_DIM
    np.testing.assert_array_equal(load_session(row).visual, streams.visual)


def test_clnf_pose_named_x_y_z_and_a_frame_missing_from_gaze(daicwoz):
    root, planted = daicwoz
    row = quietly(index_daicwoz, root).iloc[0]
    pose, gaze = Path(row["head_path"]), Path(row["gaze_path"])
    lines = pose.read_text().splitlines()
    pose.write_text("\n".join([lines[0].replace("Tx, Ty, Tz", "X, Y, Z"), *lines[1:]]) + "\n")
    gaze_lines = gaze.read_text().splitlines()
    gaze.write_text("\n".join(line for line in gaze_lines if not line.startswith("51, ")) + "\n")
    streams = load_daicwoz_session(row)
    at_frame_50 = streams.frame_index.tolist().index(50)
    assert not streams.head_valid[at_frame_50] and (streams.head[at_frame_50] == 0).all()
    others = np.flatnonzero(streams.head_valid)
    np.testing.assert_allclose(streams.head[others], planted["300"]["head"][streams.frame_index[others]],
                               rtol=1e-6, atol=1e-6)


def test_edaic_12_head_columns_and_resnet_rows_read_exactly(edaic):
    root, planted = edaic
    row = quietly(index_edaic, root).iloc[1]
    streams = load_edaic_session(row)
    truth = planted["301"]
    table = pd.read_csv(row["head_path"])
    assert table.shape[1] == 53
    head_columns = ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz",
                    "gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z"]
    written = table.iloc[streams.frame_index][head_columns].to_numpy(np.float32)
    np.testing.assert_array_equal(streams.head[streams.head_valid], written[streams.head_valid])
    np.testing.assert_allclose(streams.head, truth["head"][streams.frame_index], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(streams.visual[streams.visual_valid],
                                  truth["resnet"][streams.frame_index][streams.visual_valid])
    assert (streams.visual[~streams.visual_valid] == 0).all() and "one ResNet row per OpenFace row" in streams.timeline
    np.testing.assert_array_equal(load_session(row).visual, streams.visual)


def test_resnet_rows_of_successful_frames_only_take_those_frames_times(tmp_path):
    planted = write_edaic_tree(tmp_path, {"Training": {300: 18}, "Development": {302: 9}}, seconds=SECONDS,
                               resnet_rows="successful")
    row = quietly(index_edaic, tmp_path).iloc[0]
    streams = load_edaic_session(row)
    successful = np.flatnonzero(planted["300"]["success"])
    assert len(planted["300"]["resnet"]) == len(successful) < len(planted["300"]["success"])
    np.testing.assert_allclose(streams.times, planted["300"]["timestamps"][successful[streams.frame_index]], atol=1e-9)
    assert streams.head_valid.all() and "successful OpenFace row" in streams.timeline


def test_resnet_rows_matching_no_openface_count_are_spread_over_the_audio(edaic):
    root, planted = edaic
    row = quietly(index_edaic, root).iloc[0]
    write_resnet_mat(row["visual_path"], np.ones((45, 2048), dtype=np.float32))
    streams = load_edaic_session(row)
    assert streams.frame_index.tolist() == [0, 25]
    np.testing.assert_allclose(streams.times, np.array([0, 25]) * SECONDS / 45)
    openface_rows = np.round(streams.times * 30).astype(int)
    np.testing.assert_allclose(streams.head[streams.head_valid],
                               planted["300"]["head"][openface_rows][streams.head_valid], rtol=1e-6, atol=1e-6)
    assert "spread evenly over the audio" in streams.timeline


def test_resnet_file_without_feature_or_of_the_wrong_width_is_named(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "a.mat", {"features": np.zeros((3, 2048))})
    with pytest.raises(ValueError, match=r"a.mat holds no variable 'feature' \(it holds \['features'\]\)"):
        read_resnet_mat(tmp_path / "a.mat")
    write_resnet_mat(tmp_path / "b.mat", np.zeros((3, 512)))
    with pytest.raises(ValueError, match=r"b.mat: 'feature' has shape \(3, 512\)"):
        read_resnet_mat(tmp_path / "b.mat")
    (tmp_path / "c.mat").write_bytes(b"not a MATLAB file")
    with pytest.raises(ValueError, match="ResNet feature file .*c.mat cannot be read as a MATLAB file"):
        read_resnet_mat(tmp_path / "c.mat")


def test_daicwoz_participant_speech_drops_ellie_chatter_and_sync_and_applies_the_318_offset(daicwoz):
    root, planted = daicwoz
    index = quietly(index_daicwoz, root).set_index("subject", drop=False)
    for pid in index["subject"]:
        mask = participant_speech_mask(index.loc[pid], int(SECONDS * 50))
        np.testing.assert_array_equal(mask, expected_mask(planted[pid]["speech"], int(SECONDS * 50)))
        assert 0 < mask.sum() < len(mask)
    path = index.loc["318", "transcript_path"]
    transcript = read_daicwoz_transcript(path, "318")
    assert "[sync]" not in set(transcript["value"]) and set(transcript["speaker"]) == {"Ellie", "Participant"}
    written = pd.read_csv(path, sep="\t")
    first_written = written.loc[written["value"] != "[sync]", "start_time"].iloc[0]
    assert first_written < 0, "318's transcript is written out of sync, as in the corpus"
    assert transcript["start"].iloc[0] == pytest.approx(first_written + 34.319917, abs=1e-6)
    assert 0 <= transcript["start"].iloc[0] < SECONDS


def test_chatter_before_ellie_and_sync_rows_are_dropped_from_participant_speech(tmp_path):
    rows = [(0.06, 0.3, "Participant", "is it on"), (0.3, 0.32, "Ellie", "[sync]"), (0.5, 1.0, "Ellie", "hi"),
            (1.2, 2.0, "Participant", "yeah"), (2.2, 2.5, "Ellie", "mhm"), (2.6, 3.0, "Participant", "okay")]
    transcript = read_daicwoz_transcript(write_daicwoz_transcript(tmp_path / "300_TRANSCRIPT.csv", rows), 300)
    assert transcript["value"].tolist() == ["is it on", "hi", "yeah", "mhm", "okay"]
    np.testing.assert_allclose(participant_intervals(transcript, 300), [[1.2, 2.0], [2.6, 3.0]])


def test_daicwoz_interruptions_of_373_and_444_are_cut(tmp_path):
    rows = [(100.0, 101.0, "Ellie", "hi"), (390.0, 400.0, "Participant", "a"), (420.0, 430.0, "Participant", "b")]
    transcript = read_daicwoz_transcript(write_daicwoz_transcript(tmp_path / "373_TRANSCRIPT.csv", rows), 373)
    np.testing.assert_allclose(participant_intervals(transcript, 373), [[390, 395], [428, 430]])
    rows = [(100.0, 101.0, "Ellie", "hi"), (280.0, 400.0, "Participant", "a")]
    transcript = read_daicwoz_transcript(write_daicwoz_transcript(tmp_path / "444_TRANSCRIPT.csv", rows), 444)
    np.testing.assert_allclose(participant_intervals(transcript, 444), [[280, 286], [387, 400]])
    np.testing.assert_allclose(participant_intervals(transcript, 300), [[280, 400]])


def test_sessions_without_ellie_keep_every_participant_row_and_unknown_speakers_are_refused(tmp_path):
    rows = [(0.1, 1.0, "Participant", "a"), (2, 3, "Participant", "b")]
    path = write_daicwoz_transcript(tmp_path / "451_TRANSCRIPT.csv", rows)
    np.testing.assert_allclose(participant_intervals(read_daicwoz_transcript(path, 451), 451), [[0.1, 1.0], [2, 3]])
    path = write_daicwoz_transcript(tmp_path / "300_TRANSCRIPT.csv", [(0.1, 1.0, "Bob", "a")])
    with pytest.raises(ValueError, match=r"300_TRANSCRIPT.csv: unknown speakers \['bob'\]"):
        read_daicwoz_transcript(path, 300)
    (tmp_path / "comma.csv").write_text("start_time,stop_time,speaker,value\n0.1,1.0,Ellie,hi\n")
    with pytest.raises(ValueError, match="comma.csv: lacks the columns.*TAB-separated"):
        read_daicwoz_transcript(tmp_path / "comma.csv", 300)


def test_edaic_transcript_segments_all_count_as_participant_speech(edaic):
    root, planted = edaic
    row = quietly(index_edaic, root).iloc[0]
    transcript = read_edaic_transcript(row["transcript_path"])
    assert list(transcript.columns) == ["start", "stop", "text"]
    np.testing.assert_allclose(participant_intervals(transcript), planted["300"]["speech"])
    frames = int(SECONDS * 50)
    np.testing.assert_array_equal(participant_speech_mask(row, frames), expected_mask(planted["300"]["speech"], frames))


def test_speech_mask_counts_a_frame_by_its_centre():
    assert speech_mask(np.array([[0.02, 0.06]]), 5).tolist() == [False, True, True, False, False]
    assert speech_mask(np.array([[0.0, 0.05], [0.04, 0.09]]), 6).tolist() == [True, True, True, True, False, False]
    assert speech_mask(np.zeros((0, 2)), 3).tolist() == [False, False, False]


def test_training_on_edaic_and_testing_on_daicwoz_names_the_shared_participants(daicwoz, edaic):
    daicwoz_index = quietly(index_daicwoz, daicwoz[0])
    edaic_index = quietly(index_edaic, edaic[0])
    edaic_training = edaic_index[edaic_index["split"] != "Testing"]
    with pytest.raises(ParticipantOverlapError, match=r"E-DAIC Training/Development \(training\) and DAIC-WOZ "
                                                       r"Training/Development/Testing \(evaluation\) share 4 "
                                                       r"participant\(s\): 300, 301, 302, 303") as error:
        refuse_participant_overlap(edaic_training, daicwoz_index)
    assert error.value.shared == ["300", "301", "302", "303"]
    daicwoz_training = daicwoz_index[daicwoz_index["split"] != "Testing"]
    refuse_participant_overlap(daicwoz_training, edaic_index[edaic_index["split"] == "Testing"])


def test_head_columns_are_named_as_each_file_writes_them(daicwoz, tmp_path):
    root, _ = daicwoz
    row = quietly(index_daicwoz, root).iloc[0]
    pose = Path(row["head_path"])
    lines = pose.read_text().splitlines()
    pose.write_text("\n".join([lines[0].replace("Tx, Ty, Tz", "X, Y, Z"), *lines[1:]]) + "\n")
    written = head_columns_as_written(row)
    assert written["column in the file"].tolist() == ["X", "Y", "Z", "Rx", "Ry", "Rz",
                                                      "x_0", "y_0", "z_0", "x_1", "y_1", "z_1"]
    assert written["file"].tolist() == ["300_CLNF_pose.txt"] * 6 + ["300_CLNF_gaze.txt"] * 6
    assert written["position"].tolist() == [5, 6, 7, 8, 9, 10, 5, 6, 7, 8, 9, 10]
    write_edaic_tree(tmp_path / "edaic", {"Training": {300: 18}, "Development": {302: 9}}, seconds=SECONDS,
                     separator=", ")
    openface = head_columns_as_written(quietly(index_edaic, tmp_path / "edaic").iloc[0])
    assert openface["column in the file"].tolist() == openface["MDDR's column"].tolist()
    assert openface["position"].tolist() == list(range(5, 17))
    pose.write_text(lines[0].replace("Rz", "Yaw") + "\n")
    with pytest.raises(ValueError, match="300_CLNF_pose.txt lacks the column Rz"):
        head_columns_as_written(row)


def test_synthetic_participants_are_numbered_as_the_corpora_and_spread_over_the_scale():
    sessions = {"Training": 10, "Development": 5, "Testing": 5}
    edaic = synthetic_participants(EDAIC, sessions, seed=3)
    assert all(pid >= 600 for pid in edaic["Testing"]) and sum(pid >= 600 for pid in edaic["Training"]) == 2
    daicwoz = synthetic_participants(DAICWOZ, {"Training": 60}, seed=3)
    assert all(300 <= pid <= 492 and pid not in ABSENT_DAICWOZ_IDS for pid in daicwoz["Training"])
    for split, labels in edaic.items():
        count = sessions[split]
        slices = [(k * 25 // count, min(-(-(k + 1) * 25 // count) - 1, 24)) for k in range(count)]
        assert all(low <= label <= high for label, (low, high) in zip(sorted(labels.values()), slices)), \
            f"{split}: one label in each equal slice of 0-24"
    with pytest.raises(ValueError, match="positive count"):
        synthetic_participants(EDAIC, {"Training": 0})


def test_synthetic_corpus_is_reused_rebuilt_on_new_parameters_and_never_replaces_other_files(tmp_path):
    smoke = SYNTHETIC_SIZES["smoke"]
    without_318 = {split: {pid: label for pid, label in labels.items() if pid != 318}
                   for split, labels in DAICWOZ_SESSIONS.items()}
    assert synthetic_participants(DAICWOZ, smoke["sessions"]) == without_318
    root = make_synthetic_corpus(tmp_path / "tree", DAICWOZ, **smoke)
    stamps = {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}
    assert (root / SYNTHETIC_MANIFEST).is_file() and len(quietly(index_daicwoz, root)) == 6
    make_synthetic_corpus(root, DAICWOZ, **smoke)
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()} == stamps
    fewer = {**smoke["sessions"], "Testing": 1}
    make_synthetic_corpus(root, DAICWOZ, fewer, seconds=smoke["seconds"])
    assert json.loads((root / SYNTHETIC_MANIFEST).read_text())["parameters"]["sessions"] == fewer
    assert len(quietly(index_daicwoz, root)) == 5
    licensed = tmp_path / "DAIC-WOZ"
    licensed.mkdir()
    (licensed / "300_P").mkdir()
    with pytest.raises(FileExistsError, match="not a synthetic tree, refusing to replace it"):
        make_synthetic_corpus(licensed, DAICWOZ, **smoke)


def test_a_participant_of_both_trees_is_one_rendered_session(originals):
    (edaic_root, edaic), (daicwoz_root, daicwoz) = originals["edaic"], originals["daicwoz"]
    for pid in ("300", "301", "302", "303"):
        np.testing.assert_array_equal(edaic[pid]["head"], daicwoz[pid]["head"])
        np.testing.assert_array_equal(edaic[pid]["speech"], daicwoz[pid]["speech"])
        assert (edaic_root / f"{pid}_P" / f"{pid}_AUDIO.wav").read_bytes() == \
            (daicwoz_root / f"{pid}_P" / f"{pid}_AUDIO.wav").read_bytes()
    assert not np.array_equal(daicwoz["300"]["head"], daicwoz["301"]["head"])


def test_rendered_sessions_are_measured_on_every_frame(originals):
    _, planted = originals["edaic"]
    for pid, record in planted.items():
        success, head, resnet = record["success"], record["head"], record["resnet"]
        frames = int(SECONDS * 30)
        assert len(success) == len(head) == len(resnet) == frames
        np.testing.assert_allclose(record["timestamps"], np.arange(frames) / 30, atol=1e-9)
        assert not success[FAILED_FRAME_PERIOD // 2::FAILED_FRAME_PERIOD].any()
        assert success.mean() > 0.9, f"{pid}: the head estimator lost the rendered face"
        assert (head[~success] == 0).all() and (resnet[~success] == 0).all()
        assert 300 < head[success, 2].mean() < 1000, "the face is 0.3-1 m from the camera (pose_Tz, mm)"
        gaze = head[success, 6:12].reshape(-1, 2, 3)
        np.testing.assert_allclose(np.linalg.norm(gaze, axis=2), 1.0, atol=1e-4)
        assert np.isfinite(resnet).all() and np.abs(resnet[success]).sum(axis=1).min() > 0
        assert len(np.unique(resnet[success], axis=0)) > 0.8 * success.sum(), "a ResNet row per frame's own face"


def test_action_units_are_the_expression_the_renderer_drew(originals, tmp_path):
    root, planted = originals["daicwoz"]
    units = pd.read_csv(root / "300_P" / "300_CLNF_AUs.txt", skipinitialspace=True)
    assert list(units.columns[4:]) == list(DAICWOZ_AU_COLUMNS)
    track = {}
    write_demo_video(tmp_path / "300.mp4", label=renderer_label(18), seconds=SECONDS, fps=30,
                     size=SESSION_FRAME_SIZE, seed=300, task="Freeform", track=track)
    motion = track["motion"]
    tracked = units["success"].to_numpy() == 1
    assert renderer_label(24) == pytest.approx(63) and renderer_label(12) == pytest.approx(31.5)
    np.testing.assert_array_equal(tracked, planted["300"]["success"])
    assert (units.loc[~tracked].iloc[:, 4:] == 0).all().all()
    drawn = units.loc[tracked]
    assert (motion["mouth"] > 0).any() and (motion["corner_drop"] > 0).any(), "the face speaks and is not all smile"
    for unit, drawn_as in (("AU25_r", "mouth"), ("AU26_r", "mouth"), ("AU01_r", "brows"), ("AU02_r", "brows"),
                           ("AU15_r", "corner_drop")):
        moved = motion[drawn_as][tracked] > 1e-6
        if moved.any():
            ratio = drawn[unit].to_numpy()[moved] / motion[drawn_as][tracked][moved]
            assert np.ptp(ratio) < 1e-5 * ratio.mean(), f"{unit} is proportional to the drawn {drawn_as}"
        assert (drawn[unit].to_numpy()[~moved] < 1e-5).all()
    np.testing.assert_allclose(drawn["AU12_r"] + drawn["AU15_r"], 5.0, atol=1e-6)
    assert drawn[["AU12_r", "AU15_r", "AU25_r", "AU01_r"]].max().max() <= 5.0
    np.testing.assert_array_equal(drawn["AU12_c"], (drawn["AU12_r"] >= 1).astype(float))
    untouched = ["AU04_r", "AU05_r", "AU06_r", "AU09_r", "AU10_r", "AU14_r", "AU17_r", "AU20_r",
                 "AU04_c", "AU23_c", "AU28_c", "AU45_c"]
    assert (units[untouched] == 0).all().all()


def test_interview_turns_put_ellie_in_the_pauses_and_chatter_before_her_first_words(tmp_path):
    rng = np.random.default_rng(0)
    two_phrases = [(0.31, 0.55, "a", True), (0.55, 0.9, "o", False), (2.05, 2.4, "e", True)]
    turns, speech, ellie = interview_turns(rng, two_phrases, 3.0)
    assert turns[0] == (0.3, 0.9, "Participant", "is it on")
    assert [turn[2:] for turn in turns[1:3]] == [("Ellie", "[sync]"),
                                                 ("Ellie", "hi i'm ellie thanks for coming in today")]
    np.testing.assert_allclose(speech, [[2.04, 2.4]])
    ellie_turns = [turn for turn in turns if turn[2] == "Ellie" and turn[3] != "[sync]"]
    np.testing.assert_allclose([turn[:2] for turn in ellie_turns], [[0.96, 1.98], [2.46, 2.94]])
    assert ellie[0][0] == pytest.approx(0.96) and 2.94 - 0.08 < ellie[-1][1] <= 2.94 + 1e-9, "syllables fill a slot"
    assert all(abs(edge * 50 - round(edge * 50)) < 1e-9 for turn in turns for edge in turn[:2])
    path = write_daicwoz_transcript(tmp_path / "300_TRANSCRIPT.csv", turns)
    np.testing.assert_allclose(participant_intervals(read_daicwoz_transcript(path, 300), 300), speech)

    turns, speech, _ = interview_turns(rng, two_phrases[:2], 3.0)
    assert [turn[2] for turn in turns] == ["Ellie", "Ellie", "Participant", "Ellie"]
    assert turns[1][:2] == (0.06, 0.24) and turns[1][3] == "hi"
    np.testing.assert_allclose(speech, [[0.3, 0.9]])


def test_the_interview_audio_holds_both_voices(originals):
    root, _ = originals["daicwoz"]
    transcript = pd.read_csv(root / "300_P" / "300_TRANSCRIPT.csv", sep="\t")
    rate, samples = wavfile.read(root / "300_P" / "300_AUDIO.wav")
    assert rate == 16000 and samples.dtype == np.int16 and len(samples) == int(SECONDS * rate)
    waveform = samples / 32767

    def loudness(start, stop):
        return float(np.sqrt(np.mean(waveform[int(start * rate):int(stop * rate)] ** 2)))

    spoken = transcript[transcript["value"] != "[sync]"]
    assert set(spoken["speaker"]) == {"Ellie", "Participant"}
    silence = loudness(0.0, 0.02)
    for turn in spoken.itertuples(index=False):
        assert loudness(turn.start_time, turn.stop_time) > 10 * silence, f"{turn.speaker} is heard at {turn.start_time}"
