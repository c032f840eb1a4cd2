"""Visual feature extraction speed (paper sections 3.2, 4.3): ResNet-50 against the machine's GEMM rate,
and the whole visual pipeline (decode, sample, detect, crop, ResNet-50) against ResNet-50 alone,
two ways: every stage in turn, and as extraction runs it (`features.pipeline.frame_batches` under
`prefetched`: decoding and face detection a batch ahead, in a background thread).

FLOP convention: one multiply-add counts as 2 FLOP. A GEMM of [m, k] x [k, n] is 2 m k n FLOP;
ResNet-50 at 224x224 is 4.1 G multiply-adds, so 8.2 GFLOP per image. The ResNet-50 share of the
GEMM rate compares both at the same precision (float32 with float32, bfloat16 autocast with
bfloat16 GEMM), measured in the same run.

The pipeline runs on synthetic talking-face videos (mddr_utils.data.demo_cohort.write_demo_video)
of 60 s at 30 fps, 640x480 (AVEC's frame size) and 320x240 (the demo cohort's), sampled as
AVEC2014 (4 of every 100 frames); they are written once under --videos and reused.

    .venv/bin/python benchmarks/bench_visual.py [--videos data/bench_videos] [--quick]
"""
from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import numpy as np
import torch

from common import best_time, load_average, machine, print_gemm
from mddr_utils.data.demo_cohort import write_demo_video
from mddr_utils.features.faces import FaceCropper
from mddr_utils.features.pipeline import ExtractionConfig, frame_batches, prefetched
from mddr_utils.features.video import sample_frames
from mddr_utils.features.visual import VisualEncoder, resnet50_backbone

RESNET50_GFLOP = 8.2
ROOT = Path(__file__).resolve().parent.parent


def images_per_second(run, batch: int, repeats: int) -> float:
    """Images/s of run(images) on a batch of 224x224 inputs (run gets uint8 crops or a ready tensor)."""
    return batch / best_time(run, repeats)


def resnet_variants(batch: int) -> dict[str, tuple[str, object]]:
    """ResNet-50 set-ups to compare: (precision of the GEMM to compare with, a callable running one batch)."""
    crops = np.random.default_rng(0).integers(0, 256, (batch, 224, 224, 3), dtype=np.uint8)
    plain, _ = resnet50_backbone("none")
    images = torch.rand(batch, 3, 224, 224)

    def plain_run(memory_format, autocast):
        model = plain.to(memory_format=memory_format)
        inputs = images.contiguous(memory_format=memory_format)

        def run():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                model(inputs)
        return run

    folded_float32 = VisualEncoder("none", device="cpu", batch_size=batch, precision="float32")
    folded_reduced = VisualEncoder("none", device="cpu", batch_size=batch, precision="auto")
    reduced = "bfloat16" if folded_reduced.dtype == torch.bfloat16 else "float32"
    return {
        "float32, contiguous": ("float32", plain_run(torch.contiguous_format, False)),
        "float32, channels-last": ("float32", plain_run(torch.channels_last, False)),
        "float32, channels-last, BN folded (VisualEncoder)": ("float32", lambda: folded_float32.encode(crops)),
        "bfloat16 autocast, contiguous": ("bfloat16", plain_run(torch.contiguous_format, True)),
        "bfloat16 autocast, channels-last": ("bfloat16", plain_run(torch.channels_last, True)),
        f"{reduced} weights, channels-last, BN folded (VisualEncoder)": (reduced, lambda: folded_reduced.encode(crops)),
    }


def ensure_video(path: Path, size: tuple[int, int], seconds: float) -> Path:
    if not path.exists():
        print(f"  writing {path.name} ({seconds:.0f} s, {size[0]}x{size[1]}; once)", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_demo_video(path, label=20, seconds=seconds, size=size, seed=7)
    return path


def visual_pipeline(path: Path, cropper: FaceCropper, encoder: VisualEncoder, batch: int) -> dict:
    """Run decode/sample -> detect+crop -> ResNet-50 over a video; seconds spent in each stage."""
    spent = {"decode": 0.0, "detect+crop": 0.0, "resnet": 0.0}
    frames, count, found = [], 0, 0

    def flush():
        nonlocal found
        started = time.perf_counter()
        crops = cropper(frames)
        spent["detect+crop"] += time.perf_counter() - started
        started = time.perf_counter()
        if crops.found.any():
            encoder.encode(crops.crops[crops.found])
        spent["resnet"] += time.perf_counter() - started
        found += int(crops.found.sum())
        frames.clear()

    total_started = time.perf_counter()
    started = time.perf_counter()
    for _, _, rgb in sample_frames(path, keep=4, every=100):
        spent["decode"] += time.perf_counter() - started
        frames.append(rgb)
        count += 1
        if len(frames) == batch:
            flush()
        started = time.perf_counter()
    spent["decode"] += time.perf_counter() - started
    flush()
    return {"frames": count, "with_face": found, "seconds": time.perf_counter() - total_started, **spent}


def overlapped_pipeline(path: Path, cropper: FaceCropper, encoder: VisualEncoder, batch: int) -> dict:
    """The visual part of extraction as `features.pipeline` runs it: frames decoded and faces cropped a
    batch ahead in a background thread while ResNet-50 encodes the batch before."""
    config = ExtractionConfig(keep=4, every=100, frame_batch_size=batch, visual_weights="none")
    count, found = 0, 0
    started = time.perf_counter()
    for part in prefetched(frame_batches(path, config, cropper)):
        if part.crops.found.any():
            encoder.encode(part.crops.crops[part.crops.found])
        count += len(part.frames)
        found += int(part.crops.found.sum())
    return {"frames": count, "with_face": found, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=ROOT / "data" / "bench_videos")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shorter videos")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    repeats = 2 if arguments.quick else 4
    seconds = 20.0 if arguments.quick else 60.0
    print(f"bench_visual  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {machine()}")

    gemm = print_gemm(repeats)

    batch = 16
    print(f"\nResNet-50 alone, 224x224, batch {batch}, {RESNET50_GFLOP} GFLOP/image (multiply-add = 2 FLOP)")
    resnet = {}
    for name, (precision, run) in resnet_variants(batch).items():
        rate = images_per_second(run, batch, repeats)
        resnet[name] = rate
        print(f"  {name:58s} {rate:6.1f} images/s = {rate * RESNET50_GFLOP:5.0f} GFLOP/s, "
              f"{rate * RESNET50_GFLOP / gemm[precision]:5.1%} of the {precision} GEMM rate")

    print("\nWhole visual pipeline (decode every frame, keep 4 of 100, MTCNN on <= 320 px, crop, VisualEncoder "
          "as above), against the last ResNet-50 line")
    encoder = VisualEncoder("none", device="cpu", batch_size=batch, precision="auto")
    cropper = FaceCropper()
    resnet_alone = list(resnet.values())[-1]
    for size in ((640, 480), (320, 240)):
        path = ensure_video(arguments.videos / f"talking_face_{size[0]}x{size[1]}_{seconds:.0f}s.mp4", size, seconds)
        visual_pipeline(path, cropper, encoder, batch=batch)  # warm-up: detector scales, ResNet shapes
        result = visual_pipeline(path, cropper, encoder, batch=batch)
        rate = result["frames"] / result["seconds"]
        per_frame = {stage: 1000 * result[stage] / result["frames"] for stage in ("decode", "detect+crop", "resnet")}
        print(f"  {size[0]}x{size[1]}: {result['frames']} sampled frames ({result['with_face']} with a face) in "
              f"{result['seconds']:.1f} s = {rate:.1f} frames/s, {rate / resnet_alone:.0%} of ResNet-50 alone "
              f"({resnet_alone:.1f} images/s); per frame: "
              + ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in per_frame.items()))
        overlapped_pipeline(path, cropper, encoder, batch=batch)
        result = overlapped_pipeline(path, cropper, encoder, batch=batch)
        rate = result["frames"] / result["seconds"]
        print(f"  {size[0]}x{size[1]}, decoding and face detection a batch ahead (as extraction runs): "
              f"{result['seconds']:.1f} s = {rate:.1f} frames/s, {rate / resnet_alone:.0%} of ResNet-50 alone")
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
