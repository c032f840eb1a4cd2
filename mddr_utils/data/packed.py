"""A cohort's features packed for training at corpus scale: one memory-mapped .npy per array (section 4.3).

The paper trains for 150 epochs on pre-extracted features. A feature cache stores one .npz (a zip
archive) per video and modality; numpy cannot memory-map an .npz, so every epoch parses every file again,
and AVEC2013's HuBERT features (about 46 GB in float32) do not fit the 2 GiB `Cohort.in_memory`
keeps. `pack_cohort` writes the cohort once into a folder:

    <folder>/visual.npy  head.npy  audio.npy  times.npy  visual_valid.npy  head_valid.npy
    <folder>/audio_valid.npy   only when a video restricts its audio (DAIC)
    <folder>/index.json        each video's rows, the cohort's fingerprint, the dtype, the format, the files' sizes

Each .npy holds every video's rows one after another (audio and audio_valid at 50 Hz, the others
on the sampled frames). `PackedCohort` reads a video as slices of those files, memory-mapped: a
read costs the pages it touches, the operating system shares them between DataLoader worker
processes, and the folder may be larger than memory. Features may be stored as float16 (half the
disk and read time; `benchmarks/bench_packed.py` measures the effect on the numbers): they are
converted back to float32 when a video is read, and the cohort's fingerprint says float16, so that
no saved run of the float32 features is taken for theirs. Times stay float64; labels, subjects,
tasks and splits come from the cohort's table. A video's `extras` (the simulation's ground truth) are
not packed: training does not read them.

A packed folder is reused only when its index names the same cohort fingerprint, dtype and format
and every file has the size the index records; otherwise (missing, truncated, an index that is
not JSON, another cohort) it is packed again, into a temporary sibling folder renamed into place,
so that an interrupted pack leaves the old folder or none, never half of one. Sizes are checked,
not every byte: checking content would read the whole pack on every call.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..progress import progress_options
from .container import Cohort, VideoFeatures

FORMAT_VERSION = 1
"""The layout of a packed folder; a folder of another version is packed again."""

INDEX_NAME = "index.json"
FEATURE_ARRAYS = ("visual", "head", "audio")
"""Stored in the chosen dtype (float32 or float16); the other arrays keep theirs."""
FRAME_ARRAYS = ("visual", "head", "times", "visual_valid", "head_valid")
"""Arrays with one row per sampled frame; `audio` and `audio_valid` have one per 20 ms."""
STORAGE_DTYPES = ("float32", "float16")
FLOAT16_MAX = float(np.finfo(np.float16).max)


class PackedVideos:
    """The loader of a `PackedCohort`: a table row to `VideoFeatures` read from the packed files.

    The files are memory-mapped on first use, once per process; pickling (DataLoader worker
    processes) leaves the maps behind, and each worker opens its own.
    """

    def __init__(self, folder: str | Path, index: dict):
        self.folder = Path(folder)
        self.videos = index["videos"]
        self.files = {name: entry["file"] for name, entry in index["arrays"].items()}
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = None
        return state

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            # Copy-on-write maps read as "r" does, but give writable arrays: torch takes them without
            # its warning about read-only memory, and a write stays in this process, never in the file.
            self._arrays = {name: np.load(self.folder / file, mmap_mode="c", allow_pickle=False)
                            for name, file in self.files.items()}
        return self._arrays

    def __call__(self, row) -> VideoFeatures:
        video_id = str(row["video_id"])
        if video_id not in self.videos:
            raise KeyError(f"{self.folder}: video {video_id!r} is not in this packed folder")
        entry, arrays = self.videos[video_id], self._open()
        frames, audio = slice(*entry["frames"]), slice(*entry["audio"])
        return VideoFeatures(
            video_id=video_id, visual=arrays["visual"][frames], head=arrays["head"][frames],
            times=arrays["times"][frames], audio=arrays["audio"][audio], label=float(row["label"]),
            subject=str(row.get("subject", "")), task=str(row.get("task", "")), split=str(row.get("split", "")),
            visual_valid=arrays["visual_valid"][frames], head_valid=arrays["head_valid"][frames],
            audio_rate=entry["audio_rate"], scale=entry["scale"],
            audio_valid=arrays["audio_valid"][audio] if entry["audio_valid"] else None)


class PackedCohort(Cohort):
    """A cohort whose videos are read from a packed folder (`pack_cohort`): the source cohort's table,
    name, left-out videos, identity, origin and scale, so the same `fingerprint` in float32 (the same
    numbers: saved runs are reused). Stored as float16 the features differ, and so does the fingerprint."""

    def __init__(self, source: Cohort, folder: str | Path, index: dict):
        identity = source.identity if index["dtype"] == "float32" else {**source.identity, "stored_as": index["dtype"]}
        super().__init__(source.table, PackedVideos(folder, index), name=source.name, left_out=source.left_out,
                         identity=identity, origin=source.origin, scale=source.scale)
        self.folder = Path(folder)
        self.dtype = index["dtype"]

    def in_memory(self, max_bytes: int = 2 << 30) -> "PackedCohort":
        """Itself: the operating system's page cache keeps what fits in memory, shared by every process."""
        return self


def read_index(folder: str | Path) -> dict | None:
    """The index of a packed folder, or None when it is missing or not a JSON object."""
    path = Path(folder) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return index if isinstance(index, dict) else None


def why_not_current(folder: str | Path, cohort: Cohort, dtype: str) -> str | None:
    """Why the packed folder cannot serve `cohort` in `dtype` (None: it can)."""
    folder = Path(folder)
    if not folder.is_dir():
        return "no packed folder"
    index = read_index(folder)
    if index is None:
        return f"{INDEX_NAME} is missing or not JSON"
    for name, wanted in (("format", FORMAT_VERSION), ("fingerprint", cohort.fingerprint), ("dtype", dtype)):
        if index.get(name) != wanted:
            return f"{name} {index.get(name)!r}, wanted {wanted!r}"
    try:
        missing = [video_id for video_id in cohort.table["video_id"] if video_id not in index["videos"]]
        if missing:
            return f"videos {missing[:5]} are not packed"
        for entry in index["arrays"].values():
            path = folder / entry["file"]
            size = path.stat().st_size if path.is_file() else None
            if size != entry["bytes"]:
                return f"{entry['file']} has {size} bytes, the index records {entry['bytes']}"
    except (KeyError, TypeError, AttributeError) as error:
        return f"{INDEX_NAME} lacks an entry ({type(error).__name__}: {error})"
    return None


def pack_cohort(cohort: Cohort, folder: str | Path, dtype: str = "float32", progress: bool = True) -> PackedCohort:
    """The cohort read from `folder`, packed there first unless the folder already holds it (same
    fingerprint, dtype and format, files of the recorded sizes); features stored as `dtype`."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"packed dtype {dtype!r}: use one of {STORAGE_DTYPES}")
    if isinstance(cohort, PackedCohort):
        raise ValueError(f"{cohort.folder}: this cohort is already packed; pack its source cohort instead")
    if len(cohort) == 0:
        raise ValueError(f"{cohort.origin or cohort.name}: no videos to pack")
    folder = Path(folder)
    reason = why_not_current(folder, cohort, dtype)
    if reason is not None:
        _rebuild(cohort, folder, dtype, progress, reason)
    return PackedCohort(cohort, folder, read_index(folder))


def _rebuild(cohort: Cohort, folder: Path, dtype: str, progress: bool, reason: str) -> None:
    """Pack into a temporary sibling folder, then rename it into place (the old folder goes only then)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(folder)
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        _write_pack(cohort, partial, dtype, progress, reason)
        if folder.exists():
            retired = folder.with_name(f".{folder.name}.retired-{os.getpid()}")
            shutil.rmtree(retired, ignore_errors=True)
            folder.rename(retired)
            partial.rename(folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _remove_abandoned(folder: Path) -> None:
    """Delete the temporary siblings of `folder` left by packs whose process is gone (killed, not raised)."""
    for sibling in folder.parent.glob(f".{folder.name}.*-*"):
        kind, _, pid = sibling.name.rpartition("-")
        if not kind.endswith((".partial", ".retired")) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(sibling, ignore_errors=True)
        except PermissionError:
            continue


class _GrowingNpy:
    """A .npy written as a stream of rows: a header, the rows appended, the header then rewritten with
    the final row count. numpy pads a header so that the row count can grow in place, so nothing is
    moved; memory holds one video's rows at a time, and the cohort is read once."""

    def __init__(self, path: Path, dtype: str, width: int | None):
        self.path, self.dtype, self.width, self.rows = path, np.dtype(dtype), width, 0
        self.handle = path.open("wb")
        self.header_bytes = self._write_header()

    def _write_header(self) -> int:
        shape = (self.rows,) if self.width is None else (self.rows, self.width)
        self.handle.seek(0)
        np.lib.format.write_array_header_1_0(self.handle, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                          "fortran_order": False, "shape": shape})
        return self.handle.tell()

    def append(self, rows: np.ndarray) -> None:
        np.ascontiguousarray(rows, dtype=self.dtype).tofile(self.handle)
        self.rows += len(rows)

    def close(self) -> int:
        """Rewrite the header with the row count, flush to disk, and return the file's size."""
        end = self.handle.tell()
        if self._write_header() != self.header_bytes:
            raise RuntimeError(f"{self.path}: the .npy header changed length while growing")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return end


def _width_of(cohort: Cohort, video: VideoFeatures, name: str, widths: dict) -> None:
    width = getattr(video, name).shape[1]
    if widths.setdefault(name, (width, video.video_id))[0] != width:
        first_width, first_video = widths[name]
        raise ValueError(f"{cohort.origin or cohort.name}: video {video.video_id!r} has {name} features of width "
                         f"{width}, but video {first_video!r} has {first_width}: a packed cohort needs one width per "
                         "modality")


def _storable(video: VideoFeatures, name: str, dtype: str) -> np.ndarray:
    array = getattr(video, name)
    if dtype == "float16" and array.size and float(np.abs(array).max()) > FLOAT16_MAX:
        raise ValueError(f"video {video.video_id!r}: {name} features reach {float(np.abs(array).max()):.4g}, beyond "
                         f"float16's largest value {FLOAT16_MAX:.0f}; pack this cohort as float32")
    return array


def _write_pack(cohort: Cohort, folder: Path, dtype: str, progress: bool, reason: str) -> None:
    writers: dict[str, _GrowingNpy] = {}
    widths: dict[str, tuple[int, str]] = {}
    videos, frames_at, audio_at = {}, 0, 0
    try:
        for position in tqdm(range(len(cohort)), desc=f"packing ({reason})", **progress_options(progress)):
            video_id, video = str(cohort.table["video_id"].iloc[position]), cohort[position]
            for name in FEATURE_ARRAYS:
                _width_of(cohort, video, name, widths)
            if not writers:
                for name in FEATURE_ARRAYS:
                    writers[name] = _GrowingNpy(folder / f"{name}.npy", dtype, widths[name][0])
                writers["times"] = _GrowingNpy(folder / "times.npy", "float64", None)
                for name in ("visual_valid", "head_valid"):
                    writers[name] = _GrowingNpy(folder / f"{name}.npy", "bool", None)
            if video.audio_valid is not None and "audio_valid" not in writers:
                # The first video to restrict its audio: the ones before it had all their audio valid.
                writers["audio_valid"] = _GrowingNpy(folder / "audio_valid.npy", "bool", None)
                writers["audio_valid"].append(np.ones(audio_at, dtype=bool))
            for name in FRAME_ARRAYS:
                writers[name].append(_storable(video, name, dtype) if name in FEATURE_ARRAYS else getattr(video, name))
            writers["audio"].append(_storable(video, "audio", dtype))
            if "audio_valid" in writers:
                writers["audio_valid"].append(np.ones(len(video.audio), dtype=bool) if video.audio_valid is None
                                              else video.audio_valid)
            videos[video_id] = {"frames": [frames_at, frames_at + video.num_steps],
                                      "audio": [audio_at, audio_at + len(video.audio)],
                                      "audio_valid": video.audio_valid is not None,
                                      "audio_rate": float(video.audio_rate), "scale": video.scale}
            frames_at, audio_at = frames_at + video.num_steps, audio_at + len(video.audio)
        sizes = {name: writer.close() for name, writer in writers.items()}
    finally:
        for writer in writers.values():
            writer.handle.close()
    arrays = {name: {"file": writer.path.name, "bytes": sizes[name], "dtype": str(writer.dtype),
                     "rows": writer.rows} for name, writer in writers.items()}
    index = {"format": FORMAT_VERSION, "fingerprint": cohort.fingerprint, "dtype": dtype, "cohort": cohort.name,
             "arrays": arrays, "videos": videos}
    with (folder / INDEX_NAME).open("w") as handle:
        handle.write(json.dumps(index, indent=1))
        handle.flush()
        os.fsync(handle.fileno())
