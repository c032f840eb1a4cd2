"""Faults on the way from a cohort to a table (issue: a researcher's own corpus): stale derived results,
empty splits, mismatched or foreign checkpoints, machine-dependent precision, progress bars and captions.

Each test names the fault it guards against; each failed on the code before the fix.
"""
import gc
import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from mddr_utils import device, sources, versioning
from mddr_utils.evaluation import crossval, runs, tables
from mddr_utils import train as training
from mddr_utils.data import Cohort, collate
from mddr_utils.model import MDDR

from conftest import make_video


SIMULATION_SEED = 5


@pytest.fixture(scope="module")
def cohort():
    return sources.simulation_cohort("smoke", seed=SIMULATION_SEED).in_memory()


def relabelled():
    """The same videos with one Training label corrected, as after an edited label file."""
    cohort = sources.simulation_cohort("smoke", seed=SIMULATION_SEED)
    table = cohort.table.copy()
    first = table.index[table["split"] == "Training"][0]
    table.loc[first, "label"] = (table.loc[first, "label"] + 7) % 63
    return Cohort.from_parts(cohort, table)


def float32_scores(model, videos) -> np.ndarray:
    """The model's scores computed here in plain float32, one video at a time."""
    model = model.to("cpu").eval()
    with torch.inference_mode():
        return np.array([float(model(collate([videos[i]]))[0]) for i in range(len(videos))])


# --- one data path -----------------------------------------------------------------------------

def test_the_tables_have_no_shortcut_around_load_cohort():
    """A table once read data/features/<dataset> whenever a manifest existed (stale labels, data_root
    ignored). No chapter that trains and no evaluation module opens a feature cache itself: their
    cohorts come from `sources.load_cohort` (or, for Table 2's backbones, `sources.load_with_visual_weights`)."""
    shortcuts = ("FeatureCache", "manifest.json", "read_manifest", "load_cached", "np.load(")
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for module in sorted((root / "mddr_utils" / "evaluation").glob("*.py")):
        offenders += [f"{module.name}: {word}" for word in shortcuts if word in module.read_text()]
    for chapter in sorted((root / "notebooks").glob("*.ipynb")):
        code = "".join("".join(cell["source"]) for cell in json.loads(chapter.read_text())["cells"]
                       if cell["cell_type"] == "code")
        if any(call in code for call in ("runs.run_variant(", "runs.run_table(", "crossval.delta_cross_validation(",
                                         "run_model(")):
            offenders += [f"{chapter.name}: {word}" for word in shortcuts if word in code]
            assert "sources.load_cohort(" in code or "sources.load_with_visual_weights(" in code, chapter.name
    assert offenders == []


# --- derived results know what they came from --------------------------------------------------

def test_the_code_digest_changes_with_any_source_file(tmp_path):
    copy = tmp_path / "mddr_utils"
    shutil.copytree(versioning.PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert versioning.source_digest(copy) == versioning.code_digest()
    model = copy / "model.py"
    model.write_bytes(model.read_bytes() + b"\n")
    edited = versioning.source_digest(copy)
    assert edited != versioning.code_digest()
    (copy / "extra.py").write_text("")
    assert versioning.source_digest(copy) not in (edited, versioning.code_digest())


def test_a_saved_run_is_not_read_back_after_the_code_or_the_labels_change(cohort, tmp_path, monkeypatch):
    folders = dict(data_dir=tmp_path / "data", results_dir=tmp_path / "results")

    def run(data):
        return runs.run_seed(data, "training mean", "smoke", 0, progress=False, **folders)

    first = run(cohort)
    assert run(cohort)["reused"]
    after_relabelling = run(relabelled())
    assert not after_relabelling["reused"] and after_relabelling["run_id"] != first["run_id"]
    monkeypatch.setattr(versioning, "code_digest", lambda: "edited-code")
    after_editing = run(cohort)
    assert not after_editing["reused"] and after_editing["run_id"] != first["run_id"]
    saved = json.loads((tmp_path / "results" / "runs" / f"{after_editing['run_id']}.json").read_text())
    assert saved["code"] == "edited-code"


def test_a_damaged_saved_run_is_named_and_made_again(cohort, tmp_path):
    folders = dict(data_dir=tmp_path / "data", results_dir=tmp_path / "results")
    first = runs.run_seed(cohort, "training mean", "smoke", 0, progress=False, **folders)
    record = tmp_path / "results" / "runs" / f"{first['run_id']}.json"
    record.write_text(record.read_text()[:40])
    with pytest.warns(UserWarning, match=rf"{record.name}.*computing it again"):
        again = runs.run_seed(cohort, "training mean", "smoke", 0, progress=False, **folders)
    assert not again["reused"] and json.loads(record.read_text())["run_id"] == first["run_id"]
    assert not list(record.parent.glob("*.partial"))


def test_a_checkpoint_is_named_by_its_data_and_code(cohort, tmp_path, monkeypatch):
    paths = []
    monkeypatch.setattr(training, "train_or_load", lambda *args, **kwargs: paths.append(args[4]))
    training.run_model(cohort, "smoke", 0, tmp_path)
    training.run_model(cohort, "smoke", 0, tmp_path)
    training.run_model(relabelled(), "smoke", 0, tmp_path)
    monkeypatch.setattr(versioning, "code_digest", lambda: "edited-code")
    training.run_model(cohort, "smoke", 0, tmp_path)
    assert paths[0] == paths[1] and len(set(paths)) == 3


def test_a_cross_validation_run_is_not_read_back_after_the_code_changes(cohort, tmp_path, monkeypatch):
    fits = []

    def fit(model, train, held_out, config, **kwargs):
        fits.append(config.delta)
        history = pd.DataFrame([{"epoch": 1, "dev_mae": 5.0, "dev_rmse": 6.0}])
        return training.TrainResult(model, history, best_epoch=1, best_dev={}, checkpoint=None)

    monkeypatch.setattr(training, "fit", fit)
    folders = dict(data_dir=tmp_path / "data", results_dir=tmp_path / "results")
    crossval.delta_cross_validation(cohort, [2.0], 2, "smoke", 0, progress=False, **folders)
    crossval.delta_cross_validation(cohort, [2.0], 2, "smoke", 0, progress=False, **folders)
    assert len(fits) == 2, "the second call reads both folds back"
    monkeypatch.setattr(versioning, "code_digest", lambda: "edited-code")
    crossval.delta_cross_validation(cohort, [2.0], 2, "smoke", 0, progress=False, **folders)
    assert len(fits) == 4


def test_a_saved_row_is_named_by_its_data_and_code(tmp_path):
    def row(**changes):
        fields = dict(name="v+a+p", status="not computed", dataset="demo", profile="smoke", seeds=[0],
                      reason="no weights", data_key="labels-1", code="code-1")
        return runs.save_variant(runs.VariantResult(**{**fields, **changes}), tmp_path)

    paths = {row().path, row(data_key="labels-2").path, row(code="code-2").path}
    assert len(paths) == 3
    assert json.loads(row(code="code-2").path.read_text())["code"] == "code-2"


# --- empty splits ------------------------------------------------------------------------------

def feature_like_cohort(tmp_path, splits):
    """A cohort read from a data folder, as load_cohort gives, with videos in the given splits only."""
    table = pd.DataFrame({"video_id": [f"{200 + i}_1" for i in range(len(splits))], "split": splits,
                          "subject": [str(200 + i) for i in range(len(splits))], "task": "Freeform",
                          "label": 10.0})
    return Cohort(table, lambda row: make_video(row["video_id"], 6), name="features:avec2014",
                  origin=str(tmp_path / "AVEC2014"))


@pytest.mark.parametrize("missing", ["Training", "Development", "Testing"])
def test_an_empty_split_is_named_with_the_data_folder(tmp_path, missing):
    splits = [split for split in ("Training", "Development", "Testing") if split != missing for _ in range(2)]
    data = feature_like_cohort(tmp_path, splits)
    with pytest.raises(ValueError, match=rf"{missing}.*AVEC2014|AVEC2014.*{missing}"):
        runs.run_seed(data, runs.MDDR_FAMILY, "smoke", 0, tmp_path / "data", tmp_path / "results",
                          progress=False)
    if missing != "Testing":
        with pytest.raises(ValueError, match=missing):
            training.run_model(data, "smoke", 0, tmp_path / "data", progress=False)


def test_fit_and_predict_refuse_no_videos_by_name(cohort):
    config = training.profile_configs("smoke", training.feature_dims(cohort[0]))[0]
    empty_dev = cohort.subset(split="no such split")
    with pytest.raises(ValueError, match="Development.*simulation|simulation.*Development"):
        training.fit(MDDR(config), cohort.subset(split="Training"), empty_dev, training.TrainConfig(num_epochs=1),
                     progress=False)
    with pytest.raises(ValueError, match="no videos to predict"):
        training.predict(MDDR(config), empty_dev)


def test_cross_validation_without_training_or_development_is_named(tmp_path):
    data = feature_like_cohort(tmp_path, ["Testing"] * 4)
    with pytest.raises(ValueError, match="AVEC2014.*Training and Development"):
        crossval.cross_validation_folds(data, 2)
    with pytest.raises(ValueError, match="AVEC2014"):
        crossval.cross_validation_folds(feature_like_cohort(tmp_path, ["Training", "Development"]), 3)


# --- checkpoints -------------------------------------------------------------------------------

@pytest.fixture
def checkpoint(tiny_config, tmp_path):
    torch.manual_seed(0)
    return training.save_checkpoint(MDDR(tiny_config), tmp_path / "mddr_run.safetensors", {"note": "test"})


def rewrite(path, config_changes=None, weights=None):
    """Write the checkpoint again with changed config metadata and/or other weights."""
    meta = training.read_checkpoint_meta(path)
    config = {**meta["config"], **(config_changes or {})}
    save_file(weights if weights is not None else load_file(str(path)), str(path),
              metadata={"config": json.dumps(config), "meta": json.dumps(meta["meta"])})


def test_an_unknown_config_field_is_named_with_the_file(checkpoint):
    rewrite(checkpoint, {"gated_fusion": True})
    with pytest.raises(ValueError, match=r"mddr_run\.safetensors.*gated_fusion"):
        training.load_checkpoint(checkpoint)


def test_weights_that_do_not_fit_the_metadata_are_named(checkpoint, tiny_config):
    wider = MDDR(type(tiny_config)(**{**tiny_config.to_dict(), "visual_dim": tiny_config.visual_dim + 4}))
    ours = MDDR(tiny_config).state_dict()
    changed = [name for name, tensor in wider.state_dict().items() if tensor.shape != ours[name].shape]
    rewrite(checkpoint, weights={k: v.contiguous() for k, v in wider.state_dict().items()})
    with pytest.raises(ValueError, match=r"mddr_run\.safetensors") as raised:
        training.load_checkpoint(checkpoint)
    assert changed and all(name in str(raised.value) for name in changed)
    dropped = sorted(ours)[0]
    rewrite(checkpoint, weights={k: v for k, v in MDDR(tiny_config).state_dict().items() if k != dropped})
    with pytest.raises(ValueError, match=rf"mddr_run\.safetensors.*{dropped}"):
        training.load_checkpoint(checkpoint)


def test_a_pickled_checkpoint_is_refused_by_name(tiny_config, tmp_path):
    for legacy in (False, True):
        path = tmp_path / f"from_torch_save_{legacy}.safetensors"
        torch.save(MDDR(tiny_config).state_dict(), path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(ValueError, match=rf"{path.name}.*pickled"):
            training.load_checkpoint(path)


def test_train_or_load_never_overwrites_another_runs_checkpoint(cohort, tmp_path, monkeypatch):
    run = training.run_model(cohort, "smoke", 0, tmp_path, progress=False)
    before = run.checkpoint.read_bytes()
    train, dev = cohort.subset(split="Training"), cohort.subset(split="Development")
    model_config, config = training.profile_configs("smoke", training.feature_dims(cohort[0]), None, {"seed": 0})
    key = training.cohort_key(cohort)
    reused = training.train_or_load(model_config, config, train, dev, run.checkpoint, key, progress=False)
    assert reused.best_epoch == run.best_epoch
    other_lr = replace(config, lr=config.lr / 3)
    with pytest.raises(FileExistsError, match=rf"{run.checkpoint.name}.*train\.lr"):
        training.train_or_load(model_config, other_lr, train, dev, run.checkpoint, key, progress=False)
    with pytest.raises(FileExistsError, match="data"):
        training.train_or_load(model_config, config, train, dev, run.checkpoint, "other labels", progress=False)
    monkeypatch.setattr(versioning, "code_digest", lambda: "edited-code")
    with pytest.raises(FileExistsError, match="code version"):
        training.train_or_load(model_config, config, train, dev, run.checkpoint, key, progress=False)
    assert run.checkpoint.read_bytes() == before


# --- precision ---------------------------------------------------------------------------------

@pytest.fixture
def bfloat16_cpu(monkeypatch):
    """A CPU with native bfloat16, where autocast would pick bfloat16, whatever this machine is."""
    monkeypatch.setattr(device, "cpu_supports_bfloat16", lambda: True)


def test_predict_scores_in_float32_on_a_bfloat16_cpu(cohort, bfloat16_cpu):
    config = training.profile_configs("smoke", training.feature_dims(cohort[0]))[0]
    torch.manual_seed(0)
    model = MDDR(config)
    with torch.no_grad():  # a fresh MDDR starts at a constant score; random weights make the scores vary
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    model.init_output_bias(18.0)
    test = cohort.subset(split="Testing")
    np.testing.assert_allclose(training.predict(model, test)["pred"], float32_scores(model, test), rtol=1e-5)


def test_development_selection_and_testing_are_float32_while_training_may_use_bfloat16(cohort, tmp_path,
                                                                                       bfloat16_cpu):
    assert training.TrainConfig().amp, "the recipe trains under autocast where the device has it"
    record = runs.run_seed(cohort, runs.MDDR_FAMILY, "smoke", 0, tmp_path / "data", tmp_path / "results",
                               progress=False)
    model = training.load_checkpoint(record["checkpoint"])
    test, dev = cohort.subset(split="Testing"), cohort.subset(split="Development")
    expected = np.clip(float32_scores(model, test), 0, 63)
    np.testing.assert_allclose(record["predictions"]["pred"], expected, rtol=1e-5)
    dev_scores = float32_scores(model, dev)
    dev_rmse = float(np.sqrt(np.mean((dev_scores - dev.table["label"].to_numpy()) ** 2)))
    assert record["best_dev"]["rmse"] == pytest.approx(dev_rmse, rel=1e-5)


# --- progress bars and /proc/cpuinfo -----------------------------------------------------------

def test_tqdm_disable_wins_over_progress_true(cohort, monkeypatch):
    calls = []

    class NotebookBar:
        """Stands for tqdm.auto's bar in Jupyter, which takes a missing `disable` as False: TQDM_DISABLE is ignored."""

        def __init__(self, iterable=None, **kwargs):
            self.iterable = iterable
            calls.append(kwargs.get("disable", False))

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix(self, *args, **kwargs):
            pass

    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setattr(training, "tqdm", NotebookBar)
    config = training.profile_configs("smoke", training.feature_dims(cohort[0]))[0]
    run = training.fit(MDDR(config), cohort.subset(split="Training"), cohort.subset(split="Development"),
                       training.TrainConfig(num_epochs=1, batch=8), progress=True)
    training.predict(run.model, cohort.subset(split="Testing"), progress=True)
    assert calls and all(calls)
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert training.progress_options(True) == {} and training.progress_options(False) == {"disable": True}


def test_reading_cpuinfo_leaves_no_file_open():
    read = getattr(device.cpu_supports_bfloat16, "__wrapped__", device.cpu_supports_bfloat16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read()
        gc.collect()
    assert not [warning for warning in caught if issubclass(warning.category, ResourceWarning)]


# --- captions ----------------------------------------------------------------------------------

def test_captions_count_the_videos_used_and_left_out(tmp_path):
    table = pd.DataFrame({"video_id": ["a", "b", "c"], "split": ["Training", "Development", "Testing"],
                          "label": [1.0, 2.0, 3.0]})
    left_out = [{"video_id": "d", "file": "d.mp4", "reason": "no video stream"},
                {"video_id": "e", "file": "e.mp4", "reason": "truncated"}]
    with_failures = Cohort(table, lambda row: None, left_out=left_out)
    text = tables.caption("Table 3", "AVEC2014", "paper", [0], cohort=with_failures)
    assert "3 videos used, 2 left out (see chapter 02)" in text
    clean = tables.caption("Table 3", "AVEC2014", "paper", [0], cohort=Cohort(table, lambda row: None))
    assert "3 videos used" in clean and "left out" not in clean
    saved = json.loads(tables.save_table("table3", tmp_path, text, cohort=with_failures).read_text())
    assert saved["videos_used"] == 3 and saved["videos_left_out"] == 2 and saved["code"] == versioning.code_digest()
