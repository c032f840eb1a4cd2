import numpy as np
import pytest
import torch

from mddr_utils.losses import DRLoss, bdi_category, make_loss


@pytest.mark.parametrize("score, category", [
    (0, 0), (13, 0), (13.49, 0), (13.5, 1), (19.49, 1), (19.5, 2), (28.49, 2), (28.5, 3), (63, 3), (-4, 0), (80, 3),
])
def test_bdi_category_thresholds(score, category):
    assert bdi_category(score) == category
    assert bdi_category(torch.tensor([float(score)])).item() == category
    assert bdi_category(np.array([score]))[0] == category


# Huber with threshold 1: 0.5 d^2 for |d| <= 1, |d| - 0.5 beyond.
@pytest.mark.parametrize("pred, target, expected", [
    (13.4, 12.0, 0.1 * 0.9),   # same category (minimal), |d| = 1.4 <= 2: weighted
    (13.6, 12.0, 1.1),         # crosses 13.5 into mild: full Huber
    (12.5, 12.0, 0.1 * 0.125), # small error, quadratic part, weighted
    (25.0, 22.0, 2.5),         # same category (moderate) but |d| = 3 > delta
    (20.0, 18.0, 1.5),         # |d| = 2 <= delta but 20 is moderate, 18 mild
    (30.0, 29.0, 0.1 * 0.5),   # severe both, |d| = 1: boundary of Huber's quadratic part
    (12.0, 10.0, 0.1 * 1.5),   # minimal both, |d| = 2 = delta exactly: still weighted (|d| <= delta)
    (12.0, 9.75, 1.75),        # minimal both, |d| = 2.25 just beyond delta: full Huber
])
def test_drloss_by_hand(pred, target, expected):
    loss = DRLoss(delta=2.0, weight=0.1, huber_delta=1.0)
    assert loss(torch.tensor([pred]), torch.tensor([target])).item() == pytest.approx(expected, rel=1e-5)


def test_drloss_is_a_batch_mean_and_has_gradients():
    loss = DRLoss()
    pred = torch.tensor([13.4, 13.6], requires_grad=True)
    value = loss(pred, torch.tensor([12.0, 12.0]))
    assert value.item() == pytest.approx((0.09 + 1.1) / 2, rel=1e-5)
    value.backward()
    assert pred.grad.tolist() == pytest.approx([0.1 * 1 / 2, 1 / 2])


def test_huber_threshold_is_a_parameter():
    assert DRLoss(huber_delta=5.0)(torch.tensor([20.0]), torch.tensor([17.0])).item() == pytest.approx(4.5)


def test_make_loss_names():
    assert isinstance(make_loss("drloss"), DRLoss)
    assert make_loss("huber")(torch.tensor([3.0]), torch.tensor([0.0])).item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="unknown loss 'l7'"):
        make_loss("l7")
