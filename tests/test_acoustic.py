"""HuBERT acoustic features: frame count, per-utterance normalisation, layers, chunked long recordings."""
import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from mddr_utils.features.acoustic import (RANDOM_LAYERS, ChannelsLastFeatureEncoder, HubertEncoder, chunk_plan,
                                          frame_log_energy, hubert_frame_count,
                                          hubert_frame_receptive_field, load_hubert, normalize_waveform,
                                          random_hubert_config)


def tiny_config() -> HubertConfig:
    """HuBERT-large's layout (LayerNorm front end, pre-LN encoder, 320-sample stride), tiny widths."""
    return HubertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                        conv_dim=(16,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
                        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


@pytest.fixture(scope="module")
def tiny_model() -> HubertModel:
    torch.manual_seed(0)
    return HubertModel(tiny_config()).eval()


@pytest.fixture(scope="module")
def waveform() -> np.ndarray:
    rng = np.random.default_rng(0)
    seconds = np.arange(16000 * 8) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * seconds) * (1 + np.sin(2 * np.pi * 3 * seconds))
            + 0.05 * rng.standard_normal(len(seconds)) + 0.02).astype(np.float32)


def encoder(model, **options) -> HubertEncoder:
    return HubertEncoder(model=model, precision="float32", device="cpu", **options)


def one_pass(model, waveform, **options) -> np.ndarray:
    with torch.inference_mode():
        output = model(torch.from_numpy(normalize_waveform(waveform))[None], **options)
    return output


@pytest.mark.parametrize("samples", [399, 400, 719, 720, 16000, 16001, 48321])
def test_frame_count_follows_the_convolution_strides(tiny_model, samples):
    expected = 0 if samples < 400 else tiny_model(torch.zeros(1, samples)).last_hidden_state.shape[1]
    assert hubert_frame_count(samples) == expected
    assert hubert_frame_receptive_field() == 400


def test_normalisation_matches_the_feature_extractor(waveform):
    extractor = Wav2Vec2FeatureExtractor(do_normalize=True, feature_size=1, sampling_rate=16000, padding_value=0.0)
    expected = extractor(waveform, sampling_rate=16000).input_values[0]
    assert np.allclose(normalize_waveform(waveform), expected, atol=1e-5)


def test_a_single_chunk_equals_one_pass(tiny_model, waveform):
    features = encoder(tiny_model, chunk_seconds=60).encode(waveform)
    expected = one_pass(tiny_model, waveform).last_hidden_state[0].numpy()
    assert features.shape == (hubert_frame_count(len(waveform)), 32)
    assert np.allclose(features, expected, atol=1e-4)


def test_chunked_run_is_aligned_and_close_to_one_pass(tiny_model, waveform):
    whole = encoder(tiny_model, chunk_seconds=60).encode(waveform)
    chunked = encoder(tiny_model, chunk_seconds=2, context_seconds=1).encode(waveform)
    blind = encoder(tiny_model, chunk_seconds=2, context_seconds=0).encode(waveform)
    assert chunked.shape == whole.shape
    interior = slice(50, -50)
    error = np.abs(chunked - whole)[interior].mean()
    neighbour = np.abs(whole[1:] - whole[:-1]).mean()  # what a one-frame misalignment would cost
    assert error < 0.05 * neighbour
    boundaries = np.arange(100, len(whole) - 1, 100)  # first frames of chunks, 2 s = 100 frames apart
    assert np.abs(chunked - whole)[boundaries].max() < np.abs(blind - whole)[boundaries].max()


def test_frame_log_energy_reads_each_frames_window():
    samples = np.zeros(16000, np.float32)
    samples[3200:3600] = 0.5  # exactly the window of frame 10
    energy = frame_log_energy(samples)
    assert len(energy) == hubert_frame_count(16000)
    assert energy[10] == pytest.approx(np.log(0.25), abs=1e-6)
    assert energy[12] < -20  # silence


def test_chunk_plan_covers_every_frame_once():
    plan = chunk_plan(num_frames=257, chunk_frames=100, context_frames=30)
    kept = np.concatenate([np.arange(first, end) for _, _, first, end in plan])
    assert kept.tolist() == list(range(257))
    assert plan[1] == (70, 230, 100, 200)


@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_hidden_layer_is_selectable(tiny_model, waveform, layer):
    expected = one_pass(tiny_model, waveform[:32000], output_hidden_states=True).hidden_states[layer][0].numpy()
    hubert = encoder(tiny_model, layer=layer)
    assert np.allclose(hubert.encode(waveform[:32000]), expected, atol=1e-4)
    assert len(hubert.model.encoder.layers) == max(layer, 1)  # layers above the chosen one are not run
    assert len(tiny_model.encoder.layers) == 3  # the given model is not modified


def test_channels_last_front_end_computes_the_same_function(tiny_model, waveform):
    samples = torch.from_numpy(waveform[:20000])[None]
    faster = ChannelsLastFeatureEncoder(tiny_model.feature_extractor)
    with torch.inference_mode():
        expected = tiny_model.feature_extractor(samples)
        assert torch.allclose(faster(samples), expected, atol=1e-5)
    group_normed = HubertModel(HubertConfig(**{**tiny_config().to_dict(), "feat_extract_norm": "group"}))
    assert not ChannelsLastFeatureEncoder.applies_to(group_normed.feature_extractor)


def test_wrong_inputs_are_refused(tiny_model, waveform):
    with pytest.raises(ValueError, match="layer must be"):
        encoder(tiny_model, layer=7)
    hubert = encoder(tiny_model)
    with pytest.raises(ValueError, match="too short"):
        hubert.encode(waveform[:300])
    with pytest.raises(ValueError, match="16000 Hz"):
        hubert.encode(waveform, sample_rate=8000)


def test_local_folder_and_missing_hub_model(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "hubert-tiny")
    model, source_id = load_hubert(str(tmp_path / "hubert-tiny"))
    assert source_id.startswith("folder:") and model.config.hidden_size == 32
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        load_hubert("nobody/hubert-that-does-not-exist", offline=True)


def test_random_source_is_large_layout_and_seeded():
    config = random_hubert_config()
    assert (config.hidden_size, config.num_hidden_layers, config.feat_extract_norm) == (1024, RANDOM_LAYERS, "layer")
    assert int(np.prod(config.conv_stride)) == 320
    first, source_id = load_hubert("random", seed=1)
    second, _ = load_hubert("random", seed=1)
    assert source_id == f"random:layers={RANDOM_LAYERS}:seed=1"
    weights = [model.encoder.layers[0].attention.q_proj.weight for model in (first, second)]
    assert torch.equal(*weights)


def test_hub_revision_is_read_from_the_cached_snapshot(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from mddr_utils.features.acoustic import hub_revision

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    hub_revision.cache_clear()
    assert hub_revision("facebook/hubert-large-ll60k", offline=True) == "unresolved"
    reference = tmp_path / "models--facebook--hubert-large-ll60k" / "refs" / "main"
    reference.parent.mkdir(parents=True)
    reference.write_text("ff022d0cd5bbbd1b5a2fd2a6e3f4f2b5e1d9a6c1\n")
    hub_revision.cache_clear()
    assert hub_revision("facebook/hubert-large-ll60k", offline=True) == "ff022d0cd5bbbd1b5a2fd2a6e3f4f2b5e1d9a6c1"
    reference.write_text("0123456789abcdef0123456789abcdef01234567")
    hub_revision.cache_clear()
    assert hub_revision("facebook/hubert-large-ll60k", offline=True) == "0123456789abcdef0123456789abcdef01234567"
