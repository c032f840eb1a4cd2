import contextlib

import pytest
import torch

from mddr_utils.device import autocast, autocast_dtype, cpu_supports_bfloat16, float32, pick_device


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected


def test_autocast_follows_the_cpu():
    cpu = torch.device("cpu")
    assert isinstance(autocast(cpu, enabled=False), contextlib.nullcontext)
    if cpu_supports_bfloat16():
        assert autocast_dtype(cpu) == torch.bfloat16
        with autocast(cpu):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    else:
        assert autocast_dtype(cpu) is None and isinstance(autocast(cpu), contextlib.nullcontext)


def test_float32_holds_inside_an_enclosing_autocast():
    cpu = torch.device("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        with float32(cpu):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.parametrize("capability, native_bfloat16, inference, training", [
    ((9, 0), True, torch.bfloat16, torch.bfloat16),   # Hopper
    ((8, 0), True, torch.bfloat16, torch.bfloat16),   # Ampere
    ((7, 5), False, torch.float16, None),             # Turing: float16 tensor cores, no native bfloat16
    ((7, 0), False, torch.float16, None),             # Volta
    ((6, 1), False, None, None),                      # Pascal: no tensor cores
])
def test_gpus_without_native_bfloat16_never_emulate_it(monkeypatch, capability, native_bfloat16, inference, training):
    asked = {}

    def bf16_supported(including_emulation=True):
        asked["including_emulation"] = including_emulation
        return native_bfloat16 or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    gpu = torch.device("cuda", 0)
    assert autocast_dtype(gpu) == inference
    assert autocast_dtype(gpu, training=True) == training
    assert asked["including_emulation"] is False
