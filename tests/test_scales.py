"""Label scales: BDI-II (section 4.1) unchanged from DRLoss's categories, PHQ-8 bands, clamps and label checks."""
import numpy as np
import pytest
import torch

from mddr_utils.data.scales import BDI_II, PHQ_8, LabelScale, scale_by_name
from mddr_utils.losses import bdi_category
from mddr_utils.predict import CheckpointError, categories


def test_bdi_ii_categories_equal_drloss_categories_on_a_grid():
    near_edges = np.repeat([13.5, 19.5, 28.5], 3) + np.tile([-1e-9, 0.0, 1e-9], 3)
    grid = np.concatenate([np.arange(-5, 70, 0.25), near_edges])
    np.testing.assert_array_equal(BDI_II.category(grid), bdi_category(grid))
    tensor = torch.tensor(grid, dtype=torch.float64)
    assert torch.equal(BDI_II.category(tensor), bdi_category(tensor))
    assert all(BDI_II.category(float(value)) == bdi_category(float(value)) for value in grid[::7])


@pytest.mark.parametrize("scale, bands", [
    (BDI_II, {"minimal": (0, 13), "mild": (14, 19), "moderate": (20, 28), "severe": (29, 63)}),
    (PHQ_8, {"none": (0, 4), "mild": (5, 9), "moderate": (10, 14), "moderately severe": (15, 19), "severe": (20, 24)}),
])
def test_integer_scores_fall_in_the_published_bands(scale, bands):
    for name, (low, high) in bands.items():
        for score in range(low, high + 1):
            assert scale.category_name(score) == name, (scale.name, score)


def test_real_scores_split_at_the_edges_and_outside_the_range():
    assert PHQ_8.category([4.49, 4.5, 9.49, 9.5, 14.5, 19.49, 19.5]).tolist() == [0, 1, 1, 2, 3, 3, 4]
    assert PHQ_8.category(-3.0) == 0 and PHQ_8.category(30.0) == 4
    assert BDI_II.category(-0.1) == 0 and BDI_II.category(70) == 3
    assert PHQ_8.category(torch.tensor([4, 10, 25])).tolist() == [0, 2, 4]


def test_clamp_keeps_the_type_and_limits_to_the_range():
    assert PHQ_8.clamp(30.0) == 24.0 and PHQ_8.clamp(-2) == 0.0 and PHQ_8.clamp(7.5) == 7.5
    np.testing.assert_array_equal(BDI_II.clamp(np.array([-1.0, 10.0, 80.0])), [0.0, 10.0, 63.0])
    clamped = PHQ_8.clamp(torch.tensor([-1.0, 30.0], requires_grad=True))
    assert torch.is_tensor(clamped) and clamped.tolist() == [0.0, 24.0]


def test_binary_reading_is_phq8_of_ten_or_more():
    assert PHQ_8.is_depressed(10) and not PHQ_8.is_depressed(9)
    assert PHQ_8.is_depressed(np.array([9.5, 10, 24])).tolist() == [False, True, True]
    with pytest.raises(ValueError, match="BDI-II sets no binary"):
        BDI_II.is_depressed(20)


@pytest.mark.parametrize("value, message", [(25, "outside the PHQ-8 range 0..24"), (-1, "outside"),
                                            (10.5, "not an integer"), ("ten", "not a number"),
                                            (float("nan"), "not a finite")])
def test_check_label_names_the_source(value, message):
    with pytest.raises(ValueError, match=message) as error:
        PHQ_8.check_label(value, "labels.csv, participant 301")
    assert "labels.csv, participant 301" in str(error.value)


def test_check_label_accepts_the_range_and_real_values_when_asked():
    assert PHQ_8.check_label("24", "x") == 24.0 and BDI_II.check_label(63, "x") == 63.0
    assert PHQ_8.check_label(10.5, "x", integer=False) == 10.5


def test_scale_by_name_ignores_case_and_punctuation():
    assert scale_by_name("PHQ-8") is PHQ_8 and scale_by_name("phq8") is PHQ_8 and scale_by_name("bdi_ii") is BDI_II
    assert scale_by_name(BDI_II) is BDI_II
    with pytest.raises(ValueError, match="unknown label scale 'HAMD'"):
        scale_by_name("HAMD")


def test_a_scale_refuses_inconsistent_edges_and_names():
    with pytest.raises(ValueError, match="need 3 category names"):
        LabelScale("x", 10, (3.5, 6.5), ("a", "b"))
    with pytest.raises(ValueError, match="increase strictly"):
        LabelScale("x", 10, (6.5, 3.5), ("a", "b", "c"))


def test_predict_names_categories_on_the_sidecars_scale():
    phq = {"name": "PHQ-8", "range": [0.0, 24.0], "category_edges": [4.5, 9.5, 14.5, 19.5],
           "category_names": ["none", "mild", "moderate", "moderately severe", "severe"]}
    assert categories([4.0, 5.0, 10.0, 15.0, 24.0], phq) == ["none", "mild", "moderate", "moderately severe", "severe"]
    with pytest.raises(CheckpointError, match="PHQ-8 has edges"):
        categories([1.0], {**phq, "category_edges": [5.5, 9.5, 14.5, 19.5]})
    with pytest.raises(CheckpointError, match="unknown label scale 'HAMD'"):
        categories([1.0], {**phq, "name": "HAMD"})


def test_bands_list_the_integer_scores_of_each_category():
    """BDI-II's bands as the paper gives them (section 4.2), PHQ-8's as Kroenke et al. define them."""
    assert BDI_II.bands() == ["minimal 0-13", "mild 14-19", "moderate 20-28", "severe 29-63"]
    assert PHQ_8.bands() == ["none 0-4", "mild 5-9", "moderate 10-14", "moderately severe 15-19", "severe 20-24"]
