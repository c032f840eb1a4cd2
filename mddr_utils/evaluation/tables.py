"""The tables as a reader sees them (section 5): the paper's numbers beside ours, captions that name
the data, the split, the seeds and the profile, and the files the book and the tests read."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from .. import train as training
from .. import versioning
from .paper import DATASET_COLUMNS, PAPER_OUTLIERS
from .stats import outlier_counts

if TYPE_CHECKING:
    from .runs import VariantResult


DATA_NAMES = {"avec2013": "AVEC2013", "avec2014": "AVEC2014", "daicwoz": "DAIC-WOZ", "edaic": "E-DAIC"}
"""The licensed corpora by their published names."""


def data_label(dataset: str, data_root=None) -> str:
    """A short name of the data for a column header: a licensed corpus by name (a DAIC dataset without a
    `data_root` is the book's synthetic tree), anything else marked synthetic."""
    if dataset.startswith("avec") or (dataset in DATA_NAMES and data_root is not None):
        return DATA_NAMES.get(dataset, dataset.upper())
    if dataset in DATA_NAMES:
        return f"synthetic {DATA_NAMES[dataset]} tree"
    return f"{dataset} cohort (synthetic)"


def table_stem(name: str, dataset: str, profile: str) -> str:
    """The file stem under which a table is saved, e.g. table3_simulation_demo."""
    return f"{name}_{dataset}_{profile}"


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "not computed"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as a reader sees it: mean ± std, the 95% interval, per recording, and why a row is missing."""
    shown = pd.DataFrame(index=summary.index)
    for metric, label in (("mae", "MAE"), ("rmse", "RMSE"), ("recording_mae", "MAE per recording"),
                          ("recording_rmse", "RMSE per recording")):
        shown[label] = [_mean_std(m, s) for m, s in zip(summary[metric], summary[f"{metric}_std"])]
        if not metric.startswith("recording"):
            shown[f"{label} 95% CI"] = ["" if math.isnan(lo) else f"[{lo:.2f}, {hi:.2f}]"
                                        for lo, hi in zip(summary[f"{metric}_low"], summary[f"{metric}_high"])]
    shown["seeds"] = summary["seeds"]
    if (summary["status"] != "computed").any():
        shown["why not computed"] = summary["reason"]
    shown.index.name = None
    return shown


def _paper_text(value: float) -> str:
    return "\\" if math.isnan(value) else f"{value:.2f}"


def comparison_table(ours: pd.DataFrame, paper: pd.DataFrame, dataset: str, paper_rows: dict | None = None) -> pd.DataFrame:
    """The paper's numbers beside ours (from `summarise`); ours sit in an AVEC column only when computed on it.

    On AVEC2013/2014 (`dataset`), our MAE and RMSE (mean ± std over seeds) go beside the paper's
    for that dataset. On any other data they get their own columns headed by the data's name
    (`data_label`), so that no synthetic number can be read as an AVEC one. Rows are matched by name, or through
    `paper_rows` (our row -> the paper's row it stands for), in which case only our rows are
    listed; a row only one side has shows "—" on the other.
    """
    if paper_rows is None:
        names = list(dict.fromkeys(list(paper.index) + list(ours.index)))
        paper_of = {name: name for name in names}
    else:
        names = list(ours.index)
        paper_of = {name: paper_rows.get(name) for name in names}
    columns = {}
    if paper_rows is not None:
        columns[("paper's row", "")] = [paper_of[name] or "—" for name in names]
    avec = dataset.upper() if dataset.upper() in DATASET_COLUMNS else ""
    for column in DATASET_COLUMNS:
        if avec and column != avec:
            continue
        for metric in ("MAE", "RMSE"):
            columns[(f"paper, {column}", metric)] = [
                _paper_text(paper.at[paper_of[n], (column, metric)]) if paper_of[n] in paper.index else "—"
                for n in names]
    header = f"ours, {data_label(dataset)}"
    for metric, label in (("mae", "MAE"), ("rmse", "RMSE")):
        columns[(header, label)] = [_mean_std(ours.at[n, metric], ours.at[n, f"{metric}_std"]) if n in ours.index
                                    else "—" for n in names]
    table = pd.DataFrame(columns, index=names)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def video_counts(cohort) -> tuple[int, int]:
    """How many videos a cohort uses and how many of its data's videos were left out (`Cohort.left_out`)."""
    return len(cohort), len(cohort.left_out)


def caption(what: str, dataset_label: str, profile: str, seeds: Sequence[int], extra: str = "",
            cohort=None) -> str:
    """A table's caption: what it shows, the data (with the videos used and left out, given the cohort),
    the split, the seeds and the profile."""
    data = dataset_label
    if cohort is not None:
        used, left_out = video_counts(cohort)
        data += f"; {used} videos used" + (f", {left_out} left out (see chapter 02)" if left_out else "")
    text = (f"{what}. Data: {data}. Trained on Training, checkpoint selected on Development, "
            f"evaluated once on Testing; MAE and RMSE over all Testing videos, mean ± std over seeds "
            f"{', '.join(map(str, seeds))}; 95% bootstrap intervals resample Testing recordings; profile {profile}.")
    return f"{text} {extra}".strip()


def save_table(stem: str, results_dir: str | Path, caption_text: str, summary: pd.DataFrame | None = None,
               shown: pd.DataFrame | None = None, cohort=None, **details) -> Path:
    """Save a table for the book and the tests: `<stem>.csv` (numbers) and `<stem>.json` (caption, numbers,
    as shown, the code version and, given the cohort, its key and the videos used and left out)."""
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if summary is not None:
        summary.to_csv(folder / f"{stem}.csv")
    flat = shown.copy() if shown is not None else None
    if flat is not None and isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [" | ".join(map(str, column)) for column in flat.columns]
    provenance = {"code": versioning.code_digest()}
    if cohort is not None:
        used, left_out = video_counts(cohort)
        provenance.update(data_key=training.cohort_key(cohort), videos_used=used, videos_left_out=left_out)
    payload = {"caption": caption_text, **provenance, **details,
               "rows": summary.reset_index().to_dict("records") if summary is not None else [],
               "shown": flat.reset_index().to_dict("records") if flat is not None else []}
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(payload, indent=1, default=json_number))
    return path


def outlier_summary(results: Sequence[VariantResult]) -> pd.DataFrame:
    """Per loss: category outliers on Testing, mean ± std over seeds, their share, and the paper's count."""
    counts = outlier_counts(results)
    summary = counts.groupby("loss", sort=False).agg(outliers=("outliers", "mean"), std=("outliers", "std"),
                                                     videos=("videos", "first"))
    summary["share"] = summary["outliers"] / summary["videos"]
    summary["paper (AVEC2014)"] = pd.Series(PAPER_OUTLIERS).reindex(summary.index)
    return summary


def json_number(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)
