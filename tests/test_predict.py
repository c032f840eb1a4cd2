"""Checkpoints that know their features: the sidecar round trip, refusals, categories (no video work here)."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from mddr_utils import predict as using
from mddr_utils.features.pipeline import ExtractionConfig
from mddr_utils.model import MDDR
from mddr_utils.train import load_checkpoint, set_seed
from mddr_utils.train import predict as train_predict

TRAINING = {"selected_epoch": 3, "development": {"mae": 4.5, "rmse": 6.25}}
DATA = {"dataset": "demo", "description": "tiny test cohort", "videos": {"Training": 2, "Development": 2}}


@pytest.fixture
def features_config(tmp_path) -> ExtractionConfig:
    """Settings with a local HuBERT folder, so that moving or removing it can be tested."""
    folder = tmp_path / "hubert-local"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    return ExtractionConfig(keep=2, every=30, visual_weights="none", hubert=str(folder), offline=True)


@pytest.fixture
def checkpoint(tmp_path, tiny_config, features_config):
    set_seed(0)
    return using.write_checkpoint(MDDR(tiny_config), tmp_path / "model.safetensors", features_config, TRAINING, DATA)


def test_the_sidecar_round_trip(checkpoint, features_config, videos):
    sidecar_file = checkpoint.path.with_suffix(".json")
    assert sidecar_file.is_file()
    loaded = using.load_model(checkpoint.path)
    assert loaded.sidecar == json.loads(sidecar_file.read_text())
    assert loaded.extraction == features_config
    assert loaded.sidecar["extraction"]["settings"] == json.loads(json.dumps(features_config.modality_settings()))
    assert loaded.label_scale == {"name": "BDI-II", "range": [0.0, 63.0], "category_edges": [13.5, 19.5, 28.5],
                                  "category_names": ["minimal", "mild", "moderate", "severe"]}
    assert (loaded.sidecar["training"], loaded.sidecar["data"]) == (TRAINING, DATA)
    reference = load_checkpoint(checkpoint.path)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    assert np.array_equal(train_predict(loaded.model, videos, device="cpu")["pred"],
                          train_predict(reference, videos, device="cpu")["pred"])
    assert "MAE 4.50, RMSE 6.25" in loaded.provenance() and "tiny test cohort" in loaded.provenance()


def test_weights_and_sidecar_must_belong_together(checkpoint, tmp_path, tiny_config):
    path, sidecar_file = checkpoint.path, checkpoint.path.with_suffix(".json")
    other = using.write_checkpoint(MDDR(replace(tiny_config, num_layers=1)), tmp_path / "other.safetensors",
                                   checkpoint.extraction, TRAINING, DATA)
    other.path.replace(path)
    with pytest.raises(using.CheckpointError, match="not written together"):
        using.load_model(path)
    sidecar_file.unlink()
    with pytest.raises(using.CheckpointError, match="sidecar .*model.json is missing"):
        using.load_model(path)
    sidecar_file.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(using.CheckpointError, match="not an MDDR sidecar"):
        using.load_model(path)
    with pytest.raises(ValueError, match="must end in .safetensors"):
        using.write_checkpoint(MDDR(tiny_config), tmp_path / "model.pt", checkpoint.extraction, TRAINING, DATA)


def test_features_with_other_settings_are_refused_naming_them(checkpoint, videos):
    with pytest.raises(using.FeatureMismatchError, match=r"audio\.layer: checkpoint -1, features 3"):
        using.score_features(checkpoint, videos, replace(checkpoint.extraction, hubert_layer=3), progress=False)
    other_sampling = replace(checkpoint.extraction, every=50).modality_settings()
    with pytest.raises(using.FeatureMismatchError) as refused:
        using.check_extraction(checkpoint, other_sampling)
    for setting in ("visual.sampling.every", "head.sampling.every"):
        assert setting in str(refused.value)
    assert "audio" not in str(refused.value)
    # Where the extraction runs and how it batches frames change no feature value: accepted.
    table = using.score_features(checkpoint, videos, replace(checkpoint.extraction, device="cpu", frame_batch_size=2),
                                 progress=False)
    assert list(table["video_id"]) == [video.video_id for video in videos]


def test_scores_are_clamped_and_categorised_at_the_bdi_edges(checkpoint, videos):
    names = using.categories([0.0, 13.49, 13.5, 19.49, 19.5, 28.49, 28.5, 63.0], checkpoint.label_scale)
    assert names == ["minimal", "minimal", "mild", "mild", "moderate", "moderate", "severe", "severe"]
    checkpoint.model.init_output_bias(500.0)
    table = using.score_features(checkpoint, videos, checkpoint.extraction, progress=False)
    assert (table["score"] == 63.0).all() and (table["category"] == "severe").all()
    assert list(table["steps"]) == [video.num_steps for video in videos]


def test_a_video_scores_the_same_alone_or_with_others(checkpoint, videos):
    together = using.score_features(checkpoint, videos, checkpoint.extraction, progress=False)
    alone = using.score_features(checkpoint, videos[1:2], checkpoint.extraction, progress=False)
    assert alone["score"].iloc[0] == together["score"].iloc[1]


def test_files_the_settings_need_are_checked_before_any_work(checkpoint, tmp_path, tiny_config, features_config):
    for file in sorted((tmp_path / "hubert-local").iterdir()):
        file.unlink()
    (tmp_path / "hubert-local").rmdir()
    with pytest.raises(using.ExtractionUnavailableError, match="HuBERT folder .*hubert-local.* is absent"):
        using.predict_videos([tmp_path / "any.mp4"], checkpoint.path, progress=False)
    weights = tmp_path / "affectnet.pth"
    weights.write_bytes(b"the weights it was trained with")
    affectnet = replace(features_config, visual_weights="affectnet", affectnet_checkpoint=str(weights),
                        hubert="random")
    trained = using.write_checkpoint(MDDR(tiny_config), tmp_path / "affectnet.safetensors", affectnet, TRAINING, DATA)
    weights.unlink()
    with pytest.raises(using.ExtractionUnavailableError, match="AffectNet checkpoint .*affectnet.pth is not a file"):
        using.predict_videos([tmp_path / "any.mp4"], trained, progress=False)
    other = tmp_path / "other_affectnet.pth"
    other.write_bytes(b"weights of another training")
    with pytest.raises(using.FeatureMismatchError, match=r"visual\.weights: checkpoint 'affectnet:sha256="):
        using.predict_videos([tmp_path / "any.mp4"], trained, extraction={"affectnet_checkpoint": str(other)},
                             progress=False)
