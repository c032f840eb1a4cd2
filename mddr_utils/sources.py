"""Where a chapter's data comes from, chosen by its `dataset` and `profile` parameters.

`simulation`: the feature-level simulation cohort (`data.simulation`), sized by profile: `paper`
at the full feature sizes 2048/1024/12; `demo` at compact sizes 128/64/12 with the same planted
structure (the planted latents are 8-dimensional, so nothing is lost, and training fits two
CPU cores); `smoke` a few short videos. `demo`, `avec2014`, `avec2013`: videos, whose features
(paper section 3.2) are pre-extracted into the feature cache `data_dir/features/<dataset>`.
`daicwoz`, `edaic`: DAIC-WOZ and E-DAIC interviews (PHQ-8 labels), whose visual and head streams
ship with the corpus and whose audio goes through HuBERT (`features.daic`), cached the same way.
Without a `data_root` they are the synthetic trees of `data.daic_synthetic`, written under
`data_dir/<dataset>_synthetic` and cached under `data_dir/features/<dataset>-synthetic`, so that
no setting chosen for the synthetic tree is ever taken for a licensed copy's (nor the reverse).

`load_cohort` is the one way every chapter gets its data, the tables' included. There is no
shortcut to a cache: each call checks `data_root`, indexes the videos and reads the label files
again, and reuses a video's cached features only if the video file is unchanged and the settings
match (`features.cache`); a video that fails is left out with a warning, not an error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .data.container import Cohort
from .data.demo_cohort import DEMO_COHORT_PROFILES
from .data.simulation import make_simulation_cohort

if TYPE_CHECKING:
    from .features.pipeline import ExtractionConfig, ModalityCohort

SIMULATION_PROFILES = {
    "smoke": dict(recordings_per_split=4, num_subjects=8, visual_dim=32, audio_dim=16,
                  duration_seconds={"Freeform": (12.0, 0.3, 6.0, 20.0), "Northwind": (15.0, 0.2, 8.0, 20.0)}),
    "demo": dict(visual_dim=128, audio_dim=64),
    "paper": dict(),
}
DATASETS = ("simulation", "demo", "avec2014", "avec2013", "daicwoz", "edaic")
DAIC_DATASETS = {"daicwoz": "DAIC-WOZ", "edaic": "E-DAIC"}
"""The PHQ-8 corpora, by dataset name, with the name their owners give them."""


def simulation_cohort(profile: str, seed: int = 0, **knobs) -> Cohort:
    """The simulation cohort at the size of `profile`; knobs override `SimulationSettings` fields."""
    if profile not in SIMULATION_PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {sorted(SIMULATION_PROFILES)}")
    return make_simulation_cohort(seed, **{**SIMULATION_PROFILES[profile], **knobs})


def describe_source(dataset: str, profile: str, data_root: str | Path | None = None) -> str:
    """A caption fragment naming the data, for every table and figure (a DAIC dataset without a
    `data_root` is the synthetic tree, and says so)."""
    if dataset in DAIC_DATASETS:
        name = DAIC_DATASETS[dataset]
        if data_root is None:
            return f"synthetic {name} tree (profile {profile}) — synthetic, not {name}"
        return f"{name} (profile {profile})"
    if dataset == "simulation":
        sizes = "2048/1024/12" if profile == "paper" else "compact feature sizes (same planted structure)"
        return f"simulation cohort ({sizes}, profile {profile}) — synthetic, not AVEC"
    if dataset == "demo":
        return f"demo cohort of synthetic videos (profile {profile}) — synthetic, not AVEC"
    return f"{dataset.upper()} (profile {profile})"


def check_dataset(dataset: str, data_root: str | Path | None) -> None:
    """Refuse an unknown dataset name, an AVEC dataset whose data_root is not given, or a data_root (AVEC,
    DAIC-WOZ, E-DAIC) that is not a folder or is empty; a DAIC dataset without data_root is its synthetic tree."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {DATASETS}")
    if dataset in DAIC_DATASETS:
        if data_root is None:
            return
        help_page = "see the section 'DAIC-WOZ and E-DAIC' of the book's page 'Reproduce on AVEC2013/2014'"
    elif dataset.startswith("avec"):
        help_page = "see the book's page 'Reproduce on AVEC2013/2014'"
    else:
        return
    if data_root is None:
        raise FileNotFoundError(f"{dataset}: no data_root given; set it to the folder of your {dataset.upper()} "
                                f"copy ({help_page})")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{dataset}: data_root {str(root)!r} is not a folder; {help_page}")
    if not any(root.iterdir()):
        raise FileNotFoundError(f"{dataset}: data_root {str(root)!r} is an empty folder; {help_page}")

DEMO_EXTRACTION = dict(visual_weights="none", hubert="random", offline=True)
"""No pretrained weights can be had offline: the demo cohort's features come from a randomly
initialised ResNet-50 and HuBERT (seeded). They exercise the pipeline; they are not the paper's.
The synthetic DAIC trees get the same (their visual features ship with the tree)."""
DAIC_NOT_APPLICABLE = dict(visual_weights="none", affectnet_checkpoint=None, affectnet_key_map="auto",
                           visual_preprocessing="imagenet", head_source="builtin", openface_dir=None)
"""ExtractionConfig fields that say how visual and head features are made from video: DAIC-WOZ and
E-DAIC ship those features, so these fields are set aside (one papermill YAML can serve AVEC and DAIC)."""


def synthetic_root(dataset: str, data_dir: str | Path) -> Path:
    """Where the synthetic tree of a DAIC dataset is written: `data_dir/<dataset>_synthetic`."""
    return Path(data_dir) / f"{dataset}_synthetic"


def data_name(dataset: str, data_root: str | Path | None = None) -> str:
    """The name a dataset's caches and saved tables go by: `<dataset>`, or `<dataset>-synthetic` for a synthetic
    DAIC tree."""
    return f"{dataset}-synthetic" if dataset in DAIC_DATASETS and data_root is None else dataset


def feature_cache_dir(dataset: str, data_dir: str | Path, data_root: str | Path | None = None) -> Path:
    """The feature cache of a dataset: `data_dir/features/<data_name>`."""
    return Path(data_dir) / "features" / data_name(dataset, data_root)


def dataset_index(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None = None,
                  seed: int = 0, progress: bool = True):
    """The index of a dataset of recordings, its label files read again: the demo cohort (built under
    `data_dir` if needed), AVEC, or DAIC-WOZ / E-DAIC (the synthetic tree, written under `data_dir`
    at the profile's size if needed, when no `data_root` is given)."""
    from .data.avec import index_avec2013, index_avec2014
    from .data.demo_cohort import make_demo_cohort

    check_dataset(dataset, data_root)
    if dataset in DAIC_DATASETS:
        from .data.daic import index_daicwoz, index_edaic
        from .data.daic_synthetic import SYNTHETIC_SIZES, make_synthetic_corpus

        root = data_root
        if root is None:
            if profile not in SYNTHETIC_SIZES:
                raise ValueError(f"unknown profile {profile!r}: use one of {sorted(SYNTHETIC_SIZES)}")
            root = make_synthetic_corpus(synthetic_root(dataset, data_dir), DAIC_DATASETS[dataset], seed=seed,
                                         **SYNTHETIC_SIZES[profile])
        return (index_daicwoz if dataset == "daicwoz" else index_edaic)(root)
    if dataset == "demo":
        return make_demo_cohort(Path(data_dir) / "demo_cohort", seed=seed, progress=progress,
                                **DEMO_COHORT_PROFILES[profile])
    if dataset == "avec2014":
        return index_avec2014(data_root)
    if dataset == "avec2013":
        return index_avec2013(data_root)
    raise ValueError(f"{dataset!r} has no raw videos: it is generated at the feature level")


def data_origin(dataset: str, data_dir: str | Path, data_root: str | Path | None) -> str:
    """The folder a dataset's recordings come from, for error messages."""
    if data_root is not None and (dataset.startswith("avec") or dataset in DAIC_DATASETS):
        return str(Path(data_root).expanduser().absolute())
    if dataset in DAIC_DATASETS:
        return str(synthetic_root(dataset, data_dir))
    return str(Path(data_dir) / "demo_cohort")


def recorded_extraction(dataset: str, data_dir: str | Path, data_root: str | Path | None = None) -> dict:
    """The feature settings recorded in the manifest of the dataset's feature cache (`feature_cache_dir`:
    those the feature chapters, or the last `load_cohort` of a DAIC dataset, chose, `on_error` aside),
    or {} if there is no readable manifest."""
    from .features.cache import FeatureCache
    from .features.pipeline import ExtractionConfig

    manifest = FeatureCache(feature_cache_dir(dataset, data_dir, data_root)).read_manifest_or_none() or {}
    recorded = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    known = {option.name for option in fields(ExtractionConfig)} - {"on_error"}
    return {name: value for name, value in recorded.items() if name in known}


def downloads_allowed(dataset: str, data_dir: str | Path) -> bool:
    """Whether pretrained weights may be downloaded for this dataset's features: the `offline` setting
    the feature chapters recorded, else the dataset's default (the demo cohort never downloads; AVEC may)."""
    recorded = recorded_extraction(dataset, data_dir)
    default = DEMO_EXTRACTION["offline"] if dataset == "demo" else False
    return not recorded.get("offline", default)


def extraction_config(dataset: str, *, data_root: str | Path | None = None, **overrides):
    """The extraction settings of a dataset: the paper's sampling, and for the demo cohort and the
    synthetic DAIC trees (a DAIC dataset without `data_root`) the only weights available offline
    (random); `overrides` are `ExtractionConfig` fields, and one given as None keeps the dataset's
    default. DAIC-WOZ and E-DAIC sample 4 of every 100 frames, as the paper does for AVEC2014, and
    set aside the fields of `DAIC_NOT_APPLICABLE`."""
    from .features.pipeline import ExtractionConfig

    synthetic = dataset == "demo" or (dataset in DAIC_DATASETS and data_root is None)
    defaults = DEMO_EXTRACTION if synthetic else {}
    chosen = {name: value for name, value in overrides.items() if value is not None}
    if dataset in DAIC_DATASETS:
        return ExtractionConfig(**{"keep": 4, "every": 100, **defaults, **chosen, **DAIC_NOT_APPLICABLE})
    return ExtractionConfig.for_dataset(dataset, **{**defaults, **chosen})


@dataclass
class FeatureRun:
    """What a feature chapter works with: the video index, the settings, the cache and what was read from
    it: the whole `Cohort`, or one modality's `ModalityCohort` (`extract_modality`)."""

    index: pd.DataFrame
    config: ExtractionConfig
    cache_dir: Path
    cohort: Cohort | ModalityCohort
    seconds: float


def _feature_settings(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None, seed: int,
                      extraction: dict | None, progress: bool, on_error: str):
    """(index, config, cache folder): the videos, read again, and the settings by their precedence."""
    check_dataset(dataset, data_root)
    index = dataset_index(dataset, profile, data_dir, data_root, seed, progress)
    chosen = {name: value for name, value in (extraction or {}).items() if value is not None}
    settings = {**recorded_extraction(dataset, data_dir, data_root), "on_error": on_error, **chosen}
    return (index, extraction_config(dataset, data_root=data_root, **settings),
            feature_cache_dir(dataset, data_dir, data_root))


def extract_dataset_features(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None = None,
                             seed: int = 0, extraction: dict | None = None, progress: bool = True,
                             on_error: str = "skip") -> FeatureRun:
    """Features of the demo cohort (built under `data_dir` if needed), AVEC, or DAIC-WOZ / E-DAIC
    (`features.daic`), extracted into the dataset's feature cache (`feature_cache_dir`) where not
    already current there.

    The settings, in order of precedence: `extraction`'s `ExtractionConfig` fields (None values
    ignored), those recorded in the cache's manifest (what the feature chapters chose last), the
    dataset's defaults. So one set of feature settings, given to the feature chapters, holds for
    every later chapter, which may still change a field. `on_error` ("skip" or "raise", see
    ExtractionConfig) applies unless `extraction` sets it.
    """
    from .features.daic import extract_daic_features
    from .features.pipeline import extract_features

    index, config, cache_dir = _feature_settings(dataset, profile, data_dir, data_root, seed, extraction, progress,
                                                 on_error)
    started = time.perf_counter()
    extract = extract_daic_features if dataset in DAIC_DATASETS else extract_features
    cohort = extract(index, cache_dir, config, progress=progress)
    cohort.origin = data_origin(dataset, data_dir, data_root)
    return FeatureRun(index, config, cache_dir, cohort, time.perf_counter() - started)


def extract_modality(dataset: str, modality: str, profile: str, data_dir: str | Path,
                     data_root: str | Path | None = None, seed: int = 0, extraction: dict | None = None,
                     progress: bool = True, on_error: str = "skip") -> FeatureRun:
    """One modality ("visual", "audio" or "head") of the demo cohort's or AVEC's videos, extracted into
    the shared cache `data_dir/features/<dataset>` where not already current: what each feature
    chapter does for its own modality. Settings as for `extract_dataset_features`; the other
    modalities are left as they are (`load_cohort` extracts whatever is missing)."""
    from .features.pipeline import load_modality, update_cache

    if dataset in DAIC_DATASETS:
        raise ValueError(f"{dataset}: its visual and head features ship with the corpus; load_cohort reads them "
                         "and extracts the audio, all three together")
    index, config, cache_dir = _feature_settings(dataset, profile, data_dir, data_root, seed, extraction, progress,
                                                 on_error)
    started = time.perf_counter()
    update_cache(index, cache_dir, config, progress=progress, modalities=[modality])
    return FeatureRun(index, config, cache_dir, load_modality(cache_dir, modality, config),
                      time.perf_counter() - started)


def load_cohort(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None = None,
                seed: int = 0, extraction: dict | None = None, progress: bool = True,
                on_error: str = "skip") -> Cohort:
    """The cohort a chapter works on: the simulation cohort, or the features of the demo cohort's or
    AVEC's videos, or of DAIC-WOZ / E-DAIC's sessions (PHQ-8, `cohort.scale`; the synthetic tree when
    `data_root` is None), cached under `data_dir/features/<dataset>` (`feature_cache_dir`).

    On every call: `data_root` is checked (AVEC, DAIC: a missing or empty folder is an error naming it),
    the videos are indexed and their label files read again, and a video's cached features are
    reused only if its files are unchanged and the settings match; the others are extracted, with
    a printed line saying how many and why. Settings: `extraction`'s fields over those the feature
    chapters chose (recorded in the cache's manifest) over the dataset's defaults.
    A video that fails is left out with a warning naming its file and why (`on_error="skip"`;
    "raise" raises after trying every video); the cohort's `left_out` lists them and its
    `fingerprint` digests labels, input identities and settings. `Cohort.require_splits` gives a
    clear error when a split a chapter needs is empty.
    """
    check_dataset(dataset, data_root)
    if dataset == "simulation":
        return simulation_cohort(profile, seed)
    return extract_dataset_features(dataset, profile, data_dir, data_root, seed, extraction, progress,
                                    on_error).cohort


def planted_truth_cohort(dataset: str, profile: str, seed: int = 0) -> Cohort:
    """The simulation cohort, for the chapters that check the model against planted truth; any other
    dataset is refused, since no other data has a known answer."""
    if dataset != "simulation":
        raise ValueError(f"dataset {dataset!r}: this chapter compares the model with the truth planted in the "
                         "simulation cohort, which no other data has; on AVEC, the interpretability chapter "
                         "(15) draws the attention weights without a truth to compare")
    return simulation_cohort(profile, seed)


def visual_weights_missing(weights: str, affectnet_checkpoint: str | Path | None = None, offline: bool = True) -> str:
    """Why the visual backbone `weights` cannot be loaded here and how to provide them; "" when they can.

    torchvision's ImageNet weights are read from the torch hub cache, and downloaded into it only
    when `offline` is False (`downloads_allowed`)."""
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

    Every other setting is the one the feature chapters used (`recorded_extraction`, else
    the dataset's defaults), and their audio and head files are reused, not recomputed, so that
    the rows differ in the visual backbone alone. Weights other than those of the feature chapters
    get `data_dir/features/<dataset>-visual-<weights>`, so that no run overwrites another's
    features. The rules of `load_cohort` hold: `data_root` is checked and the labels read
    again on every call, only current features are reused, and a video that fails is left out
    (`on_error`).
    """
    from .features.cache import FeatureCache
    from .features.pipeline import extract_features

    if dataset == "simulation":
        raise ValueError("the simulation cohort has no video to extract features from; use 'demo' or AVEC")
    if dataset in DAIC_DATASETS:
        raise ValueError(f"{dataset} ships no video, only visual features already made: its visual backbone "
                         "cannot be changed")
    chapters = FeatureCache(Path(data_dir) / "features" / dataset)
    recorded = recorded_extraction(dataset, data_dir)
    settings = {**recorded, "on_error": on_error}
    checkpoint = str(affectnet_checkpoint) if weights == "affectnet" else None
    config = extraction_config(dataset, **{**settings, "visual_weights": weights,
                                                   "affectnet_checkpoint": checkpoint})
    index = dataset_index(dataset, profile, data_dir, data_root, seed, progress)
    if recorded and config == extraction_config(dataset, **settings):
        cache = chapters
    else:
        cache = FeatureCache(chapters.root.with_name(f"{dataset}-visual-{weights}"))
        for modality in ("audio", "head"):
            cache.adopt(chapters, modality)
    cohort = extract_features(index, cache.root, config, progress=progress)
    cohort.origin = data_origin(dataset, data_dir, data_root)
    return cohort.in_memory()
