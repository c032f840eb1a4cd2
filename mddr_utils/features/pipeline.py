"""Multi-modal feature pre-extraction for a cohort, into the feature cache (paper sections 3.2, 4.3).

Section 3.2: "the Multi-modal features pre-extraction module extracts three modal features
from given video: visual features X_v, acoustic features X_a and Head movement features X_p".
Per video of an index table (`index_avec2014`, `index_avec2013`, `make_demo_cohort`):

    frames, sampled (keep of every `every`) -> MTCNN face crop 224x224 -> ResNet-50 -> X_v [L, 2048]
                                            -> head pose + gaze (built-in or OpenFace CSV) -> X_p [L, 12]
    audio, 16 kHz mono (audio_path, or the video's own track) -> HuBERT -> X_a [La, 1024] at 50 Hz

`update_cache` writes each video's modalities (all three, or those asked for: each feature
chapter extracts its own) to the cache (`cache.FeatureCache`), skips what is already current for
the configuration and the input files (`cache.file_identity`), repairs damaged cache files and
writes the manifest; `extract_features` does that for all three and returns a `Cohort` of
`VideoFeatures` read from the cache; `load_feature_cohort` and `load_modality` read without
extracting. Before extracting it prints one line saying how many videos it extracts and why
(new, input file changed, settings changed, damaged cache file, failed before). One failing
video never stops the others: every video is tried, videos that failed before last; failures are
recorded in the manifest (`report.failures_table`), and a rerun retries them and whatever else
is not current.

Scale-out: under `torchrun --nproc_per_node N` (or any launcher that sets WORLD_SIZE, RANK)
each process takes a disjoint share of the videos (every N-th, after sorting by file size so
that shares weigh about the same), the processes exchange their reports (`distributed`), and
rank 0 writes the manifest; all of them return the cohort. The command line is
`python -m mddr_utils.features.pipeline` (`command_line`).
"""
from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from queue import Full, Queue

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..data.container import AUDIO_RATE_HZ, Cohort, VideoFeatures
from ..device import autocast_dtype, pick_device
from .acoustic import HUBERT_LARGE, RANDOM_SOURCES, SAMPLE_RATE, HubertEncoder, hub_revision
from .cache import MODALITIES, FeatureCache, check_video_id, input_signature, settings_hashes, utc_now
from ..data.container import left_out_table
from .. import distributed
from . import jobs
from .faces import FaceCropper, FaceCrops, NoFaceError
from .head import HeadPoseGazeEstimator, find_openface_csv, match_openface, read_openface_csv
from .video import check_audio_matches_video, frame_layout, load_audio, sample_frames
from .visual import KEY_MAPS, VISUAL_DIM, VISUAL_WEIGHTS, Preprocessing, VisualEncoder, file_sha256

INDEX_REQUIRED = ("video_id", "video_path", "label")
TABLE_COLUMNS = ("video_id", "subject", "session", "task", "split", "label", "video_path", "audio_path")
HEAD_SOURCES = ("builtin", "openface")


@dataclass(frozen=True)
class ExtractionConfig:
    """Every setting of feature pre-extraction; the defaults are the paper's (AVEC2014 sampling).

    keep/every: frames kept per `every` frames (section 4.3: AVEC2014 4 of 100, AVEC2013 1 of 100).
    crop_size, face_*: the face crop (faces.FaceCropper).
    visual_weights: "affectnet" (with `affectnet_checkpoint`), "imagenet", "imagenet_v1" or "none".
    affectnet_key_map: how the checkpoint's tensor names become torchvision's: "auto" (strips the
    "module." / "model." / "backbone." prefixes of DataParallel, Lightning and backbone+head
    models), "caffe" (caffe-style ResNet-50 ports such as VGGFace2's resnet50_ft), or the path of
    a JSON prefix map (visual.backbone_state).
    visual_preprocessing: how crops are normalised for the weights: "imagenet", "caffe", or a JSON
    object with mean, std, scale and channels (visual.Preprocessing).
    hubert: a hub id, a local folder, or "random"/"random-large" (NOT pretrained; acoustic.py).
    hubert_layer: -1 for the model's output, k for transformer layer k; hubert_normalize: per-utterance
    zero mean, unit variance (True for HuBERT-large; False for models such as HuBERT-base).
    head_source: "builtin" (mediapipe + solvePnP) or "openface" (CSVs in `openface_dir`,
    matched by `openface_match` = "frame" or "timestamp").
    precision: "auto" (bfloat16 autocast where the device supports it) or "float32".
    offline: never download weights (ImageNet, HuBERT); use only caches and local files.
    on_error: what happens once every video has been tried and some failed (the others are
    extracted and cached either way): "raise" raises an ExtractionError naming each; "skip" warns
    once per video (naming its file and why) and leaves those videos out of the cohort
    (`Cohort.left_out`). Both record the failures in the manifest.
    """

    keep: int = 4
    every: int = 100
    crop_size: int = 224
    face_margin: float = 0.2
    face_detect_max_side: int = 320
    face_min_fraction: float = 0.15
    face_min_confidence: float = 0.9
    visual_weights: str = "affectnet"
    affectnet_checkpoint: str | None = None
    affectnet_key_map: str = "auto"
    visual_preprocessing: str = "imagenet"
    hubert: str = HUBERT_LARGE
    hubert_layer: int = -1
    hubert_normalize: bool = True
    hubert_chunk_seconds: float = 30.0
    hubert_context_seconds: float = 5.0
    head_source: str = "builtin"
    openface_dir: str | None = None
    openface_match: str = "frame"
    head_min_confidence: float = 0.5
    device: str = "auto"
    precision: str = "auto"
    frame_batch_size: int = 32
    seed: int = 0
    offline: bool = False
    on_error: str = "raise"

    def __post_init__(self) -> None:
        if not 1 <= self.keep <= self.every:
            raise ValueError(f"need 1 <= keep <= every, got keep={self.keep}, every={self.every}")
        if self.visual_weights not in VISUAL_WEIGHTS:
            raise ValueError(f"visual_weights must be one of {VISUAL_WEIGHTS}, got {self.visual_weights!r}")
        if self.visual_weights == "affectnet" and not self.affectnet_checkpoint:
            raise ValueError("visual_weights='affectnet' needs affectnet_checkpoint (a ResNet-50 state dict "
                             "trained on AffectNet); otherwise choose 'imagenet' or 'none'")
        if self.affectnet_key_map not in KEY_MAPS and not Path(self.affectnet_key_map).is_file():
            raise ValueError(f"affectnet_key_map must be one of {KEY_MAPS} or the path of a JSON prefix map; "
                             f"{self.affectnet_key_map!r} is neither")
        Preprocessing.named(self.visual_preprocessing)
        if self.head_source not in HEAD_SOURCES:
            raise ValueError(f"head_source must be one of {HEAD_SOURCES}, got {self.head_source!r}")
        if self.head_source == "openface" and not self.openface_dir:
            raise ValueError("head_source='openface' needs openface_dir, the folder of OpenFace's CSVs")
        if self.openface_match not in ("frame", "timestamp"):
            raise ValueError(f"openface_match must be 'frame' or 'timestamp', got {self.openface_match!r}")
        if self.precision not in ("auto", "float32"):
            raise ValueError(f"precision must be 'auto' or 'float32', got {self.precision!r}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")
        if self.hubert_chunk_seconds <= 0 or self.hubert_context_seconds < 0:
            raise ValueError("hubert_chunk_seconds must be positive and hubert_context_seconds non-negative")

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "ExtractionConfig":
        """The paper's sampling for a dataset (AVEC2013: 1 of every 100 frames; AVEC2014 and demo: 4 of 100)."""
        sampling = {"avec2013": dict(keep=1, every=100), "avec2014": dict(keep=4, every=100),
                    "demo": dict(keep=4, every=100)}
        if dataset not in sampling:
            raise ValueError(f"dataset must be one of {sorted(sampling)}, got {dataset!r}")
        return cls(**{**sampling[dataset], **overrides})

    def face_cropper(self, device: str | torch.device = "cpu") -> FaceCropper:
        """The face detector and cropper these settings describe."""
        return FaceCropper(crop_size=self.crop_size, margin=self.face_margin, detect_max_side=self.face_detect_max_side,
                           min_face_fraction=self.face_min_fraction, min_confidence=self.face_min_confidence,
                           device=device)

    def modality_settings(self) -> dict[str, dict]:
        """What each modality's features depend on, including the identity of the weights."""
        # Frame times are read from each frame's timestamp; caches from the earlier index / fps
        # times (wrong on variable-frame-rate videos) are therefore re-extracted.
        sampling = {"keep": self.keep, "every": self.every, "frame_times": "pts"}
        visual = {"sampling": sampling, "crop_size": self.crop_size, "face_margin": self.face_margin,
                  "face_detect_max_side": self.face_detect_max_side, "face_min_fraction": self.face_min_fraction,
                  "face_min_confidence": self.face_min_confidence, "weights": self._visual_weights_identity(),
                  "preprocessing": asdict(Preprocessing.named(self.visual_preprocessing)),
                  "precision": self.computed_in()}
        audio = {"hubert": self._hubert_identity(), "layer": self.hubert_layer, "normalize": self.hubert_normalize,
                 "chunk_seconds": self.hubert_chunk_seconds, "context_seconds": self.hubert_context_seconds,
                 "sample_rate": SAMPLE_RATE, "precision": self.computed_in()}
        if self.head_source == "builtin":
            head = {"sampling": sampling, "source": HeadPoseGazeEstimator.name,
                    "min_detection_confidence": self.head_min_confidence}
        else:
            head = {"sampling": sampling, "source": "openface", "match": self.openface_match}
        return {"visual": visual, "audio": audio, "head": head}

    def computed_in(self) -> str:
        """The precision the two networks actually run in on this machine ("float32", "bfloat16" or
        "float16"): part of the features' key, since "auto" gives other values on other hardware."""
        dtype = autocast_dtype(pick_device(self.device)) if self.precision == "auto" else None
        return str(dtype).replace("torch.", "") if dtype is not None else "float32"

    def _visual_weights_identity(self) -> str:
        if self.visual_weights == "affectnet":
            layout = ":caffe-layout" if self.affectnet_key_map == "caffe" else ""
            return f"affectnet:sha256={file_sha256(self.affectnet_checkpoint)}{layout}"
        if self.visual_weights == "none":
            return f"random:seed={self.seed}"
        return f"torchvision:{self.visual_weights}"

    def _hubert_identity(self) -> str:
        if self.hubert in RANDOM_SOURCES:
            return f"{self.hubert}:seed={self.seed}"
        folder = Path(self.hubert).expanduser()
        if folder.is_dir():
            digest = hashlib.sha256()
            for file in sorted(folder.iterdir()):
                if file.is_file():
                    digest.update(f"{file.name}:{file.stat().st_size}".encode())
            config_file = folder / "config.json"
            if config_file.is_file():
                digest.update(config_file.read_bytes())
            return f"folder:{folder.name}:{digest.hexdigest()[:16]}"
        return f"hub:{self.hubert}@{hub_revision(self.hubert, self.offline)}"


def _prepare_index(index: pd.DataFrame) -> pd.DataFrame:
    missing = [column for column in INDEX_REQUIRED if column not in index.columns]
    if missing:
        raise ValueError(f"the index lacks the columns {missing}; it needs {list(INDEX_REQUIRED)}")
    if len(index) == 0:
        raise ValueError("the index lists no videos")
    table = index.copy().reset_index(drop=True)
    for column in TABLE_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    table["video_id"] = table["video_id"].astype(str)
    table["audio_path"] = table["audio_path"].fillna("").astype(str)
    table["video_path"] = table["video_path"].astype(str)
    duplicated = table[table["video_id"].duplicated(keep=False)]
    if len(duplicated):
        listing = "; ".join(f"{row.video_id}: {row.video_path}" for row in duplicated.itertuples())
        raise ValueError(f"video ids must be unique, these appear more than once: {listing}")
    for video_id in table["video_id"]:
        check_video_id(video_id)
    return table


def _missing_inputs(row: dict) -> list[str]:
    paths = [row["video_path"]] + ([row["audio_path"]] if row["audio_path"] else [])
    return [path for path in paths if not Path(path).is_file()]


class _Extractors:
    """The models, built on first use so that a run with nothing to do loads none of them."""

    def __init__(self, config: ExtractionConfig, device: torch.device, rank: int = 0):
        self.config = config
        self.device = device
        self.rank = rank

    @cached_property
    def cropper(self) -> FaceCropper:
        c = self.config
        return c.face_cropper(self.device)

    @cached_property
    def visual(self) -> VisualEncoder:
        c = self.config
        return VisualEncoder(c.visual_weights, c.affectnet_checkpoint, device=str(self.device),
                             batch_size=c.frame_batch_size, precision=c.precision, seed=c.seed, offline=c.offline,
                             key_map=c.affectnet_key_map, preprocessing=c.visual_preprocessing)

    @cached_property
    def hubert(self) -> HubertEncoder:
        c = self.config
        return HubertEncoder(c.hubert, layer=c.hubert_layer, chunk_seconds=c.hubert_chunk_seconds,
                             context_seconds=c.hubert_context_seconds, device=str(self.device),
                             precision=c.precision, seed=c.seed, offline=c.offline, normalize=c.hubert_normalize)

    @cached_property
    def head(self) -> HeadPoseGazeEstimator:
        return HeadPoseGazeEstimator(min_detection_confidence=self.config.head_min_confidence)

    def close(self) -> None:
        if "head" in self.__dict__:
            self.head.close()


def _provenance(modality: str, video_id: str, extractor: str, weights: str, settings: dict, config_hash: str,
                inputs: list, tools: _Extractors, summary: dict) -> dict:
    # Only the two networks run under autocast; face detection, face mesh and solvePnP stay float32.
    reduced = autocast_dtype(tools.device) if tools.config.precision == "auto" and modality != "head" else None
    return {"modality": modality, "video_id": video_id, "extractor": extractor, "weights": weights,
            "settings": settings, "config_hash": config_hash, "inputs": inputs, "summary": summary,
            "computed_in": str(reduced).replace("torch.", "") if reduced is not None else "float32",
            "device": str(tools.device), "process": tools.rank, "mddr_utils": __version__,
            "torch": torch.__version__, "created": utc_now()}


class _VideoJob:
    """Extract whatever is not current for one video, then write it to the cache.

    Everything is computed before anything is written, so a video that fails in any modality
    leaves the cache as it was.
    """

    def __init__(self, row: dict, cache: FeatureCache, config: ExtractionConfig, settings: dict, hashes: dict,
                 tools: _Extractors, modalities: tuple[str, ...] = MODALITIES):
        missing = _missing_inputs(row)
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)}: no such file")
        self.row, self.cache, self.config, self.modalities = row, cache, config, modalities
        self.settings, self.hashes, self.tools = settings, hashes, tools
        self.video_id = row["video_id"]
        self.video_path = Path(row["video_path"])
        self.audio_path = Path(row["audio_path"]) if row["audio_path"] else self.video_path
        self.openface_csv = (find_openface_csv(config.openface_dir, self.video_path, self.video_id)
                             if config.head_source == "openface" else None)
        self.inputs = {"visual": input_signature([self.video_path]), "audio": input_signature([self.audio_path]),
                       "head": input_signature([self.video_path] + ([self.openface_csv] if self.openface_csv else []))}
        self.results: dict[str, tuple[dict, str, str, dict]] = {}

    def stale(self) -> dict[str, str]:
        """The wanted modalities whose cache file is missing, unreadable or made with other settings or inputs, and why."""
        return self.cache.stale_modalities(self.video_id, self.hashes, self.inputs, self.modalities)

    def run(self) -> None:
        """Check the cheap things first (the video's frames, the OpenFace CSV, the audio), then compute, then write."""
        stale = self.stale()
        need_pixels_for_head = "head" in stale and self.config.head_source == "builtin"
        decode = "visual" in stale or need_pixels_for_head
        if decode:
            frame_layout(self.video_path)
        openface_table = None
        if "head" in stale and self.config.head_source == "openface":
            openface_table = read_openface_csv(self.openface_csv)
        if "audio" in stale:
            self._audio()
        sampled = self._frames(visual="visual" in stale, head=need_pixels_for_head) if decode else None
        if openface_table is not None:
            if sampled is None and self.cache.is_current("visual", self.video_id, self.hashes["visual"],
                                                         self.inputs["visual"]):
                arrays, _ = self.cache.read("visual", self.video_id)
                sampled = {"frame_index": arrays["frame_index"], "times": arrays["times"]}
            elif sampled is None:
                sampled = self._frames(visual=False, head=False)
            self._openface_head(openface_table, sampled)
        for modality, (arrays, extractor, weights, summary) in self.results.items():
            provenance = _provenance(modality, self.video_id, extractor, weights, self.settings[modality],
                                     self.hashes[modality], self.inputs[modality], self.tools, summary)
            self.cache.write(modality, self.video_id, arrays, provenance)

    def _keep(self, modality: str, arrays: dict, extractor: str, weights: str, summary: dict) -> None:
        for name, value in arrays.items():
            value = np.asarray(value)
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                raise ValueError(f"{modality} features of {self.video_path} hold NaN or Inf (array {name!r}); "
                                 f"nothing was written")
        self.results[modality] = (arrays, extractor, weights, summary)

    def _frames(self, visual: bool, head: bool) -> dict:
        indices, times = [], []
        parts = {"visual": [], "found": [], "boxes": [], "scores": [], "head": [], "head_valid": []}
        frame_size = None
        # Decoding and face detection run a batch ahead, in a background thread, while the networks
        # (ResNet-50, the head estimator) work on the batch before: on a GPU the CPU side keeps it busy,
        # and on a CPU PyAV's decoding (which releases the GIL) overlaps the networks.
        for part in prefetched(frame_batches(self.video_path, self.config, self.tools.cropper if visual else None)):
            indices += part.indices
            times += part.times
            frame_size = part.frames[0].shape[:2]
            if visual:
                features = np.zeros((len(part.frames), VISUAL_DIM), dtype=np.float32)
                if part.crops.found.any():
                    features[part.crops.found] = self.tools.visual.encode(part.crops.crops[part.crops.found])
                parts["visual"].append(features)
                parts["found"].append(part.crops.found)
                parts["boxes"].append(part.crops.boxes)
                parts["scores"].append(part.crops.scores)
            if head:
                values, valid = self.tools.head(part.frames)
                parts["head"].append(values)
                parts["head_valid"].append(valid)
        if not indices:
            raise ValueError(f"{self.video_path}: no frames could be decoded")
        sampled = {"frame_index": np.asarray(indices, dtype=np.int64), "times": np.asarray(times, dtype=np.float64)}
        if visual:
            found = np.concatenate(parts["found"])
            if not found.any():
                raise NoFaceError(f"{self.video_path}: no face found in any of its {len(found)} sampled frames")
            self._check_timeline("head", sampled)
            self._keep("visual", {**sampled, "visual": np.concatenate(parts["visual"]), "visual_valid": found,
                                  "face_boxes": np.concatenate(parts["boxes"]),
                                  "face_scores": np.concatenate(parts["scores"]),
                                  "frame_size": np.asarray(frame_size, dtype=np.int64)},
                       extractor="mtcnn(facenet-pytorch)+resnet50(torchvision)", weights=self.tools.visual.weights_id,
                       summary={"frames": len(found), "with_face": int(found.sum())})
        if head:
            valid = np.concatenate(parts["head_valid"])
            self._check_timeline("visual", sampled)
            self._keep("head", {**sampled, "head": np.concatenate(parts["head"]), "head_valid": valid},
                       extractor=HeadPoseGazeEstimator.name, weights="mediapipe face mesh + iris (bundled)",
                       summary={"frames": len(valid), "valid": int(valid.sum())})
        return sampled

    def _check_timeline(self, other: str, sampled: dict) -> None:
        """A modality rewritten alone must sit on the frames the other one already uses."""
        if other in self.results or not self.cache.is_current(other, self.video_id, self.hashes[other],
                                                              self.inputs[other]):
            return
        arrays, _ = self.cache.read(other, self.video_id)
        if not np.array_equal(arrays["frame_index"], sampled["frame_index"]):
            raise ValueError(f"{self.video_path}: the sampled frames differ from those of the cached {other} features")

    def _openface_head(self, table: pd.DataFrame, sampled: dict) -> None:
        values, valid = match_openface(table, sampled["frame_index"], sampled["times"],
                                       by=self.config.openface_match, source=str(self.openface_csv),
                                       video_frames=frame_layout(self.video_path).num_frames, video=self.video_path)
        self._keep("head", {**sampled, "head": values, "head_valid": valid}, extractor="openface-csv",
                   weights=self.openface_csv.name, summary={"frames": len(valid), "valid": int(valid.sum())})

    def _audio(self) -> None:
        if self.audio_path != self.video_path:
            check_audio_matches_video(self.audio_path, self.video_path)
        waveform = load_audio(self.audio_path, sample_rate=SAMPLE_RATE)
        features = self.tools.hubert.encode(waveform, SAMPLE_RATE)
        self._keep("audio", {"audio": features, "num_samples": np.int64(len(waveform))},
                   extractor="hubert(transformers)", weights=self.tools.hubert.source_id,
                   summary={"frames": len(features), "seconds": round(len(waveform) / SAMPLE_RATE, 3)})


@dataclass
class FrameBatch:
    """Consecutive sampled frames of a video: their indices, times (s), RGB pixels and, when faces were
    looked for, the crops (`FaceCrops`)."""

    indices: list[int]
    times: list[float]
    frames: list[np.ndarray]
    crops: FaceCrops | None = None


def frame_batches(video_path: str | Path, config: ExtractionConfig,
                  cropper: FaceCropper | None = None) -> Iterator[FrameBatch]:
    """The frames `config` samples from a video, in batches of `config.frame_batch_size`, each with its
    faces found and cropped by `cropper` when one is given."""
    batch = FrameBatch([], [], [])
    for frame_index, seconds, rgb in sample_frames(video_path, keep=config.keep, every=config.every):
        batch.indices.append(frame_index)
        batch.times.append(seconds)
        batch.frames.append(rgb)
        if len(batch.frames) == config.frame_batch_size:
            yield replace(batch, crops=cropper(batch.frames) if cropper is not None else None)
            batch = FrameBatch([], [], [])
    if batch.frames:
        yield replace(batch, crops=cropper(batch.frames) if cropper is not None else None)


def prefetched(items: Iterable, depth: int = 2) -> Iterator:
    """The items of `items` in order, produced by a background thread up to `depth` ahead of the
    consumer; an error raised while producing is raised here, and a consumer that stops early stops
    the producer."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(message) -> bool:
        while not stop.is_set():
            try:
                queue.put(message, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("done", None))
        except BaseException as error:
            offer(("error", error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="mddr-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "error":
                raise value
            if kind == "done":
                return
            yield value
    finally:
        stop.set()
        thread.join()


def _failure(row: dict, error: BaseException) -> dict:
    """What the manifest and `Cohort.left_out` keep of one failure: the file, the reason, the full message."""
    missing = _missing_inputs(row)
    reason = f"{type(error).__name__}: {error}"
    return {"file": missing[0] if missing else str(row["video_path"]), "reason": reason,
            "message": f"video {row['video_id']!r} ({row['video_path']}): {reason}"}


def extract_features(index: pd.DataFrame, cache_dir: str | Path, config: ExtractionConfig,
                     progress: bool = True) -> Cohort:
    """Extract every modality not yet current in the cache (`update_cache`) and return the cohort."""
    update_cache(index, cache_dir, config, progress)
    return load_feature_cohort(cache_dir, config)


def update_cache(index: pd.DataFrame, cache_dir: str | Path, config: ExtractionConfig, progress: bool = True,
                 modalities: Sequence[str] = MODALITIES) -> None:
    """Extract the `modalities` not yet current in the cache, and write the manifest.

    Damaged cache files (and a damaged manifest) are moved aside with a warning and made again.
    Every video is tried; failures are handled as `config.on_error` says (see ExtractionConfig)
    and recorded in the manifest. Runs unchanged under torchrun: each process takes a disjoint
    share of the videos to extract and rank 0 writes the manifest after all have finished.
    """
    modalities = _check_modalities(modalities)
    table = _prepare_index(index)
    cache = FeatureCache(cache_dir)
    settings = config.modality_settings()
    hashes = settings_hashes(settings)
    which = "features" if set(modalities) == set(MODALITIES) else f"{' and '.join(modalities)} features"
    rank, world, started_group = distributed.setup()
    try:
        tools = _Extractors(config, distributed.process_device(config.device, world), rank)
        try:
            # Largest first, so that the shares of several processes weigh about the same.
            outcome = jobs.run_jobs(
                table, cache, lambda row: _VideoJob(row, cache, config, settings, hashes, tools, modalities),
                _failure, lambda done: _write_manifest(cache, table, config, settings, hashes, done.failures, done.world),
                rank, world, order=lambda job: (-job.video_path.stat().st_size, job.video_id), what=which,
                progress=progress)
        finally:
            tools.close()
    finally:
        if started_group:
            import torch.distributed as dist

            dist.destroy_process_group()
    jobs.report_failures(outcome, config.on_error, rank)


def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown or not modalities:
        raise ValueError(f"modalities must be some of {MODALITIES}, got {list(modalities)}")
    return tuple(m for m in MODALITIES if m in modalities)


def _write_manifest(cache: FeatureCache, table: pd.DataFrame, config: ExtractionConfig, settings: dict,
                    hashes: dict, failures: dict[str, dict], world: int) -> None:
    videos = []
    for row in table.itertuples(index=False):
        entry = {column: getattr(row, column) for column in TABLE_COLUMNS}
        entry["label"] = float(entry["label"]) if pd.notna(entry["label"]) and entry["label"] != "" else None
        entry["inputs"] = {}
        for modality in MODALITIES:
            provenance = cache.provenance(modality, row.video_id) or {}
            current = provenance.get("config_hash") == hashes[modality]
            entry[modality] = provenance.get("summary") if current else None
            if current:
                entry["inputs"][modality] = [[item.get("size"), item.get("sample_sha256")]
                                             for item in provenance.get("inputs") or [] if isinstance(item, dict)]
        if row.video_id in failures:
            entry["failed"] = failures[row.video_id]["message"]
            entry["failed_file"] = failures[row.video_id]["file"]
            entry["failed_reason"] = failures[row.video_id]["reason"]
        videos.append(entry)
    cache.write_manifest({"updated": utc_now(), "mddr_utils": __version__, "torch": torch.__version__,
                          "processes": world, "config": asdict(config), "settings": settings,
                          "config_hashes": hashes, "videos": videos,
                          "files": cache.file_stamps(entry["video_id"] for entry in videos)})


def assemble_video(cache: FeatureCache, row: pd.Series, scale: str = "BDI-II") -> VideoFeatures:
    """One video's VideoFeatures from its three cache files and its table row (label, subject, ...), its
    label on `scale`; audio frames marked unusable where the audio file holds `audio_valid` (DAIC)."""
    video_id = row["video_id"]
    visual, _ = cache.read("visual", video_id)
    head, _ = cache.read("head", video_id)
    audio, _ = cache.read("audio", video_id)
    if not np.array_equal(visual["frame_index"], head["frame_index"]):
        raise ValueError(f"video {video_id!r}: visual and head features sit on different frames in {cache.root}")
    return VideoFeatures(video_id=video_id, visual=visual["visual"], head=head["head"], times=visual["times"],
                         audio=audio["audio"], label=float(row["label"]), subject=str(row["subject"]),
                         task=str(row["task"]), split=str(row["split"]), visual_valid=visual["visual_valid"],
                         head_valid=head["head_valid"], audio_rate=AUDIO_RATE_HZ, scale=scale,
                         audio_valid=audio.get("audio_valid"))


def load_feature_cohort(cache_dir: str | Path, config: ExtractionConfig | None = None) -> Cohort:
    """The cohort stored in a cache, checked against `config` (default: the configuration it was made with).

    Videos the manifest records as failed are left out (`Cohort.left_out`); the cohort's
    `identity` holds the feature settings' hashes and each video's input identities.
    """
    cache = FeatureCache(cache_dir)
    manifest = cache.read_manifest()
    if config is None:
        hashes = manifest["config_hashes"]
    else:
        hashes = settings_hashes(config.modality_settings())
    entries = [entry for entry in manifest["videos"] if not entry.get("failed")]
    table = pd.DataFrame(entries, columns=list(TABLE_COLUMNS))
    stale = [f"{video_id}/{modality} ({reason})" for video_id in table["video_id"] for modality in MODALITIES
             if (reason := cache.why_stale(modality, video_id, hashes[modality])) is not None]
    if stale:
        raise ValueError(f"{cache.root}: {len(stale)} feature files are missing, unreadable or were made with other "
                         f"settings ({', '.join(stale[:6])}{', ...' if len(stale) > 6 else ''}); run extract_features")
    identity = {"settings": hashes, "videos": {entry["video_id"]: entry.get("inputs") for entry in entries}}
    return Cohort(table, partial(assemble_video, cache), name=f"features:{cache.root.name}",
                  left_out=manifest_failures(manifest), identity=identity, origin=str(cache.root))


@dataclass
class StoredModality:
    """One video's features of one modality as the cache stores them, with its label: what a feature
    chapter shows. `features` is [steps, dims]; `times` the seconds of each step (the sampled frames
    for visual and head, one step per 20 ms from t = 0 for audio); `valid` flags the steps with a
    face (visual) or a head pose (head), all True for audio."""

    video_id: str
    modality: str
    label: float
    split: str
    task: str
    features: np.ndarray
    times: np.ndarray
    valid: np.ndarray
    provenance: dict

    @property
    def duration(self) -> float:
        """Seconds covered: the audio track's length, or the time of the last sampled frame."""
        return len(self.features) / AUDIO_RATE_HZ if self.modality == "audio" else float(self.times[-1])


class ModalityCohort(Sequence):
    """The videos of a cache whose `modality` is current, as `StoredModality`, loaded on access.

    `table` has a row per video (`video_id`, `subject`, `task`, `split`, `label`, ...) and
    `left_out` the videos whose extraction failed (video_id, file, reason), as a `Cohort`'s."""

    def __init__(self, cache: FeatureCache, modality: str, table: pd.DataFrame, left_out: pd.DataFrame):
        self.cache, self.modality = cache, modality
        self.table, self.left_out = table.reset_index(drop=True), left_out

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> StoredModality:
        row = self.table.iloc[index]
        arrays, provenance = self.cache.read(self.modality, row["video_id"])
        features = arrays[self.modality]
        if self.modality == "audio":
            times, valid = np.arange(len(features)) / AUDIO_RATE_HZ, np.ones(len(features), dtype=bool)
        else:
            times, valid = arrays["times"], arrays[f"{self.modality}_valid"]
        return StoredModality(video_id=row["video_id"], modality=self.modality, label=float(row["label"]),
                              split=str(row["split"]), task=str(row["task"]), features=features, times=times,
                              valid=np.asarray(valid, dtype=bool), provenance=provenance)

    def __repr__(self) -> str:
        left_out = f", {len(self.left_out)} left out" if len(self.left_out) else ""
        return f"ModalityCohort({self.modality!r} in {str(self.cache.root)!r}, {len(self)} videos{left_out})"


def load_modality(cache_dir: str | Path, modality: str, config: ExtractionConfig | None = None) -> ModalityCohort:
    """The videos of a cache whose `modality` features are current for `config` (default: the configuration
    the cache was last written with); the videos that failed are in `left_out`."""
    cache = FeatureCache(cache_dir)
    manifest = cache.read_manifest()
    (modality,) = _check_modalities([modality])
    wanted = (settings_hashes(config.modality_settings()) if config is not None
              else manifest["config_hashes"])[modality]
    entries = [entry for entry in manifest["videos"] if not entry.get("failed")
               and cache.is_current(modality, entry["video_id"], wanted)]
    return ModalityCohort(cache, modality, pd.DataFrame(entries, columns=list(TABLE_COLUMNS)), manifest_failures(manifest))


def manifest_failures(manifest: dict) -> pd.DataFrame:
    """The videos a cache's manifest records as failed, as a `Cohort.left_out` table (video_id, file, reason)."""
    return left_out_table({"video_id": entry["video_id"], "file": entry.get("failed_file", entry.get("video_path", "")),
                           "reason": entry.get("failed_reason", entry["failed"])}
                          for entry in manifest.get("videos", []) if entry.get("failed"))


if __name__ == "__main__":
    from .command_line import main

    sys.exit(main())
