"""Shared tiny fixtures: every test runs offline in seconds on 2 CPU cores."""
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(2)

from mddr_utils.data import VideoFeatures  # noqa: E402
from mddr_utils.model import MDDRConfig  # noqa: E402

TINY_DIMS = dict(visual_dim=16, audio_dim=8, head_dim=12)


@pytest.fixture
def tiny_config() -> MDDRConfig:
    """An MDDR small enough to run a batch in milliseconds."""
    return MDDRConfig(**TINY_DIMS, audio_filters=(4, 8, 8), head_filters=8, num_layers=2, num_heads=2,
                      ffn_dim=16, attention_hidden=4, head_hidden=4, dropout=0.0)


def make_video(video_id: str, steps: int, seed: int = 0, label: float = 10.0, gap: float = 25 / 30) -> VideoFeatures:
    """Random features for a video of `steps` sampled frames, `gap` seconds apart."""
    rng = np.random.default_rng(seed)
    audio_frames = int(np.ceil(steps * gap * 50))
    return VideoFeatures(
        video_id=video_id, label=label, subject=video_id.split("_")[0], task="Freeform", split="Training",
        times=np.arange(steps) * gap,
        visual=rng.standard_normal((steps, TINY_DIMS["visual_dim"])),
        head=rng.standard_normal((steps, TINY_DIMS["head_dim"])),
        audio=rng.standard_normal((audio_frames, TINY_DIMS["audio_dim"])),
    )


@pytest.fixture
def videos() -> list[VideoFeatures]:
    """Three videos of different lengths, so that a batch of them needs padding."""
    return [make_video("201_1", 7, seed=1, label=5), make_video("202_1", 12, seed=2, label=20),
            make_video("203_2", 4, seed=3, label=40)]
