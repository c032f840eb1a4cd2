"""Figures shared by several chapters: attention over time, learning curves, predicted vs true."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data.scales import BDI_II, LabelScale

MODALITY_COLOURS = {"visual": "tab:blue", "audio": "tab:orange", "head": "tab:green"}
CATEGORY_MARKERS = ("o", "^", "s", "D", "v")
CATEGORY_COLOURS = ("0.6", "tab:green", "goldenrod", "tab:blue", "tab:purple")


def attention_over_time(times: np.ndarray, modality_weights: np.ndarray, modalities, temporal_weights=None,
                        informative: np.ndarray | None = None, title: str = ""):
    """FAA weights per modality (stacked), SEA's temporal weight, and the planted truth as a strip."""
    panels = (["planted"] if informative is not None else []) + ["faa"] + (["sea"] if temporal_weights is not None else [])
    heights = {"planted": 0.35, "faa": 1.0, "sea": 1.0}
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.6 + 1.8 * sum(heights[p] for p in panels)), sharex=True,
                             gridspec_kw={"height_ratios": [heights[p] for p in panels]}, squeeze=False)
    axes = dict(zip(panels, axes[:, 0]))
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    if informative is not None:
        strip = axes["planted"]
        for code, name in enumerate(("visual", "audio", "head")):
            for t in times[np.asarray(informative) == code]:
                strip.axvspan(t - step / 2, t + step / 2, color=MODALITY_COLOURS[name], lw=0)
        strip.set_yticks([])
        strip.set_ylabel("planted", rotation=0, ha="right", va="center")
    faa = axes["faa"]
    faa.stackplot(times, np.asarray(modality_weights).T, labels=list(modalities),
                  colors=[MODALITY_COLOURS[m] for m in modalities], alpha=0.85)
    faa.set_ylabel("FAA weight")
    faa.set_ylim(0, 1)
    faa.legend(loc="upper right", fontsize=8, ncol=len(modalities), framealpha=0.9)
    axes[panels[0]].set_title(title)
    if temporal_weights is not None:
        axes["sea"].plot(times, temporal_weights, color="black", lw=1)
        axes["sea"].set_ylabel("SEA weight")
    axes[panels[-1]].set_xlabel("time in the video (s)")
    fig.tight_layout()
    return fig


def learning_curves(history: pd.DataFrame, best_epoch: int | None = None, baseline: dict | None = None,
                    scale: LabelScale = BDI_II):
    """Training loss and Development MAE/RMSE per epoch, in points of `scale`."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    left.plot(history["epoch"], history["train_loss"], marker=".")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    right.plot(history["epoch"], history["dev_mae"], marker=".", label="Development MAE")
    right.plot(history["epoch"], history["dev_rmse"], marker=".", label="Development RMSE")
    if baseline:
        right.axhline(baseline["mae"], color="tab:blue", ls=":", label="training-mean MAE")
        right.axhline(baseline["rmse"], color="tab:orange", ls=":", label="training-mean RMSE")
    if best_epoch is not None:
        right.axvline(best_epoch, color="0.5", ls="--", label="selected epoch")
    right.set_xlabel("epoch")
    right.set_ylabel(f"{scale.name} points")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def predicted_vs_true(predictions: pd.DataFrame, ax=None, title: str = "", scale: LabelScale = BDI_II):
    """Figure 4's scatter: one marker and colour per true category of `scale`, category outliers in red."""
    ax = ax or plt.subplots(figsize=(4.8, 4.5))[1]
    truth, pred = predictions["label"].to_numpy(float), predictions["pred"].to_numpy(float)
    category = scale.category(truth)
    outlier = scale.category(pred) != category
    for code, name in enumerate(scale.category_names):
        keep = (category == code) & ~outlier
        ax.scatter(truth[keep], pred[keep], marker=CATEGORY_MARKERS[code], c=CATEGORY_COLOURS[code],
                   edgecolors="k", linewidths=0.4, s=30, label=name)
    ax.scatter(truth[outlier], pred[outlier], marker="x", c="red", s=30, label=f"outlier ({int(outlier.sum())})")
    for edge in scale.edges:
        ax.axvline(edge, color="0.85", lw=0.8, zorder=0)
        ax.axhline(edge, color="0.85", lw=0.8, zorder=0)
    limit = max(truth.max(), pred.max(), scale.edges[-1] + 1.5) + scale.maximum / 21
    ax.plot([0, limit], [0, limit], color="0.5", lw=0.8, ls="--")
    ax.set_xlim(-1, limit)
    ax.set_ylim(-1, limit)
    ax.set_xlabel(f"true {scale.name}")
    ax.set_ylabel(f"predicted {scale.name}")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    return ax
