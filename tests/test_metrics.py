import numpy as np
import pytest
import torch

from mddr_utils.metrics import bootstrap_interval, category_outliers, mae, rmse


def test_rmse_is_over_all_predictions_not_a_mean_of_batches():
    target = np.zeros(4)
    pred = np.array([0.0, 0.0, 0.0, 4.0])
    per_batch = np.mean([np.sqrt(np.mean((pred[i:i + 2] - target[i:i + 2]) ** 2)) for i in (0, 2)])
    assert rmse(pred, target) == pytest.approx(2.0)
    assert per_batch == pytest.approx(np.sqrt(8) / 2)
    assert rmse(pred, target) != pytest.approx(per_batch)


def test_mae_and_tensors():
    assert mae(torch.tensor([1.0, 5.0]), [2.0, 2.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="same non-zero length"):
        mae([1.0], [1.0, 2.0])


def test_category_outliers():
    assert category_outliers([13.4, 13.6, 30, 28], [13, 13, 40, 29]).tolist() == [False, True, False, True]


def test_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 45, 200)
    pred = target + rng.normal(0, 5, 200)
    low, high = bootstrap_interval(pred, target, mae, num_resamples=300)
    assert low < mae(pred, target) < high
    assert high - low < 2.0
