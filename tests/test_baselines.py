import numpy as np
import pytest
import torch

from mddr_utils import sources
from mddr_utils.baselines import BASELINES, TrainingMean, audio_step_means, make_baseline
from mddr_utils.data import collate
from mddr_utils.model import audio_windows
from mddr_utils.train import TrainConfig, fit, predict

from conftest import TINY_DIMS

TRAINED = [name for name in BASELINES if name != "training mean"]


@pytest.mark.parametrize("family", list(BASELINES))
def test_scores_per_video_clamped_in_eval_mode(family, videos):
    model = make_baseline(family, TINY_DIMS, "smoke")
    model.init_output_bias(100.0)
    batch = collate(videos)
    model.eval()
    with torch.no_grad():
        scores = model(batch)
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    assert scores.max() <= 63 and scores.min() >= 0
    if family != "training mean":
        model.train()
        with torch.no_grad():
            assert model(batch).max() > 63, "the clamp belongs to eval mode only, as in MDDR"


@pytest.mark.parametrize("family", TRAINED)
def test_padding_does_not_change_a_video_score(family, videos):
    model = make_baseline(family, TINY_DIMS, "smoke").eval()
    with torch.no_grad():
        together = model(collate(videos))
        alone = torch.stack([model(collate([video]))[0] for video in videos])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_training_mean_predicts_one_number(videos):
    model = make_baseline("training mean", TINY_DIMS)
    assert not model.needs_training and isinstance(model, TrainingMean)
    model.init_output_bias(17.5)
    assert model(collate(videos)).tolist() == [17.5, 17.5, 17.5]


def test_audio_step_means_average_each_steps_own_window(videos):
    batch = collate(videos)
    means, has_audio = audio_step_means(batch)
    start, length = audio_windows(batch.times, batch.mask, batch.audio_lengths, batch.audio_rate)
    for row in range(len(videos)):
        for step in range(videos[row].num_steps):
            first, count = int(start[row, step]), int(length[row, step])
            expected = batch.audio[row, first:first + count].mean(0)
            torch.testing.assert_close(means[row, step], expected, atol=1e-5, rtol=1e-4)
    assert has_audio.sum() == batch.mask.sum()


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline("C3D", TINY_DIMS)


@pytest.mark.parametrize("family", TRAINED)
def test_train_fit_trains_a_baseline(family):
    cohort = sources.simulation_cohort("smoke", seed=2)
    dims = {"visual_dim": 32, "audio_dim": 16, "head_dim": 12}
    config = TrainConfig(num_epochs=2, lr=1e-2, batch=4)
    run = fit(make_baseline(family, dims, "smoke"), cohort.subset(split="Training"),
              cohort.subset(split="Development"), config, progress=False)
    assert len(run.history) == 2 and np.isfinite(run.history["train_loss"]).all()
    scores = predict(run.model, cohort.subset(split="Testing"))["pred"]
    assert scores.between(0, 63).all()
