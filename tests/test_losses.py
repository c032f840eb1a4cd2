import numpy as np
import pytest
import torch

from mddr_utils.data.scales import PHQ_8
from mddr_utils.losses import CATEGORY_EDGES, CATEGORY_NAMES, DRLoss, bdi_category, make_loss


@pytest.mark.parametrize("score, category", [
    (0, 0), (13, 0), (13.49, 0), (13.5, 1), (19.49, 1), (19.5, 2), (28.49, 2), (28.5, 3), (63, 3), (-4, 0), (80, 3),
])
def test_bdi_category_thresholds(score, category):
    assert CATEGORY_EDGES == (13.5, 19.5, 28.5) and CATEGORY_NAMES == ("minimal", "mild", "moderate", "severe")
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
    (10.0, 8.0, 0.1 * 1.5),    # BDI-II minimal both (PHQ-8 would split them): weighted
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


def _huber(d: float) -> float:
    return 0.5 * d * d if abs(d) <= 1 else abs(d) - 0.5


def _category_by_thresholds(score: float, edges) -> int:
    return sum(score >= edge for edge in edges)


def test_bdi_ii_default_drloss_equals_equation_3_on_a_grid():
    """The default DRLoss is exactly the pre-scale one: equation 3 with BDI-II's published bands 0-13/14-19/20-28/29-63."""
    rng = np.random.default_rng(0)
    target = rng.integers(0, 64, 200).astype(float)
    pred = target + rng.choice([-3.0, -2.0, -0.6, 0.0, 0.5, 1.5, 2.0, 2.5], 200)
    weighted = [_category_by_thresholds(p, (13.5, 19.5, 28.5)) == _category_by_thresholds(t, (13.5, 19.5, 28.5))
                and abs(p - t) <= 2.0 for p, t in zip(pred, target)]
    expected = np.mean([(0.1 if w else 1.0) * _huber(p - t) for p, t, w in zip(pred, target, weighted)])
    for loss in (DRLoss(), make_loss("drloss")):
        assert loss(torch.tensor(pred), torch.tensor(target)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("pred, target, expected", [
    (9.0, 7.0, 0.1 * 1.5),    # PHQ-8 mild both (5-9), |d| = 2: weighted
    (10.0, 8.0, 1.5),         # 10 is PHQ-8 moderate, 8 mild: full Huber (both BDI-II minimal)
    (4.4, 3.0, 0.1 * 0.9),    # none both (0-4)
    (4.6, 3.0, 1.1),          # crosses 4.5 into mild
    (21.0, 19.0, 1.5),        # 21 severe, 19 moderately severe
])
def test_drloss_on_phq8_uses_its_categories(pred, target, expected):
    for loss in (DRLoss(scale=PHQ_8), make_loss("drloss", scale=PHQ_8)):
        assert loss(torch.tensor([pred]), torch.tensor([target])).item() == pytest.approx(expected, rel=1e-5)
