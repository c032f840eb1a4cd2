"""HuBERT acoustic features: frame count, per-utterance normalisation, layers, chunked long recordings."""
import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from mddr_utils.features.acoustic import (RANDOM_LAYERS, HubertEncoder, chunk_plan, hubert_frame_count,
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


def test_chunk_plan_covers_every_frame_once():
    plan = chunk_plan(num_frames=257, chunk_frames=100, context_frames=30)
    kept = np.concatenate([np.arange(first, end) for _, _, first, end in plan])
    assert kept.tolist() == list(range(257))
    assert plan[1] == (70, 230, 100, 200)


@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_hidden_layer_is_selectable(tiny_model, waveform, layer):
    expected = one_pass(tiny_model, waveform[:32000], output_hidden_states=True).hidden_states[layer][0].numpy()
    model = HubertModel(tiny_config())
    model.load_state_dict(tiny_model.state_dict())
    features = encoder(model, layer=layer).encode(waveform[:32000])
    assert np.allclose(features, expected, atol=1e-4)
    if layer < 3:
        assert len(model.encoder.layers) == max(layer, 1)  # layers above the chosen one are not run


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
    assert torch.equal(first.encoder.layers[0].attention.q_proj.weight, second.encoder.layers[0].attention.q_proj.weight)
