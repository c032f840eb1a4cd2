"""Where a chapter's data comes from, chosen by its `dataset` and `profile` parameters.

`simulation`: the feature-level simulation cohort (design notes 8), sized by profile: `paper`
at the full feature sizes 2048/1024/12; `demo` at compact sizes 128/64/12 with the same planted
structure (the planted latents are 8-dimensional, so nothing is lost, and training fits two
CPU cores); `smoke` a few short videos.
"""
from __future__ import annotations

from pathlib import Path

from .data.container import Cohort
from .data.demo_cohort import DEMO_COHORT_PROFILES
from .data.simulation import make_simulation_cohort

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
        raise FileNotFoundError(f"{dataset}: data_root {data_root!r} is not a folder; see 'Reproduce on AVEC'")

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
    only weights available offline (random); `overrides` are `ExtractionConfig` fields."""
    from .features.pipeline import ExtractionConfig

    defaults = DEMO_EXTRACTION if dataset == "demo" else {}
    return ExtractionConfig.for_dataset(dataset, **{**defaults, **overrides})


def load_cohort(dataset: str, profile: str, data_dir: str | Path, data_root: str | Path | None = None,
                seed: int = 0, extraction: dict | None = None, progress: bool = True) -> Cohort:
    """The cohort a chapter works on: simulated features, or features extracted (and cached under
    `data_dir/features/<dataset>`) from the demo cohort's or AVEC's videos."""
    check_dataset(dataset, data_root)
    if dataset == "simulation":
        return simulation_cohort(profile, seed)
    from .features.pipeline import extract_features

    index = dataset_index(dataset, profile, data_dir, data_root, seed, progress)
    config = extraction_config(dataset, **(extraction or {}))
    return extract_features(index, Path(data_dir) / "features" / dataset, config, progress=progress)
