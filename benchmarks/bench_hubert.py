"""HuBERT extraction speed and memory (paper sections 3.2, 4.3).

Speed: audio seconds processed per second of wall time by HubertEncoder, float32 and bfloat16
autocast, for HuBERT-large's layout with random weights ("random-large", 24 layers, 1024-d) and
for the book's offline "random" source (the same layout with 4 layers).

Memory: peak resident memory (VmHWM) of a fresh process that reads a WAV file with
load_audio and encodes it in 30 s chunks with 5 s of context, for 1 minute and for 25 minutes of
audio (AVEC2013's length). Each measurement runs in its own subprocess, so neither sees the
other's allocations. The features themselves grow with the recording (25 min at 50 Hz x 1024
float32 = 307 MB), as does the waveform (96 MB); everything else stays bounded by the chunk.
By default the memory runs use the 4-layer "random" model: the same front end, width and chunk
activations as HuBERT-large, so the same growth with length, on a smaller base (the ratio is
therefore the less favourable one); `--rss-model random-large` runs the 24-layer model, about 5
minutes more on two cores.

    .venv/bin/python benchmarks/bench_hubert.py [--rss-model random-large] [--quick] [--threads N]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from common import load_average, machine, print_gemm
from mddr_utils.features.acoustic import SAMPLE_RATE, HubertEncoder

ROOT = Path(__file__).resolve().parent.parent
MEASURE_RSS = """
import json, sys, time
import torch
from mddr_utils.features.acoustic import HubertEncoder
from mddr_utils.features.video import load_audio
path, source = sys.argv[1], sys.argv[2]
encoder = HubertEncoder(source, chunk_seconds=30.0, context_seconds=5.0, device="cpu", precision="auto")
started = time.perf_counter()
features = encoder.encode(load_audio(path))
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent process across fork and exec.
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"frames": len(features), "seconds": seconds, "peak_rss_mb": peak_kb / 1024}))
"""


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-modulated signal with noise: HuBERT's cost does not depend on content, only length."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 0.3 * t)) / SAMPLE_RATE
    voice = sum(np.sin(k * pitch) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (0.2 * voice + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def audio_seconds_per_second(source: str, precision: str, seconds: float, repeats: int) -> tuple[float, float]:
    """(audio seconds per wall second, seconds to build the model) for one source and precision."""
    started = time.perf_counter()
    encoder = HubertEncoder(source, device="cpu", precision=precision, chunk_seconds=30.0, context_seconds=5.0)
    build = time.perf_counter() - started
    waveform = speech_like(seconds)
    encoder.encode(waveform[: SAMPLE_RATE * 5])
    best = min(_timed(encoder, waveform) for _ in range(repeats))
    return seconds / best, build


def _timed(encoder: HubertEncoder, waveform: np.ndarray) -> float:
    started = time.perf_counter()
    encoder.encode(waveform)
    return time.perf_counter() - started


def peak_rss(source: str, minutes: float, folder: Path) -> dict:
    """Run load_audio + chunked encoding of `minutes` of audio in a fresh process; its peak RSS."""
    path = folder / f"speech_{minutes:g}min.wav"
    soundfile.write(path, speech_like(60 * minutes, seed=1), SAMPLE_RATE, subtype="PCM_16")
    finished = subprocess.run([sys.executable, "-c", MEASURE_RSS, str(path), source], capture_output=True,
                              text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if finished.returncode:
        raise RuntimeError(finished.stderr[-2000:])
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss-model", default="random", choices=("random", "random-large"),
                        help="the model of the memory measurement (random-large: some 5 more minutes)")
    parser.add_argument("--quick", action="store_true", help="shorter audio and fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    seconds, repeats = (10.0, 1) if arguments.quick else (30.0, 2)
    print(f"bench_hubert  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {machine()}")
    print_gemm(repeats + 2)

    print(f"\nPeak RSS of load_audio + chunked encoding (30 s chunks, 5 s context, bfloat16), {arguments.rss_model}")
    with tempfile.TemporaryDirectory() as folder:
        results = {minutes: peak_rss(arguments.rss_model, minutes, Path(folder)) for minutes in (1, 25)}
    for minutes, result in results.items():
        print(f"  {minutes:2d} min: {result['frames']} frames in {result['seconds']:.0f} s, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB")
    ratio = results[25]["peak_rss_mb"] / results[1]["peak_rss_mb"]
    print(f"  25 min / 1 min = {ratio:.2f}x (features alone grow by {74999 * 1024 * 4 / 2**20:.0f} MB, "
          f"the waveform by {25 * 60 * SAMPLE_RATE * 4 / 2**20:.0f} MB)")
    print(f"\nSpeed on {seconds:.0f} s of audio (one 30 s chunk), best of {repeats}")
    for source in ("random-large", "random"):
        for name, precision in (("float32", "float32"), ("bfloat16", "auto")):
            rate, build = audio_seconds_per_second(source, precision, seconds, repeats)
            print(f"  {source:12s} {name:8s}: {rate:6.2f} audio s per s ({1 / rate:.3f} s per audio second); "
                  f"model built in {build:.1f} s")

    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
