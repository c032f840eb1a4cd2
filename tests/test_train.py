import numpy as np
import pandas as pd
import pytest
import torch

from mddr_utils.model import MDDR
from mddr_utils.train import (TrainConfig, fit, load_checkpoint, predict, profile_configs, random_crop, run_model,
                              run_recipe, score)
from mddr_utils import sources

from conftest import make_video

QUICK = TrainConfig(num_epochs=3, lr=1e-2, batch=4, lr_step=2)


@pytest.fixture(scope="module")
def smoke_cohort():
    return sources.simulation_cohort("smoke", seed=1)


def test_fit_selects_the_best_development_epoch(smoke_cohort, tiny_config, tmp_path):
    config = profile_configs("smoke", {"visual_dim": 32, "audio_dim": 16, "head_dim": 12})[0]
    run = fit(MDDR(config), smoke_cohort.subset(split="Training"), smoke_cohort.subset(split="Development"), QUICK,
              checkpoint=tmp_path / "run.safetensors", progress=False)
    assert list(run.history["epoch"]) == [1, 2, 3]
    assert run.history["lr"].tolist() == pytest.approx([1e-2, 1e-2, 1e-3])
    assert run.best_dev["rmse"] == pytest.approx(run.history["dev_rmse"].min())
    assert run.best_epoch == int(run.history.loc[run.history["dev_rmse"].idxmin(), "epoch"])
    dev = predict(run.model, smoke_cohort.subset(split="Development"))
    assert score(dev)["rmse"] == pytest.approx(run.best_dev["rmse"], abs=1e-3)
    assert set(dev.columns) >= {"video_id", "subject", "task", "split", "label", "pred"}


def test_checkpoint_round_trip_and_reuse(smoke_cohort, tmp_path):
    first = run_model(smoke_cohort, "smoke", seed=0, data_dir=tmp_path, progress=False)
    assert first.checkpoint.exists() and not list(first.checkpoint.parent.glob("*.partial"))
    test = smoke_cohort.subset(split="Testing")
    reloaded = load_checkpoint(first.checkpoint)
    np.testing.assert_allclose(predict(reloaded, test)["pred"], predict(first.model, test)["pred"], atol=1e-5)
    stamp = first.checkpoint.stat().st_mtime_ns
    again = run_model(smoke_cohort, "smoke", seed=0, data_dir=tmp_path, progress=False)
    assert again.checkpoint == first.checkpoint and again.checkpoint.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(again.history, first.history)
    other_seed = run_model(smoke_cohort, "smoke", seed=1, data_dir=tmp_path, progress=False)
    assert other_seed.checkpoint != first.checkpoint


def test_unreadable_checkpoint_is_named(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="broken.safetensors"):
        load_checkpoint(broken)


def test_random_crop_keeps_audio_aligned():
    video = make_video("220_1", 20, gap=1.0)
    video.audio[:, 0] = np.arange(len(video.audio)) / 50.0  # channel 0 holds each audio frame's own time
    crop = random_crop(video, 5, np.random.default_rng(4))
    assert crop.num_steps == 5
    first_step = int(np.flatnonzero((video.visual == crop.visual[0]).all(1))[0])
    # The crop's audio still starts half a step before its first frame, in the original's clock.
    assert crop.audio[0, 0] == pytest.approx(first_step - 0.5, abs=0.021)
    assert crop.times[0] == pytest.approx(0.5, abs=0.021)


def test_worker_processes_do_not_change_a_cropped_run(smoke_cohort, tmp_path):
    from mddr_utils.data.packed import pack_cohort

    packed = pack_cohort(smoke_cohort, tmp_path / "packed", progress=False)
    config = profile_configs("smoke", {"visual_dim": 32, "audio_dim": 16, "head_dim": 12})[0]
    runs = []
    for workers in (0, 2):
        recipe = TrainConfig(num_epochs=2, lr=1e-2, batch=3, crop_steps=6, workers=workers)
        torch.manual_seed(0)
        runs.append(fit(MDDR(config), packed.subset(split="Training"), packed.subset(split="Development"), recipe,
                        progress=False))
    pd.testing.assert_frame_equal(runs[0].history, runs[1].history, check_exact=True)
    test = packed.subset(split="Testing")
    pd.testing.assert_frame_equal(predict(runs[0].model, test), predict(runs[1].model, test), check_exact=True)


def test_a_run_saved_with_one_worker_count_is_read_back_with_another(smoke_cohort, tmp_path):
    first = run_model(smoke_cohort, "smoke", seed=0, data_dir=tmp_path, progress=False)
    stamp = first.checkpoint.stat().st_mtime_ns
    again = run_model(smoke_cohort, "smoke", seed=0, data_dir=tmp_path, train_overrides={"workers": 2},
                      progress=False)
    assert again.checkpoint == first.checkpoint and again.checkpoint.stat().st_mtime_ns == stamp
    assert "workers" not in run_recipe(TrainConfig(workers=2)) and run_recipe(TrainConfig())["batch"] == 16
