"""MAE and RMSE (section 4.2, equations 4-5), category outliers (Figure 4) and bootstrap intervals.

For DAIC-WOZ and E-DAIC also the metrics their literature reports: Lin's concordance correlation
(E-DAIC's official AVEC2019 metric) and the F1 of the binary reading PHQ-8 >= 10.

Every metric is computed over all predictions at once, never as an average of per-batch values.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .data.scales import BDI_II, PHQ_8, LabelScale


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


def category_outliers(pred, target, scale: LabelScale = BDI_II) -> np.ndarray:
    """True where the prediction falls in another category of `scale` than the target (Figure 4's red points)."""
    pred, target = _as_arrays(pred, target)
    return scale.category(pred) != scale.category(target)


def ccc(pred, target) -> float:
    """Lin's concordance correlation 2 cov / (var_pred + var_target + (mean_pred - mean_target)^2), population moments."""
    pred, target = _as_arrays(pred, target)
    covariance = np.mean((pred - pred.mean()) * (target - target.mean()))
    denominator = pred.var() + target.var() + (pred.mean() - target.mean()) ** 2
    if denominator == 0:
        raise ValueError("the concordance correlation is undefined: predictions and targets are one same constant")
    return float(2 * covariance / denominator)


def f1_depressed(pred, target, scale: LabelScale = PHQ_8) -> float:
    """F1 of the binary reading "score >= the scale's cut-off" (PHQ-8 >= 10), depressed as the positive class; 0 without any positive."""
    pred, target = _as_arrays(pred, target)
    predicted, actual = scale.is_depressed(pred), scale.is_depressed(target)
    true_positives = int(np.sum(predicted & actual))
    flagged = int(predicted.sum()) + int(actual.sum())
    return 2 * true_positives / flagged if flagged else 0.0


def bootstrap_interval(pred, target, metric: Callable = mae, num_resamples: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric`, resampling predictions with replacement."""
    pred, target = _as_arrays(pred, target)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, pred.size, size=(num_resamples, pred.size))
    values = np.array([metric(pred[p], target[p]) for p in picks])
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
