"""Device helpers (section 4.3 trains on a GPU): pick CUDA, MPS or CPU and autocast where it pays."""
from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' takes CUDA, then Apple MPS, then the CPU; any other value is used as given."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@lru_cache(maxsize=1)
def cpu_supports_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX), where autocast pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


FLOAT16_TENSOR_CORES = (7, 0)
"""Volta and Turing GPUs have float16 tensor cores but no native bfloat16 (Ampere, 8.0, brings it)."""


def autocast_dtype(device: torch.device, training: bool = False) -> torch.dtype | None:
    """The reduced precision that pays on `device`, or None for plain float32.

    On a GPU: bfloat16 where it is native (Ampere and later); before that, torch would emulate it
    slowly, so inference (feature extraction) takes float16 on GPUs with float16 tensor cores
    (Volta, Turing) and float32 on older ones, and training takes float32, since float16 training
    needs loss scaling, which the paper's recipe does not have.
    """
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        if training:
            return None
        return torch.float16 if torch.cuda.get_device_capability(device) >= FLOAT16_TENSOR_CORES else None
    if device.type == "mps":
        return None if training else torch.float16
    return torch.bfloat16 if cpu_supports_bfloat16() else None


def autocast(device: torch.device, enabled: bool = True, training: bool = False):
    """An autocast context for `device`, or a no-op where reduced precision does not pay or is off."""
    dtype = autocast_dtype(device, training) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def float32(device: torch.device):
    """A context in which `device` computes in float32, even inside an enclosing autocast: every
    score that selects a checkpoint or is reported is computed so, whatever the machine."""
    if device.type not in ("cpu", "cuda", "mps"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)
