"""The demo cohort's container (see `demo_cohort`): frames and voice encoded into one .mp4, H.264
video and AAC audio, with a chosen keyframe interval."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .demo_voice import AUDIO_RATE

def encode(path: Path, frames, audio: np.ndarray, fps: int, size, keyframe_interval: int) -> None:
    """H.264 and AAC in an .mp4. x264 runs on one thread: with two, 1 video in 12 came out with
    different bytes from run to run, and the cohort must be the same for the same seed."""
    width, height = (int(value) for value in size)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={
            "crf": "23", "preset": "veryfast", "g": str(keyframe_interval), "threads": "1"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        sound.bit_rate = 64000
        samples_per_frame = AUDIO_RATE / fps
        audio_written = 0
        for number, rgb in enumerate(frames):
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
            # Audio follows the video in steps of at least one AAC frame, so the file is interleaved as written.
            audio_due = min(round((number + 1) * samples_per_frame), len(audio))
            if audio_due - audio_written >= 1024 or audio_due == len(audio):
                _mux_audio(container, sound, audio[audio_written:audio_due], audio_written)
                audio_written = audio_due
        _mux_audio(container, sound, audio[audio_written:], audio_written)
        for stream in (video, sound):
            for packet in stream.encode(None):
                container.mux(packet)


def _mux_audio(container, stream, samples: np.ndarray, first_sample: int) -> None:
    """Encode samples into AAC frames of 1024; PyAV pads the very last one with silence, so the
    track can run up to 64 ms past the last video frame."""
    if len(samples) == 0:
        return
    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="fltp", layout="mono")
    frame.sample_rate = AUDIO_RATE
    frame.pts = first_sample
    frame.time_base = Fraction(1, AUDIO_RATE)
    for packet in stream.encode(frame):
        container.mux(packet)
