"""What a feature chapter shows of an extraction (section 3.2): the report per video, the videos
left out, and the first face crops of a video."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import FeatureCache
from .faces import FaceCrops
from .pipeline import ExtractionConfig, frame_batches, manifest_failures


def failures_table(cache_dir: str | Path) -> pd.DataFrame:
    """The videos whose extraction failed in the cache's last run: video_id, file, reason (empty if none)."""
    manifest = FeatureCache(cache_dir).read_manifest_or_none()
    return manifest_failures(manifest or {})


def extraction_report(cache_dir: str | Path) -> pd.DataFrame:
    """Per video: sampled frames, frames with a face, frames with head pose, audio frames and seconds."""
    manifest = FeatureCache(cache_dir).read_manifest()
    rows = []
    for entry in manifest["videos"]:
        visual, head, audio = entry.get("visual") or {}, entry.get("head") or {}, entry.get("audio") or {}
        frames, with_face = visual.get("frames"), visual.get("with_face")
        rows.append({"video_id": entry["video_id"], "split": entry["split"], "task": entry["task"],
                     "label": entry["label"], "frames": frames, "with_face": with_face,
                     "without_face": frames - with_face if visual else None, "head_valid": head.get("valid"),
                     "audio_frames": audio.get("frames"), "audio_seconds": audio.get("seconds"),
                     "failed": entry.get("failed", "")})
    return pd.DataFrame(rows)


def face_crops_preview(video_path: str | Path, config: ExtractionConfig,
                       count: int = 8) -> tuple[np.ndarray, FaceCrops]:
    """(times [n], FaceCrops) of the first `count` sampled frames of a video, for figures."""
    first = next(frame_batches(video_path, replace(config, frame_batch_size=count), config.face_cropper()))
    return np.asarray(first.times), first.crops
