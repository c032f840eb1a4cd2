"""DRLoss, the depression recognition loss (section 3.5, equation 3), and BDI-II categories (section 4.1)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CATEGORY_NAMES = ("minimal", "mild", "moderate", "severe")
CATEGORY_EDGES = (13.5, 19.5, 28.5)
"""BDI-II 0-13 minimal, 14-19 mild, 20-28 moderate, 29-63 severe, extended to real values by
rounding half up: every real number gets a category (design notes 2)."""


def bdi_category(scores):
    """Category 0 minimal, 1 mild, 2 moderate, 3 severe of each score (tensor, array or number)."""
    if torch.is_tensor(scores):
        edges = torch.tensor(CATEGORY_EDGES, dtype=scores.dtype if scores.is_floating_point() else torch.float32,
                             device=scores.device)
        return torch.bucketize(scores, edges, right=True)
    categories = np.digitize(np.asarray(scores, dtype=float), CATEGORY_EDGES, right=False)
    return categories if np.ndim(categories) else int(categories)


class DRLoss(nn.Module):
    """Huber loss, multiplied by `weight` where prediction and target share a BDI-II category and
    lie within `delta` of each other; averaged over the batch."""

    def __init__(self, delta: float = 2.0, weight: float = 0.1, huber_delta: float = 1.0):
        super().__init__()
        if delta < 0 or weight < 0 or huber_delta <= 0:
            raise ValueError("DRLoss needs delta >= 0, weight >= 0 and huber_delta > 0")
        self.delta, self.weight, self.huber_delta = delta, weight, huber_delta

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(pred.dtype)
        huber = F.huber_loss(pred, target, reduction="none", delta=self.huber_delta)
        consistent = (bdi_category(pred.detach()) == bdi_category(target)) & ((pred.detach() - target).abs() <= self.delta)
        return torch.where(consistent, self.weight * huber, huber).mean()

    def extra_repr(self) -> str:
        return f"delta={self.delta}, weight={self.weight}, huber_delta={self.huber_delta}"


def make_loss(name: str, delta: float = 2.0, weight: float = 0.1, huber_delta: float = 1.0) -> nn.Module:
    """'drloss', 'huber' or 'mse', by name (the Figure 4 comparison trains with each)."""
    if name == "drloss":
        return DRLoss(delta=delta, weight=weight, huber_delta=huber_delta)
    if name == "huber":
        return nn.HuberLoss(delta=huber_delta)
    if name == "mse":
        return nn.MSELoss()
    raise ValueError(f"unknown loss {name!r}: use 'drloss', 'huber' or 'mse'")
