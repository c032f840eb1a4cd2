"""Frame sampling and audio loading (section 4.3) on small videos written here with PyAV."""
import warnings
from fractions import Fraction
from pathlib import Path

import av
import librosa
import numpy as np
import pytest
import soundfile

from mddr_utils.features import frame_layout, load_audio, sample_frames
from mddr_utils.features.video import InputMismatchWarning, check_audio_matches_video, media_duration

FPS = 30


def write_video(path: Path, frames: int, keyframe_interval: int = 250, audio: np.ndarray | None = None,
                audio_rate: int = 44100, layout: str = "stereo", ticks: list[int] | None = None) -> Path:
    """A 64x48 H.264 clip whose frames all differ; `audio` [channels, samples] as an AAC track.

    `ticks`: each frame's timestamp in 1/FPS s units (gaps make a variable frame rate); default 0, 1, 2, ...
    """
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"g": str(keyframe_interval), "crf": "30"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("aac", rate=audio_rate, layout=layout) if audio is not None else None
        for index in range(frames):
            image = np.ascontiguousarray(texture[index % 48:index % 48 + 48, index % 96:index % 96 + 64])
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if ticks is not None:
                frame.pts, frame.time_base = int(ticks[index]), Fraction(1, FPS)
            for packet in video.encode(frame):
                container.mux(packet)
        if sound is not None:
            frame = av.AudioFrame.from_ndarray(audio.astype(np.float32), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = audio_rate, 0, Fraction(1, audio_rate)
            for packet in sound.encode(frame):
                container.mux(packet)
        for stream in (video, sound) if sound is not None else (video,):
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def decode_every_frame(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture(scope="module", params=[250, 12], ids=["long-gop", "short-gop"])
def clip(request, tmp_path_factory):
    """330 frames; with 12-frame keyframe intervals the sampler seeks, with 250 it mostly decodes on."""
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 330, keyframe_interval=request.param)


def test_keeps_four_of_every_hundred_frames_counted_from_zero(clip):
    sampled = list(sample_frames(clip, keep=4, every=100))
    indices = [index for index, _, _ in sampled]
    assert indices == [0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250, 275, 300, 325]
    assert [seconds for _, seconds, _ in sampled] == pytest.approx([index / FPS for index in indices])
    every_frame = decode_every_frame(clip)
    assert len(every_frame) == 330
    for index, _, rgb in sampled:
        assert rgb.dtype == np.uint8 and rgb.shape == (48, 64, 3)
        assert np.array_equal(rgb, every_frame[index]), f"frame {index} differs from full decoding"


def test_avec2013_rate_and_uneven_spacing(clip):
    assert [index for index, _, _ in sample_frames(clip, keep=1, every=100)] == [0, 100, 200, 300]
    assert [index for index, _, _ in sample_frames(clip, keep=3, every=100)][:6] == [0, 33, 66, 100, 133, 166]
    assert len(list(sample_frames(clip, keep=100, every=100))) == 330


def test_layout_reads_keyframes_without_decoding(clip):
    layout = frame_layout(clip)
    assert layout.num_frames == 330 and layout.fps == FPS and layout.keyframes[0] == 0
    assert len(layout.keyframes) >= 330 // 250


@pytest.mark.parametrize("keep, every", [(0, 100), (5, 4), (2.0, 100)])
def test_bad_sampling_arguments(clip, keep, every):
    with pytest.raises(ValueError, match="keep"):
        sample_frames(clip, keep=keep, every=every)


def test_bad_videos_raise_naming_the_file(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        sample_frames(missing)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(ValueError, match=f"{text}: not a readable video"):
        sample_frames(text)
    whole = write_video(tmp_path / "whole.mp4", 60).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=str(truncated)):
        sample_frames(truncated)
    sound_only = tmp_path / "sound.wav"
    soundfile.write(sound_only, np.zeros(1600, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match=f"{sound_only}: has no video stream"):
        sample_frames(sound_only)


def test_truncated_file_with_index_first_is_refused(tmp_path):
    """A 'faststart' mp4 keeps its index at the front, so a cut file still opens: the frame count betrays it."""
    rng = np.random.default_rng(1)
    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for _ in range(120):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(ValueError, match=f"{path}: truncated"):
        sample_frames(path)


def test_video_stream_without_frames(tmp_path):
    path = tmp_path / "empty.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 2048), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        for packet in [*sound.encode(frame), *sound.encode(None)]:
            container.mux(packet)
    with pytest.raises(ValueError, match=f"{path}: the video stream has no frames"):
        sample_frames(path)


@pytest.fixture(scope="module")
def stereo_tone(tmp_path_factory):
    """One second of a 440 Hz tone, 0.5 on the left and 0.3 on the right, as .wav and in an .mp4."""
    folder = tmp_path_factory.mktemp("audio")
    rate = 44100
    tone = np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    channels = np.stack([0.5 * tone, 0.3 * tone])
    soundfile.write(folder / "tone.wav", channels.T.astype(np.float32), rate)
    write_video(folder / "tone.mp4", 30, audio=channels, audio_rate=rate)
    return folder / "tone.wav", folder / "tone.mp4"


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(signal ** 2)))


def test_wav_and_mp4_give_the_channel_mean_at_16_khz(stereo_tone):
    wav, mp4 = stereo_tone
    from_wav, from_mp4 = load_audio(wav), load_audio(mp4)
    assert from_wav.dtype == np.float32 and from_mp4.dtype == np.float32 and from_wav.ndim == 1
    # AAC holds 1024 samples a frame: the writer pads the last one with silence (at most 1023 at 44.1 kHz).
    assert len(from_wav) == 16000 and 16000 <= len(from_mp4) <= 16000 + 1024 * 16000 // 44100
    channel_mean_rms = 0.4 / np.sqrt(2)
    middle = slice(1600, 14400)  # away from the AAC encoder's edges
    assert rms(from_wav[middle]) == pytest.approx(channel_mean_rms, rel=0.01)
    assert rms(from_mp4[middle]) == pytest.approx(channel_mean_rms, rel=0.03)
    reference, _ = librosa.load(wav, sr=16000, mono=True)
    np.testing.assert_allclose(from_wav, reference, atol=1e-6)


def test_other_sample_rates(stereo_tone):
    wav, mp4 = stereo_tone
    assert len(load_audio(wav, sample_rate=8000)) == 8000
    assert 44100 <= len(load_audio(mp4, sample_rate=44100)) < 44100 + 1024


def test_bad_audio_raises_naming_the_file(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load_audio(missing)
    for name in ("broken.wav", "broken.mp4"):
        broken = tmp_path / name
        broken.write_bytes(b"RIFF0000WAVEjunk" * 4)
        with pytest.raises(ValueError, match=str(broken)):
            load_audio(broken)
    silent_film = write_video(tmp_path / "silent.mp4", 10)
    with pytest.raises(ValueError, match=f"{silent_film}: has no audio track"):
        load_audio(silent_film)


def test_variable_frame_rate_times_are_the_frames_own_timestamps(tmp_path):
    """The camera halves its frame rate after 4 s: index / average rate puts frames at the wrong times."""
    ticks = list(range(120)) + list(range(120, 360, 2))
    path = write_video(tmp_path / "variable.mp4", 240, ticks=ticks)
    assert frame_layout(path).fps < FPS - 1  # the stream's average rate, which index / fps would use
    sampled = list(sample_frames(path, keep=4, every=100))
    assert [index for index, _, _ in sampled] == [0, 25, 50, 75, 100, 125, 150, 175, 200, 225]
    assert [seconds for _, seconds, _ in sampled] == pytest.approx([ticks[index] / FPS for index, _, _ in sampled])
    every_frame = decode_every_frame(path)
    for index, _, rgb in sampled:
        assert np.array_equal(rgb, every_frame[index])


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_file_cut_short_is_refused_naming_it(tmp_path, suffix):
    """Matroska states its duration in the header, so a cut copy opens and demuxes a third of its frames."""
    tone = np.zeros((2, 8 * 44100), np.float32)
    whole = write_video(tmp_path / f"whole{suffix}", 240, keyframe_interval=30, audio=tone).read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole[: len(whole) * 3 // 10])
    with pytest.raises(ValueError, match=f"{cut}: (truncated|not a readable video)"):
        list(sample_frames(cut))


@pytest.mark.parametrize("suffix", [".mkv", ".ts", ".avi"])
def test_a_whole_file_is_accepted_with_its_audio_outlasting_the_video(tmp_path, suffix):
    tone = np.zeros((2, 11 * 44100), np.float32)  # the container's duration is the audio's, 3 s more than the video
    path = write_video(tmp_path / f"whole{suffix}", 240, audio=tone)
    assert frame_layout(path).num_frames == 240
    assert media_duration(path, "video") == pytest.approx(8.0, abs=0.1)
    assert media_duration(path, "audio") == pytest.approx(11.0, abs=0.1)


@pytest.fixture(scope="module")
def eight_second_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("eight") / "eight.mp4", 8 * FPS, keyframe_interval=FPS)


@pytest.mark.parametrize("seconds", [1.0, 60.0])
def test_separate_audio_of_another_length_is_warned_about_naming_both_files(tmp_path, eight_second_video, seconds):
    audio = tmp_path / f"audio_{seconds:g}s.wav"
    soundfile.write(audio, np.zeros(int(16000 * seconds), np.float32), 16000)
    with pytest.warns(InputMismatchWarning) as caught:
        check_audio_matches_video(audio, eight_second_video)
    message = str(caught[0].message)
    assert str(audio) in message and str(eight_second_video) in message


@pytest.mark.parametrize("seconds, suffix", [(8.0, ".wav"), (7.5, ".wav"), (8.6, ".wav"), (8.0, ".mp4")])
def test_separate_audio_within_the_tolerance_passes_silently(tmp_path, eight_second_video, seconds, suffix):
    audio = tmp_path / f"audio{suffix}"
    if suffix == ".wav":
        soundfile.write(audio, np.zeros(int(16000 * seconds), np.float32), 16000)
    else:  # an audio-only .mp4: its duration comes from the container, not from decoding
        with av.open(str(audio), "w") as container:
            sound = container.add_stream("aac", rate=16000, layout="mono")
            frame = av.AudioFrame.from_ndarray(np.zeros((1, int(16000 * seconds)), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
            for packet in [*sound.encode(frame), *sound.encode(None)]:
                container.mux(packet)
    assert media_duration(audio, "audio") == pytest.approx(seconds, abs=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_audio_matches_video(audio, eight_second_video)


def test_durations_of_files_without_the_stream_name_the_file(tmp_path, eight_second_video):
    with pytest.raises(ValueError, match=f"{eight_second_video}: has no audio track"):
        media_duration(eight_second_video, "audio")
    sound = tmp_path / "sound.wav"
    soundfile.write(sound, np.zeros(1600, np.float32), 16000)
    with pytest.raises(ValueError, match=f"{sound}: has no video stream"):
        media_duration(sound, "video")
