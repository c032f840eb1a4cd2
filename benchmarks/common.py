"""What every benchmark prints beside its figures: the machine, and its GEMM rate measured in the same run."""
from __future__ import annotations

import os
import platform
import time

import torch


def machine() -> str:
    """CPU model, its AVX-512 extensions, logical CPUs, torch threads and load average."""
    model, cpuinfo = platform.processor() or "unknown CPU", ""
    try:
        with open("/proc/cpuinfo") as stream:
            cpuinfo = stream.read()
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    extensions = [name for name in ("avx512f", "avx512_bf16", "amx_bf16") if name in cpuinfo]
    return (f"{model}, {os.cpu_count()} logical CPUs ({', '.join(extensions) or 'no AVX-512'}), "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, load average {load_average()}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def best_time(work, repeats: int) -> float:
    """The fastest of `repeats` runs of work(), after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def gemm_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 4) -> float:
    """Square matrix product rate in GFLOP/s (2 n^3 FLOP per product; a multiply-add counts as 2 FLOP)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    seconds = best_time(lambda: torch.mm(a, b), repeats)
    return 2 * size ** 3 / seconds / 1e9


def print_gemm(repeats: int = 4) -> dict[str, float]:
    """Measure and print the float32 and bfloat16 GEMM rates; return them by precision name."""
    print("\nGEMM (2048 x 2048 x 2048, best of runs)")
    gemm = {name: gemm_gflops(dtype, 2048, repeats) for name, dtype in (("float32", torch.float32),
                                                                       ("bfloat16", torch.bfloat16))}
    for name, rate in gemm.items():
        print(f"  {name:9s} {rate:7.0f} GFLOP/s")
    return gemm
