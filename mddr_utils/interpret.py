"""What the two attentions look at (sections 3.3-3.4): per-step FAA and SEA weights of a trained
model, and how often they point at what the simulation cohort planted."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .data.container import VideoFeatures, collate
from .model import MDDR


@torch.inference_mode()
def attention_table(model: MDDR, videos: Sequence[VideoFeatures], batch: int = 16) -> pd.DataFrame:
    """One row per (video, step): time, FAA weight per modality, SEA temporal weight, and the
    planted informative modality where the video carries one (`extras["informative"]`)."""
    model = model.eval()
    device = next(model.parameters()).device
    modalities = list(model.config.modalities)
    frames = []
    for first in range(0, len(videos), batch):
        chunk = [videos[i] for i in range(first, min(first + batch, len(videos)))]
        _, attention = model(collate(chunk).to(device), return_attention=True)
        for row, video in enumerate(chunk):
            steps = video.num_steps
            frame = pd.DataFrame({"video_id": video.video_id, "step": np.arange(steps), "time_s": video.times,
                                  "label": video.label, "temporal": attention["temporal"][row, :steps].cpu().numpy()})
            for column, name in enumerate(modalities):
                frame[name] = attention["modality"][row, :steps, column].cpu().numpy()
            planted = video.extras.get("informative")
            frame["planted"] = pd.Series(planted).map({-1: "none", 0: "visual", 1: "audio", 2: "head"}).to_numpy() \
                if planted is not None else "unknown"
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def modality_agreement(table: pd.DataFrame, modalities: Sequence[str]) -> pd.DataFrame:
    """Per planted modality: mean FAA weight on each modality, and how often the largest weight
    falls on the planted one (chance: 1 / number of modalities)."""
    informative = table[table["planted"].isin(modalities)]
    summary = informative.groupby("planted")[list(modalities)].mean()
    picked = informative[list(modalities)].idxmax(axis=1)
    summary["top weight on planted"] = (picked == informative["planted"]).groupby(informative["planted"]).mean()
    summary["steps"] = informative.groupby("planted").size()
    return summary


def temporal_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Per video: share of SEA's temporal weight on informative steps, against their share of time."""
    informative = table["planted"].isin(["visual", "audio", "head"])
    grouped = table.assign(on_informative=table["temporal"] * informative, informative=informative).groupby("video_id")
    return pd.DataFrame({"weight on informative steps": grouped["on_informative"].sum(),
                         "share of informative steps": grouped["informative"].mean()})


def time_reversed(video: VideoFeatures) -> VideoFeatures:
    """The same video played backwards: every modality's steps reversed, the timeline kept."""
    return replace(video, visual=video.visual[::-1].copy(), head=video.head[::-1].copy(),
                   audio=video.audio[::-1].copy(), visual_valid=video.visual_valid[::-1].copy(),
                   head_valid=video.head_valid[::-1].copy(), extras={})
