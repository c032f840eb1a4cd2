"""Faults of the raw inputs a user brings: each is a clear error (or warning) that names the file.

One place for the hostile-input table: broken or mismatched videos, audio, OpenFace CSVs and AVEC
label trees. Each case builds its broken input in a temporary folder, in well under a second
except the face detector's case.
"""
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from transformers import HubertConfig, HubertModel

from mddr_utils.data.avec import index_avec2014
from mddr_utils.features.faces import NoFaceError
from mddr_utils.features.head import HEAD_COLUMNS, match_openface, read_openface_csv
from mddr_utils.features.jobs import ExtractionError
from mddr_utils.features.pipeline import ExtractionConfig, extract_features
from mddr_utils.features.video import (InputMismatchWarning, check_audio_matches_video, frame_layout, load_audio,
                                       sample_frames)

FPS = 30


def write_clip(path: Path, frames: int = 60, audio_seconds: float | None = None) -> Path:
    """A grey 64x48 H.264 clip (no face), with an AAC track of silence when audio_seconds is given."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"g": str(FPS)})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("aac", rate=16000, layout="mono") if audio_seconds else None
        for index in range(frames):
            image = np.full((48, 64, 3), 90 + index % 60, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            write_silence(container, sound, audio_seconds)
    return path


def write_silence(container, sound, seconds: float) -> None:
    frame = av.AudioFrame.from_ndarray(np.zeros((1, int(16000 * seconds)), np.float32), format="fltp",
                                       layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
    for packet in [*sound.encode(frame), *sound.encode(None)]:
        container.mux(packet)


def touch(path: Path, content: str | bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def zero_byte(folder: Path) -> Path:
    path = folder / "zero_video.mp4"
    path.write_bytes(b"")
    return path


def text_named_mp4(folder: Path) -> Path:
    path = folder / "notes_video.mp4"
    path.write_text("minutes of the meeting, not a video\n")
    return path


def cut(folder: Path, suffix: str) -> Path:
    whole = write_clip(folder / f"whole{suffix}", frames=8 * FPS, audio_seconds=8).read_bytes()
    path = folder / f"cut_video{suffix}"
    path.write_bytes(whole[: len(whole) * 3 // 10])
    return path


def audio_only_mp4(folder: Path) -> Path:
    path = folder / "sound_only.mp4"
    with av.open(str(path), "w") as container:
        write_silence(container, container.add_stream("aac", rate=16000, layout="mono"), 1.0)
    return path


def wav(folder: Path) -> Path:
    path = folder / "sound.wav"
    soundfile.write(path, np.zeros(16000, np.float32), 16000)
    return path


VIDEO_FAULTS = {
    "zero-byte": (zero_byte, "not a readable video"),
    "text named .mp4": (text_named_mp4, "not a readable video"),
    "truncated .mkv": (lambda folder: cut(folder, ".mkv"), "truncated"),
    "truncated .mp4": (lambda folder: cut(folder, ".mp4"), "not a readable video"),
    "audio-only .mp4 as video": (audio_only_mp4, "has no video stream"),
    ".wav as video": (wav, "has no video stream"),
    "no frames": (lambda folder: write_clip(folder / "empty_video.mkv", frames=0, audio_seconds=1),
                  "has no frames"),
}


@pytest.mark.parametrize("fault", list(VIDEO_FAULTS))
def test_unusable_videos_are_refused_naming_the_file(tmp_path, fault):
    make, reason = VIDEO_FAULTS[fault]
    path = make(tmp_path)
    for read in (frame_layout, lambda video: list(sample_frames(video))):
        with pytest.raises(ValueError) as caught:
            read(path)
        assert str(caught.value).startswith(f"{path}: ") and reason in str(caught.value)


AUDIO_FAULTS = {
    "video without an audio track": (lambda folder: write_clip(folder / "silent_film.mp4"), "has no audio track"),
    "text named .wav": (lambda folder: touch(folder / "notes.wav", "no sound here"), "not a readable audio file"),
    "zero-byte .m4a": (lambda folder: touch(folder / "empty.m4a", b""), "not a readable audio or video file"),
}


@pytest.mark.parametrize("fault", list(AUDIO_FAULTS))
def test_unusable_audio_is_refused_naming_the_file(tmp_path, fault):
    make, reason = AUDIO_FAULTS[fault]
    path = make(tmp_path)
    with pytest.raises(ValueError) as caught:
        load_audio(path)
    assert str(caught.value).startswith(f"{path}: ") and reason in str(caught.value)


def test_separate_audio_much_shorter_than_its_video_is_named_with_the_video(tmp_path):
    video = write_clip(tmp_path / "203_1_Freeform_video.mp4", frames=8 * FPS)
    audio = tmp_path / "203_1_Freeform_audio.wav"
    soundfile.write(audio, np.zeros(16000, np.float32), 16000)
    with pytest.warns(InputMismatchWarning) as caught:
        check_audio_matches_video(audio, video)
    assert str(audio) in str(caught[0].message) and str(video) in str(caught[0].message)


def test_openface_csv_of_a_longer_video_is_refused_naming_it(tmp_path):
    csv = tmp_path / "203_1_Freeform_video.csv"
    header = "frame, face_id, timestamp, confidence, success, " + ", ".join(HEAD_COLUMNS)
    rows = [f"{frame}, 0, {(frame - 1) / FPS:.3f}, 0.98, 1, " + ", ".join(["0"] * len(HEAD_COLUMNS))
            for frame in range(1, 3 * 240 + 1)]
    csv.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(ValueError, match="belongs to another") as caught:
        match_openface(read_openface_csv(csv), np.array([0, 25]), np.array([0.0, 25 / FPS]), source=str(csv),
                       video_frames=240, video="203_1_Freeform_video.mp4")
    assert str(csv) in str(caught.value)


def test_a_video_without_a_face_names_the_file(tmp_path):
    faceless = write_clip(tmp_path / "406_1_Freeform_video.mp4", frames=FPS, audio_seconds=1)
    torch.manual_seed(0)
    tiny = HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                    conv_dim=(8,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
                                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2))
    tiny.save_pretrained(tmp_path / "hubert-tiny")
    index = pd.DataFrame([dict(video_id="406_1_Freeform", subject="406", session="1", task="Freeform",
                               split="Training", video_path=str(faceless), audio_path="", label=10.0)])
    config = ExtractionConfig(keep=4, every=20, visual_weights="none", hubert=str(tmp_path / "hubert-tiny"),
                              offline=True, frame_batch_size=4, on_error="raise")
    with pytest.raises(ExtractionError) as caught:
        extract_features(index, tmp_path / "cache", config, progress=False)
    assert str(faceless) in str(caught.value) and "no face" in str(caught.value)
    assert isinstance(caught.value.__cause__, NoFaceError)


def avec2014_recording(root: Path, recording: str, split: str, label: str | bytes = "10") -> Path:
    for task in ("Freeform", "Northwind"):
        touch(root / split / task / f"{recording}_{task}_video.mp4")
    return touch(root / "Labels" / split / f"{recording}_Depression.csv", label)


def test_a_label_file_that_is_not_text_is_named(tmp_path):
    avec2014_recording(tmp_path, "203_1", "Training")
    spreadsheet = avec2014_recording(tmp_path, "204_1", "Training", label=b"PK\x03\x04\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="cannot be read as text") as caught:
        index_avec2014(tmp_path)
    assert str(spreadsheet) in str(caught.value)


def test_one_recording_under_two_spellings_is_a_duplicate_naming_both(tmp_path):
    avec2014_recording(tmp_path, "203_1", "Training")
    padded = touch(tmp_path / "Training" / "Freeform" / "0203_01_Freeform_video.mp4")
    with pytest.raises(ValueError, match="203_1_Freeform appears twice") as caught:
        index_avec2014(tmp_path)
    assert str(padded) in str(caught.value)

