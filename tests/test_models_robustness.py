"""Tests for the small-image robustness nets (WRN, Chen et al.'s ResNet) and the
LeakyReLU -> 0.1x + 0.9 softplus switch. CPU, tiny inputs, narrow widths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol.models import build_model, list_models, smooth_activations
from wsol.models.activations import SmoothLeakyReLU, SmoothReLU
from wsol.models.wrn import CIFAR10_MEAN, CIFAR10_STD, per_image_standardization

SMALL = ["wrn_10_1", "wrn_16_2", "chen_resnet_gtsrb", "chen_resnet_flower"]
ALL = ["wrn_28_10", "wrn_16_2", "wrn_10_1", "chen_resnet_gtsrb", "chen_resnet_flower"]
FEAT_CHANNELS = {"wrn_10_1": 64, "wrn_16_2": 128, "chen_resnet_gtsrb": 64, "chen_resnet_flower": 64}


pytestmark = pytest.mark.usefixtures("seeded")   # conftest: torch seeded with 0 before each test


def _activations(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]


def test_registered():
    assert set(list_models()) >= set(ALL)


@pytest.mark.parametrize("arch", SMALL)
@pytest.mark.parametrize("size", [32, 64])
def test_shapes_and_cam_decomposition(arch, size):
    model = build_model(arch, num_classes=10).eval()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        logits, feats = model.forward_with_features(x)
        assert logits.shape == (2, 10)
        assert feats.shape == (2, FEAT_CHANNELS[arch], size // 4, size // 4)
        assert torch.allclose(model(x), model.fc(model.features(x).mean((2, 3))), atol=1e-6)
    assert model.classifier_weight.shape == (10, FEAT_CHANNELS[arch])


def test_wrn_28_10_parameter_count_and_layout():
    model = build_model("wrn_28_10", num_classes=10)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - 36.5e6) / 36.5e6 < 0.01, n
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [4, 4, 4]
    assert model.fc.in_features == 640 and model.conv1.out_channels == 16
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.stride,
            model.layer3[0].conv1.stride] == [160, (2, 2), (2, 2)]
    assert model.layer1[0].dropout.p == 0.1
    assert torch.allclose(model.mean.flatten(), torch.tensor(CIFAR10_MEAN))
    assert torch.allclose(model.std.flatten(), torch.tensor(CIFAR10_STD))
    assert torch.all(model.bn.weight == 1) and torch.all(model.fc.bias == 0)


def test_chen_layout():
    gtsrb, flower = build_model("chen_resnet_gtsrb", 43), build_model("chen_resnet_flower", 17)
    assert [len(gtsrb.layer1), len(flower.layer1)] == [2, 1]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gtsrb.modules())
    acts = [m for m in gtsrb.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 2 * 6 + 1 and all(m.negative_slope == 0.1 for m in acts)
    assert not any(isinstance(m, nn.ReLU) for m in gtsrb.modules())


@pytest.mark.parametrize("arch", ALL)
def test_build_args_round_trip(arch):
    model = build_model(arch, 10)
    assert model.arch == arch and model.build_args == dict(arch=arch, num_classes=10, adl=False)
    again = build_model(**model.build_args)
    assert type(again) is type(model)
    assert [k for k, _ in again.named_parameters()] == [k for k, _ in model.named_parameters()]


def test_build_args_with_options():
    model = build_model("wrn_10_1", 3, drop_rate=0.0, mean=[0.5] * 3, std=[0.25] * 3)
    again = build_model(**model.build_args)
    assert again.layer1[0].dropout.p == 0.0 and torch.all(again.std == 0.25)


@pytest.mark.parametrize("arch", ALL)
def test_adl_raises(arch):
    with pytest.raises(ValueError, match="does not support ADL"):
        build_model(arch, 10, adl=True)


@pytest.mark.parametrize("arch", SMALL)
def test_smooth_activations_swaps_every_activation_and_restores(arch):
    model = build_model(arch, num_classes=4).eval()
    originals = _activations(model)
    assert originals
    with smooth_activations(model, beta=3.0):
        assert not _activations(model)
        smooth = [m for m in model.modules() if isinstance(m, (SmoothReLU, SmoothLeakyReLU))]
        assert len(smooth) == len(originals) and all(m.beta == 3.0 for m in smooth)
    assert _activations(model) == originals


@pytest.mark.parametrize("arch", ["wrn_10_1", "chen_resnet_gtsrb"])
def test_large_beta_approaches_relu_logits(arch):
    model = build_model(arch, num_classes=4).eval().double()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        plain = model(x)
        with smooth_activations(model, beta=1e4):
            sharp = model(x)
        with smooth_activations(model, beta=1.0):
            soft = model(x)
    assert (sharp - plain).abs().max() < 1e-2 * plain.abs().max()
    assert (sharp - plain).abs().max() < (soft - plain).abs().max()


def test_smooth_leaky_relu_formula_and_nesting():
    act = nn.Sequential(nn.LeakyReLU(0.2))
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    with smooth_activations(act, beta=2.0):
        assert torch.allclose(act(x), 0.2 * x + 0.8 * F.softplus(x, beta=2.0))
        with smooth_activations(act, beta=5.0):
            assert act[0].beta == 5.0 and act[0].negative_slope == 0.2
        assert act[0].beta == 2.0
    assert type(act[0]) is nn.LeakyReLU
    assert torch.equal(act(x), F.leaky_relu(x, 0.2))


def _input_gradient_of_gradient(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """d/dx sum |d logit_0 / dx| (double backprop); zeros where nothing depends on x."""
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x)[:, 0].sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.abs().sum(), x, allow_unused=True)
    return torch.zeros_like(x) if h is None else h


def test_double_backprop_nonzero_only_inside_context_for_leaky_net():
    model = build_model("chen_resnet_flower", num_classes=3).eval()
    x = torch.rand(1, 3, 16, 16)
    # per-image standardisation is itself smooth, so the ReLU net's second-order term is not
    # zero; compare against the same net with the activations frozen (linearised)
    with smooth_activations(model, beta=1.0):
        inside = _input_gradient_of_gradient(model, x)
    assert torch.isfinite(inside).all() and inside.abs().max() > 1e-6
    outside = _input_gradient_of_gradient(model, x)
    assert not torch.allclose(inside, outside)
    # leaky-ReLU curvature is zero a.e.: with standardisation replaced by identity the
    # plain net's second-order term vanishes, the smooth one's does not
    model.normalize = lambda t: t
    assert _input_gradient_of_gradient(model, x).abs().max() == 0
    with smooth_activations(model, beta=1.0):
        assert _input_gradient_of_gradient(model, x).abs().max() > 1e-6


def _tf_per_image_standardization(image: np.ndarray) -> np.ndarray:
    """numpy copy of tf.image.per_image_standardization on one (H,W,C) image."""
    image = image.astype(np.float64)
    mean = image.mean()
    stddev = np.sqrt(max((image ** 2).mean() - mean ** 2, 0.0))
    return (image - mean) / max(stddev, 1.0 / np.sqrt(image.size))


def test_per_image_standardization_matches_tf_formula():
    x = torch.rand(3, 3, 8, 6, dtype=torch.float64)
    x[1] = 0.5                                   # uniform image: the 1/sqrt(N) floor
    x[2] = 0.5 + 1e-4 * torch.rand(3, 8, 6)      # nearly uniform: floor still active
    ours = per_image_standardization(x).numpy()
    for i in range(3):
        ref = _tf_per_image_standardization(x[i].permute(1, 2, 0).numpy()).transpose(2, 0, 1)
        np.testing.assert_allclose(ours[i], ref, rtol=1e-8, atol=1e-10)
    model = build_model("chen_resnet_gtsrb", 5).double()
    ref = _tf_per_image_standardization(255.0 * x[2].permute(1, 2, 0).numpy()).transpose(2, 0, 1)
    np.testing.assert_allclose(model.normalize(x)[2].numpy(), ref, rtol=1e-8, atol=1e-10)


def test_per_image_standardization_gradient_is_finite_on_uniform_image():
    x = torch.full((1, 3, 4, 4), 0.3, requires_grad=True)
    per_image_standardization(x).sum().backward()
    assert torch.isfinite(x.grad).all()
