"""The protocol behind the paper's tables (section 5: Tables 1-4, Figure 4; metrics of section 4.2).

Every row of every table is made the same way:

1. train on Training and select the checkpoint (epoch) on Development: `train.fit` keeps the
   epoch with the lowest Development RMSE; Testing is never passed to training or selection;
2. evaluate Testing once, with that checkpoint; scores are clamped to the BDI-II range [0, 63];
3. MAE and RMSE over all Testing predictions at once (section 4.2), per video and per recording
   (AVEC2014 scores a recording as the mean of its Freeform and Northwind predictions);
4. repeat for several seeds: mean ± standard deviation over seeds, and a 95% bootstrap interval
   that resamples Testing recordings (see `bootstrap_interval`).

Each seed's run is saved under `results_dir/runs` (predictions as CSV, configuration and history
as JSON) and reused whenever the same model family, configuration, seed, data and code come back,
so the full model is trained once and shared by Tables 1, 3, 4 and Figure 4; MDDR checkpoints go
to `data_dir/checkpoints` through `train.run_model`, shared with the model chapters. Every saved
run, checkpoint and row is named by a digest of its configuration, of its cohort's key (labels,
feature identities and settings: `train.cohort_key`) and of the code version
(`versioning.code_digest`): a changed label file, re-extracted features or edited code give new
runs, never an old one read back (old files are left in place, unused). Each split must hold
videos; an empty one is an error naming it. Every score is computed in float32. A row whose
input cannot be computed (pretrained weights not available, say) is recorded as not computed,
with the reason, never as a number.
"""
from __future__ import annotations

import copy
import json
import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import metrics, sources, versioning
from . import train as training
from .baselines import BASELINES, make_baseline
from .data.scales import BDI_II, LabelScale, scale_by_name
from .model import MDDR

MDDR_FAMILY = "mddr"
LEVEL = 0.95
NUM_RESAMPLES = 2000
SEEDS = {"smoke": (0,), "demo": (0, 1, 2), "paper": (0, 1, 2, 3, 4)}
"""Seeds per profile: one for tests, three for the book on two CPU cores, five for the paper's settings."""

DATASET_COLUMNS = ("AVEC2013", "AVEC2014")
_PAPER = {
    1: [  # (method, citation keys, AVEC2013 MAE, RMSE, AVEC2014 MAE, RMSE); None where the paper prints "\"
        ("Baseline", "valstar2013avec,valstar2014avec", 10.88, 13.61, 8.86, 10.86),
        ("LPQ + Geo", "kaya2014eyes,kaya2014ensemble", 7.86, 9.72, 8.20, 10.27),
        ("Concat+LSTM", "chao2015multitask", None, None, 7.91, 9.98),
        ("Two-DCNN", "zhu2017automated", 9.82, 7.58, 7.47, 9.55),
        ("C3D+RNN", "jazaery2018video", 7.37, 9.28, 7.22, 9.20),
        ("Two-Stream", "uddin2020depression", 7.04, 8.93, 6.86, 8.78),
        ("C3D+atten", "he2021intelligent", 6.83, 8.46, 6.78, 8.42),
        ("C3D+Pool", "melo2019combining", 6.40, 8.26, 6.59, 8.31),
        ("LGA-CNN", "he2021automatic", 6.59, 8.39, 6.51, 8.30),
        ("ResNet + atten", "zhou2019learning", None, None, 6.37, 8.43),
        ("ResNet+distribution", "melo2019depression", 6.30, 8.25, 6.15, 8.23),
        ("Two-stream", "melo2020encoding", 5.96, 7.97, 6.20, 7.94),
        ("AUs", "song2020spectral", 6.16, 8.10, 5.95, 7.15),
        ("Proposed Approach (MDDR)", "mddr2024", 5.98, 7.80, 5.75, 7.12),
    ],
    2: [("none", "", 9.86, 10.53, 9.45, 10.93), ("ImageNet", "", 7.13, 8.92, 7.0, 8.11),
        ("AffectNet", "", 5.98, 7.80, 5.75, 7.12)],
    3: [("v", "", 6.32, 8.11, 6.21, 7.76), ("a", "", 8.55, 10.25, 8.76, 9.94), ("p", "", 9.53, 10.24, 9.0, 10.01),
        ("v+a+p", "", 5.98, 7.80, 5.75, 7.12)],
    4: [("FAA only", "", 6.85, 8.55, 6.22, 7.65), ("SEA only", "", 6.68, 8.36, 6.13, 7.32),
        ("FAA + SEA", "", 5.98, 7.80, 5.75, 7.12)],
}
"""The paper's Tables 1-4 as printed. Table 4's rows are the paper's FAN, SAN and FAN+SAN."""
PAPER_OUTLIERS = {"DRLoss": 43, "Huber": 47}
"""Figure 4 (section 5.2.4): category outliers on AVEC2014 with each loss (the paper does not say on which videos)."""
TABLE1_FAMILIES = {"MDDR (v+a+p)": "Proposed Approach (MDDR)", "concatenation + LSTM": "Concat+LSTM",
                   "visual attention": "ResNet + atten"}
"""Which row of the paper's Table 1 each of our rows stands for; the other baselines stand for no single row."""
PRETRAINING_WEIGHTS = {"none": "none", "ImageNet": "imagenet", "AffectNet": "affectnet"}
"""Table 2's rows and the visual backbone weights (`ExtractionConfig.visual_weights`) each needs."""
CROSS_VALIDATION = {
    "smoke": dict(deltas=(0.0, 2.0), folds=2, train={}),
    "demo": dict(deltas=(0.0, 1.0, 2.0, 4.0), folds=3, train={"num_epochs": 20, "lr_step": 15}),
    "paper": dict(deltas=(0.0, 0.5, 1.0, 2.0, 4.0, 8.0), folds=5, train={}),
}
"""δ cross-validation per profile: the δ grid, the folds and the recipe's changes (demo: half the epochs, to fit the book's time)."""


@dataclass
class VariantResult:
    """One row of a table: a model trained and evaluated by the protocol for each seed, or why it was not."""

    name: str
    status: str
    dataset: str
    profile: str
    seeds: list[int]
    family: str = MDDR_FAMILY
    reason: str = ""
    per_seed: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    intervals: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data_key: str = ""
    code: str = field(default_factory=lambda: versioning.code_digest())
    path: Path | None = None

    @property
    def computed(self) -> bool:
        """Whether this row holds numbers."""
        return self.status == "computed"

    def seed_predictions(self, seed: int) -> pd.DataFrame:
        """The Testing predictions of one seed."""
        return self.predictions[self.predictions["seed"] == seed].reset_index(drop=True)


def slug(text: str) -> str:
    """A file-name-safe form of a row or table name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "row"


def profile_seeds(profile: str, seeds: Sequence[int] | None = None) -> list[int]:
    """The seeds to run: `seeds` when given, else the profile's (smoke 1, demo 3, paper 5)."""
    if seeds is not None:
        return [int(seed) for seed in seeds]
    if profile not in SEEDS:
        raise ValueError(f"unknown profile {profile!r}: use one of {sorted(SEEDS)}")
    return list(SEEDS[profile])


def data_label(dataset: str) -> str:
    """A short name of the data for a column header: AVEC by name, anything else marked synthetic."""
    return dataset.upper() if dataset.startswith("avec") else f"{dataset} cohort (synthetic)"


def table_stem(name: str, dataset: str, profile: str) -> str:
    """The file stem under which a table is saved, e.g. table3_simulation_demo."""
    return f"{name}_{dataset}_{profile}"


def visual_weights_missing(weights: str, affectnet_checkpoint: str | Path | None = None, offline: bool = True) -> str:
    """Why the visual backbone `weights` cannot be loaded here and how to provide them; "" when they can.

    torchvision's ImageNet weights are read from the torch hub cache, and downloaded into it only
    when `offline` is False (`sources.downloads_allowed`)."""
    from .features.visual import imagenet_checkpoint_path

    if weights == "none":
        return ""
    if weights == "affectnet":
        if not affectnet_checkpoint:
            return ("no AffectNet checkpoint: set the parameter affectnet_checkpoint to a ResNet-50 state dict "
                    "trained on AffectNet (AffectNet is licensed; no public weights are assumed)")
        return "" if Path(affectnet_checkpoint).is_file() else f"affectnet_checkpoint {affectnet_checkpoint} is not a file"
    url, cached = imagenet_checkpoint_path("V1" if weights == "imagenet_v1" else "V2")
    if cached.is_file() or not offline:
        return ""
    return (f"torchvision's ImageNet ResNet-50 weights are not in the torch hub cache: put {url.rsplit('/', 1)[-1]} "
            f"(from {url}) in {cached.parent}, or set TORCH_HOME to a folder whose hub/checkpoints holds it, "
            f"or run the feature chapters with offline=False to let them download it")


def load_with_visual_weights(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None,
                             seed: int, weights: str, affectnet_checkpoint: str | Path | None = None,
                             progress: bool = True, on_error: str = "skip"):
    """Features of the demo cohort or AVEC with the visual backbone `weights` (Table 2), each in its own cache.

    Every other setting is the one the feature chapters used (`sources.recorded_extraction`, else
    the dataset's defaults), and their audio and head files are reused, not recomputed, so that
    the rows differ in the visual backbone alone. Weights other than those of the feature chapters
    get `data_dir/features/<dataset>-visual-<weights>`, so that no run overwrites another's
    features. The rules of `sources.load_cohort` hold: `data_root` is checked and the labels read
    again on every call, only current features are reused, and a video that fails is left out
    (`on_error`).
    """
    from .features.cache import FeatureCache
    from .features.pipeline import extract_features

    if dataset == "simulation":
        raise ValueError("the simulation cohort has no video to extract features from; use 'demo' or AVEC")
    chapters = FeatureCache(Path(data_dir) / "features" / dataset)
    recorded = sources.recorded_extraction(dataset, data_dir)
    settings = {**recorded, "on_error": on_error}
    checkpoint = str(affectnet_checkpoint) if weights == "affectnet" else None
    config = sources.extraction_config(dataset, **{**settings, "visual_weights": weights,
                                                   "affectnet_checkpoint": checkpoint})
    index = sources.dataset_index(dataset, profile, data_dir, data_root, seed, progress)
    if recorded and config == sources.extraction_config(dataset, **settings):
        cache = chapters
    else:
        cache = FeatureCache(chapters.root.with_name(f"{dataset}-visual-{weights}"))
        for modality in ("audio", "head"):
            cache.adopt(chapters, modality)
    cohort = extract_features(index, cache.root, config, progress=progress)
    cohort.origin = sources.data_origin(dataset, data_dir, data_root)
    return in_memory(cohort)


def recording_ids(table: pd.DataFrame) -> pd.Series:
    """The recording of each video: the `recording` column, else subject + "_" + session, else the video."""
    if "recording" in table and (table["recording"].astype(str) != "").all():
        return table["recording"].astype(str)
    if "session" in table and (table["session"].astype(str) != "").all():
        return table["subject"].astype(str) + "_" + table["session"].astype(str)
    return table["video_id"].astype(str)


def clamp_scores(scores, scale: LabelScale | str = BDI_II) -> np.ndarray:
    """Scores clipped to the range of `scale` (BDI-II [0, 63] by default); a NaN or infinite score is an error, never clipped."""
    scores = np.asarray(scores, dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} predictions are NaN or infinite")
    return np.asarray(scale_by_name(scale).clamp(scores), dtype=float)


def per_recording(predictions: pd.DataFrame) -> pd.DataFrame:
    """Predictions and labels averaged per (seed, recording): AVEC2014's per-recording scoring."""
    keys = ["seed", "recording"] if "seed" in predictions else ["recording"]
    grouped = predictions.groupby(keys, sort=True)
    if (grouped["label"].nunique() > 1).any():
        raise ValueError("videos of one recording carry different labels; cannot score per recording")
    return grouped[["label", "pred"]].mean().reset_index()


def testing_scores(predictions: pd.DataFrame) -> dict:
    """MAE and RMSE of one seed's Testing predictions, per video and per recording."""
    recordings = per_recording(predictions)
    return {"mae": metrics.mae(predictions["pred"], predictions["label"]),
            "rmse": metrics.rmse(predictions["pred"], predictions["label"]),
            "recording_mae": metrics.mae(recordings["pred"], recordings["label"]),
            "recording_rmse": metrics.rmse(recordings["pred"], recordings["label"])}


def bootstrap_interval(predictions: pd.DataFrame, metric: str = "mae", by_recording: bool = False,
                       level: float = LEVEL, num_resamples: int = NUM_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the seed-averaged MAE or RMSE, resampling Testing recordings.

    Both videos of a recording share a person and a label, so they are resampled together; every
    seed is scored on the same resample and the seeds' scores averaged, so the interval shows how
    much the number depends on which people are in Testing (the seed-to-seed spread is the ± std).
    """
    if metric not in ("mae", "rmse"):
        raise ValueError(f"metric must be 'mae' or 'rmse', got {metric!r}")
    table = per_recording(predictions) if by_recording else predictions
    if "seed" not in table:
        table = table.assign(seed=0)
    item = "recording" if by_recording else "video_id"
    wide = table.assign(error=table["pred"] - table["label"]).pivot(index="seed", columns=item, values="error")
    if wide.isna().any().any():
        raise ValueError("every seed must predict the same Testing videos")
    recording_of_item = table.drop_duplicates(item).set_index(item, drop=False)["recording"].loc[wide.columns]
    codes, recordings = pd.factorize(recording_of_item)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(recordings), np.full(len(recordings), 1 / len(recordings)), size=num_resamples)
    weights = counts[:, codes]
    error = wide.to_numpy()
    loss = np.abs(error) if metric == "mae" else error ** 2
    per_seed = weights @ loss.T / weights.sum(1, keepdims=True)
    values = (per_seed if metric == "mae" else np.sqrt(per_seed)).mean(1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def in_memory(cohort, max_bytes: int = 2 << 30):
    """The same cohort, keeping each video in memory after its first load (up to `max_bytes`).

    Training reads every video once per epoch; the simulation cohort regenerates a video on each
    read and a feature cohort reads it from disk. Subsets share the store.
    """
    if hasattr(cohort, "_videos_in_memory"):
        return cohort
    clone = copy.copy(cohort)
    store, budget, load = {}, [max_bytes], cohort.loader

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

    clone.loader = loader
    clone._videos_in_memory = store
    return clone


def _configs(family: str, cohort, profile: str, seed: int, model_overrides: dict | None,
             train_overrides: dict | None) -> tuple[dict, training.TrainConfig]:
    """The model config (as a dict) and recipe of one run, exactly as `train.run_model` builds them."""
    dims = training.feature_dims(training.split_videos(cohort, "Training")[0])
    model_config, train_config = training.profile_configs(profile, dims, model_overrides if family == MDDR_FAMILY
                                                          else None, {"seed": seed, **(train_overrides or {})})
    if family == MDDR_FAMILY:
        return model_config.to_dict(), train_config
    return make_baseline(family, dims, profile).config.to_dict(), train_config


def _train_and_select(family: str, cohort, profile: str, seed: int, data_dir, model_overrides, train_overrides,
                      train_config: training.TrainConfig, progress: bool):
    """Fit on Training with the epoch chosen on Development; Testing is not touched here."""
    train, dev = training.split_videos(cohort, "Training"), training.split_videos(cohort, "Development")
    # `fit` seeds its own shuffling, but the model is built before it is called: seeding here makes
    # the initial weights a function of the seed, not of whatever ran earlier in the process.
    training.set_seed(seed)
    if family == MDDR_FAMILY:
        return training.run_model(cohort, profile, seed, data_dir, model_overrides, train_overrides, progress)
    model = make_baseline(family, training.feature_dims(train[0]), profile)
    if model.needs_training:
        return training.fit(model, train, dev, train_config, progress=progress)
    model.init_output_bias(float(train.table["label"].mean()))
    dev_scores = training.score(training.predict(model, dev, train_config.batch, train_config.device))
    return training.TrainResult(model=model.eval(), history=pd.DataFrame(), best_epoch=0, best_dev=dev_scores,
                                checkpoint=None)


def _evaluate_once(model, test, config: training.TrainConfig) -> pd.DataFrame:
    """The one evaluation on Testing, scores clamped to [0, 63], with each video's recording."""
    predictions = training.predict(model, test, config.batch, config.device)
    predictions["pred"] = clamp_scores(predictions["pred"], test.scale)
    recordings = dict(zip(test.table["video_id"], recording_ids(test.table)))
    predictions["recording"] = predictions["video_id"].map(recordings)
    return predictions


def run_seed(cohort, family: str, profile: str, seed: int, data_dir: str | Path, results_dir: str | Path,
             model_overrides: dict | None = None, train_overrides: dict | None = None, dataset_label: str = "",
             progress: bool = True) -> dict:
    """One seed of one row: trained, selected on Development, evaluated on Testing once; or read back if
    saved by the same run (family, configuration, seed, data and code)."""
    cohort = in_memory(cohort)
    for split in ("Training", "Development", "Testing"):
        training.split_videos(cohort, split)
    model_config, train_config = _configs(family, cohort, profile, seed, model_overrides, train_overrides)
    key = {"family": family, "model": model_config, "train": asdict(train_config), "data": training.cohort_key(cohort),
           "code": versioning.code_digest()}
    run_id = f"{slug(family)}_{profile}_{versioning.digest(key)}"
    folder = Path(results_dir) / "runs"
    record_path, predictions_path = folder / f"{run_id}.json", folder / f"{run_id}.csv"
    record = _read_saved(record_path, lambda path: json.loads(path.read_text()))
    predictions = _read_saved(predictions_path, lambda path: pd.read_csv(
        path, dtype={"video_id": str, "recording": str, "subject": str}))
    if record is not None and predictions is not None:
        record["predictions"], record["reused"] = predictions, True
        return record
    run = _train_and_select(family, cohort, profile, seed, data_dir, model_overrides, train_overrides, train_config,
                            progress)
    predictions = _evaluate_once(run.model, training.split_videos(cohort, "Testing"), train_config)
    record = {"run_id": run_id, "family": family, "profile": profile, "seed": seed, "dataset": dataset_label,
              "model": model_config, "train": asdict(train_config), "data_key": key["data"], "code": key["code"],
              "best_epoch": int(run.best_epoch), "best_dev": run.best_dev, "history": run.history.to_dict("list"),
              "checkpoint": str(run.checkpoint) if run.checkpoint else None, "test": testing_scores(predictions)}
    _write_atomically(predictions_path, predictions.to_csv(index=False))
    _write_atomically(record_path, json.dumps(record, indent=1, default=str))
    record["predictions"], record["reused"] = predictions, False
    return record


def _read_saved(path: Path, read):
    """`read(path)`, or None when there is no such file or it cannot be read (named in a warning): the run is made again."""
    if not path.exists():
        return None
    try:
        return read(path)
    except (OSError, ValueError, KeyError) as error:
        warnings.warn(f"{path}: saved result cannot be read ({type(error).__name__}: {error}); computing it again",
                      UserWarning, stacklevel=3)
        return None


def _write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so that an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text)
    temporary.replace(path)


def run_variant(cohort, name: str, profile: str, seeds: Sequence[int], data_dir: str | Path, results_dir: str | Path,
                model_overrides: dict | None = None, train_overrides: dict | None = None, dataset_label: str = "",
                family: str = MDDR_FAMILY, progress: bool = True) -> VariantResult:
    """One table row: MDDR (with `model_overrides`) or a baseline `family`, by the protocol, for each seed."""
    if family != MDDR_FAMILY and family not in BASELINES:
        raise ValueError(f"unknown family {family!r}: use {MDDR_FAMILY!r} or one of {list(BASELINES)}")
    seeds = [int(seed) for seed in seeds]
    cohort = in_memory(cohort)
    records = [run_seed(cohort, family, profile, seed, data_dir, results_dir, model_overrides, train_overrides,
                        dataset_label, progress=False)
               for seed in tqdm(seeds, desc=name, leave=False, **training.progress_options(progress))]
    per_seed = pd.DataFrame([{"seed": r["seed"], **r["test"], "best_epoch": r["best_epoch"],
                              "dev_mae": r["best_dev"]["mae"], "dev_rmse": r["best_dev"]["rmse"],
                              "run_id": r["run_id"], "reused": r["reused"]} for r in records])
    predictions = pd.concat([r["predictions"].assign(seed=r["seed"]) for r in records], ignore_index=True)
    intervals = {f"{prefix}{metric}": bootstrap_interval(predictions, metric, by_recording=bool(prefix))
                 for prefix in ("", "recording_") for metric in ("mae", "rmse")}
    result = VariantResult(name=name, status="computed", dataset=dataset_label, profile=profile, seeds=seeds,
                           family=family, per_seed=per_seed, predictions=predictions, intervals=intervals,
                           model=records[0]["model"], train={k: v for k, v in records[0]["train"].items() if k != "seed"},
                           data_key=records[0]["data_key"], code=records[0]["code"])
    return save_variant(result, results_dir)


def not_computed(name: str, reason: str, profile: str, seeds: Sequence[int], results_dir: str | Path,
                 dataset_label: str = "", family: str = MDDR_FAMILY) -> VariantResult:
    """A row that could not be computed, saved with its reason so that no table shows a number for it."""
    result = VariantResult(name=name, status="not computed", dataset=dataset_label, profile=profile,
                           seeds=[int(seed) for seed in seeds], family=family, reason=reason)
    return save_variant(result, results_dir)


def save_variant(result: VariantResult, results_dir: str | Path) -> VariantResult:
    """Write a row's numbers, configuration, data key, code version and reason to `results_dir/variants`
    (JSON, predictions as CSV), under a name that changes with any of them."""
    folder = Path(results_dir) / "variants"
    folder.mkdir(parents=True, exist_ok=True)
    identity = [result.dataset, result.family, result.model, result.train, result.seeds, result.status,
                result.data_key, result.code]
    stem = f"{slug(result.name)}_{result.profile}_{versioning.digest(identity)}"
    summary = summarise([result]).iloc[0].to_dict()
    payload = {"name": result.name, "status": result.status, "reason": result.reason, "dataset": result.dataset,
               "profile": result.profile, "seeds": result.seeds, "family": result.family, "summary": summary,
               "per_seed": result.per_seed.to_dict("records"), "intervals": result.intervals,
               "model": result.model, "train": result.train, "data_key": result.data_key, "code": result.code}
    (folder / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=_json_number))
    if result.computed:
        result.predictions.to_csv(folder / f"{stem}.csv", index=False)
    result.path = folder / f"{stem}.json"
    return result


def _json_number(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def summarise(results: Sequence[VariantResult]) -> pd.DataFrame:
    """One row per variant: mean and std over seeds of each metric, bootstrap intervals, status and reason."""
    rows = []
    for result in results:
        row = {"status": result.status, "seeds": len(result.seeds), "reason": result.reason}
        for metric in ("mae", "rmse", "recording_mae", "recording_rmse"):
            values = result.per_seed[metric] if result.computed else pd.Series(dtype=float)
            row[metric] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            low, high = result.intervals.get(metric, (math.nan, math.nan))
            row[f"{metric}_low"], row[f"{metric}_high"] = low, high
        rows.append({"name": result.name, **row})
    return pd.DataFrame(rows).set_index("name")


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "not computed"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as a reader sees it: mean ± std, the 95% interval, per recording, and why a row is missing."""
    shown = pd.DataFrame(index=summary.index)
    for metric, label in (("mae", "MAE"), ("rmse", "RMSE"), ("recording_mae", "MAE per recording"),
                          ("recording_rmse", "RMSE per recording")):
        shown[label] = [_mean_std(m, s) for m, s in zip(summary[metric], summary[f"{metric}_std"])]
        if not metric.startswith("recording"):
            shown[f"{label} 95% CI"] = ["" if math.isnan(lo) else f"[{lo:.2f}, {hi:.2f}]"
                                        for lo, hi in zip(summary[f"{metric}_low"], summary[f"{metric}_high"])]
    shown["seeds"] = summary["seeds"]
    if (summary["status"] != "computed").any():
        shown["why not computed"] = summary["reason"]
    shown.index.name = None
    return shown


def paper_table(number: int) -> pd.DataFrame:
    """The paper's Table `number` (1-4): MAE and RMSE on AVEC2013 and AVEC2014; NaN where it prints "\\"."""
    if number not in _PAPER:
        raise ValueError(f"the paper has Tables 1-4, not {number!r}")
    rows = _PAPER[number]
    columns = pd.MultiIndex.from_product([DATASET_COLUMNS, ("MAE", "RMSE")])
    table = pd.DataFrame([[math.nan if v is None else v for v in row[2:]] for row in rows],
                         index=[row[0] for row in rows], columns=columns)
    table.index.name = f"Table {number}"
    return table


def paper_citations() -> dict[str, list[str]]:
    """The bibliography keys (book/references.bib) of each row of the paper's Table 1."""
    return {row[0]: row[1].split(",") for row in _PAPER[1]}


def citations(keys: str) -> str:
    """MyST citation markup for comma-separated bibliography keys."""
    return ", ".join(f"{{cite}}`{key}`" for key in keys.split(",") if key)


def _paper_text(value: float) -> str:
    return "\\" if math.isnan(value) else f"{value:.2f}"


def comparison_table(ours: pd.DataFrame, paper: pd.DataFrame, dataset: str, paper_rows: dict | None = None) -> pd.DataFrame:
    """The paper's numbers beside ours (from `summarise`); ours sit in an AVEC column only when computed on it.

    On AVEC2013/2014 (`dataset`), our MAE and RMSE (mean ± std over seeds) go beside the paper's
    for that dataset. On any other data they get their own columns headed by the data's name
    (`data_label`), so that no synthetic number can be read as an AVEC one. Rows are matched by name, or through
    `paper_rows` (our row -> the paper's row it stands for), in which case only our rows are
    listed; a row only one side has shows "—" on the other.
    """
    if paper_rows is None:
        names = list(dict.fromkeys(list(paper.index) + list(ours.index)))
        paper_of = {name: name for name in names}
    else:
        names = list(ours.index)
        paper_of = {name: paper_rows.get(name) for name in names}
    columns = {}
    if paper_rows is not None:
        columns[("paper's row", "")] = [paper_of[name] or "—" for name in names]
    avec = dataset.upper() if dataset.upper() in DATASET_COLUMNS else ""
    for column in DATASET_COLUMNS:
        if avec and column != avec:
            continue
        for metric in ("MAE", "RMSE"):
            columns[(f"paper, {column}", metric)] = [
                _paper_text(paper.at[paper_of[n], (column, metric)]) if paper_of[n] in paper.index else "—"
                for n in names]
    header = f"ours, {data_label(dataset)}"
    for metric, label in (("mae", "MAE"), ("rmse", "RMSE")):
        columns[(header, label)] = [_mean_std(ours.at[n, metric], ours.at[n, f"{metric}_std"]) if n in ours.index
                                    else "—" for n in names]
    table = pd.DataFrame(columns, index=names)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def video_counts(cohort) -> tuple[int, int]:
    """How many videos a cohort uses and how many of its data's videos were left out (`Cohort.left_out`)."""
    return len(cohort), len(cohort.left_out)


def caption(what: str, dataset_label: str, profile: str, seeds: Sequence[int], extra: str = "",
            cohort=None) -> str:
    """A table's caption: what it shows, the data (with the videos used and left out, given the cohort),
    the split, the seeds and the profile."""
    data = dataset_label
    if cohort is not None:
        used, left_out = video_counts(cohort)
        data += f"; {used} videos used" + (f", {left_out} left out (see chapter 02)" if left_out else "")
    text = (f"{what}. Data: {data}. Trained on Training, checkpoint selected on Development, "
            f"evaluated once on Testing; MAE and RMSE over all Testing videos, mean ± std over seeds "
            f"{', '.join(map(str, seeds))}; 95% bootstrap intervals resample Testing recordings; profile {profile}.")
    return f"{text} {extra}".strip()


def save_table(stem: str, results_dir: str | Path, caption_text: str, summary: pd.DataFrame | None = None,
               shown: pd.DataFrame | None = None, cohort=None, **details) -> Path:
    """Save a table for the book and the tests: `<stem>.csv` (numbers) and `<stem>.json` (caption, numbers,
    as shown, the code version and, given the cohort, its key and the videos used and left out)."""
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if summary is not None:
        summary.to_csv(folder / f"{stem}.csv")
    flat = shown.copy() if shown is not None else None
    if flat is not None and isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" | ".join(map(str, column)) for column in flat.columns]
    provenance = {"code": versioning.code_digest()}
    if cohort is not None:
        used, left_out = video_counts(cohort)
        provenance.update(data_key=training.cohort_key(cohort), videos_used=used, videos_left_out=left_out)
    payload = {"caption": caption_text, **provenance, **details,
               "rows": summary.reset_index().to_dict("records") if summary is not None else [],
               "shown": flat.reset_index().to_dict("records") if flat is not None else []}
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(payload, indent=1, default=_json_number))
    return path


def outlier_counts(results: Sequence[VariantResult]) -> pd.DataFrame:
    """Figure 4's count: Testing videos predicted in another BDI-II category, per variant and seed."""
    rows = []
    for result in results:
        for seed in result.seeds:
            predictions = result.seed_predictions(seed)
            outliers = metrics.category_outliers(predictions["pred"], predictions["label"])
            rows.append({"loss": result.name, "seed": seed, "outliers": int(outliers.sum()),
                         "videos": len(predictions)})
    return pd.DataFrame(rows)


def outlier_summary(results: Sequence[VariantResult]) -> pd.DataFrame:
    """Per loss: category outliers on Testing, mean ± std over seeds, their share, and the paper's count."""
    counts = outlier_counts(results)
    summary = counts.groupby("loss", sort=False).agg(outliers=("outliers", "mean"), std=("outliers", "std"),
                                                     videos=("videos", "first"))
    summary["share"] = summary["outliers"] / summary["videos"]
    summary["paper (AVEC2014)"] = pd.Series(PAPER_OUTLIERS).reindex(summary.index)
    return summary


def cross_validation_folds(cohort, folds: int) -> list[tuple[list[str], list[str]]]:
    """Training + Development cut into `folds` (training ids, held-out ids) pairs, grouped by subject."""
    from sklearn.model_selection import GroupKFold

    pool = cohort.table[cohort.table["split"].isin(["Training", "Development"])].reset_index(drop=True)
    if pool.empty:
        raise ValueError(f"{training.data_location(cohort)}: the Training and Development splits have no videos; "
                         "cross-validation folds are cut from them")
    if pool["subject"].nunique() < folds:
        raise ValueError(f"{training.data_location(cohort)}: the {pool['subject'].nunique()} subjects of Training "
                         f"and Development cannot make {folds} folds")
    splitter = GroupKFold(n_splits=folds)
    return [(pool["video_id"].iloc[kept].tolist(), pool["video_id"].iloc[held].tolist())
            for kept, held in splitter.split(pool, groups=pool["subject"])]


def delta_cross_validation(cohort, deltas: Sequence[float], folds: int, profile: str, seed: int,
                           data_dir: str | Path, results_dir: str | Path, train_overrides: dict | None = None,
                           model_overrides: dict | None = None, progress: bool = True) -> pd.DataFrame:
    """DRLoss's δ by cross-validation on Training + Development, folds grouped by subject (section 3.5).

    Each (δ, fold) trains MDDR on the other folds for a fixed number of epochs and scores the
    held-out fold at the last epoch: no epoch is chosen on the fold it is scored on. Testing is
    not used. Each run is saved under `results_dir/runs` and reused.
    """
    cohort = in_memory(cohort)
    split = cross_validation_folds(cohort, folds)
    rows = []
    jobs = [(delta, fold) for delta in deltas for fold in range(folds)]
    for delta, fold in tqdm(jobs, desc="δ × fold", **training.progress_options(progress)):
        kept, held = split[fold]
        overrides = {**(train_overrides or {}), "loss": "drloss", "delta": float(delta)}
        rows.append({"delta": float(delta), "fold": fold,
                     **_cross_validation_run(cohort, kept, held, profile, seed, results_dir, overrides,
                                             model_overrides)})
    return pd.DataFrame(rows)


def _cross_validation_run(cohort, kept: list[str], held: list[str], profile: str, seed: int, results_dir,
                          train_overrides: dict, model_overrides: dict | None) -> dict:
    train, held_out = cohort.subset(video_ids=kept), cohort.subset(video_ids=held)
    dims = training.feature_dims(train[0])
    model_config, config = training.profile_configs(profile, dims, model_overrides, {"seed": seed, **train_overrides})
    key = {"model": model_config.to_dict(), "train": asdict(config), "data": training.cohort_key(cohort),
           "code": versioning.code_digest(), "kept": sorted(kept), "held": sorted(held)}
    path = Path(results_dir) / "runs" / f"cv_{profile}_{versioning.digest(key)}.json"
    saved = _read_saved(path, lambda saved_path: json.loads(saved_path.read_text())["scores"])
    if saved is not None:
        return saved
    training.set_seed(seed)
    run = training.fit(MDDR(model_config), train, held_out, config, progress=False)
    last = run.history.iloc[-1]
    scores = {"mae": float(last["dev_mae"]), "rmse": float(last["dev_rmse"]), "epochs": int(last["epoch"]),
              "train_videos": len(kept), "held_out_videos": len(held)}
    _write_atomically(path, json.dumps({"scores": scores, "history": run.history.to_dict("list"), **key}, indent=1,
                                       default=str))
    return scores


def choose_delta(cross_validation: pd.DataFrame, metric: str = "rmse") -> tuple[float, pd.DataFrame]:
    """The δ with the lowest mean held-out `metric` over folds, and the per-δ mean and std."""
    summary = cross_validation.groupby("delta")[["mae", "rmse"]].agg(["mean", "std"])
    return float(summary[(metric, "mean")].idxmin()), summary
