import contextlib

import torch

from mddr_utils.device import autocast, autocast_dtype, cpu_supports_bfloat16, pick_device


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
