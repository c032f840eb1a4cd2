"""Scoring Testing (section 4.2): scores clamped to the label scale, MAE and RMSE per video and per
recording, bootstrap intervals over recordings, and the seeds' summary of each row."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from .. import metrics
from ..data.scales import BDI_II, LabelScale, scale_by_name

if TYPE_CHECKING:
    from .runs import VariantResult


LEVEL = 0.95
NUM_RESAMPLES = 2000


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
