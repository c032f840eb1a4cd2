"""Head pose and gaze: OpenFace CSVs, frame matching, rotation conventions, the built-in estimator."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage.data import astronaut

from mddr_utils.features import head as head_module
from mddr_utils.features.head import (HEAD_COLUMNS, HeadPoseGazeEstimator, check_openface_against_video,
                                      euler_to_rotation, find_openface_csv, match_openface, openface_intrinsics,
                                      pose_and_gaze, read_openface_csv, rotation_to_euler)
from mddr_utils.features.video import InputMismatchWarning

FIXTURES = Path(__file__).parent / "fixtures" / "openface"


@pytest.mark.parametrize("name", ["openface_2_2_spaced.csv", "openface_plain.csv"])
def test_read_openface_csv_strips_names_and_flags_failed_rows(name):
    table = read_openface_csv(FIXTURES / name)
    assert list(table.columns) == ["frame", "timestamp", "success", *HEAD_COLUMNS]
    assert table["frame"].tolist() == list(range(1, 9))
    assert table["success"].tolist() == [True] * 3 + [False] + [True] * 4
    assert table.loc[0, "pose_Tz"] == pytest.approx(602.0)
    assert table.loc[1, "pose_Ry"] == pytest.approx(-0.04)
    gaze = table.loc[table["success"], ["gaze_0_x", "gaze_0_y", "gaze_0_z"]].to_numpy()
    assert np.allclose(np.linalg.norm(gaze, axis=1), 1, atol=1e-5)


def test_both_header_styles_read_the_same():
    pd.testing.assert_frame_equal(read_openface_csv(FIXTURES / "openface_2_2_spaced.csv"),
                                  read_openface_csv(FIXTURES / "openface_plain.csv"))


def test_csv_without_needed_columns_names_file_and_columns():
    path = FIXTURES / "openface_without_pose_rotation.csv"
    with pytest.raises(ValueError, match="openface_without_pose_rotation.csv") as caught:
        read_openface_csv(path)
    for column in ("pose_Rx", "pose_Ry", "pose_Rz", "gaze_1_z"):
        assert column in str(caught.value)


def test_missing_csv_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        read_openface_csv(tmp_path / "nothere.csv")


def test_match_by_frame_number_counts_openface_frames_from_one():
    table = read_openface_csv(FIXTURES / "openface_plain.csv")
    frame_indices = np.array([0, 2, 3, 7, 8])  # zero-based decoding indices; 8 is beyond the CSV
    values, valid = match_openface(table, frame_indices, frame_indices / 30.0, by="frame")
    assert valid.tolist() == [True, True, False, True, False]  # OpenFace frame 4 failed, frame 9 absent
    assert values[0, HEAD_COLUMNS.index("pose_Tz")] == pytest.approx(602.0)  # OpenFace frame 1
    assert values[1, HEAD_COLUMNS.index("pose_Tz")] == pytest.approx(606.0)  # OpenFace frame 3
    assert values[3, HEAD_COLUMNS.index("pose_Tx")] == pytest.approx(18.0)  # OpenFace frame 8
    assert not values[~valid].any()


def test_match_by_timestamp_takes_the_nearest_row_within_half_a_frame():
    table = read_openface_csv(FIXTURES / "openface_plain.csv")
    stamps = np.array([0.0, 0.07, 0.228, 0.5])  # OpenFace rows at (frame - 1) / 30 s
    values, valid = match_openface(table, np.zeros(4, dtype=int), stamps, by="timestamp")
    assert valid.tolist() == [True, True, True, False]
    assert values[:3, HEAD_COLUMNS.index("pose_Tz")] == pytest.approx([602.0, 606.0, 616.0])


def test_several_faces_per_frame_are_refused():
    table = read_openface_csv(FIXTURES / "openface_plain.csv")
    doubled = pd.concat([table, table.iloc[:2]], ignore_index=True)
    with pytest.raises(ValueError, match="several rows share a frame"):
        match_openface(doubled, np.array([0]), np.array([0.0]))


def test_csv_is_found_by_video_stem_or_id(tmp_path):
    (tmp_path / "203_1_Freeform_video.csv").write_text("frame\n")
    assert find_openface_csv(tmp_path, "/data/203_1_Freeform_video.mp4", "203_1_Freeform").name == \
        "203_1_Freeform_video.csv"
    with pytest.raises(FileNotFoundError, match="204_1_Freeform"):
        find_openface_csv(tmp_path, "/data/204_1_Freeform_video.mp4", "204_1_Freeform")


VIDEO_FRAMES = 240
SAMPLED = np.arange(0, VIDEO_FRAMES, 25)  # keep 4 of every 100


def write_openface(path: Path, frames, success=1, empty_column: str | None = None) -> Path:
    """An OpenFace-style CSV with a row per frame number; pose_Tx holds the frame number, to check the matching."""
    lines = ["frame, face_id, timestamp, confidence, success, " + ", ".join(HEAD_COLUMNS)]
    for row, frame in enumerate(frames):
        values = {name: 0.0 for name in HEAD_COLUMNS}
        values.update(pose_Tx=float(frame), pose_Tz=600.0, gaze_0_z=-1.0, gaze_1_z=-1.0)
        cells = ["" if name == empty_column else f"{values[name]:g}" for name in HEAD_COLUMNS]
        lines.append(f"{frame}, 0, {row / 30:.3f}, 0.98, {success}, " + ", ".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def match_against_video(path: Path, by: str = "frame"):
    return match_openface(read_openface_csv(path), SAMPLED, SAMPLED / 30.0, by=by, source=str(path),
                          video_frames=VIDEO_FRAMES, video="clip.mp4")


def test_a_csv_that_covers_its_video_matches_silently(tmp_path):
    path = write_openface(tmp_path / "whole.csv", range(1, VIDEO_FRAMES + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, valid = match_against_video(path)
    assert valid.all()
    assert values[:, HEAD_COLUMNS.index("pose_Tx")].tolist() == (SAMPLED + 1).tolist()


def test_every_row_failed_leaves_the_head_stream_missing_with_a_warning(tmp_path):
    path = write_openface(tmp_path / "failed.csv", range(1, VIDEO_FRAMES + 1), success=0)
    with pytest.warns(InputMismatchWarning, match="head stream of this video is missing") as caught:
        values, valid = match_against_video(path)
    assert str(path) in str(caught[0].message) and len(caught) == 1
    assert not valid.any() and not values.any()


def test_a_header_only_csv_leaves_the_head_stream_missing_with_a_warning(tmp_path):
    path = write_openface(tmp_path / "header.csv", [])
    for video_frames in (VIDEO_FRAMES, None):
        with pytest.warns(InputMismatchWarning, match="holds no rows") as caught:
            _, valid = match_openface(read_openface_csv(path), SAMPLED, SAMPLED / 30.0, source=str(path),
                                      video_frames=video_frames)
        assert str(path) in str(caught[0].message) and not valid.any()


def test_an_empty_column_is_named_and_no_row_counts(tmp_path):
    path = write_openface(tmp_path / "nogaze.csv", range(1, VIDEO_FRAMES + 1), empty_column="gaze_1_y")
    with pytest.warns(InputMismatchWarning, match="gaze_1_y") as caught:
        table = read_openface_csv(path)
    assert str(path) in str(caught[0].message)
    with pytest.warns(InputMismatchWarning, match="missing"):
        _, valid = match_openface(table, SAMPLED, SAMPLED / 30.0, source=str(path), video_frames=VIDEO_FRAMES)
    assert not valid.any()


def test_a_csv_three_times_longer_than_its_video_is_refused(tmp_path):
    path = write_openface(tmp_path / "long.csv", range(1, 3 * VIDEO_FRAMES + 1))
    with pytest.raises(ValueError, match="another") as caught:
        match_against_video(path)
    assert str(path) in str(caught.value) and f"{VIDEO_FRAMES} frames" in str(caught.value)
    with pytest.raises(ValueError, match=str(path)):
        check_openface_against_video(read_openface_csv(path), VIDEO_FRAMES, source=str(path))


def test_a_frame_or_two_more_than_the_video_is_tolerated(tmp_path):
    path = write_openface(tmp_path / "one_more.csv", range(1, VIDEO_FRAMES + 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, valid = match_against_video(path)
    assert valid.all()


@pytest.mark.parametrize("by", ["frame", "timestamp"])
def test_a_csv_covering_part_of_its_video_is_warned_about_with_the_fraction(tmp_path, by):
    path = write_openface(tmp_path / "part.csv", range(1, 101))
    with pytest.warns(InputMismatchWarning) as caught:
        _, valid = match_against_video(path, by=by)
    message = str(caught[0].message)
    assert str(path) in message and f"100 of the {VIDEO_FRAMES} frames" in message and "42%" in message
    assert valid.tolist() == (SAMPLED < 100).tolist()


def test_zero_based_frame_numbers_are_detected_and_shifted(tmp_path):
    path = write_openface(tmp_path / "zero_based.csv", range(VIDEO_FRAMES))
    with pytest.warns(InputMismatchWarning, match="from 0") as caught:
        values, valid = match_against_video(path)
    assert str(path) in str(caught[0].message)
    assert valid.all()
    # The row numbered i describes decoded frame i: its pose_Tx (the number written) equals the frame index.
    assert values[:, HEAD_COLUMNS.index("pose_Tx")].tolist() == SAMPLED.tolist()


def test_a_negative_frame_number_is_refused(tmp_path):
    path = write_openface(tmp_path / "negative.csv", range(-1, 10))
    with pytest.raises(ValueError, match=f"{path}: holds the negative frame number -1"):
        match_openface(read_openface_csv(path), SAMPLED, SAMPLED / 30.0, source=str(path))


def test_euler_convention_is_openfaces():
    rng = np.random.default_rng(0)
    for _ in range(20):
        angles = rng.uniform(-1.2, 1.2, 3)
        rotation = euler_to_rotation(angles)
        assert np.allclose(rotation @ rotation.T, np.eye(3))
        assert np.allclose(rotation_to_euler(rotation), angles)
        pitch, yaw, _ = angles
        # OpenFace's Euler2RotationMatrix: R[0,2] = sin(yaw), R[1,2] = -cos(yaw) sin(pitch)
        assert rotation[0, 2] == pytest.approx(np.sin(yaw))
        assert rotation[1, 2] == pytest.approx(-np.cos(yaw) * np.sin(pitch))


def test_intrinsics_follow_openfaces_default():
    camera = openface_intrinsics(640, 480)
    assert camera[0, 0] == camera[1, 1] == 500.0
    assert tuple(camera[:2, 2]) == (320.0, 240.0)


def _project(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
    projected = (camera @ points.T).T
    return projected[:, :2] / projected[:, 2:]


def test_pose_and_gaze_recover_a_projected_head():
    camera = openface_intrinsics(640, 480)
    angles, translation = np.array([0.15, -0.3, 0.1]), np.array([25.0, -15.0, 650.0])
    rotation = euler_to_rotation(angles)
    landmarks = np.zeros((478, 2))
    landmarks[head_module.MODEL_LANDMARKS] = _project(head_module.MODEL_POINTS_MM @ rotation.T + translation, camera)
    for iris, corner, other in head_module._EYES.values():
        midpoint = head_module._eye_corner_midpoint_in_head(corner, other)
        centre = midpoint + np.array([0.0, 0.0, head_module.EYEBALL_DEPTH_MM])
        # The eye looks along the head's forward axis (-z in the head frame).
        pupil = centre + np.array([0.0, 0.0, -head_module.EYEBALL_RADIUS_MM])
        landmarks[iris] = _project((rotation @ pupil + translation)[None], camera)[0]
    features = pose_and_gaze(landmarks, camera)
    assert features[:3] == pytest.approx(translation, abs=1e-3)
    assert features[3:6] == pytest.approx(angles, abs=1e-5)
    forward = rotation @ np.array([0.0, 0.0, -1.0])
    assert features[6:9] == pytest.approx(forward, abs=0.02)
    assert features[9:12] == pytest.approx(forward, abs=0.02)


@pytest.fixture(scope="module")
def estimator():
    with HeadPoseGazeEstimator() as built:
        yield built


def test_builtin_estimator_on_a_photograph(estimator):
    photo = astronaut()
    features, valid = estimator.estimate(photo)
    assert valid
    assert 300 < features[2] < 1500  # a head some 0.3-1.5 m from the camera, in mm
    assert np.all(np.abs(features[3:6]) < np.radians(45))
    gaze_0, gaze_1 = features[6:9], features[9:12]
    assert np.linalg.norm(gaze_0) == pytest.approx(1, abs=1e-5)
    assert gaze_0[2] < -0.8 and gaze_1[2] < -0.8  # both eyes look towards the camera
    mirrored, valid = estimator.estimate(np.ascontiguousarray(photo[:, ::-1]))
    assert valid
    assert mirrored[0] == pytest.approx(-features[0], abs=10)  # the head moves to the other side of the axis
    assert abs(mirrored[4] + features[4]) < np.radians(3)  # yaw changes sign


def test_frames_without_a_face_are_invalid_zeros(estimator):
    values, valid = estimator([np.full((120, 160, 3), 90, np.uint8), astronaut()])
    assert values.shape == (2, 12) and values.dtype == np.float32
    assert valid.tolist() == [False, True]
    assert not values[0].any()
