"""Full-scale dress rehearsal: an AVEC2014-sized cohort through extraction (killed once and resumed) and
the paper's training recipe (paper sections 4.1 and 4.3). A benchmark, not a test.

The cohort has AVEC2014's shape (section 4.1): Training, Development and Testing with 50 recordings
each at full size, every recording a Freeform and a Northwind video sharing one BDI-II label, in
AVEC2014's folder layout (`<Split>/<Task>/<ID>_<Task>_video.mp4`, `Labels/<Split>/<ID>_Depression.csv`),
84 subjects for 150 recordings, 30 fps, 16 kHz audio. Its videos come from the book's demo generator
(`mddr_utils.data.demo_cohort.write_demo_video`) at a REDUCED RESOLUTION, 320x240 (AVEC's are
640x480): decoding costs less here than on AVEC, face detection runs on a copy of at most 320 px
either way, and the face crop and everything after it are the same size. `--fraction` scales the
number of recordings per split (at least 1).

Durations. The public figures found: AVEC2014 holds 300 videos of "about 2 minutes" on average and
AVEC2013 150 videos of "about 25 minutes" (MDDR paper, section 4.1); Northwind is a read passage
(the fable "Die Sonne und der Wind"), Freeform answers to questions (Valstar et al., "AVEC 2014: 3D
Dimensional Affect and Depression Recognition Challenge", AVEC'14, doi:10.1145/2661806.2661807).
No per-task duration figures could be found in the material at hand, so the spread is an
ASSUMPTION: both tasks have a mean of 120 s; Northwind, one fixed text, varies little (log-normal,
sigma 0.2, clipped to 45-240 s); Freeform, free answers, varies widely (sigma 0.5, 10-360 s).
`--max-seconds` caps every video (for a quick validation only; the run records the cap).

Stages, each recorded with wall time, peak resident memory (the process tree's summed RSS, sampled
every 0.2 s with psutil) and size on disk:
1. generate the cohort (not part of a user's cost: a user has the videos);
2. extract with the paper profile's settings and cost, offline stand-ins of equal size: ResNet-50
   without pretrained weights (`visual_weights="none"`) and the 24-layer HuBERT-large layout with
   random weights (`hubert="random-large"`), AVEC2014 sampling (4 of every 100 frames), through the
   command line `python -m mddr_utils.features.pipeline`; the process is killed (SIGKILL) half a
   video after half of the videos are written, then run again to resume. Time lost to the kill,
   two ways: (a) `--reference` runs an uninterrupted extraction into another cache and takes
   killed + resumed - uninterrupted; (b) always: the work in flight at the kill (kill time minus the
   last cache write before it) plus the fixed cost of a process (start, imports, model builds,
   planning), measured by extracting a 2-second clip alone;
3. probe the cost split of extraction on the cohort's longest video at 4 and at 1 of every 100
   frames (per sampled frame: face detection, ResNet-50, head pose; per video second: decoding and
   HuBERT), for the AVEC2013 extrapolation; and count the FLOPs of ResNet-50 per image and of
   HuBERT-large per audio second (torch's FlopCounterMode), for the GPU estimate;
4. train the paper recipe once (`runs.run_seed`: `train.profile_configs("paper")`, the epoch
   selected on Development, Testing scored once), the cohort read through `sources.load_cohort`
   (every video's identity checked); `--epochs` shortens it (recorded; the paper's is 150).

    .venv/bin/python benchmarks/dress_rehearsal.py --fraction 0.125 --workdir /tmp/dress8 --out dress_1of8.json
    .venv/bin/python benchmarks/dress_rehearsal.py --extrapolate dress_1of8.json dress_1of4.json

`--extrapolate` reads two runs' JSON files, checks that each cost grows in proportion to the
cohort's video seconds, and extrapolates to the full AVEC2014 and to AVEC2013 on this machine, plus
a per-GPU-hour ESTIMATE whose assumptions it prints.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil

from common import load_average, machine, print_gemm
from mddr_utils.data.avec import AVEC2014_TASKS, SPLITS
from mddr_utils.data.demo_cohort import MAX_LABEL
from mddr_utils.data.demo_voice import AUDIO_RATE

ROOT = Path(__file__).resolve().parent.parent

FULL_RECORDINGS_PER_SPLIT = 50
FULL_SUBJECTS, FULL_RECORDINGS = 84, 150
FPS = 30
FRAME_SIZE = (320, 240)
DURATIONS = {"Northwind": dict(mean=120.0, sigma=0.2, shortest=45.0, longest=240.0),
             "Freeform": dict(mean=120.0, sigma=0.5, shortest=10.0, longest=360.0)}
"""The assumed spread of AVEC2014's durations in seconds (module docstring): log-normal, clipped."""
AVEC2013 = dict(recordings=150, seconds=25 * 60.0, keep=1, every=100)
AVEC2014_SAMPLING = dict(keep=4, every=100)
PAPER_EPOCHS = 150
EXTRACTION = dict(visual_weights="none", hubert="random-large", offline=True, on_error="skip")
"""Offline stand-ins of the paper's networks with their sizes and cost (module docstring)."""
OVERHEAD_CLIP_SECONDS = 2.0
SAMPLE_EVERY_S = 0.2


def plan_cohort(fraction: float, seed: int = 0, max_seconds: float | None = None) -> list[dict]:
    """One row per video of the cohort at `fraction` of AVEC2014's size: ids, split, task, label, seconds, seed."""
    per_split = max(1, round(FULL_RECORDINGS_PER_SPLIT * fraction))
    total = per_split * len(SPLITS)
    rng = np.random.default_rng([seed, 0])
    num_subjects = max(1, round(FULL_SUBJECTS / FULL_RECORDINGS * total))
    subjects = rng.permutation(np.concatenate([np.arange(num_subjects),
                                               rng.choice(num_subjects, total - num_subjects)]))
    labels = np.round((rng.permutation(total) + rng.random(total)) / total * MAX_LABEL).astype(int)
    videos, sessions = [], {}
    for position, subject in enumerate(subjects):
        sessions[subject] = sessions.get(subject, 0) + 1
        recording = f"{300 + subject}_{sessions[subject]}"
        split = SPLITS[position // per_split]
        for task in AVEC2014_TASKS:
            spread = DURATIONS[task]
            duration_rng = np.random.default_rng([seed, 1, position, AVEC2014_TASKS.index(task)])
            median = spread["mean"] * math.exp(-spread["sigma"] ** 2 / 2)
            seconds = float(np.clip(median * math.exp(spread["sigma"] * duration_rng.standard_normal()),
                                    spread["shortest"], spread["longest"]))
            if max_seconds:
                seconds = min(seconds, max_seconds)
            videos.append(dict(video_id=f"{recording}_{task}", recording=recording, split=split, task=task, label=int(labels[position]),
                               seconds=round(seconds, 2), seed=seed * 100003 + position,
                               video=f"{split}/{task}/{recording}_{task}_video.mp4",
                               label_file=f"Labels/{split}/{recording}_Depression.csv"))
    return videos


def _write_video(folder: str, video: dict) -> None:
    from mddr_utils.data.demo_cohort import write_demo_video

    path = Path(folder) / video["video"]
    partial = path.with_name(f".{path.stem}.partial.mp4")
    # Both tasks of a recording share the seed, so they show the same person.
    write_demo_video(partial, label=video["label"], seconds=video["seconds"], fps=FPS, size=FRAME_SIZE,
                     seed=video["seed"], task=video["task"])
    partial.rename(path)


def stage_generate(workdir: Path, fraction: float, seed: int, max_seconds: float | None, jobs: int) -> dict:
    """Write the cohort (videos, labels) and a short clip for the per-process overhead; return what was made."""
    from mddr_utils.data.demo_cohort import write_demo_video

    cohort = workdir / "avec2014"
    plan = plan_cohort(fraction, seed, max_seconds)
    for video in plan:
        (cohort / video["video"]).parent.mkdir(parents=True, exist_ok=True)
        (cohort / video["label_file"]).parent.mkdir(parents=True, exist_ok=True)
        (cohort / video["label_file"]).write_text(f"{video['label']}\n")
    todo = [video for video in plan if not (cohort / video["video"]).is_file()]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for finished in pool.map(_write_video, [str(cohort)] * len(todo), todo):
            del finished
    clip = workdir / "overhead" / "Training" / "Freeform" / "900_1_Freeform_video.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    (workdir / "overhead" / "900_1_Depression.csv").write_text("10\n")
    write_demo_video(clip, label=10, seconds=OVERHEAD_CLIP_SECONDS, fps=FPS, size=FRAME_SIZE, seed=seed, task="Freeform")
    return {"videos": len(plan), "generated": len(todo), "seconds": sum(video["seconds"] for video in plan)}


def stage_flops() -> dict:
    """FLOPs of ResNet-50 per 224x224 image, and of the 24-layer HuBERT per audio second as extraction runs it
    (each chunk computed with its context on both sides), counted by torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mddr_utils.features.acoustic import load_hubert
    from mddr_utils.features.pipeline import ExtractionConfig
    from mddr_utils.features.visual import VisualEncoder

    crops = np.random.default_rng(0).integers(0, 256, size=(4, 224, 224, 3), dtype=np.uint8)
    visual = VisualEncoder("none", device="cpu", precision="float32")
    with FlopCounterMode(display=False) as counter:
        visual.encode(crops)
    resnet = counter.get_total_flops() / len(crops)
    settings = ExtractionConfig.for_dataset("avec2014", visual_weights=EXTRACTION["visual_weights"])
    window = settings.hubert_chunk_seconds + 2 * settings.hubert_context_seconds
    model, _ = load_hubert("random-large", offline=True)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, int(window * AUDIO_RATE)))
    return {"resnet50_flop_per_image": resnet,
            "hubert_flop_per_audio_second": counter.get_total_flops() / settings.hubert_chunk_seconds,
            "hubert_window_seconds": window, "hubert_chunk_seconds": settings.hubert_chunk_seconds}


def stage_train(workdir: Path, epochs: int) -> dict:
    """Read the cohort through load_cohort (identities checked), then one seed of the paper recipe by the protocol."""
    from mddr_utils.evaluation import runs
    from mddr_utils.sources import load_cohort

    cache = workdir / "data" / "features" / "avec2014"
    extracted_before = newest_write(cache)
    started = time.perf_counter()
    cohort = load_cohort("avec2014", "paper", workdir / "data", data_root=workdir / "avec2014", extraction=EXTRACTION,
                         progress=False)
    loaded = time.perf_counter()
    record = runs.run_seed(cohort, runs.MDDR_FAMILY, "paper", 0, workdir / "data", workdir / "results",
                               train_overrides={"num_epochs": epochs}, dataset_label="dress rehearsal (synthetic)",
                               progress=False)
    return {"load_wall_s": loaded - started, "train_wall_s": time.perf_counter() - loaded, "epochs": epochs,
            "best_epoch": record["best_epoch"], "reused": record["reused"], "videos": len(cohort),
            "left_out": len(getattr(cohort, "left_out", [])),
            "reextracted_on_load": sum(path.stat().st_mtime > extracted_before for path in cache.rglob("*.npz"))}


def folder_mb(folder: Path) -> float:
    """Bytes of the regular files under `folder`, in MB (0 if it does not exist)."""
    if not folder.exists():
        return 0.0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def run_monitored(command: list[str], kill_when=None) -> dict:
    """Run a command in its own session; wall time, peak summed RSS of its process tree, whether it was killed.

    `kill_when(elapsed_seconds)` is polled every SAMPLE_EVERY_S; when it returns True the session is killed (SIGKILL).
    """
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, start_new_session=True, env={**os.environ, "TQDM_DISABLE": "1"})
    parent, peak, killed_at = psutil.Process(process.pid), 0, None
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(member.memory_info().rss for member in tree))
        except psutil.Error:
            pass
        if kill_when is not None and killed_at is None and kill_when(time.perf_counter() - started):
            killed_at = time.time()
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(SAMPLE_EVERY_S)
    wall = time.perf_counter() - started
    if process.returncode != 0 and killed_at is None:
        raise RuntimeError(f"{' '.join(command)} failed with exit status {process.returncode}")
    return {"wall_s": wall, "peak_rss_mb": peak / 2**20, "killed_at_epoch_s": killed_at}


def extraction_command(index: Path, cache: Path, keep: int = 4, every: int = 100) -> list[str]:
    """The feature pipeline's command line with the paper profile's cost and offline stand-ins."""
    return [sys.executable, "-m", "mddr_utils.features.pipeline", "--index", str(index), "--cache", str(cache),
            "--dataset", "avec2014", "--keep", str(keep), "--every", str(every),
            "--visual-weights", EXTRACTION["visual_weights"], "--hubert", EXTRACTION["hubert"], "--offline",
            "--on-error", EXTRACTION["on_error"], "--no-progress"]


def finished_videos(cache: Path) -> set[str]:
    """Videos whose three feature files are all written."""
    names = [{path.stem for path in (cache / modality).glob("*.npz")} for modality in ("visual", "audio", "head")]
    return set.intersection(*names)


def newest_write(cache: Path) -> float:
    """The modification time of the newest feature file (0 if none)."""
    return max((path.stat().st_mtime for path in cache.rglob("*.npz")), default=0.0)


def kill_midway(cache: Path, total: int):
    """A kill_when: true half a video (at the average pace so far) after half of the videos are written."""
    state = {}

    def decide(elapsed: float) -> bool:
        if "deadline" not in state:
            done = len(finished_videos(cache))
            if done >= max(1, total // 2):
                state["deadline"] = elapsed + 0.5 * elapsed / done
            return False
        return elapsed >= state["deadline"]

    return decide


def write_index(root: Path, destination: Path) -> int:
    """index_avec2014 of `root` as CSV at `destination`; the number of videos."""
    from mddr_utils.data.avec import index_avec2014

    index = index_avec2014(root)
    index.to_csv(destination, index=False)
    return len(index)


def manifest_frames(cache: Path) -> int:
    """Sampled frames recorded in a cache's manifest (the visual summaries)."""
    manifest = json.loads((cache / "manifest.json").read_text())
    return sum((entry.get("visual") or {}).get("frames", 0) for entry in manifest["videos"])


def self_stage(stage: str, workdir: Path, arguments: argparse.Namespace) -> tuple[dict, dict]:
    """Run one in-process stage of this script in a child process; (its monitor record, its result)."""
    result_path = workdir / f"stage_{stage}.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--stage", stage, "--workdir", str(workdir), "--fraction",
               str(arguments.fraction), "--seed", str(arguments.seed), "--jobs", str(arguments.jobs),
               "--epochs", str(arguments.epochs)]
    if arguments.max_seconds:
        command += ["--max-seconds", str(arguments.max_seconds)]
    monitor = run_monitored(command)
    return monitor, json.loads(result_path.read_text())


def rehearse(arguments: argparse.Namespace) -> dict:
    """All stages, in order; the record that --out saves."""
    workdir = arguments.workdir.expanduser().absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
               "gemm_gflops": print_gemm(), "fraction": arguments.fraction, "seed": arguments.seed,
               "max_seconds": arguments.max_seconds, "frame_size": list(FRAME_SIZE), "fps": FPS,
               "audio_rate": AUDIO_RATE, "durations_assumed": DURATIONS, "load_average_start": load_average(),
               "stages": {}}
    stages = results["stages"]
    print(f"\n[1/4] generating the cohort under {workdir / 'avec2014'}", flush=True)
    monitor, made = self_stage("generate", workdir, arguments)
    stages["generate"] = {**monitor, **made, "disk_mb": folder_mb(workdir / "avec2014")}
    results.update(videos=made["videos"], video_seconds=made["seconds"],
                   recordings=made["videos"] // len(AVEC2014_TASKS))

    index = workdir / "index.csv"
    write_index(workdir / "avec2014", index)
    cache = workdir / "data" / "features" / "avec2014"
    if cache.exists():
        raise FileExistsError(f"{cache} exists: the dress rehearsal needs a fresh workdir (it measures a first extraction)")
    print(f"[2/4] extracting into {cache}, killed midway, then resumed", flush=True)
    decide = kill_midway(cache, made["videos"])
    killed = run_monitored(extraction_command(index, cache), kill_when=decide)
    if killed["killed_at_epoch_s"] is None:
        raise RuntimeError("the extraction finished before the kill; use a larger --fraction or --max-seconds")
    last_write = newest_write(cache)
    killed.update(videos_done_at_kill=len(finished_videos(cache)), in_flight_lost_s=killed["killed_at_epoch_s"] - last_write,
                  partial_files_left=len(list(cache.rglob("*.partial"))))
    resumed = run_monitored(extraction_command(index, cache))
    resumed["disk_mb"] = folder_mb(cache)
    stages["extract_killed"], stages["extract_resumed"] = killed, resumed
    results["sampled_frames"] = manifest_frames(cache)

    overhead_index = workdir / "overhead_index.csv"
    write_index(workdir / "overhead", overhead_index)
    overhead_cache = workdir / "overhead_cache"
    if overhead_cache.exists():
        raise FileExistsError(f"{overhead_cache} exists: the dress rehearsal needs a fresh workdir")
    stages["process_overhead"] = run_monitored(extraction_command(overhead_index, overhead_cache))
    stages["kill"] = {"in_flight_lost_s": killed["in_flight_lost_s"],
                      "process_overhead_s": stages["process_overhead"]["wall_s"],
                      "lost_from_provenance_s": killed["in_flight_lost_s"] + stages["process_overhead"]["wall_s"]}
    if arguments.reference:
        reference = run_monitored(extraction_command(index, workdir / "reference_cache"))
        stages["extract_reference"] = reference
        stages["kill"]["lost_direct_s"] = killed["wall_s"] + resumed["wall_s"] - reference["wall_s"]

    print("[3/4] probing the cost split (4 and 1 of every 100 frames) and counting FLOPs", flush=True)
    from mddr_utils.data.avec import index_avec2014

    table = index_avec2014(workdir / "avec2014")
    seconds = {video["video_id"]: video["seconds"]
               for video in plan_cohort(arguments.fraction, arguments.seed, arguments.max_seconds)}
    longest = max(table["video_id"], key=seconds.__getitem__)
    probe_index = workdir / "probe_index.csv"
    table[table["video_id"] == longest].to_csv(probe_index, index=False)
    probe = {"video_id": longest, "video_seconds": seconds[longest]}
    for keep in (4, 1):
        probe_cache = workdir / f"probe_cache_keep{keep}"
        run = run_monitored(extraction_command(probe_index, probe_cache, keep=keep))
        probe[f"keep{keep}"] = {**run, "frames": manifest_frames(probe_cache)}
    per_frame = ((probe["keep4"]["wall_s"] - probe["keep1"]["wall_s"])
                 / max(probe["keep4"]["frames"] - probe["keep1"]["frames"], 1))
    per_second = ((probe["keep1"]["wall_s"] - stages["process_overhead"]["wall_s"] - per_frame * probe["keep1"]["frames"])
                  / probe["video_seconds"])
    probe.update(per_sampled_frame_s=per_frame, per_video_second_s=per_second,
                 conclusive=per_frame > 0 and per_second > 0)
    monitor, flops = self_stage("flops", workdir, arguments)
    stages["probe"], results["flops"] = probe, flops

    print(f"[4/4] training the paper recipe ({arguments.epochs} epochs)", flush=True)
    monitor, trained = self_stage("train", workdir, arguments)
    stages["train"] = {**monitor, **trained, "disk_mb": folder_mb(workdir / "results") + folder_mb(workdir / "data" / "checkpoints")}
    results["load_average_end"] = load_average()
    return results


def print_table(results: dict) -> None:
    """The per-stage table of one run."""
    stages = results["stages"]
    print(f"\nDress rehearsal, fraction {results['fraction']:g}: {results['recordings']} recordings, {results['videos']} "
          f"videos, {results['video_seconds'] / 60:.1f} min of video, {results['sampled_frames']} sampled frames"
          + (f", every video capped at {results['max_seconds']:g} s" if results["max_seconds"] else ""))
    print(f"{'stage':38s} {'wall':>9s} {'peak RSS':>10s} {'on disk':>10s}")
    rows = [("1 generate cohort", stages["generate"], stages["generate"].get("disk_mb")),
            ("2 extract, killed midway", stages["extract_killed"], None),
            ("2 extract, resumed", stages["extract_resumed"], stages["extract_resumed"].get("disk_mb"))]
    if "extract_reference" in stages:
        rows.append(("2 extract, uninterrupted (reference)", stages["extract_reference"], None))
    rows.append((f"3 train paper recipe ({stages['train']['epochs']} epochs)", stages["train"], stages["train"]["disk_mb"]))
    for name, stage, disk in rows:
        disk_text = f"{disk:8.1f} MB" if disk is not None else f"{'':>10s}"
        print(f"{name:38s} {stage['wall_s']:8.1f}s {stage['peak_rss_mb']:7.0f} MB {disk_text}")
    print(f"   of which load_cohort (identity checks) {stages['train']['load_wall_s']:.1f} s, "
          f"run_seed {stages['train']['train_wall_s']:.1f} s")
    if stages["train"]["reextracted_on_load"]:
        print(f"   WARNING: load_cohort re-extracted {stages['train']['reextracted_on_load']} feature files: the "
              f"command line and load_cohort disagree on the settings, or the code changed during the run")
    kill = stages["kill"]
    print(f"time lost to the kill: in flight {kill['in_flight_lost_s']:.1f} s + process overhead "
          f"{kill['process_overhead_s']:.1f} s = {kill['lost_from_provenance_s']:.1f} s"
          + (f"; direct (killed + resumed - uninterrupted) {kill['lost_direct_s']:.1f} s" if "lost_direct_s" in kill else ""))
    probe = stages["probe"]
    print(f"cost split ({probe['video_seconds']:.0f} s video): {probe['per_sampled_frame_s'] * 1000:.0f} ms per sampled frame, "
          f"{probe['per_video_second_s'] * 1000:.0f} ms per video second"
          + ("" if probe["conclusive"] else " (INCONCLUSIVE: a negative part; the machine was too noisy)"))
    flops = results["flops"]
    print(f"FLOPs: ResNet-50 {flops['resnet50_flop_per_image'] / 1e9:.1f} GFLOP per image, HuBERT (24 layers) "
          f"{flops['hubert_flop_per_audio_second'] / 1e9:.1f} GFLOP per audio second")
    print(f"load average {results['load_average_start']} at the start, {results['load_average_end']} at the end")


def extraction_wall(run: dict) -> float:
    """Extraction time of a run without the kill: the reference if measured, else killed + resumed - lost."""
    stages = run["stages"]
    if "extract_reference" in stages:
        return stages["extract_reference"]["wall_s"]
    return stages["extract_killed"]["wall_s"] + stages["extract_resumed"]["wall_s"] - stages["kill"]["lost_from_provenance_s"]


def extrapolate(paths: list[Path], gpu_tflops: float, host_cores: int) -> None:
    """Check linear growth between two runs and extrapolate to AVEC2014, AVEC2013 and per GPU-hour (estimate)."""
    small, large = sorted((json.loads(Path(path).read_text()) for path in paths), key=lambda run: run["video_seconds"])
    if any(run["max_seconds"] for run in (small, large)):
        print("WARNING: a run capped its videos (--max-seconds): its durations are not AVEC2014's")
    size_ratio = large["video_seconds"] / small["video_seconds"]
    print(f"sizes: {small['video_seconds'] / 60:.1f} and {large['video_seconds'] / 60:.1f} min of video "
          f"(fractions {small['fraction']:g}, {large['fraction']:g}); ratio {size_ratio:.2f}")

    def per_epoch(run):
        return run["stages"]["train"]["train_wall_s"] / run["stages"]["train"]["epochs"]

    costs = {"extraction (uninterrupted)": extraction_wall, "training, per epoch": per_epoch,
             "generation": lambda run: run["stages"]["generate"]["wall_s"]}
    fits = {}
    for name, cost in costs.items():
        low, high = cost(small), cost(large)
        slope = (high - low) / (large["video_seconds"] - small["video_seconds"])
        fits[name] = (low - slope * small["video_seconds"], slope)
        print(f"  {name:28s} {low:9.1f} s -> {high:9.1f} s, ratio {high / low:.2f} vs size ratio {size_ratio:.2f} "
              f"({'linear within 15%' if abs(high / low / size_ratio - 1) <= 0.15 else 'NOT linear within 15%'})")

    full_seconds = sum(video["seconds"] for video in plan_cohort(1.0, small["seed"]))
    extraction = fits["extraction (uninterrupted)"][0] + fits["extraction (uninterrupted)"][1] * full_seconds
    epoch = fits["training, per epoch"][0] + fits["training, per epoch"][1] * full_seconds
    training = PAPER_EPOCHS * epoch
    print(f"\nFull AVEC2014 on this machine ({len(plan_cohort(1.0))} videos, {full_seconds / 3600:.1f} h of video, "
          f"assumed durations): extraction {extraction / 3600:.2f} h + training ({PAPER_EPOCHS} epochs) "
          f"{training / 3600:.2f} h = {(extraction + training) / 3600:.2f} h (goal: within 3 h on 2 cores)")

    probes = [run["stages"]["probe"] for run in (small, large) if run["stages"]["probe"]["conclusive"]]
    seconds_2013 = AVEC2013["recordings"] * AVEC2013["seconds"]
    frames_2013 = seconds_2013 * FPS * AVEC2013["keep"] / AVEC2013["every"]
    if probes:
        per_frame = float(np.mean([probe["per_sampled_frame_s"] for probe in probes]))
        per_second = float(np.mean([probe["per_video_second_s"] for probe in probes]))
        extraction_2013 = per_second * seconds_2013 + per_frame * frames_2013
        # Assumption: a training epoch costs in proportion to the audio seconds (HuBERT frames at 50 Hz
        # dominate the input); AVEC2013 samples 1 of 100 frames, so its visual steps are fewer per second.
        training_2013 = PAPER_EPOCHS * fits["training, per epoch"][1] * seconds_2013
        print(f"AVEC2013 on this machine ({AVEC2013['recordings']} x {AVEC2013['seconds'] / 60:.0f} min, 1 of every 100 "
              f"frames): extraction {extraction_2013 / 3600:.1f} h ({per_second * 1000:.0f} ms per video second + "
              f"{per_frame * 1000:.0f} ms per sampled frame, from the probes); training {training_2013 / 3600:.1f} h "
              f"(ASSUMED proportional to audio seconds)")
    else:
        print("AVEC2013: no conclusive cost-split probe; not extrapolated")

    flops = large["flops"]
    cpu_bf16 = large["gemm_gflops"]["bfloat16"] * 1e9
    print(f"\nPer GPU-hour: ESTIMATE, not measured. Assumptions: the networks (ResNet-50, HuBERT) run on the GPU "
          f"at {gpu_tflops:g} TFLOP/s effective (--gpu-tflops); everything else (decoding, face detection, head pose, "
          f"{host_cores} host cores, --host-cores) scales from this machine's 2 cores; training runs "
          f"{gpu_tflops * 1e12 / cpu_bf16:.0f}x faster than here (the ratio of that rate to this machine's measured "
          f"bfloat16 GEMM rate, {cpu_bf16 / 1e9:.0f} GFLOP/s).")

    def network_share(seconds: float, frames: float) -> float:
        return flops["hubert_flop_per_audio_second"] * seconds + flops["resnet50_flop_per_image"] * frames

    for name, seconds, frames, cpu_extraction, cpu_training in (
            ("AVEC2014", full_seconds, full_seconds * FPS * 4 / 100, extraction, training),
            ("AVEC2013", seconds_2013, frames_2013, extraction_2013 if probes else None,
             training_2013 if probes else None)):
        if cpu_extraction is None:
            continue
        gpu_network = network_share(seconds, frames) / (gpu_tflops * 1e12)
        cpu_network = network_share(seconds, frames) / cpu_bf16
        host = max(cpu_extraction - cpu_network, 0.0) * 2 / host_cores
        gpu_hours = (max(gpu_network, host) + cpu_training * cpu_bf16 / (gpu_tflops * 1e12)) / 3600
        print(f"  {name}: about {gpu_hours:.2f} GPU-hours (networks {gpu_network / 60:.1f} min on the GPU, host work "
              f"{host / 3600:.2f} h overlapping it, training {cpu_training * cpu_bf16 / (gpu_tflops * 1e12) / 60:.1f} min)"
              f" -> {seconds / 3600 / max(gpu_hours, 1e-9):.1f} h of video per GPU-hour")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.125, help="share of AVEC2014's 150 recordings (e.g. 0.125)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mddr_dress_rehearsal"), help="where everything goes")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="cap every video's length (quick validation only; not AVEC-like)")
    parser.add_argument("--epochs", type=int, default=PAPER_EPOCHS, help=f"training epochs (paper: {PAPER_EPOCHS})")
    parser.add_argument("--jobs", type=int, default=1, help="processes generating videos")
    parser.add_argument("--reference", action="store_true",
                        help="also extract once without a kill, to measure the time lost directly")
    parser.add_argument("--extrapolate", nargs=2, type=Path, metavar="JSON", help="two runs' --out files")
    parser.add_argument("--gpu-tflops", type=float, default=200.0,
                        help="ASSUMED effective GPU rate for the networks, TFLOP/s (estimate only)")
    parser.add_argument("--host-cores", type=int, default=8, help="ASSUMED CPU cores beside the GPU (estimate only)")
    parser.add_argument("--stage", choices=("generate", "flops", "train"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if not 0 < arguments.fraction <= 1:
        parser.error(f"--fraction must be in (0, 1], got {arguments.fraction}")
    if arguments.extrapolate:
        extrapolate(arguments.extrapolate, arguments.gpu_tflops, arguments.host_cores)
        return
    workdir = arguments.workdir.expanduser().absolute()
    if arguments.stage:
        work = {"generate": lambda: stage_generate(workdir, arguments.fraction, arguments.seed, arguments.max_seconds,
                                                   arguments.jobs),
                "flops": stage_flops,
                "train": lambda: stage_train(workdir, arguments.epochs)}[arguments.stage]
        (workdir / f"stage_{arguments.stage}.json").write_text(json.dumps(work(), indent=1))
        return
    print(f"dress_rehearsal  {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine: {machine()}")
    results = rehearse(arguments)
    print_table(results)
    if arguments.out:
        arguments.out.write_text(json.dumps(results, indent=1))
        print(f"results written to {arguments.out}")


if __name__ == "__main__":
    main()
