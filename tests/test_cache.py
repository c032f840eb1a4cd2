"""The feature cache: round trips, provenance, invalidation, atomic writes, refusal of NaN."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from mddr_utils.features import cache as cache_module
from mddr_utils.features.cache import SAMPLE_BYTES, FeatureCache, input_signature, same_inputs, settings_hash


def test_round_trip_keeps_arrays_and_provenance(tmp_path):
    cache = FeatureCache(tmp_path)
    arrays = {"visual": np.arange(6, dtype=np.float32).reshape(3, 2), "visual_valid": np.array([True, False, True])}
    path = cache.write("visual", "203_1_Freeform", arrays, {"config_hash": "abc", "weights": "random:seed=0"})
    assert path == tmp_path / "visual" / "203_1_Freeform.npz"
    loaded, provenance = cache.read("visual", "203_1_Freeform")
    assert set(loaded) == set(arrays)
    assert np.array_equal(loaded["visual"], arrays["visual"]) and loaded["visual_valid"].dtype == bool
    assert provenance["weights"] == "random:seed=0"
    with np.load(path, allow_pickle=False) as stored:  # plain arrays only: readable without pickle
        assert json.loads(str(stored["provenance"]))["config_hash"] == "abc"


def test_currency_depends_on_settings_and_inputs(tmp_path):
    cache = FeatureCache(tmp_path)
    video = tmp_path / "203_1_Freeform_video.mp4"
    video.write_bytes(b"0123456789")
    inputs = input_signature([video])
    assert (inputs[0]["name"], inputs[0]["size"]) == ("203_1_Freeform_video.mp4", 10)
    assert inputs[0]["sample_sha256"] == hashlib.sha256(b"10" + b"0123456789").hexdigest()
    assert not cache.is_current("audio", "203_1_Freeform", "h1", inputs)
    assert cache.why_stale("audio", "203_1_Freeform", "h1", inputs) == "not extracted yet"
    cache.write("audio", "203_1_Freeform", {"audio": np.zeros((4, 2), np.float32)},
                {"config_hash": "h1", "inputs": inputs})
    assert cache.is_current("audio", "203_1_Freeform", "h1", inputs)
    assert cache.why_stale("audio", "203_1_Freeform", "h2", inputs) == "settings changed"
    video.write_bytes(b"a different, longer recording")
    assert cache.why_stale("audio", "203_1_Freeform", "h1", input_signature([video])) == "input file changed"


def test_identity_follows_content_not_time_nor_name(tmp_path):
    """A copied corpus (new times, new names) stays current; a same-size re-encode anywhere sampled does not."""
    rng = np.random.default_rng(0)
    original = tmp_path / "a" / "x_video.mp4"
    original.parent.mkdir()
    content = rng.integers(0, 256, 5 * SAMPLE_BYTES + 123, dtype=np.uint8).tobytes()
    original.write_bytes(content)
    recorded = input_signature([original])
    copy = tmp_path / "b" / "renamed.mp4"
    copy.parent.mkdir()
    shutil.copyfile(original, copy)
    os.utime(copy, ns=(0, recorded[0]["mtime_ns"] + 10**9))
    assert input_signature([copy])[0]["mtime_ns"] != recorded[0]["mtime_ns"]
    assert same_inputs(recorded, input_signature([copy]))
    for position in (0, len(content) // 2, len(content) - 1):  # start, middle and end sample
        edited = bytearray(content)
        edited[position] ^= 0xFF
        copy.write_bytes(bytes(edited))
        assert not same_inputs(recorded, input_signature([copy])), position
    assert not same_inputs([["x_video.mp4", len(content)]], recorded), "the old [name, size] records are stale"


def test_settings_hash_ignores_key_order():
    assert settings_hash({"a": 1, "b": {"c": 2}}) == settings_hash({"b": {"c": 2}, "a": 1})
    assert settings_hash({"layer": -1}) != settings_hash({"layer": 12})


def test_nan_or_inf_is_never_stored(tmp_path):
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError, match=r"'x_1'.*audio.*NaN or Inf"):
        cache.write("audio", "x_1", {"audio": np.array([[0.0, np.inf]], np.float32)}, {"config_hash": "h"})
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_ids_that_cannot_name_a_file_are_refused(tmp_path):
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="cannot name a file"):
            FeatureCache(tmp_path).path("visual", bad)
    with pytest.raises(ValueError, match="modality"):
        FeatureCache(tmp_path).path("faces", "x_1")


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_partial(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    cache.write("head", "x_1", {"head": np.ones((2, 12), np.float32)}, {"config_hash": "old"})

    def crash(stream, **arrays):
        stream.write(b"half a zip file")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.write("head", "x_1", {"head": np.zeros((2, 12), np.float32)}, {"config_hash": "new"})
    monkeypatch.undo()
    arrays, provenance = cache.read("head", "x_1")
    assert provenance["config_hash"] == "old" and arrays["head"].min() == 1
    assert [p.name for p in (tmp_path / "head").iterdir()] == ["x_1.npz"]


def test_manifest_round_trip_and_absence(tmp_path):
    cache = FeatureCache(tmp_path / "features")
    with pytest.raises(FileNotFoundError, match="extract_features"):
        cache.read_manifest()
    cache.write_manifest({"videos": [{"video_id": "x_1"}]})
    assert cache.read_manifest()["videos"] == [{"video_id": "x_1"}]
    assert cache.read_manifest()["format"] == cache_module.CACHE_FORMAT


def test_unreadable_file_is_reported_with_its_path(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.path("audio", "x_1").parent.mkdir(parents=True)
    cache.path("audio", "x_1").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"x_1\.npz"):
        cache.read("audio", "x_1")
    assert cache.provenance("audio", "x_1") is None
    with pytest.raises(FileNotFoundError, match="x_2"):
        cache.read("audio", "x_2")
