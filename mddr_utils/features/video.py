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
every frame in order: frame i is the i-th frame in presentation order, and its time is its own
presentation timestamp less the first frame's, so frame 0 is at 0 s like the audio's first sample
and a variable-frame-rate recording keeps its true times (i / the average frame rate only where
the file gives frames no distinct timestamps).

A file cut short (a copy that stopped, a partial download) still opens when its header survives:
`frame_layout` compares where its last frame ends with the duration the file states for the video
(the stream's, else the Matroska track's DURATION tag, else the container's, compared then with
where any of its streams ends) and refuses a gap larger than `TRUNCATION_TOLERANCE` = max(1 s, 2 %
of the stated duration): room for timestamps and durations that legitimately disagree a little
(encoder delay, durations estimated from the bit rate); a cut loses far more.

A separate audio file (AVEC2014 ships one per video) is compared with its video by
`check_audio_matches_video`, from the durations the files state (no decoding where they state
one): a gap beyond `AUDIO_MISMATCH_TOLERANCE` = max(1 s, 5 % of the video) is warned about, naming
both files. 1 s covers codec padding and tracks cut separately from one session; 5 % lets a long
recording carry some lead-in or tail; audio of another recording, or a cut one, differs by more.

`load_audio` reads 16 kHz mono float32: .wav/.flac/.ogg through soundfile, anything else (the
audio track of an .mp4) through PyAV, because librosa cannot read .mp4 without an ffmpeg binary.
Both paths downmix by the mean of the channels, as librosa does (PyAV's own stereo-to-mono downmix
is sqrt(2) louder), and resample with soxr (librosa's default), so a .wav and an .mp4 of the same
signal give the same amplitude and `load_audio(wav)` equals `librosa.load(wav, sr=16000)`.
"""
from __future__ import annotations

import bisect
import itertools
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral
from pathlib import Path

import av
import librosa
import numpy as np
import soundfile

SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg")
TRUNCATION_TOLERANCE = (1.0, 0.02)
AUDIO_MISMATCH_TOLERANCE = (1.0, 0.05)


class InputMismatchWarning(UserWarning):
    """Two inputs of one recording disagree (audio and video durations, an OpenFace CSV and its video)."""


@dataclass(frozen=True)
class FrameLayout:
    """Where a video's frames are: presentation timestamps in order, keyframe indices, frame rate."""

    path: Path
    pts: tuple[int, ...] | None
    keyframes: tuple[int, ...]
    fps: float
    num_frames: int
    time_base: Fraction | None = None

    def seconds(self, index: int) -> float:
        """Frame `index`'s time from the first frame: its timestamp, or index / fps where there is none."""
        if self.pts is None or self.time_base is None:
            return index / self.fps
        return float((self.pts[index] - self.pts[0]) * self.time_base)


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
        stated = _stated_span(container, stream)
        # A container's duration covers every stream (its audio may outlast the video), so where
        # only the container states one, all streams are read to find where the content ends.
        whole_file = stated is not None and stated[2]
        stored, packets, end = 0, [], None
        for packet in container.demux() if whole_file else container.demux(stream):
            if not packet.size:
                continue
            if packet.pts is not None and packet.time_base is not None:
                finish = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                end = finish if end is None else max(end, finish)
            if packet.stream.index == stream.index:
                stored += 1
                if not packet.is_discard:
                    packets.append((packet.pts, packet.is_keyframe))
        rate = stream.average_rate or stream.guessed_rate
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        declared = stream.frames
        time_base = stream.time_base
    if not packets:
        raise ValueError(f"{path}: the video stream has no frames")
    if declared and stored < declared:
        raise ValueError(f"{path}: truncated: the file holds {stored} of the {declared} frames its header lists")
    fps = float(rate) if rate else len(packets) / duration if duration else 0.0
    if fps <= 0:
        raise ValueError(f"{path}: the video stream states no frame rate")
    if end is not None and stated is not None:
        _check_not_truncated(path, end, stated)
    stamps = [pts for pts, _ in packets]
    if None in stamps or len(set(stamps)) != len(stamps):
        # Without distinct timestamps frames can only be counted, in decoding order from the start.
        return FrameLayout(path, None, (0,), fps, len(packets))
    order = sorted(stamps)
    rank = {pts: index for index, pts in enumerate(order)}
    keyframes = tuple(sorted(rank[pts] for pts, is_key in packets if is_key)) or (0,)
    return FrameLayout(path, tuple(order), keyframes, fps, len(packets), time_base)


def media_duration(path: str | Path, kind: str = "audio") -> float:
    """Seconds the file's audio or video stream lasts, as the file states it (demuxed only where it does not)."""
    if kind not in ("audio", "video"):
        raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
    path = _existing_file(path)
    if kind == "audio" and path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            return float(soundfile.info(str(path)).duration)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
            raise ValueError(f"{path}: not a readable audio file ({error})") from error
    with _media_errors(path, f"not a readable {kind} file"), av.open(str(path)) as container:
        streams = container.streams.audio if kind == "audio" else container.streams.video
        if not streams:
            raise ValueError(f"{path}: has no {kind} {'track' if kind == 'audio' else 'stream'}")
        stream = streams[0]
        stated = _stated_span(container, stream)
        if stated is not None and (not stated[2] or len(container.streams) == 1):
            return stated[1]
        first, end = None, None
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None and packet.time_base is not None:
                start = float(packet.pts * packet.time_base)
                finish = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                first = start if first is None else min(first, start)
                end = finish if end is None else max(end, finish)
    if end is None:
        raise ValueError(f"{path}: the {kind} stream states no duration and holds no timed packets")
    return end - first


def check_audio_matches_video(audio_path: str | Path, video_path: str | Path) -> None:
    """Warn (InputMismatchWarning, naming both files) when a separate audio file's duration is not the video's."""
    audio_seconds = media_duration(audio_path, "audio")
    video_seconds = media_duration(video_path, "video")
    absolute, relative = AUDIO_MISMATCH_TOLERANCE
    tolerance = max(absolute, relative * video_seconds)
    if abs(audio_seconds - video_seconds) > tolerance:
        warnings.warn(f"{audio_path} lasts {audio_seconds:.2f} s but its video {video_path} lasts "
                      f"{video_seconds:.2f} s "
                      f"(more than the {tolerance:.2f} s tolerated): is it this video's audio, and whole?",
                      InputMismatchWarning, stacklevel=2)


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
                    yield index, layout.seconds(index), frame.to_ndarray(format="rgb24")
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


def _stated_span(container, stream) -> tuple[float, float, bool] | None:
    """(start s, duration s, whether it is the container's) the file states for a stream, or None.

    The stream's own duration first, then its DURATION tag (Matroska), then the container's.
    """
    if stream.duration and stream.time_base:
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        return start, float(stream.duration * stream.time_base), False
    tagged = _tag_seconds(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if tagged:
        return 0.0, tagged, False
    if container.duration:
        start = container.start_time / av.time_base if container.start_time is not None else 0.0
        return start, container.duration / av.time_base, True
    return None


def _tag_seconds(text: str | None) -> float | None:
    """Seconds of a Matroska DURATION tag such as '00:00:08.033000000'."""
    match = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*", text or "")
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _check_not_truncated(path: Path, end: float, stated: tuple[float, float, bool]) -> None:
    start, duration, whole_file = stated
    absolute, relative = TRUNCATION_TOLERANCE
    if start + duration - end > max(absolute, relative * duration):
        content = "its content" if whole_file else "its video stream"
        raise ValueError(f"{path}: truncated: {content} ends at {end - start:.2f} s but the file states "
                         f"{duration:.2f} s")


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
