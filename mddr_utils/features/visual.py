"""Visual features X_v: a ResNet-50 without its classifier, 2048-d per face crop (paper sections 3.2, 4.3, 5.2.1).

The paper pre-trains ResNet-50 on AffectNet and compares it with ImageNet and with no
pre-training (Table 2). Three weight sources, named as in the paper's ablation:

- "affectnet": a checkpoint file the user provides (AffectNet is licensed; no public weights
  are assumed). A plain state dict, or one nested under "state_dict"/"model"; "module."
  prefixes (DataParallel) are stripped and the classifier ("fc."/"classifier.") is dropped.
  Any other missing or unexpected backbone key is an error naming the file.
- "imagenet" / "imagenet_v1": torchvision's ResNet50_Weights.IMAGENET1K_V2 / V1, read from the
  torch hub cache (TORCH_HOME) and downloaded only when `offline` is False.
- "none": random initialisation, seeded. Features from it carry no learned meaning.

Crops are normalised with ImageNet's mean and standard deviation for every source (the usual
recipe for AffectNet fine-tuning from ImageNet as well). Inference is batched, under
`torch.inference_mode`, channels-last, with the batch norms folded into the convolutions and, where
the device supports it, in bfloat16 (the precision `mddr_utils.device.autocast` would choose).
"""
from __future__ import annotations

import hashlib
import os
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


def backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip "module." prefixes and drop the classifier's keys."""
    cleaned = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module."):]
        if not key.startswith(_CLASSIFIER_PREFIXES):
            cleaned[key] = value
    return cleaned


def resnet50_trunk() -> nn.Module:
    """torchvision's ResNet-50 with its classifier replaced by the identity: 2048-d pooled features."""
    from torchvision.models import resnet50

    model = resnet50(weights=None)
    model.fc = nn.Identity()
    return model


def load_backbone_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Load a user checkpoint into a ResNet-50 trunk; every backbone key must match."""
    state = backbone_state(read_state_dict(path))
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
                      offline: bool = False) -> tuple[nn.Module, str]:
    """A ResNet-50 trunk in eval mode and an identifier of its weights (for the feature cache)."""
    if weights not in VISUAL_WEIGHTS:
        raise ValueError(f"visual weights must be one of {VISUAL_WEIGHTS}, got {weights!r}")
    if weights == "affectnet":
        if checkpoint is None:
            raise ValueError("weights='affectnet' needs the path of an AffectNet ResNet-50 checkpoint")
        model = resnet50_trunk()
        load_backbone_checkpoint(model, checkpoint)
        weights_id = f"affectnet:sha256={file_sha256(checkpoint)}"
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
                 batch_size: int = 32, precision: str = "auto", seed: int = 0, offline: bool = False):
        if precision not in ("auto", "float32"):
            raise ValueError(f"precision must be 'auto' (bfloat16 where it pays) or 'float32', got {precision!r}")
        self.device = pick_device(device)
        trunk, self.weights_id = resnet50_backbone(weights, checkpoint, seed=seed, offline=offline)
        self.dtype = autocast_dtype(self.device) if precision == "auto" else None
        self.model = inference_trunk(trunk, self.dtype, self.device)
        self.batch_size = batch_size
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255

    def _prepare(self, crops: np.ndarray) -> torch.Tensor:
        images = torch.from_numpy(np.array(crops, dtype=np.uint8, order="C")).to(self.device)
        images = (images.permute(0, 3, 1, 2).float() - self._mean) / self._std
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
