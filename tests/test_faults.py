"""Faults on the data path: changed inputs, damaged cache files, failing videos, stale labels, empty splits.

Each case is one a researcher meets running the book on their own AVEC copy more than once; each
asserts that the message names the file (or folder) concerned, and that nothing blocks the rest.
"""
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mddr_utils import sources
from mddr_utils.data import VideoFeatures
from mddr_utils.data.demo_cohort import write_demo_video
from mddr_utils.features import pipeline
from mddr_utils.features.cache import CacheRepairWarning, FeatureCache
from mddr_utils.features.jobs import ExtractionError, VideoLeftOutWarning
from mddr_utils.features.pipeline import extract_features, load_feature_cohort
from mddr_utils.features.report import failures_table

from test_pipeline import LABELS, index_row, inputs, modification_times, tiny_config  # noqa: F401 (fixture)

FIRST, SECOND = LABELS


@pytest.fixture(scope="module")
def extracted(inputs, tmp_path_factory):  # noqa: F811
    cache_dir = tmp_path_factory.mktemp("features")
    extract_features(inputs["index"], cache_dir, tiny_config(inputs), progress=False)
    return cache_dir


@pytest.fixture
def cache_copy(extracted, tmp_path):
    return Path(shutil.copytree(extracted, tmp_path / "cache"))


def forbid_models(monkeypatch, *names):
    for name in names or ("cropper", "visual", "hubert", "head"):
        monkeypatch.setattr(pipeline._Extractors, name, property(lambda self: pytest.fail(f"{name} was loaded")))


def flip_a_data_byte(path: Path) -> None:
    """Flip one byte inside the audio array's data (not in a zip header)."""
    content = bytearray(path.read_bytes())
    content[len(content) // 3] ^= 0xFF
    path.write_bytes(bytes(content))


DAMAGE = {
    "zero-byte": lambda path: path.write_bytes(b""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "bit-flipped": flip_a_data_byte,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_feature_file_is_named_set_aside_and_made_again(cache_copy, inputs, damage, monkeypatch):
    damaged = cache_copy / "audio" / f"{FIRST}.npz"
    reference, _ = FeatureCache(cache_copy).read("audio", FIRST)
    DAMAGE[damage](damaged)
    forbid_models(monkeypatch, "cropper", "visual", "head")  # audio alone is made again
    with pytest.warns(CacheRepairWarning, match=rf"{FIRST}\.npz"):
        cohort = extract_features(inputs["index"], cache_copy, tiny_config(inputs), progress=False)
    assert (cache_copy / "audio" / f"{FIRST}.npz.corrupt").is_file()
    assert np.allclose(cohort[0].audio, reference["audio"], atol=1e-5)
    assert len(cohort) == 2 and cohort.left_out.empty


def test_reading_a_damaged_file_names_it(cache_copy):
    damaged = cache_copy / "audio" / f"{FIRST}.npz"
    flip_a_data_byte(damaged)
    with pytest.raises(ValueError, match=rf"{FIRST}\.npz.*not a readable feature file"):
        FeatureCache(cache_copy).read("audio", FIRST)
    with pytest.raises(ValueError, match=rf"{FIRST}\.npz"):
        load_feature_cohort(cache_copy)[0]
    saved = cache_copy / "saved.npz"
    saved.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(ValueError, match="saved.npz"):
        VideoFeatures.load(saved)


@pytest.mark.parametrize("content", [b"", b'{"format": 1, "videos": [{"video_id": "30', b"\xff\xfe not json"])
def test_a_damaged_manifest_is_named_and_repaired(cache_copy, inputs, content, monkeypatch):
    manifest = cache_copy / "manifest.json"
    manifest.write_bytes(content)
    with pytest.raises(ValueError, match="manifest.json.*not a readable manifest"):
        load_feature_cohort(cache_copy)
    forbid_models(monkeypatch)
    with pytest.warns(CacheRepairWarning, match="manifest.json"):
        cohort = extract_features(inputs["index"], cache_copy, tiny_config(inputs), progress=False)
    assert len(cohort) == 2 and (cache_copy / "manifest.json.corrupt").read_bytes() == content
    assert json.loads(manifest.read_text())["videos"][0]["video_id"] == FIRST


def record_jobs(monkeypatch) -> list:
    """Replace a video's extraction by a note of what it would recompute (the writing is tested elsewhere)."""
    planned = []
    monkeypatch.setattr(pipeline._VideoJob, "run", lambda job: planned.append((job.video_id, sorted(job.stale()))))
    return planned


def test_a_replaced_video_is_extracted_again_and_said_so(cache_copy, inputs, tmp_path, capsys, monkeypatch):
    index = inputs["index"].copy()
    replaced = tmp_path / f"{FIRST}_video.mp4"
    write_demo_video(replaced, label=LABELS[FIRST], seconds=1.0, seed=7, task="Freeform")
    index.loc[0, "video_path"] = str(replaced)
    planned = record_jobs(monkeypatch)
    extract_features(index, cache_copy, tiny_config(inputs), progress=False)
    said = capsys.readouterr().out
    assert "1 of 2 videos current, extracting 1 (1 input file changed)" in said and FIRST in said
    assert planned == [(FIRST, ["audio", "head", "visual"])]


def test_a_copied_corpus_is_not_extracted_again(cache_copy, inputs, tmp_path, monkeypatch, capsys):
    copied = tmp_path / "copy"
    copied.mkdir()
    index = inputs["index"].copy()
    for position, path in enumerate(index["video_path"]):
        index.loc[position, "video_path"] = str(shutil.copy(path, copied))  # new folder, new times
    forbid_models(monkeypatch)
    before = modification_times(cache_copy)
    extract_features(index, cache_copy, tiny_config(inputs), progress=False)
    assert modification_times(cache_copy) == before and "extracting" not in capsys.readouterr().out


@pytest.fixture
def broken_first(inputs, tmp_path):  # noqa: F811
    """The index with an unreadable video that is the largest file, so that size order meets it first."""
    broken = tmp_path / "309_1_Freeform_video.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes())
    rows = pd.DataFrame([index_row("309_1_Freeform", broken)])
    return pd.concat([rows, inputs["index"]], ignore_index=True), broken


def test_one_failing_video_never_stops_the_others(cache_copy, inputs, broken_first, monkeypatch):  # noqa: F811
    index, broken = broken_first
    for video_id in LABELS:  # the good videos need their (cheap) audio again, after the broken one
        (cache_copy / "audio" / f"{video_id}.npz").unlink()
    forbid_models(monkeypatch, "cropper", "visual", "head")
    with pytest.raises(ExtractionError, match=broken.name):
        extract_features(index, cache_copy, tiny_config(inputs), progress=False)
    cache = FeatureCache(cache_copy)
    assert all(cache.path("audio", video_id).is_file() for video_id in LABELS), \
        "the good videos were extracted although the first one failed"
    assert list(failures_table(cache.root)["video_id"]) == ["309_1_Freeform"]


def test_a_skipped_video_is_warned_listed_and_retried_alone(cache_copy, inputs, broken_first, tmp_path,
                                                           monkeypatch):  # noqa: F811
    index, broken = broken_first
    config = tiny_config(inputs, on_error="skip")
    (cache_copy / "head" / f"{SECOND}.npz").unlink()
    with pytest.warns(VideoLeftOutWarning, match=rf"{broken.name}: left out"):
        cohort = extract_features(index, cache_copy, config, progress=False)
    assert list(cohort.table["video_id"]) == list(LABELS)
    assert list(cohort.left_out["video_id"]) == ["309_1_Freeform"] and cohort.left_out["file"][0] == str(broken)
    assert cohort.left_out["reason"][0]
    manifest = FeatureCache(cache_copy).read_manifest()
    assert [entry["video_id"] for entry in manifest["videos"] if entry.get("failed")] == ["309_1_Freeform"]
    tried = []
    original_run = pipeline._VideoJob.run
    monkeypatch.setattr(pipeline._VideoJob, "run", lambda job: (tried.append(job.video_id), original_run(job)))
    with pytest.warns(VideoLeftOutWarning, match=broken.name):
        extract_features(index, cache_copy, config, progress=False)
    assert tried == ["309_1_Freeform"], "current videos are skipped, the failed one is tried again"


def make_avec_tree(root: Path, index: pd.DataFrame, splits: dict[str, str]) -> None:
    """An AVEC2014-shaped folder: the test videos under their split folders, labels beside them."""
    for row in index.itertuples():
        folder = root / splits[row.video_id]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(row.video_path, folder)
        (folder / f"{row.subject}_{row.session}_Depression.csv").write_text(f"{int(row.label)}\n")


def test_load_cohort_rereads_labels_checks_data_root_and_reuses_features(extracted, inputs, tmp_path,  # noqa: F811
                                                                         monkeypatch):
    data_root, data_dir = tmp_path / "avec", tmp_path / "data"
    make_avec_tree(data_root, inputs["index"], {FIRST: "Training", SECOND: "Development"})
    shutil.copytree(extracted, data_dir / "features" / "avec2014")  # made by the feature chapters
    extraction = dict(keep=4, every=20, visual_weights="none", hubert=inputs["hubert"], offline=True,
                      frame_batch_size=4)
    forbid_models(monkeypatch)  # same content and settings: nothing is extracted again
    first = sources.load_cohort("avec2014", "smoke", data_dir, data_root, extraction=extraction, progress=False)
    assert first.table.set_index("video_id")["label"].to_dict() == LABELS
    (data_root / "Training" / "301_1_Depression.csv").write_text("17\n")
    second = sources.load_cohort("avec2014", "smoke", data_dir, data_root, progress=False)  # settings as recorded
    assert second.table.set_index("video_id").loc[FIRST, "label"] == 17
    assert second[0].label == 17 and second.fingerprint != first.fingerprint
    with pytest.raises(ValueError, match=rf"Testing split is empty.*{data_root}"):
        second.require_splits("Training", "Development", "Testing")
    assert second.require_splits("Training", "Development") is second
    for absent in (tmp_path / "elsewhere", tmp_path / "empty"):
        if absent.name == "empty":
            absent.mkdir()
        with pytest.raises(FileNotFoundError, match=str(absent)):
            sources.load_cohort("avec2014", "smoke", data_dir, absent, progress=False)


def test_load_cohort_leaves_a_failing_video_out_by_default(extracted, inputs, tmp_path, monkeypatch):  # noqa: F811
    data_root, data_dir = tmp_path / "avec", tmp_path / "data"
    make_avec_tree(data_root, inputs["index"], {FIRST: "Training", SECOND: "Development"})
    shutil.copytree(extracted, data_dir / "features" / "avec2014")
    broken = data_root / "Development" / "303_1_Northwind_video.mp4"
    broken.write_bytes(b"not a video")
    (data_root / "Development" / "303_1_Depression.csv").write_text("20\n")
    forbid_models(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cohort = sources.load_cohort("avec2014", "smoke", data_dir, data_root, progress=False)
    assert any(issubclass(w.category, UserWarning) and broken.name in str(w.message) for w in caught)
    assert list(cohort.left_out["video_id"]) == ["303_1_Northwind"] and len(cohort) == 2
