"""Tests for wsol.models: shapes, CAM decomposition, build_args, ADL, Softplus switch, weights.

Everything runs offline on CPU: a fixture refuses network connections, and weight
files are written from randomly initialised models into tmp_path.
"""

from __future__ import annotations

import copy
import json
import socket

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torch import nn

from wsol.models import (
    ADL,
    PretrainedWeightsMissing,
    WSOLModel,
    build_model,
    list_models,
    load_pretrained,
    smooth_activations,
)
from wsol.models.activations import SmoothReLU

SMALL_ARCHS = ["vgg_gap_tiny", "vgg_gap_small", "vgg_gap_bn_small", "resnet_tiny", "resnet18"]
TIMM_ARCHS = ["timm:resnet18", "timm:efficientnet_lite0"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: nothing may be downloaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted in a test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


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


# ---------------------------------------------------------------- smooth_activations

class _FunctionalNet(nn.Module):
    """Uses every functional relu form; (B,4) -> (B,2)."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = F.relu(self.l1(x))
        h = torch.relu(self.l2(h)) + self.l2(h).relu()
        h = F.relu(h * 1.0, inplace=True)
        return self.l3(h)


def _manual(net: _FunctionalNet, x: torch.Tensor, act) -> torch.Tensor:
    h = act(net.l1(x))
    h = act(net.l2(h)) + act(net.l2(h))
    return net.l3(act(h))


def test_functional_relu_is_swapped_and_restored():
    net = _FunctionalNet().double()
    x = torch.randn(5, 4, dtype=torch.float64)
    originals = (F.relu, F.relu_, torch.relu, torch.relu_)
    with smooth_activations(net, beta=2.0):
        assert torch.allclose(net(x), _manual(net, x, lambda t: F.softplus(t, beta=2.0)))
    assert torch.allclose(net(x), _manual(net, x, torch.relu))
    assert (F.relu, F.relu_, torch.relu, torch.relu_) == originals
    assert "relu" not in vars(torch.Tensor) and "relu_" not in vars(torch.Tensor)


def test_module_relu_swapped_output_matches_softplus_network():
    mlp = nn.Sequential(nn.Linear(4, 16), nn.ReLU(inplace=True), nn.Linear(16, 3)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    relu = mlp[1]
    with smooth_activations(mlp, beta=10.0) as same:
        assert same is mlp and isinstance(mlp[1], nn.Softplus) and mlp[1].beta == 10.0
        assert mlp[1].threshold == 20
        smooth = mlp(x)
    expected = mlp[2](F.softplus(mlp[0](x), beta=10.0))
    assert torch.allclose(smooth, expected)
    assert mlp[1] is relu
    assert not torch.allclose(mlp(x), smooth)


def _second_order(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (hvp,) = torch.autograd.grad((grad * torch.ones_like(grad)).sum(), x, allow_unused=True)
    return torch.zeros_like(x) if hvp is None else hvp


@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny", "timm:resnet18"])
def test_second_derivative_only_inside_context(arch):
    model = build_model(arch, num_classes=3).eval()
    x = torch.rand(1, 3, 16, 16)
    assert _second_order(model, x).abs().max() == 0
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    with smooth_activations(model, beta=5.0):
        assert not any(isinstance(m, nn.ReLU) for m in model.modules())
        assert _second_order(model, x).abs().max() > 1e-6
    assert [m for m in model.modules() if isinstance(m, nn.ReLU)] == relus


@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny"])
def test_smooth_model_equals_manual_softplus_copy_and_no_functional_relu(arch, monkeypatch):
    """The built-in archs use nn.ReLU modules only: a copy with nn.Softplus put in by hand
    runs with every functional relu disabled and matches the context's output."""
    model = build_model(arch, num_classes=3).eval()
    reference = copy.deepcopy(model)
    for parent in list(reference.modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, nn.ReLU):
                parent._modules[name] = nn.Softplus(beta=3.0)
    x = _images(32)
    with torch.no_grad(), smooth_activations(model, beta=3.0):
        smooth = model(x)

    def forbidden(*args, **kwargs):
        raise AssertionError("functional relu used")
    for owner in (F, torch):
        monkeypatch.setattr(owner, "relu", forbidden)
        monkeypatch.setattr(owner, "relu_", forbidden)
    with torch.no_grad():
        assert torch.allclose(reference(x), smooth, atol=1e-6)


def test_restored_after_exception_and_nesting():
    mlp = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
    relu = mlp[1]
    with pytest.raises(RuntimeError, match="boom"):
        with smooth_activations(mlp, beta=1.0):
            raise RuntimeError("boom")
    assert mlp[1] is relu and torch.relu is torch._C._VariableFunctions.relu
    x = torch.randn(4, 3)
    with smooth_activations(mlp, beta=1.0):
        outer = mlp(x)
        with smooth_activations(mlp, beta=20.0):
            assert isinstance(mlp[1], SmoothReLU) and mlp[1].beta == 20.0
            assert torch.allclose(torch.relu(x), F.softplus(x, beta=20.0))
        assert mlp[1].beta == 1.0 and torch.allclose(mlp(x), outer)
        assert torch.allclose(torch.relu(x), F.softplus(x, beta=1.0))
    assert mlp[1] is relu and torch.equal(torch.relu(x), x.clamp(min=0))


def test_shared_relu_module_is_swapped_everywhere():
    shared = nn.ReLU()
    net = nn.Sequential(nn.Linear(2, 2), shared, nn.Sequential(nn.Linear(2, 2), shared))
    with smooth_activations(net, beta=1.0):
        assert isinstance(net[1], SmoothReLU) and isinstance(net[2][1], SmoothReLU)
    assert net[1] is shared and net[2][1] is shared


def test_inplace_functional_relu_supports_double_backward():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    with smooth_activations(nn.Identity(), beta=2.0):
        y = F.relu(x * 2.0, inplace=True)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), x)
    s = torch.sigmoid(2.0 * 2.0 * x)
    assert torch.allclose(g, 2.0 * s)
    assert torch.allclose(h, 2.0 * 2.0 * 2.0 * s * (1 - s))


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
