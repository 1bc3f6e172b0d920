"""Tests for wsol.models.smooth_activations: the ReLU -> Softplus switch (modules and functional
calls), its second derivative, restoration after errors and nesting."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol.models import build_model, smooth_activations
from wsol.models.activations import SmoothReLU


pytestmark = pytest.mark.usefixtures("no_network", "seeded")


def _images(size: int = 32, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, size, size)


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
