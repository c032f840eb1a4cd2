import numpy as np
import pytest
import torch

from mddr_utils.data.scales import BDI_II, PHQ_8
from mddr_utils.metrics import category_outliers, ccc, f1_depressed, mae, rmse


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
    assert category_outliers([13.4, 13.6, 30, 28], [13, 13, 40, 29], scale=BDI_II).tolist() == [False, True, False, True]
    # PHQ-8 bands 0-4 / 5-9 / 10-14 / 15-19 / 20-24: 10 and 8 differ, 4.4 and 3 agree, 24 and 30 are both severe.
    assert category_outliers([10, 4.4, 24, 9.6], [8, 3, 30, 9], scale=PHQ_8).tolist() == [True, False, False, True]


def test_bdi_ii_default_outlier_count_equals_the_published_bands():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 64, 300).astype(float)
    pred = target + rng.normal(0, 6, 300)

    def band(score):
        return 0 if score < 13.5 else 1 if score < 19.5 else 2 if score < 28.5 else 3

    expected = sum(band(p) != band(t) for p, t in zip(pred, target))
    assert int(category_outliers(pred, target).sum()) == expected


def test_ccc_by_hand():
    # pred 1, 2, 3 (mean 2, var 2/3); target 2, 2, 5 (mean 3, var 2); cov = (-1*-1 + 0*-1 + 1*2) / 3 = 1.
    assert ccc([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(2 * 1 / (2 / 3 + 2 + 1))
    assert ccc([4.0, 7.0, 9.0], [4.0, 7.0, 9.0]) == pytest.approx(1.0)
    assert ccc([1.0, 2.0], [2.0, 1.0]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="undefined"):
        ccc([3.0, 3.0], [3.0, 3.0])


def test_f1_depressed_by_hand():
    # PHQ-8 >= 10: predicted 1 1 0 1 0, actual 1 0 1 1 0 -> TP 2, FP 1, FN 1; F1 = 2*2 / (2*2 + 1 + 1).
    assert f1_depressed([12, 10, 9.9, 20, 3], [10, 9, 15, 24, 0]) == pytest.approx(4 / 6)
    assert f1_depressed([0, 1], [2, 3]) == 0.0
    with pytest.raises(ValueError, match="BDI-II sets no binary"):
        f1_depressed([1.0], [2.0], scale=BDI_II)
