"""MDDR: feature alignment and aggregation (FAA, section 3.3), sequence encoding and
aggregation (SEA, section 3.4) and the regression head (section 3.1, 4.3).

Decisions the paper leaves open (the book's "Decisions" page, book/decisions.md): every modality
fused by FAA; each visual step gets the audio frames of its own time span, run through the
AL-CNN and pooled; positional encoding added to the encoder input (DETR-style as an option);
padded steps and missing modalities get zero attention weight, and so do audio frames a video
marks unusable (`VideoFeatures.audio_valid`: on DAIC-WOZ / E-DAIC, everything but the participant's speech).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

from .data.container import Batch
from .data.scales import BDI_II, scale_by_name

MODALITIES = ("visual", "audio", "head")
BDI_MAX = float(BDI_II.maximum)


@dataclass
class MDDRConfig:
    """Hyper-parameters; the defaults are the paper's (section 4.3)."""

    visual_dim: int = 2048
    audio_dim: int = 1024
    head_dim: int = 12
    audio_strides: tuple[int, ...] = (5, 5, 2)
    audio_kernels: tuple[int, ...] = (10, 5, 3)
    audio_filters: tuple[int, ...] = (128, 256, 512)
    head_filters: int = 512
    num_layers: int = 6
    num_heads: int = 8
    ffn_dim: int = 2048
    dropout: float = 0.1
    attention_dropout: float = 0.1
    attention_hidden: int = 128
    head_hidden: int = 128
    modalities: tuple[str, ...] = MODALITIES
    use_faa: bool = True
    use_sea: bool = True
    positional_encoding: str = "input"
    label_scale: str = "BDI-II"

    def __post_init__(self) -> None:
        self.label_scale = scale_by_name(self.label_scale).name
        self.audio_strides = tuple(self.audio_strides)
        self.audio_kernels = tuple(self.audio_kernels)
        self.audio_filters = tuple(self.audio_filters)
        self.modalities = tuple(self.modalities)
        if not self.modalities or set(self.modalities) - set(MODALITIES):
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        if not len(self.audio_strides) == len(self.audio_kernels) == len(self.audio_filters):
            raise ValueError("audio_strides, audio_kernels and audio_filters must have the same length")
        if self.head_filters != self.model_dim:
            raise ValueError(f"head_filters ({self.head_filters}) must equal D = audio_filters[-1] ({self.model_dim})")
        if self.positional_encoding not in ("input", "attention", "none"):
            raise ValueError("positional_encoding must be 'input', 'attention' (DETR style) or 'none'")
        if self.model_dim % self.num_heads:
            raise ValueError(f"D = {self.model_dim} is not divisible by num_heads = {self.num_heads}")

    @property
    def model_dim(self) -> int:
        """D: the AL-CNN's last filter count, shared by every aligned modality."""
        return self.audio_filters[-1]

    def to_dict(self) -> dict:
        """Plain types, for JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict, source: str = "model config") -> "MDDRConfig":
        """The config `to_dict` wrote; a field it lacks (an older version's dict) gets its default, an unknown one is an error naming `source`."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{source}: fields this MDDRConfig does not have: {', '.join(unknown)}")
        return cls(**values)


def audio_windows(times: torch.Tensor, mask: torch.Tensor, audio_lengths: torch.Tensor, rate: float):
    """Audio frame span [start, start + length) of each visual step.

    Step t owns the time from halfway after the previous sampled frame to halfway before the
    next one (the first and last steps extend symmetrically; a video of one step owns all of
    its audio), so the windows tile the audio track without overlap.
    """
    size, steps = mask.shape
    start = torch.zeros(size, steps, dtype=torch.long)
    length = torch.zeros(size, steps, dtype=torch.long)
    times, mask, audio_lengths = times.cpu().double(), mask.cpu(), audio_lengths.cpu()
    for row in range(size):
        n = int(mask[row].sum())
        available = int(audio_lengths[row])
        t = times[row, :n]
        if n == 1:
            edges = torch.tensor([0.0, available / rate], dtype=torch.float64)
        else:
            middle = (t[1:] + t[:-1]) / 2
            first = t[0] - (middle[0] - t[0])
            last = t[-1] + (t[-1] - middle[-1])
            edges = torch.cat([first.reshape(1), middle, last.reshape(1)])
        frames = torch.round(edges * rate).long().clamp(0, available)
        lo, hi = frames[:-1], torch.maximum(frames[1:], frames[:-1] + 1).clamp(max=available)
        start[row, :n] = lo
        length[row, :n] = (hi - lo).clamp(min=0)
    return start.to(mask.device), length.to(mask.device)


def _conv_output_length(length: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    return (length + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1


class AudioAlignment(nn.Module):
    """AL-CNN: three strided Conv1d over each step's audio window, then a masked mean (section 3.3).

    Audio frames the batch marks unusable (`Batch.audio_valid`, e.g. the interviewer's turns) enter
    the convolutions as zeros, and an output position counts in the mean only if its kernel saw a
    usable frame; a step whose window has none has no audio (FAA then gives audio no weight there).
    With every frame usable this is the plain masked mean over the window's real frames.
    """

    def __init__(self, config: MDDRConfig):
        super().__init__()
        channels = (config.audio_dim,) + config.audio_filters
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2)
            for c_in, c_out, kernel, stride in zip(channels[:-1], channels[1:], config.audio_kernels, config.audio_strides)
        )
        self.norm = nn.LayerNorm(config.model_dim)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Aligned audio [B, L, D] and whether each step has audio [B, L]."""
        start, length = audio_windows(batch.times, batch.mask, batch.audio_lengths, batch.audio_rate)
        start, length = start.to(batch.audio.device), length.to(batch.audio.device)
        has_audio = batch.mask & (length > 0)
        size, steps = batch.mask.shape
        out = batch.audio.new_zeros(size, steps, self.norm.normalized_shape[0])
        if not has_audio.any():
            return out, has_audio
        rows, cols = has_audio.nonzero(as_tuple=True)
        width = int(length.max())
        offsets = torch.arange(width, device=batch.audio.device)
        index = (start[rows, cols, None] + offsets).clamp(max=batch.audio.shape[1] - 1)
        valid_length = length[rows, cols]
        usable = offsets < valid_length[:, None]
        if batch.audio_valid is not None:
            usable = usable & batch.audio_valid[rows[:, None], index]
        windows = batch.audio[rows[:, None], index]
        windows = windows * usable.unsqueeze(-1).to(windows.dtype)
        x = windows.transpose(1, 2)
        for conv in self.convs:
            x = torch.relu(conv(x))
            valid_length = _conv_output_length(valid_length, conv)
            keep = torch.arange(x.shape[-1], device=x.device) < valid_length[:, None]
            heard = F.max_pool1d(usable[:, None].float(), conv.kernel_size[0], conv.stride[0], conv.padding[0])[:, 0]
            usable = keep & (heard > 0)
            x = x * usable.unsqueeze(1).to(x.dtype)
        counted = usable.sum(-1)
        pooled = x.sum(-1) / counted.clamp(min=1)[:, None].to(x.dtype)
        some = counted > 0
        out[rows, cols] = (self.norm(pooled) * some[:, None].to(pooled.dtype)).to(out.dtype)
        has_audio[rows, cols] = some
        return out, has_audio


class HeadAlignment(nn.Module):
    """Head pose and gaze: Conv1d with kernel 1, stride 1, 512 filters (section 4.3)."""

    def __init__(self, config: MDDRConfig):
        super().__init__()
        self.conv = nn.Conv1d(config.head_dim, config.head_filters, kernel_size=1, stride=1)
        self.norm = nn.LayerNorm(config.model_dim)

    def forward(self, head: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.relu(self.conv(head.transpose(1, 2))).transpose(1, 2))


class VisualAlignment(nn.Module):
    """Visual: a linear map 2048 -> D (book/decisions.md, "decision-visual-alignment")."""

    def __init__(self, config: MDDRConfig):
        super().__init__()
        self.linear = nn.Linear(config.visual_dim, config.model_dim)
        self.norm = nn.LayerNorm(config.model_dim)

    def forward(self, visual: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(visual))


class AttentionPooling(nn.Module):
    """Shared MLP scores each item, softmax over the pooled axis, weighted sum (equation 1; Figure 3)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, available: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool `x` over axis `dim` (the feature axis is last); unavailable items get weight 0."""
        logits = self.score(x).squeeze(-1).float().masked_fill(~available, float("-inf"))
        weights = torch.softmax(logits, dim=dim).nan_to_num(0.0)
        pooled = (weights.unsqueeze(-1).to(x.dtype) * x).sum(dim=dim)
        return pooled, weights


def masked_mean(x: torch.Tensor, available: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unweighted mean over available items of axis `dim`; the ablations' replacement for attention."""
    weights = available.float() / available.float().sum(dim=dim, keepdim=True).clamp(min=1)
    return (weights.unsqueeze(-1).to(x.dtype) * x).sum(dim=dim), weights


def sinusoidal_encoding(steps: int, dim: int, device: torch.device) -> torch.Tensor:
    """The transformer's sine/cosine positional encoding [steps, dim] (Vaswani et al., 2017)."""
    position = torch.arange(steps, device=device, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    encoding = torch.zeros(steps, dim, device=device)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency)
    return encoding


class EncoderBlock(nn.Module):
    """Multi-head attention, residual + LayerNorm, feed-forward, residual + LayerNorm (section 3.4)."""

    def __init__(self, config: MDDRConfig):
        super().__init__()
        dim = config.model_dim
        self.attention = nn.MultiheadAttention(dim, config.num_heads, dropout=config.attention_dropout, batch_first=True)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, config.ffn_dim), nn.ReLU(), nn.Dropout(config.dropout), nn.Linear(config.ffn_dim, dim)
        )
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, position: torch.Tensor | None) -> torch.Tensor:
        query = x if position is None else x + position
        attended, _ = self.attention(query, query, x, key_padding_mask=padding, need_weights=False)
        x = self.norm1(x + self.dropout(attended))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class SequenceEncoder(nn.Module):
    """Positional encoding, then `num_layers` encoder blocks: F [B, L, D] -> O [B, L, D]."""

    def __init__(self, config: MDDRConfig):
        super().__init__()
        self.style = config.positional_encoding
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        encoding = sinusoidal_encoding(x.shape[1], x.shape[2], x.device).to(x.dtype)
        if self.style == "input":
            x = x + encoding
        position = encoding if self.style == "attention" else None
        for block in self.blocks:
            x = block(x, ~mask, position)
        return x


class MDDR(nn.Module):
    """The whole model: `model(batch)` gives a score per video on `config.label_scale` (BDI-II by default),
    clamped to the scale's range (BDI-II 0-63, PHQ-8 0-24) in eval mode."""

    def __init__(self, config: MDDRConfig | None = None):
        super().__init__()
        self.config = config or MDDRConfig()
        self.scale = scale_by_name(self.config.label_scale)
        dim = self.config.model_dim
        self.align = nn.ModuleDict()
        for name, module in (("visual", VisualAlignment), ("audio", AudioAlignment), ("head", HeadAlignment)):
            if name in self.config.modalities:
                self.align[name] = module(self.config)
        self.modality_attention = AttentionPooling(dim, self.config.attention_hidden) if self.config.use_faa else None
        self.encoder = SequenceEncoder(self.config) if self.config.use_sea else None
        self.temporal_attention = AttentionPooling(dim, self.config.attention_hidden) if self.config.use_sea else None
        self.regressor = nn.Sequential(nn.Linear(dim, self.config.head_hidden), nn.ReLU(), nn.Linear(self.config.head_hidden, 1))

    def init_output_bias(self, score: float) -> None:
        """Start predictions at `score` (for example the training mean) instead of 0."""
        with torch.no_grad():
            self.regressor[-1].bias.fill_(score)

    def stack_modalities(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """FAA alignment: X [B, L, M, D] and which modality is available at each step [B, L, M]."""
        streams, available = [], []
        for name in self.config.modalities:
            if name == "visual":
                streams.append(self.align["visual"](batch.visual))
                available.append(batch.mask & batch.visual_valid)
            elif name == "audio":
                aligned, has_audio = self.align["audio"](batch)
                streams.append(aligned)
                available.append(has_audio)
            else:
                streams.append(self.align["head"](batch.head))
                available.append(batch.mask & batch.head_valid)
        return torch.stack(streams, dim=2), torch.stack(available, dim=2)

    def forward(self, batch: Batch, return_attention: bool = False):
        """Scores [B]; with `return_attention`, also FAA weights [B, L, M] and SEA weights [B, L]."""
        stacked, available = self.stack_modalities(batch)
        if self.modality_attention is not None:
            fused, modality_weights = self.modality_attention(stacked, available, dim=2)
        else:
            fused, modality_weights = masked_mean(stacked, available, dim=2)
        if self.encoder is not None:
            encoded = self.encoder(fused, batch.mask)
            summary, temporal_weights = self.temporal_attention(encoded, batch.mask, dim=1)
        else:
            summary, temporal_weights = masked_mean(fused, batch.mask, dim=1)
        scores = self.regressor(summary).squeeze(-1).float()
        if not self.training:
            scores = self.scale.clamp(scores)
        if return_attention:
            return scores, {"modality": modality_weights, "temporal": temporal_weights}
        return scores
