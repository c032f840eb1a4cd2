"""One video's multi-modal features and how a batch of them is padded (paper section 3.1, 4.3).

The paper's model input is, per video, visual features X_v, acoustic features X_a and head
movement features X_p. Here they travel together in `VideoFeatures`; `collate` zero-pads a list
of them to a batch ("For missing sequence features, we use zero-padding", section 4.3) and
carries masks so that padding never counts.
"""
from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..versioning import digest
from .scales import scale_by_name

AUDIO_RATE_HZ = 50.0
"""HuBERT frame rate: one acoustic feature every 20 ms, counted from t = 0 (book/decisions.md, "decision-hubert")."""

LEFT_OUT_COLUMNS = ("video_id", "file", "reason")
"""Columns of `Cohort.left_out`: the videos a cohort lacks because they failed, and why."""

FINGERPRINT_COLUMNS = ("video_id", "subject", "task", "split", "label")
"""The table columns a cohort's numbers depend on (with its name and `Cohort.identity`)."""

UNREADABLE_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
"""What numpy and zipfile raise on a zero-byte, truncated or bit-flipped .npz file."""


@dataclass
class VideoFeatures:
    """One video's features: visual and head on the sampled frames, audio at 50 Hz from t = 0.

    `label` is a score on the label scale named by `scale` ("BDI-II" or "PHQ-8", `data.scales`).
    `visual_valid` / `head_valid` flag the sampled frames with a face / a head pose; `audio_valid`
    flags the audio frames the model may listen to (None: all of them), e.g. the participant's
    speech in an interview where the interviewer is heard too.
    """

    video_id: str
    visual: np.ndarray
    head: np.ndarray
    times: np.ndarray
    audio: np.ndarray
    label: float
    subject: str = ""
    task: str = ""
    split: str = ""
    visual_valid: np.ndarray | None = None
    head_valid: np.ndarray | None = None
    audio_rate: float = AUDIO_RATE_HZ
    extras: dict = field(default_factory=dict)
    scale: str = "BDI-II"
    audio_valid: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.visual = np.asarray(self.visual, dtype=np.float32)
        self.head = np.asarray(self.head, dtype=np.float32)
        self.audio = np.asarray(self.audio, dtype=np.float32)
        self.times = np.asarray(self.times, dtype=np.float64)
        steps = len(self.times)
        if self.visual_valid is None:
            self.visual_valid = np.ones(steps, dtype=bool)
        if self.head_valid is None:
            self.head_valid = np.ones(steps, dtype=bool)
        self.visual_valid = np.asarray(self.visual_valid, dtype=bool)
        self.head_valid = np.asarray(self.head_valid, dtype=bool)
        if self.audio_valid is not None:
            self.audio_valid = np.asarray(self.audio_valid, dtype=bool)
        self.validate()

    def _fail(self, what: str) -> None:
        raise ValueError(f"video {self.video_id!r}: {what}")

    def validate(self) -> None:
        """Check shapes, time order, finiteness and the label range; raise naming the video."""
        steps = len(self.times)
        if self.times.ndim != 1 or steps == 0:
            self._fail(f"times must be a non-empty 1-d array, got shape {self.times.shape}")
        if np.any(np.diff(self.times) <= 0):
            self._fail("times must increase strictly")
        for name in ("visual", "head", "audio"):
            array = getattr(self, name)
            if array.ndim != 2:
                self._fail(f"{name} must be 2-d [steps, dims], got shape {array.shape}")
            if not np.isfinite(array).all():
                bad = int((~np.isfinite(array)).any(axis=1).sum())
                self._fail(f"{name} holds NaN or Inf in {bad} rows")
        for name in ("visual", "head", "visual_valid", "head_valid"):
            if len(getattr(self, name)) != steps:
                self._fail(f"{name} has {len(getattr(self, name))} rows but times has {steps}")
        if len(self.audio) == 0:
            self._fail("audio has no frames")
        if self.audio_valid is not None and self.audio_valid.shape != (len(self.audio),):
            self._fail(f"audio_valid has shape {self.audio_valid.shape} but audio has {len(self.audio)} frames")
        try:
            scale = scale_by_name(self.scale)
        except ValueError as error:
            self._fail(str(error))
        scale.check_label(self.label, f"video {self.video_id!r}", integer=False)

    @property
    def num_steps(self) -> int:
        """L, the number of sampled frames."""
        return len(self.times)

    @property
    def duration(self) -> float:
        """Seconds covered by the audio track."""
        return len(self.audio) / self.audio_rate

    def save(self, path: str | Path) -> Path:
        """Write to one .npz (no pickle), atomically: a temporary file, then a rename; no `audio_valid` if None."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)
                  if f.name != "extras" and getattr(self, f.name) is not None}
        temporary = path.with_name(path.name + ".partial.npz")
        np.savez(temporary, **arrays)
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "VideoFeatures":
        """Read a file written by `save`, refusing pickled objects (a file without `audio_valid`: all audio valid)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as stored:
                values = {name: stored[name] for name in stored.files}
        except FileNotFoundError:
            raise
        except UNREADABLE_ERRORS as error:
            raise ValueError(f"{path}: not a readable feature file ({type(error).__name__}: {error})") from error
        for name in ("video_id", "subject", "task", "split", "scale"):
            if name in values:
                values[name] = str(values[name])
        values["label"] = float(values["label"])
        values["audio_rate"] = float(values["audio_rate"])
        return cls(**values)


@dataclass
class Batch:
    """A padded batch: tensors [B, L, ...] for the frame-rate modalities, [B, La, ...] for audio.

    `audio_valid` [B, La] flags the audio frames the model may use (False on padding); None when no
    video of the batch restricts its audio, which the model reads as every real frame valid.
    """

    visual: torch.Tensor
    head: torch.Tensor
    times: torch.Tensor
    mask: torch.Tensor
    visual_valid: torch.Tensor
    head_valid: torch.Tensor
    audio: torch.Tensor
    audio_lengths: torch.Tensor
    label: torch.Tensor
    audio_rate: float
    video_ids: list[str]
    audio_valid: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        """Move every tensor to `device`."""
        moved = {
            f.name: getattr(self, f.name).to(device) if torch.is_tensor(getattr(self, f.name)) else getattr(self, f.name)
            for f in fields(self)
        }
        return Batch(**moved)

    def __len__(self) -> int:
        return len(self.video_ids)


def collate(videos: Sequence[VideoFeatures]) -> Batch:
    """Zero-pad videos to the longest in the list; `mask` is True on real steps, `audio_valid` on usable audio."""
    if not videos:
        raise ValueError("collate needs at least one video")
    rates = {v.audio_rate for v in videos}
    if len(rates) != 1:
        raise ValueError(f"videos mix audio rates {sorted(rates)}")
    size = len(videos)
    steps = max(v.num_steps for v in videos)
    audio_steps = max(len(v.audio) for v in videos)
    first = videos[0]
    visual = torch.zeros(size, steps, first.visual.shape[1])
    head = torch.zeros(size, steps, first.head.shape[1])
    audio = torch.zeros(size, audio_steps, first.audio.shape[1])
    times = torch.zeros(size, steps, dtype=torch.float64)
    mask = torch.zeros(size, steps, dtype=torch.bool)
    visual_valid = torch.zeros(size, steps, dtype=torch.bool)
    head_valid = torch.zeros(size, steps, dtype=torch.bool)
    restricted = any(video.audio_valid is not None for video in videos)
    audio_valid = torch.zeros(size, audio_steps, dtype=torch.bool) if restricted else None
    for row, video in enumerate(videos):
        n = video.num_steps
        visual[row, :n] = torch.from_numpy(video.visual)
        head[row, :n] = torch.from_numpy(video.head)
        audio[row, : len(video.audio)] = torch.from_numpy(video.audio)
        times[row, :n] = torch.from_numpy(video.times)
        mask[row, :n] = True
        visual_valid[row, :n] = torch.from_numpy(video.visual_valid)
        head_valid[row, :n] = torch.from_numpy(video.head_valid)
        if restricted:
            audio_valid[row, : len(video.audio)] = (True if video.audio_valid is None
                                                    else torch.from_numpy(video.audio_valid))
    return Batch(
        visual=visual,
        head=head,
        times=times,
        mask=mask,
        visual_valid=visual_valid,
        head_valid=head_valid,
        audio=audio,
        audio_lengths=torch.tensor([len(v.audio) for v in videos]),
        label=torch.tensor([float(v.label) for v in videos]),
        audio_rate=rates.pop(),
        video_ids=[v.video_id for v in videos],
        audio_valid=audio_valid,
    )


def left_out_table(rows=None) -> pd.DataFrame:
    """The videos left out of a cohort as a table with columns `LEFT_OUT_COLUMNS` (empty by default)."""
    table = pd.DataFrame(list(rows) if rows is not None else [], columns=list(LEFT_OUT_COLUMNS))
    return table.astype(str).reset_index(drop=True)


class Cohort(Sequence):
    """Videos listed in `table` (one row per video, column `video_id` unique), loaded on access.

    `table` also carries `subject`, `task`, `split` and `label`, so protocols can split and
    group without loading features; `loader` turns one table row into `VideoFeatures`.
    `left_out` lists the videos that failed (video_id, file, reason); `identity` holds what
    else the numbers depend on (a feature cache puts each video's input files and the feature
    settings there), and `fingerprint` digests it all; `origin` names the folder the videos come
    from, for error messages; `scale` names the label scale of its labels ("BDI-II" or "PHQ-8").
    """

    def __init__(self, table, loader: Callable, name: str = "cohort", left_out=None, identity: dict | None = None,
                 origin: str = "", scale: str = "BDI-II"):
        duplicated = table["video_id"][table["video_id"].duplicated()]
        if len(duplicated):
            raise ValueError(f"{name}: video ids appear twice: {sorted(set(duplicated))[:5]}")
        self.table = table.reset_index(drop=True)
        self.loader = loader
        self.name = name
        self.left_out = left_out_table(left_out.to_dict("records") if isinstance(left_out, pd.DataFrame)
                                       else left_out)
        self.identity = dict(identity or {})
        self.origin = str(origin)
        self.scale = scale_by_name(scale).name

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> VideoFeatures:
        if isinstance(index, slice):
            raise TypeError("use Cohort.subset to select several videos")
        return self.loader(self.table.iloc[index])

    @property
    def fingerprint(self) -> str:
        """A 16-hex digest of what the cohort's numbers depend on: its name, the table's ids,
        subjects, tasks, splits and labels, and `identity` (restricted to the videos in the table
        where it is keyed by video: `identity["videos"]`)."""
        columns = [column for column in FINGERPRINT_COLUMNS if column in self.table]
        rows = self.table[columns].astype(object).where(self.table[columns].notna(), None)
        if "label" in rows:
            rows["label"] = [None if value is None else float(value) for value in rows["label"]]
        identity = dict(self.identity)
        if isinstance(identity.get("videos"), dict):
            identity["videos"] = {video_id: identity["videos"].get(video_id) for video_id in self.table["video_id"]}
        payload = {"name": self.name, "columns": columns, "rows": rows.to_numpy().tolist(), "identity": identity}
        return digest(payload, length=16)

    def require_splits(self, *splits: str) -> "Cohort":
        """The cohort itself if every named split has a video; ValueError naming the empty split and folder."""
        present = set(self.table["split"]) if "split" in self.table else set()
        for split in splits:
            if split not in present:
                where = self.origin or self.name
                failed = self.left_out
                note = (f"; {len(failed)} videos were left out because they failed "
                        f"({', '.join(failed['video_id'][:5])}{', ...' if len(failed) > 5 else ''})"
                        if len(failed) else "")
                raise ValueError(f"{self.name}: the {split} split is empty: no usable {split} video from "
                                 f"{where}{note}")
        return self

    def subset(self, split: str | None = None, task: str | None = None, video_ids=None) -> "Cohort":
        """The videos of one split and/or task, or of the given ids, in table order."""
        keep = np.ones(len(self.table), dtype=bool)
        if split is not None:
            keep &= (self.table["split"] == split).to_numpy()
        if task is not None:
            keep &= (self.table["task"] == task).to_numpy()
        if video_ids is not None:
            keep &= self.table["video_id"].isin(list(video_ids)).to_numpy()
        return type(self).from_parts(self, self.table[keep])

    @classmethod
    def from_parts(cls, parent: "Cohort", table) -> "Cohort":
        """A cohort like `parent` (loader, name, left_out, identity, origin, scale) over another table."""
        clone = cls.__new__(cls)
        clone.__dict__.update(parent.__dict__)
        clone.table = table.reset_index(drop=True)
        return clone

    def in_memory(self, max_bytes: int = 2 << 30) -> "Cohort":
        """The same cohort, keeping each video in memory after its first load (up to `max_bytes`).

        Training reads every video once per epoch; the simulation cohort regenerates a video on each
        read and a feature cohort reads it from disk. Subsets share the store.
        """
        if hasattr(self, "_videos_in_memory"):
            return self
        store, budget, load = {}, [max_bytes], self.loader

        def loader(row):
            video_id = row["video_id"]
            if video_id not in store:
                video = load(row)
                size = video.visual.nbytes + video.audio.nbytes + video.head.nbytes
                if size > budget[0]:
                    return video
                budget[0] -= size
                store[video_id] = video
            return store[video_id]

        clone = type(self).from_parts(self, self.table)
        clone.loader = loader
        clone._videos_in_memory = store
        return clone

    def __repr__(self) -> str:
        counts = self.table.groupby("split").size().to_dict() if "split" in self.table else {}
        left_out = f", {len(self.left_out)} left out" if len(getattr(self, "left_out", ())) else ""
        return f"{type(self).__name__}({self.name!r}, {len(self)} videos, {counts}{left_out})"
