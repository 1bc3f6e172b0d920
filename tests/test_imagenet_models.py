"""ImageNet classifiers as they are (`wsol.models.imagenet`): torchvision/timm with their own head.

Random initialisation only (nothing is downloaded); weights files are written by the tests.
"""

from __future__ import annotations

import pytest
import torch

from wsol.attribution import attribute, saliency_maps
from wsol.models import build_model
from wsol.models.imagenet import ImageNetClassifier, WeightsMismatch, imagenet_class_names

X = 64  # small inputs keep every forward fast
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {"resnet18": build_model("torchvision:resnet18", 1000),
            "vgg11": build_model("torchvision:vgg11", 1000)}


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, X, X, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def resnet18_file(nets, tmp_path_factory):
    """The resnet18's network state dict (torchvision's own keys) as .pth."""
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(nets["resnet18"].net.state_dict(), path)
    return path


@pytest.mark.parametrize("name,cam_head,feat_shape", [("resnet18", True, (2, 512, 2, 2)),
                                                      ("vgg11", False, (2, 512, 4, 4))])
def test_split_network_is_the_network(nets, images, name, cam_head, feat_shape):
    model = nets[name]
    assert isinstance(model, ImageNetClassifier) and model.source == "torchvision" and not model.training
    with torch.no_grad():
        logits = model(images)
        torch.testing.assert_close(logits, model.net(model.normalize(images)))
        both, feats = model.forward_with_features(images)
    assert logits.shape == (2, 1000)
    torch.testing.assert_close(both, logits)
    assert tuple(feats.shape) == feat_shape
    torch.testing.assert_close(feats, model.features(images))
    assert model.has_cam_head is cam_head


def test_cam_needs_a_gap_linear_head(nets, images):
    resnet, vgg = nets["resnet18"], nets["vgg11"]
    assert isinstance(resnet.classifier, torch.nn.Linear) and resnet.classifier is resnet.net.fc
    assert attribute("cam", resnet, images, 3).shape == (2, 2, 2)
    with pytest.raises(ValueError, match="gradcam"):
        vgg.classifier
    with pytest.raises(ValueError, match="gradcam"):
        attribute("cam", vgg, images, 3)
    with pytest.raises(ValueError, match="gradcam"):
        saliency_maps(vgg, images, None, "cam")


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
@pytest.mark.parametrize("name,hw", [("resnet18", (2, 2)), ("vgg11", (4, 4))])
def test_gradcam_works_on_any_head(nets, images, method, name, hw):
    out = attribute(method, nets[name], images, torch.tensor([1, 7]))
    assert out.shape == (2, *hw) and torch.isfinite(out).all()
    maps, logits = saliency_maps(nets[name], images, None, method)
    assert maps.shape == (2, X, X) and logits.shape == (2, 1000)
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_round_trip(nets, images, tmp_path, suffix):
    model = nets["resnet18"]
    path = tmp_path / f"resnet18{suffix}"
    state = model.net.state_dict()
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    torch.manual_seed(123)  # a different random init, overwritten by the file
    rebuilt = build_model("torchvision:resnet18", 1000, pretrained=path, keep_head=True)
    assert not rebuilt.training
    with torch.no_grad():
        assert torch.equal(rebuilt(images), model(images))


def test_other_architecture_is_refused_in_one_short_message(resnet18_file):
    resnet34 = build_model("torchvision:resnet34", 1000)
    own, theirs = resnet34.net.state_dict(), torch.load(resnet18_file, weights_only=True)
    n_missing = len([k for k in own if k not in theirs and not k.endswith("num_batches_tracked")])
    assert n_missing > 3
    with pytest.raises(WeightsMismatch) as info:
        build_model("torchvision:resnet34", 1000, pretrained=resnet18_file, keep_head=True)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert len(msg) < 600, msg
    assert f"{n_missing} missing" in msg and f"(+{n_missing - 3})" in msg
    assert str(resnet18_file) in msg and "torchvision:resnet34" in msg


def test_nan_in_the_file_is_refused_naming_the_tensor(nets, tmp_path):
    state = {k: v.clone() for k, v in nets["resnet18"].net.state_dict().items()}
    state["layer2.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    with pytest.raises(WeightsMismatch, match=r"layer2\.0\.conv1\.weight") as info:
        build_model("torchvision:resnet18", 1000, pretrained=path, keep_head=True)
    assert "NaN" in str(info.value) and "1 tensor" in str(info.value)


class _NotATensor:
    """A pickled object of a class torch's weights-only unpickler does not allow."""


def _write_not_a_state_dict(path, content: str) -> None:
    if content == "list":
        torch.save([1, 2, 3], path)
    elif content == "text":
        path.write_text("not a state dict at all")
    else:
        torch.save({"a": _NotATensor()}, path)


@pytest.mark.parametrize("content", ["list", "text", "object"])
def test_a_file_that_is_not_a_state_dict_is_one_short_error_naming_the_file(tmp_path, content):
    path = tmp_path / f"{content}.pth"
    _write_not_a_state_dict(path, content)
    with pytest.raises(WeightsMismatch) as info:
        build_model("torchvision:resnet18", 1000, pretrained=path, keep_head=True)
    msg = str(info.value)
    assert msg.startswith(f"{path}: not a readable .pth/.pt/.safetensors state dict")
    assert len(msg) < 600 and "\n" not in msg and "weights_only" not in msg, msg
    if content == "list":
        assert "does not hold a state dict (got list)" in msg


def test_project_arch_keeps_its_head(tmp_path, images):
    torch.manual_seed(0)
    model = build_model("resnet_tiny", 5).eval()
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    torch.manual_seed(1)
    rebuilt = build_model("resnet_tiny", 5, pretrained=path, keep_head=True).eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(images), model(images))
    assert torch.equal(rebuilt.fc.weight, model.fc.weight)  # the head is loaded, not re-initialised
    with pytest.raises(ValueError, match="keep_head=True needs a weights file"):
        build_model("resnet_tiny", 5, keep_head=True)
    with pytest.raises(ValueError, match="keep_head=True needs a weights file"):
        build_model("resnet_tiny", 5, pretrained=True, keep_head=True)


def test_timm_model_with_a_non_gap_head(tmp_path, images):
    torch.manual_seed(0)
    model = build_model("timm:mobilenetv3_small_050", 1000, keep_head=True)
    path = tmp_path / "mnv3.pth"
    torch.save(model.net.state_dict(), path)
    torch.manual_seed(1)
    rebuilt = build_model("timm:mobilenetv3_small_050", 1000, pretrained=path, keep_head=True)
    assert isinstance(rebuilt, ImageNetClassifier) and rebuilt.source == "timm" and not rebuilt.training
    assert rebuilt.has_cam_head is False
    with torch.no_grad():
        assert torch.equal(rebuilt(images), model(images))
        logits, feats = rebuilt.forward_with_features(images)
    torch.testing.assert_close(logits, rebuilt(images))
    assert feats.ndim == 4 and feats.shape[0] == 2
    with pytest.raises(ValueError, match="gradcam"):
        rebuilt.classifier
    out = attribute("gradcam", rebuilt, images, 5)
    assert out.shape == (2, *feats.shape[2:]) and torch.isfinite(out).all()


def test_imagenet_class_names():
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000  # torchvision's list is disambiguated
    assert names[0] == "tench" and names[999] == "toilet tissue"
    assert (names[281], names[282], names[285]) == ("tabby", "tiger cat", "Egyptian cat")
    assert (names[967], names[968]) == ("espresso", "cup")
