"""ResNet-50 visual features: weight sources, checkpoint formats and errors, batched encoding."""
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mddr_utils.features.visual import (VGGFACE2_CAFFE_MEAN, Preprocessing, VisualEncoder, imagenet_checkpoint_path,
                                        inference_trunk, load_backbone_checkpoint, read_state_dict, resnet50_backbone,
                                        resnet50_trunk)


@pytest.fixture(scope="module")
def trained_state():
    """A ResNet-50 state dict with an 8-class head, as AffectNet training leaves it."""
    torch.manual_seed(5)
    model = resnet50_trunk()
    state = {key: value.clone() for key, value in model.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(8, 2048), torch.randn(8)
    return state


def _same_weights(model, state) -> bool:
    loaded = model.state_dict()
    return all(torch.equal(loaded[key], state[key]) for key in loaded)


def test_random_weights_are_seeded():
    first, weights_id = resnet50_backbone("none", seed=3)
    second, _ = resnet50_backbone("none", seed=3)
    assert weights_id == "random:seed=3"
    assert _same_weights(first, second.state_dict())


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model_with_module_prefix", "lightning_model_prefix",
                                  "backbone_prefix", "lightning_backbone_under_data_parallel"])
def test_affectnet_checkpoint_formats_load(tmp_path, trained_state, wrap):
    state = dict(trained_state)
    prefixed = {"model_with_module_prefix": "module.", "lightning_model_prefix": "model.",
                "backbone_prefix": "backbone.", "lightning_backbone_under_data_parallel": "module.model.backbone."}
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 12}
    elif wrap == "lightning_model_prefix":
        state = {"state_dict": {f"model.{key}": value for key, value in state.items()}, "epoch": 3}
    elif wrap in prefixed:
        state = {"model": {f"{prefixed[wrap]}{key}": value for key, value in state.items()}}
    path = tmp_path / "affectnet.pth"
    torch.save(state, path)
    model, weights_id = resnet50_backbone("affectnet", checkpoint=path)
    assert weights_id.startswith("affectnet:sha256=")
    assert _same_weights(model, trained_state)
    assert not hasattr(model.fc, "weight")  # the classifier is gone: the trunk ends at the 2048-d pooling


def test_safetensors_checkpoint_loads(tmp_path, trained_state):
    path = tmp_path / "affectnet.safetensors"
    save_file({key: value.contiguous() for key, value in trained_state.items()}, str(path))
    assert set(read_state_dict(path)) == set(trained_state)
    load_backbone_checkpoint(resnet50_trunk(), path)


def test_checkpoint_with_missing_or_foreign_keys_names_the_file(tmp_path, trained_state):
    missing = {k: v for k, v in trained_state.items() if not k.startswith("layer4.")}
    torch.save(missing, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"partial\.pth.*missing keys.*layer4"):
        load_backbone_checkpoint(resnet50_trunk(), tmp_path / "partial.pth")
    foreign = dict(trained_state, **{"attention.weight": torch.zeros(3)})
    torch.save(foreign, tmp_path / "foreign.pth")
    with pytest.raises(ValueError, match=r"foreign\.pth.*unexpected keys.*attention\.weight"):
        load_backbone_checkpoint(resnet50_trunk(), tmp_path / "foreign.pth")
    reshaped = dict(trained_state, **{"conv1.weight": torch.zeros(64, 1, 7, 7)})
    torch.save(reshaped, tmp_path / "reshaped.pth")
    with pytest.raises(ValueError, match=r"reshaped\.pth.*conv1\.weight"):
        load_backbone_checkpoint(resnet50_trunk(), tmp_path / "reshaped.pth")


def test_unreadable_or_absent_checkpoint_names_the_file(tmp_path):
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pth"):
        read_state_dict(tmp_path / "garbage.pth")
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        resnet50_backbone("affectnet", checkpoint=tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="needs the path"):
        resnet50_backbone("affectnet")


def test_imagenet_offline_without_cache_says_how_to_get_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url, cached = imagenet_checkpoint_path("V2")
    with pytest.raises(FileNotFoundError) as caught:
        resnet50_backbone("imagenet", offline=True)
    assert url in str(caught.value) and str(cached) in str(caught.value) and "TORCH_HOME" in str(caught.value)


def test_imagenet_weights_are_read_from_the_torch_hub_cache(tmp_path, monkeypatch, trained_state):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _, cached = imagenet_checkpoint_path("V1")
    cached.parent.mkdir(parents=True)
    torch.save(trained_state, cached)
    model, weights_id = resnet50_backbone("imagenet_v1", offline=True)
    assert weights_id == "torchvision:ResNet50_Weights.IMAGENET1K_V1"
    assert torch.equal(model.conv1.weight, trained_state["conv1.weight"])


def test_encoder_matches_the_plain_trunk_and_reduced_precision_agrees():
    crops = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    encoder = VisualEncoder("none", batch_size=1, precision="float32", device="cpu")
    exact = encoder.encode(crops)
    assert exact.shape == (2, 2048) and exact.dtype == np.float32
    trunk, _ = resnet50_backbone("none")
    images = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = trunk.eval()((images - mean) / std).numpy()
    assert np.allclose(exact, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())  # batch norms folded
    bfloat16_trunk = inference_trunk(trunk, torch.bfloat16, torch.device("cpu"))
    with torch.inference_mode():
        approximate = bfloat16_trunk(((images - mean) / std).to(torch.bfloat16)).float().numpy()
    cosine = (approximate * exact).sum(1) / np.linalg.norm(approximate, axis=1) / np.linalg.norm(exact, axis=1)
    assert cosine.min() > 0.99
    with pytest.raises(ValueError, match="uint8"):
        encoder.encode(crops.astype(np.float32))


def _caffe_names(state):
    """torchvision ResNet-50 names written the way caffe ports (VGGFace2 resnet50_ft) name them."""
    modules = {"conv1": "1x1_reduce", "conv2": "3x3", "conv3": "1x1_increase", "downsample.0": "1x1_proj",
               "bn1": "1x1_reduce_bn", "bn2": "3x3_bn", "bn3": "1x1_increase_bn", "downsample.1": "1x1_proj_bn"}
    renamed = {}
    for key, value in state.items():
        module, _, tensor = key.rpartition(".")
        if module in ("conv1", "bn1"):
            renamed[f"conv1_7x7_s2{'_bn' if module == 'bn1' else ''}.{tensor}"] = value
            continue
        if module == "fc":
            renamed[f"classifier.{tensor}"] = value
            continue
        layer, block, rest = module.split(".", 2)
        renamed[f"conv{int(layer[5:]) + 1}_{int(block) + 1}_{modules[rest]}.{tensor}"] = value
    return renamed


def test_caffe_named_checkpoint_loads_with_caffe_stride_layout(tmp_path, trained_state):
    torch.save(_caffe_names(trained_state), tmp_path / "resnet50_ft.pth")
    with pytest.raises(ValueError, match=r"resnet50_ft\.pth.*missing keys.*unexpected keys.*conv1_7x7_s2"):
        resnet50_backbone("affectnet", checkpoint=tmp_path / "resnet50_ft.pth")
    model, weights_id = resnet50_backbone("affectnet", checkpoint=tmp_path / "resnet50_ft.pth", key_map="caffe")
    assert _same_weights(model, trained_state)
    assert weights_id.endswith(":caffe-layout")
    first = model.layer2[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2048)


def test_json_prefix_map_renames_any_other_naming(tmp_path, trained_state):
    foreign = {f"encoder.trunk.{key}": value for key, value in trained_state.items()}
    torch.save(foreign, tmp_path / "other.pth")
    key_map = tmp_path / "names.json"
    key_map.write_text('{"encoder.trunk.": ""}')
    model, _ = resnet50_backbone("affectnet", checkpoint=tmp_path / "other.pth", key_map=str(key_map))
    assert _same_weights(model, trained_state)
    key_map.write_text("[1, 2]")
    with pytest.raises(ValueError, match="names.json"):
        resnet50_backbone("affectnet", checkpoint=tmp_path / "other.pth", key_map=str(key_map))


def test_caffe_preprocessing_is_bgr_in_pixel_units_minus_the_means():
    crops = np.random.default_rng(1).integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    encoder = VisualEncoder("none", precision="float32", device="cpu", preprocessing="caffe")
    prepared = encoder._prepare(crops)
    rgb = torch.from_numpy(crops).permute(0, 3, 1, 2).float() - torch.tensor(VGGFACE2_CAFFE_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(prepared, rgb.flip(1))
    custom = Preprocessing.named('{"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "scale": 1}')
    assert custom.mean == (0.5, 0.5, 0.5) and custom.channels == "RGB"
    with pytest.raises(ValueError, match="unknown fields"):
        Preprocessing.named('{"mean": [0, 0, 0], "gamma": 2}')
    with pytest.raises(ValueError, match="'imagenet', 'caffe'"):
        Preprocessing.named("vgg")
