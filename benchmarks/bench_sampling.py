"""Frame sampling (paper section 4.3: 4 of every 100 frames for AVEC2014): which way of decoding pays.

Prints, for a demo-cohort video and a 60 s 640x480 clip with long (250-frame) and short (30-frame)
keyframe intervals, the best of a few runs (the methods take turns) of:
  all-rgb      decode every frame and convert every frame to RGB
  all-decode   decode every frame, convert only the kept ones to RGB
  seek-each    seek to the keyframe before every kept frame, decode from there
  sample       mddr_utils.features.sample_frames (decode forward, jump where a keyframe allows)
  layout       mddr_utils.features.frame_layout alone (the keyframe scan sample_frames starts with)
and all-decode and sample at AVEC2013's rate, 1 of every 100 frames.

Run: .venv/bin/python benchmarks/bench_sampling.py [--workdir DIR] [--repeats 5]
"""
from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from functools import partial
from pathlib import Path

import av
import numpy as np

from common import machine, print_gemm
from mddr_utils.data.demo_cohort import write_demo_video
from mddr_utils.features import frame_layout, sample_frames

KEEP, EVERY = 4, 100


def kept_offsets(keep: int, every: int) -> set[int]:
    return {step * every // keep for step in range(keep)}


def all_rgb(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for frame in container.decode(video=0) if frame.to_ndarray(format="rgb24") is not None)


def all_decode(path: Path, keep: int = KEEP, every: int = EVERY) -> int:
    offsets = kept_offsets(keep, every)
    with av.open(str(path)) as container:
        return sum(1 for index, frame in enumerate(container.decode(video=0))
                   if index % every in offsets and frame.to_ndarray(format="rgb24") is not None)


def seek_each(path: Path) -> int:
    layout = frame_layout(path)
    offsets = kept_offsets(KEEP, EVERY)
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index in (i for i in range(layout.num_frames) if i % EVERY in offsets):
            target = layout.pts[index]
            container.seek(target, stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts == target:
                    frame.to_ndarray(format="rgb24")
                    count += 1
                    break
    return count


def sample(path: Path, keep: int = KEEP, every: int = EVERY) -> int:
    return sum(1 for _ in sample_frames(path, keep=keep, every=every))


def layout_only(path: Path) -> int:
    return frame_layout(path).num_frames


def best_times(methods: dict, path: Path, repeats: int) -> dict[str, tuple[float, int]]:
    """Each method's best time and result; the methods take turns, so a busy spell hits them alike."""
    best = {name: (float("inf"), 0) for name in methods}
    for _ in range(repeats):
        for name, function in methods.items():
            start = time.perf_counter()
            result = function(path)
            best[name] = (min(best[name][0], time.perf_counter() - start), result)
    return best


def reencode(source: Path, target: Path, keyframe_interval: int) -> None:
    """The same pictures with another keyframe interval (audio dropped: only video is timed)."""
    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        incoming = reader.streams.video[0]
        outgoing = writer.add_stream("libx264", rate=incoming.average_rate,
                                     options={"crf": "23", "preset": "veryfast", "g": str(keyframe_interval)})
        outgoing.width, outgoing.height, outgoing.pix_fmt = incoming.width, incoming.height, "yuv420p"
        for frame in reader.decode(incoming):
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            for packet in outgoing.encode(picture):
                writer.mux(packet)
        for packet in outgoing.encode(None):
            writer.mux(packet)


def clips(workdir: Path) -> dict[str, Path]:
    """Write (once) the clips to time."""
    made = {
        "demo video 320x240 ~10 s, GOP 250": workdir / "demo_320x240_10s.mp4",
        "60 s 640x480, GOP 250": workdir / "clip_640x480_60s_gop250.mp4",
        "60 s 640x480, GOP 30": workdir / "clip_640x480_60s_gop30.mp4",
    }
    paths = list(made.values())
    if not paths[0].exists():
        write_demo_video(paths[0], label=20, seconds=10, size=(320, 240), seed=0)
    if not paths[1].exists():
        write_demo_video(paths[1], label=20, seconds=60, size=(640, 480), seed=1, keyframe_interval=250)
    if not paths[2].exists():
        reencode(paths[1], paths[2], keyframe_interval=30)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="where the clips are written (kept for reuse)")
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    workdir = arguments.workdir or Path(tempfile.mkdtemp(prefix="bench_sampling_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# frame sampling, keep {KEEP} of every {EVERY}; {datetime.date.today().isoformat()}")
    print(f"# {machine()}; PyAV {av.__version__}")
    print_gemm()
    print(f"# best of {arguments.repeats} runs; seconds (frames converted to RGB)")
    methods = {"all-rgb": all_rgb, "all-decode": all_decode, "seek-each": seek_each, "sample": sample,
               "layout": layout_only, "all-decode 1/100": partial(all_decode, keep=1),
               "sample 1/100": partial(sample, keep=1)}
    for name, path in clips(workdir).items():
        layout = frame_layout(path)
        keyframes = np.diff(layout.keyframes).mean() if len(layout.keyframes) > 1 else layout.num_frames
        print(f"\n{name}: {layout.num_frames} frames, keyframe every {keyframes:.0f} frames, {path}")
        for method, (seconds, count) in best_times(methods, path, arguments.repeats).items():
            unit = "frames indexed" if method == "layout" else "frames to RGB"
            print(f"  {method:<16} {seconds:7.3f} s   ({count} {unit})")


if __name__ == "__main__":
    main()
