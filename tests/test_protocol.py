import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mddr_utils import metrics, sources
from mddr_utils.evaluation import crossval, paper, runs, stats, tables
from mddr_utils import train as training
from mddr_utils.data import Cohort

from conftest import make_video

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def cohort():
    return sources.simulation_cohort("smoke", seed=3)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol")
    return {"data_dir": root / "data", "results_dir": root / "results"}


@pytest.fixture(scope="module")
def watched(cohort, folders):
    """MDDR and one baseline run by the protocol while every call to fit and predict is recorded."""
    calls = []
    real_fit, real_predict = training.fit, training.predict

    def fit(model, train_videos, dev_videos, *args, **kwargs):
        calls.append(("fit", set(train_videos.table["split"]), set(dev_videos.table["split"])))
        run = real_fit(model, train_videos, dev_videos, *args, **kwargs)
        calls.append(("selected",))
        return run

    def predict(model, videos, *args, **kwargs):
        calls.append(("predict", set(videos.table["split"])))
        return real_predict(model, videos, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(training, "fit", fit)
    patch.setattr(training, "predict", predict)
    try:
        results = {family: runs.run_variant(cohort, family, "smoke", SEEDS, family=family, progress=False,
                                                dataset_label="smoke simulation", **folders)
                   for family in (runs.MDDR_FAMILY, "visual attention")}
    finally:
        patch.undo()
    return results, calls


def test_testing_is_never_used_for_training_or_selection(watched):
    _, calls = watched
    fits = [call for call in calls if call[0] == "fit"]
    assert len(fits) == 2 * len(SEEDS)
    assert all(train == {"Training"} and dev == {"Development"} for _, train, dev in fits)
    on_testing = [index for index, call in enumerate(calls) if call == ("predict", {"Testing"})]
    assert len(on_testing) == 2 * len(SEEDS), "Testing is evaluated exactly once per seed and row"
    assert all(calls[index - 1] == ("selected",) for index in on_testing), \
        "Testing is evaluated right after training and selection have finished, never during them"


def test_the_selected_epoch_is_the_best_development_epoch(watched, folders):
    result = watched[0][runs.MDDR_FAMILY]
    for run_id, best_epoch in zip(result.per_seed["run_id"], result.per_seed["best_epoch"]):
        record = json.loads((folders["results_dir"] / "runs" / f"{run_id}.json").read_text())
        history = pd.DataFrame(record["history"])
        assert best_epoch == int(history.loc[history["dev_rmse"].idxmin(), "epoch"])


def test_seeds_give_mean_and_std(watched):
    result = watched[0]["visual attention"]
    summary = stats.summarise([result]).iloc[0]
    assert list(result.per_seed["seed"]) == list(SEEDS)
    assert summary["mae"] == pytest.approx(result.per_seed["mae"].mean())
    assert summary["mae_std"] == pytest.approx(result.per_seed["mae"].std(ddof=1))
    low, high = result.intervals["mae"]
    assert low <= summary["mae"] <= high
    assert "±" in tables.format_summary(stats.summarise([result])).iloc[0]["MAE"]


def test_per_seed_scores_match_the_saved_predictions(watched):
    result = watched[0][runs.MDDR_FAMILY]
    for seed, row in zip(SEEDS, result.per_seed.itertuples()):
        predictions = result.seed_predictions(seed)
        assert predictions["split"].eq("Testing").all() and predictions["pred"].between(0, 63).all()
        assert row.mae == pytest.approx(metrics.mae(predictions["pred"], predictions["label"]))
        assert row.rmse == pytest.approx(metrics.rmse(predictions["pred"], predictions["label"]))


def test_an_identical_row_is_reused_not_retrained(watched, cohort, folders, monkeypatch):
    first = watched[0][runs.MDDR_FAMILY]

    def no_training(*args, **kwargs):
        raise AssertionError("a saved run was trained again")

    monkeypatch.setattr(training, "fit", no_training)
    again = runs.run_variant(cohort, "v+a+p, under another name", "smoke", SEEDS, progress=False, **folders)
    assert again.per_seed["reused"].all()
    pd.testing.assert_frame_equal(again.per_seed.drop(columns="reused"), first.per_seed.drop(columns="reused"))
    with pytest.raises(AssertionError, match="trained again"):
        runs.run_variant(cohort, "another learning rate", "smoke", SEEDS[:1], progress=False,
                             train_overrides={"lr": 3e-3}, **folders)


def test_results_are_saved_with_their_provenance(watched):
    result = watched[0][runs.MDDR_FAMILY]
    saved = json.loads(result.path.read_text())
    assert saved["status"] == "computed" and saved["seeds"] == list(SEEDS)
    assert saved["dataset"] == "smoke simulation" and saved["profile"] == "smoke"
    assert saved["model"]["modalities"] == ["visual", "audio", "head"] and "lr" in saved["train"]
    assert saved["summary"]["mae"] == pytest.approx(result.per_seed["mae"].mean())
    assert result.path.with_suffix(".csv").exists()


def test_a_row_that_cannot_be_computed_holds_no_number(folders):
    row = runs.not_computed("AffectNet", "no AffectNet checkpoint given", "smoke", SEEDS,
                                folders["results_dir"], "demo cohort")
    summary = stats.summarise([row])
    assert summary.loc["AffectNet", "status"] == "not computed"
    assert summary.loc["AffectNet", ["mae", "rmse", "mae_low"]].isna().all()
    shown = tables.format_summary(summary)
    assert shown.loc["AffectNet", "MAE"] == "not computed"
    assert shown.loc["AffectNet", "why not computed"] == "no AffectNet checkpoint given"
    compared = tables.comparison_table(summary, paper.paper_table(2), "demo")
    assert compared.loc["AffectNet", ("ours, demo cohort (synthetic)", "MAE")] == "not computed"
    saved = json.loads(row.path.read_text())
    assert saved["status"] == "not computed" and saved["per_seed"] == []


def test_recordings_come_from_the_table():
    table = pd.DataFrame({"video_id": ["203_1_Freeform", "203_1_Northwind", "205_2_Combined"],
                          "subject": ["203", "203", "205"], "session": [1, 1, 2]})
    assert stats.recording_ids(table).tolist() == ["203_1", "203_1", "205_2"]
    assert stats.recording_ids(table.assign(recording=["a", "a", "b"])).tolist() == ["a", "a", "b"]
    assert stats.recording_ids(table.drop(columns="session")).tolist() == list(table["video_id"])


def test_per_recording_scores_average_both_tasks():
    predictions = pd.DataFrame({"recording": ["r1", "r1", "r2", "r2"], "label": [10, 10, 30, 30],
                                "pred": [6.0, 12.0, 30.0, 36.0]})
    recordings = stats.per_recording(predictions)
    assert recordings["pred"].tolist() == [9.0, 33.0]
    scores = stats.testing_scores(predictions)
    assert scores["mae"] == pytest.approx((4 + 2 + 0 + 6) / 4)
    assert scores["recording_mae"] == pytest.approx((1 + 3) / 2)
    assert scores["recording_rmse"] == pytest.approx(math.sqrt((1 + 9) / 2))
    with pytest.raises(ValueError, match="different labels"):
        stats.per_recording(predictions.assign(label=[10, 11, 30, 30]))


def test_scores_are_clamped_and_nan_refused():
    assert stats.clamp_scores([-3.0, 20.0, 70.0]).tolist() == [0.0, 20.0, 63.0]
    with pytest.raises(ValueError, match="NaN"):
        stats.clamp_scores([1.0, float("nan")])


def test_bootstrap_interval_resamples_recordings():
    rng = np.random.default_rng(0)
    recordings = np.repeat([f"r{i}" for i in range(40)], 2)
    labels = np.repeat(rng.integers(0, 40, 40), 2).astype(float)
    predictions = pd.DataFrame({"recording": recordings, "video_id": [f"v{i}" for i in range(80)],
                                "label": labels, "pred": labels + rng.normal(0, 5, 80)})
    mae = metrics.mae(predictions["pred"], predictions["label"])
    low, high = stats.bootstrap_interval(predictions, "mae")
    assert low < mae < high and high - low < mae
    constant = predictions.assign(pred=predictions["label"] + 3)
    assert stats.bootstrap_interval(constant, "rmse") == pytest.approx((3.0, 3.0))
    two_seeds = pd.concat([predictions.assign(seed=0), constant.assign(seed=1)])
    low2, high2 = stats.bootstrap_interval(two_seeds, "mae", by_recording=False)
    assert low2 == pytest.approx((low + 3) / 2, abs=0.5) and high2 == pytest.approx((high + 3) / 2, abs=0.5)


def test_paper_tables_hold_the_papers_numbers():
    assert paper.paper_table(3).loc["v+a+p"].tolist() == [5.98, 7.80, 5.75, 7.12]
    assert paper.paper_table(2).loc["ImageNet", ("AVEC2014", "MAE")] == 7.0
    assert paper.paper_table(4).loc["SEA only", ("AVEC2013", "RMSE")] == 8.36
    table1 = paper.paper_table(1)
    assert math.isnan(table1.loc["Concat+LSTM", ("AVEC2013", "MAE")]) and len(table1) == 14
    assert paper.paper_citations()["AUs"] == ["song2020spectral"]
    with pytest.raises(ValueError):
        paper.paper_table(5)


def test_our_numbers_enter_an_avec_column_only_when_computed_on_it():
    ours = pd.DataFrame({"mae": [5.0], "mae_std": [0.1], "rmse": [6.0], "rmse_std": [0.2]}, index=["v+a+p"])
    on_avec = tables.comparison_table(ours, paper.paper_table(3), "avec2014")
    assert list(on_avec.columns.get_level_values(0).unique()) == ["paper, AVEC2014", "ours, AVEC2014"]
    assert on_avec.loc["v+a+p", ("ours, AVEC2014", "MAE")] == "5.00 ± 0.10"
    synthetic = tables.comparison_table(ours, paper.paper_table(3), "simulation")
    assert "ours, simulation cohort (synthetic)" in synthetic.columns.get_level_values(0)
    assert synthetic.loc["v", ("ours, simulation cohort (synthetic)", "MAE")] == "—"
    assert synthetic.loc["v+a+p", ("paper, AVEC2013", "MAE")] == "5.98"
    stands_for = tables.comparison_table(ours.rename(index={"v+a+p": "MDDR (v+a+p)"}),
                                           paper.paper_table(1), "simulation",
                                           paper.TABLE1_FAMILIES)
    assert stands_for.loc["MDDR (v+a+p)", ("paper's row", "")] == "Proposed Approach (MDDR)"
    assert stands_for.loc["MDDR (v+a+p)", ("paper, AVEC2014", "RMSE")] == "7.12"


def test_cross_validation_folds_keep_subjects_apart(cohort):
    folds = crossval.cross_validation_folds(cohort, 2)
    table = cohort.table.set_index("video_id")
    pool = set(cohort.table.loc[cohort.table["split"] != "Testing", "video_id"])
    assert set().union(*(set(held) for _, held in folds)) == pool
    for kept, held in folds:
        assert not set(table.loc[kept, "subject"]) & set(table.loc[held, "subject"])
        assert set(kept) | set(held) == pool


def test_delta_cross_validation_scores_every_delta_and_fold(cohort, folders):
    cv = crossval.delta_cross_validation(cohort, [0.0, 4.0], 2, "smoke", 0, progress=False, **folders)
    assert len(cv) == 4 and set(cv["delta"]) == {0.0, 4.0} and (cv["epochs"] == 2).all()
    assert set(cv["weight"]) == {0.1}
    delta, weight, summary = crossval.choose_delta(cv)
    assert (delta, weight) == summary[("rmse", "mean")].idxmin()
    again = crossval.delta_cross_validation(cohort, [0.0, 4.0], 2, "smoke", 0, progress=False, **folders)
    pd.testing.assert_frame_equal(cv, again)


def test_delta_and_weight_are_cross_validated_together(cohort, folders):
    cv = crossval.delta_cross_validation(cohort, [0.0, 4.0], 2, "smoke", 0, progress=False, weights=(0.1, 0.5),
                                         **folders)
    assert len(cv) == 8 and set(zip(cv["delta"], cv["weight"])) == {(0.0, 0.1), (0.0, 0.5), (4.0, 0.1), (4.0, 0.5)}
    runs_by_weight = cv.groupby("weight")["rmse"].apply(list)
    assert runs_by_weight[0.1] != runs_by_weight[0.5]  # w reaches the loss: the runs differ
    delta, weight, summary = crossval.choose_delta(cv, "mae")
    assert summary.loc[(delta, weight), ("mae", "mean")] == summary[("mae", "mean")].min()


def test_outliers_are_counted_per_seed():
    predictions = pd.DataFrame({"seed": [0, 0, 0], "label": [5.0, 15.0, 40.0], "pred": [13.6, 15.0, 30.0]})
    row = runs.VariantResult("DRLoss", "computed", "crafted", "smoke", [0], predictions=predictions)
    counts = stats.outlier_counts([row])
    assert counts.loc[0, "outliers"] == 1 and counts.loc[0, "videos"] == 3


def test_in_memory_loads_each_video_once_and_keeps_the_feature_identity():
    loads = []

    def load(row):
        loads.append(row["video_id"])
        return make_video(f"{row['video_id']}_1", steps=3)

    table = pd.DataFrame({"video_id": ["a", "b"], "split": ["Training", "Testing"], "label": [1, 2]})
    first = Cohort(table, load, identity={"settings": {"visual": "random"}}).in_memory()
    assert first[0] is first.subset(split="Training")[0] and first[1].video_id == "b_1" and loads == ["a", "b"]
    other = Cohort(table, load, identity={"settings": {"visual": "imagenet"}}).in_memory()
    assert training.cohort_key(first) != training.cohort_key(other)
    relabelled = Cohort(table.assign(label=[1, 3]), load, identity={"settings": {"visual": "random"}}).in_memory()
    assert training.cohort_key(first) != training.cohort_key(relabelled)


def test_a_run_depends_on_its_seed_not_on_what_ran_before(cohort, tmp_path):
    scores = []
    for attempt in range(2):
        torch.manual_seed(100 + attempt)
        record = runs.run_seed(cohort, "visual attention", "smoke", 0, tmp_path / f"data{attempt}",
                                   tmp_path / f"results{attempt}", progress=False)
        scores.append(record["predictions"]["pred"].to_numpy())
    np.testing.assert_array_equal(scores[0], scores[1])


def test_a_cross_validation_run_depends_on_its_seed_not_on_what_ran_before(cohort, tmp_path):
    scores = []
    for attempt in range(2):
        torch.manual_seed(100 + attempt)
        cv = crossval.delta_cross_validation(cohort, [2.0], 2, "smoke", 0, tmp_path / f"data{attempt}",
                                             tmp_path / f"results{attempt}", progress=False)
        scores.append(cv[["mae", "rmse"]].to_numpy())
    np.testing.assert_array_equal(scores[0], scores[1])


def test_runs_and_cross_validation_train_on_the_cohorts_label_scale():
    """A PHQ-8 cohort (DAIC) trains with PHQ-8's clamp and DRLoss bands unless the row names a scale."""
    table = pd.DataFrame({"video_id": ["a", "b"], "subject": ["1", "2"], "split": ["Training", "Development"],
                          "label": [3.0, 12.0]})
    phq = Cohort(table, lambda row: make_video(f"{row['video_id']}_1", steps=3, label=row["label"]), scale="PHQ-8")
    assert runs._configs(runs.MDDR_FAMILY, phq, "smoke", 0, None, None)[0]["label_scale"] == "PHQ-8"
    assert runs._configs(runs.MDDR_FAMILY, phq, "smoke", 0, {"label_scale": "BDI-II"}, None)[0]["label_scale"] == "BDI-II"
    bdi = Cohort(table, phq.loader)
    assert runs._configs(runs.MDDR_FAMILY, bdi, "smoke", 0, None, None)[0]["label_scale"] == "BDI-II"
    assert training.cohort_model_overrides(phq, {"use_sea": False}) == {"label_scale": "PHQ-8", "use_sea": False}
