"""The rows of the paper's Tables 1, 3 and 4 and of Figure 4 (sections 5.1, 5.2.2-5.2.4), defined once.

Each row is a model trained by the protocol (`runs`): MDDR with some of its settings changed, or
a baseline of Table 1 (`mddr_utils.baselines`). The chapters run these rows, and so does
`python -m mddr_utils table`, which can spread them over processes (`runs.run_tables`) and saves
each table's files as its chapter does (`save_table_files`). The full model (v+a+p, FAA + SEA,
DRLoss) is one run shared by all four: its saved runs are reused.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..baselines import BASELINES
from . import paper, stats, tables
from .runs import MDDR_FAMILY, VariantResult

TRAINING_COST = {MDDR_FAMILY: 1.0, "concatenation + LSTM": 1.0, "mean pooling + MLP": 0.25, "visual attention": 0.2,
                 "training mean": 0.02}
"""The time of one training run relative to the full MDDR's, to balance the processes' shares.
Measured over 3 epochs in the demo profile on one CPU thread: the LSTM, stepping through every
video, costs about as much as MDDR; the pooling baselines a fifth to a quarter; the training mean
is not trained. MDDR's variants (one modality, one attention) took half to all of the full model's
time and count as a full one."""


@dataclass(frozen=True)
class Row:
    """One row of a table: its name, the model family, and the settings it changes from the profile's."""

    name: str
    family: str = MDDR_FAMILY
    model_overrides: dict | None = None
    train_overrides: dict | None = None

    @property
    def cost(self) -> float:
        """The relative time of one of its training runs (`TRAINING_COST`)."""
        return TRAINING_COST[self.family]


@dataclass(frozen=True)
class Table:
    """A table's rows, its short name (`label`), the stem of its saved files (`key`), its caption's opening
    words (`title`) and closing note, the paper's table beside it (`paper.paper_table`; None for Figure 4,
    which counts outliers) and, off AVEC, the paper's row each of ours stands for (`paper_rows`)."""

    key: str
    label: str
    title: str
    rows: tuple[Row, ...]
    note: str = ""
    paper_table: int | None = None
    paper_rows: dict | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self) -> pd.DataFrame:
        """The rows as a reader sees them: the model family and what each changes from the profile's settings."""
        return pd.DataFrame([{"family": row.family, "model changed": row.model_overrides or "",
                              "recipe changed": row.train_overrides or ""} for row in self.rows],
                            index=pd.Index([row.name for row in self.rows], name=self.label))


@dataclass(frozen=True)
class SavedTable:
    """A table as saved for the book and the tests: the JSON file, its caption, and the table as shown."""

    path: Path
    caption: str
    shown: pd.DataFrame


TABLE1 = Table("table1", "Table 1", "Table 1: MDDR and baselines beside the paper's numbers",
               (Row("MDDR (v+a+p)"), *(Row(name, family=name) for name in BASELINES)),
               paper_table=1, paper_rows=paper.TABLE1_FAMILIES)
"""MDDR beside the baselines that stand for Table 1's families of methods."""
TABLE3 = Table("table3", "Table 3", "Table 3: modalities, the paper's numbers beside ours", (
    Row("v", model_overrides={"modalities": ("visual",)}),
    Row("a", model_overrides={"modalities": ("audio",)}),
    Row("p", model_overrides={"modalities": ("head",)}),
    Row("v+a+p", model_overrides={"modalities": ("visual", "audio", "head")}),
), paper_table=3)
"""MDDR on each modality alone and on all three."""
TABLE4 = Table("table4", "Table 4", "Table 4: the dual attention, the paper's numbers beside ours", (
    Row("FAA only", model_overrides={"use_sea": False}),
    Row("SEA only", model_overrides={"use_faa": False}),
    Row("FAA + SEA"),
), "FAA only: SEA replaced by a mean over time; SEA only: FAA replaced by a mean over modalities.", paper_table=4)
"""MDDR with one attention removed (the paper's FAN and SAN), and with both."""
FIGURE4 = Table("figure4", "Figure 4", "Figure 4: category outliers with DRLoss and with Huber",
                (Row("DRLoss"), Row("Huber", train_overrides={"loss": "huber"})))
"""MDDR trained with DRLoss and with the Huber loss inside it."""
TABLES = {"1": TABLE1, "3": TABLE3, "4": TABLE4, "figure4": FIGURE4}
"""The tables by the name `python -m mddr_utils table --table` takes. Table 2 is not here: its rows
differ in the visual backbone, so each has its own features (`sources.load_with_visual_weights`)."""


def save_table_files(table: Table, results: Sequence[VariantResult], dataset: str, dataset_label: str, profile: str,
                     seeds: Sequence[int], cohort, results_dir: str | Path) -> SavedTable:
    """The table's files (`tables.save_table`): our numbers beside the paper's (Figure 4: the category
    outliers beside MAE and RMSE) under `results_dir/<key>_<dataset>_<profile>`, with the caption."""
    summary = stats.summarise(results)
    caption = tables.caption(table.title, dataset_label, profile, seeds, table.note, cohort=cohort)
    stem = tables.table_stem(table.key, dataset, profile)
    details = dict(dataset=dataset_label, profile=profile, seeds=list(seeds))
    if table.paper_table is None:
        outliers = tables.outlier_summary(results).join(summary[["mae", "mae_std", "rmse", "rmse_std"]])
        path = tables.save_table(stem, results_dir, caption, outliers.rename_axis("loss"), **details,
                                 paper_outliers=paper.PAPER_OUTLIERS, cohort=cohort)
        return SavedTable(path, caption, outliers)
    paper_rows = None if dataset.startswith("avec") else table.paper_rows
    shown = tables.comparison_table(summary, paper.paper_table(table.paper_table), dataset, paper_rows)
    return SavedTable(tables.save_table(stem, results_dir, caption, summary, shown, cohort=cohort, **details),
                      caption, shown)
