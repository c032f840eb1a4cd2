"""Where a chapter's data comes from: dataset names, feature settings, planted truth."""
import pytest

from mddr_utils import sources


def test_feature_settings_given_as_none_keep_the_datasets_defaults():
    demo = sources.extraction_config("demo", visual_weights=None, hubert=None, hubert_layer=-1)
    assert (demo.visual_weights, demo.hubert, demo.offline) == ("none", "random", True)
    avec = sources.extraction_config("avec2013", visual_weights="imagenet", hubert=None)
    assert (avec.keep, avec.every, avec.visual_weights, avec.hubert) == (1, 100, "imagenet",
                                                                         "facebook/hubert-large-ll60k")
    with pytest.raises(ValueError, match="needs affectnet_checkpoint"):
        sources.extraction_config("avec2014", visual_weights=None)


def test_only_the_simulation_has_planted_truth():
    assert len(sources.planted_truth_cohort("simulation", "smoke")) > 0
    for dataset in ("demo", "avec2014", "elsewhere"):
        with pytest.raises(ValueError, match="planted in the simulation cohort"):
            sources.planted_truth_cohort(dataset, "smoke")


def test_an_avec_dataset_needs_its_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="Reproduce on AVEC2013/2014"):
        sources.check_dataset("avec2014", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no data_root given"):
        sources.check_dataset("avec2013", None)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*empty folder"):
        sources.check_dataset("avec2014", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'avec2015'"):
        sources.check_dataset("avec2015", tmp_path)
    (tmp_path / "Training").mkdir()
    sources.check_dataset("avec2014", tmp_path)


def test_recorded_feature_settings_are_those_of_the_manifest(tmp_path):
    from mddr_utils.features.cache import FeatureCache

    assert sources.recorded_extraction("demo", tmp_path) == {}
    cache = FeatureCache(tmp_path / "features" / "demo")
    cache.write_manifest({"config": {"hubert_layer": 7, "on_error": "raise", "retired_option": 1}, "videos": []})
    assert sources.recorded_extraction("demo", tmp_path) == {"hubert_layer": 7}
    cache.manifest_path.write_text("{truncated")
    with pytest.warns(UserWarning, match="manifest.json"):
        assert sources.recorded_extraction("demo", tmp_path) == {}
