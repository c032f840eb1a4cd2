"""Visual features X_v: a ResNet-50 without its classifier, 2048-d per face crop (paper sections 3.2, 4.3, 5.2.1).

The paper pre-trains ResNet-50 on AffectNet and compares it with ImageNet and with no
pre-training (Table 2). Three weight sources, named as in the paper's ablation:

- "affectnet": a checkpoint file the user provides (AffectNet is licensed; no public weights
  are assumed). A plain state dict, or one nested under "state_dict"/"model"/"model_state_dict";
  the classifier ("fc."/"classifier.") is dropped. How its tensor names become torchvision's is
  the `key_map` (`ExtractionConfig.affectnet_key_map`):
    "auto"  strips the wrapper prefixes training frameworks add, in any combination: "module."
            (DataParallel / DistributedDataParallel), "model." (PyTorch Lightning modules),
            "backbone." (a backbone + head model);
    "caffe" reads the caffe names of the ResNet-50 ports that most public face and expression
            models derive from (VGGFace2 `resnet50_ft`: "conv1_7x7_s2", "conv2_1_1x1_reduce_bn",
            ...), and puts each stage's stride in the first 1x1 convolution, as caffe's ResNet
            does, instead of in the 3x3 (torchvision);
    a JSON file {"checkpoint prefix": "torchvision prefix", ...}, applied to each key's longest
            matching prefix, for any other naming.
  Any other missing or unexpected backbone key is an error naming the file and listing the keys.
- "imagenet" / "imagenet_v1": torchvision's ResNet50_Weights.IMAGENET1K_V2 / V1, read from the
  torch hub cache (TORCH_HOME) and downloaded only when `offline` is False.
- "none": random initialisation, seeded. Features from it carry no learned meaning.

Crops are normalised as the weights were trained (`Preprocessing`, `ExtractionConfig.visual_preprocessing`):
"imagenet" (RGB in [0, 1], ImageNet's mean and standard deviation: torchvision's weights and the
usual AffectNet fine-tuning from them), "caffe" (BGR in [0, 255] minus VGGFace2's channel means,
for caffe ports), or a JSON object {"mean": [...], "std": [...], "scale": 1 or 255, "channels":
"RGB" or "BGR"} (mean and std in the given scale). Inference is batched, under
`torch.inference_mode`, channels-last, with the batch norms folded into the convolutions and, where
the device supports it, in bfloat16 (the precision `mddr_utils.device.autocast` would choose).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..device import autocast_dtype, pick_device

VISUAL_DIM = 2048
VISUAL_WEIGHTS = ("affectnet", "imagenet", "imagenet_v1", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")
_NESTING_KEYS = ("state_dict", "model", "model_state_dict")
WRAPPER_PREFIXES = ("module.", "model.", "backbone.")
KEY_MAPS = ("auto", "caffe")
VGGFACE2_CAFFE_MEAN = (131.0912, 103.8827, 91.4953)
"""The RGB channel means (0-255) subtracted by the VGGFace2 caffe ResNet-50 and its descendants."""
_CAFFE_BLOCKS_PER_STAGE = (3, 4, 6, 3)
_CAFFE_CONVS = {"1x1_reduce": "conv1", "3x3": "conv2", "1x1_increase": "conv3", "1x1_proj": "downsample.0"}
_CAFFE_NORMS = {"1x1_reduce": "bn1", "3x3": "bn2", "1x1_increase": "bn3", "1x1_proj": "downsample.1"}


@dataclass(frozen=True)
class Preprocessing:
    """How crops become network input: channel order, pixel scale, then (x - mean) / std per channel (RGB order)."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale: float = 1.0
    channels: str = "RGB"

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"preprocessing needs 3 means and 3 positive stds, got mean={self.mean}, std={self.std}")
        if self.scale not in (1.0, 255.0):
            raise ValueError(f"preprocessing scale must be 1 (pixels in [0, 1]) or 255, got {self.scale}")
        if self.channels not in ("RGB", "BGR"):
            raise ValueError(f"preprocessing channels must be 'RGB' or 'BGR', got {self.channels!r}")

    @classmethod
    def named(cls, spec: str) -> "Preprocessing":
        """"imagenet", "caffe", or a JSON object with mean, std, scale and channels."""
        if spec == "imagenet":
            return cls()
        if spec == "caffe":
            return cls(mean=VGGFACE2_CAFFE_MEAN, std=(1.0, 1.0, 1.0), scale=255.0, channels="BGR")
        try:
            fields = json.loads(spec)
        except json.JSONDecodeError:
            raise ValueError(f"visual preprocessing {spec!r}: use 'imagenet', 'caffe' or a JSON object "
                             '{"mean": [...], "std": [...], "scale": 1 or 255, "channels": "RGB" or "BGR"}') from None
        unknown = set(fields) - {"mean", "std", "scale", "channels"}
        if not isinstance(fields, dict) or unknown:
            raise ValueError(f"visual preprocessing {spec!r}: unknown fields {sorted(unknown)}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()})


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint (.safetensors, or a torch file read with weights_only=True), un-nested."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"checkpoint {path} cannot be read as a state dict: {error}") from error
    while isinstance(state, dict):
        nested = [key for key in _NESTING_KEYS if isinstance(state.get(key), dict)]
        if not nested:
            break
        state = state[nested[0]]
    if not isinstance(state, dict) or not all(torch.is_tensor(value) for value in state.values()):
        raise ValueError(f"checkpoint {path} holds no state dict of tensors (found {type(state).__name__})")
    return state


def _strip_wrappers(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix):], True
    return key


def _caffe_name(key: str) -> str:
    """A caffe ResNet-50 tensor name in torchvision's naming (unchanged when it is not one)."""
    layer, _, tensor = key.rpartition(".")
    if layer in ("conv1_7x7_s2", "conv1_7x7_s2_bn"):
        return f"{'bn1' if layer.endswith('_bn') else 'conv1'}.{tensor}"
    match = re.fullmatch(r"conv(\d)_(\d+)_(1x1_reduce|3x3|1x1_increase|1x1_proj)(_bn)?", layer)
    if not match:
        return key
    stage, block, role, norm = int(match[1]), int(match[2]), match[3], match[4]
    module = (_CAFFE_NORMS if norm else _CAFFE_CONVS)[role]
    return f"layer{stage - 1}.{block - 1}.{module}.{tensor}"


def _prefix_map_name(key: str, prefixes: dict[str, str]) -> str:
    matching = [prefix for prefix in prefixes if key.startswith(prefix)]
    if not matching:
        return key
    prefix = max(matching, key=len)
    return prefixes[prefix] + key[len(prefix):]


def _read_prefix_map(path: str | Path) -> dict[str, str]:
    try:
        mapping = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"key map {path}: not a readable JSON object ({error})") from error
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError(f'key map {path}: must be a JSON object {{"checkpoint prefix": "torchvision prefix"}}')
    return mapping


def backbone_state(state: dict[str, torch.Tensor], key_map: str = "auto") -> dict[str, torch.Tensor]:
    """Tensor names mapped to torchvision's ResNet-50 (`key_map`: "auto", "caffe" or a JSON prefix map), classifier dropped."""
    prefixes = None if key_map in KEY_MAPS else _read_prefix_map(key_map)
    cleaned = {}
    for key, value in state.items():
        if prefixes is not None:
            key = _prefix_map_name(key, prefixes)
        else:
            key = _strip_wrappers(key)
            if key_map == "caffe":
                key = _caffe_name(key)
        if not key.startswith(_CLASSIFIER_PREFIXES):
            cleaned[key] = value
    return cleaned


def stride_in_first_conv(model: nn.Module) -> nn.Module:
    """Move each stage's stride from the 3x3 to the first 1x1 convolution (caffe's ResNet-50 layout)."""
    for stage in (model.layer2, model.layer3, model.layer4):
        first = stage[0]
        first.conv1.stride, first.conv2.stride = first.conv2.stride, (1, 1)
    return model


def resnet50_trunk() -> nn.Module:
    """torchvision's ResNet-50 with its classifier replaced by the identity: 2048-d pooled features."""
    from torchvision.models import resnet50

    model = resnet50(weights=None)
    model.fc = nn.Identity()
    return model


def load_backbone_checkpoint(model: nn.Module, path: str | Path, key_map: str = "auto") -> None:
    """Load a user checkpoint into a ResNet-50 trunk, names mapped by `key_map`; every backbone key must match."""
    state = backbone_state(read_state_dict(path), key_map)
    expected = model.state_dict()
    missing = [key for key in expected if key not in state and not key.endswith("num_batches_tracked")]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not fit torchvision's ResNet-50: "
                         f"{len(missing)} missing keys {missing[:5]}, "
                         f"{len(unexpected)} unexpected keys {unexpected[:5]}")
    wrong_shape = [key for key in state if state[key].shape != expected[key].shape]
    if wrong_shape:
        key = wrong_shape[0]
        raise ValueError(f"checkpoint {path}: {len(wrong_shape)} tensors have the wrong shape, e.g. {key} "
                         f"{tuple(state[key].shape)} instead of {tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=False)


def imagenet_checkpoint_path(version: str = "V2") -> tuple[str, Path]:
    """The download URL of torchvision's ImageNet ResNet-50 weights and where the torch hub cache keeps them."""
    from torchvision.models import ResNet50_Weights

    url = getattr(ResNet50_Weights, f"IMAGENET1K_{version}").url
    return url, Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _load_imagenet(model: nn.Module, version: str, offline: bool) -> None:
    url, cached = imagenet_checkpoint_path(version)
    if not cached.is_file():
        how = (f"download {url} to {cached} (set TORCH_HOME to keep the torch hub cache elsewhere), "
               f"e.g. with: python -c \"from torchvision.models import ResNet50_Weights as W; "
               f"W.IMAGENET1K_{version}.get_state_dict()\" on a machine with internet access")
        if offline:
            raise FileNotFoundError(f"ImageNet ResNet-50 weights are not in the torch hub cache; {how}")
        try:
            torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True)
        except Exception as error:
            raise FileNotFoundError(f"ImageNet ResNet-50 weights could not be downloaded ({error}); {how}") from error
    state = torch.load(cached, map_location="cpu", weights_only=True)
    model.load_state_dict(backbone_state(state))


def resnet50_backbone(weights: str = "none", checkpoint: str | Path | None = None, seed: int = 0,
                      offline: bool = False, key_map: str = "auto") -> tuple[nn.Module, str]:
    """A ResNet-50 trunk in eval mode and an identifier of its weights (for the feature cache)."""
    if weights not in VISUAL_WEIGHTS:
        raise ValueError(f"visual weights must be one of {VISUAL_WEIGHTS}, got {weights!r}")
    if weights == "affectnet":
        if checkpoint is None:
            raise ValueError("weights='affectnet' needs the path of an AffectNet ResNet-50 checkpoint")
        model = resnet50_trunk()
        if key_map == "caffe":
            stride_in_first_conv(model)
        load_backbone_checkpoint(model, checkpoint, key_map)
        weights_id = f"affectnet:sha256={file_sha256(checkpoint)}"
        if key_map == "caffe":
            weights_id += ":caffe-layout"
    elif weights.startswith("imagenet"):
        version = "V1" if weights == "imagenet_v1" else "V2"
        model = resnet50_trunk()
        _load_imagenet(model, version, offline)
        weights_id = f"torchvision:ResNet50_Weights.IMAGENET1K_{version}"
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = resnet50_trunk()
        weights_id = f"random:seed={seed}"
    return model.eval(), weights_id


def inference_trunk(model: nn.Module, dtype: torch.dtype | None, device: torch.device) -> nn.Module:
    """The trunk prepared for inference: batch norms folded into the convolutions, channels-last, in `dtype`.

    Folding removes a memory pass per convolution, and weights stored in the reduced precision
    spare autocast's per-call casting of 25 M parameters: together about 1.4x faster than plain
    autocast on a bfloat16 CPU (benchmarks/bench_visual.py).
    """
    from torch.fx.experimental.optimization import fuse

    prepared = fuse(model.eval())
    prepared = prepared.to(device, memory_format=torch.channels_last)
    return prepared.to(dtype) if dtype is not None else prepared


class VisualEncoder:
    """Face crops (uint8 [N, H, W, 3]) to ResNet-50 features (float32 [N, 2048]), batched.

    precision "auto" runs the network in the device's reduced precision where it pays
    (mddr_utils.device.autocast_dtype: bfloat16 on CPUs with AVX-512 BF16 or AMX), "float32" in float32.
    """

    def __init__(self, weights: str = "none", checkpoint: str | Path | None = None, device: str = "auto",
                 batch_size: int = 32, precision: str = "auto", seed: int = 0, offline: bool = False,
                 key_map: str = "auto", preprocessing: Preprocessing | str = "imagenet"):
        if precision not in ("auto", "float32"):
            raise ValueError(f"precision must be 'auto' (bfloat16 where it pays) or 'float32', got {precision!r}")
        self.device = pick_device(device)
        trunk, self.weights_id = resnet50_backbone(weights, checkpoint, seed=seed, offline=offline, key_map=key_map)
        self.dtype = autocast_dtype(self.device) if precision == "auto" else None
        self.model = inference_trunk(trunk, self.dtype, self.device)
        self.batch_size = batch_size
        self.preprocessing = (Preprocessing.named(preprocessing) if isinstance(preprocessing, str)
                              else preprocessing)
        # Pixels stay 0-255 until normalised: mean and std are brought to that scale once.
        to_pixels = 255.0 / self.preprocessing.scale
        self._mean = torch.tensor(self.preprocessing.mean, device=self.device).view(1, 3, 1, 1) * to_pixels
        self._std = torch.tensor(self.preprocessing.std, device=self.device).view(1, 3, 1, 1) * to_pixels
        self._bgr = self.preprocessing.channels == "BGR"

    def _prepare(self, crops: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(np.array(crops, dtype=np.uint8, order="C")).to(self.device)
        images = (images.permute(0, 3, 1, 2).float() - self._mean) / self._std
        if self._bgr:
            images = images.flip(1)
        if self.dtype is not None:
            images = images.to(self.dtype)
        return images.contiguous(memory_format=torch.channels_last)

    def encode(self, crops: np.ndarray) -> np.ndarray:
        """Features [N, 2048] float32 of uint8 RGB crops [N, H, W, 3]."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"crops must be uint8 [N, H, W, 3], got {crops.dtype} {crops.shape}")
        features = np.zeros((len(crops), VISUAL_DIM), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                batch = self._prepare(crops[start:start + self.batch_size])
                features[start:start + len(batch)] = self.model(batch).float().cpu().numpy()
        return features
