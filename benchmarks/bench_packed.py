"""Training data at corpus scale (paper section 4.3): one pass over the training videos, read and padded
into batches of 16, from one .npz per video and modality (what the feature cache stores) or from a
packed folder (`mddr_utils.data.packed`: one memory-mapped .npy per array, float32 or float16), with
the batches read in the main process (0 workers) or in 2 worker processes; and what float16 storage
does to the numbers: the demo model trained on float32 and on float16 packed features, one seed.

The timed cohort is the simulation cohort at the paper's feature sizes (2048-d visual, 1024-d audio
at 50 Hz, 12-d head), its Training split: 100 videos of 23-146 s, about 1.5 GB of float32. All files
are written just before they are read, so they sit in the page cache: the times are the cost of
parsing and copying, not of the disk (a cold AVEC2013 cache, 46 GB, adds the disk's read time, which
float16 halves). The training comparison uses the demo-size simulation cohort, as the book does.

Run: nice .venv/bin/python benchmarks/bench_packed.py [--workdir DIR] [--videos 100] [--repeats 2]
Writes benchmarks/results/packed.json and prints the README's table rows.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from common import load_average, machine, print_gemm
from mddr_utils import metrics, sources
from mddr_utils.data.container import AUDIO_RATE_HZ, Cohort, VideoFeatures
from mddr_utils.data.packed import pack_cohort
from mddr_utils.evaluation.stats import clamp_scores
from mddr_utils.train import loader, predict, run_model

BATCH = 16
RESULTS = Path(__file__).resolve().parent / "results" / "packed.json"


def write_npz_set(cohort: Cohort, folder: Path) -> Cohort:
    """The cohort as a feature cache stores it: three .npz per video (visual, head, audio), read on each access."""
    for modality in ("visual", "head", "audio"):
        (folder / modality).mkdir(parents=True, exist_ok=True)
    for position in range(len(cohort)):
        video = cohort[position]
        np.savez(folder / "visual" / f"{video.video_id}.npz", visual=video.visual, times=video.times,
                 visual_valid=video.visual_valid)
        np.savez(folder / "head" / f"{video.video_id}.npz", head=video.head, head_valid=video.head_valid)
        np.savez(folder / "audio" / f"{video.video_id}.npz", audio=video.audio)
    return Cohort(cohort.table, partial(read_npz_video, folder), name=cohort.name, identity=cohort.identity)


def read_npz_video(folder: Path, row) -> VideoFeatures:
    """One video from its three .npz files, as `features.pipeline.assemble_video` reads a cache."""
    arrays = {}
    for modality in ("visual", "head", "audio"):
        with np.load(folder / modality / f"{row['video_id']}.npz", allow_pickle=False) as stored:
            arrays.update({name: stored[name] for name in stored.files})
    return VideoFeatures(video_id=row["video_id"], label=float(row["label"]), subject=str(row["subject"]),
                         task=str(row["task"]), split=str(row["split"]), audio_rate=AUDIO_RATE_HZ, **arrays)


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2 ** 20


def epoch_times(videos, workers: int, repeats: int) -> dict:
    """Seconds for the first pass (starting the workers) and the best of `repeats` passes after it."""
    batches = loader(videos, BATCH, shuffle=True, seed=0, workers=workers)
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        count = sum(len(batch) for batch in batches)
        times.append(time.perf_counter() - started)
    assert count == len(videos)
    return {"first_s": times[0], "best_s": min(times[1:])}


def time_reading(workdir: Path, videos: int, repeats: int) -> dict:
    cohort = sources.simulation_cohort("paper").subset(split="Training")
    cohort = cohort.subset(video_ids=cohort.table["video_id"][:videos])
    started = time.perf_counter()
    stores = {"npz per video": write_npz_set(cohort, workdir / "npz")}
    written = {"npz per video": time.perf_counter() - started}
    for dtype in ("float32", "float16"):
        started = time.perf_counter()
        stores[f"packed {dtype}"] = pack_cohort(stores["npz per video"], workdir / f"packed_{dtype}", dtype,
                                                progress=False)
        written[f"packed {dtype}"] = time.perf_counter() - started
    folders = {"npz per video": workdir / "npz", "packed float32": workdir / "packed_float32",
               "packed float16": workdir / "packed_float16"}
    results = {}
    for name, store in stores.items():
        for workers in (0, 2):
            measured = epoch_times(store, workers, repeats)
            results[f"{name}, {workers} workers"] = {"store": name, "workers": workers, **measured,
                                                     "size_mb": folder_mb(folders[name]),
                                                     "write_s": written[name]}
            print(f"  {name:15s} workers {workers}: first pass {measured['first_s']:.2f} s, "
                  f"best of {repeats} more {measured['best_s']:.2f} s", flush=True)
    audio_seconds = float(cohort.table["duration"].sum())
    return {"videos": len(cohort), "audio_hours": audio_seconds / 3600, "passes": results}


def train_on(packed, workdir: Path) -> dict:
    """The demo model trained on `packed` (seed 0, selected on Development), scored once on Testing."""
    run = run_model(packed, "demo", seed=0, data_dir=workdir, progress=False)
    test = packed.subset(split="Testing")
    predictions = predict(run.model, test)
    scores = clamp_scores(predictions["pred"], test.scale)
    return {"test_mae": metrics.mae(scores, predictions["label"]), "test_rmse": metrics.rmse(scores, predictions["label"]),
            "best_epoch": int(run.best_epoch), "dev_rmse": float(run.best_dev["rmse"])}


def time_training(workdir: Path) -> dict:
    cohort = sources.simulation_cohort("demo")
    found = {}
    for dtype in ("float32", "float16"):
        started = time.perf_counter()
        packed = pack_cohort(cohort, workdir / f"demo_{dtype}", dtype, progress=False)
        found[dtype] = {**train_on(packed, workdir / f"runs_{dtype}"), "seconds": time.perf_counter() - started}
        print(f"  demo model on {dtype} features: Testing MAE {found[dtype]['test_mae']:.3f}, "
              f"RMSE {found[dtype]['test_rmse']:.3f} ({found[dtype]['seconds']:.0f} s)", flush=True)
    return found


def markdown_rows(results: dict) -> str:
    reading, training = results["reading"], results["training"]
    lines = ["| store | size on disk | written in | 0 workers: first pass, best later pass | 2 workers: first "
             "pass, best later pass |", "|---|---|---|---|---|"]
    for store in ("npz per video", "packed float32", "packed float16"):
        alone, shared = (reading["passes"][f"{store}, {workers} workers"] for workers in (0, 2))
        lines.append(f"| {store} | {alone['size_mb'] / 1024:.2f} GB | {alone['write_s']:.1f} s | "
                     f"{alone['first_s']:.2f} s, {alone['best_s']:.2f} s | {shared['first_s']:.2f} s, "
                     f"{shared['best_s']:.2f} s |")
    lines += ["", "| demo model, simulation cohort (demo size), seed 0 | Testing MAE | Testing RMSE | selected epoch |",
              "|---|---|---|---|"]
    lines += [f"| trained on {dtype} packed features | {found['test_mae']:.3f} | {found['test_rmse']:.3f} | "
              f"{found['best_epoch']} |" for dtype, found in training.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where the files go (default: a temporary folder)")
    parser.add_argument("--videos", type=int, default=100, help="training videos to time (default: all 100)")
    parser.add_argument("--repeats", type=int, default=2, help="passes timed after the first (default 2)")
    arguments = parser.parse_args()
    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="bench_packed_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}")
    gemm = print_gemm()
    try:
        print(f"\nOne pass over the Training videos, batches of {BATCH} (simulation cohort, paper feature sizes)")
        reading = time_reading(workdir, arguments.videos, arguments.repeats)
        print("\nfloat16 storage and the numbers (demo model, demo-size simulation cohort, seed 0)")
        training = time_training(workdir)
    finally:
        if arguments.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
               "gemm_gflops": gemm, "torch_threads": torch.get_num_threads(), "batch": BATCH,
               "reading": reading, "training": training, "load_average_end": load_average()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {RESULTS}\n\n{markdown_rows(results)}")


if __name__ == "__main__":
    main()
