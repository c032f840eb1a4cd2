"""The feature cache: one file per video and modality, and a manifest (paper section 3.2).

The paper pre-extracts the three modalities once and trains on the stored features (Figure 2:
"Multi-modal features pre-extraction"). Extraction takes minutes per video on a CPU, so what it
makes is kept:

    <root>/manifest.json              the cohort table, the configuration, per-video reports and failures
    <root>/<modality>/<video_id>.npz  arrays of one video and modality (visual, audio, head)

Each .npz holds plain numeric arrays (read with allow_pickle=False) and an entry `provenance`,
a JSON string saying what made the file: the extractor, its weights, the settings and their
hash, the identity of the input files, the package versions and the time. A file counts as
current only if its settings hash and its inputs' identities match the ones asked for, so
changing one modality's settings (the HuBERT layer, say) recomputes that modality and nothing
else, and a replaced video is extracted again.

An input file's identity (`file_identity`) is its size, its modification time and a SHA-256 of
three 1 MiB samples of its content (start, middle, end; the whole file when it is smaller).
Size and content decide; the time is recorded but need not match. Why: copying or unpacking a
corpus (cp, rsync without -t, an archive, another disk) gives every file a new time with the same
content, and re-extracting an AVEC copy for that would cost hours for nothing; while a
re-encoded or re-muxed video of the same size differs in its container header and first frames,
which the samples cover. Hashing whole files would catch an edit confined to an unsampled
middle stretch too, but reads every byte of the corpus (tens of GB for AVEC2013) on every call of
every chapter; the samples read 3 MiB per video. The file name is recorded, not compared:
renaming a video does not change its features.

Writes are atomic (a temporary file in the same folder, then a rename), so an interrupted run
leaves either the old file or the new one, never half of one, and a rerun resumes from the
videos that are not current yet. Floating-point arrays with NaN or Inf are refused: the cache
never stores them. A damaged file (zero bytes, truncated, bit-flipped, a manifest that is not
JSON) is never trusted nor left to raise a bare error: `repair` and `read_manifest_or_none`
move it aside as `<name>.corrupt` with a `CacheRepairWarning` naming it, and extraction makes
it again. Checking every byte of every feature file on each call would read the whole cache, so
`repair` reads fully only the files whose size or time differ from those the manifest recorded
when it last vouched for them (`file_stamps`); the others are checked by opening them.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..data.container import UNREADABLE_ERRORS
from ..versioning import digest

MODALITIES = ("visual", "audio", "head")
MANIFEST_NAME = "manifest.json"
CACHE_FORMAT = 1
PROVENANCE_KEY = "provenance"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SAMPLE_BYTES = 1 << 20
"""Bytes read at each of the three places (start, middle, end) `file_identity` hashes."""
CORRUPT_SUFFIX = ".corrupt"


class CacheRepairWarning(UserWarning):
    """A damaged cache file was moved aside (as `<name>.corrupt`) to be made again."""


def settings_hash(settings: dict) -> str:
    """A short, stable hash of JSON-serialisable settings (key order does not matter)."""
    return digest(settings, length=16)


def settings_hashes(settings: dict[str, dict]) -> dict[str, str]:
    """`settings_hash` of each modality's settings: what a cache file's settings are checked against."""
    return {modality: settings_hash(value) for modality, value in settings.items()}


def file_identity(path: str | Path) -> dict:
    """Name, size, modification time and a SHA-256 of three 1 MiB samples of one file (module docstring)."""
    path = Path(path)
    status = path.stat()
    size = status.st_size
    hasher = hashlib.sha256(str(size).encode())
    with open(path, "rb") as stream:
        if size <= 3 * SAMPLE_BYTES:
            hasher.update(stream.read())
        else:
            for offset in (0, (size - SAMPLE_BYTES) // 2, size - SAMPLE_BYTES):
                stream.seek(offset)
                hasher.update(stream.read(SAMPLE_BYTES))
    return {"name": path.name, "size": size, "mtime_ns": status.st_mtime_ns, "sample_sha256": hasher.hexdigest()}


def input_signature(paths: Iterable[str | Path]) -> list[dict]:
    """`file_identity` of each input file, in order."""
    return [file_identity(path) for path in paths]


def same_inputs(recorded, inputs: list[dict]) -> bool:
    """Whether recorded input identities name the same files, by size and sampled content (not name or time)."""
    if not isinstance(recorded, list) or len(recorded) != len(inputs):
        return False
    return all(isinstance(old, dict) and old.get("size") == new["size"]
               and old.get("sample_sha256") == new["sample_sha256"] for old, new in zip(recorded, inputs))


def check_video_id(video_id: str) -> str:
    """The id itself if it can name a file (letters, digits, '.', '_', '-'); ValueError otherwise."""
    if not _SAFE_ID.match(str(video_id)):
        raise ValueError(f"video id {video_id!r} cannot name a file: use letters, digits, '.', '_' and '-'")
    return str(video_id)


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


class FeatureCache:
    """A folder of per-video, per-modality feature files with provenance, and a manifest."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    @property
    def manifest_path(self) -> Path:
        """Where the manifest lives."""
        return self.root / MANIFEST_NAME

    def path(self, modality: str, video_id: str) -> Path:
        """The file of one video and modality."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        return self.root / modality / f"{check_video_id(video_id)}.npz"

    def write(self, modality: str, video_id: str, arrays: dict[str, np.ndarray], provenance: dict) -> Path:
        """Store arrays and provenance atomically; refuse NaN or Inf, naming the video and array."""
        path = self.path(modality, video_id)
        arrays = {name: np.asarray(value) for name, value in arrays.items()}
        if PROVENANCE_KEY in arrays:
            raise ValueError(f"{PROVENANCE_KEY!r} is reserved for the provenance record")
        for name, value in arrays.items():
            if value.dtype == object:
                raise ValueError(f"video {video_id!r}, {modality}: array {name!r} holds Python objects")
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                bad = int((~np.isfinite(value)).sum())
                raise ValueError(f"video {video_id!r}, {modality}: array {name!r} holds {bad} NaN or Inf values; "
                                 f"nothing was written to {path}")
        record = np.array(json.dumps(provenance, sort_keys=True, default=str))
        return _atomic_write(path, lambda stream: np.savez(stream, **arrays, **{PROVENANCE_KEY: record}))

    def read(self, modality: str, video_id: str) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays and provenance of one video and modality."""
        path = self.path(modality, video_id)
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            provenance = json.loads(str(arrays.pop(PROVENANCE_KEY, "{}")))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no cached {modality} features for video {video_id!r}") from None
        except UNREADABLE_ERRORS as error:
            raise ValueError(f"{path}: not a readable feature file ({type(error).__name__}: {error}); "
                             "rerun the extraction (or load_cohort) to make it again") from error
        return arrays, provenance

    def provenance(self, modality: str, video_id: str) -> dict | None:
        """The provenance of one file without reading its arrays, or None if absent or unreadable."""
        path = self.path(modality, video_id)
        try:
            with np.load(path, allow_pickle=False) as stored:
                provenance = json.loads(str(stored[PROVENANCE_KEY]))
        except UNREADABLE_ERRORS:
            return None
        return provenance if isinstance(provenance, dict) else None

    def why_stale(self, modality: str, video_id: str, config_hash: str, inputs: list | None = None) -> str | None:
        """None if the file is current for these settings (and inputs, if given); else why not, in a few words."""
        if not self.path(modality, video_id).is_file():
            return "not extracted yet"
        provenance = self.provenance(modality, video_id)
        if provenance is None:
            return "cache file unreadable"
        if provenance.get("config_hash") != config_hash:
            return "settings changed"
        if inputs is not None and not same_inputs(provenance.get("inputs"), inputs):
            return "input file changed"
        return None

    def stale_modalities(self, video_id: str, hashes: dict[str, str], inputs: dict[str, list],
                         modalities=MODALITIES) -> dict[str, str]:
        """`why_stale` of each of `modalities` for one video, keeping only those that are not current."""
        reasons = {modality: self.why_stale(modality, video_id, hashes[modality], inputs[modality])
                   for modality in modalities}
        return {modality: reason for modality, reason in reasons.items() if reason is not None}

    def is_current(self, modality: str, video_id: str, config_hash: str, inputs: list | None = None) -> bool:
        """Whether the file exists and was made with these settings (and these input files, if given)."""
        return self.why_stale(modality, video_id, config_hash, inputs) is None

    def unreadable(self, modality: str, video_id: str, full: bool = True) -> str | None:
        """Why one feature file cannot be read (None if it can or is absent); `full` reads every array, so
        that a flipped bit anywhere shows as a CRC error, else only the zip directory and provenance are read."""
        path = self.path(modality, video_id)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                provenance = json.loads(str(stored[PROVENANCE_KEY]))
                if full:
                    for name in stored.files:
                        stored[name]
        except UNREADABLE_ERRORS as error:
            return f"{type(error).__name__}: {error}"
        return None if isinstance(provenance, dict) else "its provenance is not a JSON object"

    def set_aside(self, path: str | Path, reason: str) -> Path:
        """Move a damaged file to `<name>.corrupt` (replacing an older one), with a warning naming both."""
        path = Path(path)
        target = path.with_name(path.name + CORRUPT_SUFFIX)
        os.replace(path, target)
        warnings.warn(f"{path}: damaged cache file ({reason}); moved aside to {target.name} and made again",
                      CacheRepairWarning, stacklevel=3)
        return target

    def file_stamps(self, video_ids: Iterable[str]) -> dict[str, list[int]]:
        """[size, mtime_ns] of each feature file of these videos, keyed by its path below the root."""
        stamps = {}
        for video_id in video_ids:
            for modality in MODALITIES:
                path = self.path(modality, video_id)
                if path.is_file():
                    status = path.stat()
                    stamps[f"{modality}/{path.name}"] = [status.st_size, status.st_mtime_ns]
        return stamps

    def repair(self, video_ids: Iterable[str], vouched: dict | None = None) -> list[tuple[str, Path, str]]:
        """Move aside every unreadable feature file of these videos; return (video_id, path, reason) of each.

        Files whose [size, mtime_ns] equal those in `vouched` (the manifest's `file_stamps`, recorded
        after they were last checked) are only opened; the others are read in full.
        """
        vouched = vouched or {}
        repaired = []
        for video_id in video_ids:
            for modality in MODALITIES:
                path = self.path(modality, video_id)
                if not path.is_file():
                    if path.exists():
                        repaired.append((video_id, self.set_aside(path, "not a regular file"), "not a regular file"))
                    continue
                status = path.stat()
                trusted = vouched.get(f"{modality}/{path.name}") == [status.st_size, status.st_mtime_ns]
                reason = self.unreadable(modality, video_id, full=not trusted)
                if reason is not None:
                    repaired.append((video_id, self.set_aside(path, reason), reason))
        return repaired

    def adopt(self, other: "FeatureCache", modality: str) -> None:
        """Link (or copy) into this cache the files of one modality that `other` has and this one lacks.

        Whether an adopted file is current is decided as for any other, by its settings hash and
        inputs, so adopting never makes features made with other settings count as these.
        """
        for path in sorted((other.root / modality).glob("*.npz")):
            target = self.root / modality / path.name
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                _atomic_write(target, lambda stream, path=path: stream.write(path.read_bytes()))

    def write_manifest(self, manifest: dict) -> Path:
        """Write the manifest JSON atomically."""
        text = json.dumps({"format": CACHE_FORMAT, **manifest}, indent=1, sort_keys=False, default=str)
        return _atomic_write(self.manifest_path, lambda stream: stream.write(text.encode()))

    def read_manifest(self) -> dict:
        """The manifest; FileNotFoundError naming the folder if there is none, ValueError naming the file
        if it cannot be read (see `read_manifest_or_none` to repair it)."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.root}: no {MANIFEST_NAME}; run extract_features first") from None
        except (OSError, ValueError) as error:
            raise ValueError(f"{self.manifest_path}: not a readable manifest ({type(error).__name__}: {error}); "
                             "rerun the extraction (or load_cohort) to repair it") from error
        if not isinstance(manifest, dict) or not isinstance(manifest.get("videos", []), list):
            raise ValueError(f"{self.manifest_path}: not a readable manifest (not a JSON object with a list "
                             "of videos); rerun the extraction (or load_cohort) to repair it")
        if manifest.get("format") != CACHE_FORMAT:
            raise ValueError(f"{self.manifest_path}: cache format {manifest.get('format')!r}, expected {CACHE_FORMAT}")
        return manifest

    def read_manifest_or_none(self) -> dict | None:
        """The manifest, or None if there is none; an unreadable one is moved aside (`set_aside`) and None returned."""
        if not self.manifest_path.exists():
            return None
        try:
            return self.read_manifest()
        except ValueError as error:
            cause = error.__cause__
            self.set_aside(self.manifest_path, f"{type(cause).__name__}: {cause}" if cause is not None
                           else "not a JSON object with a list of videos, or another cache format")
            return None
