"""The paper's published numbers (section 5): Tables 1-4 as printed, Figure 4's outlier counts, and
which of our rows stands for which of the paper's."""
from __future__ import annotations

import math

import pandas as pd


DATASET_COLUMNS = ("AVEC2013", "AVEC2014")
_PAPER = {
    1: [  # (method, citation keys, AVEC2013 MAE, RMSE, AVEC2014 MAE, RMSE); None where the paper prints "\"
        ("Baseline", "valstar2013avec,valstar2014avec", 10.88, 13.61, 8.86, 10.86),
        ("LPQ + Geo", "kaya2014eyes,kaya2014ensemble", 7.86, 9.72, 8.20, 10.27),
        ("Concat+LSTM", "chao2015multitask", None, None, 7.91, 9.98),
        ("Two-DCNN", "zhu2017automated", 9.82, 7.58, 7.47, 9.55),
        ("C3D+RNN", "jazaery2018video", 7.37, 9.28, 7.22, 9.20),
        ("Two-Stream", "uddin2020depression", 7.04, 8.93, 6.86, 8.78),
        ("C3D+atten", "he2021intelligent", 6.83, 8.46, 6.78, 8.42),
        ("C3D+Pool", "melo2019combining", 6.40, 8.26, 6.59, 8.31),
        ("LGA-CNN", "he2021automatic", 6.59, 8.39, 6.51, 8.30),
        ("ResNet + atten", "zhou2019learning", None, None, 6.37, 8.43),
        ("ResNet+distribution", "melo2019depression", 6.30, 8.25, 6.15, 8.23),
        ("Two-stream", "melo2020encoding", 5.96, 7.97, 6.20, 7.94),
        ("AUs", "song2020spectral", 6.16, 8.10, 5.95, 7.15),
        ("Proposed Approach (MDDR)", "mddr2024", 5.98, 7.80, 5.75, 7.12),
    ],
    2: [("none", "", 9.86, 10.53, 9.45, 10.93), ("ImageNet", "", 7.13, 8.92, 7.0, 8.11),
        ("AffectNet", "", 5.98, 7.80, 5.75, 7.12)],
    3: [("v", "", 6.32, 8.11, 6.21, 7.76), ("a", "", 8.55, 10.25, 8.76, 9.94), ("p", "", 9.53, 10.24, 9.0, 10.01),
        ("v+a+p", "", 5.98, 7.80, 5.75, 7.12)],
    4: [("FAA only", "", 6.85, 8.55, 6.22, 7.65), ("SEA only", "", 6.68, 8.36, 6.13, 7.32),
        ("FAA + SEA", "", 5.98, 7.80, 5.75, 7.12)],
}
"""The paper's Tables 1-4 as printed. Table 4's rows are the paper's FAN, SAN and FAN+SAN."""
PAPER_OUTLIERS = {"DRLoss": 43, "Huber": 47}
"""Figure 4 (section 5.2.4): category outliers on AVEC2014 with each loss (the paper does not say on which videos)."""
TABLE1_FAMILIES = {"MDDR (v+a+p)": "Proposed Approach (MDDR)", "concatenation + LSTM": "Concat+LSTM",
                   "visual attention": "ResNet + atten"}
"""Which row of the paper's Table 1 each of our rows stands for; the other baselines stand for no single row."""
PRETRAINING_WEIGHTS = {"none": "none", "ImageNet": "imagenet", "AffectNet": "affectnet"}
"""Table 2's rows and the visual backbone weights (`ExtractionConfig.visual_weights`) each needs."""


def paper_table(number: int) -> pd.DataFrame:
    """The paper's Table `number` (1-4): MAE and RMSE on AVEC2013 and AVEC2014; NaN where it prints "\\"."""
    if number not in _PAPER:
        raise ValueError(f"the paper has Tables 1-4, not {number!r}")
    rows = _PAPER[number]
    columns = pd.MultiIndex.from_product([DATASET_COLUMNS, ("MAE", "RMSE")])
    table = pd.DataFrame([[math.nan if v is None else v for v in row[2:]] for row in rows],
                         index=[row[0] for row in rows], columns=columns)
    table.index.name = f"Table {number}"
    return table


def paper_citations() -> dict[str, list[str]]:
    """The bibliography keys (book/references.bib) of each row of the paper's Table 1."""
    return {row[0]: row[1].split(",") for row in _PAPER[1]}
