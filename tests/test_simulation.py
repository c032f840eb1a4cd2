import numpy as np
import pytest

from mddr_utils.data import make_simulation_cohort
from mddr_utils.data.simulation import RELATION, SEVERITY

SMALL = dict(visual_dim=32, audio_dim=16)


@pytest.fixture(scope="module")
def cohort():
    return make_simulation_cohort(3, **SMALL)


def test_shaped_like_avec2014(cohort):
    table = cohort.table
    assert table.groupby(["split", "task"]).size().tolist() == [50] * 6
    assert table["recording"].nunique() == 150 and table["subject"].nunique() == 84
    assert (table.groupby("recording")["label"].nunique() == 1).all()
    assert table["label"].between(0, 45).all() and table["label"].std() > 8
    subjects = {split: set(table.loc[table["split"] == split, "subject"]) for split in ("Training", "Development", "Testing")}
    assert subjects["Training"] & subjects["Development"] and subjects["Training"] & subjects["Testing"]
    expected_steps = (np.floor(table["duration"] * 30).astype(int) - 1) // 25 + 1
    assert (table["num_steps"] == expected_steps).all()


def test_videos_are_deterministic_and_sized(cohort):
    first = cohort[5]
    again = make_simulation_cohort(3, **SMALL)[5]
    np.testing.assert_array_equal(first.audio, again.audio)
    np.testing.assert_array_equal(first.visual, again.visual)
    assert first.visual.shape == (first.num_steps, 32) and first.head.shape == (first.num_steps, 12)
    assert first.audio.shape == (int(cohort.table.loc[5, "duration"] * 50), 16)
    np.testing.assert_allclose(np.diff(first.times), 25 / 30)
    assert not np.array_equal(cohort[6].visual[:3], first.visual[:3])


def test_default_sizes_are_the_papers():
    video = make_simulation_cohort(0)[0]
    assert (video.visual.shape[1], video.audio.shape[1], video.head.shape[1]) == (2048, 1024, 12)


def _latent(cohort, video, name):
    """Least-squares recovery of the planted latent from a modality's features."""
    features = {"visual": video.visual, "head": video.head}[name]
    return features @ np.linalg.pinv(cohort.projections[name])


def test_label_is_planted_only_in_informative_segments(cohort):
    informative_means, other_means, planted_parts = [], [], []
    for index in range(60):
        video = cohort[index]
        severity = _latent(cohort, video, "visual")[:, SEVERITY]
        planted = video.extras["informative"] == 0
        if planted.any() and (~planted).any():
            informative_means.append(severity[planted].mean())
            other_means.append(severity[~planted].mean())
            planted_parts.append(video.extras["u"])
    assert len(planted_parts) > 15
    assert np.corrcoef(informative_means, planted_parts)[0, 1] > 0.9
    assert abs(np.corrcoef(other_means, planted_parts)[0, 1]) < 0.35


def test_the_two_planted_parts_make_the_label(cohort):
    table = cohort.table.set_index("video_id")
    for index in range(10):
        video = cohort[index]
        standardised = (table.at[video.video_id, "label"] - cohort.severity["mean"]) / cohort.severity["std"]
        assert video.extras["u"] + video.extras["r"] == pytest.approx(standardised)


@pytest.mark.parametrize("modality", ["visual", "head"])
def test_relation_is_visible_only_as_a_change_after_the_opening(cohort, modality):
    changes, levels, relation = [], [], []
    for index in range(80):
        video = cohort[index]
        axis = _latent(cohort, video, modality)[:, RELATION]
        after = video.times >= cohort.settings.relation_onset_seconds
        if after.all() or not after.any():
            continue
        changes.append(axis[after].mean() - axis[~after].mean())
        levels.append(axis.mean())
        relation.append(video.extras["r"])
    assert len(relation) > 60
    assert np.corrcoef(changes, relation)[0, 1] > 0.8
    assert abs(np.corrcoef(levels, relation)[0, 1]) < 0.2


def test_truth_table_covers_the_video(cohort):
    truth = cohort.truth(cohort.table["video_id"][0])
    assert truth["start_step"].iloc[0] == 0 and truth["end_step"].iloc[-1] == cohort.table["num_steps"][0]
    assert set(truth["modality"]) <= {"visual", "audio", "head", "none"}
    np.testing.assert_allclose(truth["start_s"], truth["start_step"] * 25 / 30)


def test_knobs_are_checked():
    with pytest.raises(ValueError, match="subjects"):
        make_simulation_cohort(0, recordings_per_split=10, num_subjects=84)


def test_simulation_settings_are_part_of_the_cohort_fingerprint():
    from mddr_utils.sources import simulation_cohort

    smoke, other_noise = simulation_cohort("smoke", seed=0), simulation_cohort("smoke", seed=0, feature_noise=0.9)
    assert smoke.table.equals(other_noise.table)
    assert smoke.fingerprint != other_noise.fingerprint
    assert smoke.fingerprint == simulation_cohort("smoke", seed=0).fingerprint
