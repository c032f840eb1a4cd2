"""MAE and RMSE (section 4.2, equations 4-5), category outliers (Figure 4) and bootstrap intervals.

Every metric is computed over all predictions at once, never as an average of per-batch values.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .losses import bdi_category


def _as_arrays(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred.detach().cpu() if hasattr(pred, "detach") else pred, dtype=float).ravel()
    target = np.asarray(target.detach().cpu() if hasattr(target, "detach") else target, dtype=float).ravel()
    if pred.shape != target.shape or pred.size == 0:
        raise ValueError(f"pred and target need the same non-zero length, got {pred.size} and {target.size}")
    return pred, target


def mae(pred, target) -> float:
    """Mean absolute error over all predictions (equation 4)."""
    pred, target = _as_arrays(pred, target)
    return float(np.mean(np.abs(pred - target)))


def rmse(pred, target) -> float:
    """Root mean squared error over all predictions (equation 5)."""
    pred, target = _as_arrays(pred, target)
    return float(np.sqrt(np.mean((pred - target) ** 2)))


def category_outliers(pred, target) -> np.ndarray:
    """True where the prediction falls in another BDI-II category than the target (Figure 4's red points)."""
    pred, target = _as_arrays(pred, target)
    return bdi_category(pred) != bdi_category(target)


def bootstrap_interval(pred, target, metric: Callable = mae, num_resamples: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric`, resampling predictions with replacement."""
    pred, target = _as_arrays(pred, target)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, pred.size, size=(num_resamples, pred.size))
    values = np.array([metric(pred[p], target[p]) for p in picks])
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
