"""Feature extraction end to end on tiny videos: cohort, cache reuse, bad inputs, CLI under torchrun."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import HubertConfig, HubertModel

from mddr_utils import sources
from mddr_utils.data.demo_cohort import write_demo_video
from mddr_utils.features import pipeline
from mddr_utils.features.acoustic import hubert_frame_count
from mddr_utils.features.cache import FeatureCache, settings_hash
from mddr_utils.features.faces import NoFaceError
from mddr_utils.features.jobs import ExtractionError
from mddr_utils.features.pipeline import ExtractionConfig, extract_features, load_feature_cohort
from mddr_utils.features.report import extraction_report
from mddr_utils.features.video import load_audio, sample_frames
from mddr_utils.features.visual import resnet50_trunk

ROOT = Path(__file__).resolve().parent.parent
LABELS = {"301_1_Freeform": 4.0, "302_1_Northwind": 33.0}


def write_plain_video(path: Path, seconds: float = 1.0, audio: bool = True, frames: int | None = None) -> Path:
    """A grey 96x72 H.264 video (no face), optionally with an AAC track of noise."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 96, 72, "yuv420p"
        sound = container.add_stream("aac", rate=16000) if audio else None
        container.start_encoding()
        count = int(seconds * 30) if frames is None else frames
        for index in range(count):
            image = np.full((72, 96, 3), 100 + index % 50, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if sound is not None:
            samples = (0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds))).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in [*sound.encode(frame), *sound.encode(None)]:
                container.mux(packet)
    return path


def index_row(video_id: str, video_path: Path, label: float = 10.0, audio_path: str = "") -> dict:
    subject, session, task = video_id.split("_")
    return dict(video_id=video_id, subject=subject, session=session, task=task, split="Training",
                video_path=str(video_path), audio_path=audio_path, label=label)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two one-second demo videos (a moving, talking face) and a tiny HuBERT saved as a local folder."""
    folder = tmp_path_factory.mktemp("inputs")
    rows = []
    for seed, (video_id, label) in enumerate(LABELS.items()):
        path = folder / f"{video_id}_video.mp4"
        write_demo_video(path, label=label, seconds=1.0, seed=seed, task=video_id.split("_")[2])
        rows.append(index_row(video_id, path, label))
    torch.manual_seed(0)
    tiny = HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                    conv_dim=(8,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
                                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2))
    tiny.save_pretrained(folder / "hubert-tiny")
    return {"folder": folder, "index": pd.DataFrame(rows), "hubert": str(folder / "hubert-tiny")}


def tiny_config(inputs, **overrides) -> ExtractionConfig:
    settings = dict(keep=4, every=20, visual_weights="none", hubert=inputs["hubert"], offline=True,
                    frame_batch_size=4)
    return ExtractionConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def extracted(inputs, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("features")
    cohort = extract_features(inputs["index"], cache_dir, tiny_config(inputs), progress=False)
    return cohort, cache_dir


@pytest.fixture
def cache_copy(extracted, tmp_path):
    shutil.copytree(extracted[1], tmp_path / "cache")
    return tmp_path / "cache"


def files_of(cache_dir: Path, video_id: str) -> list[Path]:
    return [path for path in Path(cache_dir).rglob("*") if path.is_file() and video_id in path.name]


def modification_times(cache_dir: Path) -> dict[str, int]:
    return {str(path.relative_to(cache_dir)): path.stat().st_mtime_ns
            for path in Path(cache_dir).rglob("*.npz")}


def test_cohort_items_are_assembled_from_the_cache(extracted, inputs):
    cohort, _ = extracted
    assert len(cohort) == 2
    assert {"video_id", "subject", "task", "split", "label"} <= set(cohort.table.columns)
    for position, row in inputs["index"].iterrows():
        video = cohort[position]
        sampled = list(sample_frames(row.video_path, keep=4, every=20))
        assert video.video_id == row.video_id and video.label == LABELS[row.video_id]
        assert video.visual.shape == (len(sampled), 2048) and video.head.shape == (len(sampled), 12)
        assert np.allclose(video.times, [seconds for _, seconds, _ in sampled])
        assert video.audio.shape == (hubert_frame_count(len(load_audio(row.video_path))), 16)
        assert video.visual_valid.all() and video.head_valid.all()  # the demo face is always visible
        assert 200 < video.head[:, 2].mean() < 2000  # the head some tens of centimetres away, in mm
    report = extraction_report(extracted[1])
    assert report["without_face"].tolist() == [0, 0]
    assert (report["with_face"] == report["frames"]).all()


def test_a_rerun_loads_no_model(cache_copy, inputs, monkeypatch):
    for name in ("cropper", "visual", "hubert", "head"):
        monkeypatch.setattr(pipeline._Extractors, name, property(lambda self: pytest.fail("a model was loaded")))
    before = modification_times(cache_copy)
    extract_features(inputs["index"], cache_copy, tiny_config(inputs), progress=False)
    assert modification_times(cache_copy) == before


def test_changing_the_hubert_layer_recomputes_audio_only(cache_copy, inputs):
    before = modification_times(cache_copy)
    cohort = extract_features(inputs["index"], cache_copy, tiny_config(inputs, hubert_layer=1), progress=False)
    after = modification_times(cache_copy)
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == ["audio/301_1_Freeform.npz", "audio/302_1_Northwind.npz"]
    _, provenance = FeatureCache(cache_copy).read("audio", "301_1_Freeform")
    assert provenance["settings"]["layer"] == 1
    assert cohort[0].audio.shape[1] == 16


def test_extraction_resumes_where_it_stopped(cache_copy, inputs):
    (cache_copy / "head" / "302_1_Northwind.npz").unlink()
    before = modification_times(cache_copy)
    extract_features(inputs["index"], cache_copy, tiny_config(inputs), progress=False)
    after = modification_times(cache_copy)
    assert sorted(name for name in after if after.get(name) != before.get(name)) == ["head/302_1_Northwind.npz"]


def test_loading_without_extracting_checks_the_settings(extracted, inputs):
    cohort, cache_dir = extracted
    loaded = load_feature_cohort(cache_dir)
    assert np.array_equal(loaded[1].visual, cohort[1].visual)
    assert len(load_feature_cohort(cache_dir, tiny_config(inputs))) == 2
    with pytest.raises(ValueError, match="made with other settings"):
        load_feature_cohort(cache_dir, tiny_config(inputs, face_margin=0.3))


def test_table2_features_differ_from_the_chapters_in_the_visual_backbone_alone(extracted, inputs, tmp_path,
                                                                              monkeypatch):
    chapters = tmp_path / "data" / "features" / "demo"
    shutil.copytree(extracted[1], chapters)
    monkeypatch.setattr(sources, "dataset_index", lambda *args, **kwargs: inputs["index"])
    before = modification_times(chapters)
    sources.load_with_visual_weights("demo", "smoke", tmp_path / "data", None, 0, "none")
    assert modification_times(chapters) == before, "the chapters' own backbone reads their cache as it is"
    assert not chapters.with_name("demo-visual-none").exists()

    torch.manual_seed(9)
    checkpoint = tmp_path / "affectnet.pth"
    torch.save(resnet50_trunk().state_dict(), checkpoint)
    for name in ("hubert", "head"):
        monkeypatch.setattr(pipeline._Extractors, name, property(lambda self: pytest.fail("audio or head recomputed")))
    cohort = sources.load_with_visual_weights("demo", "smoke", tmp_path / "data", None, 0, "affectnet", checkpoint)
    assert FeatureCache(chapters.with_name("demo-visual-affectnet")).provenance(
        "visual", "301_1_Freeform")["weights"].startswith("affectnet:sha256=")
    theirs = load_feature_cohort(chapters)[0]
    assert np.array_equal(cohort[0].audio, theirs.audio) and np.array_equal(cohort[0].head, theirs.head)
    assert not np.allclose(cohort[0].visual, theirs.visual)
    assert modification_times(chapters) == before


def test_openface_csvs_replace_the_builtin_head(cache_copy, inputs, tmp_path):
    openface_dir = tmp_path / "openface"
    openface_dir.mkdir()
    header = ("frame, face_id, timestamp, confidence, success, gaze_0_x, gaze_0_y, gaze_0_z, gaze_1_x, gaze_1_y, "
              "gaze_1_z, gaze_angle_x, gaze_angle_y, pose_Tx, pose_Ty, pose_Tz, pose_Rx, pose_Ry, pose_Rz, AU01_r")
    for row in inputs["index"].itertuples():
        lines = [header] + [f"{frame}, 0, {(frame - 1) / 30:.3f}, 0.98, {int(frame != 6)}, 0, 0, -1, 0, 0, -1, 0, 0, "
                            f"{frame}, 0, 600, 0.1, 0.2, 0.3, 1.5" for frame in range(1, 31)]
        (openface_dir / f"{Path(row.video_path).stem}.csv").write_text("\n".join(lines) + "\n")
    config = tiny_config(inputs, head_source="openface", openface_dir=str(openface_dir))
    before = modification_times(cache_copy)
    video = extract_features(inputs["index"], cache_copy, config, progress=False)[0]
    after = modification_times(cache_copy)
    assert sorted(name for name in after if after[name] != before[name]) == [
        "head/301_1_Freeform.npz", "head/302_1_Northwind.npz"]
    frame_index = FeatureCache(cache_copy).read("head", video.video_id)[0]["frame_index"]
    expected_valid = frame_index + 1 != 6  # OpenFace frame 6 failed
    assert np.array_equal(video.head_valid, expected_valid)
    assert np.array_equal(video.head[expected_valid, 0], frame_index[expected_valid] + 1)  # pose_Tx = frame number
    assert not video.head[~expected_valid].any()


def test_each_feature_chapter_extracts_its_own_modality_only(extracted, inputs, tmp_path, monkeypatch):
    """Chapter 02 extracts visual, 03 audio, 04 head, each alone; the full cohort then needs no model."""
    cache_dir = tmp_path / "cache"
    expected = {"visual": ("cropper", "visual"), "audio": ("hubert",), "head": ("head",)}
    for modality, needed in expected.items():
        with monkeypatch.context() as patch:
            for name in {"cropper", "visual", "hubert", "head"} - set(needed):
                patch.setattr(pipeline._Extractors, name, property(lambda self: pytest.fail(f"{modality}: model loaded")))
            pipeline.update_cache(inputs["index"], cache_dir, tiny_config(inputs), progress=False,
                                  modalities=[modality])
        written = sorted(path.parent.name for path in cache_dir.rglob("*.npz"))
        assert set(written) == set(list(expected)[:list(expected).index(modality) + 1])
        videos = pipeline.load_modality(cache_dir, modality, tiny_config(inputs))
        full = extracted[0]
        assert len(videos) == 2 and list(videos.table["video_id"]) == list(full.table["video_id"])
        stored, reference = videos[1], full[1]
        assert stored.label == reference.label and stored.modality == modality
        assert np.array_equal(stored.features, getattr(reference, modality))
        if modality == "audio":
            assert np.allclose(stored.times, np.arange(len(reference.audio)) / 50.0) and stored.valid.all()
            assert stored.duration == pytest.approx(reference.duration)
        else:
            assert np.array_equal(stored.times, reference.times)
            assert np.array_equal(stored.valid, getattr(reference, f"{modality}_valid"))
    for name in ("cropper", "visual", "hubert", "head"):
        monkeypatch.setattr(pipeline._Extractors, name, property(lambda self: pytest.fail("a model was loaded")))
    cohort = extract_features(inputs["index"], cache_dir, tiny_config(inputs), progress=False)
    assert np.array_equal(cohort[0].head, extracted[0][0].head)
    with pytest.raises(ValueError, match="modalities must be some of"):
        pipeline.update_cache(inputs["index"], cache_dir, tiny_config(inputs), modalities=["pose"])


def test_openface_head_alone_samples_the_frames_itself(inputs, tmp_path):
    """Chapter 04 run first with OpenFace CSVs: no visual file to take the sampled frames from."""
    openface_dir = tmp_path / "openface"
    openface_dir.mkdir()
    header = "frame,face_id,timestamp,confidence,success," + ",".join(
        [f"gaze_{eye}_{axis}" for eye in (0, 1) for axis in "xyz"] + [f"pose_{k}" for k in
                                                                       ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")])
    for row in inputs["index"].itertuples():
        lines = [header] + [f"{frame},0,{(frame - 1) / 30:.3f},0.98,1,0,0,-1,0,0,-1,{frame},0,600,0.1,0.2,0.3"
                            for frame in range(1, 31)]
        (openface_dir / f"{Path(row.video_path).stem}.csv").write_text("\n".join(lines) + "\n")
    config = tiny_config(inputs, head_source="openface", openface_dir=str(openface_dir))
    pipeline.update_cache(inputs["index"], tmp_path / "cache", config, progress=False, modalities=["head"])
    head = pipeline.load_modality(tmp_path / "cache", "head", config)[0]
    sampled = [frame for frame, _, _ in sample_frames(inputs["index"]["video_path"].iloc[0], keep=4, every=20)]
    assert np.array_equal(head.features[:, 0], np.asarray(sampled) + 1)
    assert not (tmp_path / "cache" / "visual").exists() or not any((tmp_path / "cache" / "visual").iterdir())


def test_the_feature_chapters_figures_draw_stored_modalities(extracted):
    import matplotlib

    matplotlib.use("Agg")
    from mddr_utils.features.figures import feature_components_over_time, head_traces, principal_components

    visual = pipeline.load_modality(extracted[1], "visual")
    figure = feature_components_over_time([visual[0], visual[1]], list(visual))
    assert figure.axes[0].get_ylabel() == "visual feature, projected"
    assert [ax.get_title() for ax in figure.axes[:2]] == [f"{v.video_id}, BDI-II {v.label:.0f}" for v in visual]
    head = pipeline.load_modality(extracted[1], "head")
    assert len(head_traces(list(head)).axes[0].lines) == 2
    project, explained = principal_components(list(pipeline.load_modality(extracted[1], "audio")), count=1)
    assert project(extracted[0][0].audio).shape == (len(extracted[0][0].audio), 1) and 0 < explained[0] <= 1


def test_prefetched_keeps_order_raises_the_producers_error_and_stops_with_the_consumer():
    assert list(pipeline.prefetched(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        raise EOFError("truncated.mp4: container cut short")

    with pytest.raises(EOFError, match="truncated.mp4"):
        list(pipeline.prefetched(failing()))
    produced, closed = [], []

    def endless():
        try:
            for number in range(10_000):
                produced.append(number)
                yield number
        finally:
            closed.append(True)

    for number in pipeline.prefetched(endless(), depth=2):
        if number == 3:
            break
    assert closed == [True] and len(produced) <= 3 + 1 + 2 + 1  # consumed, in flight, queued, blocked


def test_frame_batches_cover_every_sampled_frame_once(inputs):
    path = inputs["index"]["video_path"].iloc[0]
    config = tiny_config(inputs, frame_batch_size=3)
    batches = list(pipeline.frame_batches(path, config))
    sampled = list(sample_frames(path, keep=4, every=20))
    assert [len(batch.frames) for batch in batches[:-1]] == [3] * (len(batches) - 1)
    assert [index for batch in batches for index in batch.indices] == [index for index, _, _ in sampled]
    assert all(batch.crops is None for batch in batches)


def assert_fails_cleanly(index, cache_dir, config, *fragments, cause=None):
    """Extraction raises naming every fragment, and nothing of the failing videos is in the cache."""
    with pytest.raises(ExtractionError) as caught:
        extract_features(index, cache_dir, config, progress=False)
    for fragment in fragments:
        assert fragment in str(caught.value)
    if cause is not None:
        assert isinstance(caught.value.__cause__, cause)
    for video_id in index["video_id"]:
        assert not files_of(cache_dir, video_id)
    assert not list(Path(cache_dir).rglob("*.partial"))
    return caught.value


def test_missing_file(inputs, tmp_path):
    index = pd.DataFrame([index_row("401_1_Freeform", tmp_path / "absent_video.mp4")])
    assert_fails_cleanly(index, tmp_path / "cache", tiny_config(inputs), "absent_video.mp4", "no such file")


def test_corrupt_and_truncated_videos(inputs, tmp_path):
    corrupt = tmp_path / "402_1_Freeform_video.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "403_1_Freeform_video.mp4"
    whole = Path(inputs["index"].video_path[0]).read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    for path in (corrupt, truncated):
        index = pd.DataFrame([index_row(path.name[:14], path)])
        assert_fails_cleanly(index, tmp_path / "cache", tiny_config(inputs), path.name)


def test_video_without_audio_track(inputs, tmp_path):
    silent = write_plain_video(tmp_path / "404_1_Freeform_video.mp4", audio=False)
    index = pd.DataFrame([index_row("404_1_Freeform", silent)])
    assert_fails_cleanly(index, tmp_path / "cache", tiny_config(inputs), "404_1_Freeform_video.mp4", "no audio track")


def test_zero_length_videos(inputs, tmp_path):
    header_only = write_plain_video(tmp_path / "405_1_Freeform_video.mp4", audio=False, frames=0)
    empty_file = tmp_path / "405_2_Freeform_video.mp4"
    empty_file.write_bytes(b"")
    for path in (header_only, empty_file):
        index = pd.DataFrame([index_row(path.name[:14], path)])
        error = assert_fails_cleanly(index, tmp_path / "cache", tiny_config(inputs), path.name)
        assert any(reason in str(error) for reason in ("no video stream", "no frames", "not a readable video"))


def test_no_face_in_any_sampled_frame(inputs, tmp_path):
    faceless = write_plain_video(tmp_path / "406_1_Freeform_video.mp4")
    index = pd.DataFrame([index_row("406_1_Freeform", faceless)])
    assert_fails_cleanly(index, tmp_path / "cache", tiny_config(inputs), "406_1_Freeform_video.mp4", "no face",
                         cause=NoFaceError)


def test_openface_csv_without_the_needed_columns(inputs, tmp_path):
    openface_dir = tmp_path / "openface"
    openface_dir.mkdir()
    shutil.copy(ROOT / "tests" / "fixtures" / "openface" / "openface_without_pose_rotation.csv",
                openface_dir / f"{Path(inputs['index'].video_path[0]).stem}.csv")
    config = tiny_config(inputs, head_source="openface", openface_dir=str(openface_dir))
    assert_fails_cleanly(inputs["index"].iloc[:1], tmp_path / "cache", config, "301_1_Freeform_video.csv",
                         "pose_Rx")


def test_nan_features_are_never_stored(inputs, tmp_path, monkeypatch):
    class BrokenHubert:
        source_id = "broken"

        def encode(self, waveform, sample_rate):
            return np.full((hubert_frame_count(len(waveform)), 16), np.nan, np.float32)

    monkeypatch.setattr(pipeline._Extractors, "hubert", property(lambda self: BrokenHubert()))
    assert_fails_cleanly(inputs["index"].iloc[:1], tmp_path / "cache", tiny_config(inputs), "NaN",
                         "301_1_Freeform_video.mp4")


def test_duplicate_video_ids_are_refused_before_any_work(inputs, tmp_path):
    index = pd.concat([inputs["index"], inputs["index"].iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="301_1_Freeform"):
        extract_features(index, tmp_path / "cache", tiny_config(inputs), progress=False)
    assert not (tmp_path / "cache").exists()


def test_skipping_failures_keeps_the_good_videos(cache_copy, inputs, tmp_path):
    index = pd.concat([inputs["index"], pd.DataFrame([index_row("407_1_Freeform", tmp_path / "gone.mp4")])],
                      ignore_index=True)
    with pytest.warns(UserWarning, match="gone.mp4"):
        cohort = extract_features(index, cache_copy, tiny_config(inputs, on_error="skip"), progress=False)
    assert list(cohort.table["video_id"]) == list(LABELS)
    assert "gone.mp4" in extraction_report(cache_copy).set_index("video_id").loc["407_1_Freeform", "failed"]


def test_command_line_under_torchrun_with_two_processes(extracted, inputs, tmp_path):
    index_csv = tmp_path / "index.csv"
    inputs["index"].to_csv(index_csv, index=False)
    cache_dir = tmp_path / "cache"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mddr_utils.features.pipeline", "--index", str(index_csv), "--cache", str(cache_dir),
               "--keep", "4", "--every", "20", "--visual-weights", "none", "--hubert", inputs["hubert"],
               "--frame-batch-size", "4", "--offline", "--no-progress"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "2 videos" in finished.stdout
    cache = FeatureCache(cache_dir)
    assert cache.read_manifest()["processes"] == 2
    processes = {cache.provenance(m, v)["process"] for m in ("visual", "audio", "head") for v in LABELS}
    assert processes == {0, 1}  # each process took its own share
    single, _ = extracted
    for position, video in enumerate(load_feature_cohort(cache_dir)):
        reference = single[position]
        assert np.array_equal(video.times, reference.times)
        assert np.allclose(video.head, reference.head, atol=1e-3)
        assert np.allclose(video.audio, reference.audio, atol=0.05)
        cosine = (video.visual * reference.visual).sum(1) / (
            np.linalg.norm(video.visual, axis=1) * np.linalg.norm(reference.visual, axis=1))
        assert cosine.min() > 0.99


def test_checkpoint_naming_and_preprocessing_are_part_of_the_visual_settings(tmp_path):
    checkpoint = tmp_path / "affectnet.pth"
    torch.save(resnet50_trunk().state_dict(), checkpoint)
    plain = ExtractionConfig(affectnet_checkpoint=str(checkpoint))
    caffe = ExtractionConfig(affectnet_checkpoint=str(checkpoint), affectnet_key_map="caffe",
                             visual_preprocessing="caffe")
    assert plain.modality_settings()["visual"] != caffe.modality_settings()["visual"]
    assert plain.modality_settings()["audio"] == caffe.modality_settings()["audio"]
    assert caffe.modality_settings()["visual"]["weights"].endswith(":caffe-layout")
    with pytest.raises(ValueError, match="no-such-map.json"):
        ExtractionConfig(affectnet_checkpoint=str(checkpoint), affectnet_key_map=str(tmp_path / "no-such-map.json"))
    with pytest.raises(ValueError, match="'imagenet', 'caffe'"):
        ExtractionConfig(visual_weights="none", visual_preprocessing="bgr")


def test_hub_model_identity_carries_its_resolved_revision(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from mddr_utils.features.acoustic import hub_revision

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    reference = tmp_path / "models--facebook--hubert-large-ll60k" / "refs" / "main"
    reference.parent.mkdir(parents=True)
    hashes = []
    for revision in ("1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"):
        reference.write_text(revision)
        hub_revision.cache_clear()
        audio = ExtractionConfig(visual_weights="none", offline=True).modality_settings()["audio"]
        assert audio["hubert"] == f"hub:facebook/hubert-large-ll60k@{revision}"
        hashes.append(settings_hash(audio))
    hub_revision.cache_clear()
    assert hashes[0] != hashes[1]


def test_the_precision_actually_computed_in_keys_the_features(monkeypatch):
    config = ExtractionConfig(visual_weights="none", hubert="random")
    monkeypatch.setattr(pipeline, "autocast_dtype", lambda device: torch.bfloat16)
    on_bfloat16 = config.modality_settings()
    monkeypatch.setattr(pipeline, "autocast_dtype", lambda device: None)
    on_float32 = config.modality_settings()
    assert on_bfloat16["visual"]["precision"] == "bfloat16" and on_float32["visual"]["precision"] == "float32"
    assert on_bfloat16["audio"] != on_float32["audio"] and on_bfloat16["head"] == on_float32["head"]
    forced = ExtractionConfig(visual_weights="none", hubert="random", precision="float32").modality_settings()
    assert forced["visual"]["precision"] == "float32"
