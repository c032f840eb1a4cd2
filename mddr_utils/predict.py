"""Using a trained MDDR on new videos: the paper's pipeline (sections 3.2-3.5) at inference, trained
by section 4.3's protocol.

`train_checkpoint` trains MDDR as the book does (`train.run_model`: Training fits, the epoch is
selected on Development, Testing is never read) and writes a portable checkpoint: the weights,
MODEL.safetensors, and beside them the sidecar MODEL.json (`sidecar_path`), which records what
applying the model correctly needs:

- `model`: the model config; `training`: the recipe, the selected epoch and its Development MAE/RMSE;
- `extraction`: the full `ExtractionConfig`, its per-modality settings and their hashes;
- `label_scale`: the scale's name, range, category edges and names, stored as data;
- `data`: the dataset, the number of videos per split and a digest of the data it saw
  (`Cohort.fingerprint`: ids, labels, input files and feature settings);
- `software`, `created`: the package and code version, the date; `weights_sha256` ties the
  sidecar to its weights file.

`load_model` reads both, without pickle, and refuses a pair that was not written together.
`check_extraction` refuses features whose settings differ from the checkpoint's in anything that
changes feature values (`ExtractionConfig.modality_settings`: the backbone's weights, the HuBERT
model and layer, the sampling, the crop, the head source, the precision), naming each setting.
`predict_videos` extracts new videos with exactly the checkpoint's settings (refusing, before any
work, when a file they need is absent) and scores each video on its own, in float32, so that a
score never depends on which other videos share the call. A video that cannot be read, or shows
no face in any sampled frame, gets its `error` filled and the others are still scored.

A score is a research measurement on the BDI-II scale, never a diagnosis (`RESPONSIBLE_USE`).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import __version__, sources, versioning
from .data.container import VideoFeatures
from .data.packed import pack_cohort
from .features.cache import settings_hashes, utc_now
from .features.jobs import VideoLeftOutWarning
from .features.pipeline import ExtractionConfig, extract_features
from .data.scales import LabelScale, scale_by_name
from .features.visual import file_sha256
from .model import MDDR, MDDRConfig
from .train import (load_checkpoint, predict, progress_options, read_checkpoint_meta, run_model, save_checkpoint,
                    set_seed)

SIDECAR_FORMAT = "mddr-checkpoint/1"


def scale_record(scale: LabelScale) -> dict:
    """A label scale as a checkpoint's sidecar stores it: name, range, category edges and names."""
    return {"name": scale.name, "range": [0.0, float(scale.maximum)], "category_edges": list(scale.edges),
            "category_names": list(scale.category_names)}


RESPONSIBLE_USE = ("Research use only: an MDDR score is a model's estimate on a questionnaire's scale (BDI-II, "
                   "PHQ-8), not a diagnosis; "
                   "it must not be used to make decisions about anyone's care.")
RESULT_COLUMNS = ("video", "score", "category", "error", "duration_s", "steps", "steps_with_face")
VIDEO_DATASETS = ("demo", "avec2014", "avec2013")


class CheckpointError(ValueError):
    """A checkpoint or its sidecar is missing, unreadable, or the two do not belong together."""


class FeatureMismatchError(ValueError):
    """Features were (or would be) made with other extraction settings than the checkpoint's."""


class ExtractionUnavailableError(FileNotFoundError):
    """A file the checkpoint's extraction settings need (weights, a HuBERT folder) is not here."""


def sidecar_path(checkpoint: str | Path) -> Path:
    """The sidecar of a weights file: MODEL.safetensors -> MODEL.json."""
    return Path(checkpoint).with_suffix(".json")


@dataclass
class TrainedModel:
    """A loaded checkpoint: the model (eval mode, CPU) and its sidecar."""

    model: MDDR
    sidecar: dict
    path: Path

    @property
    def extraction(self) -> ExtractionConfig:
        """The extraction config the model's training features were made with."""
        return extraction_for(self)

    @property
    def label_scale(self) -> dict:
        """The label scale of the scores: name, range, category edges and names."""
        return self.sidecar["label_scale"]

    def provenance(self) -> str:
        """One line: the data it was trained on, when, and its Development figures."""
        data, training = self.sidecar["data"], self.sidecar["training"]
        development = training["development"]
        return (f"checkpoint {self.path.name}: trained {self.sidecar['created']} on {data['description']} "
                f"({data['videos'].get('Training', 0)} Training videos), epoch {training['selected_epoch']} selected "
                f"on {data['videos'].get('Development', 0)} Development videos: MAE {development['mae']:.2f}, "
                f"RMSE {development['rmse']:.2f} ({self.label_scale['name']} points)")


def _check_weights_name(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix != ".safetensors":
        raise ValueError(f"{out}: the weights file must end in .safetensors (its sidecar is written beside it as "
                         f"{sidecar_path(out).name})")
    return out


def train_checkpoint(out: str | Path, dataset: str = "demo", profile: str = "demo", data_dir: str | Path = "data",
                     data_root: str | Path | None = None, seed: int = 0, extraction: dict | None = None,
                     progress: bool = True, packed: str | Path | None = None, packed_dtype: str = "float32",
                     workers: int = 0) -> TrainedModel:
    """Train MDDR on a dataset's Training split, select on Development, write `out` and its sidecar.

    `extraction` holds `ExtractionConfig` fields (None: those recorded in the dataset's feature
    cache, else the dataset's defaults). A run done before with the same settings is reused.
    The features are kept in memory, or packed into the folder `packed` (`data.packed.pack_cohort`,
    stored as `packed_dtype`) and read there by `workers` DataLoader processes.
    """
    _check_weights_name(out)
    if dataset not in VIDEO_DATASETS:
        raise ValueError(f"dataset {dataset!r}: a model for new videos is trained on video features; "
                         f"use one of {VIDEO_DATASETS}")
    features = sources.extract_dataset_features(dataset, profile, data_dir, data_root, seed, extraction, progress)
    cohort = (pack_cohort(features.cohort, packed, packed_dtype, progress) if packed
              else features.cohort.in_memory())
    run = run_model(cohort, profile, seed, data_dir, train_overrides={"workers": workers} if workers else None,
                    progress=progress)
    run_meta = read_checkpoint_meta(run.checkpoint)["meta"]
    counts = cohort.table["split"].value_counts()
    training = {"profile": profile, "seed": seed, "recipe": run_meta["train"], "epochs": len(run.history),
                "selected_epoch": int(run.best_epoch), "selected_on": "Development",
                "development": {"mae": float(run.best_dev["mae"]), "rmse": float(run.best_dev["rmse"])},
                "testing": "not used"}
    data = {"dataset": dataset, "description": sources.describe_source(dataset, profile),
            "data_root": str(Path(data_root).expanduser().absolute()) if data_root else None,
            "fingerprint": cohort.fingerprint,
            "videos": {split: int(counts.get(split, 0)) for split in ("Training", "Development")},
            "left_out": len(cohort.left_out)}
    return write_checkpoint(run.model, out, features.config, training, data, run_meta)


def write_checkpoint(model: MDDR, out: str | Path, extraction: ExtractionConfig, training: dict, data: dict,
                     run_meta: dict | None = None) -> TrainedModel:
    """Write the weights `out` (safetensors, with `run_meta`) and its sidecar; return them loaded.

    `training` holds at least `selected_epoch` and `development` ({"mae", "rmse"}); `data` at least
    `dataset`, `description` and `videos` (counts per split).
    """
    out = _check_weights_name(out)
    missing = [f"training.{key}" for key in ("selected_epoch", "development") if key not in training]
    missing += [f"data.{key}" for key in ("dataset", "description", "videos") if key not in data]
    if missing:
        raise ValueError(f"{out}: a checkpoint's sidecar needs {', '.join(missing)}")
    save_checkpoint(model, out, run_meta)
    settings = extraction.modality_settings()
    sidecar = {
        "format": SIDECAR_FORMAT,
        "weights_sha256": file_sha256(out),
        "model": model.config.to_dict(),
        "training": training,
        "extraction": {"config": asdict(extraction), "settings": settings,
                       "hashes": settings_hashes(settings)},
        "label_scale": scale_record(scale_by_name(model.config.label_scale)),
        "data": data,
        "software": {"mddr_utils": __version__, "code": versioning.code_digest(), "torch": torch.__version__},
        "created": utc_now(),
    }
    _write_json(sidecar_path(out), sidecar)
    return load_model(out)


def _write_json(path: Path, value: dict) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(value, indent=1, default=str))
    os.replace(partial, path)


def load_model(checkpoint: str | Path) -> TrainedModel:
    """The model and sidecar of a checkpoint written by `train_checkpoint`; refused if the two do not match."""
    path = Path(checkpoint)
    side = sidecar_path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not side.is_file():
        raise CheckpointError(f"{path}: its sidecar {side} is missing; a checkpoint for new videos is written by "
                              "`python -m mddr_utils train` (or mddr_utils.predict.train_checkpoint)")
    try:
        sidecar = json.loads(side.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{side}: not a readable sidecar ({error})") from error
    if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
        found = sidecar.get("format") if isinstance(sidecar, dict) else type(sidecar).__name__
        raise CheckpointError(f"{side}: not an MDDR sidecar of format {SIDECAR_FORMAT!r} (found {found!r})")
    required = ("weights_sha256", "model", "training", "extraction", "label_scale", "data", "created")
    missing = [key for key in required if key not in sidecar]
    if missing:
        raise CheckpointError(f"{side}: the sidecar lacks {', '.join(missing)}")
    if file_sha256(path) != sidecar["weights_sha256"]:
        raise CheckpointError(f"{path} and {side} were not written together: the weights' SHA-256 differs from the "
                              "one the sidecar records")
    try:
        model = load_checkpoint(path)
    except (OSError, ValueError) as error:
        raise CheckpointError(str(error)) from error
    if _as_json(model.config.to_dict()) != _as_json(MDDRConfig.from_dict(sidecar["model"], str(side)).to_dict()):
        raise CheckpointError(f"{side}: its model config differs from the one stored in {path}")
    trained = TrainedModel(model=model, sidecar=sidecar, path=path)
    extraction_for(trained)
    return trained


def _as_json(value):
    return json.loads(json.dumps(value, default=str))


def extraction_for(trained: TrainedModel, overrides: dict | None = None) -> ExtractionConfig:
    """The checkpoint's extraction config, with `overrides` (e.g. where a weights file now lives)."""
    recorded = dict(trained.sidecar["extraction"]["config"])
    known = {option.name for option in fields(ExtractionConfig)}
    unknown = sorted(set(recorded) - known)
    if unknown:
        raise CheckpointError(f"{sidecar_path(trained.path)}: extraction fields this version does not know: "
                              f"{', '.join(unknown)}")
    chosen = {name: value for name, value in (overrides or {}).items() if value is not None}
    bad = sorted(set(chosen) - known)
    if bad:
        raise ValueError(f"not ExtractionConfig fields: {', '.join(bad)}")
    return ExtractionConfig(**{**recorded, **chosen})


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: value}


def extraction_differences(recorded: dict, settings: dict) -> list[str]:
    """Each setting (as `modality.name`) in which two `modality_settings()` dicts differ, with both values."""
    absent = "<absent>"
    old, new = _flatten(_as_json(recorded)), _flatten(_as_json(settings))
    return [f"{name}: checkpoint {old.get(name, absent)!r}, features {new.get(name, absent)!r}"
            for name in sorted(set(old) | set(new)) if old.get(name, absent) != new.get(name, absent)]


def missing_requirements(trained: TrainedModel, config: ExtractionConfig) -> list[str]:
    """What extracting with `config` needs and is not here (weights files, folders), each named."""
    recorded = trained.sidecar["extraction"]["settings"]
    problems = []
    if config.visual_weights == "affectnet" and not Path(config.affectnet_checkpoint).is_file():
        problems.append(f"the AffectNet checkpoint the model was trained with ({recorded['visual']['weights']}) is "
                        f"absent: {config.affectnet_checkpoint} is not a file; give its location with "
                        "--affectnet-checkpoint")
    if config.visual_weights in ("imagenet", "imagenet_v1") and config.offline:
        from .features.visual import imagenet_checkpoint_path

        url, cached = imagenet_checkpoint_path("V1" if config.visual_weights == "imagenet_v1" else "V2")
        if not cached.is_file():
            problems.append(f"torchvision's ImageNet ResNet-50 weights are not in the torch hub cache: put "
                            f"{url.rsplit('/', 1)[-1]} (from {url}) in {cached.parent}")
    hubert = str(recorded["audio"]["hubert"])
    if hubert.startswith("folder:") and not Path(config.hubert).expanduser().is_dir():
        problems.append(f"the HuBERT folder the model was trained with ({hubert}) is absent: {config.hubert} is not "
                        "a folder; give its location with --hubert")
    elif hubert.startswith("hub:") and config.offline and not _in_hub_cache(config.hubert):
        problems.append(f"HuBERT {config.hubert!r} is not in the Hugging Face cache and extraction is offline; "
                        "save it to a folder with HubertModel.save_pretrained where the hub is reachable, "
                        "or run with --no-offline")
    if config.head_source == "openface" and not (config.openface_dir and Path(config.openface_dir).is_dir()):
        problems.append(f"head features come from OpenFace CSVs, and {config.openface_dir!r} is not a folder: "
                        "give the folder of these videos' OpenFace CSVs with --openface-dir")
    return problems


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except ValueError:  # not even a valid hub id, so certainly not cached
        return False


def check_extraction(trained: TrainedModel, extraction: ExtractionConfig | dict) -> None:
    """Refuse features made with other settings than the checkpoint's, naming each differing setting.

    `extraction` is an `ExtractionConfig` or a `modality_settings()` dict (a feature cache's
    manifest keeps one under "settings").
    """
    settings = extraction.modality_settings() if isinstance(extraction, ExtractionConfig) else extraction
    differences = extraction_differences(trained.sidecar["extraction"]["settings"], settings)
    if differences:
        raise FeatureMismatchError(f"{trained.path}: refused, these features were made with other extraction "
                                   f"settings than the model was trained on: {'; '.join(differences)}")


def categories(scores, scale: dict) -> list[str]:
    """The category name of each score on the sidecar's `scale`, by the same `LabelScale` DRLoss trained with."""
    try:
        known = scale_by_name(scale["name"])
    except ValueError as error:
        raise CheckpointError(f"label scale of the sidecar: {error}") from None
    if tuple(scale["category_edges"]) != known.edges or tuple(scale["category_names"]) != known.category_names:
        raise CheckpointError(f"label scale {scale['name']!r} with category edges {scale['category_edges']} and names "
                              f"{scale['category_names']}: {known.name} has edges {list(known.edges)} and names "
                              f"{list(known.category_names)}")
    codes = np.atleast_1d(known.category(np.asarray(scores, dtype=float)))
    return [known.category_names[code] for code in codes]


def score_features(trained: TrainedModel, videos: Sequence[VideoFeatures], extraction: ExtractionConfig | dict,
                   progress: bool = True) -> pd.DataFrame:
    """Per video: `video_id`, `score` (float32, clamped to the scale's range), `category`, duration and steps.

    Refused unless `extraction` (how the features were made) matches the checkpoint's settings.
    Each video is scored alone, so its score does not depend on the others.
    """
    check_extraction(trained, extraction)
    low, high = trained.label_scale["range"]
    rows = []
    for index in tqdm(range(len(videos)), desc="scoring", unit="video", **progress_options(progress)):
        video = videos[index]
        value = float(predict(trained.model, [video], batch=1, device="cpu")["pred"].iloc[0])
        score = float(np.clip(value, low, high))
        rows.append({"video_id": video.video_id, "score": score,
                     "category": categories([score], trained.label_scale)[0],
                     "duration_s": round(len(video.audio) / video.audio_rate, 2), "steps": int(video.num_steps),
                     "steps_with_face": int(np.asarray(video.visual_valid).sum())})
    return pd.DataFrame(rows, columns=["video_id", "score", "category", "duration_s", "steps", "steps_with_face"])


def _video_ids(paths: Sequence[Path]) -> list[str]:
    """A file-safe, unique id per path, from its file name."""
    ids, seen = [], set()
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem) or "video"
        candidate, count = base, 1
        while candidate in seen:
            count += 1
            candidate = f"{base}-{count}"
        seen.add(candidate)
        ids.append(candidate)
    return ids


def predict_videos(paths: Sequence[str | Path], checkpoint: str | Path | TrainedModel,
                   report_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                   extraction: dict | None = None, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Score each video with the checkpoint: one row per input, in order (`RESULT_COLUMNS`).

    Features are extracted with the checkpoint's recorded settings; `extraction` may only say
    where a needed file now lives (any change to feature values is refused). `cache_dir` keeps
    the features (a rerun reuses them); by default they go to a temporary folder. `report_dir`
    receives a figure per scored video and `report.md`.
    """
    trained = checkpoint if isinstance(checkpoint, TrainedModel) else load_model(checkpoint)
    config = extraction_for(trained, {**(extraction or {}), "on_error": "skip"})
    missing = missing_requirements(trained, config)
    if missing:
        raise ExtractionUnavailableError(f"{trained.path}: cannot extract features as the model was trained: "
                                         + "; ".join(missing))
    check_extraction(trained, config)
    paths = [Path(path) for path in paths]
    if not paths:
        raise ValueError("no videos given")
    ids = _video_ids(paths)
    # The pipeline's index needs a label; new videos have none, and this placeholder is never reported.
    index = pd.DataFrame({"video_id": ids, "video_path": [str(path) for path in paths], "label": 0.0})
    set_seed(seed)
    with tempfile.TemporaryDirectory(prefix="mddr-predict-") as scratch, warnings.catch_warnings():
        # Each failure is reported in its row's `error`; the pipeline's warning would say it twice.
        warnings.simplefilter("ignore", VideoLeftOutWarning)
        cohort = extract_features(index, Path(cache_dir) if cache_dir else Path(scratch), config, progress=progress)
        scored = score_features(trained, cohort, config, progress)
        if report_dir is not None and len(scored):
            figures = write_figures(trained, cohort, scored, report_dir)
            scored["figure"] = scored["video_id"].map(figures)
    errors = dict(zip(cohort.left_out["video_id"], cohort.left_out["reason"]))
    table = pd.DataFrame({"video_id": ids, "video": [str(path) for path in paths]}).merge(scored, on="video_id",
                                                                                        how="left")
    table["error"] = [errors.get(video_id, "") if pd.isna(score) else ""
                      for video_id, score in zip(table["video_id"], table["score"])]
    unexplained = table["score"].isna() & (table["error"] == "")
    table.loc[unexplained, "error"] = "no features were extracted"
    table["category"] = table["category"].fillna("")
    table = table[list(RESULT_COLUMNS) + (["figure"] if "figure" in table else [])]
    if report_dir is not None:
        write_summary(trained, table, report_dir)
    return table


def write_figures(trained: TrainedModel, videos: Sequence[VideoFeatures], scored: pd.DataFrame,
                  report_dir: str | Path) -> dict[str, str]:
    """A PNG per scored video (FAA weights per modality and SEA weight over time, score and category);
    returns each video's figure file name."""
    import matplotlib.pyplot as plt

    from .interpret import attention_table
    from .plots import attention_over_time

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    modalities = list(trained.model.config.modalities)
    by_id = scored.set_index("video_id")
    names = {}
    for index in range(len(videos)):
        video = videos[index]
        if video.video_id not in by_id.index:
            continue
        row = by_id.loc[video.video_id]
        weights = attention_table(trained.model, [video])
        figure = attention_over_time(video.times, weights[modalities].to_numpy(), modalities,
                                     weights["temporal"].to_numpy(),
                                     title=f"{video.video_id}: {trained.label_scale['name']} score {row['score']:.1f} "
                                           f"({row['category']})")
        names[video.video_id] = f"{video.video_id}.png"
        figure.savefig(report_dir / names[video.video_id], dpi=100)
        plt.close(figure)
    return names


def write_summary(trained: TrainedModel, table: pd.DataFrame, report_dir: str | Path) -> Path:
    """`report.md` in `report_dir`: the notice, the checkpoint's provenance, the table and the figures."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    columns = [column for column in table.columns if column != "figure"]
    lines = ["# MDDR scores", "", f"**{RESPONSIBLE_USE}**", "", trained.provenance(), "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table[columns].itertuples(index=False):
        cells = ["" if pd.isna(value) else f"{value:.2f}" if isinstance(value, float) else str(value).replace("|", "/")
                 for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    figures = table["figure"] if "figure" in table else pd.Series(index=table.index, dtype=object)
    for video, figure in zip(table["video"], figures):
        if isinstance(figure, str):
            lines += ["", f"## {video}", "", f"![FAA and SEA weights of {video}]({figure})"]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
