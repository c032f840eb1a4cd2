"""The synthetic demo cohort (sections 3.2, 4.1): real .mp4 files in the AVEC2014 layout, label-driven cues."""
import hashlib
import json
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
from facenet_pytorch import MTCNN
from PIL import Image

from mddr_utils.data import demo_cohort
from mddr_utils.data.avec import INDEX_COLUMNS, index_avec2014
from mddr_utils.data.demo_cohort import (
    MANIFEST_NAME, demo_cohort_cues, make_demo_cohort, planted_cues, write_demo_video,
)
from mddr_utils.features import frame_layout, load_audio, sample_frames

SMALL = dict(recordings_per_split=2, seconds=2.5, fps=30, size=(320, 240), seed=7)
TINY = dict(recordings_per_split=1, seconds=1.0, fps=10, size=(128, 96))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "cohort"
    return root, make_demo_cohort(root, progress=False, **SMALL)


def file_digests(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def test_layout_is_avec2014(cohort):
    root, index = cohort
    assert list(index.columns) == list(INDEX_COLUMNS)
    assert len(index) == 12
    assert index.groupby(["split", "task"]).size().tolist() == [2] * 6
    assert index.equals(index_avec2014(root))
    assert (index["audio_path"] == "").all()
    assert (index.groupby("recording")["label"].nunique() == 1).all()
    assert index["label"].between(0, 45).all()
    for path in index["video_path"]:
        assert Path(path).suffix == ".mp4" and frame_layout(path).fps == 30


def test_manifest_lists_parameters_and_cues(cohort):
    root, index = cohort
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    assert manifest["parameters"] == dict(SMALL, size=list(SMALL["size"]), seconds=float(SMALL["seconds"]))
    cues = demo_cohort_cues(root)
    assert sorted(cues["video_id"]) == sorted(index["video_id"])
    merged = cues.merge(index[["video_id", "label"]], on="video_id", suffixes=("", "_index"))
    assert (merged["label"] == merged["label_index"]).all()
    for _, row in cues.iterrows():
        assert frame_layout(root / row["video_path"]).num_frames == row["frames"]


def test_same_seed_same_bytes(tmp_path):
    first, second = (make_demo_cohort(tmp_path / name, progress=False, seed=0, **TINY) for name in ("a", "b"))
    assert file_digests(tmp_path / "a") == file_digests(tmp_path / "b")
    assert first.drop(columns=["video_path", "label_path"]).equals(second.drop(columns=["video_path", "label_path"]))
    other = make_demo_cohort(tmp_path / "c", progress=False, seed=1, **TINY)
    assert file_digests(tmp_path / "c") != file_digests(tmp_path / "a") and len(other) == len(first)


def test_planted_cues_follow_the_label_in_the_documented_direction():
    mild, severe = planted_cues(5), planted_cues(40)
    assert severe["head_motion_deg"] < mild["head_motion_deg"]
    assert severe["expressivity"] < mild["expressivity"]
    assert severe["pitch_sd_semitones"] < mild["pitch_sd_semitones"]
    assert severe["speech_rate_syl_per_s"] < mild["speech_rate_syl_per_s"]
    assert severe["mean_pause_s"] > mild["mean_pause_s"]


def test_rendered_cues_follow_the_label_across_people(cohort):
    root, _ = cohort
    recordings = demo_cohort_cues(root).groupby("recording").mean(numeric_only=True)
    correlation = recordings.corr(method="spearman")["label"]
    assert correlation["head_motion_deg"] < 0 and correlation["expressivity"] < 0
    assert correlation["pitch_sd_semitones"] < 0 and correlation["speech_rate_syl_per_s"] < 0


def test_one_person_at_two_severities(tmp_path):
    """The same seed gives the same person; only the label differs, and every cue moves its way."""
    well, ill = (write_demo_video(tmp_path / f"{label}.mp4", label=label, seconds=8, fps=10, size=(128, 96), seed=5)
                 for label in (0, 45))
    assert ill["head_motion_deg"] < well["head_motion_deg"] and ill["expressivity"] < well["expressivity"]
    assert ill["pitch_sd_semitones"] < well["pitch_sd_semitones"]
    assert ill["speech_rate_syl_per_s"] < well["speech_rate_syl_per_s"] and ill["mean_pause_s"] > well["mean_pause_s"]

    def silent_share(path):
        loudness = librosa.feature.rms(y=load_audio(path), frame_length=400, hop_length=160)[0]
        return np.mean(loudness < 0.01)

    assert silent_share(tmp_path / "45.mp4") > silent_share(tmp_path / "0.mp4")


def test_pitch_variability_is_audible(cohort):
    """A pitch tracker on the decoded audio recovers the planted F0 spread."""
    root, _ = cohort
    cues = demo_cohort_cues(root)
    measured = []
    for path in cues["video_path"]:
        audio = load_audio(root / path)
        f0 = librosa.yin(audio, fmin=110, fmax=420, sr=16000, frame_length=1024)
        loud = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0][: len(f0)] > 0.05
        semitones = 12 * np.log2(f0[loud] / np.median(f0[loud]))
        measured.append(np.std(semitones[np.abs(semitones) < 12]))
    assert pd.Series(measured).corr(cues["pitch_sd_semitones"], method="spearman") > 0.7


def test_mtcnn_finds_the_face_in_sampled_frames(cohort):
    _, index = cohort
    detector = MTCNN(keep_all=False, device="cpu")
    frames = [rgb for _, _, rgb in sample_frames(index["video_path"].iloc[0], keep=4, every=100)]
    assert len(frames) >= 3
    boxes, probabilities = detector.detect([Image.fromarray(rgb) for rgb in frames])
    for box, probability in zip(boxes, probabilities):
        assert box is not None and probability[0] > 0.95
        left, top, right, bottom = box[0]
        assert 0 <= left < right <= 320 and 0 <= top < bottom <= 240 and 50 < bottom - top < 160


def test_audio_track_is_speech_length_and_loud_enough(cohort):
    root, index = cohort
    cues = demo_cohort_cues(root).set_index("video_id")
    audio = load_audio(index["video_path"].iloc[0])
    duration = cues.loc[index["video_id"].iloc[0], "duration_s"]
    assert duration * 16000 <= len(audio) <= duration * 16000 + 1024
    assert 0.02 < np.sqrt(np.mean(audio ** 2)) < 0.5


def test_reuse_rebuild_and_refusal(tmp_path):
    root = tmp_path / "cohort"
    first = make_demo_cohort(root, progress=False, seed=0, **TINY)
    stamps = {path: path.stat().st_mtime_ns for path in root.rglob("*")}
    assert make_demo_cohort(root, progress=False, seed=0, **TINY).equals(first)
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*")} == stamps
    rebuilt = make_demo_cohort(root, progress=False, seed=1, **TINY)
    assert json.loads((root / MANIFEST_NAME).read_text())["parameters"]["seed"] == 1
    assert len(rebuilt) == len(first)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cohort"]
    other = tmp_path / "someone_elses"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a demo cohort"):
        make_demo_cohort(other, progress=False, **TINY)
    assert (other / "notes.txt").read_text() == "keep me"


def test_failed_build_leaves_the_old_cohort_and_no_partial_folder(tmp_path, monkeypatch):
    root = tmp_path / "cohort"
    make_demo_cohort(root, progress=False, seed=0, **TINY)
    before = file_digests(root)

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo_cohort, "_render_video", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        make_demo_cohort(root, progress=False, seed=1, **TINY)
    assert file_digests(root) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cohort"]


def test_single_video_writer_and_parameter_checks(tmp_path):
    cues = write_demo_video(tmp_path / "one.mp4", label=30, seconds=1.5, fps=10, size=(128, 96), seed=3)
    assert frame_layout(tmp_path / "one.mp4").num_frames == cues["frames"]
    assert file_digests(tmp_path) == file_digests(tmp_path)
    with pytest.raises(ValueError, match="even"):
        make_demo_cohort(tmp_path / "odd", size=(321, 240))
    with pytest.raises(ValueError, match="recordings_per_split"):
        make_demo_cohort(tmp_path / "none", recordings_per_split=0)
