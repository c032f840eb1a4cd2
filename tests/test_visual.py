"""ResNet-50 visual features: weight sources, checkpoint formats and errors, batched encoding."""
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from mddr_utils.features.visual import (VisualEncoder, imagenet_checkpoint_path, inference_trunk,
                                        load_backbone_checkpoint, read_state_dict, resnet50_backbone, resnet50_trunk)


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


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model_with_module_prefix"])
def test_affectnet_checkpoint_formats_load(tmp_path, trained_state, wrap):
    state = dict(trained_state)
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 12}
    elif wrap == "model_with_module_prefix":
        state = {"model": {f"module.{key}": value for key, value in state.items()}}
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
