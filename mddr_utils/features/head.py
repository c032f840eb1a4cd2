"""Head movement features X_p: head pose and eye gaze, 12-d per sampled frame (paper sections 3.2, 4.3).

"Using the open-source tool OpenFace, we extract head pose and gaze features from the face
images after frame extraction, obtaining a feature dimension of 12" (section 4.3). The 12
columns, under OpenFace 2.x's names and units (book/decisions.md, "decision-head-features"):

    pose_Tx, pose_Ty, pose_Tz   head position relative to the camera, mm (+z away from the camera)
    pose_Rx, pose_Ry, pose_Rz   head rotation, radians, R = Rx Ry Rz (pitch, yaw, roll)
    gaze_0_x, gaze_0_y, gaze_0_z, gaze_1_x, gaze_1_y, gaze_1_z
                                unit gaze vectors in camera coordinates; eye 0 is the leftmost eye
                                in the image, eye 1 the rightmost

Two sources:

- OpenFace's own CSV (`read_openface_csv`, `match_openface`): rows matched to the sampled
  frames by frame number or by timestamp. OpenFace numbers frames from 1 in decoding order, so
  the sampled frame with zero-based decoding index i is OpenFace's frame i + 1. Rows with
  `success == 0` (or an empty value) are failed frames: they give `head_valid = False` and
  zeros, never data. Given the video's frame count (`video_frames`), the CSV is checked against
  its video: a CSV numbered from 0 (another tool's export) is read as frame n -> n + 1, with a
  warning; one with rows beyond the video's last frame (more than `OPENFACE_EXTRA_FRAMES`: the
  decoders' frame counts may differ by a frame or two) belongs to another video and is refused;
  one whose valid rows cover less than `OPENFACE_MIN_VALID_FRACTION` of the video's frames is
  warned about with that fraction (OpenFace tracks a frontal webcam face in nearly every frame;
  below 90 % the CSV does not cover the video, or tracking failed often enough that the head
  features describe another part of the recording than the visual ones). A CSV with no valid row
  for any sampled frame (header only, every row failed, a column empty) leaves the head stream
  missing: `head_valid` all False and a warning, never silent zeros.
- A built-in estimator for users without OpenFace (`HeadPoseGazeEstimator`): mediapipe's face
  mesh with iris refinement (478 landmarks, weights ship with mediapipe 0.10.14) and OpenCV's
  solvePnP. Its approximations, stated once:
  * camera: OpenFace's default when no calibration is given, fx = fy = 500 (w/640 + h/480)/2,
    principal point at the image centre, no lens distortion;
  * face: a generic adult face, 33 rigid points (eye corners, nose, forehead, temples and
    cheekbones; not the mouth, jaw or brows, which move) of mediapipe's canonical face model,
    in mm; the position reported is that of the centroid of the model's 468-point mesh, as
    OpenFace reports the centre of its own face model, so absolute translations differ from
    OpenFace's by the offset between the two models' centres, and scale with the true face size;
  * gaze: each eyeball is a 12 mm sphere whose centre lies 7 mm behind (along the head's axis)
    the midpoint of the detected eye corners, placed at the depth the head pose gives the eye;
    the pupil is where the camera ray through mediapipe's iris centre meets that sphere, and the
    gaze is the unit vector from the eyeball centre to the pupil.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .video import InputMismatchWarning

POSE_COLUMNS = ("pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz")
GAZE_COLUMNS = ("gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z")
HEAD_COLUMNS = POSE_COLUMNS + GAZE_COLUMNS
HEAD_DIM = len(HEAD_COLUMNS)
OPENFACE_COLUMNS = ("frame", "timestamp", "success") + HEAD_COLUMNS
OPENFACE_MIN_VALID_FRACTION = 0.9
OPENFACE_EXTRA_FRAMES = (2, 0.01)


def read_openface_csv(path: str | Path) -> pd.DataFrame:
    """OpenFace 2.x CSV to a table of frame, timestamp, success (bool) and the 12 head columns, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OpenFace CSV {path} does not exist")
    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except Exception as error:
        raise ValueError(f"OpenFace CSV {path} cannot be read: {error}") from error
    table.columns = [str(name).strip() for name in table.columns]
    missing = [name for name in OPENFACE_COLUMNS if name not in table.columns]
    if missing:
        raise ValueError(f"OpenFace CSV {path} lacks the columns {missing}")
    table = table[list(OPENFACE_COLUMNS)].copy()
    try:
        table["frame"] = table["frame"].astype(np.int64)
        numeric = table[["timestamp", "success", *HEAD_COLUMNS]].apply(pd.to_numeric, errors="raise")
    except (TypeError, ValueError) as error:
        raise ValueError(f"OpenFace CSV {path} holds non-numeric values: {error}") from error
    table[numeric.columns] = numeric.astype(np.float64)
    empty = [name for name in HEAD_COLUMNS if len(table) and table[name].isna().all()]
    if empty:
        warnings.warn(f"OpenFace CSV {path}: the columns {empty} hold no values, so no row is valid",
                      InputMismatchWarning, stacklevel=2)
    finite = np.isfinite(table[list(HEAD_COLUMNS)].to_numpy()).all(axis=1)
    table["success"] = (table["success"].to_numpy() != 0) & finite
    return table.reset_index(drop=True)


def find_openface_csv(openface_dir: str | Path, video_path: str | Path, video_id: str) -> Path:
    """OpenFace names its CSV after the input video; look for <video stem>.csv, then <video_id>.csv."""
    folder = Path(openface_dir)
    candidates = [folder / f"{Path(video_path).stem}.csv", folder / f"{video_id}.csv"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no OpenFace CSV for video {video_id!r}: looked for {', '.join(map(str, candidates))}")


def match_openface(table: pd.DataFrame, frame_indices: np.ndarray, timestamps: np.ndarray, by: str = "frame",
                   source: str = "OpenFace CSV", video_frames: int | None = None,
                   video: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Head features [L, 12] and validity [L] of the sampled frames, matched by frame number or timestamp.

    by="frame": the sampled frame with zero-based index i is OpenFace's frame i + 1.
    by="timestamp": the nearest row within half of the CSV's median frame interval.
    Unmatched frames and rows with success 0 are invalid (zeros). With `video_frames` (the frame
    count of `video`) the CSV is first checked against its video (`check_openface_against_video`);
    a CSV numbered from 0 is renumbered from 1 in any case. No valid frame at all: a warning.
    """
    if by not in ("frame", "timestamp"):
        raise ValueError(f"by must be 'frame' or 'timestamp', got {by!r}")
    frame_indices = np.asarray(frame_indices, dtype=np.int64)
    timestamps = np.asarray(timestamps, dtype=np.float64)
    head = np.zeros((len(frame_indices), HEAD_DIM), dtype=np.float32)
    valid = np.zeros(len(frame_indices), dtype=bool)
    if video_frames is None:
        table = _numbered_from_one(table, source)
        valid_rows = None
    else:
        table, valid_rows = _checked_against_video(table, video_frames, source, video)
    if len(table) and len(frame_indices):
        _match_rows(table, frame_indices, timestamps, by, source, head, valid)
    if len(frame_indices) and not valid.any() and valid_rows != 0:
        reason = "it holds no rows" if len(table) == 0 else "no row matching a sampled frame is valid"
        warnings.warn(f"{source}: {reason}: the head stream of this video is missing "
                      f"(all {len(valid)} sampled frames have head_valid False)", InputMismatchWarning, stacklevel=2)
    return head, valid


def check_openface_against_video(table: pd.DataFrame, video_frames: int, source: str = "OpenFace CSV",
                                 video: str | Path | None = None) -> pd.DataFrame:
    """The CSV's table numbered from 1, checked against its video's frame count (see the module notes).

    Raises ValueError (naming the CSV) for rows beyond the video's end; warns with the fraction of
    the video's frames that have a valid row when it is below OPENFACE_MIN_VALID_FRACTION.
    """
    checked, _ = _checked_against_video(table, video_frames, source, video)
    return checked


def _checked_against_video(table: pd.DataFrame, video_frames: int, source: str,
                           video: str | Path | None) -> tuple[pd.DataFrame, int]:
    """(the table numbered from 1, how many of the video's frames have a valid row)."""
    if int(video_frames) < 1:
        raise ValueError(f"{source}: the video's frame count must be positive, got {video_frames}")
    video_frames = int(video_frames)
    of_video = f"its video {video}" if video is not None else "its video"
    table = _numbered_from_one(table, source)
    frames = table["frame"].to_numpy(dtype=np.int64)
    minimum, share = OPENFACE_EXTRA_FRAMES
    allowed = video_frames + max(minimum, int(share * video_frames))
    if len(frames) and frames.max() > allowed:
        raise ValueError(f"{source}: rows reach frame {frames.max()} but {of_video} has {video_frames} frames: "
                         f"this CSV belongs to another (longer) video")
    inside = (frames >= 1) & (frames <= video_frames)
    valid_rows = int(len(np.unique(frames[inside & table["success"].to_numpy(dtype=bool)])))
    fraction = valid_rows / video_frames
    if valid_rows == 0:
        reason = ("it holds no rows" if len(table) == 0
                  else f"none of its {len(table)} rows is valid (success 1, 12 values)")
        warnings.warn(f"{source}: {reason} for the {video_frames} frames of {of_video}: the head stream of this "
                      f"video is missing (head_valid all False)", InputMismatchWarning, stacklevel=3)
    elif fraction < OPENFACE_MIN_VALID_FRACTION:
        rows = int(len(np.unique(frames[inside])))
        warnings.warn(f"{source}: only {valid_rows} of the {video_frames} frames of {of_video} have a valid row "
                      f"({fraction:.0%}; the CSV has rows for {rows} of them); head features of the other "
                      f"sampled frames are marked invalid", InputMismatchWarning, stacklevel=3)
    return table, valid_rows


def _numbered_from_one(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """OpenFace numbers frames from 1; a table that holds frame 0 counts from 0 and is shifted by one."""
    if len(table) == 0:
        return table
    first = int(table["frame"].min())
    if first < 0:
        raise ValueError(f"{source}: holds the negative frame number {first}")
    if first > 0:
        return table
    warnings.warn(f"{source}: numbers its frames from 0, OpenFace from 1: its frame n is read as frame n + 1",
                  InputMismatchWarning, stacklevel=3)
    return table.assign(frame=table["frame"] + 1)


def _match_rows(table: pd.DataFrame, frame_indices: np.ndarray, timestamps: np.ndarray, by: str, source: str,
                head: np.ndarray, valid: np.ndarray) -> None:
    """Fill head and valid, in place, from the rows that match the sampled frames."""
    if table["frame"].duplicated().any():
        raise ValueError(f"{source}: several rows share a frame number (several faces?); "
                         f"use OpenFace's FeatureExtraction, which tracks one face")
    values = table[list(HEAD_COLUMNS)].to_numpy(dtype=np.float64)
    success = table["success"].to_numpy(dtype=bool)
    if by == "frame":
        row_of_frame = pd.Series(np.arange(len(table)), index=table["frame"].to_numpy())
        rows = row_of_frame.reindex(frame_indices + 1).to_numpy()
        matched = ~np.isnan(rows)
    else:
        stamps = table["timestamp"].to_numpy(dtype=np.float64)
        order = np.argsort(stamps, kind="stable")
        stamps = stamps[order]
        interval = float(np.median(np.diff(stamps))) if len(stamps) > 1 else np.inf
        after = np.clip(np.searchsorted(stamps, timestamps), 0, max(len(stamps) - 1, 0))
        before = np.clip(after - 1, 0, None)
        nearest = np.where(np.abs(stamps[after] - timestamps) < np.abs(stamps[before] - timestamps), after, before)
        matched = np.abs(stamps[nearest] - timestamps) <= interval / 2
        rows = order[nearest].astype(np.float64)
    found = np.flatnonzero(matched)
    chosen = rows[found].astype(np.int64)
    good = success[chosen]
    head[found[good]] = values[chosen[good]]
    valid[found[good]] = True


def euler_to_rotation(angles: Sequence[float]) -> np.ndarray:
    """OpenFace's R = Rx(pitch) Ry(yaw) Rz(roll) from (Rx, Ry, Rz) in radians."""
    pitch, yaw, roll = (float(a) for a in angles)
    cx, sx, cy, sy, cz, sz = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


def rotation_to_euler(rotation: np.ndarray) -> np.ndarray:
    """(Rx, Ry, Rz) in radians with R = Rx Ry Rz, the inverse of `euler_to_rotation` for |yaw| < pi/2."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.arcsin(np.clip(r[0, 2], -1.0, 1.0))
    pitch = np.arctan2(-r[1, 2], r[2, 2])
    roll = np.arctan2(-r[0, 1], r[0, 0])
    return np.array([pitch, yaw, roll])


def gaze_angles(head: np.ndarray) -> np.ndarray:
    """OpenFace's gaze_angle_x, gaze_angle_y (radians) from the 12 head features [..., 12]: both eyes averaged.

    A gaze along the camera's optical axis gives (0, 0); looking right in the image or down makes them positive.
    """
    head = np.asarray(head, dtype=np.float64)
    gaze = head[..., 6:9] + head[..., 9:12]
    return np.stack([np.arctan2(gaze[..., 0], -gaze[..., 2]), np.arctan2(gaze[..., 1], -gaze[..., 2])], axis=-1)


def head_motion_degrees(head: np.ndarray, valid: np.ndarray) -> float:
    """RMS head rotation about the video's mean pose, degrees: sqrt(mean(dRx^2 + dRy^2 + dRz^2)) over valid frames."""
    rotation = np.degrees(np.asarray(head, dtype=np.float64)[np.asarray(valid, dtype=bool), 3:6])
    if len(rotation) == 0:
        return float("nan")
    return float(np.sqrt(np.mean(np.sum((rotation - rotation.mean(axis=0)) ** 2, axis=1))))


def openface_intrinsics(width: int, height: int) -> np.ndarray:
    """OpenFace's camera matrix when none is given: fx = fy = 500 (w/640 + h/480)/2, centre of the image."""
    focal = 500.0 * (width / 640.0 + height / 480.0) / 2.0
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


# Rigid points of mediapipe's canonical face model (mediapipe/modules/face_geometry/data/
# canonical_face_model.obj, Apache-2.0), landmark index -> (x, y, z) in mm with y up and z
# towards the viewer, as in the .obj file.
_CANONICAL_POINTS_MM = {
    33: (-44.46, 26.64, 31.73), 133: (-18.56, 25.85, 37.58), 362: (18.56, 25.85, 37.58),
    263: (44.46, 26.64, 31.73), 1: (0.00, -11.27, 74.76), 4: (0.00, -4.63, 75.87), 5: (0.00, 3.66, 72.43),
    6: (0.00, 24.73, 57.89), 168: (0.00, 32.71, 52.36), 195: (0.00, 10.59, 67.75), 197: (0.00, 17.28, 63.17),
    2: (0.00, -20.89, 60.58), 98: (-14.06, -17.14, 52.41), 327: (14.06, -17.14, 52.41),
    10: (0.00, 82.62, 44.82), 151: (0.00, 65.45, 50.27), 9: (0.00, 48.86, 53.85), 67: (-35.24, 80.06, 37.29),
    297: (35.24, 80.06, 37.29), 109: (-18.91, 82.36, 42.75), 338: (18.91, 82.36, 42.75),
    108: (-16.20, 65.99, 49.21), 337: (16.20, 65.99, 49.21), 234: (-76.64, 6.73, -24.36),
    454: (76.64, 6.73, -24.36), 127: (-77.43, 23.65, -20.05), 356: (77.43, 23.65, -20.05),
    93: (-75.42, -10.49, -24.31), 323: (75.42, -10.49, -24.31), 116: (-64.65, 9.37, 16.90),
    345: (64.65, 9.37, 16.90), 123: (-63.38, -5.29, 18.81), 352: (63.38, -5.29, 18.81),
}
_CANONICAL_MESH_CENTROID_MM = (0.0, -6.764, 41.59)
_EYES = {"image_left": (468, 33, 133), "image_right": (473, 362, 263)}
EYEBALL_RADIUS_MM = 12.0
EYEBALL_DEPTH_MM = 7.0


def _to_camera_convention(points_mm) -> np.ndarray:
    """Canonical (y up, z to the viewer) to OpenFace's head frame (y down, z away from the camera), centred."""
    points = np.asarray(points_mm, dtype=np.float64) - np.asarray(_CANONICAL_MESH_CENTROID_MM)
    return points * np.array([1.0, -1.0, -1.0])


MODEL_LANDMARKS = np.array(list(_CANONICAL_POINTS_MM), dtype=np.int64)
MODEL_POINTS_MM = _to_camera_convention(list(_CANONICAL_POINTS_MM.values()))


def _eye_corner_midpoint_in_head(corner: int, other_corner: int) -> np.ndarray:
    corners = _to_camera_convention([_CANONICAL_POINTS_MM[corner], _CANONICAL_POINTS_MM[other_corner]])
    return corners.mean(axis=0)


def _ray_sphere_point(direction: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Where a camera ray first meets a sphere; where it misses, the sphere point nearest to the ray."""
    along = float(direction @ centre)
    discriminant = along ** 2 - float(centre @ centre) + radius ** 2
    if discriminant >= 0:
        return (along - np.sqrt(discriminant)) * direction
    closest = along * direction - centre
    return centre + radius * closest / np.linalg.norm(closest)


def pose_and_gaze(landmarks_px: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """The 12 head features from 478 mediapipe landmarks in pixels [478, 2] and a camera matrix."""
    import cv2

    image_points = landmarks_px[MODEL_LANDMARKS].astype(np.float64)
    solved, rotation_vector, translation = cv2.solvePnP(MODEL_POINTS_MM, image_points, camera, None,
                                                        flags=cv2.SOLVEPNP_SQPNP)
    if not solved:
        raise ValueError("solvePnP found no head pose")
    rotation, _ = cv2.Rodrigues(rotation_vector)
    translation = translation.reshape(3)
    inverse_camera = np.linalg.inv(camera)
    gazes = []
    for iris, corner, other_corner in _EYES.values():
        # The eye sits where the detected corners are, at the depth the head model gives it, so a
        # small misfit of the rigid model does not read as a gaze shift.
        depth = (rotation @ _eye_corner_midpoint_in_head(corner, other_corner) + translation)[2]
        midpoint_px = (landmarks_px[corner] + landmarks_px[other_corner]) / 2
        midpoint = inverse_camera @ np.array([*midpoint_px, 1.0]) * depth
        centre = midpoint + rotation @ np.array([0.0, 0.0, EYEBALL_DEPTH_MM])
        ray = inverse_camera @ np.array([*landmarks_px[iris], 1.0])
        pupil = _ray_sphere_point(ray / np.linalg.norm(ray), centre, EYEBALL_RADIUS_MM)
        gaze = pupil - centre
        gazes.append((landmarks_px[iris][0], gaze / np.linalg.norm(gaze)))
    gazes.sort(key=lambda item: item[0])
    return np.concatenate([translation, rotation_to_euler(rotation), gazes[0][1], gazes[1][1]]).astype(np.float32)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Silence the process's stderr (file descriptor 2) for a moment.

    mediapipe's C++ graph logs its start-up (TensorFlow Lite delegates, feedback tensors) straight
    to file descriptor 2, past Python's sys.stderr; in a notebook those lines would land in the
    output of whichever cell builds the estimator.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    silent = os.open(os.devnull, os.O_WRONLY)
    os.dup2(silent, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(silent)


class HeadPoseGazeEstimator:
    """The built-in estimator: mediapipe face mesh + iris, solvePnP, eyeball model; see the module notes."""

    name = "mediapipe-facemesh-0.10+solvepnp"

    def __init__(self, min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self.min_detection_confidence = min_detection_confidence
        with _native_stderr_silenced():
            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                         refine_landmarks=True,
                                                         min_detection_confidence=min_detection_confidence)
            self.landmarks(np.zeros((64, 64, 3), dtype=np.uint8))

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """478 landmarks in pixels [478, 2] of the most prominent face in an RGB frame, or None."""
        with warnings.catch_warnings():
            # mediapipe 0.10.14 calls a protobuf API that protobuf 4 marks deprecated, once per frame.
            warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
            result = self._mesh.process(np.ascontiguousarray(frame))
        if not result.multi_face_landmarks:
            return None
        height, width = frame.shape[:2]
        points = result.multi_face_landmarks[0].landmark
        return np.array([(point.x * width, point.y * height) for point in points], dtype=np.float64)

    def estimate(self, frame: np.ndarray) -> tuple[np.ndarray, bool]:
        """The 12 head features of one RGB frame and whether a face was found (zeros if not)."""
        landmarks = self.landmarks(frame)
        if landmarks is None or len(landmarks) < 478:
            return np.zeros(HEAD_DIM, dtype=np.float32), False
        height, width = frame.shape[:2]
        try:
            features = pose_and_gaze(landmarks, openface_intrinsics(width, height))
        except ValueError:
            return np.zeros(HEAD_DIM, dtype=np.float32), False
        if not np.isfinite(features).all():
            return np.zeros(HEAD_DIM, dtype=np.float32), False
        return features, True

    def __call__(self, frames) -> tuple[np.ndarray, np.ndarray]:
        """Head features [N, 12] float32 and validity [N] of a list of RGB frames."""
        results = [self.estimate(frame) for frame in frames]
        head = np.stack([features for features, _ in results]) if results else np.zeros((0, HEAD_DIM), np.float32)
        return head.astype(np.float32), np.array([valid for _, valid in results], dtype=bool)

    def close(self) -> None:
        """Release mediapipe's graph."""
        self._mesh.close()

    def __enter__(self) -> "HeadPoseGazeEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
