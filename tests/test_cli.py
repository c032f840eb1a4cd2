"""`python -m mddr_utils` end to end on a tiny demo cohort in AVEC2014 layout: train (smoke), predict new videos."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from transformers import HubertConfig, HubertModel

from mddr_utils import cli
from mddr_utils.data.demo_cohort import make_demo_cohort, write_demo_video
from mddr_utils.features.pipeline import load_feature_cohort
from mddr_utils.metrics import mae, rmse
from mddr_utils.predict import RESPONSIBLE_USE, load_model, predict_videos
from mddr_utils.train import predict as train_predict

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 2.0
NEW_LABELS = {"low": 3.0, "high": 45.0}


def write_faceless_video(path: Path, seconds: float = SECONDS) -> Path:
    """A grey 160x120 H.264 video with an AAC track of noise: readable, but no face in it."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        for index in range(int(seconds * 30)):
            image = np.full((120, 160, 3), 90 + index % 40, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        samples = (0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds))).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux([*sound.encode(frame), *sound.encode(None)])
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A smoke-profile model trained by `train` on a demo cohort in AVEC2014 layout: one recording in Training and
    one in Development (a folder without Testing, which training never reads)."""
    folder = tmp_path_factory.mktemp("cli")
    make_demo_cohort(folder / "AVEC2014", recordings_per_split=1, seconds=SECONDS, progress=False)
    for testing in (folder / "AVEC2014" / "Testing", folder / "AVEC2014" / "Labels" / "Testing"):
        shutil.rmtree(testing)
    torch.manual_seed(0)
    HubertModel(HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                             conv_dim=(8,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
                             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
                ).save_pretrained(folder / "hubert-tiny")
    flags = ["--visual-weights", "none", "--hubert", str(folder / "hubert-tiny"), "--offline", "--keep", "2",
             "--every", "30", "--crop-size", "64"]
    model = folder / "model.safetensors"
    status = cli.main(["train", "--dataset", "avec2014", "--data-root", str(folder / "AVEC2014"), "--data-dir",
                       str(folder / "data"), "--profile", "smoke", "--out", str(model), "--no-progress", *flags])
    return {"folder": folder, "model": model, "status": status, "flags": flags}


@pytest.fixture(scope="module")
def new_videos(trained):
    """Two demo videos of people the model never saw (a low and a high label), a truncated file and a faceless one."""
    folder = trained["folder"] / "new"
    folder.mkdir()
    paths = {}
    for seed, (name, label) in enumerate(NEW_LABELS.items(), start=100):
        paths[name] = folder / f"{name}.mp4"
        write_demo_video(paths[name], label=label, seconds=SECONDS, seed=seed)
    paths["truncated"] = folder / "truncated.mp4"
    paths["truncated"].write_bytes(paths["low"].read_bytes()[: paths["low"].stat().st_size // 3])
    paths["faceless"] = write_faceless_video(folder / "faceless.mp4")
    return paths


@pytest.fixture(scope="module")
def predicted(trained, new_videos):
    out = trained["folder"] / "run1"
    status = cli.main(["predict", *(str(path) for path in new_videos.values()), "--checkpoint", str(trained["model"]),
                       "--csv", str(out / "scores.csv"), "--report", str(out / "report"), "--no-progress"])
    table = pd.read_csv(out / "scores.csv").fillna({"error": "", "category": ""})
    return {"status": status, "table": table, "report": out / "report"}


def test_train_writes_weights_and_a_sidecar_with_the_development_figures(trained):
    assert trained["status"] == 0
    sidecar = json.loads(trained["model"].with_suffix(".json").read_text())
    assert sidecar["data"]["dataset"] == "avec2014"
    assert sidecar["data"]["videos"] == {"Training": 2, "Development": 2}
    assert sidecar["extraction"]["config"]["hubert"] == str(trained["folder"] / "hubert-tiny")
    assert (sidecar["extraction"]["config"]["keep"], sidecar["extraction"]["config"]["every"]) == (2, 30)
    assert sidecar["label_scale"]["category_edges"] == [13.5, 19.5, 28.5]
    assert sidecar["training"]["testing"] == "not used"
    # The recorded Development figures are those of the saved weights on the Development videos.
    cohort = load_feature_cohort(trained["folder"] / "data" / "features" / "avec2014")
    development = cohort.subset(split="Development")
    scores = train_predict(load_model(trained["model"]).model, development, device="cpu")
    recorded = sidecar["training"]["development"]
    assert mae(scores["pred"], scores["label"]) == pytest.approx(recorded["mae"], abs=1e-4)
    assert rmse(scores["pred"], scores["label"]) == pytest.approx(recorded["rmse"], abs=1e-4)


def test_predict_scores_new_videos_and_names_the_failures(predicted, new_videos, trained):
    table = predicted["table"]
    assert predicted["status"] == 0
    assert list(table["video"]) == [str(path) for path in new_videos.values()]
    assert list(table.columns[:4]) == ["video", "score", "category", "error"]
    scored = table[table["error"] == ""]
    assert list(scored["video"]) == [str(new_videos["low"]), str(new_videos["high"])]
    assert scored["score"].between(0, 63).all()
    edges_by_hand = np.select([scored["score"] < 13.5, scored["score"] < 19.5, scored["score"] < 28.5],
                              ["minimal", "mild", "moderate"], "severe")
    assert list(scored["category"]) == list(edges_by_hand)
    assert scored["duration_s"].between(SECONDS - 0.1, SECONDS + 0.1).all()
    assert (scored["steps"] > 0).all()
    failed = table.set_index("video").loc[[str(new_videos["truncated"]), str(new_videos["faceless"])]]
    assert failed["score"].isna().all() and failed["category"].eq("").all()
    assert "no face" in failed.loc[str(new_videos["faceless"]), "error"]
    assert failed.loc[str(new_videos["truncated"]), "error"] != ""


def test_the_same_inputs_give_the_same_scores(predicted, new_videos, trained):
    again = predict_videos([new_videos["low"], new_videos["high"]], trained["model"], progress=False)
    first = predicted["table"].set_index("video").loc[list(again["video"]), "score"]
    assert list(again["score"]) == list(first)


def test_report_has_a_figure_per_scored_video(predicted, new_videos):
    report = predicted["report"]
    assert sorted(path.name for path in report.glob("*.png")) == ["high.png", "low.png"]
    summary = (report / "report.md").read_text()
    assert RESPONSIBLE_USE in summary and "](low.png)" in summary and "](high.png)" in summary


def test_predict_prints_the_notice_and_fails_when_nothing_is_scored(trained, new_videos, capsys):
    status = cli.main(["predict", str(new_videos["faceless"]), "--checkpoint", str(trained["model"]), "--no-progress"])
    printed = capsys.readouterr().out
    assert status == 1
    assert RESPONSIBLE_USE in printed and "trained" in printed and "Development videos: MAE" in printed
    assert "0 of 1 videos scored" in printed


def test_predict_refuses_other_feature_settings_and_a_checkpoint_without_sidecar(trained, new_videos, tmp_path,
                                                                                 capsys):
    status = cli.main(["predict", str(new_videos["low"]), "--checkpoint", str(trained["model"]), "--hubert-layer",
                       "1", "--no-progress"])
    assert status == 3
    assert "audio.layer: checkpoint -1, features 1" in capsys.readouterr().err
    lonely = tmp_path / "model.safetensors"
    lonely.write_bytes(trained["model"].read_bytes())
    assert cli.main(["predict", str(new_videos["low"]), "--checkpoint", str(lonely)]) == 3
    assert "model.json is missing" in capsys.readouterr().err


def test_extract_is_the_pipeline_command(capsys):
    with pytest.raises(SystemExit) as finished:
        cli.main(["extract", "--help"])
    assert finished.value.code == 0
    assert "--affectnet-checkpoint" in capsys.readouterr().out


def test_module_help_lists_the_commands_and_exit_codes():
    shown = subprocess.run([sys.executable, "-m", "mddr_utils", "--help"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert shown.returncode == 0
    for text in ("extract", "train", "predict", "exit status", "3  refused"):
        assert text in shown.stdout


@pytest.mark.parametrize("command", ["train", "table"])
def test_help_shows_the_packing_and_worker_options(command, capsys):
    with pytest.raises(SystemExit) as finished:
        cli.main([command, "--help"])
    assert finished.value.code == 0
    shown = capsys.readouterr().out
    for text in ("--packed DIR", "--packed-dtype {float32,float16}", "--workers N"):
        assert text in shown


@pytest.mark.parametrize("flags, complaint", [(["--workers", "-1"], "--workers must be 0 or more"),
                                              (["--packed-dtype", "float16"], "--packed-dtype needs --packed DIR")])
@pytest.mark.parametrize("command", [["table", "--table", "figure4"],
                                     ["train", "--dataset", "demo", "--out", "unused.safetensors"]])
def test_packing_flags_that_do_not_fit_are_refused(command, flags, complaint, capsys):
    with pytest.raises(SystemExit) as finished:
        cli.main([*command, *flags])
    assert finished.value.code == 2
    assert complaint in capsys.readouterr().err


def test_train_from_packed_features_reuses_the_run_trained_from_memory(trained):
    """A float32 pack holds the same numbers as the cache, so the run is the same run; workers do not name it."""
    folder = trained["folder"]
    again = folder / "packed-model.safetensors"
    status = cli.main(["train", "--dataset", "avec2014", "--data-root", str(folder / "AVEC2014"), "--data-dir",
                       str(folder / "data"), "--profile", "smoke", "--out", str(again), "--no-progress",
                       "--packed", str(folder / "packed"), "--workers", "1", *trained["flags"]])
    assert status == 0
    assert (folder / "packed" / "index.json").is_file()
    first, second = (json.loads(path.with_suffix(".json").read_text()) for path in (trained["model"], again))
    assert second["training"] == first["training"]
    assert second["data"]["fingerprint"] == first["data"]["fingerprint"]
