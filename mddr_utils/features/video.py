"""Frames and audio out of a recording, the input of feature pre-extraction (paper sections 3.2, 4.3).

Section 4.3: "we extracted one frame out of every 100 for AVEC 2013 and four frames out of every
100 for AVEC 2014" and "We use the audio processing library librosa to extract audio signals from
videos with a sampling rate of 16000 Hz."

`sample_frames` keeps `keep` evenly spaced frames of every `every`, counted from frame 0
(keep=4, every=100: frames 0, 25, 50, 75, 100, 125, ...). How it decodes was chosen by measurement
(`benchmarks/bench_sampling.py`, 60 s of 640x480 H.264 on 2 cores): converting a frame to RGB
costs more than decoding it, so only kept frames are converted (decoding all 1800 frames and
converting the 72 kept ones: 0.56 s; converting every frame: 1.3 s). Seeking to each kept frame
re-decodes from the keyframe before it: 2.4 s with 250-frame keyframe intervals (x264's default),
0.44 s with 30. So the keyframe positions are read first (demuxing without decoding, 0.01 s) and
the decoder runs forward, jumping ahead only where a keyframe lies between its position and the
next kept frame: it never decodes more than reading every frame would, and skips like seeking
where keyframes are dense (0.48 s and 0.41 s on the two clips). The frames are those of decoding
every frame in order: frame i is the i-th frame in presentation order, and its timestamp is
i / (the stream's average frame rate), so frame 0 is at 0 s like the audio's first sample.

`load_audio` reads 16 kHz mono float32: .wav/.flac/.ogg through soundfile, anything else (the
audio track of an .mp4) through PyAV, because librosa cannot read .mp4 without an ffmpeg binary.
Both paths downmix by the mean of the channels, as librosa does (PyAV's own stereo-to-mono downmix
is sqrt(2) louder), and resample with soxr (librosa's default), so a .wav and an .mp4 of the same
signal give the same amplitude and `load_audio(wav)` equals `librosa.load(wav, sr=16000)`.
"""
from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import av
import librosa
import numpy as np
import soundfile

SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class FrameLayout:
    """Where a video's frames are: presentation timestamps in order, keyframe indices, frame rate."""

    path: Path
    pts: tuple[int, ...] | None
    keyframes: tuple[int, ...]
    fps: float
    num_frames: int


def sample_frames(path: str | Path, keep: int = 4, every: int = 100) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (frame index, seconds, RGB uint8 [H, W, 3]) for `keep` evenly spaced frames of every `every`."""
    path = _existing_file(path)
    if not (isinstance(keep, Integral) and isinstance(every, Integral) and 1 <= keep <= every):
        raise ValueError(f"sample_frames needs integers 1 <= keep <= every, got keep={keep!r}, every={every!r}")
    keep, every = int(keep), int(every)
    layout = frame_layout(path)
    offsets = sorted({step * every // keep for step in range(keep)})
    targets = [start + offset for start in range(0, layout.num_frames, every) for offset in offsets
               if start + offset < layout.num_frames]
    return _decode_targets(layout, targets)


def frame_layout(path: str | Path) -> FrameLayout:
    """Read a video's frame timestamps and keyframes without decoding; ValueError naming the file."""
    path = _existing_file(path)
    with _media_errors(path, "not a readable video"), av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        stored, packets = 0, []
        for packet in container.demux(stream):
            if packet.size:
                stored += 1
                if not packet.is_discard:
                    packets.append((packet.pts, packet.is_keyframe))
        rate = stream.average_rate or stream.guessed_rate
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        declared = stream.frames
    if not packets:
        raise ValueError(f"{path}: the video stream has no frames")
    if declared and stored < declared:
        raise ValueError(f"{path}: truncated: the file holds {stored} of the {declared} frames its header lists")
    fps = float(rate) if rate else len(packets) / duration if duration else 0.0
    if fps <= 0:
        raise ValueError(f"{path}: the video stream states no frame rate")
    stamps = [pts for pts, _ in packets]
    if None in stamps or len(set(stamps)) != len(stamps):
        # Without distinct timestamps frames can only be counted, in decoding order from the start.
        return FrameLayout(path, None, (0,), fps, len(packets))
    order = sorted(stamps)
    rank = {pts: index for index, pts in enumerate(order)}
    keyframes = tuple(sorted(rank[pts] for pts, is_key in packets if is_key)) or (0,)
    return FrameLayout(path, tuple(order), keyframes, fps, len(packets))


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """The recording's audio as float32 mono at `sample_rate` Hz: channel mean, soxr resampling."""
    path = _existing_file(path)
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        mono, rate = _read_sound_file(path)
    else:
        mono, rate = _decode_audio_track(path)
    if len(mono) == 0:
        raise ValueError(f"{path}: the audio track has no samples")
    if rate != sample_rate:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _decode_targets(layout: FrameLayout, targets: list[int]) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode forward through the targets, seeking only where a keyframe lets it skip frames."""
    path = layout.path
    rank = {pts: index for index, pts in enumerate(layout.pts)} if layout.pts else None
    with _media_errors(path, "cannot be decoded"), av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = container.decode(stream)
        position = 0
        counted = -1
        for target in targets:
            keyframe = layout.keyframes[max(bisect.bisect_right(layout.keyframes, target) - 1, 0)]
            if rank is not None and keyframe > position:
                container.seek(layout.pts[keyframe], stream=stream, backward=True)
                frames = container.decode(stream)
                position = keyframe
            for frame in frames:
                if rank is None:
                    counted += 1
                    index = counted
                elif frame.pts in rank:
                    index = rank[frame.pts]
                else:
                    raise ValueError(f"{path}: a decoded frame's timestamp {frame.pts} is not among the file's packets")
                position = index + 1
                if index == target:
                    yield index, index / layout.fps, frame.to_ndarray(format="rgb24")
                    break
                if index > target:
                    raise ValueError(f"{path}: frame {target} could not be decoded (the decoder skipped to {index})")
            else:
                raise ValueError(f"{path}: truncated: the stream ends before frame {target} of {layout.num_frames}")


def _read_sound_file(path: Path) -> tuple[np.ndarray, int]:
    """A .wav/.flac/.ogg as float32 mono (the channel mean, a block at a time) and its sample rate."""
    try:
        with soundfile.SoundFile(str(path)) as sound:
            blocks = [block.mean(axis=1) for block in sound.blocks(blocksize=1 << 20, dtype="float32", always_2d=True)]
            rate = sound.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise ValueError(f"{path}: not a readable audio file ({error})") from error
    return (np.concatenate(blocks) if blocks else np.zeros(0, np.float32)), rate


def _decode_audio_track(path: Path) -> tuple[np.ndarray, int]:
    """The first audio track as float32 mono (the channel mean, a frame at a time) and its sample rate."""
    with _media_errors(path, "not a readable audio or video file"), av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path}: has no audio track")
        stream = container.streams.audio[0]
        rate = stream.rate
        # Format conversion only: same layout and rate, so FFmpeg neither downmixes nor resamples.
        converter = av.AudioResampler(format="fltp", layout=stream.layout, rate=rate)
        chunks = []
        for frame in itertools.chain(container.decode(stream), [None]):
            chunks.extend(converted.to_ndarray().mean(axis=0) for converted in converter.resample(frame))
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), rate


def _existing_file(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise IsADirectoryError(f"{path}: is a folder, not a media file")
    return path


@contextmanager
def _media_errors(path: Path, what: str):
    """Turn FFmpeg's errors into a ValueError that names the file."""
    try:
        yield
    except av.FFmpegError as error:
        raise ValueError(f"{path}: {what} ({error})") from error
