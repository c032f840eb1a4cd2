import numpy as np
import pandas as pd
import pytest
import torch

from mddr_utils.data import PHQ_8, Cohort, VideoFeatures, collate
from mddr_utils.losses import DRLoss
from mddr_utils.model import MDDR, MDDRConfig

from conftest import make_video


def test_collate_pads_and_masks(videos):
    batch = collate(videos)
    assert batch.visual.shape == (3, 12, 16)
    assert batch.mask.sum(1).tolist() == [7, 12, 4]
    assert batch.audio_lengths.tolist() == [len(v.audio) for v in videos]
    assert batch.visual[2, 4:].abs().sum() == 0
    assert batch.label.tolist() == [5.0, 20.0, 40.0]


@pytest.mark.parametrize("change, message", [
    (dict(label=70), "outside the BDI-II range"),
    (dict(times=np.array([0.0, 1.0, 1.0, 2.0])), "increase strictly"),
    (dict(head=np.zeros((3, 12))), "head has 3 rows"),
])
def test_bad_features_are_refused_naming_the_video(change, message):
    good = make_video("204_1", 4)
    values = dict(video_id=good.video_id, visual=good.visual, head=good.head, times=good.times,
                  audio=good.audio, label=good.label)
    values.update(change)
    with pytest.raises(ValueError, match=f"204_1.*{message}"):
        VideoFeatures(**values)


def test_nan_in_features_is_refused():
    video = make_video("205_1", 4)
    video.audio[3, 2] = np.nan
    with pytest.raises(ValueError, match="205_1.*audio holds NaN or Inf in 1 rows"):
        video.validate()


def test_save_load_round_trip(tmp_path):
    video = make_video("206_1", 5)
    video.visual_valid[2] = False
    loaded = VideoFeatures.load(video.save(tmp_path / "206_1.npz"))
    for name in ("visual", "head", "audio", "times", "visual_valid"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(video, name))
    assert (loaded.video_id, loaded.label, loaded.subject) == ("206_1", 10.0, "206")
    assert not list(tmp_path.glob("*.partial*"))


def test_load_names_a_corrupt_file(tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="broken.npz"):
        VideoFeatures.load(broken)


def test_cohort_refuses_duplicate_ids_and_subsets():
    table = pd.DataFrame(dict(video_id=["a", "b", "a"], split=["Training"] * 3, task=["Freeform"] * 3))
    with pytest.raises(ValueError, match="appear twice.*'a'"):
        Cohort(table, loader=lambda row: None)
    table = pd.DataFrame(dict(video_id=["a", "b", "c"], split=["Training", "Testing", "Testing"],
                              task=["Freeform", "Northwind", "Freeform"]))
    cohort = Cohort(table, loader=lambda row: row["video_id"])
    testing = cohort.subset(split="Testing")
    assert [testing[i] for i in range(len(testing))] == ["b", "c"]
    assert len(cohort.subset(split="Testing", task="Freeform")) == 1


def test_cohort_fingerprint_follows_labels_splits_and_identity_and_subsets_keep_the_left_out():
    table = pd.DataFrame(dict(video_id=["a", "b"], subject=["1", "2"], task=["Freeform"] * 2,
                              split=["Training", "Development"], label=[3, 40]))
    left_out = [dict(video_id="c", file="/avec/c_video.mp4", reason="ValueError: no frames")]
    cohort = Cohort(table, loader=lambda row: row, name="x", left_out=left_out, identity={"settings": {"audio": "h"}})
    same = Cohort(table.assign(label=[3.0, 40.0]), loader=lambda row: row, name="x",
                  identity={"settings": {"audio": "h"}})
    assert cohort.fingerprint == same.fingerprint, "3 and 3.0 are the same label"
    assert cohort.fingerprint != Cohort(table.assign(label=[4, 40]), lambda row: row, name="x",
                                        identity={"settings": {"audio": "h"}}).fingerprint
    assert cohort.fingerprint != Cohort(table, lambda row: row, name="x", identity={"settings": {"audio": "g"}}
                                        ).fingerprint
    assert cohort.fingerprint != cohort.subset(split="Training").fingerprint
    assert list(cohort.subset(split="Training").left_out["file"]) == ["/avec/c_video.mp4"]
    assert list(Cohort(table, lambda row: row).left_out.columns) == ["video_id", "file", "reason"]


def test_an_empty_split_is_named_with_its_folder():
    table = pd.DataFrame(dict(video_id=["a"], split=["Training"], task=["Freeform"]))
    cohort = Cohort(table, lambda row: row, name="features:avec2014", origin="/data/AVEC2014",
                    left_out=[dict(video_id="b", file="/data/AVEC2014/b.mp4", reason="no face")])
    with pytest.raises(ValueError, match=r"Development split is empty.*/data/AVEC2014.*1 videos were left out.*b"):
        cohort.require_splits("Training", "Development")


def _with(video: VideoFeatures, **change) -> VideoFeatures:
    values = dict(video_id=video.video_id, visual=video.visual, head=video.head, times=video.times,
                  audio=video.audio, label=video.label, subject=video.subject)
    return VideoFeatures(**{**values, **change})


def test_labels_are_checked_on_the_videos_own_scale(tmp_path):
    good = make_video("301", 4)
    assert _with(good, label=63).scale == "BDI-II"
    assert _with(good, label=24, scale="PHQ-8").label == 24
    with pytest.raises(ValueError, match="'301'.*label 25 is outside the PHQ-8 range 0..24"):
        _with(good, label=25, scale="PHQ-8")
    with pytest.raises(ValueError, match="'301'.*unknown label scale 'HAMD'"):
        _with(good, scale="HAMD")
    loaded = VideoFeatures.load(_with(good, label=12, scale="PHQ-8").save(tmp_path / "301.npz"))
    assert (loaded.scale, loaded.label) == ("PHQ-8", 12.0)


def test_a_feature_file_written_before_scales_loads_as_bdi_ii(tmp_path):
    video = make_video("302", 4, label=40)
    with np.load(video.save(tmp_path / "302.npz")) as stored:
        arrays = {name: stored[name] for name in stored.files if name != "scale"}
    np.savez(tmp_path / "old.npz", **arrays)
    loaded = VideoFeatures.load(tmp_path / "old.npz")
    assert (loaded.scale, loaded.label) == ("BDI-II", 40.0)


def test_cohort_scale_defaults_to_bdi_ii_and_subsets_keep_it():
    table = pd.DataFrame(dict(video_id=["a", "b"], split=["Training", "Testing"], task=["Interview"] * 2))
    assert Cohort(table, lambda row: row).scale == "BDI-II"
    cohort = Cohort(table, lambda row: row, scale="phq_8")
    assert cohort.scale == "PHQ-8" and cohort.subset(split="Testing").scale == "PHQ-8"
    with pytest.raises(ValueError, match="unknown label scale"):
        Cohort(table, lambda row: row, scale="HAMD")


def test_phq8_end_to_end_videos_drloss_and_model_clamp(tiny_config):
    """A PHQ-8 cohort's labels, DRLoss's categories and the model's clamp all follow PHQ-8, not BDI-II."""
    videos = [_with(make_video(f"40{i}", 5, seed=i), label=label, scale="PHQ-8") for i, label in enumerate((8, 20))]
    batch = collate(videos)
    # 10 vs 8: PHQ-8 moderate vs mild (full Huber 1.5); 21 vs 20: both severe, |d| = 1 (0.1 * 0.5).
    loss = DRLoss(scale=PHQ_8)(torch.tensor([10.0, 21.0]), batch.label)
    assert loss.item() == pytest.approx((1.5 + 0.05) / 2)
    model = MDDR(MDDRConfig(**{**tiny_config.to_dict(), "label_scale": videos[0].scale}))
    model.init_output_bias(40.0)
    assert model.eval()(batch).tolist() == [24.0, 24.0]


def test_audio_valid_is_optional_checked_and_carried_by_collate():
    plain, other = make_video("501_1", 4, seed=1), make_video("502_1", 7, seed=2)
    assert plain.audio_valid is None and collate([plain, other]).audio_valid is None
    speech = np.zeros(len(other.audio), dtype=bool)
    speech[10:40] = True
    batch = collate([plain, _with(other, audio_valid=speech)])
    assert batch.audio_valid.shape == batch.audio.shape[:2] and batch.audio_valid.dtype == torch.bool
    assert batch.audio_valid[0, :len(plain.audio)].all(), "a video without a mask: every real frame usable"
    assert not batch.audio_valid[0, len(plain.audio):].any(), "padding is never usable"
    assert batch.audio_valid[1].nonzero().ravel().tolist() == list(range(10, 40))
    assert batch.to("cpu").audio_valid is not None
    with pytest.raises(ValueError, match=r"'502_1'.*audio_valid has shape \(5,\) but audio has \d+ frames"):
        _with(other, audio_valid=np.ones(5, dtype=bool))


def test_save_load_keeps_audio_valid_and_its_absence(tmp_path):
    video = make_video("503_1", 5)
    assert VideoFeatures.load(video.save(tmp_path / "none.npz")).audio_valid is None
    speech = np.arange(len(video.audio)) % 3 == 0
    loaded = VideoFeatures.load(_with(video, audio_valid=speech).save(tmp_path / "mask.npz"))
    np.testing.assert_array_equal(loaded.audio_valid, speech)
    assert loaded.audio_valid.dtype == bool
