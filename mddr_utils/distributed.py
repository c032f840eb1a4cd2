"""Work spread over several processes, GPUs or machines (torchrun; any launcher that sets WORLD_SIZE
and RANK): feature extraction (`features.pipeline`) and a table's training runs (`evaluation.runs`).
Each process learns its rank, the processes exchange short reports over gloo (no fast interconnect
needed), and each rank uses the GPU of its LOCAL_RANK."""
from __future__ import annotations

import datetime
import os

import torch

from .device import pick_device


def setup() -> tuple[int, int, bool]:
    """(rank, world size, whether this call started the process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    # Shares can take hours apart on long recordings; the default 30-minute wait would abort them.
    dist.init_process_group(backend="gloo", timeout=datetime.timedelta(hours=48))
    return dist.get_rank(), dist.get_world_size(), True


def gather(value, world: int) -> list:
    if world == 1:
        return [value]
    import torch.distributed as dist

    gathered = [None] * world
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def process_device(preference: str, world: int) -> torch.device:
    """The device `preference` picks; under several processes with CUDA, the GPU of this one's LOCAL_RANK."""
    device = pick_device(preference)
    if device.type == "cuda" and world > 1:
        # Without set_device every rank would open its CUDA context (and allocate) on GPU 0.
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"process with LOCAL_RANK {local_rank} has no GPU of its own: this machine has "
                               f"{torch.cuda.device_count()}; start at most that many processes per machine "
                               "(torchrun --nproc_per_node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device
