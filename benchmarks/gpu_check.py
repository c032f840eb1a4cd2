"""The CUDA path in one short run: precision, ResNet-50, the visual pipeline, HuBERT, extraction, an MDDR step.

For a machine with an NVIDIA GPU (the paper trains on one, section 4.3). Each figure is measured in
this run, on this machine; nothing is compared with a stored number:

- the precision `precision="auto"` picks on the GPU, for extraction and for training
  (`device.autocast_dtype`: bfloat16 from Ampere on, float16 before, never emulated bfloat16);
- ResNet-50 alone (`VisualEncoder`, batches of 64 crops) in images/s;
- the whole visual pipeline as extraction runs it (decode and detect a batch ahead on the CPU,
  ResNet-50 on the GPU) on a 60 s 640x480 talking-face video, in frames/s and as a share of
  ResNet-50 alone (the target: at least 70%);
- HuBERT (the 24-layer HuBERT-large layout, random weights) in seconds per audio second, for the
  last layer and for layer 12 (the forward stops at the layer asked for);
- `features.pipeline.extract_features` on two generated videos with `device="cuda"`: every modality
  through the real code path, and how long it took;
- one training step of the paper-size MDDR (batch 16, 150 visual steps, autocast as `fit` uses it):
  seconds per step and peak GPU memory.

    .venv/bin/python benchmarks/gpu_check.py                       # needs CUDA; a few minutes
    .venv/bin/python benchmarks/gpu_check.py --device cpu --quick  # the same code, tiny, on the CPU: a dry run

It writes benchmarks/results/gpu_check_<device>.json and prints the rows for benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_hubert import speech_like
from bench_visual import ensure_video, overlapped_pipeline
from common import machine
from mddr_utils.data.container import AUDIO_RATE_HZ, VideoFeatures, collate
from mddr_utils.data.demo_cohort import make_demo_cohort
from mddr_utils.device import autocast, autocast_dtype
from mddr_utils.features.acoustic import SAMPLE_RATE, HubertEncoder
from mddr_utils.features.faces import FaceCropper
from mddr_utils.features.pipeline import ExtractionConfig, extract_features
from mddr_utils.features.visual import VisualEncoder
from mddr_utils.losses import make_loss
from mddr_utils.model import MDDR
from mddr_utils.train import profile_configs

RESULTS = Path(__file__).resolve().parent / "results"
FULL = dict(batch=64, video_seconds=60.0, video_size=(640, 480), audio_seconds=60.0, hubert="random-large",
            layers=(-1, 12), profile="paper", steps=150, repeats=5, cohort_seconds=20.0)
QUICK = dict(batch=4, video_seconds=4.0, video_size=(160, 120), audio_seconds=4.0, hubert="random", layers=(-1, 2),
             profile="smoke", steps=12, repeats=2, cohort_seconds=3.0)


def synchronised(device: torch.device, work) -> float:
    """Seconds of work(), with the GPU's queue drained before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def device_facts(device: torch.device) -> dict:
    """Name, compute capability, memory and versions; the precisions "auto" picks there."""
    facts = {"device": str(device), "torch": torch.__version__, "machine": machine(),
             "extraction_precision": str(autocast_dtype(device)).replace("torch.", ""),
             "training_precision": str(autocast_dtype(device, training=True)).replace("torch.", "")}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        facts.update(name=properties.name, capability=f"{properties.major}.{properties.minor}",
                     memory_gib=round(properties.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return facts


def resnet_alone(device: torch.device, sizes: dict) -> float:
    """ResNet-50 images/s on batches of 224x224 crops (median of the repeats, after a warm-up)."""
    encoder = VisualEncoder("none", device=str(device), batch_size=sizes["batch"], precision="auto")
    crops = np.random.default_rng(0).integers(0, 256, (sizes["batch"], 224, 224, 3), dtype=np.uint8)
    encoder.encode(crops)
    times = [synchronised(device, lambda: encoder.encode(crops)) for _ in range(sizes["repeats"])]
    return sizes["batch"] / statistics.median(times)


def visual_pipeline(device: torch.device, sizes: dict, folder: Path) -> dict:
    """Frames/s of decoding, detection and ResNet-50 as extraction runs them, on one generated video."""
    video = ensure_video(folder / "gpu_check.mp4", sizes["video_size"], sizes["video_seconds"])
    cropper = FaceCropper(device=device)
    encoder = VisualEncoder("none", device=str(device), batch_size=sizes["batch"], precision="auto")
    overlapped_pipeline(video, cropper, encoder, sizes["batch"])
    run = overlapped_pipeline(video, cropper, encoder, sizes["batch"])
    return {"frames": run["frames"], "with_face": run["with_face"], "frames_per_second": run["frames"] / run["seconds"]}


def hubert(device: torch.device, sizes: dict) -> dict:
    """Seconds per audio second for each layer asked for (the forward stops there)."""
    waveform = speech_like(sizes["audio_seconds"])
    rates = {}
    for layer in sizes["layers"]:
        encoder = HubertEncoder(sizes["hubert"], layer=layer, device=str(device), precision="auto",
                                chunk_seconds=30.0, context_seconds=5.0)
        encoder.encode(waveform[: SAMPLE_RATE * 2])
        seconds = statistics.median(synchronised(device, lambda: encoder.encode(waveform))
                                    for _ in range(sizes["repeats"]))
        rates[str(layer)] = seconds / sizes["audio_seconds"]
    return rates


def extraction(device: torch.device, sizes: dict, folder: Path) -> dict:
    """`extract_features` on a generated two-recording cohort with every model on `device`."""
    index = make_demo_cohort(folder / "cohort", recordings_per_split=1, seconds=sizes["cohort_seconds"],
                             progress=False)
    index = index[index["split"] == "Training"]
    config = ExtractionConfig(visual_weights="none", hubert=sizes["hubert"], offline=True, device=str(device))
    seconds = synchronised(device, lambda: extract_features(index, folder / "cache", config, progress=False))
    cohort = extract_features(index, folder / "cache", config, progress=False)
    video = cohort[0]
    return {"videos": len(cohort), "seconds": seconds,
            "shapes": {"visual": list(video.visual.shape), "audio": list(video.audio.shape),
                       "head": list(video.head.shape)}}


def training_step(device: torch.device, sizes: dict) -> dict:
    """Seconds per SGD step (forward and backward under the training autocast) and peak GPU memory."""
    model_config, config = profile_configs(sizes["profile"], {"visual_dim": 2048, "audio_dim": 1024, "head_dim": 12})
    model = MDDR(model_config).to(device).train()
    rng = np.random.default_rng(0)
    gap = 25 / 30
    videos = [VideoFeatures(video_id=f"{200 + item}_1", label=float(rng.integers(0, 46)),
                            times=np.arange(sizes["steps"]) * gap,
                            visual=rng.standard_normal((sizes["steps"], 2048), dtype=np.float32),
                            head=rng.standard_normal((sizes["steps"], 12), dtype=np.float32),
                            audio=rng.standard_normal((int(sizes["steps"] * gap * AUDIO_RATE_HZ), 1024),
                                                      dtype=np.float32))
              for item in range(16)]
    batch = collate(videos).to(device)
    criterion = make_loss(config.loss, config.delta, config.loss_weight, config.huber_delta)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)

    def step():
        with autocast(device, config.amp, training=True):
            loss = criterion(model(batch).float(), batch.label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    step()
    seconds = statistics.median(synchronised(device, step) for _ in range(sizes["repeats"]))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"profile": sizes["profile"], "batch": 16, "steps": sizes["steps"], "seconds_per_step": seconds,
            "peak_memory_gib": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:1, or cpu for a dry run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that every part runs, measures nothing")
    parser.add_argument("--out", type=Path, default=None, help="the JSON file (default: benchmarks/results/)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --device cpu --quick for a dry run", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else FULL
    results = {"date": datetime.date.today().isoformat(), "quick": args.quick, **device_facts(device)}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, measure in (("resnet_images_per_second", lambda: resnet_alone(device, sizes)),
                              ("visual_pipeline", lambda: visual_pipeline(device, sizes, folder)),
                              ("hubert_seconds_per_audio_second", lambda: hubert(device, sizes)),
                              ("extraction", lambda: extraction(device, sizes, folder)),
                              ("training_step", lambda: training_step(device, sizes))):
            print(f"gpu_check: {name} ...", flush=True)
            results[name] = measure()
    results["visual_pipeline"]["share_of_resnet_alone"] = (results["visual_pipeline"]["frames_per_second"]
                                                           / results["resnet_images_per_second"])
    out = args.out or RESULTS / f"gpu_check_{device.type}{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    pipeline, step = results["visual_pipeline"], results["training_step"]
    print(f"\n{results.get('name', results['device'])}: extraction in {results['extraction_precision']}, "
          f"training in {results['training_precision']}")
    print("| measure | value |\n|---|---|")
    print(f"| ResNet-50 alone | {results['resnet_images_per_second']:.0f} images/s |")
    print(f"| visual pipeline, {sizes['video_size'][0]}x{sizes['video_size'][1]}, a batch ahead | "
          f"{pipeline['frames_per_second']:.1f} frames/s, {pipeline['share_of_resnet_alone']:.0%} of ResNet-50 alone |")
    for layer, rate in results["hubert_seconds_per_audio_second"].items():
        print(f"| HuBERT ({sizes['hubert']}), layer {layer} | {rate:.4f} s per audio second |")
    print(f"| extract_features, {results['extraction']['videos']} videos of {sizes['cohort_seconds']:.0f} s | "
          f"{results['extraction']['seconds']:.1f} s |")
    memory = f", peak {step['peak_memory_gib']:.1f} GiB" if step["peak_memory_gib"] is not None else ""
    print(f"| MDDR ({step['profile']}) training step, batch 16 x {step['steps']} steps | "
          f"{step['seconds_per_step'] * 1000:.0f} ms{memory} |")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
