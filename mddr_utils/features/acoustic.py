"""Acoustic features X_a: HuBERT hidden states, 1024-d at 50 Hz (paper sections 3.2, 4.3;
book/decisions.md, "decision-hubert").

"We use the audio processing library librosa to extract audio signals from videos with a
sampling rate of 16000 Hz. We utilize speech pre-trained model to extract acoustic features,
resulting in 1024-dimensional deep representation" (section 4.3), with HuBERT [35] (section 3.2).

- Model: transformers' `HubertModel` from a hub id (default "facebook/hubert-large-ll60k") or a
  local folder written by `save_pretrained`. With `offline=True` nothing is downloaded.
- Input: 16 kHz mono, normalised per utterance to zero mean and unit variance, as
  `Wav2Vec2FeatureExtractor(do_normalize=True)` does for HuBERT-large (`normalize=False` for
  models trained on raw amplitudes, such as HuBERT-base, whose feature extractor does not normalise).
- Output: frame i covers samples [320 i, 320 i + 400), i.e. one frame per 20 ms from t = 0;
  `hubert_frame_count` gives the count from the convolution strides.
- Layer: -1 (default) is the model's output (`last_hidden_state`, which for HuBERT-large
  includes the encoder's final LayerNorm); k in 0..N is the output of transformer layer k
  (0 = the input to the first layer), as transformers 5 numbers `hidden_states`. Layers above
  k are not run.
- Long recordings (AVEC2013: 25 min) run in chunks of `chunk_seconds` with `context_seconds` of
  audio on each side that the model sees but whose frames are discarded; chunks start on the
  320-sample frame grid, so the stitched frames line up exactly with a one-pass run, and
  memory stays bounded by the chunk length. The convolutional front end is then exact; the
  transformer sees `context_seconds` instead of the whole recording, so frames differ slightly
  from a one-pass run (which at 25 min does not fit: attention grows with length squared).
  Models whose front end uses GroupNorm over time (`feat_extract_norm="group"`, e.g. HuBERT-base)
  normalise per chunk instead of per recording.

Source "random" builds HuBERT-large's layout (1024-d, same front end, 16 heads, 4096-wide
feed-forward) with only `RANDOM_LAYERS` transformer layers and random seeded weights, and
"random-large" all 24 layers. They exist so that the book runs where no pretrained weights
can be downloaded. THEIR FEATURES ARE NOT PRETRAINED HUBERT FEATURES and carry no speech
knowledge.
"""
from __future__ import annotations

import copy
import ctypes
import ctypes.util
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import autocast, pick_device

if TYPE_CHECKING:
    from transformers import HubertConfig, HubertModel

SAMPLE_RATE = 16000
HUBERT_LARGE = "facebook/hubert-large-ll60k"
RANDOM_SOURCES = ("random", "random-large")
RANDOM_LAYERS = 4
NORMALIZE_EPSILON = 1e-7


def random_hubert_config(num_layers: int = RANDOM_LAYERS) -> "HubertConfig":
    """HuBERT-large's layout (1024-d, 16 heads, conv front end with LayerNorm) with `num_layers` layers."""
    from transformers import HubertConfig

    return HubertConfig(hidden_size=1024, num_hidden_layers=num_layers, num_attention_heads=16,
                        intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True,
                        conv_bias=True, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                        feat_proj_dropout=0.0, layerdrop=0.0)


def hubert_frame_count(num_samples: int, conv_kernel: Sequence[int] = (10, 3, 3, 3, 3, 2, 2),
                       conv_stride: Sequence[int] = (5, 2, 2, 2, 2, 2, 2)) -> int:
    """Frames HuBERT's convolutional front end makes of `num_samples` samples (0 if too short)."""
    length = int(num_samples)
    for kernel, stride in zip(conv_kernel, conv_stride):
        if length < kernel:
            return 0
        length = (length - kernel) // stride + 1
    return length


def hubert_frame_receptive_field(conv_kernel: Sequence[int] = (10, 3, 3, 3, 3, 2, 2),
                                 conv_stride: Sequence[int] = (5, 2, 2, 2, 2, 2, 2)) -> int:
    """Samples that make one frame of the convolutional front end (400 for HuBERT)."""
    field, jump = 1, 1
    for kernel, stride in zip(conv_kernel, conv_stride):
        field += (kernel - 1) * jump
        jump *= stride
    return field


def frame_log_energy(waveform: np.ndarray, num_frames: int | None = None, stride: int = 320,
                     window: int = 400) -> np.ndarray:
    """Log mean squared amplitude of each HuBERT frame's window, samples [stride i, stride i + window)."""
    waveform = np.asarray(waveform, dtype=np.float64)
    num_frames = hubert_frame_count(len(waveform)) if num_frames is None else num_frames
    starts = np.arange(num_frames) * stride
    squared = np.concatenate([[0.0], np.cumsum(waveform ** 2)])
    ends = np.minimum(starts + window, len(waveform))
    return np.log((squared[ends] - squared[starts]) / np.maximum(ends - starts, 1) + 1e-10)


def normalize_waveform(waveform: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole utterance, as Wav2Vec2FeatureExtractor(do_normalize=True)."""
    waveform = np.asarray(waveform, dtype=np.float32)
    mean, std = _utterance_statistics(waveform)
    return (waveform - mean) / std


def _utterance_statistics(waveform: np.ndarray) -> tuple[np.float32, np.float32]:
    mean = waveform.mean(dtype=np.float64)
    variance = waveform.var(dtype=np.float64)
    return np.float32(mean), np.float32(math.sqrt(variance + NORMALIZE_EPSILON))


def load_hubert(source: str = HUBERT_LARGE, seed: int = 0, offline: bool = False) -> tuple["HubertModel", str]:
    """A HubertModel in eval mode and an identifier of its weights; source: hub id, local folder, "random(-large)"."""
    from transformers import HubertModel

    if source in RANDOM_SOURCES:
        layers = 24 if source == "random-large" else RANDOM_LAYERS
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = HubertModel(random_hubert_config(layers))
        return model.eval(), f"random:layers={layers}:seed={seed}"
    local = Path(source).expanduser()
    if local.is_dir():
        try:
            model = HubertModel.from_pretrained(str(local), local_files_only=True)
        except Exception as error:
            raise ValueError(f"HuBERT folder {local} cannot be loaded ({error}); it must hold config.json and "
                             f"model.safetensors as written by HubertModel.save_pretrained") from error
        return model.eval(), f"folder:{local.resolve()}"
    try:
        model = HubertModel.from_pretrained(source, local_files_only=offline)
    except Exception as error:
        raise FileNotFoundError(
            f"HuBERT {source!r} is neither a local folder nor available from the Hugging Face cache"
            f"{'' if offline else ' or hub'} ({type(error).__name__}). Provide it by running, where the "
            f"internet is reachable, `HubertModel.from_pretrained({source!r}).save_pretrained(FOLDER)` and "
            f"passing FOLDER as the source, or by filling the cache (HF_HOME) with "
            f"`huggingface-cli download {source}`; hubert='random' runs without pretrained weights.") from error
    revision = getattr(model.config, "_commit_hash", None) or "unknown"
    return model.eval(), f"hub:{source}@{revision}"


@functools.lru_cache(maxsize=None)
def hub_revision(source: str, offline: bool = False) -> str:
    """The commit a hub id resolves to: the cached snapshot's (refs/main), else, online, the hub's; else "unresolved".

    The feature cache keys audio features by it, so that a new upstream revision of the weights
    re-extracts them instead of mixing features of two models.
    """
    from huggingface_hub import HfApi, constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{source.replace('/', '--')}"
    reference = folder / "refs" / "main"
    if reference.is_file():
        return reference.read_text().strip()
    if not offline:
        try:
            return HfApi().model_info(source).sha or "unresolved"
        except Exception:  # no network or unknown id: loading will fail later with its own message
            return "unresolved"
    return "unresolved"


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _return_freed_memory() -> None:
    """Give freed heap memory back to the operating system (glibc's malloc_trim; elsewhere nothing happens).

    Each chunk allocates and frees some hundred megabytes of activations; glibc keeps freed
    medium-sized blocks, fragmented, so without this a 25-minute recording ends with a few hundred
    megabytes more resident memory than a 1-minute one, beyond its features (benchmarks/bench_hubert.py).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def chunk_plan(num_frames: int, chunk_frames: int, context_frames: int) -> list[tuple[int, int, int, int]]:
    """Per chunk: (first, end) frames it computes, including context, and (keep_first, keep_end) it keeps."""
    if chunk_frames <= 0 or context_frames < 0:
        raise ValueError("chunk_frames must be positive and context_frames non-negative")
    plan = []
    for keep_first in range(0, num_frames, chunk_frames):
        keep_end = min(keep_first + chunk_frames, num_frames)
        plan.append((max(0, keep_first - context_frames), min(num_frames, keep_end + context_frames),
                     keep_first, keep_end))
    return plan


class ChannelsLastFeatureEncoder(nn.Module):
    """HuBERT's convolutional front end, computed channels-last: the same function, 1.5-2.3x faster on a CPU.

    transformers' layers with LayerNorm (HuBERT-large) transpose every [batch, 512, time] output
    to normalise over channels and back, which copies the largest tensors of the model twice per
    layer (and under autocast casts them twice more). Here each Conv1d runs as a Conv2d of height
    1 on channels-last memory, where the channels are already the last, contiguous axis, so the
    LayerNorm and activation read it in place. The weights are the original layers'.
    """

    def __init__(self, feature_encoder: nn.Module):
        super().__init__()
        self.conv_layers = feature_encoder.conv_layers

    @staticmethod
    def applies_to(feature_encoder: nn.Module) -> bool:
        """Whether every layer is a convolution followed by a LayerNorm over channels (feat_extract_norm="layer")."""
        layers = getattr(feature_encoder, "conv_layers", [])
        return len(layers) > 0 and all(isinstance(getattr(layer, "layer_norm", None), nn.LayerNorm)
                                       and isinstance(getattr(layer, "conv", None), nn.Conv1d)
                                       and layer.conv.padding_mode == "zeros" for layer in layers)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        """[batch, samples] to [batch, channels, frames], like transformers' HubertFeatureEncoder."""
        hidden = input_values[:, None, None, :].contiguous(memory_format=torch.channels_last)
        for layer in self.conv_layers:
            conv, norm = layer.conv, layer.layer_norm
            weight = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
            hidden = F.conv2d(hidden, weight, conv.bias, stride=(1, conv.stride[0]), padding=(0, conv.padding[0]),
                              dilation=(1, conv.dilation[0]), groups=conv.groups)
            channels_last = F.layer_norm(hidden.permute(0, 2, 3, 1), norm.normalized_shape, norm.weight, norm.bias,
                                         norm.eps)
            hidden = layer.activation(channels_last).permute(0, 3, 1, 2)
        return hidden[:, :, 0, :]


class HubertEncoder:
    """A 16 kHz waveform to HuBERT features [frames, hidden] float32, chunked with context.

    A `model` given here is copied, never modified; its front end runs channels-last
    (`ChannelsLastFeatureEncoder`) and transformer layers above `layer` are dropped.
    """

    def __init__(self, source: str = HUBERT_LARGE, layer: int = -1, chunk_seconds: float = 30.0,
                 context_seconds: float = 5.0, device: str = "auto", precision: str = "auto", seed: int = 0,
                 offline: bool = False, normalize: bool = True, model: "HubertModel | None" = None):
        if precision not in ("auto", "float32"):
            raise ValueError(f"precision must be 'auto' (bfloat16 where it pays) or 'float32', got {precision!r}")
        self.device = pick_device(device)
        if model is None:
            model, self.source_id = load_hubert(source, seed=seed, offline=offline)
        else:
            model = copy.deepcopy(model)
            self.source_id = f"given:{type(model).__name__}"
        config = model.config
        if not (layer == -1 or 0 <= layer <= config.num_hidden_layers):
            raise ValueError(f"layer must be -1 (the model's output) or 0..{config.num_hidden_layers}, got {layer}")
        self.layer = layer
        if ChannelsLastFeatureEncoder.applies_to(model.feature_extractor):
            model.feature_extractor = ChannelsLastFeatureEncoder(model.feature_extractor)
        self.model = self._truncated(model).to(self.device).eval()
        self.hidden_size = config.hidden_size
        self.conv_kernel, self.conv_stride = tuple(config.conv_kernel), tuple(config.conv_stride)
        self.frame_stride = int(np.prod(self.conv_stride))
        self.receptive_field = hubert_frame_receptive_field(self.conv_kernel, self.conv_stride)
        frames_per_second = SAMPLE_RATE / self.frame_stride
        self.chunk_frames = max(1, int(round(chunk_seconds * frames_per_second)))
        self.context_frames = max(0, int(round(context_seconds * frames_per_second)))
        self.reduced_precision = precision == "auto"
        self.normalize = normalize

    def _truncated(self, model):
        if self.layer == -1:
            self._capture = None
            return model
        kept = max(self.layer, 1)
        model.encoder.layers = torch.nn.ModuleList(list(model.encoder.layers)[:kept])
        captured = {}
        if self.layer == 0:
            model.encoder.layers[0].register_forward_pre_hook(
                lambda module, args: captured.__setitem__("hidden", args[0]))
        else:
            model.encoder.layers[-1].register_forward_hook(
                lambda module, args, output: captured.__setitem__(
                    "hidden", output if torch.is_tensor(output) else output[0]))
        self._capture = captured
        return model

    def _forward(self, samples: torch.Tensor) -> torch.Tensor:
        output = self.model(samples[None]).last_hidden_state
        return (output if self._capture is None else self._capture.pop("hidden"))[0]

    def with_chunking(self, chunk_seconds: float, context_seconds: float) -> "HubertEncoder":
        """The same model and layer with other chunk and context lengths (the model is shared, not copied)."""
        other = copy.copy(self)
        frames_per_second = SAMPLE_RATE / self.frame_stride
        other.chunk_frames = max(1, int(round(chunk_seconds * frames_per_second)))
        other.context_frames = max(0, int(round(context_seconds * frames_per_second)))
        return other

    def frame_count(self, num_samples: int) -> int:
        """Frames this model makes of `num_samples` samples."""
        return hubert_frame_count(num_samples, self.conv_kernel, self.conv_stride)

    def encode(self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Features [frames, hidden] float32 of a mono waveform, normalised per utterance unless normalize=False."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"HuBERT takes {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        waveform = np.asarray(waveform, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"waveform must be mono [samples], got shape {waveform.shape}")
        num_frames = self.frame_count(len(waveform))
        if num_frames == 0:
            raise ValueError(f"{len(waveform)} samples are too short for one HuBERT frame "
                             f"({self.receptive_field} samples, {self.receptive_field / SAMPLE_RATE * 1000:.0f} ms)")
        mean, std = _utterance_statistics(waveform) if self.normalize else (np.float32(0.0), np.float32(1.0))
        features = np.empty((num_frames, self.hidden_size), dtype=np.float32)
        with torch.inference_mode(), autocast(self.device, enabled=self.reduced_precision):
            for first, end, keep_first, keep_end in chunk_plan(num_frames, self.chunk_frames, self.context_frames):
                start_sample = first * self.frame_stride
                stop_sample = (end - 1) * self.frame_stride + self.receptive_field
                chunk = (waveform[start_sample:stop_sample] - mean) / std
                hidden = self._forward(torch.from_numpy(chunk).to(self.device))
                if hidden.shape[0] != end - first:
                    raise RuntimeError(f"HuBERT made {hidden.shape[0]} frames of a chunk planned for {end - first}")
                features[keep_first:keep_end] = hidden[keep_first - first:keep_end - first].float().cpu().numpy()
                del hidden
                _return_freed_memory()
        return features
