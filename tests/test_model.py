import numpy as np
import pytest
import torch

from mddr_utils.data import collate
from mddr_utils.model import MDDR, MDDRConfig, audio_windows

from conftest import make_video


def test_defaults_are_the_papers():
    config = MDDRConfig()
    assert (config.audio_strides, config.audio_kernels, config.audio_filters) == ((5, 5, 2), (10, 5, 3), (128, 256, 512))
    assert (config.head_filters, config.model_dim, config.num_layers, config.num_heads, config.ffn_dim) == (512, 512, 6, 8, 2048)
    assert (config.dropout, config.head_hidden, config.modalities) == (0.1, 128, ("visual", "audio", "head"))


def test_paper_parameter_count():
    model = MDDR()
    d, ff = 512, 2048
    alignment = (2048 * d + d) + (1024 * 128 * 10 + 128) + (128 * 256 * 5 + 256) + (256 * 512 * 3 + 512) + (12 * d + d)
    alignment += 3 * 2 * d
    block = (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d) + 2 * 2 * d
    attention_mlps = 2 * (d * 128 + 128 + 128 + 1)
    head = d * 128 + 128 + 128 + 1
    assert sum(p.numel() for p in model.parameters()) == alignment + 6 * block + attention_mlps + head


def test_score_does_not_depend_on_batch_mates_or_padding(tiny_config, videos):
    torch.manual_seed(0)
    model = MDDR(tiny_config).eval()
    together = model(collate(videos))
    alone = torch.cat([model(collate([v])) for v in videos])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_modality_branch(tiny_config, videos):
    model = MDDR(tiny_config).train()
    model(collate(videos)).sum().backward()
    for name in ("visual", "audio", "head"):
        grads = [p.grad for p in model.align[name].parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name


def test_padded_steps_get_zero_temporal_weight(tiny_config, videos):
    model = MDDR(tiny_config).eval()
    batch = collate(videos)
    _, attention = model(batch, return_attention=True)
    temporal = attention["temporal"]
    assert temporal[~batch.mask].abs().max() == 0
    torch.testing.assert_close(temporal.sum(1), torch.ones(3))
    torch.testing.assert_close(attention["modality"][batch.mask].sum(-1), torch.ones(int(batch.mask.sum())))


def test_missing_face_gets_zero_modality_weight(tiny_config):
    video = make_video("210_1", 6)
    video.visual_valid[[1, 4]] = False
    video.visual[[1, 4]] = 0
    _, attention = MDDR(tiny_config).eval()(collate([video]), return_attention=True)
    visual_weight = attention["modality"][0, :, 0]
    assert visual_weight[[1, 4]].abs().max() == 0
    assert (visual_weight[[0, 2, 3, 5]] > 0).all()


def test_audio_windows_tile_the_track_around_each_frame():
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, False]])
    start, length = audio_windows(times, mask, torch.tensor([175]), rate=50.0)
    # Step t owns [t - 0.5 s, t + 0.5 s), clipped to the track: frames 0-24, 25-74, 75-124, 125-174.
    assert start[0, :4].tolist() == [0, 25, 75, 125]
    assert length[0].tolist() == [25, 50, 50, 50, 0]


def test_audio_reaches_only_its_own_step(tiny_config):
    video = make_video("211_1", 6, gap=1.0)
    model = MDDR(tiny_config).eval()
    before, _ = model.align["audio"](collate([video]))
    video.audio[120:130] += 5.0  # seconds 2.4-2.6: inside step 2's window [1.5, 2.5) and step 3's [2.5, 3.5)
    after, _ = model.align["audio"](collate([video]))
    changed = (after - before).abs().amax(-1)[0] > 1e-6
    assert changed.tolist() == [False, False, True, True, False, False]


@pytest.mark.parametrize("switches", [
    dict(use_faa=False), dict(use_sea=False), dict(modalities=("audio",)), dict(positional_encoding="attention"),
    dict(positional_encoding="none"),
])
def test_ablation_switches_run_and_keep_padding_invariance(tiny_config, videos, switches):
    config = MDDRConfig(**{**tiny_config.to_dict(), **switches})
    model = MDDR(config).eval()
    scores, attention = model(collate(videos), return_attention=True)
    assert scores.shape == (3,)
    torch.testing.assert_close(scores, torch.cat([model(collate([v])) for v in videos]), atol=1e-5, rtol=1e-5)
    if switches.get("use_sea") is False:
        assert model.encoder is None
        torch.testing.assert_close(attention["temporal"][0, :7], torch.full((7,), 1 / 7))
    if switches.get("use_faa") is False:
        assert model.modality_attention is None
        torch.testing.assert_close(attention["modality"][0, 0], torch.full((3,), 1 / 3))
    if "modalities" in switches:
        assert list(model.align) == ["audio"] and attention["modality"].shape[-1] == 1


def test_positional_encoding_makes_order_matter(tiny_config):
    video = make_video("212_1", 6)
    flipped = make_video("212_1", 6)
    flipped.visual, flipped.head = video.visual[::-1].copy(), video.head[::-1].copy()
    configs = {style: MDDRConfig(**{**tiny_config.to_dict(), "positional_encoding": style, "modalities": ("visual",)})
               for style in ("input", "none")}
    torch.manual_seed(0)
    with_position = MDDR(configs["input"]).eval()
    without = MDDR(configs["none"]).eval()
    without.load_state_dict(with_position.state_dict())
    differ = lambda m: (m(collate([video])) - m(collate([flipped]))).abs().item()
    assert differ(with_position) > 1e-4
    assert differ(without) < 1e-5


def test_eval_scores_are_clamped_to_the_bdi_range(tiny_config, videos):
    model = MDDR(tiny_config)
    model.init_output_bias(100.0)
    assert (model.eval()(collate(videos)) == 63).all()
    assert (model.train()(collate(videos)) > 63).all()


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="subset"):
        MDDRConfig(modalities=("visual", "text"))
    with pytest.raises(ValueError, match="head_filters"):
        MDDRConfig(head_filters=256)


def test_label_scale_defaults_to_bdi_ii_and_sets_the_clamp(tiny_config, videos):
    assert MDDRConfig().label_scale == "BDI-II" and MDDR(tiny_config).scale.maximum == 63
    phq = MDDRConfig(**{**tiny_config.to_dict(), "label_scale": "phq8"})
    assert phq.label_scale == "PHQ-8", "the name is stored in its canonical spelling"
    model = MDDR(phq)
    model.init_output_bias(100.0)
    assert (model.eval()(collate(videos)) == 24).all()
    assert (model.train()(collate(videos)) > 24).all()
    model.init_output_bias(-50.0)
    assert (model.eval()(collate(videos)) == 0).all()
    with pytest.raises(ValueError, match="unknown label scale 'HAMD'"):
        MDDRConfig(label_scale="HAMD")


def test_config_dicts_round_trip_and_old_dicts_get_the_default_scale(tiny_config):
    phq = MDDRConfig.from_dict({**tiny_config.to_dict(), "label_scale": "PHQ-8"})
    assert MDDRConfig.from_dict(phq.to_dict()) == phq and phq.to_dict()["label_scale"] == "PHQ-8"
    written_before_scales = {k: v for k, v in tiny_config.to_dict().items() if k != "label_scale"}
    assert MDDRConfig.from_dict(written_before_scales) == tiny_config
    with pytest.raises(ValueError, match="run.safetensors: fields this MDDRConfig does not have: colour"):
        MDDRConfig.from_dict({**written_before_scales, "colour": "red"}, source="run.safetensors")


def test_audio_valid_none_and_all_true_give_identical_outputs(tiny_config, videos):
    """The default (no mask) is the all-usable mask, bit for bit: AVEC numbers do not move."""
    torch.manual_seed(0)
    model = MDDR(tiny_config).eval()
    plain = collate(videos)
    for video in videos:
        video.audio_valid = np.ones(len(video.audio), dtype=bool)
    masked = collate(videos)
    assert plain.audio_valid is None and masked.audio_valid.any()
    scores, attention = model(plain, return_attention=True)
    masked_scores, masked_attention = model(masked, return_attention=True)
    assert torch.equal(scores, masked_scores)
    assert torch.equal(attention["modality"], masked_attention["modality"])
    assert torch.equal(attention["temporal"], masked_attention["temporal"])


def test_unusable_audio_frames_are_ignored_and_a_step_without_any_gives_audio_no_weight(tiny_config):
    video = make_video("213_1", 6, gap=1.0)
    usable = np.ones(len(video.audio), dtype=bool)
    usable[75:125] = False  # step 2's whole window [1.5 s, 2.5 s)
    usable[130:140] = False  # part of step 3's window [2.5 s, 3.5 s)
    video.audio_valid = usable
    model = MDDR(tiny_config).eval()
    before, attention = model(collate([video]), return_attention=True)
    audio_weight = attention["modality"][0, :, 1]
    assert audio_weight[2] == 0
    assert (audio_weight[[0, 1, 3, 4, 5]] > 0).all()
    aligned, has_audio = model.align["audio"](collate([video]))
    assert has_audio[0].tolist() == [True, True, False, True, True, True]
    assert aligned[0, 2].abs().max() == 0
    video.audio[~usable] += 7.0
    after = model(collate([video]))
    assert torch.equal(before, after), "what an unusable frame holds never reaches the score"


def test_without_a_mask_each_step_is_the_al_cnn_mean_over_its_own_window(tiny_config):
    """The default path, written out step by step: the AL-CNN over the step's audio frames alone, then a mean."""
    video = make_video("214_1", 5, gap=1.0)
    model = MDDR(tiny_config).eval()
    batch = collate([video])
    aligned, has_audio = model.align["audio"](batch)
    start, length = audio_windows(batch.times, batch.mask, batch.audio_lengths, batch.audio_rate)
    assert has_audio[0].all()
    for step in range(5):
        x = batch.audio[0, int(start[0, step]):int(start[0, step] + length[0, step])].T[None]
        for conv in model.align["audio"].convs:
            x = torch.relu(conv(x))
        torch.testing.assert_close(aligned[0, step], model.align["audio"].norm(x.mean(-1))[0])
