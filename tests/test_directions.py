"""The directions the simulation cohort was built to show (design notes 8), checked by the tables' protocol.

The smoke notebooks are too small to show any direction, so these tests make their own protocol
run: the compact simulation cohort (`simulation_cohort("demo")`), the demo model, fewer epochs
than the book (RUN below), two seeds; every row is saved and read back as the notebooks do. The
assertions are on the mean Testing MAE over the seeds, with the margins given beside each; the
margins are well inside the gaps measured when the tests were written (in the module's report
`DIRECTIONS` lists them), so a failure means the mechanism stopped working, not bad luck.
"""
import pytest

from mddr_utils import protocol, sources

RUN = dict(profile="demo", seeds=(0, 1), train_overrides={"num_epochs": 15, "lr_step": 10})
ROWS = {
    "v+a+p": dict(model_overrides={"modalities": ("visual", "audio", "head")}),
    "v": dict(model_overrides={"modalities": ("visual",)}),
    "a": dict(model_overrides={"modalities": ("audio",)}),
    "p": dict(model_overrides={"modalities": ("head",)}),
    "FAA only": dict(model_overrides={"use_sea": False}),
    "SEA only": dict(model_overrides={"use_faa": False}),
    "mean pooling + MLP": dict(family="mean pooling + MLP"),
    "training mean": dict(family="training mean"),
}


@pytest.fixture(scope="module")
def mae(tmp_path_factory):
    """Mean Testing MAE over the seeds of every row, read back from the saved results."""
    folder = tmp_path_factory.mktemp("directions")
    cohort = protocol.in_memory(sources.simulation_cohort("demo", seed=0))
    results = [protocol.run_variant(cohort, name, RUN["profile"], RUN["seeds"], folder / "data", folder / "results",
                                    train_overrides=RUN["train_overrides"], dataset_label="direction tests",
                                    progress=False, **how)
               for name, how in ROWS.items()]
    summary = protocol.summarise(results)
    saved = {result.name: protocol.summarise([result]) for result in results}
    assert all(saved[name].loc[name, "mae"] == summary.loc[name, "mae"] for name in ROWS)
    return summary["mae"].to_dict()


@pytest.mark.parametrize("single", ["v", "a", "p"])
def test_table3_all_modalities_beat_each_alone(mae, single):
    assert mae["v+a+p"] < mae[single] - 0.3, mae


@pytest.mark.parametrize("ablated", ["FAA only", "SEA only"])
def test_table4_both_attentions_beat_each_alone(mae, ablated):
    assert mae["v+a+p"] < mae[ablated] - 0.1, mae


def test_table1_mddr_beats_the_mean_and_mean_pooling(mae):
    assert mae["v+a+p"] < 0.75 * mae["training mean"], mae
    assert mae["v+a+p"] < mae["mean pooling + MLP"] - 1.0, mae
