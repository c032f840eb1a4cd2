"""DRLoss's δ (and weight w) chosen by cross-validation on Training + Development, folds grouped by subject
(section 3.5)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm.auto import tqdm

from .. import train as training
from .. import versioning
from ..model import MDDR
from .runs import read_saved, write_atomically


CROSS_VALIDATION = {
    "smoke": dict(deltas=(0.0, 2.0), weights=(0.1,), folds=2, train={}),
    "demo": dict(deltas=(0.0, 1.0, 2.0, 4.0), weights=(0.1,), folds=3, train={"num_epochs": 20, "lr_step": 15}),
    "paper": dict(deltas=(0.0, 0.5, 1.0, 2.0, 4.0, 8.0), weights=(0.05, 0.1, 0.2), folds=5, train={}),
}
"""δ cross-validation per profile: the δ grid, the DRLoss weights w tried with each δ (the paper's 0.1
alone, except in the paper profile), the folds and the recipe's changes (demo: half the epochs, to
fit the book's time)."""


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
                           model_overrides: dict | None = None, progress: bool = True,
                           weights: Sequence[float] = (0.1,)) -> pd.DataFrame:
    """DRLoss's δ and weight w by cross-validation on Training + Development, folds grouped by subject
    (section 3.5); one row per (δ, w, fold).

    Each (δ, w, fold) trains MDDR on the other folds for a fixed number of epochs and scores the
    held-out fold at the last epoch: no epoch is chosen on the fold it is scored on. Testing is
    not used. Each run is saved under `results_dir/runs` and reused.
    """
    cohort = cohort.in_memory()
    split = cross_validation_folds(cohort, folds)
    rows = []
    jobs = [(delta, weight, fold) for delta in deltas for weight in weights for fold in range(folds)]
    for delta, weight, fold in tqdm(jobs, desc="δ × w × fold", **training.progress_options(progress)):
        kept, held = split[fold]
        overrides = {**(train_overrides or {}), "loss": "drloss", "delta": float(delta), "loss_weight": float(weight)}
        rows.append({"delta": float(delta), "weight": float(weight), "fold": fold,
                     **_cross_validation_run(cohort, kept, held, profile, seed, results_dir, overrides,
                                             model_overrides)})
    return pd.DataFrame(rows)


def _cross_validation_run(cohort, kept: list[str], held: list[str], profile: str, seed: int, results_dir,
                          train_overrides: dict, model_overrides: dict | None) -> dict:
    train, held_out = cohort.subset(video_ids=kept), cohort.subset(video_ids=held)
    dims = training.feature_dims(train[0])
    model_config, config = training.profile_configs(profile, dims,
                                                    training.cohort_model_overrides(cohort, model_overrides),
                                                    {"seed": seed, **train_overrides})
    key = {"model": model_config.to_dict(), "train": training.run_recipe(config), "data": training.cohort_key(cohort),
           "code": versioning.code_digest(), "kept": sorted(kept), "held": sorted(held)}
    path = Path(results_dir) / "runs" / f"cv_{profile}_{versioning.digest(key)}.json"
    saved = read_saved(path, lambda saved_path: json.loads(saved_path.read_text())["scores"])
    if saved is not None:
        return saved
    training.set_seed(seed)
    run = training.fit(MDDR(model_config), train, held_out, config, progress=False)
    last = run.history.iloc[-1]
    scores = {"mae": float(last["dev_mae"]), "rmse": float(last["dev_rmse"]), "epochs": int(last["epoch"]),
              "train_videos": len(kept), "held_out_videos": len(held)}
    write_atomically(path, json.dumps({"scores": scores, "history": run.history.to_dict("list"), **key}, indent=1,
                                       default=str))
    return scores


def choose_delta(cross_validation: pd.DataFrame, metric: str = "rmse") -> tuple[float, float, pd.DataFrame]:
    """The (δ, w) with the lowest mean held-out `metric` over folds, and the mean and std per (δ, w)."""
    summary = cross_validation.groupby(["delta", "weight"])[["mae", "rmse"]].agg(["mean", "std"])
    delta, weight = summary[(metric, "mean")].idxmin()
    return float(delta), float(weight), summary
