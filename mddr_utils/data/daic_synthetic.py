"""Synthetic DAIC-WOZ and E-DAIC trees in the corpora's exact layouts, for tests and the demo build.

The corpora are licensed; these trees let `daic.index_daicwoz`, `daic.index_edaic` and the session
readers run on files built the way the distributed ones are (file names, headers, separators,
the `.mat` variable, 16 kHz mono PCM16 WAV, transcripts, label files). What the files hold is made
by the project itself (`daic_sessions`): each participant is a demo-cohort video rendered with cues
that follow the PHQ-8 label (a stiller head, a flatter face, slower and more monotone speech with
longer pauses, the more severe), measured by the project's own extractors (pose and gaze by the
head estimator, ResNet-50 rows by the visual encoder), with the interviewer's voice added in the
participant's pauses. The action units are the one exception: the project has no action-unit
detector, so they are the expression the renderer drew on each frame, not a measurement. The
trees carry no clinical meaning.

The writers of single files (`write_clnf_file`, `write_openface21_csv`, `write_resnet_mat`,
`write_wav`, the transcript and label writers) take arrays, so a test of a file format can feed
them a few values directly.

`make_synthetic_corpus` is what the book runs on when no licensed copy is given: a whole tree at
the size of a book profile (`SYNTHETIC_SIZES`), written once and reused while its parameters hold.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..features.head import HEAD_COLUMNS, euler_to_rotation
from .avec import SPLITS
from .daic import DAICWOZ, DAICWOZ_AU_COLUMNS, EDAIC, TRANSCRIPT_OFFSETS
from .daic_sessions import SAMPLE_RATE, InterviewSession, interview_session
from .demo_cohort import replace_folder
from .scales import PHQ_8

FRAME_COLUMNS = ("frame", "timestamp", "confidence", "success")
CLNF_POSE_HEADER = FRAME_COLUMNS + ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")
CLNF_GAZE_HEADER = FRAME_COLUMNS + ("x_0", "y_0", "z_0", "x_1", "y_1", "z_1", "x_h0", "y_h0", "z_h0",
                                   "x_h1", "y_h1", "z_h1")
CLNF_AUS_HEADER = FRAME_COLUMNS + DAICWOZ_AU_COLUMNS
EDAIC_AU_NAMES = ("01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "45")
OPENFACE21_HEADER = (FRAME_COLUMNS + HEAD_COLUMNS + ("gaze_angle_x", "gaze_angle_y")
                     + tuple(f"AU{name}_r" for name in EDAIC_AU_NAMES)
                     + tuple(f"AU{name}_c" for name in sorted(EDAIC_AU_NAMES + ("28",))))
"""The 53 columns of E-DAIC's `<ID>_OpenFace2.1.0_Pose_gaze_AUs.csv`."""
DAICWOZ_TRAIN_HEADER = ("Participant_ID", "PHQ8_Binary", "PHQ8_Score", "Gender", "PHQ8_NoInterest",
                        "PHQ8_Depressed", "PHQ8_Sleep", "PHQ8_Tired", "PHQ8_Appetite", "PHQ8_Failure",
                        "PHQ8_Concentrating", "PHQ8_Moving")
EDAIC_SPLIT_HEADER = ("Participant_ID", "Gender", "PHQ_Binary", "PHQ_Score", "PCL-C (PTSD)", "PTSD Severity")


def write_clnf_file(path: str | Path, header, rows: np.ndarray, separator: str = ", ") -> Path:
    """A CLNF-style text file: one header line and one line per frame, fields joined by `separator`."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(header):
        raise ValueError(f"{path}: rows of shape {rows.shape} do not fit the {len(header)} columns")
    lines = [separator.join(header)]
    lines += [separator.join(_number(value) for value in row) for row in rows]
    return _write_text(path, "\n".join(lines) + "\n")


def write_openface21_csv(path: str | Path, timestamps: np.ndarray, success: np.ndarray, head: np.ndarray,
                         action_units: np.ndarray | None = None, separator: str = ",") -> Path:
    """E-DAIC's OpenFace 2.1 CSV (`OPENFACE21_HEADER`) from per-frame times, success, the 12 head columns and AUs.

    `action_units` [N, 35] (17 intensities, then 18 presences) default to zeros; the gaze angles
    are computed from the two gaze vectors as OpenFace does.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    count = len(timestamps)
    head = np.asarray(head, dtype=np.float64).reshape(count, len(HEAD_COLUMNS))
    gaze = head[:, 6:9] + head[:, 9:12]
    angles = np.stack([np.arctan2(gaze[:, 0], -gaze[:, 2]), np.arctan2(gaze[:, 1], -gaze[:, 2])], axis=1)
    units = np.zeros((count, 35)) if action_units is None else np.asarray(action_units, dtype=np.float64)
    success = np.asarray(success, dtype=bool)
    confidence = np.where(success, 0.98, 0.0)
    frames = np.column_stack([np.arange(1, count + 1), timestamps, confidence, success, head,
                              np.where(success[:, None], angles, 0.0), units])
    return write_clnf_file(path, OPENFACE21_HEADER, frames, separator)


def write_resnet_mat(path: str | Path, feature: np.ndarray) -> Path:
    """E-DAIC's `CNN_ResNet.mat`: one variable `feature`, float [N, 2048]."""
    from scipy.io import savemat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"feature": np.asarray(feature, dtype=np.float32)})
    return path


def write_wav(path: str | Path, waveform: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Mono PCM16 WAV of a float waveform in [-1, 1]."""
    from scipy.io import wavfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(waveform, -1.0, 1.0) * 32767).astype(np.int16))
    return path


def write_daicwoz_transcript(path: str | Path, rows) -> Path:
    """DAIC-WOZ transcript, TAB-separated start_time, stop_time, speaker, value; rows (start, stop, speaker, value)."""
    lines = ["start_time\tstop_time\tspeaker\tvalue"]
    lines += [f"{start:.3f}\t{stop:.3f}\t{speaker}\t{value}" for start, stop, speaker, value in rows]
    return _write_text(path, "\n".join(lines) + "\n")


def write_edaic_transcript(path: str | Path, rows) -> Path:
    """E-DAIC transcript (comma: Start_Time, End_Time, Text, Confidence) from rows (start, stop, text, confidence)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(("Start_Time", "End_Time", "Text", "Confidence"))
        writer.writerows((f"{start:.2f}", f"{stop:.2f}", text, f"{confidence:.6f}")
                         for start, stop, text, confidence in rows)
    return path


def write_label_file(path: str | Path, header, rows, separator: str = ",") -> Path:
    """A label CSV: `header` and `rows` (sequences of values) joined by `separator`."""
    lines = [separator.join(header)] + [separator.join(str(value) for value in row) for row in rows]
    return _write_text(path, "\n".join(lines) + "\n")


def write_daicwoz_tree(root: str | Path, participants: dict[str, dict[int, int]], seconds: float = 6.0,
                       seed: int = 0, separator: str = ", ", label_separator: str = ",",
                       test_labels: bool = True) -> dict:
    """Write a DAIC-WOZ tree under `root`; return, per participant ID, what was planted.

    participants: {split: {ID: PHQ-8 total}} for the splits Training, Development, Testing.
    Each ID gets `<ID>_P/` with AUDIO.wav, TRANSCRIPT.csv, CLNF_pose/gaze/AUs.txt (fields joined
    by `separator`; the corpus uses ", ") from its `daic_sessions.interview_session` of `seconds`;
    the root gets the AVEC2017 split files (fields joined by `label_separator`),
    test_split_Depression_AVEC2017.csv and, if `test_labels`, full_test_split.csv. IDs with a
    documented transcript offset (318, 321, 341, 362) get their transcript shifted by it, as in the corpus.
    The planted record per ID: split, label, gender, timestamps, success, head [N, 12],
    action_units [N, 20] and speech (participant intervals, seconds of the audio).
    """
    root = Path(root)
    names = [column[2:4] for column in DAICWOZ_AU_COLUMNS if column.endswith("_r")]
    presences = [column[2:4] for column in DAICWOZ_AU_COLUMNS if column.endswith("_c")]
    planted = {}
    for split, labels in participants.items():
        for participant, label in labels.items():
            session = interview_session(participant, label, seconds, seed)
            folder = root / f"{participant}_P"
            frames = _frame_columns(session, confidence=0.95)
            head = session.head
            action_units = session.action_units(names, presences)
            write_clnf_file(folder / f"{participant}_CLNF_pose.txt", CLNF_POSE_HEADER,
                            np.column_stack([frames, head[:, :6]]), separator)
            write_clnf_file(folder / f"{participant}_CLNF_gaze.txt", CLNF_GAZE_HEADER,
                            np.column_stack([frames, head[:, 6:], _head_frame_gaze(head)]), separator)
            write_clnf_file(folder / f"{participant}_CLNF_AUs.txt", CLNF_AUS_HEADER,
                            np.column_stack([frames, action_units]), separator)
            write_wav(folder / f"{participant}_AUDIO.wav", session.waveform)
            shift = TRANSCRIPT_OFFSETS.get(str(participant), 0.0)
            rows = [(start - shift, stop - shift, speaker, text) for start, stop, speaker, text in session.turns]
            write_daicwoz_transcript(folder / f"{participant}_TRANSCRIPT.csv", rows)
            planted[str(participant)] = dict(split=split, label=label, gender=str(int(_is_male(participant, seed))),
                                             action_units=action_units, **_planted(session))
    _write_daicwoz_labels(root, participants, planted, label_separator, test_labels, np.random.default_rng([seed, 9]))
    return planted


def write_edaic_tree(root: str | Path, participants: dict[str, dict[int, int]], seconds: float = 6.0,
                     seed: int = 0, separator: str = ",", label_separator: str = ",",
                     test_labels: bool = True, resnet_rows: str = "all") -> dict:
    """Write an E-DAIC tree under `root`; return, per participant ID, what was planted.

    participants: {split: {ID: PHQ-8 total}}. Each ID gets `<ID>_P/` with AUDIO.wav,
    Transcript.csv (the participant's turns, no speaker column) and features/ with the OpenFace
    2.1 CSV (fields joined by `separator`) and CNN_ResNet.mat: one row per frame
    (`resnet_rows="all"`) or per successfully tracked frame ("successful"), all from its
    `daic_sessions.interview_session` of `seconds`. labels/ gets train/dev/test_split.csv (test
    without PHQ columns unless `test_labels`; fields joined by `label_separator`) and
    Detailed_PHQ8_Labels.csv. The planted record: split, label, gender, timestamps, success,
    head [N, 12], action_units [N, 35] (OpenFace's 17 intensities and 18 presences), resnet and speech.
    """
    if resnet_rows not in ("all", "successful"):
        raise ValueError(f"resnet_rows must be 'all' or 'successful', got {resnet_rows!r}")
    root = Path(root)
    planted = {}
    for split, labels in participants.items():
        for participant, label in labels.items():
            session = interview_session(participant, label, seconds, seed, resnet=True)
            folder = root / f"{participant}_P"
            features = folder / "features"
            action_units = session.action_units(EDAIC_AU_NAMES, sorted(EDAIC_AU_NAMES + ("28",)))
            write_openface21_csv(features / f"{participant}_OpenFace2.1.0_Pose_gaze_AUs.csv", session.timestamps,
                                 session.success, session.head, action_units, separator)
            resnet = session.resnet if resnet_rows == "all" else session.resnet[session.success]
            write_resnet_mat(features / f"{participant}_CNN_ResNet.mat", resnet)
            write_wav(folder / f"{participant}_AUDIO.wav", session.waveform)
            speech = set(map(tuple, session.speech))
            write_edaic_transcript(folder / f"{participant}_Transcript.csv",
                                   [(start, stop, text, 0.9) for start, stop, speaker, text in session.turns
                                    if (start, stop) in speech])
            gender = "male" if _is_male(participant, seed) else "female"
            planted[str(participant)] = dict(split=split, label=label, gender=gender, resnet=resnet,
                                             action_units=action_units, **_planted(session))
    _write_edaic_labels(root, participants, planted, label_separator, test_labels, np.random.default_rng([seed, 19]))
    return planted


SYNTHETIC_SIZES = {
    "smoke": dict(sessions={"Training": 2, "Development": 2, "Testing": 2}, seconds=2.0),
    "demo": dict(sessions={"Training": 14, "Development": 6, "Testing": 8}, seconds=12.0),
    "paper": dict(sessions={"Training": 14, "Development": 6, "Testing": 8}, seconds=12.0),
}
"""Sessions per split and seconds per session of the synthetic trees, per book profile (the paper
profile runs on the licensed corpora, so its synthetic tree keeps the demo size). Rendering and
measuring a session costs about a second per second of interview on two cores, so the smoke
profile's sessions, which only have to run, last 2 seconds (60 frames, 3 of them sampled)."""
SYNTHETIC_MANIFEST = "synthetic_tree.json"
SYNTHETIC_VERSION = 2
"""Raised whenever what the trees hold changes, so that older trees are rebuilt (2: rendered and measured
by the project instead of generated)."""
ABSENT_DAICWOZ_IDS = frozenset({342, 394, 398, 460})
"""IDs in DAIC-WOZ's range 300-492 that the corpus lacks; the synthetic trees skip them too."""


def synthetic_participants(corpus: str, sessions: dict[str, int], seed: int = 0) -> dict[str, dict[int, int]]:
    """{split: {ID: PHQ-8 total}} numbered as the corpus numbers its people, labels spread over 0-24 in every split.

    DAIC-WOZ: IDs from 300 up, skipping those the corpus lacks. E-DAIC: Training and Development
    mostly DAIC-WOZ's IDs with a fifth from 600 up (its agent-led interviews), Testing all from 600
    up, as in the corpus. Each split's labels are one per equal slice of 0-24, shuffled (the real
    corpora hold more low scores than high ones).
    """
    if corpus not in (DAICWOZ, EDAIC):
        raise ValueError(f"corpus must be {DAICWOZ!r} or {EDAIC!r}, got {corpus!r}")
    unknown = sorted(set(sessions) - set(SPLITS))
    if unknown or any(int(count) < 1 for count in sessions.values()):
        raise ValueError(f"sessions must give a positive count for some of {SPLITS}, got {sessions}")
    rng = np.random.default_rng([seed, 29])
    interviews = iter(number for number in range(300, 493) if number not in ABSENT_DAICWOZ_IDS)
    agent_led = iter(range(600, 719))
    participants = {}
    for split, count in sessions.items():
        count = int(count)
        from_agent = count if corpus == EDAIC and split == "Testing" else (count // 5 if corpus == EDAIC else 0)
        ids = [next(interviews) for _ in range(count - from_agent)] + [next(agent_led) for _ in range(from_agent)]
        labels = np.minimum(((rng.permutation(count) + rng.random(count)) / count * (PHQ_8.maximum + 1)).astype(int),
                            PHQ_8.maximum)
        participants[split] = {pid: int(label) for pid, label in zip(ids, labels)}
    return participants


def make_synthetic_corpus(root: str | Path, corpus: str, sessions: dict[str, int], seconds: float,
                          seed: int = 0) -> Path:
    """Write (or reuse) a synthetic DAIC-WOZ or E-DAIC tree under `root`; return `root`.

    Participants from `synthetic_participants`, sessions written by `write_daicwoz_tree` or
    `write_edaic_tree`. A tree made with the same parameters by this generator version is reused;
    otherwise it is built in a temporary folder beside `root` and renamed into place, so a failed
    build leaves nothing half-written. A `root` that holds other files and no `SYNTHETIC_MANIFEST`
    is never replaced (it may be a licensed copy).
    """
    root = Path(root).expanduser()
    parameters = dict(corpus=corpus, sessions={split: int(count) for split, count in sessions.items()},
                      seconds=float(seconds), seed=int(seed))
    if _reusable_tree(root, parameters):
        return root
    if root.exists() and any(root.iterdir()) and not (root / SYNTHETIC_MANIFEST).exists():
        raise FileExistsError(f"{root} holds files but no {SYNTHETIC_MANIFEST}: not a synthetic tree, "
                              "refusing to replace it")
    participants = synthetic_participants(corpus, parameters["sessions"], seed)
    write_tree = write_daicwoz_tree if corpus == DAICWOZ else write_edaic_tree
    root.parent.mkdir(parents=True, exist_ok=True)
    building = root.with_name(f".{root.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        write_tree(building, participants, seconds=parameters["seconds"], seed=seed)
        files = sorted(path.relative_to(building).as_posix() for path in building.rglob("*") if path.is_file())
        manifest = dict(generator=__name__, version=SYNTHETIC_VERSION, parameters=parameters, files=files)
        (building / SYNTHETIC_MANIFEST).write_text(json.dumps(manifest, indent=1))
        replace_folder(root, building)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


def _reusable_tree(root: Path, parameters: dict) -> bool:
    """Whether root holds a complete tree made with these parameters by this generator version."""
    try:
        manifest = json.loads((root / SYNTHETIC_MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("version") != SYNTHETIC_VERSION \
            or manifest.get("parameters") != parameters:
        return False
    return all((root / name).is_file() and (root / name).stat().st_size > 0 for name in manifest.get("files", []))


def _frame_columns(session: InterviewSession, confidence: float) -> np.ndarray:
    """frame (from 1), timestamp, confidence (`confidence` where tracked, else 0), success."""
    count = len(session.timestamps)
    return np.column_stack([np.arange(1, count + 1), session.timestamps,
                            np.where(session.success, confidence, 0.0), session.success])


def _planted(session: InterviewSession) -> dict:
    return dict(timestamps=session.timestamps, success=session.success, head=session.head, speech=session.speech)


def _is_male(participant: int, seed: int) -> bool:
    """A participant's gender, the same in both trees."""
    return bool(np.random.default_rng([seed, 43, int(participant)]).integers(0, 2))


def _head_frame_gaze(head: np.ndarray) -> np.ndarray:
    """CLNF's gaze in head coordinates (x_h0..z_h1): the camera-frame gaze turned back by the head's rotation."""
    turned = np.zeros((len(head), 6))
    for row, values in enumerate(np.asarray(head, dtype=np.float64)):
        back = euler_to_rotation(values[3:6]).T
        turned[row] = np.concatenate([back @ values[6:9], back @ values[9:12]])
    return turned


def _items(rng: np.random.Generator, total: int) -> list[int]:
    """Eight PHQ-8 item scores (0-3) that add up to `total`."""
    items = [0] * 8
    for _ in range(int(total)):
        items[int(rng.choice([i for i in range(8) if items[i] < 3]))] += 1
    return items


def _write_daicwoz_labels(root: Path, participants: dict, planted: dict, separator: str, test_labels: bool,
                          rng: np.random.Generator) -> None:
    names = {"Training": "train_split_Depression_AVEC2017.csv", "Development": "dev_split_Depression_AVEC2017.csv"}
    for split, name in names.items():
        rows = [(pid, int(PHQ_8.is_depressed(label)), label, planted[str(pid)]["gender"], *_items(rng, label))
                for pid, label in participants.get(split, {}).items()]
        write_label_file(root / name, DAICWOZ_TRAIN_HEADER, rows, separator)
    testing = participants.get("Testing", {})
    write_label_file(root / "test_split_Depression_AVEC2017.csv", ("participant_ID", "Gender"),
                     [(pid, planted[str(pid)]["gender"]) for pid in testing], separator)
    if test_labels:
        write_label_file(root / "full_test_split.csv", ("Participant_ID", "PHQ_Binary", "PHQ_Score", "Gender"),
                         [(pid, int(PHQ_8.is_depressed(label)), label, planted[str(pid)]["gender"])
                          for pid, label in testing.items()], separator)


def _write_edaic_labels(root: Path, participants: dict, planted: dict, separator: str, test_labels: bool,
                        rng: np.random.Generator) -> None:
    folder = root / "labels"
    names = {"Training": "train_split.csv", "Development": "dev_split.csv", "Testing": "test_split.csv"}
    detailed = []
    for split, name in names.items():
        labelled = split != "Testing" or test_labels
        header = EDAIC_SPLIT_HEADER if labelled else ("Participant_ID", "Gender", "PCL-C (PTSD)", "PTSD Severity")
        rows = []
        for pid, label in participants.get(split, {}).items():
            ptsd = f"{float(rng.integers(17, 60)):.1f}"
            phq = (int(PHQ_8.is_depressed(label)), label) if labelled else ()
            rows.append((pid, planted[str(pid)]["gender"], *phq, int(rng.integers(0, 2)), ptsd))
            if split != "Testing":
                detailed.append((pid, *_items(rng, label), label))
        write_label_file(folder / name, header, rows, separator)
    write_label_file(folder / "Detailed_PHQ8_Labels.csv",
                     ("Participant_ID", "PHQ_8NoInterest", "PHQ_8Depressed", "PHQ_8Sleep", "PHQ_8Tired",
                      "PHQ_8Appetite", "PHQ_8Failure", "PHQ_8Concentrating", "PHQ_8Moving", "PHQ_8Total"),
                     detailed, separator)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.9g}"


def _write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
