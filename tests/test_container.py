import numpy as np
import pandas as pd
import pytest

from mddr_utils.data import Cohort, VideoFeatures, collate

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
