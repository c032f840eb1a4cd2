"""Index and read DAIC-WOZ (AVEC2016/2017) and E-DAIC (AVEC2019) as their owners distribute them.

The paper (section 4.1) trains and tests on AVEC2013/2014; these two corpora carry PHQ-8 labels
(0-24, `scales.PHQ_8`) and ship precomputed features in place of raw video. This module gives
them the AVEC index's columns and reads MDDR's streams (sections 3.2, 4.3) from what ships.

DAIC-WOZ: one folder `<ID>_P/` per interview (IDs 300-492), unpacked from `<ID>_P.zip`:
    <ID>_AUDIO.wav          16 kHz mono
    <ID>_TRANSCRIPT.csv     TAB-separated: start_time, stop_time, speaker (Ellie / Participant), value
    <ID>_CLNF_pose.txt      frame, timestamp, confidence, success, Tx, Ty, Tz, Rx, Ry, Rz (mm, radians;
                            some documentation writes X, Y, Z: both are read)
    <ID>_CLNF_gaze.txt      frame, timestamp, confidence, success, x_0, y_0, z_0, x_1, y_1, z_1, x_h0 ...
    <ID>_CLNF_AUs.txt       frame, timestamp, confidence, success, 14 AUnn_r, 6 AUnn_c (.csv also read)
  CLNF files have a header line and ", " between fields. Labels, anywhere under the root:
    train_split_Depression_AVEC2017.csv, dev_split_Depression_AVEC2017.csv
        Participant_ID, PHQ8_Binary, PHQ8_Score, Gender, eight PHQ8_<item> columns
    full_test_split.csv     Participant_ID, PHQ_Binary, PHQ_Score, Gender (the Testing labels)
    test_split_Depression_AVEC2017.csv   participant_ID, Gender (Testing IDs without labels)

E-DAIC: one folder `<ID>_P/` per participant (300-492 are DAIC-WOZ's interviews again, 600-718
interviews led by an autonomous agent), unpacked from `<ID>_P.tar.gz`:
    <ID>_AUDIO.wav, <ID>_Transcript.csv (comma: Start_Time, End_Time, Text, Confidence)
    features/<ID>_OpenFace2.1.0_Pose_gaze_AUs.csv   comma, header, frame, timestamp, confidence,
                            success, pose_Tx..pose_Rz, gaze_0_x..gaze_1_z, gaze_angle_x/y, AUs
    features/<ID>_CNN_ResNet.mat    one variable `feature`, float [N, 2048], no timestamps
  Labels, anywhere under the root (usually `labels/`): train_split.csv, dev_split.csv, test_split.csv
    Participant_ID, Gender (male/female), PHQ_Binary, PHQ_Score, PCL-C (PTSD), PTSD Severity

Column names are matched with surrounding spaces stripped and without regard to case or to '_'
and '-' (`Participant_ID` and `participant_ID` are one column), files by name in any case.

What MDDR takes from each (`load_daicwoz_session`, `load_edaic_session`):
- E-DAIC visual: rows of `CNN_ResNet.mat` (a ResNet-50 on OpenFace-aligned faces; the AVEC2019
  extraction scripts use Aff-Wild weights, though which variant was distributed is not stated: the
  nearest thing that ships to the paper's AffectNet ResNet-50), 4 of every 100 rows as in the
  paper. The rows carry no times; `resnet_timeline` explains how they get some.
- DAIC-WOZ visual: no CNN features ship. The 20 action-unit outputs of `CLNF_AUs` are used: the
  paper's visual stream is a facial-expression network's embedding, and action units are the
  expression measurement that ships; landmarks and HOG also carry the face's shape and identity,
  and landmarks repeat the head pose the head stream already has. `visual_dim` is 20.
- Head (both): the 12 columns of section 4.3 in OpenFace 2 order (`features.head.HEAD_COLUMNS`);
  DAIC-WOZ's CLNF pose Tx..Rz and gaze x_0..z_1 joined on the frame number. success = 0 marks a
  frame invalid (zeros, never data).
- Participant speech (`participant_speech_mask`): DAIC-WOZ transcripts mark the interviewer Ellie,
  whose voice also reaches the participant's microphone; only `Participant` turns count, with the
  documented repairs: transcript times of sessions 318, 321, 341 and 362 are shifted, the
  interruptions of 373 and 444 are cut, `[sync]` rows and the participant's chatter before
  Ellie first speaks are dropped. E-DAIC's transcripts are speech recognition output with no
  speaker column; whether the agent's prompts were removed is not documented. Every E-DAIC
  segment is taken as participant speech: it still excludes the silences, and guessing a
  speaker from the words would be a model of its own.

Labels: the PHQ-8 total is the label; the per-item and binary columns are not used. Known defects
of DAIC-WOZ's label files do not touch the total: participant 319 lacks one item score, and 409's
binary column says 0 beside a total of 10. A binary column that disagrees with total >= 10 is
listed in `index.attrs["binary_disagreements"]`, with a warning for any participant other than 409.
Gender is kept as written ("0"/"1" in DAIC-WOZ, whose coding is documented inconsistently;
"male"/"female" in E-DAIC), never translated.
"""
from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..features.head import HEAD_COLUMNS, HEAD_DIM, match_openface, read_openface_csv
from .avec import INDEX_COLUMNS, SPLITS, _natural_key, _walk
from .container import AUDIO_RATE_HZ
from .scales import PHQ_8

DAICWOZ = "DAIC-WOZ"
EDAIC = "E-DAIC"
INTERVIEW_TASK = "Interview"
DAIC_INDEX_COLUMNS = INDEX_COLUMNS + ("scale", "gender", "session_dir", "transcript_path", "visual_path",
                                      "head_path", "gaze_path")
"""The AVEC index's columns, then the scale's name, gender as written, and the distributed files
MDDR reads; video_path is "" (no video ships) and gaze_path is "" for E-DAIC (its OpenFace CSV holds gaze)."""

DAICWOZ_AU_COLUMNS = (
    "AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU09_r", "AU10_r", "AU12_r", "AU14_r", "AU15_r",
    "AU17_r", "AU20_r", "AU25_r", "AU26_r", "AU04_c", "AU12_c", "AU15_c", "AU23_c", "AU28_c", "AU45_c",
)
DAICWOZ_VISUAL_DIM = len(DAICWOZ_AU_COLUMNS)
EDAIC_VISUAL_DIM = 2048
CLNF_POSE_COLUMNS = (("Tx", "X"), ("Ty", "Y"), ("Tz", "Z"), ("Rx",), ("Ry",), ("Rz",))
"""CLNF_pose's six columns in HEAD_COLUMNS order, each with the names it is known under."""
CLNF_GAZE_COLUMNS = ("x_0", "y_0", "z_0", "x_1", "y_1", "z_1")

TRANSCRIPT_OFFSETS = {"318": 34.319917, "321": 3.8379167, "341": 6.1892, "362": 16.8582}
"""Seconds to add to the transcript times of the DAIC-WOZ sessions whose transcript is out of sync."""
INTERRUPTIONS = {"373": ((395.0, 428.0),), "444": ((286.0, 387.0),)}
"""Spans (seconds of the audio) of DAIC-WOZ sessions interrupted during the interview, never participant speech."""
KNOWN_BINARY_DEFECTS = frozenset({"409"})
PUBLISHED_BASELINES = {
    DAICWOZ: {"what": "AVEC 2017 baseline, best Testing result (Ringeval et al., 2017)", "MAE": 5.66, "RMSE": 6.97},
    EDAIC: {"what": "AVEC 2019 baseline, Testing (Ringeval et al., 2019)", "CCC": 0.120},
}
"""The challenge organisers' baselines on each corpus's Testing split, the numbers papers compare with."""

_SESSION_FILES = {
    DAICWOZ: {"audio_path": ("AUDIO.wav",), "transcript_path": ("TRANSCRIPT.csv",),
              "visual_path": ("CLNF_AUs.txt", "CLNF_AUs.csv"), "head_path": ("CLNF_pose.txt",),
              "gaze_path": ("CLNF_gaze.txt",)},
    EDAIC: {"audio_path": ("AUDIO.wav",), "transcript_path": ("Transcript.csv",),
            "visual_path": ("CNN_ResNet.mat",), "head_path": ("OpenFace2.1.0_Pose_gaze_AUs.csv",)},
}
"""Per corpus, the files MDDR reads from a session folder, `<ID>_<name>` for any of the names (any case)."""
_FILE_PATTERNS = {corpus: {column: re.compile(rf"^(?P<id>\d+)_(?:{'|'.join(map(re.escape, names))})$", re.IGNORECASE)
                           for column, names in files.items()}
                  for corpus, files in _SESSION_FILES.items()}
_ARCHIVE = re.compile(r"^(?P<id>\d+)_P\.(?:zip|tar\.gz|tgz)$", re.IGNORECASE)
_LABEL_FILES = {
    DAICWOZ: {"Training": ("train_split_Depression_AVEC2017.csv",),
              "Development": ("dev_split_Depression_AVEC2017.csv",),
              "Testing": ("full_test_split.csv", "test_split_Depression_AVEC2017.csv")},
    EDAIC: {"Training": ("train_split.csv",), "Development": ("dev_split.csv",), "Testing": ("test_split.csv",)},
}
_ID_KEYS = ("participantid", "participant")
_SCORE_KEYS = ("phq8score", "phqscore")
_BINARY_KEYS = ("phq8binary", "phqbinary")
_GENDER_KEYS = ("gender",)
_SYNC_ROW = re.compile(r"^[\[<]\s*sync\w*\s*[\]>]$", re.IGNORECASE)


class DaicIndexWarning(UserWarning):
    """Sessions without a label, labels without a session, or label files that contradict themselves."""


class ParticipantOverlapError(ValueError):
    """Training and evaluation tables share participants; `shared` lists their IDs."""

    def __init__(self, message: str, shared: list[str]):
        super().__init__(message)
        self.shared = shared


def index_daicwoz(root: str | Path, keep_unlabelled: bool = False) -> pd.DataFrame:
    """One row per DAIC-WOZ interview under `root` with its PHQ-8 total, split and distributed files.

    Columns `DAIC_INDEX_COLUMNS`: video_id `<ID>_Interview`, subject `<ID>`, session 1, task
    "Interview", split from the label file that lists the ID (Training / Development / Testing),
    label (int), scale "PHQ-8", visual_path the CLNF_AUs file, head_path CLNF_pose, gaze_path
    CLNF_gaze. Testing labels come from full_test_split.csv; without it Testing IDs come from
    test_split_Depression_AVEC2017.csv unlabelled, left out (with a `DaicIndexWarning`) unless
    `keep_unlabelled` (label dtype Int64 then).

    Sessions whose folder is missing, and folders no label file lists, are left out with a
    warning and listed in `index.attrs["labels_without_session"]` / `["sessions_without_label"]`.
    Raises FileNotFoundError for a missing root, a missing Training or Development label file, or a
    session folder that lacks one of the files MDDR reads (all such files are named); ValueError
    naming the file for a malformed label file, a participant listed twice, a session only present
    as an archive, or two copies of one file.
    """
    return _index_corpus(root, DAICWOZ, keep_unlabelled)


def index_edaic(root: str | Path, keep_unlabelled: bool = False) -> pd.DataFrame:
    """One row per E-DAIC participant under `root`: same columns, reporting and errors as `index_daicwoz`.

    visual_path is `features/<ID>_CNN_ResNet.mat`, head_path the OpenFace 2.1 CSV, gaze_path "".
    Labels come from train_split.csv, dev_split.csv and test_split.csv (a test_split.csv without
    PHQ scores, as during the challenge, gives unlabelled Testing rows).
    """
    return _index_corpus(root, EDAIC, keep_unlabelled)


def read_label_table(path: str | Path, corpus: str) -> pd.DataFrame:
    """A DAIC-WOZ or E-DAIC split file as participant, label (PHQ-8 total or NA), gender, binary; ValueError naming it.

    A score column that is absent, or empty in every row, gives missing labels (a Testing list
    without labels); an empty cell where other rows hold scores is an error.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{corpus} label file {path}: cannot be read as CSV ({error})") from error
    columns = {_plain(name): name for name in table.columns}
    id_column = next((columns[key] for key in _ID_KEYS if key in columns), None)
    if id_column is None:
        raise ValueError(f"{corpus} label file {path}: no Participant_ID column (columns: {list(table.columns)})")
    score_column = next((columns[key] for key in _SCORE_KEYS if key in columns), None)
    binary_column = next((columns[key] for key in _BINARY_KEYS if key in columns), None)
    gender_column = next((columns[key] for key in _GENDER_KEYS if key in columns), None)
    cells = table.apply(lambda column: column.str.strip())
    labelled = score_column is not None and (cells[score_column] != "").any()
    rows = []
    for line, record in enumerate(cells.to_dict("records"), start=2):
        participant = _participant_id(record[id_column], path, line, corpus)
        source = f"{corpus} label file {path}, participant {participant} (line {line})"
        label = pd.NA
        if labelled:
            if record[score_column] == "":
                raise ValueError(f"{source}: the PHQ-8 score is empty")
            label = int(PHQ_8.check_label(record[score_column], source))
        binary = record[binary_column] if binary_column else ""
        rows.append(dict(participant=participant, label=label,
                         gender=record[gender_column].lower() if gender_column else "", binary=binary))
    result = pd.DataFrame(rows, columns=["participant", "label", "gender", "binary"])
    repeated = sorted(set(result["participant"][result["participant"].duplicated()]), key=_natural_key)
    if repeated:
        raise ValueError(f"{corpus} label file {path}: participants listed more than once: {', '.join(repeated)}")
    return result.astype({"label": "Int64"})


def refuse_participant_overlap(training: pd.DataFrame, evaluation: pd.DataFrame) -> None:
    """Raise `ParticipantOverlapError` naming every participant in both tables (their `subject` columns).

    DAIC-WOZ and E-DAIC number people alike: E-DAIC's participants 300-492 are DAIC-WOZ's, in
    E-DAIC's Training and Development splits. A model trained on one corpus and evaluated on
    the other must therefore be evaluated only on people it never saw; pass the rows trained on
    (Training and Development) and the rows evaluated on. AVEC2013/2014 number their subjects
    differently, so their IDs say nothing about DAIC people.
    """
    shared = sorted(set(training["subject"].astype(str)) & set(evaluation["subject"].astype(str)), key=_natural_key)
    if shared:
        raise ParticipantOverlapError(
            f"{_describe_rows(training)} (training) and {_describe_rows(evaluation)} (evaluation) share "
            f"{len(shared)} participant(s): {', '.join(shared)}; a model would be evaluated on people it "
            "was trained on. Evaluate on the other corpus's participants outside the training corpus "
            "(for E-DAIC: its Testing split, IDs 600 and above).", shared)


def sampled_rows(num_rows: int, keep: int = 4, every: int = 100) -> np.ndarray:
    """Zero-based indices of `keep` evenly spaced rows of every `every` (the rule of `features.video.sample_frames`)."""
    if not 1 <= keep <= every:
        raise ValueError(f"need 1 <= keep <= every, got keep={keep}, every={every}")
    offsets = sorted({step * every // keep for step in range(keep)})
    return np.array([start + offset for start in range(0, num_rows, every) for offset in offsets
                     if start + offset < num_rows], dtype=np.int64)


@dataclass
class SessionStreams:
    """One session's visual and head features on its sampled frames, read from the distributed files.

    frame_index: zero-based frame (or ResNet row) index of each sampled step; times in seconds of
    the audio; `timeline` says how the times were obtained.
    """

    frame_index: np.ndarray
    times: np.ndarray
    visual: np.ndarray
    visual_valid: np.ndarray
    head: np.ndarray
    head_valid: np.ndarray
    timeline: str


def read_clnf_table(path: str | Path, columns: tuple[tuple[str, ...], ...]) -> pd.DataFrame:
    """A DAIC-WOZ CLNF file as frame, timestamp, success (bool) and the given columns (each named
    by any of its alternatives, output under the first); ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CLNF file {path} does not exist")
    try:
        table = pd.read_csv(path, skipinitialspace=True)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"CLNF file {path} cannot be read as comma-separated text: {error}") from error
    table.columns = [str(name).strip() for name in table.columns]
    present = {name.lower(): name for name in table.columns}
    wanted = (("frame",), ("timestamp",), ("success",)) + tuple(columns)
    chosen, missing = {}, []
    for alternatives in wanted:
        found = next((present[name.lower()] for name in alternatives if name.lower() in present), None)
        if found is None:
            missing.append(" or ".join(alternatives))
        else:
            chosen[alternatives[0]] = found
    if missing:
        raise ValueError(f"CLNF file {path} lacks the columns {missing} (columns: {list(table.columns)})")
    selected = table[list(chosen.values())].set_axis(list(chosen), axis=1)
    try:
        numeric = selected.apply(pd.to_numeric, errors="raise").astype(np.float64)
        frames = numeric["frame"].astype(np.int64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"CLNF file {path} holds non-numeric values or empty frame numbers: {error}") from error
    values = numeric[[alternatives[0] for alternatives in columns]].to_numpy()
    numeric["frame"] = frames
    numeric["success"] = (numeric["success"].to_numpy() != 0) & np.isfinite(values).all(axis=1)
    return numeric.reset_index(drop=True)


def read_clnf_head(pose_path: str | Path, gaze_path: str | Path) -> pd.DataFrame:
    """DAIC-WOZ CLNF pose and gaze joined on frame: frame, timestamp, success and `HEAD_COLUMNS`.

    A frame counts as a success when both files say so; a frame in only one file is a failure.
    """
    pose = read_clnf_table(pose_path, CLNF_POSE_COLUMNS)
    gaze = read_clnf_table(gaze_path, tuple((name,) for name in CLNF_GAZE_COLUMNS))
    for path, table in ((pose_path, pose), (gaze_path, gaze)):
        if table["frame"].duplicated().any():
            raise ValueError(f"CLNF file {path}: several rows share a frame number")
    pose = pose.rename(columns=dict(zip((names[0] for names in CLNF_POSE_COLUMNS), HEAD_COLUMNS[:6])))
    gaze = gaze.rename(columns=dict(zip(CLNF_GAZE_COLUMNS, HEAD_COLUMNS[6:])))
    joined = pose.merge(gaze, on="frame", how="outer", suffixes=("", "_gaze"), indicator=True).sort_values("frame")
    both = (joined.pop("_merge") == "both").to_numpy()
    joined["timestamp"] = joined["timestamp"].fillna(joined.pop("timestamp_gaze"))
    joined["success"] = both & joined["success"].eq(True).to_numpy() & joined.pop("success_gaze").eq(True).to_numpy()
    joined[list(HEAD_COLUMNS)] = joined[list(HEAD_COLUMNS)].fillna(0.0)
    return joined[["frame", "timestamp", "success", *HEAD_COLUMNS]].reset_index(drop=True)


def read_resnet_mat(path: str | Path) -> np.ndarray:
    """E-DAIC's `CNN_ResNet.mat`: its variable `feature`, float32 [N, 2048]; ValueError naming the file."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ResNet feature file {path} does not exist")
    try:
        contents = loadmat(path)
    except (MatReadError, ValueError, TypeError, NotImplementedError, OSError) as error:
        raise ValueError(f"ResNet feature file {path} cannot be read as a MATLAB file: {error}") from error
    if "feature" not in contents:
        names = [name for name in contents if not name.startswith("__")]
        raise ValueError(f"ResNet feature file {path} holds no variable 'feature' (it holds {names})")
    feature = np.asarray(contents["feature"])
    if feature.ndim != 2 or feature.shape[1] != EDAIC_VISUAL_DIM or len(feature) == 0:
        raise ValueError(f"ResNet feature file {path}: 'feature' has shape {feature.shape}, "
                         f"expected [frames, {EDAIC_VISUAL_DIM}]")
    if not np.issubdtype(feature.dtype, np.number):
        raise ValueError(f"ResNet feature file {path}: 'feature' is not numeric ({feature.dtype})")
    return feature.astype(np.float32)


def resnet_timeline(num_rows: int, openface: pd.DataFrame, audio_seconds: float) -> tuple[np.ndarray, np.ndarray, str]:
    """Seconds of each `CNN_ResNet.mat` row, the OpenFace row it belongs to (-1: none) and how this was decided.

    The .mat has no times; its rows are one per video frame, computed on OpenFace's aligned
    faces. Where its row count equals the OpenFace CSV's, row i is OpenFace's row i; where it
    equals the number of OpenFace rows with success = 1, row i is the i-th of those (faces
    saved only where tracking succeeded); either way the row takes that OpenFace row's
    timestamp. Otherwise rows are spread evenly over the audio, row i at i * audio_seconds / N
    (as public E-DAIC loaders do), and the head stream is matched by timestamp.
    """
    rows = np.arange(num_rows)
    success = openface["success"].to_numpy(dtype=bool)
    stamps = openface["timestamp"].to_numpy(dtype=np.float64)
    if num_rows == len(openface):
        return stamps.copy(), rows, "one ResNet row per OpenFace row; OpenFace timestamps"
    if num_rows == int(success.sum()):
        picked = np.flatnonzero(success)
        return stamps[picked], picked, "one ResNet row per successful OpenFace row; OpenFace timestamps"
    if audio_seconds <= 0:
        raise ValueError("resnet_timeline needs a positive audio duration when the row counts do not match")
    return rows * (audio_seconds / num_rows), np.full(num_rows, -1), \
        f"ResNet rows ({num_rows}) match no OpenFace row count ({len(openface)}); spread evenly over the audio"


def load_edaic_session(row, keep: int = 4, every: int = 100) -> SessionStreams:
    """An E-DAIC participant's ResNet rows (`keep` of every `every`) and the 12 OpenFace head columns at the same times.

    `row` is a row of `index_edaic` (visual_path, head_path, audio_path). Rows that are all
    zeros or not finite, and those whose OpenFace frame failed, are invalid; see `resnet_timeline`.
    """
    feature = read_resnet_mat(row["visual_path"])
    openface = read_openface_csv(row["head_path"])
    seconds = audio_seconds(row["audio_path"])
    times, openface_row, timeline = resnet_timeline(len(feature), openface, seconds)
    picked = sampled_rows(len(feature), keep, every)
    visual = feature[picked]
    visual_valid = np.isfinite(visual).all(axis=1) & (visual != 0).any(axis=1)
    values = openface[list(HEAD_COLUMNS)].to_numpy(dtype=np.float32)
    success = openface["success"].to_numpy(dtype=bool)
    if (openface_row >= 0).all():
        rows = openface_row[picked]
        head = np.where(success[rows, None], values[rows], 0.0).astype(np.float32)
        head_valid = success[rows].copy()
        visual_valid &= head_valid
    else:
        head, head_valid = match_openface(openface, picked, times[picked], by="timestamp",
                                          source=f"OpenFace CSV {row['head_path']}")
    visual[~visual_valid] = 0.0
    return _streams(picked, times[picked], visual, visual_valid, head, head_valid, timeline, row["visual_path"])


def load_daicwoz_session(row, keep: int = 4, every: int = 100) -> SessionStreams:
    """A DAIC-WOZ interview's 20 CLNF action units (`keep` of every `every` frames) and its 12 head columns.

    `row` is a row of `index_daicwoz` (visual_path = CLNF_AUs, head_path = CLNF_pose, gaze_path =
    CLNF_gaze). Times are the AU file's timestamps; head rows are matched by frame number.
    """
    aus = read_clnf_table(row["visual_path"], tuple((name,) for name in DAICWOZ_AU_COLUMNS))
    head_table = read_clnf_head(row["head_path"], row["gaze_path"])
    if len(aus) == 0:
        raise ValueError(f"CLNF file {row['visual_path']} holds no frames")
    picked = sampled_rows(len(aus), keep, every)
    chosen = aus.iloc[picked]
    visual_valid = chosen["success"].to_numpy(dtype=bool)
    visual = np.where(visual_valid[:, None], chosen[list(DAICWOZ_AU_COLUMNS)].to_numpy(np.float32), 0.0)
    frame_index = chosen["frame"].to_numpy(np.int64) - 1
    times = chosen["timestamp"].to_numpy(np.float64)
    head, head_valid = match_openface(head_table, frame_index, times, by="frame",
                                      source=f"CLNF files {row['head_path']}, {row['gaze_path']}")
    return _streams(frame_index, times, visual.astype(np.float32), visual_valid, head, head_valid,
                    "CLNF timestamps", row["visual_path"])


def head_columns_as_written(row) -> pd.DataFrame:
    """Where a session's distributed files hold MDDR's 12 head columns: per column (`HEAD_COLUMNS` order)
    the file, the name it writes there and its position (1 = first column), read from the files' headers."""
    if row["gaze_path"]:
        gaze = tuple((name,) for name in CLNF_GAZE_COLUMNS)
        parts = [(row["head_path"], CLNF_POSE_COLUMNS), (row["gaze_path"], gaze)]
        fold = str.lower
    else:
        parts = [(row["head_path"], tuple((name,) for name in HEAD_COLUMNS))]
        fold = str
    rows, ours = [], iter(HEAD_COLUMNS)
    for path, wanted in parts:
        try:
            header = [str(name).strip() for name in pd.read_csv(path, nrows=0, skipinitialspace=True).columns]
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise ValueError(f"head file {path}: its header cannot be read ({error})") from error
        for alternatives in wanted:
            found = [name for name in header if fold(name) in {fold(option) for option in alternatives}]
            if not found:
                raise ValueError(f"head file {path} lacks the column {' or '.join(alternatives)} (columns: {header})")
            rows.append({"MDDR's column": next(ours), "file": Path(path).name, "column in the file": found[0],
                         "position": header.index(found[0]) + 1})
    return pd.DataFrame(rows)


def load_session(row, keep: int = 4, every: int = 100) -> SessionStreams:
    """`load_daicwoz_session` or `load_edaic_session`, by the row's corpus (its gaze_path is "" for E-DAIC)."""
    return load_daicwoz_session(row, keep, every) if row["gaze_path"] else load_edaic_session(row, keep, every)


def audio_seconds(path: str | Path) -> float:
    """Duration of a WAV file from its header; ValueError naming the file."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as error:
        raise ValueError(f"audio file {path} cannot be read: {error}") from error
    return info.frames / info.samplerate


def read_daicwoz_transcript(path: str | Path, participant: str | int) -> pd.DataFrame:
    """A DAIC-WOZ transcript as start, stop (seconds of the audio), speaker ("Ellie"/"Participant"), value.

    The session's documented offset (`TRANSCRIPT_OFFSETS`) is added to the times and `[sync]`
    rows are dropped. ValueError naming the file for a missing column or an unknown speaker.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
                            encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"DAIC-WOZ transcript {path}: cannot be read as TAB-separated text ({error})") from error
    table = _named_columns(table, path, "DAIC-WOZ transcript", {"start_time": "start", "stop_time": "stop",
                                                                "speaker": "speaker", "value": "value"},
                           "TAB-separated start_time, stop_time, speaker, value")
    table = table[~table["value"].str.strip().str.match(_SYNC_ROW)]
    speakers = table["speaker"].str.strip().str.lower()
    unknown = sorted(set(speakers) - {"ellie", "participant"})
    if unknown:
        raise ValueError(f"DAIC-WOZ transcript {path}: unknown speakers {unknown}; expected Ellie and Participant")
    times = _numeric_times(table, path, "DAIC-WOZ transcript") + TRANSCRIPT_OFFSETS.get(str(int(participant)), 0.0)
    return pd.DataFrame({"start": times["start"], "stop": times["stop"],
                         "speaker": speakers.map({"ellie": "Ellie", "participant": "Participant"}),
                         "value": table["value"]}).reset_index(drop=True)


def read_edaic_transcript(path: str | Path) -> pd.DataFrame:
    """An E-DAIC transcript (speech recognition output) as start, stop (seconds of the audio), text."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"E-DAIC transcript {path}: cannot be read as CSV ({error})") from error
    table = _named_columns(table, path, "E-DAIC transcript",
                           {"start_time": "start", "end_time": "stop", "text": "text"},
                           "comma-separated Start_Time, End_Time, Text, Confidence")
    times = _numeric_times(table, path, "E-DAIC transcript")
    return pd.DataFrame({"start": times["start"], "stop": times["stop"], "text": table["text"]}).reset_index(drop=True)


def participant_intervals(transcript: pd.DataFrame, participant: str | int | None = None) -> np.ndarray:
    """[K, 2] sorted, non-overlapping (start, stop) seconds of the participant's speech.

    A DAIC-WOZ transcript (with a speaker column): Participant rows only, none that end before
    Ellie's first row starts, minus the session's `INTERRUPTIONS`. An E-DAIC transcript (no
    speaker column): every segment.
    """
    rows = transcript
    if "speaker" in transcript:
        rows = transcript[transcript["speaker"] == "Participant"]
        ellie = transcript.loc[transcript["speaker"] == "Ellie", "start"]
        if len(ellie):
            rows = rows[rows["stop"] > ellie.min()]
    spans = rows[["start", "stop"]].to_numpy(dtype=np.float64).reshape(-1, 2)
    spans = _merged(spans[spans[:, 1] > spans[:, 0]])
    for cut_start, cut_stop in INTERRUPTIONS.get(str(int(participant)) if participant is not None else "", ()):
        spans = _subtract(spans, cut_start, cut_stop)
    return spans


def speech_mask(intervals: np.ndarray, num_frames: int, rate: float = AUDIO_RATE_HZ) -> np.ndarray:
    """True for each audio frame (frame k spans [k/rate, (k+1)/rate)) whose centre lies in an interval [start, stop)."""
    centres = (np.arange(num_frames) + 0.5) / rate
    spans = _merged(np.asarray(intervals, dtype=np.float64).reshape(-1, 2))
    if len(spans) == 0:
        return np.zeros(num_frames, dtype=bool)
    position = np.searchsorted(spans[:, 0], centres, side="right") - 1
    inside = position >= 0
    inside[inside] = centres[inside] < spans[position[inside], 1]
    return inside


def participant_speech_mask(row, num_frames: int, rate: float = AUDIO_RATE_HZ) -> np.ndarray:
    """Participant-speech mask of an index row's audio frames, from its transcript (see `participant_intervals`)."""
    if row["gaze_path"]:
        transcript = read_daicwoz_transcript(row["transcript_path"], row["subject"])
    else:
        transcript = read_edaic_transcript(row["transcript_path"])
    return speech_mask(participant_intervals(transcript, row["subject"]), num_frames, rate)


def _streams(frame_index, times, visual, visual_valid, head, head_valid, timeline: str, source) -> SessionStreams:
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        raise ValueError(f"{source}: the sampled frames' times do not increase ({timeline})")
    return SessionStreams(np.asarray(frame_index, np.int64), np.asarray(times, np.float64), visual,
                          np.asarray(visual_valid, bool), np.asarray(head, np.float32).reshape(-1, HEAD_DIM),
                          np.asarray(head_valid, bool), timeline)


def _named_columns(table: pd.DataFrame, path: Path, what: str, wanted: dict[str, str], layout: str) -> pd.DataFrame:
    present = {_plain(name): name for name in table.columns}
    missing = [name for name in wanted if _plain(name) not in present]
    if missing:
        raise ValueError(f"{what} {path}: lacks the columns {missing}; expected {layout} "
                         f"(found {list(table.columns)})")
    return table[[present[_plain(name)] for name in wanted]].set_axis(list(wanted.values()), axis=1)


def _numeric_times(table: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    try:
        return table[["start", "stop"]].apply(lambda column: pd.to_numeric(column.str.strip())).astype(np.float64)
    except ValueError as error:
        raise ValueError(f"{what} {path}: times are not numbers ({error})") from error


def _merged(spans: np.ndarray) -> np.ndarray:
    if len(spans) == 0:
        return spans.reshape(0, 2)
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    merged = [list(spans[0])]
    for start, stop in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return np.array(merged, dtype=np.float64)


def _subtract(spans: np.ndarray, cut_start: float, cut_stop: float) -> np.ndarray:
    pieces = []
    for start, stop in spans:
        if start < cut_start:
            pieces.append((start, min(stop, cut_start)))
        if stop > cut_stop:
            pieces.append((max(start, cut_stop), stop))
    return np.array(pieces, dtype=np.float64).reshape(-1, 2)


def _plain(name) -> str:
    return re.sub(r"[\s_\-]", "", str(name).lower())


def _participant_id(text: str, path: Path, line: int, corpus: str) -> str:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or not value.is_integer() or value < 0:
        raise ValueError(f"{corpus} label file {path}, line {line}: participant ID {text!r} is not a whole number")
    return str(int(value))


def _describe_rows(table: pd.DataFrame) -> str:
    dataset = table.attrs.get("dataset", "one table")
    splits = [split for split in SPLITS if "split" in table and split in set(table["split"])]
    return f"{dataset} {'/'.join(splits)}" if splits else dataset


def _index_corpus(root: str | Path, corpus: str, keep_unlabelled: bool) -> pd.DataFrame:
    root = Path(root).expanduser().absolute()
    if not root.exists():
        raise FileNotFoundError(f"{corpus} root {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{corpus} root {root} is not a folder")
    files, archives, found_labels = {}, {}, {}
    label_names = {name.lower() for names in _LABEL_FILES[corpus].values() for name in names}
    for path in _walk(root):
        if path.name.lower() in label_names:
            found_labels.setdefault(path.name.lower(), []).append(path)
        elif match := _ARCHIVE.match(path.name):
            archives[str(int(match["id"]))] = path
        else:
            for column, pattern in _FILE_PATTERNS[corpus].items():
                if match := pattern.match(path.name):
                    session = files.setdefault(str(int(match["id"])), {})
                    if column in session:
                        raise ValueError(f"{corpus}: two copies of one file: {session[column]} and {path}")
                    session[column] = path
    labels = _read_splits(root, corpus, found_labels)
    listed = dict.fromkeys(labels["participant"])
    no_session = [pid for pid in listed if pid not in files and pid not in archives]
    packed = [str(archives[pid]) for pid in listed if pid not in files and pid in archives]
    if packed:
        raise ValueError(f"{corpus}: sessions still packed; unpack them in place first: {', '.join(packed)}")
    incomplete = [f"{next(iter(files[pid].values())).parent}: lacks {pid}_{_SESSION_FILES[corpus][column][0]}"
                  for pid in listed if pid in files for column in _SESSION_FILES[corpus] if column not in files[pid]]
    if incomplete:
        raise FileNotFoundError(f"{corpus}: session folders lack files MDDR reads:\n  " + "\n  ".join(incomplete))
    without_label = sorted((pid for pid in files if pid not in listed), key=_natural_key)
    rows = []
    for record in labels.to_dict("records"):
        pid = record["participant"]
        if pid not in files:
            continue
        session = files[pid]
        rows.append(dict(
            video_id=f"{pid}_{INTERVIEW_TASK}", subject=pid, session=1, task=INTERVIEW_TASK, split=record["split"],
            video_path="", audio_path=str(session["audio_path"]), label=record["label"], recording=pid,
            label_path=record["label_path"], scale=PHQ_8.name, gender=record["gender"],
            session_dir=str(session["audio_path"].parent), transcript_path=str(session["transcript_path"]),
            visual_path=str(session["visual_path"]), head_path=str(session["head_path"]),
            gaze_path=str(session.get("gaze_path", "")),
        ))
    index = pd.DataFrame(rows, columns=list(DAIC_INDEX_COLUMNS))
    unlabelled = index.loc[index["label"].isna(), "video_id"].tolist()
    if no_session or without_label or unlabelled:
        warnings.warn(_unmatched_message(corpus, root, no_session, without_label, unlabelled, keep_unlabelled),
                      DaicIndexWarning, stacklevel=3)
    if not keep_unlabelled:
        index = index[index["label"].notna()]
    index = index.astype({"label": "Int64" if keep_unlabelled else "int64", "session": "int64"})
    order = index.assign(_split=index["split"].map(SPLITS.index), _subject=index["subject"].astype(int)) \
        .sort_values(["_split", "_subject"]).index
    index = index.loc[order].reset_index(drop=True)
    disagreements = _binary_disagreements(labels)
    unexpected = [pid for pid in disagreements if pid not in KNOWN_BINARY_DEFECTS]
    if unexpected:
        warnings.warn(f"{corpus}: the binary column disagrees with PHQ-8 >= 10 for participants {unexpected}; "
                      "the PHQ-8 total is used", DaicIndexWarning, stacklevel=3)
    index.attrs.update(dataset=corpus, root=str(root), scale=PHQ_8.name,
                       visual_dim=DAICWOZ_VISUAL_DIM if corpus == DAICWOZ else EDAIC_VISUAL_DIM,
                       sessions_without_label=without_label, labels_without_session=no_session,
                       unlabelled=unlabelled, binary_disagreements=disagreements)
    return index


def _read_splits(root: Path, corpus: str, found: dict[str, list[Path]]) -> pd.DataFrame:
    """Every split file's rows with their split and file; the first Testing file present wins."""
    parts = []
    for split, names in _LABEL_FILES[corpus].items():
        present = [name for name in names if name.lower() in found]
        if not present:
            if split != "Testing":
                raise FileNotFoundError(f"{corpus} root {root} holds no label file {names[0]} (the {split} split)")
            warnings.warn(f"{corpus} root {root} holds no {' or '.join(names)}: no Testing split",
                          DaicIndexWarning, stacklevel=4)
            continue
        copies = found[present[0].lower()]
        if len(copies) > 1:
            raise ValueError(f"{corpus}: label file {present[0]} appears more than once: {', '.join(map(str, copies))}")
        table = read_label_table(copies[0], corpus)
        parts.append(table.assign(split=split, label_path=str(copies[0])))
    labels = pd.concat(parts, ignore_index=True)
    twice = labels[labels["participant"].duplicated(keep=False)]
    if len(twice):
        listed = "; ".join(f"{pid} in {', '.join(group['label_path'])}" for pid, group in twice.groupby("participant"))
        raise ValueError(f"{corpus}: participants listed in two split files: {listed}")
    return labels


def _binary_disagreements(labels: pd.DataFrame) -> list[str]:
    shipped = labels[(labels["binary"] != "") & labels["label"].notna()]
    stated = pd.to_numeric(shipped["binary"], errors="coerce")
    implied = PHQ_8.is_depressed(shipped["label"].astype(float).to_numpy())
    return sorted(shipped.loc[stated.to_numpy() != implied, "participant"], key=_natural_key)


def _unmatched_message(corpus: str, root: Path, no_session: list[str], without_label: list[str],
                       unlabelled: list[str], keep_unlabelled: bool) -> str:
    lines = [f"{corpus} under {root}:"]
    if no_session:
        lines.append(f"{len(no_session)} participant(s) in the label files without a session folder, left out: "
                     + ", ".join(no_session))
    if without_label:
        lines.append(f"{len(without_label)} session folder(s) in no split file, left out: " + ", ".join(without_label))
    if unlabelled:
        fate = "kept with a missing label" if keep_unlabelled else "left out of the index"
        lines.append(f"{len(unlabelled)} session(s) listed without a PHQ-8 score, {fate}: " + ", ".join(unlabelled))
    return "\n".join(lines)
