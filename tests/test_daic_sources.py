"""DAIC-WOZ and E-DAIC through `sources.load_cohort`: both layouts, the PHQ-8 scale end to end, the
participant-speech audio mask, the feature cache (reuse, changes, repair), failures and data_root."""
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import HubertConfig, HubertModel

from mddr_utils import sources
from mddr_utils.data.daic_synthetic import SYNTHETIC_SIZES, write_daicwoz_tree, write_edaic_tree, write_label_file
from mddr_utils.evaluation import runs
from mddr_utils.features import daic as daic_features
from mddr_utils.features.acoustic import HUBERT_LARGE
from mddr_utils.features.cache import CacheRepairWarning
from mddr_utils.features.jobs import VideoLeftOutWarning

# As in test_daic.py (the smoke profile's participants, and 318, whose transcript is out of sync): the sessions
# are rendered once per test run, and the smoke tree that load_cohort writes reuses them.
SESSIONS = {"Training": {300: 18, 301: 2}, "Development": {302: 9, 303: 17}, "Testing": {600: 12, 601: 11}}
DAICWOZ_SESSIONS = {"Training": {300: 18, 301: 2, 318: 12}, "Development": {302: 9, 303: 17},
                    "Testing": {304: 12, 305: 11}}
SECONDS = SYNTHETIC_SIZES["smoke"]["seconds"]
WRITERS = {"edaic": (write_edaic_tree, SESSIONS), "daicwoz": (write_daicwoz_tree, DAICWOZ_SESSIONS)}


def frames_in(intervals, num_frames, rate=50.0):
    """Frame k counts when its centre (k + 1/2) / rate lies in an interval, written out frame by frame."""
    return np.array([any(start <= (k + 0.5) / rate < stop for start, stop in intervals) for k in range(num_frames)])


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hubert") / "hubert-tiny"
    torch.manual_seed(0)
    HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                             conv_dim=(8,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
                             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Both corpora's trees, written once (E-DAIC first: a participant of both is rendered once, with its ResNet
    rows); tests copy the one they change."""
    made = {}
    for dataset, (write, sessions) in WRITERS.items():
        root = tmp_path_factory.mktemp(dataset)
        made[dataset] = (root, write(root, sessions, seconds=SECONDS))
    return made


@pytest.fixture
def corpus(request, trees, tmp_path):
    dataset = request.param
    root, planted = trees[dataset]
    return dataset, Path(shutil.copytree(root, tmp_path / dataset)), planted


def load(dataset, root, data_dir, hubert, **extraction):
    return sources.load_cohort(dataset, "smoke", data_dir, data_root=root, progress=False,
                               extraction={"hubert": hubert, "offline": True, **extraction})


def cache_files(data_dir, dataset) -> dict[str, int]:
    folder = sources.feature_cache_dir(dataset, data_dir, data_root="given")
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("corpus", ["edaic", "daicwoz"], indirect=True)
def test_both_layouts_give_phq8_cohorts_with_the_participants_speech(corpus, tmp_path, tiny_hubert):
    dataset, root, planted = corpus
    cohort = load(dataset, root, tmp_path / "data", tiny_hubert)
    assert cohort.scale == "PHQ-8" and len(cohort.left_out) == 0
    assert cohort.origin == str(root.absolute())
    sessions = WRITERS[dataset][1]
    assert cohort.table["label"].tolist() == [label for split in sessions.values() for label in split.values()]
    for position in range(len(cohort)):
        video = cohort[position]
        record = planted[video.subject]
        assert (video.scale, video.label, video.split) == ("PHQ-8", record["label"], record["split"])
        assert video.visual.shape[1] == (2048 if dataset == "edaic" else 20) and video.head.shape[1] == 12
        assert video.audio.shape == (int(SECONDS * 50) - 1, 16), "HuBERT: 50 frames a second, the tiny model's 16 dims"
        np.testing.assert_array_equal(video.audio_valid, frames_in(record["speech"], len(video.audio)))
        assert 0 < video.audio_valid.sum() < len(video.audio)


def test_the_label_scale_reaches_the_model_and_the_testing_scores(trees, tmp_path, tiny_hubert):
    root, _ = trees["edaic"]
    cohort = load("edaic", root, tmp_path / "data", tiny_hubert)
    result = runs.run_variant(cohort, "MDDR", "smoke", [0], tmp_path / "data", tmp_path / "results",
                              model_overrides={"label_scale": cohort.scale}, dataset_label="E-DAIC test tree",
                              progress=False)
    assert result.model["label_scale"] == "PHQ-8"
    predictions = result.predictions
    assert sorted(predictions["video_id"]) == ["600_Interview", "601_Interview"]
    assert predictions["label"].tolist() == [12.0, 11.0] and predictions["pred"].between(0, 24).all()


def test_a_rerun_reuses_every_file_and_loads_no_model(trees, tmp_path, tiny_hubert, monkeypatch, capsys):
    root, _ = trees["daicwoz"]
    first = load("daicwoz", root, tmp_path / "data", tiny_hubert)
    written = cache_files(tmp_path / "data", "daicwoz")
    assert len(written) == 3 * len(first) + 1, "three modality files per session and the manifest"
    capsys.readouterr()

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded although every feature file is current")

    monkeypatch.setattr(daic_features, "HubertEncoder", no_model)
    again = load("daicwoz", root, tmp_path / "data", tiny_hubert)
    assert cache_files(tmp_path / "data", "daicwoz") == written
    assert "extracting" not in capsys.readouterr().out
    assert again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again[0].audio, first[0].audio)


@pytest.mark.parametrize("corpus", ["daicwoz"], indirect=True)
def test_a_changed_setting_or_file_re_extracts_only_what_depends_on_it(corpus, tmp_path, tiny_hubert, capsys):
    dataset, root, _ = corpus
    data = tmp_path / "data"
    load(dataset, root, data, tiny_hubert)
    before = cache_files(data, dataset)
    load(dataset, root, data, tiny_hubert, hubert_layer=1)
    after = cache_files(data, dataset)
    changed = {name.split("/")[0] for name in before if name != "manifest.json" and before[name] != after[name]}
    assert changed == {"audio"}
    assert "7 settings changed" in capsys.readouterr().out

    transcript = root / "303_P" / "303_TRANSCRIPT.csv"
    turns = pd.read_csv(transcript, sep="\t")
    ellie = turns[(turns["speaker"] == "Ellie") & (turns["value"] != "[sync]")]
    start, stop = ellie[["start_time", "stop_time"]].iloc[-1]
    transcript.write_text(transcript.read_text() + f"{start:.3f}\t{stop:.3f}\tParticipant\tone more\n")
    cohort = load(dataset, root, data, tiny_hubert, hubert_layer=1)
    assert "6 of 7 sessions current, extracting 1 (1 input file changed)" in capsys.readouterr().out
    newer = cache_files(data, dataset)
    assert [name for name in after if name != "manifest.json" and after[name] != newer[name]] == \
        ["audio/303_Interview.npz"]
    video = cohort[cohort.table.index[cohort.table["video_id"] == "303_Interview"][0]]
    assert video.audio_valid[int(np.ceil(start * 50)):int(stop * 50)].all(), "Ellie's last turn, now the participant's"

    labels = root / "dev_split_Depression_AVEC2017.csv"
    labels.write_text(labels.read_text().replace("\n303,1,17,", "\n303,0,8,"))
    relabelled = load(dataset, root, data, tiny_hubert, hubert_layer=1)
    assert relabelled.table.set_index("video_id").at["303_Interview", "label"] == 8, "labels are read on every call"
    features = {name: stamp for name, stamp in cache_files(data, dataset).items() if name != "manifest.json"}
    assert features == {name: stamp for name, stamp in newer.items() if name != "manifest.json"}
    assert relabelled.fingerprint != cohort.fingerprint


def test_a_damaged_cache_file_is_set_aside_and_made_again(trees, tmp_path, tiny_hubert):
    root, _ = trees["edaic"]
    data = tmp_path / "data"
    first = load("edaic", root, data, tiny_hubert)
    damaged = sources.feature_cache_dir("edaic", data, root) / "audio" / "303_Interview.npz"
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.warns(CacheRepairWarning, match="303_Interview.npz: damaged cache file"):
        again = load("edaic", root, data, tiny_hubert)
    assert damaged.with_name(damaged.name + ".corrupt").exists()
    np.testing.assert_array_equal(again[0].audio, first[0].audio)


@pytest.mark.parametrize("corpus", ["edaic"], indirect=True)
def test_a_broken_session_is_left_out_with_its_folder_and_retried(corpus, tmp_path, tiny_hubert, capsys):
    dataset, root, _ = corpus
    data = tmp_path / "data"
    resnet = root / "301_P" / "features" / "301_CNN_ResNet.mat"
    intact = resnet.read_bytes()
    resnet.write_bytes(b"not a MATLAB file")
    with pytest.warns(VideoLeftOutWarning, match=r"301_P: session left out.*301_CNN_ResNet.mat"):
        cohort = load(dataset, root, data, tiny_hubert)
    assert "301_Interview" not in set(cohort.table["video_id"]) and len(cohort) == 5
    assert cohort.left_out["video_id"].tolist() == ["301_Interview"]
    assert cohort.left_out["file"].tolist() == [str(root / "301_P")]
    manifest = json.loads((sources.feature_cache_dir(dataset, data, root) / "manifest.json").read_text())
    assert [entry["video_id"] for entry in manifest["videos"] if entry.get("failed")] == ["301_Interview"]
    capsys.readouterr()
    resnet.write_bytes(intact)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoLeftOutWarning)
        repaired = load(dataset, root, data, tiny_hubert)
    assert len(repaired) == 6 and len(repaired.left_out) == 0
    assert "extracting 1 (1 failed before)" in capsys.readouterr().out


def test_a_missing_or_empty_data_root_is_named(tmp_path):
    absent = tmp_path / "E-DAIC"
    with pytest.raises(FileNotFoundError, match=f"edaic: data_root '{absent}' is not a folder.*DAIC-WOZ and E-DAIC"):
        sources.load_cohort("edaic", "smoke", tmp_path / "data", data_root=absent)
    absent.mkdir()
    with pytest.raises(FileNotFoundError, match=f"daicwoz: data_root '{absent}' is an empty folder"):
        sources.load_cohort("daicwoz", "smoke", tmp_path / "data", data_root=absent)


def test_without_data_root_the_synthetic_tree_is_written_kept_apart_and_captioned(tmp_path, tiny_hubert):
    data = tmp_path / "data"
    cohort = sources.load_cohort("daicwoz", "smoke", data, progress=False, extraction={"hubert": tiny_hubert})
    assert cohort.scale == "PHQ-8" and set(cohort.table["split"]) == {"Training", "Development", "Testing"}
    assert cohort.origin == str(data / "daicwoz_synthetic")
    assert (data / "features" / "daicwoz-synthetic" / "manifest.json").is_file()
    assert not (data / "features" / "daicwoz").exists(), "a licensed copy's cache is never the synthetic one's"
    assert sources.recorded_extraction("daicwoz", data)["hubert"] == tiny_hubert
    assert sources.recorded_extraction("daicwoz", data, data_root="/data/DAIC-WOZ") == {}
    assert "synthetic, not DAIC-WOZ" in sources.describe_source("daicwoz", "smoke")
    assert sources.describe_source("edaic", "paper", "/data/E-DAIC") == "E-DAIC (profile paper)"


def test_daic_feature_settings_default_by_data_and_set_aside_the_video_ones():
    synthetic = sources.extraction_config("edaic", visual_weights="affectnet", head_source="openface")
    assert (synthetic.hubert, synthetic.offline, synthetic.keep, synthetic.every) == ("random", True, 4, 100)
    assert (synthetic.visual_weights, synthetic.head_source) == ("none", "builtin")
    licensed = sources.extraction_config("daicwoz", data_root="/data/DAIC-WOZ", hubert_layer=12, hubert=None)
    assert (licensed.hubert, licensed.offline, licensed.hubert_layer) == (HUBERT_LARGE, False, 12)
    with pytest.raises(ValueError, match="ships no video"):
        sources.load_with_visual_weights("edaic", "smoke", "data", None, 0, "imagenet")


def test_a_label_file_with_a_score_off_the_phq8_scale_is_named(trees, tmp_path, tiny_hubert):
    root = Path(shutil.copytree(trees["edaic"][0], tmp_path / "edaic"))
    write_label_file(root / "labels" / "dev_split.csv", ("Participant_ID", "Gender", "PHQ_Binary", "PHQ_Score"),
                     [(302, "male", 0, 9), (303, "female", 1, 31)])
    with pytest.raises(ValueError, match=r"dev_split.csv, participant 303.*label '31' is outside the PHQ-8 range"):
        load("edaic", root, tmp_path / "data", tiny_hubert)


def test_sessions_are_shared_out_under_torchrun(trees, tiny_hubert, tmp_path):
    """Two processes each extract their share of the sessions; the features equal one process's."""
    import os
    import subprocess
    import sys

    root, _ = trees["edaic"]
    script = tmp_path / "extract.py"
    script.write_text(
        "import sys\n"
        "from mddr_utils.data.daic import index_edaic\n"
        "from mddr_utils.features.daic import extract_daic_features\n"
        "from mddr_utils.sources import extraction_config\n"
        "config = extraction_config('edaic', data_root=sys.argv[1], hubert=sys.argv[3], offline=True)\n"
        "extract_daic_features(index_edaic(sys.argv[1]), sys.argv[2], config, progress=False)\n")
    repository = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
               str(root), str(tmp_path / "shared"), tiny_hubert]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repository)}
    finished = subprocess.run(command, cwd=repository, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    from mddr_utils.data.daic import index_edaic
    from mddr_utils.features.cache import FeatureCache

    shared = FeatureCache(tmp_path / "shared")
    index = index_edaic(root)
    processes = {shared.provenance(modality, video_id)["process"]
                 for modality in ("visual", "head", "audio") for video_id in index["video_id"]}
    assert processes == {0, 1}
    config = sources.extraction_config("edaic", data_root=root, hubert=tiny_hubert, offline=True)
    alone = daic_features.extract_daic_features(index, tmp_path / "alone", config, progress=False)
    together = daic_features.extract_daic_features(index, tmp_path / "shared", config, progress=False)
    assert list(together.table["video_id"]) == list(alone.table["video_id"])
    for mine, theirs in zip(alone, together):
        assert np.array_equal(mine.visual, theirs.visual) and np.array_equal(mine.head, theirs.head)
        assert np.allclose(mine.audio, theirs.audio, atol=1e-4)
        assert np.array_equal(mine.audio_valid, theirs.audio_valid)


def test_delta_is_cross_validated_on_the_corpus_own_sessions_and_scale(trees, tiny_hubert, tmp_path):
    """Chapter 14's δ cross-validation on E-DAIC: folds of its own Training and Development people,
    trained on PHQ-8 (clamp and DRLoss bands), Testing never read."""
    from mddr_utils.evaluation import crossval

    root, _ = trees["edaic"]
    cohort = load("edaic", root, tmp_path / "data", tiny_hubert)
    scored = crossval.delta_cross_validation(cohort, [1.0, 2.0], 2, "smoke", 0, tmp_path / "data",
                                             tmp_path / "results", progress=False)
    assert sorted(scored["delta"].unique()) == [1.0, 2.0] and len(scored) == 4
    pool = cohort.table[cohort.table["split"].isin(["Training", "Development"])]
    assert set(scored["train_videos"] + scored["held_out_videos"]) == {len(pool)}
    saved = [json.loads(path.read_text()) for path in (tmp_path / "results" / "runs").glob("cv_smoke_*.json")]
    assert len(saved) == 4
    assert {run["model"]["label_scale"] for run in saved} == {"PHQ-8"}
    testing = set(cohort.table.loc[cohort.table["split"] == "Testing", "video_id"])
    assert all(testing.isdisjoint(run["kept"] + run["held"]) for run in saved)
    assert crossval.choose_delta(scored)[:2] in ((1.0, 0.1), (2.0, 0.1))
