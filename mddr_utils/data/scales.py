"""Depression label scales: BDI-II (AVEC2013/2014, paper section 4.1) and PHQ-8 (DAIC-WOZ, E-DAIC).

The paper's corpora score each recording with the Beck Depression Inventory II, 0-63, in four
categories (section 4.1: 0-13 minimal, 14-19 mild, 20-28 moderate, 29-63 severe); DRLoss and the
Figure 4 outliers use them. DAIC-WOZ and E-DAIC score each interview with the eight-item Patient
Health Questionnaire, 0-24 (Kroenke et al. 2009): 0-4 none, 5-9 mild, 10-14 moderate,
15-19 moderately severe, 20-24 severe; a score of 10 or more is the corpora's binary "depressed".

A `LabelScale` holds a scale's range and categories. Categories extend to every real number
(predictions are real): the edges lie half-way between the integer scores that bound a category,
a score on an edge belongs to the upper category, anything below 0 to the first and anything
above the maximum to the last.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LabelScale:
    """A questionnaire's score range 0..maximum and its severity categories.

    `edges[i]` separates category i from category i + 1; `depressed_from` is the score from which
    a person counts as depressed in a binary reading (None where the scale's corpora set none).
    """

    name: str
    maximum: int
    edges: tuple[float, ...]
    category_names: tuple[str, ...]
    depressed_from: float | None = None

    def __post_init__(self) -> None:
        edges = tuple(float(edge) for edge in self.edges)
        if len(self.category_names) != len(edges) + 1:
            raise ValueError(f"scale {self.name}: {len(edges)} edges need {len(edges) + 1} category names, "
                             f"got {len(self.category_names)}")
        if any(b <= a for a, b in zip(edges, edges[1:])) or not all(0 < edge < self.maximum for edge in edges):
            raise ValueError(f"scale {self.name}: edges {edges} must increase strictly inside 0..{self.maximum}")
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "category_names", tuple(self.category_names))

    @property
    def range(self) -> tuple[int, int]:
        """(0, maximum), the scores a label may take."""
        return 0, self.maximum

    def category(self, scores):
        """Category index (0 = mildest) of each score: a number gives an int, an array an array, a tensor a tensor."""
        if torch.is_tensor(scores):
            dtype = scores.dtype if scores.is_floating_point() else torch.float32
            edges = torch.tensor(self.edges, dtype=dtype, device=scores.device)
            return torch.bucketize(scores, edges, right=True)
        categories = np.digitize(np.asarray(scores, dtype=float), self.edges, right=False)
        return categories if np.ndim(categories) else int(categories)

    def bands(self) -> list[str]:
        """Each category with the integer scores it holds, e.g. "minimal 0-13"."""
        bounds = [0, *np.ceil(self.edges).astype(int), self.maximum + 1]
        return [f"{name} {low}-{high - 1}" for name, low, high in zip(self.category_names, bounds[:-1], bounds[1:])]

    def category_name(self, score: float) -> str:
        """The name of one score's category."""
        return self.category_names[self.category(float(score))]

    def clamp(self, scores):
        """Scores limited to 0..maximum: a tensor stays a tensor, an array an array, a number a float."""
        if torch.is_tensor(scores):
            return scores.clamp(0.0, float(self.maximum))
        clipped = np.clip(np.asarray(scores, dtype=float), 0.0, float(self.maximum))
        return clipped if np.ndim(clipped) else float(clipped)

    def is_depressed(self, scores):
        """True where a score reaches `depressed_from`; ValueError for a scale without one."""
        if self.depressed_from is None:
            raise ValueError(f"scale {self.name} sets no binary cut-off")
        flags = np.asarray(scores, dtype=float) >= self.depressed_from
        return flags if np.ndim(flags) else bool(flags)

    def check_label(self, value, source: str, integer: bool = True) -> float:
        """`value` as a float if it is a valid score of this scale; ValueError naming `source` otherwise."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: label {value!r} is not a number on the {self.name} scale") from None
        if not math.isfinite(number):
            raise ValueError(f"{source}: label {value!r} is not a finite {self.name} score")
        if integer and not number.is_integer():
            raise ValueError(f"{source}: label {value!r} is not an integer {self.name} score")
        if not 0 <= number <= self.maximum:
            raise ValueError(f"{source}: label {value!r} is outside the {self.name} range 0..{self.maximum}")
        return number


BDI_II = LabelScale("BDI-II", 63, (13.5, 19.5, 28.5), ("minimal", "mild", "moderate", "severe"))
PHQ_8 = LabelScale("PHQ-8", 24, (4.5, 9.5, 14.5, 19.5),
                   ("none", "mild", "moderate", "moderately severe", "severe"), depressed_from=10)
LABEL_SCALES = {scale.name: scale for scale in (BDI_II, PHQ_8)}


def scale_by_name(name: str | LabelScale) -> LabelScale:
    """The scale called `name` ("BDI-II", "PHQ-8"; case, spaces, '-' and '_' ignored); a scale is returned as is."""
    if isinstance(name, LabelScale):
        return name
    wanted = _plain(name)
    for scale in LABEL_SCALES.values():
        if _plain(scale.name) == wanted:
            return scale
    raise ValueError(f"unknown label scale {name!r}: use one of {sorted(LABEL_SCALES)}")


def _plain(name) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())
