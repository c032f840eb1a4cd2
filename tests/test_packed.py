"""Packed features (`mddr_utils.data.packed`): the round trip, when a packed folder is reused or packed
again, what an interrupted pack leaves, worker processes, and the command line's --packed / --workers."""
import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest

from mddr_utils import cli, sources
from mddr_utils.data.container import Cohort
from mddr_utils.data.packed import INDEX_NAME, PackedCohort, pack_cohort
from mddr_utils.train import loader

from conftest import make_video

ARRAYS = ("visual", "head", "audio", "times", "visual_valid", "head_valid")


@pytest.fixture(scope="module")
def cohort():
    return sources.simulation_cohort("smoke", seed=2)


def _stamps(folder):
    return {path.name: path.stat().st_mtime_ns for path in sorted(folder.iterdir())}


def _with_labels(cohort, shift):
    table = cohort.table.copy()
    table["label"] = table["label"] + shift
    return Cohort.from_parts(cohort, table)


def _list_cohort(videos, name="listed"):
    """A cohort over VideoFeatures built in the test."""
    by_id = {video.video_id: video for video in videos}
    table = pd.DataFrame([dict(video_id=v.video_id, subject=v.subject, task=v.task, split=v.split, label=v.label)
                          for v in videos])
    return Cohort(table, lambda row: by_id[row["video_id"]], name=name)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_packed_videos_equal_the_source_videos(cohort, tmp_path, dtype):
    packed = pack_cohort(cohort, tmp_path / "packed", dtype, progress=False)
    assert isinstance(packed, PackedCohort) and len(packed) == len(cohort)
    pd.testing.assert_frame_equal(packed.table, cohort.table)
    assert (packed.fingerprint == cohort.fingerprint) == (dtype == "float32")
    for position in range(len(cohort)):
        source, read = cohort[position], packed[position]
        for name in ARRAYS:
            ours, theirs = getattr(read, name), getattr(source, name)
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
            if dtype == "float32" or name not in ("visual", "head", "audio"):
                np.testing.assert_array_equal(ours, theirs, err_msg=name)
            else:
                np.testing.assert_allclose(ours, theirs, rtol=2 ** -11, atol=2 ** -24, err_msg=name)
        assert (read.video_id, read.label, read.subject, read.task, read.split, read.scale, read.audio_rate) == \
            (source.video_id, source.label, source.subject, source.task, source.split, source.scale, source.audio_rate)
        assert read.audio_valid is None
    assert packed.subset(split="Testing")[0].video_id == cohort.subset(split="Testing")[0].video_id
    assert packed.in_memory() is packed


def test_audio_valid_is_packed_where_a_video_restricts_its_audio(tmp_path):
    free, restricted = make_video("301_1", 6, seed=1), make_video("302_1", 9, seed=2)
    restricted.audio_valid = np.arange(len(restricted.audio)) % 3 > 0
    packed = pack_cohort(_list_cohort([free, restricted]), tmp_path / "packed", progress=False)
    assert (tmp_path / "packed" / "audio_valid.npy").is_file()
    assert packed[0].audio_valid is None
    np.testing.assert_array_equal(packed[1].audio_valid, restricted.audio_valid)
    np.testing.assert_array_equal(packed[1].audio, restricted.audio)


def test_a_current_pack_is_reused_and_a_relabelled_cohort_packed_again(cohort, tmp_path):
    folder = tmp_path / "packed"
    pack_cohort(cohort, folder, progress=False)
    stamps = _stamps(folder)
    again = pack_cohort(cohort, folder, progress=False)
    assert _stamps(folder) == stamps
    assert again[3].label == cohort[3].label
    relabelled = _with_labels(cohort, 1.0)
    repacked = pack_cohort(relabelled, folder, progress=False)
    assert json.loads((folder / INDEX_NAME).read_text())["fingerprint"] == relabelled.fingerprint != cohort.fingerprint
    assert repacked[3].label == cohort[3].label + 1.0
    assert _stamps(folder) != stamps
    float16 = pack_cohort(cohort, folder, "float16", progress=False)
    assert json.loads((folder / INDEX_NAME).read_text())["dtype"] == "float16" and float16.dtype == "float16"
    assert [path.name for path in tmp_path.iterdir()] == ["packed"]  # no temporary folder left beside it


@pytest.mark.parametrize("damage", ["truncated npy", "index not JSON", "index removed"])
def test_a_damaged_pack_is_packed_again(cohort, tmp_path, damage):
    folder = tmp_path / "packed"
    pack_cohort(cohort, folder, progress=False)
    if damage == "truncated npy":
        audio = folder / "audio.npy"
        audio.write_bytes(audio.read_bytes()[: audio.stat().st_size // 2])
    elif damage == "index not JSON":
        (folder / INDEX_NAME).write_text("{ half an index")
    else:
        (folder / INDEX_NAME).unlink()
    repaired = pack_cohort(cohort, folder, progress=False)
    np.testing.assert_array_equal(repaired[len(cohort) - 1].audio, cohort[len(cohort) - 1].audio)


class Interrupted(Exception):
    pass


def _failing_after(cohort, count):
    """The cohort whose loader raises after `count` videos, as a pack killed by Ctrl-C would stop."""
    read, load = [0], cohort.loader

    def flaky(row):
        read[0] += 1
        if read[0] > count:
            raise Interrupted("stopped mid-pack")
        return load(row)

    failing = Cohort.from_parts(cohort, cohort.table)
    failing.loader = flaky
    return failing


def test_an_interrupted_pack_leaves_the_old_pack_or_none(cohort, tmp_path):
    folder = tmp_path / "packed"
    with pytest.raises(Interrupted):
        pack_cohort(_failing_after(cohort, 5), folder, progress=False)
    assert list(tmp_path.iterdir()) == []
    pack_cohort(cohort, folder, progress=False)
    stamps = _stamps(folder)
    with pytest.raises(Interrupted):
        pack_cohort(_failing_after(_with_labels(cohort, 2.0), 5), folder, progress=False)
    assert [path.name for path in tmp_path.iterdir()] == ["packed"] and _stamps(folder) == stamps
    kept = pack_cohort(cohort, folder, progress=False)  # still current for the cohort it holds: not rewritten
    assert _stamps(folder) == stamps and kept[0].label == cohort[0].label


def test_mixed_feature_widths_are_refused_naming_the_video(tmp_path):
    wide = make_video("402_1", 5, seed=2)
    wide.visual = np.zeros((5, 20), dtype=np.float32)
    with pytest.raises(ValueError, match=r"'402_1' has visual features of width 20, but video '401_1' has 16"):
        pack_cohort(_list_cohort([make_video("401_1", 5, seed=1), wide]), tmp_path / "packed", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_features_beyond_float16_are_refused_naming_the_video(tmp_path):
    loud = make_video("501_1", 5)
    loud.audio[2, 3] = 1e6
    with pytest.raises(ValueError, match=r"'501_1': audio features reach 1e\+06.*float32"):
        pack_cohort(_list_cohort([loud]), tmp_path / "packed", "float16", progress=False)
    with pytest.raises(ValueError, match="float64"):
        pack_cohort(_list_cohort([loud]), tmp_path / "packed", "float64", progress=False)


def test_a_packed_cohort_pickles_without_its_open_maps(cohort, tmp_path):
    packed = pack_cohort(cohort, tmp_path / "packed", progress=False).subset(split="Training")
    first = packed[0]
    assert packed.loader._arrays is not None  # the files are open in this process now
    copy = pickle.loads(pickle.dumps(packed))
    assert copy.loader._arrays is None and len(pickle.dumps(packed)) < 100_000
    np.testing.assert_array_equal(copy[0].visual, first.visual)
    assert copy.fingerprint == packed.fingerprint


def _batches(videos, workers):
    """Two epochs of training batches, as `fit` draws them, read by `workers` processes."""
    batches = loader(videos, 3, shuffle=True, seed=5, crop_steps=6, workers=workers)
    return [batch for _ in range(2) for batch in batches]


def test_two_workers_give_the_batches_of_none(cohort, tmp_path):
    packed = pack_cohort(cohort, tmp_path / "packed", progress=False).subset(split="Training")
    alone, shared = _batches(packed, 0), _batches(packed, 2)
    assert [batch.video_ids for batch in alone] == [batch.video_ids for batch in shared]
    assert [batch.video_ids for batch in alone[:3]] != [batch.video_ids for batch in alone[3:]]  # reshuffled
    for ours, theirs in zip(alone, shared):
        for name in ("visual", "head", "audio", "times", "mask", "audio_lengths", "label"):
            assert getattr(ours, name).equal(getattr(theirs, name)), name


def test_workers_refuse_a_cohort_kept_in_memory(cohort):
    with pytest.raises(ValueError, match=r"cannot be sent to DataLoader worker processes.*pack the cohort"):
        loader(cohort.in_memory(), 3, shuffle=True, workers=2)


def _table(tmp_path, *extra):
    return cli.main(["table", "--table", "figure4", "--dataset", "simulation", "--profile", "smoke",
                     "--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "results"),
                     "--no-progress", *extra])


def _saved_numbers(tmp_path):
    saved = json.loads(next((tmp_path / "results").glob("figure4_simulation_smoke*.json")).read_text())
    return saved["rows"]


def test_table_command_trains_from_a_packed_folder_with_workers(tmp_path, capsys):
    assert _table(tmp_path) == 0
    in_memory = _saved_numbers(tmp_path)
    assert _table(tmp_path, "--packed", str(tmp_path / "packed")) == 0
    assert "one process: 0 runs trained, 2 read back" in capsys.readouterr().out  # same fingerprint, same runs
    assert (tmp_path / "packed" / INDEX_NAME).is_file()
    assert _table(tmp_path, "--packed", str(tmp_path / "packed"), "--workers", "2") == 0
    assert re.search(r"one process: \d runs trained", capsys.readouterr().out)
    assert _saved_numbers(tmp_path) == in_memory


def test_table_command_refuses_workers_without_a_packed_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as finished:
        _table(tmp_path, "--workers", "2")
    assert finished.value.code == 2
    assert "--workers needs --packed DIR" in capsys.readouterr().err
