"""Index the AVEC2013 and AVEC2014 depression corpora on disk (paper section 4.1).

The paper trains and tests on AVEC2013 (150 recordings, one `<ID>_cut_combined` video each,
about 25 minutes) and AVEC2014 (150 recordings, each a Freeform and a Northwind video of about
2 minutes: 300 videos). Every recording carries one BDI-II score (0-63) in `<ID>_Depression.csv`;
both AVEC2014 tasks of a recording share it. IDs read `<subject>_<session>`, e.g. `203_1`.

The corpora are licensed and their copies differ in folder names, so the index searches the whole
tree under `root` and reads everything from file names:

- the split is the nearest folder named Training/Development/Testing (also train/dev/devel/test,
  any case) between `root` and the file;
- AVEC2014 videos are `<ID>_<Task>_video.<ext>` with Task Freeform or Northwind (any case);
  audio `<ID>_<Task>_audio.wav`, `.m4a` or `.mp4` anywhere under root (a .wav wins where a
  copy holds several formats);
- AVEC2013 videos are `<ID>_cut_combined.<ext>`; audio `<ID>_cut_combined.wav`;
- labels `<ID>_Depression.csv` anywhere under root: in a label folder per split, in one
  folder, or beside the videos (copies of one label are accepted if they agree);
- the videos of one recording (AVEC2014's Freeform and Northwind) must sit in one split: a
  recording across two splits would put one session of a person on both sides of an evaluation.

Files whose names start with "." (such as macOS `._` copies) are skipped. A video without a label
and a label without a video are reported (see `index_avec2014`), never silently dropped.
"""
from __future__ import annotations

import itertools
import os
import re
import warnings
from pathlib import Path

import pandas as pd

SPLITS = ("Training", "Development", "Testing")
AVEC2014_TASKS = ("Freeform", "Northwind")
AVEC2013_TASK = "Combined"
BDI_RANGE = (0, 63)
INDEX_COLUMNS = ("video_id", "subject", "session", "task", "split", "video_path", "audio_path", "label",
                 "recording", "label_path")

_SPLIT_FOLDERS = {
    "training": "Training", "train": "Training",
    "development": "Development", "devel": "Development", "dev": "Development",
    "testing": "Testing", "test": "Testing",
}
_VIDEO_EXTENSIONS = "mp4|avi|mov|mkv|m4v"
_ID = r"(?P<subject>\d+)_(?P<session>\d+)"
_LABEL_NAME = re.compile(rf"^{_ID}_depression\.csv$", re.IGNORECASE)
_AVEC2014_VIDEO = re.compile(rf"^{_ID}_(?P<task>freeform|northwind)_video\.(?:{_VIDEO_EXTENSIONS})$", re.IGNORECASE)
_AVEC2014_AUDIO = re.compile(rf"^{_ID}_(?P<task>freeform|northwind)_audio\.(?:wav|mp4|m4a)$", re.IGNORECASE)
_AVEC2013_VIDEO = re.compile(rf"^{_ID}_cut_combined\.(?:{_VIDEO_EXTENSIONS})$", re.IGNORECASE)
_AVEC2013_AUDIO = re.compile(rf"^{_ID}_cut_combined\.wav$", re.IGNORECASE)
# An uncompressed track beats a re-encoded one when a copy holds both.
_AUDIO_PREFERENCE = {".wav": 0, ".m4a": 1, ".mp4": 2}


class AvecIndexWarning(UserWarning):
    """Videos without a label, or labels without a video, found while indexing."""


def index_avec2014(root: str | Path, keep_unlabelled: bool = False) -> pd.DataFrame:
    """One row per AVEC2014 video (Freeform and Northwind) found under `root`, with its BDI-II label.

    Columns: video_id (`<ID>_<Task>`), subject, session, task, split, video_path, audio_path
    ("" means: take the audio from the video's own track), label (int), recording (`<ID>`),
    label_path; paths are absolute. Rows are ordered by split, subject, session and task.

    Unmatched files are reported: an `AvecIndexWarning` lists them, and
    `index.attrs["videos_without_label"]` and `index.attrs["labels_without_video"]` hold their
    paths (empty lists when everything matched). Videos without a label are left out unless
    `keep_unlabelled`, which keeps them with a missing label (the column's dtype is then Int64).
    Raises FileNotFoundError for a missing root, and ValueError naming the files for an empty,
    non-integer or out-of-range label, label copies that disagree, the same video twice, the
    videos of one recording in different splits, two audio files of one kind for a video, a video
    outside any split folder, or no video at all.
    """
    return _index(root, "AVEC2014", _AVEC2014_VIDEO, _AVEC2014_AUDIO, keep_unlabelled)


def index_avec2013(root: str | Path, keep_unlabelled: bool = False) -> pd.DataFrame:
    """One row per AVEC2013 `<ID>_cut_combined` video under `root`, with its BDI-II label.

    Same columns, ordering, reporting and errors as `index_avec2014`; the task is "Combined"
    (the recording's tasks are cut together into one video) and video_id is `<ID>_Combined`.
    """
    return _index(root, "AVEC2013", _AVEC2013_VIDEO, _AVEC2013_AUDIO, keep_unlabelled)


def subject_overlap(index: pd.DataFrame) -> pd.DataFrame:
    """For each pair of splits in `index`, how many subjects (people) appear in both, and which."""
    present = [split for split in SPLITS if split in set(index["split"])]
    subjects = {split: set(index.loc[index["split"] == split, "subject"]) for split in present}
    rows = []
    for first, second in itertools.combinations(present, 2):
        shared = subjects[first] & subjects[second]
        rows.append(dict(split_a=first, split_b=second, subjects_a=len(subjects[first]),
                         subjects_b=len(subjects[second]), shared=len(shared),
                         shared_subjects=sorted(shared, key=_natural_key)))
    return pd.DataFrame(rows, columns=["split_a", "split_b", "subjects_a", "subjects_b", "shared", "shared_subjects"])


def read_label(path: str | Path) -> int:
    """The one integer BDI-II score (0-63) in an `<ID>_Depression.csv` file; ValueError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"label file {path}: cannot be read as text ({error})") from error
    fields = [field.strip() for field in re.split(r"[,;\s]+", text) if field.strip()]
    if not fields:
        raise ValueError(f"label file {path}: is empty, expected one BDI-II integer")
    if len(fields) > 1:
        raise ValueError(f"label file {path}: holds {len(fields)} values {fields[:4]}, expected one BDI-II integer")
    try:
        value = float(fields[0])
    except ValueError:
        raise ValueError(f"label file {path}: {fields[0]!r} is not an integer BDI-II score") from None
    if not value.is_integer():
        raise ValueError(f"label file {path}: {fields[0]!r} is not an integer BDI-II score")
    if not BDI_RANGE[0] <= value <= BDI_RANGE[1]:
        raise ValueError(f"label file {path}: {int(value)} is outside the BDI-II range {BDI_RANGE[0]}..{BDI_RANGE[1]}")
    return int(value)


def _index(root: str | Path, dataset: str, video_name: re.Pattern, audio_name: re.Pattern,
           keep_unlabelled: bool) -> pd.DataFrame:
    root = Path(root).expanduser().absolute()
    if not root.exists():
        raise FileNotFoundError(f"{dataset} root {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{dataset} root {root} is not a folder")
    videos, audio, labels = {}, {}, {}
    for path in _walk(root):
        name = path.name
        if match := video_name.match(name):
            key = _video_key(match, dataset)
            if key in videos:
                raise ValueError(f"{dataset}: video {_video_id(*key)} appears twice: {videos[key]} and {path}")
            videos[key] = path
        elif match := audio_name.match(name):
            audio.setdefault(_video_key(match, dataset), []).append(path)
        elif match := _LABEL_NAME.match(name):
            labels.setdefault(f"{int(match['subject'])}_{int(match['session'])}", []).append(path)
    if not videos:
        raise ValueError(f"{dataset} root {root} holds no {dataset} videos "
                         f"(looked for names like {_example_name(dataset)} in every folder below it)")
    label_of = {recording: _read_label_copies(paths, dataset) for recording, paths in labels.items()}
    rows = []
    for (recording, task), video_path in videos.items():
        subject, session = recording.split("_")
        label, label_path = label_of.get(recording, (pd.NA, ""))
        audio_path = _pick_audio(audio[(recording, task)], dataset) if (recording, task) in audio else ""
        rows.append(dict(
            video_id=_video_id(recording, task), subject=subject, session=int(session), task=task,
            split=_split_of(video_path, root, dataset), video_path=str(video_path), audio_path=audio_path,
            label=label, recording=recording, label_path=label_path,
        ))
    _check_one_split_per_recording(rows, dataset)
    recordings_with_video = {recording for recording, _ in videos}
    unlabelled = sorted((row["video_path"] for row in rows if not row["label_path"]), key=_natural_key)
    orphan_labels = sorted((label_path for recording, (_, label_path) in label_of.items()
                            if recording not in recordings_with_video), key=_natural_key)
    if unlabelled or orphan_labels:
        warnings.warn(_unmatched_message(dataset, root, unlabelled, orphan_labels, keep_unlabelled),
                      AvecIndexWarning, stacklevel=3)
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    if not keep_unlabelled:
        index = index[index["label_path"] != ""]
    index = index.astype({"label": "Int64" if keep_unlabelled else "int64", "session": "int64"})
    order = index.assign(
        _split=index["split"].map(SPLITS.index), _subject=index["subject"].astype(int),
    ).sort_values(["_split", "_subject", "session", "task"]).index
    index = index.loc[order].reset_index(drop=True)
    index.attrs["dataset"] = dataset
    index.attrs["root"] = str(root)
    index.attrs["videos_without_label"] = unlabelled
    index.attrs["labels_without_video"] = orphan_labels
    return index


def _walk(root: Path):
    """Every non-hidden file under root, in a stable order, skipping hidden folders.

    Linked folders are followed: copies of the corpora often link split folders from another disk.
    """
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def _read_label_copies(paths: list[Path], dataset: str) -> tuple[int, str]:
    """The label of a recording and the file it came from; copies of one label must agree."""
    values = {str(path): read_label(path) for path in paths}
    if len(set(values.values())) > 1:
        listed = ", ".join(f"{path} says {value}" for path, value in values.items())
        raise ValueError(f"{dataset}: label files of one recording disagree: {listed}")
    first = min(values, key=_natural_key)
    return values[first], first


def _check_one_split_per_recording(rows: list[dict], dataset: str) -> None:
    """A recording's videos (AVEC2014's two tasks) sit in one split; otherwise one person's session would leak."""
    splits: dict[str, set] = {}
    for row in rows:
        splits.setdefault(row["recording"], set()).add(row["split"])
    mixed = sorted((recording for recording, found in splits.items() if len(found) > 1), key=_natural_key)
    if mixed:
        listed = "; ".join(f"{row['video_path']} is in {row['split']}" for row in rows if row["recording"] == mixed[0])
        others = f" (also: {', '.join(mixed[1:])})" if mixed[1:] else ""
        raise ValueError(f"{dataset}: recording {mixed[0]} has videos in several splits ({listed}); "
                         f"a recording belongs to one split{others}")


def _pick_audio(paths: list[Path], dataset: str) -> str:
    """The preferred audio file of a video (wav over m4a over mp4); two of one kind are an error."""
    ranked = sorted(paths, key=lambda path: _AUDIO_PREFERENCE[path.suffix.lower()])
    if len(ranked) > 1 and ranked[0].suffix.lower() == ranked[1].suffix.lower():
        raise ValueError(f"{dataset}: one video has two audio files: {ranked[0]} and {ranked[1]}")
    return str(ranked[0])


def _video_key(match: re.Match, dataset: str) -> tuple[str, str]:
    recording = f"{int(match['subject'])}_{int(match['session'])}"
    task = match["task"].capitalize() if dataset == "AVEC2014" else AVEC2013_TASK
    return recording, task


def _video_id(recording: str, task: str) -> str:
    return f"{recording}_{task}"


def _split_of(path: Path, root: Path, dataset: str) -> str:
    """The split named by the folder nearest to the file, below root."""
    for folder in reversed(path.relative_to(root).parts[:-1]):
        if folder.lower() in _SPLIT_FOLDERS:
            return _SPLIT_FOLDERS[folder.lower()]
    raise ValueError(f"{dataset}: cannot tell the split of {path}: no folder named "
                     f"{'/'.join(SPLITS)} between {root} and the file")


def _example_name(dataset: str) -> str:
    return "203_1_Freeform_video.mp4" if dataset == "AVEC2014" else "203_1_cut_combined.mp4"


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def _unmatched_message(dataset: str, root: Path, unlabelled: list[str], orphan_labels: list[str],
                       keep_unlabelled: bool) -> str:
    lines = [f"{dataset} under {root}:"]
    if unlabelled:
        fate = "kept with a missing label" if keep_unlabelled else "left out of the index"
        lines.append(f"{len(unlabelled)} video(s) without a label file, {fate}:")
        lines += [f"  {path}" for path in unlabelled]
    if orphan_labels:
        lines.append(f"{len(orphan_labels)} label file(s) without a video:")
        lines += [f"  {path}" for path in orphan_labels]
    return "\n".join(lines)
