"""Tests for wsol.models: shapes, CAM decomposition, build_args, ADL.

The Softplus switch is tested in test_smooth_activations.py, weight loading in
test_pretrained.py.

Everything runs offline on CPU: a fixture refuses network connections.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from wsol.models import ADL, WSOLModel, build_model, list_models

SMALL_ARCHS = ["vgg_gap_tiny", "vgg_gap_small", "vgg_gap_bn_small", "resnet_tiny", "resnet18"]
TIMM_ARCHS = ["timm:resnet18", "timm:efficientnet_lite0"]


# conftest: no network connection (nothing may be downloaded), torch seeded with 0 before each test.
pytestmark = pytest.mark.usefixtures("no_network", "seeded")


def _images(size: int = 32, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, size, size)


# ---------------------------------------------------------------- registry and shapes

def test_registry_names():
    assert set(list_models()) >= {"vgg_gap", "vgg_gap_small", "vgg_gap_tiny", "vgg_gap_bn", "vgg_gap_bn_small",
                                  "resnet50", "resnet18", "resnet_tiny"}


def test_unknown_arch_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_model("resnet51", num_classes=3)
    for name in list_models():
        assert name in str(err.value)
    assert "timm:<name>" in str(err.value)


@pytest.mark.parametrize("arch,channels", [("resnet50", 2048), ("vgg_gap", 1024),
                                           ("resnet18", 512), ("vgg_gap_small", 256)])
def test_feature_map_has_stride_16(arch, channels):
    model = build_model(arch, num_classes=5).eval()
    with torch.no_grad():
        logits, feats = model.forward_with_features(_images(64, batch=1))
    assert logits.shape == (1, 5)
    assert feats.shape == (1, channels, 4, 4)  # 224 px -> 14x14


def test_vgg_gap_tiny_is_14x14_at_224():
    model = build_model("vgg_gap_tiny", num_classes=4).eval()
    with torch.no_grad():
        feats = model.features(_images(224, batch=1))
    assert feats.shape == (1, 64, 14, 14)
    assert model.classifier_weight.shape == (4, 64)


def test_large_feature_map_is_stride_8():
    model = build_model("resnet_tiny", num_classes=3, large_feature_map=True).eval()
    with torch.no_grad():
        assert model.features(_images(64)).shape == (2, 512, 8, 8)


def test_vgg_gap_layout_and_init():
    model = build_model("vgg_gap", num_classes=10)
    names = list(model.body._modules)
    assert "pool4" in names and "pool5" not in names and names[-1] == "relu5_3"
    assert model.conv6.in_channels == 512 and model.conv6.out_channels == 1024
    assert model.conv6.kernel_size == (3, 3) and model.conv6.padding == (1, 1)
    assert model.fc.in_features == 1024
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert model.fc.bias.abs().max() == 0 and model.body.conv1_1.bias.abs().max() == 0
    tiny = build_model("vgg_gap", num_classes=2, width=0.01)
    assert tiny.body.conv1_1.out_channels == 1 and tiny.conv6.out_channels == 10


def test_resnet_layer4_stride_one():
    model = build_model("resnet50", num_classes=2)
    assert model.layer4[0].conv2.stride == (1, 1)
    assert model.layer4[0].downsample[0].stride == (1, 1)
    assert model.layer3[0].conv2.stride == (2, 2)
    assert model.fc.in_features == 2048 and model.fc.out_features == 2


@pytest.mark.parametrize("arch", ["resnet50", "vgg_gap", *SMALL_ARCHS, *TIMM_ARCHS])
def test_logits_decompose_into_cam(arch):
    model = build_model(arch, num_classes=6).eval()
    assert isinstance(model, WSOLModel) and model.arch == arch and model.num_classes == 6
    x = _images(32)
    with torch.no_grad():
        logits, feats = model.forward_with_features(x)
        assert torch.allclose(model(x), logits, atol=1e-5)
        assert torch.allclose(model.features(x), feats, atol=1e-5)
        pooled = model.classifier(feats.mean(dim=(2, 3)))
        cam = torch.einsum("ck,bkhw->bchw", model.classifier_weight, feats)
    assert isinstance(model.classifier, nn.Linear)
    assert torch.allclose(logits, pooled, atol=1e-5)
    assert torch.allclose(logits, cam.mean(dim=(2, 3)) + model.classifier.bias, atol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_timm_wrapper_matches_timm_forward(name):
    model = build_model(f"timm:{name}", num_classes=4).eval()
    x = _images(32)
    with torch.no_grad():
        expected = model.net((x - model.mean) / model.std)
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert model.new_layer_prefixes == ("net." + ("fc" if name == "resnet18" else "classifier"),)


def test_timm_normalization_from_pretrained_cfg():
    model = build_model("timm:tf_efficientnet_lite0", num_classes=2)
    assert model.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    assert model.std.flatten().tolist() == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("name,reason", [("mobilenetv3_small_050", "extra layers"),
                                         ("convnext_atto", "forward_head"),
                                         ("vit_tiny_patch16_224", "pooling")])
def test_timm_heads_that_break_cam_are_rejected(name, reason):
    with pytest.raises(ValueError, match=reason) as err:
        build_model(f"timm:{name}", num_classes=3)
    assert "CAM" in str(err.value) or "average pooling" in str(err.value)


def test_timm_rejects_adl_and_unknown_names():
    with pytest.raises(ValueError, match="ADL"):
        build_model("timm:resnet18", num_classes=3, adl=True)
    model = build_model("timm:resnet18", num_classes=3, adl_gamma=0.5)  # ignored without ADL
    assert model.build_args["adl_gamma"] == 0.5
    with pytest.raises(ValueError, match="unknown timm model"):
        build_model("timm:not_a_model", num_classes=3)


# ---------------------------------------------------------------- normalization, build_args

@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny"])
def test_normalization_is_inside_the_model(arch):
    model = build_model(arch, num_classes=3).eval()
    x = _images(32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        manual = model.classifier(model.extract((x - mean) / std).mean(dim=(2, 3)))
        assert torch.allclose(model(x), manual, atol=1e-5)
        assert not torch.allclose(model(x), model.classifier(model.extract(x).mean(dim=(2, 3))))
    assert "mean" not in model.state_dict()  # statistics come from build_args, not weights


def test_mean_std_override():
    model = build_model("resnet_tiny", num_classes=3, mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])
    x = _images(32)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model.classifier(model.extract(x).mean(dim=(2, 3))))
    assert model.build_args["mean"] == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("arch,kwargs", [
    ("vgg_gap_tiny", {"adl": True, "adl_gamma": 0.7, "adl_positions": "tf"}),
    ("vgg_gap", {"width": 0.125}),
    ("resnet_tiny", {"large_feature_map": True, "adl": True, "mean": (0.5, 0.5, 0.5)}),
    ("resnet50", {}),
    ("timm:resnet18", {"drop_path_rate": 0.1}),
])
def test_build_args_round_trip(arch, kwargs):
    model = build_model(arch, num_classes=7, **kwargs)
    args = json.loads(json.dumps(model.build_args))  # as stored beside a checkpoint
    assert "pretrained" not in args and args["arch"] == arch and args["num_classes"] == 7
    rebuilt = build_model(**args)
    own, other = model.state_dict(), rebuilt.state_dict()
    assert list(own) == list(other)
    assert all(own[k].shape == other[k].shape for k in own)
    assert torch.equal(model.mean, rebuilt.mean)
    assert [type(m) for m in model.modules()] == [type(m) for m in rebuilt.modules()]
    rebuilt.load_state_dict(own)


@pytest.mark.parametrize("arch,prefixes", [("resnet50", ("layer4", "fc")),
                                           ("resnet_tiny", ("layer4", "fc")),
                                           ("vgg_gap", ("conv6", "fc")),
                                           ("timm:efficientnet_lite0", ("net.classifier",))])
def test_new_layer_prefixes_name_real_parameters(arch, prefixes):
    model = build_model(arch, num_classes=3)
    assert model.new_layer_prefixes == prefixes
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        assert any(n.startswith(prefix + ".") for n in names), prefix
    old, new = model.split_parameters()
    assert len(old) + len(new) == len(names) and old and new
    new_ids = {id(p) for p in new}
    assert all(id(p) in new_ids for p in model.classifier.parameters())
    first = next(model.parameters())  # the stem conv is pretrained, not new
    assert id(first) not in new_ids


# ---------------------------------------------------------------- ADL

def test_adl_math_on_hand_made_tensor():
    # channel mean A = [[0, 1], [2, 4]]; gamma * max = 0.5 * 4 = 2 -> mask [[1, 1], [0, 0]]
    a = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    x = torch.stack([a - 1, a + 1]).unsqueeze(0)                     # (1,2,2,2)
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    drop = ADL(drop_rate=1.0, gamma=0.5).train()
    assert torch.equal(drop(x), x * mask)
    keep = ADL(drop_rate=0.0, gamma=0.5).train()
    assert torch.allclose(keep(x), x * torch.sigmoid(a))
    # per-sample max: a second sample with a different peak gets its own threshold
    x2 = torch.cat([x, 10 * x])
    assert torch.equal(drop(x2)[1], 10 * x[0] * mask)


def test_adl_is_identity_in_eval():
    adl = ADL(0.75, 0.9).eval()
    x = torch.randn(2, 4, 3, 3)
    assert adl(x) is x


def test_adl_one_draw_per_call_shared_by_batch_and_seedable():
    adl = ADL(drop_rate=0.5, gamma=0.9).train()
    x = torch.rand(4, 3, 5, 5) + 0.1
    importance = x * torch.sigmoid(x.mean(1, keepdim=True))
    kinds = []
    for seed in range(40):
        torch.manual_seed(seed)
        out = adl(x)
        per_sample = [torch.allclose(out[i], importance[i]) for i in range(4)]
        assert len(set(per_sample)) == 1  # the whole batch gets the same branch
        kinds.append(per_sample[0])
        torch.manual_seed(seed)
        assert torch.equal(adl(x), out)
    assert 5 < sum(kinds) < 35


def _call_order(model: nn.Module, x: torch.Tensor, names: list[str]) -> list[str]:
    """Names (from `names`) of modules in the order their forward calls finish."""
    order, modules = [], dict(model.named_modules())
    handles = [modules[n].register_forward_hook(lambda *_, n=n: order.append(n)) for n in names]
    model.train()(x)
    for h in handles:
        h.remove()
    return order


def test_adl_positions_resnet50():
    model = build_model("resnet50", num_classes=2, adl=True)
    assert list(model.layer3._modules) == ["0", "adl0", "1", "2", "3", "4", "5"]
    assert list(model.layer4._modules) == ["0", "adl0", "1", "2", "adl2"]
    names = [f"layer{s}.{n}" for s in (3, 4) for n in getattr(model, f"layer{s}")._modules]
    order = _call_order(model, _images(32, batch=2), names + ["layer4"])
    assert order == names + ["layer4"]  # the stages run as plain nn.Sequential
    adls = [m for m in model.modules() if isinstance(m, ADL)]
    assert len(adls) == 3 and all(m.gamma == 0.9 and m.drop_rate == 0.75 for m in adls)
    plain = build_model("resnet50", num_classes=2)
    assert list(plain.state_dict()) == list(model.state_dict())  # ADL adds no keys


@pytest.mark.parametrize("arch,layer3,layer4", [
    ("resnet18", ["0", "adl0", "1"], ["0", "adl0", "1", "adl1"]),
    ("resnet_tiny", ["0", "adl0"], ["0", "adl0"]),  # layer4[0] is also the end of layer4
])
def test_adl_positions_small_resnets(arch, layer3, layer4):
    model = build_model(arch, num_classes=2, adl=True, adl_positions="tf")
    assert list(model.layer3._modules) == layer3 and list(model.layer4._modules) == layer4
    names = [f"layer3.{n}" for n in layer3] + [f"layer4.{n}" for n in layer4]
    assert _call_order(model, _images(32), names) == names


@pytest.mark.parametrize("positions,expected", [
    ("wsoleval", [("pool3", "adl_pool3"), ("relu4_3", "adl_conv4_3"), ("adl_conv4_3", "pool4"),
                  ("relu5_3", "adl_conv5_3")]),
    ("tf", [("pool3", "adl_pool3"), ("pool4", "adl_pool4"), ("relu5_3", "adl_conv5_3")]),
])
def test_adl_positions_vgg(positions, expected):
    model = build_model("vgg_gap_tiny", num_classes=2, adl=True, adl_positions=positions)
    names = list(model.body._modules)
    adl_names = [n for n, m in model.body.named_children() if isinstance(m, ADL)]
    assert len(adl_names) == 3
    for before, after in expected:
        assert names.index(after) == names.index(before) + 1
    assert names[-1] == "adl_conv5_3"  # the last ADL feeds conv6
    order = _call_order(model, _images(32), [f"body.{n}" for n in names] + ["conv6"])
    assert order == [f"body.{n}" for n in names] + ["conv6"]
    assert all(model.body._modules[n].gamma == 0.8 for n in adl_names)


def test_adl_options():
    assert not any(isinstance(m, ADL) for m in build_model("resnet18", 2).modules())
    assert not any(isinstance(m, ADL) for m in build_model("vgg_gap_tiny", 2).modules())
    model = build_model("vgg_gap_tiny", 2, adl=True, adl_drop_rate=0.3, adl_gamma=0.6)
    adls = [m for m in model.modules() if isinstance(m, ADL)]
    assert [(m.drop_rate, m.gamma) for m in adls] == [(0.3, 0.6)] * 3
    with pytest.raises(ValueError, match="adl_positions"):
        build_model("resnet_tiny", 2, adl=True, adl_positions="caffe")


def test_adl_model_in_eval_equals_plain_model():
    plain = build_model("resnet_tiny", num_classes=3).eval()
    with_adl = build_model("resnet_tiny", num_classes=3, adl=True).eval()
    with_adl.load_state_dict(plain.state_dict())
    x = _images(32)
    with torch.no_grad():
        assert torch.equal(plain(x), with_adl(x))
