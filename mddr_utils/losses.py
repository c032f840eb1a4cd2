"""DRLoss, the depression recognition loss (section 3.5, equation 3), and BDI-II categories (section 4.1).

DRLoss reads its categories from a label scale (`mddr_utils.data.scales`), BDI-II by default, so the
same loss trains on AVEC2013/2014 (BDI-II) and on DAIC-WOZ / E-DAIC (PHQ-8).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .data.scales import BDI_II, LabelScale

CATEGORY_NAMES = BDI_II.category_names
CATEGORY_EDGES = BDI_II.edges
"""BDI-II 0-13 minimal, 14-19 mild, 20-28 moderate, 29-63 severe, extended to real values by
rounding half up: every real number gets a category (book/decisions.md,
"decision-categories")."""


def bdi_category(scores):
    """Category 0 minimal, 1 mild, 2 moderate, 3 severe of each score (tensor, array or number)."""
    return BDI_II.category(scores)


class DRLoss(nn.Module):
    """Huber loss, multiplied by `weight` where prediction and target share a category of `scale`
    and lie within `delta` of each other; averaged over the batch.

    `delta` is in label points, so its meaning depends on the scale: 2 points are 1/12 of PHQ-8's
    0-24 range but 1/32 of BDI-II's 0-63, and PHQ-8's categories are 5 points wide where BDI-II's
    are 6 to 35. Neither `delta` nor `weight` carries over from one scale to the other: the book's
    δ cross-validation chooses both on each corpus's own Training split.
    """

    def __init__(self, delta: float = 2.0, weight: float = 0.1, huber_delta: float = 1.0,
                 scale: LabelScale = BDI_II):
        super().__init__()
        if delta < 0 or weight < 0 or huber_delta <= 0:
            raise ValueError("DRLoss needs delta >= 0, weight >= 0 and huber_delta > 0")
        self.delta, self.weight, self.huber_delta, self.scale = delta, weight, huber_delta, scale

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(pred.dtype)
        huber = F.huber_loss(pred, target, reduction="none", delta=self.huber_delta)
        same_category = self.scale.category(pred.detach()) == self.scale.category(target)
        consistent = same_category & ((pred.detach() - target).abs() <= self.delta)
        return torch.where(consistent, self.weight * huber, huber).mean()

    def extra_repr(self) -> str:
        return f"delta={self.delta}, weight={self.weight}, huber_delta={self.huber_delta}, scale={self.scale.name}"


def make_loss(name: str, delta: float = 2.0, weight: float = 0.1, huber_delta: float = 1.0,
              scale: LabelScale = BDI_II) -> nn.Module:
    """'drloss', 'huber' or 'mse', by name (the Figure 4 comparison trains with each); `scale` sets DRLoss's categories."""
    if name == "drloss":
        return DRLoss(delta=delta, weight=weight, huber_delta=huber_delta, scale=scale)
    if name == "huber":
        return nn.HuberLoss(delta=huber_delta)
    if name == "mse":
        return nn.MSELoss()
    raise ValueError(f"unknown loss {name!r}: use 'drloss', 'huber' or 'mse'")
