"""Where a chapter's data comes from, chosen by its `dataset` and `profile` parameters.

`simulation`: the feature-level simulation cohort (design notes 8), sized by profile: `paper`
at the full feature sizes 2048/1024/12; `demo` at compact sizes 128/64/12 with the same planted
structure (the planted latents are 8-dimensional, so nothing is lost, and training fits two
CPU cores); `smoke` a few short videos.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .data.container import Cohort
from .data.demo_cohort import DEMO_COHORT_PROFILES
from .data.simulation import make_simulation_cohort

if TYPE_CHECKING:
    from .features.pipeline import ExtractionConfig

SIMULATION_PROFILES = {
    "smoke": dict(recordings_per_split=4, num_subjects=8, visual_dim=32, audio_dim=16,
                  duration_seconds={"Freeform": (12.0, 0.3, 6.0, 20.0), "Northwind": (15.0, 0.2, 8.0, 20.0)}),
    "demo": dict(visual_dim=128, audio_dim=64),
    "paper": dict(),
}
DATASETS = ("simulation", "demo", "avec2014", "avec2013")


def simulation_cohort(profile: str, seed: int = 0, **knobs) -> Cohort:
    """The simulation cohort at the size of `profile`; knobs override `SimulationSettings` fields."""
    if profile not in SIMULATION_PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {sorted(SIMULATION_PROFILES)}")
    return make_simulation_cohort(seed, **{**SIMULATION_PROFILES[profile], **knobs})


def describe_source(dataset: str, profile: str) -> str:
    """A caption fragment naming the data, for every table and figure."""
    if dataset == "simulation":
        sizes = "2048/1024/12" if profile == "paper" else "compact feature sizes (same planted structure)"
        return f"simulation cohort ({sizes}, profile {profile}) — synthetic, not AVEC"
    if dataset == "demo":
        return f"demo cohort of synthetic videos (profile {profile}) — synthetic, not AVEC"
    return f"{dataset.upper()} (profile {profile})"


def check_dataset(dataset: str, data_root: str | Path | None) -> None:
    """Refuse an unknown dataset name, or an AVEC dataset without its folder."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: use one of {DATASETS}")
    if dataset.startswith("avec") and (data_root is None or not Path(data_root).is_dir()):
        raise FileNotFoundError(f"{dataset}: data_root {data_root!r} is not a folder; "
                                "see the book's page 'Reproduce on AVEC2013/2014'")

DEMO_EXTRACTION = dict(visual_weights="none", hubert="random", offline=True)
"""No pretrained weights can be had offline: the demo cohort's features come from a randomly
initialised ResNet-50 and HuBERT (seeded). They exercise the pipeline; they are not the paper's."""


def dataset_index(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None = None,
                  seed: int = 0, progress: bool = True):
    """The video index of a raw-video dataset: the demo cohort (built under `data_dir` if needed) or AVEC."""
    from .data.avec import index_avec2013, index_avec2014
    from .data.demo_cohort import make_demo_cohort

    check_dataset(dataset, data_root)
    if dataset == "demo":
        return make_demo_cohort(Path(data_dir) / "demo_cohort", seed=seed, progress=progress,
                                **DEMO_COHORT_PROFILES[profile])
    if dataset == "avec2014":
        return index_avec2014(data_root)
    if dataset == "avec2013":
        return index_avec2013(data_root)
    raise ValueError(f"{dataset!r} has no raw videos: it is generated at the feature level")


def extraction_config(dataset: str, **overrides):
    """The extraction settings of a dataset: the paper's sampling, and for the demo cohort the
    only weights available offline (random); `overrides` are `ExtractionConfig` fields, and one
    given as None keeps the dataset's default."""
    from .features.pipeline import ExtractionConfig

    defaults = DEMO_EXTRACTION if dataset == "demo" else {}
    chosen = {name: value for name, value in overrides.items() if value is not None}
    return ExtractionConfig.for_dataset(dataset, **{**defaults, **chosen})


@dataclass
class FeatureRun:
    """What a feature chapter works with: the video index, the settings, the cache and the cohort read from it."""

    index: pd.DataFrame
    config: ExtractionConfig
    cache_dir: Path
    cohort: Cohort
    seconds: float


def extract_dataset_features(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None = None,
                             seed: int = 0, extraction: dict | None = None, progress: bool = True) -> FeatureRun:
    """Features of the demo cohort (built under `data_dir` if needed) or AVEC, extracted into
    `data_dir/features/<dataset>` with `extraction`'s settings where not already current there.

    The feature chapters (02-04) all call this with the same settings, so that whichever runs
    first extracts every modality and the others find them current; a chapter run with other
    settings for one modality recomputes that modality only.
    """
    from .features.pipeline import extract_features

    check_dataset(dataset, data_root)
    index = dataset_index(dataset, profile, data_dir, data_root, seed, progress)
    config = extraction_config(dataset, **(extraction or {}))
    cache_dir = Path(data_dir) / "features" / dataset
    started = time.perf_counter()
    cohort = extract_features(index, cache_dir, config, progress=progress)
    return FeatureRun(index, config, cache_dir, cohort, time.perf_counter() - started)


def load_cohort(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None = None,
                seed: int = 0, extraction: dict | None = None, progress: bool = True) -> Cohort:
    """The cohort a chapter works on: simulated features, or features extracted (and cached under
    `data_dir/features/<dataset>`) from the demo cohort's or AVEC's videos."""
    check_dataset(dataset, data_root)
    if dataset == "simulation":
        return simulation_cohort(profile, seed)
    return extract_dataset_features(dataset, profile, data_dir, data_root, seed, extraction, progress).cohort


def planted_truth_cohort(dataset: str, profile: str, seed: int = 0) -> Cohort:
    """The simulation cohort, for the chapters that check the model against planted truth; any other
    dataset is refused, since no other data has a known answer."""
    if dataset != "simulation":
        raise ValueError(f"dataset {dataset!r}: this chapter compares the model with the truth planted in the "
                         "simulation cohort, which no other data has; on AVEC, the interpretability chapter "
                         "(15) draws the attention weights without a truth to compare")
    return simulation_cohort(profile, seed)
