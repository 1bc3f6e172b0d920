"""Tests for pretrained weights in wsol.models: .pth / safetensors files, torchvision index maps,
the hub cache and timm, all offline (a fixture refuses network connections; weight files are
written from randomly initialised models into tmp_path)."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from wsol.models import PretrainedWeightsMissing, build_model, load_pretrained


pytestmark = pytest.mark.usefixtures("no_network", "seeded")


# ---------------------------------------------------------------- pretrained weights

def _equal(a: nn.Module, b: dict, key: str, prefix: str = "") -> bool:
    return torch.equal(a.state_dict()[prefix + key], b[key])


def test_pretrained_from_pth_file_skips_fc(tmp_path):
    source = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save(source, path)
    model = build_model("resnet18", num_classes=1000, pretrained=path)
    for key in ("conv1.weight", "layer1.0.bn1.running_mean", "layer4.1.conv2.weight"):
        assert _equal(model, source, key)
    assert not _equal(model, source, "fc.weight")
    assert "pretrained" not in model.build_args
    report = load_pretrained(model, str(path))
    assert "fc.weight" in report.missing and not report.unexpected and not report.mismatched


def test_pretrained_classifier_keeps_the_imagenet_fc_when_asked(tmp_path):
    """model.pretrained_classifier: wsolevaluation's ResNet on ILSVRC starts from the pretrained fc."""
    source = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save(source, path)
    model = build_model("resnet18", num_classes=1000, pretrained=path, pretrained_classifier=True)
    assert _equal(model, source, "fc.weight") and _equal(model, source, "fc.bias")
    assert _equal(model, source, "layer4.1.conv2.weight")
    with pytest.raises(ValueError, match=r"fc.weight is \(1000, 512\) in the file, \(10, 512\) in the model"):
        build_model("resnet18", num_classes=10, pretrained=path, pretrained_classifier=True)
    with pytest.raises(ValueError, match="needs pretrained weights"):
        build_model("resnet18", num_classes=1000, pretrained_classifier=True)


def test_pretrained_vgg_maps_torchvision_feature_indices(tmp_path):
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    source = {f"features.{k}": v for k, v in features.state_dict().items()}
    source["classifier.6.weight"] = torch.zeros(1000, 4096)
    path = tmp_path / "vgg16.safetensors"
    save_file(source, str(path))
    model = build_model("vgg_gap", num_classes=3, pretrained=path)
    assert torch.equal(model.body.conv1_1.weight, source["features.0.weight"])
    assert torch.equal(model.body.conv4_3.bias, source["features.21.bias"])
    assert torch.equal(model.body.conv5_3.weight, source["features.28.weight"])


def test_vgg_gap_bn_layout_and_torchvision_bn_weights(tmp_path):
    plain = build_model("vgg_gap_small", num_classes=3)
    model = build_model("vgg_gap_bn_small", num_classes=3)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    names = list(model.body._modules)
    assert names[:3] == ["conv1_1", "bn1_1", "relu1_1"] and names[-3:] == ["conv5_3", "bn5_3", "relu5_3"]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 13  # one per body conv, none on conv6
    with_adl = build_model("vgg_gap_bn_small", num_classes=3, adl=True)
    adl_names = list(with_adl.body._modules)
    assert adl_names[adl_names.index("relu4_3") + 1] == "adl_conv4_3"
    # torchvision vgg16_bn features (conv, bn, relu per conv) load into body.convX_Y / body.bnX_Y
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"], batch_norm=True)
    for m in features.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_()
    source = {f"features.{k}": v for k, v in features.state_dict().items()}
    path = tmp_path / "vgg16_bn.safetensors"
    save_file(source, str(path))
    full = build_model("vgg_gap_bn", num_classes=3, pretrained=path)
    assert torch.equal(full.body.conv1_1.weight, source["features.0.weight"])
    assert torch.equal(full.body.bn1_1.running_mean, source["features.1.running_mean"])
    assert torch.equal(full.body.conv4_3.bias, source["features.30.bias"])
    assert torch.equal(full.body.bn5_3.running_mean, source["features.41.running_mean"])
    report = load_pretrained(build_model("vgg_gap_bn", num_classes=3), str(path))
    assert not report.unexpected and not report.mismatched
    assert set(report.missing) == {"conv6.weight", "conv6.bias", "fc.weight", "fc.bias"}


def test_pretrained_true_reads_hub_cache_only(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    expected = tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(PretrainedWeightsMissing) as err:
        build_model("resnet18", num_classes=2, pretrained=True)
    assert isinstance(err.value, FileNotFoundError)
    assert str(expected) in str(err.value) and url in str(err.value)
    expected.parent.mkdir()
    source = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(source, expected)
    model = build_model("resnet18", num_classes=2, pretrained=True)
    assert _equal(model, source, "layer3.0.downsample.0.weight")


def test_pretrained_errors(tmp_path):
    with pytest.raises(PretrainedWeightsMissing, match="nope.pth"):
        build_model("resnet_tiny", num_classes=2, pretrained=tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_model("resnet_tiny", num_classes=2, pretrained=True)
    torch.save({"other.weight": torch.zeros(2)}, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="no tensor"):
        build_model("resnet_tiny", num_classes=2, pretrained=tmp_path / "junk.pth")


def test_timm_pretrained_from_file(tmp_path):
    source = timm.create_model("resnet18", num_classes=1000).state_dict()
    path = tmp_path / "timm_r18.safetensors"
    save_file(source, str(path))
    model = build_model("timm:resnet18", num_classes=5, pretrained=path)
    assert _equal(model, source, "conv1.weight", prefix="net.")
    assert _equal(model, source, "layer4.1.bn2.running_var", prefix="net.")
    assert model.classifier.out_features == 5
    same_head = build_model("timm:resnet18", num_classes=1000, pretrained=path)
    assert _equal(same_head, source, "conv1.weight", prefix="net.")
    assert not _equal(same_head, source, "fc.weight", prefix="net.")  # head always fresh
    with pytest.raises(PretrainedWeightsMissing):
        build_model("timm:resnet18", num_classes=5, pretrained=tmp_path / "missing.pth")


def test_timm_pretrained_true_never_downloads(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    offline_before = hf_constants.HF_HUB_OFFLINE
    with pytest.raises(PretrainedWeightsMissing, match="efficientnet_lite0"):
        build_model("timm:efficientnet_lite0", num_classes=3, pretrained=True)
    assert hf_constants.HF_HUB_OFFLINE == offline_before
    assert "HF_HUB_OFFLINE" not in __import__("os").environ
