"""Figures of the feature chapters (paper section 3.2): face crops, feature maps, head pose and gaze over time."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .head import MODEL_LANDMARKS, gaze_angles

if TYPE_CHECKING:
    from .pipeline import StoredModality


def face_strip(times: np.ndarray, crops: np.ndarray, found: np.ndarray, title: str = "") -> Figure:
    """Face crops side by side, each titled with its time; a frame without a face is marked."""
    count = len(times)
    fig, axes = plt.subplots(1, count, figsize=(1.5 * count, 1.9), squeeze=False)
    for ax, seconds, crop, has_face in zip(axes[0], times, crops, found):
        ax.imshow(crop)
        ax.set_title(f"{seconds:.2f} s" if has_face else f"{seconds:.2f} s: no face", fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def landmarks_and_gaze(frame: np.ndarray, landmarks: np.ndarray | None, features: np.ndarray, title: str = "",
                       arrow_pixels: float = 200.0) -> Figure:
    """A frame with the rigid landmarks the head pose is fitted to and an arrow per eye along its gaze.

    Each arrow is the image-plane part of the unit gaze vector, `arrow_pixels` long for a gaze
    perpendicular to the camera axis.
    """
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.imshow(frame)
    if landmarks is not None:
        ax.plot(*landmarks[MODEL_LANDMARKS].T, ".", color="yellow", markersize=3, label="rigid landmarks")
        irises = sorted([landmarks[468], landmarks[473]], key=lambda point: point[0])
        for iris, gaze in zip(irises, (features[6:9], features[9:12])):
            ax.arrow(*iris, *(arrow_pixels * gaze[:2]), color="cyan", width=1.0)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return fig


def principal_components(videos: Sequence[StoredModality], count: int = 2,
                         seed: int = 0) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """A projection of [steps, dims] features onto the first `count` principal axes of the videos' valid steps.

    Randomised PCA (torch.pca_lowrank), so that it stays fast on AVEC's 40 000 frames; returns
    the projection and the share of variance each axis explains.
    """
    rows = [video.features[video.valid] for video in videos]
    stacked = torch.from_numpy(np.concatenate(rows).astype(np.float32))
    mean = stacked.mean(dim=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, singular, axes = torch.pca_lowrank(stacked - mean, q=min(count + 8, *stacked.shape), center=False)
    explained = (singular[:count] ** 2 / ((stacked - mean) ** 2).sum()).numpy()
    projection = axes[:, :count].numpy()
    mean = mean.numpy()
    return (lambda features: (np.asarray(features, np.float32) - mean) @ projection), explained


def feature_components_over_time(videos: Sequence[StoredModality], reference: Sequence[StoredModality],
                                 count: int = 2) -> Figure:
    """The first principal components (fitted on `reference`) of each video's features over time, one panel each."""
    project, explained = principal_components(reference, count)
    fig, axes = plt.subplots(1, len(videos), figsize=(4.5 * len(videos), 2.8), sharey=True, squeeze=False)
    for ax, video in zip(axes[0], videos):
        valid = video.valid
        components = project(video.features)
        for index in range(count):
            ax.plot(video.times[valid], components[valid, index], marker=".", lw=1,
                    label=f"PC{index + 1} ({explained[index]:.0%} of variance)")
        if (~valid).any():
            ax.plot(video.times[~valid], np.zeros(int((~valid).sum())), "x", color="red",
                    label="no face" if video.modality == "visual" else "not available")
        ax.set_title(f"{video.video_id}, BDI-II {video.label:.0f}", fontsize=9)
        ax.set_xlabel("time in the video (s)")
    axes[0, 0].set_ylabel(f"{videos[0].modality} feature, projected")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def waveform_and_features(waveform: np.ndarray, sample_rate: int, features: np.ndarray, frame_rate: float,
                          seconds: float | None = None, title: str = "") -> Figure:
    """The waveform (top) and the acoustic features over time (bottom), on one time axis.

    Each feature dimension is standardised over the recording (z-scores): a dimension's constant
    offset would otherwise hide how it changes with time.
    """
    seconds = seconds or len(waveform) / sample_rate
    samples = waveform[: int(seconds * sample_rate)]
    spread = features.std(axis=0)
    standardised = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    frames = standardised[: int(seconds * frame_rate)]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    top.plot(np.arange(len(samples)) / sample_rate, samples, lw=0.4, color="tab:orange")
    top.set_ylabel("amplitude")
    top.set_title(title, fontsize=9)
    image = bottom.imshow(frames.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-3, vmax=3,
                          extent=(0, len(frames) / frame_rate, 0, frames.shape[1]), interpolation="nearest")
    bottom.set_ylabel("feature dimension")
    bottom.set_xlabel("time (s); one feature column per 20 ms")
    fig.colorbar(image, ax=[top, bottom], label="z-score over the recording", fraction=0.03, pad=0.01)
    return fig


def head_traces(videos: Sequence[StoredModality]) -> Figure:
    """Head rotation (degrees), translation (mm) and gaze angles (degrees) over time, one colour per video."""
    fig, axes = plt.subplots(3, 3, figsize=(11, 6.5), sharex="col")
    names = (("pitch Rx", "yaw Ry", "roll Rz"), ("Tx", "Ty", "Tz"), ("gaze angle x", "gaze angle y", None))
    for video, colour in zip(videos, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
        valid = video.valid
        t = video.times[valid]
        rotation = np.degrees(video.features[valid, 3:6])
        translation = video.features[valid, 0:3]
        gaze = np.degrees(gaze_angles(video.features[valid]))
        label = f"{video.video_id} (BDI-II {video.label:.0f})"
        for column in range(3):
            axes[0, column].plot(t, rotation[:, column], marker=".", lw=1, color=colour, label=label)
            axes[1, column].plot(t, translation[:, column], marker=".", lw=1, color=colour)
        for column in range(2):
            axes[2, column].plot(t, gaze[:, column], marker=".", lw=1, color=colour)
    for row, unit in enumerate(("degrees", "mm", "degrees")):
        for column, name in enumerate(names[row]):
            if name is None:
                axes[row, column].axis("off")
                continue
            axes[row, column].set_title(name, fontsize=9)
            axes[row, column].set_ylabel(unit)
    for ax in (axes[2, 0], axes[2, 1], axes[1, 2]):
        ax.set_xlabel("time in the video (s)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
