"""MAE and RMSE (section 4.2, equations 4-5) and category outliers (Figure 4); the bootstrap
intervals over recordings are in `evaluation.stats`.

For DAIC-WOZ and E-DAIC also the metrics their literature reports: Lin's concordance correlation
(E-DAIC's official AVEC2019 metric) and the F1 of the binary reading PHQ-8 >= 10.

Every metric is computed over all predictions at once, never as an average of per-batch values.
"""
from __future__ import annotations

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
