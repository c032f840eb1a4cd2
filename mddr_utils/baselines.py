"""Simple baselines standing for the method families of Table 1 (paper sections 4.4, 5.1).

The paper compares MDDR with published numbers of other methods on AVEC2013/2014; on any other
data those numbers do not apply. To compare on the same data, these baselines are trained and
evaluated by the same protocol as MDDR (`mddr_utils.evaluation`), from the same pre-extracted
features, each standing for a family of Table 1:

- `TrainingMean`: every video gets the mean Training label (the floor any model must beat);
- `MeanPoolMLP`: per-frame features averaged over the whole video, then an MLP (static
  features, no temporal model, like the hand-crafted and frame-level CNN rows);
- `ConcatLSTM`: the three modalities concatenated per visual step (audio averaged over the
  step's own time span, as MDDR's alignment does), then an LSTM (Concat+LSTM, Chao et al.);
- `VisualAttention`: visual features only, attention pooling over time, then an MLP
  (ResNet + atten, Zhou et al.).

Every baseline takes a `Batch` (`mddr_utils.data.collate`), returns a score per video [B],
clamped to the BDI-II range [0, 63] in eval mode, and has `init_output_bias`, so `train.fit`
and `train.predict` handle it like MDDR.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .data.container import Batch
from .model import BDI_MAX, MODALITIES, AttentionPooling, audio_windows

BASELINE_HIDDEN = {"smoke": 8, "demo": 64, "paper": 256}
"""Hidden width per profile: as small as the profile's MDDR, so that no baseline costs more than MDDR."""


@dataclass
class BaselineConfig:
    """Which baseline, the feature sizes it reads and its width."""

    family: str
    visual_dim: int = 2048
    audio_dim: int = 1024
    head_dim: int = 12
    hidden: int = 64
    dropout: float = 0.1

    def to_dict(self) -> dict:
        """Plain types, for JSON."""
        return asdict(self)


def masked_time_mean(x: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Mean of x [B, L, D] over the steps where `available` [B, L] is True (0 where none is)."""
    weights = available.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1)


def audio_step_means(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio averaged over each visual step's own time span [B, L, Da], and where a step has audio [B, L]."""
    start, length = audio_windows(batch.times, batch.mask, batch.audio_lengths, batch.audio_rate)
    start, length = start.to(batch.audio.device), length.to(batch.audio.device)
    audio = batch.audio.float()
    running = torch.cat([audio.new_zeros(audio.shape[0], 1, audio.shape[2]), audio.cumsum(1)], dim=1)
    dims = audio.shape[2]
    end = (start + length).clamp(max=audio.shape[1])
    total = (running.gather(1, end.unsqueeze(-1).expand(-1, -1, dims))
             - running.gather(1, start.unsqueeze(-1).expand(-1, -1, dims)))
    has_audio = batch.mask & (length > 0)
    return total / length.clamp(min=1).unsqueeze(-1).to(total.dtype), has_audio


class _Baseline(nn.Module):
    """What every baseline shares: a regression MLP whose bias can start at the training mean, and the clamp."""

    needs_training = True

    def __init__(self, config: BaselineConfig, input_dim: int):
        super().__init__()
        self.config = config
        self.regressor = nn.Sequential(nn.Linear(input_dim, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
                                       nn.Linear(config.hidden, 1))

    def init_output_bias(self, score: float) -> None:
        """Start predictions at `score` (for example the training mean) instead of 0."""
        with torch.no_grad():
            self.regressor[-1].bias.fill_(score)

    def _score(self, summary: torch.Tensor) -> torch.Tensor:
        scores = self.regressor(summary).squeeze(-1).float()
        return scores if self.training else scores.clamp(0.0, BDI_MAX)


class TrainingMean(nn.Module):
    """Predicts one number for everyone: the mean Training label, set by `init_output_bias`."""

    needs_training = False

    def __init__(self, config: BaselineConfig | None = None):
        super().__init__()
        self.config = config or BaselineConfig("training mean")
        self.register_buffer("mean", torch.zeros(()))

    def init_output_bias(self, score: float) -> None:
        """Set the constant prediction."""
        self.mean.fill_(score)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.mean.clamp(0.0, BDI_MAX).expand(len(batch)).float()


class MeanPoolMLP(_Baseline):
    """Each modality averaged over the video (audio over its whole track), concatenated, then an MLP."""

    def __init__(self, config: BaselineConfig):
        dims = {"visual": config.visual_dim, "audio": config.audio_dim, "head": config.head_dim}
        super().__init__(config, sum(dims.values()))
        self.norms = nn.ModuleDict({name: nn.LayerNorm(dim) for name, dim in dims.items()})

    def forward(self, batch: Batch) -> torch.Tensor:
        audio_steps = torch.arange(batch.audio.shape[1], device=batch.audio.device)
        pooled = {
            "visual": masked_time_mean(batch.visual, batch.mask & batch.visual_valid),
            "audio": masked_time_mean(batch.audio, audio_steps < batch.audio_lengths[:, None]),
            "head": masked_time_mean(batch.head, batch.mask & batch.head_valid),
        }
        return self._score(torch.cat([self.norms[name](pooled[name]) for name in MODALITIES], dim=-1))


class ConcatLSTM(_Baseline):
    """Visual, step-averaged audio and head concatenated per step, an LSTM, its last state, then an MLP."""

    def __init__(self, config: BaselineConfig):
        super().__init__(config, config.hidden)
        dims = {"visual": config.visual_dim, "audio": config.audio_dim, "head": config.head_dim}
        self.norms = nn.ModuleDict({name: nn.LayerNorm(dim) for name, dim in dims.items()})
        self.project = nn.Sequential(nn.Linear(sum(dims.values()), config.hidden), nn.ReLU())
        self.lstm = nn.LSTM(config.hidden, config.hidden, batch_first=True)

    def forward(self, batch: Batch) -> torch.Tensor:
        audio, has_audio = audio_step_means(batch)
        steps = {
            "visual": self.norms["visual"](batch.visual) * (batch.mask & batch.visual_valid).unsqueeze(-1),
            "audio": self.norms["audio"](audio.to(batch.visual.dtype)) * has_audio.unsqueeze(-1),
            "head": self.norms["head"](batch.head) * (batch.mask & batch.head_valid).unsqueeze(-1),
        }
        x = self.project(torch.cat([steps[name] for name in MODALITIES], dim=-1))
        lengths = batch.mask.sum(1).clamp(min=1).cpu()
        # A recurrent step is a tiny matrix product: reduced precision does not pay there, and on a
        # busy 2-core CPU the bfloat16 LSTM ran 12 times slower than in float32.
        with torch.autocast(device_type=x.device.type, enabled=False):
            packed = nn.utils.rnn.pack_padded_sequence(x.float(), lengths, batch_first=True, enforce_sorted=False)
            _, (last, _) = self.lstm(packed)
        return self._score(last[-1])


class VisualAttention(_Baseline):
    """Visual features only: a projection, attention pooling over time (padding masked), then an MLP."""

    def __init__(self, config: BaselineConfig):
        super().__init__(config, config.hidden)
        self.project = nn.Sequential(nn.LayerNorm(config.visual_dim), nn.Linear(config.visual_dim, config.hidden),
                                     nn.ReLU())
        self.pool = AttentionPooling(config.hidden, max(config.hidden // 2, 1))

    def forward(self, batch: Batch) -> torch.Tensor:
        pooled, _ = self.pool(self.project(batch.visual), batch.mask & batch.visual_valid, dim=1)
        return self._score(pooled)


BASELINES = {
    "training mean": TrainingMean,
    "mean pooling + MLP": MeanPoolMLP,
    "concatenation + LSTM": ConcatLSTM,
    "visual attention": VisualAttention,
}
"""Baseline families by name, in the order Table 1's notebook shows them."""


def make_baseline(family: str, feature_dims: dict, profile: str = "demo") -> nn.Module:
    """A fresh baseline of `family` for features of `feature_dims`, as wide as `profile` sizes it."""
    if family not in BASELINES:
        raise ValueError(f"unknown baseline {family!r}: use one of {list(BASELINES)}")
    if profile not in BASELINE_HIDDEN:
        raise ValueError(f"unknown profile {profile!r}: use one of {sorted(BASELINE_HIDDEN)}")
    config = BaselineConfig(family, **feature_dims, hidden=BASELINE_HIDDEN[profile])
    return BASELINES[family](config)
