"""The feature cache: one file per video and modality, and a manifest (paper section 3.2).

The paper pre-extracts the three modalities once and trains on the stored features (Figure 2:
"Multi-modal features pre-extraction"). Extraction takes minutes per video on a CPU, so what it
makes is kept:

    <root>/manifest.json              the cohort table, the configuration, per-video reports
    <root>/<modality>/<video_id>.npz  arrays of one video and modality (visual, audio, head)

Each .npz holds plain numeric arrays (read with allow_pickle=False) and an entry `provenance`,
a JSON string saying what made the file: the extractor, its weights, the settings and their
hash, the input files (name and size), the package versions and the time. A file counts as
current only if its settings hash and input sizes match the ones asked for, so changing one
modality's settings (the HuBERT layer, say) recomputes that modality and nothing else.

Writes are atomic (a temporary file in the same folder, then a rename), so an interrupted run
leaves either the old file or the new one, never half of one, and a rerun resumes from the
videos that are not current yet. Floating-point arrays with NaN or Inf are refused: the cache
never stores them.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MODALITIES = ("visual", "audio", "head")
MANIFEST_NAME = "manifest.json"
CACHE_FORMAT = 1
PROVENANCE_KEY = "provenance"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def settings_hash(settings: dict) -> str:
    """A short, stable hash of JSON-serialisable settings (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def input_signature(paths: Iterable[str | Path]) -> list[list]:
    """[file name, size in bytes] of each input file: moving a dataset keeps it, replacing a file does not."""
    return [[Path(path).name, Path(path).stat().st_size] for path in paths]


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
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no cached {modality} features for video {video_id!r}") from None
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable feature file ({error})") from error
        provenance = json.loads(str(arrays.pop(PROVENANCE_KEY, "{}")))
        return arrays, provenance

    def provenance(self, modality: str, video_id: str) -> dict | None:
        """The provenance of one file without reading its arrays, or None if absent or unreadable."""
        path = self.path(modality, video_id)
        try:
            with np.load(path, allow_pickle=False) as stored:
                return json.loads(str(stored[PROVENANCE_KEY]))
        except (OSError, ValueError, KeyError):
            return None

    def is_current(self, modality: str, video_id: str, config_hash: str, inputs: list | None = None) -> bool:
        """Whether the file exists and was made with these settings (and these input files, if given)."""
        provenance = self.provenance(modality, video_id)
        if provenance is None or provenance.get("config_hash") != config_hash:
            return False
        return inputs is None or provenance.get("inputs") == inputs

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
        """The manifest; FileNotFoundError naming the folder if there is none."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.root}: no {MANIFEST_NAME}; run extract_features first") from None
        if manifest.get("format") != CACHE_FORMAT:
            raise ValueError(f"{self.manifest_path}: cache format {manifest.get('format')!r}, expected {CACHE_FORMAT}")
        return manifest
