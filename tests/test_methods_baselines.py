"""Baseline training methods: PGD-AT and Chen et al.'s IG-NORM / IG-SUM-NORM (REFERENCE §2)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wsol.methods.ig_norm  # noqa: F401  (registers ig_norm, ig_sum_norm)
import wsol.methods.pgd  # noqa: F401  (registers pgd)
from wsol.attacks import pgd_linf
from wsol.methods.base import build_method
from wsol.methods.ig_norm import IGNormConfig, ig_attack, ig_l1, loss_ig
from wsol.methods.pgd import PGDConfig
from wsol.models import build_model


class ModeRecorder(nn.Module):
    """A small conv net that records `self.training` at every forward."""

    def __init__(self, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act(), nn.Conv2d(4, 6, 3, stride=2),
                                 act(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        return self.net(x)


def _net(seed: int = 0, act: type[nn.Module] = nn.ReLU, dtype=torch.float32) -> ModeRecorder:
    torch.manual_seed(seed)
    return ModeRecorder(act).to(dtype)


def _batch(b: int = 3, size: int = 8, dtype=torch.float32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g, dtype=dtype), torch.arange(b) % 3


def _reference_ig(model, x, x_prime, y, m: int, every: int = 1) -> torch.Tensor:
    """Unvectorized IG of the loss: python loops over samples and path points."""
    out = []
    for b in range(x.shape[0]):
        total = torch.zeros_like(x[b])
        idx = range(every, m + 1, every)
        for i in idx:
            point = (x[b] + (i / m) * (x_prime[b] - x[b])).detach().requires_grad_(True)
            loss = F.cross_entropy(model(point[None]), y[b:b + 1])
            total = total + torch.autograd.grad(loss, point, create_graph=True)[0]
        out.append((x_prime[b] - x[b]) * total / len(idx))
    return torch.stack(out)


# -- configs -------------------------------------------------------------------------------------

def test_pgd_config_presets_and_validation():
    assert PGDConfig() == PGDConfig.cub()
    cub = PGDConfig.cub()
    assert (cub.epsilon, cub.steps, cub.step_size) == (2 / 255, 7, 0.5 / 255)
    c = PGDConfig.cifar()
    assert (c.epsilon, c.steps, c.step_size, c.random_start) == (8 / 255, 10, 2 / 255, True)
    with pytest.raises(ValueError, match="train, eval"):
        PGDConfig(attack_mode="test")
    with pytest.raises(ValueError, match="epsilon"):
        PGDConfig(epsilon=-1.0)
    with pytest.raises(ValueError, match="steps"):
        PGDConfig(steps=-1)
    cfg = PGDConfig()
    cfg.attack_mode = "bn"                    # mutated after construction: caught by the method
    with pytest.raises(ValueError, match="attack_mode"):
        build_method("pgd", SimpleNamespace(pgd=cfg))


def test_ig_config_presets_and_validation():
    d = IGNormConfig()
    assert (d.lam, d.path_steps, d.approx, d.epsilon, d.attack_steps, d.attack_step_size) == \
        (0.1, 50, 10, 8 / 255, 7, 2 / 255)
    assert IGNormConfig.preset("flower", "ig_sum_norm") == d
    assert IGNormConfig.preset("gtsrb", "ig_sum_norm").lam == 1.0
    mnist = IGNormConfig.preset("mnist", "ig_sum_norm")
    assert (mnist.lam, mnist.approx, mnist.epsilon, mnist.attack_steps) == (0.1, 5, 0.3, 40)
    with pytest.raises(ValueError, match="divide"):
        IGNormConfig(path_steps=50, approx=7)
    with pytest.raises(ValueError, match="train, eval"):
        IGNormConfig(attack_mode="x")
    with pytest.raises(ValueError, match="softplus_beta"):
        IGNormConfig(softplus_beta=0.0)
    with pytest.raises(ValueError, match="valid: mnist, gtsrb, flower"):
        IGNormConfig.preset("cifar")


# -- PGD-AT --------------------------------------------------------------------------------------

def test_pgd_method_builds_and_steps():
    model = build_model("vgg_gap_tiny", 3)
    x, y = _batch(2, 16)
    for cfg in (None, SimpleNamespace(pgd=PGDConfig.cifar(steps=2))):
        out = build_method("pgd", cfg).step(model, x, y)
        assert out.loss.ndim == 0 and math.isfinite(out.loss.item())
        assert out.logits.shape == (2, 3) and set(out.stats) == {"ce"}
        out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_pgd_method_trains_on_the_adversarial_input():
    model, (x, y) = _net(), _batch()
    method = build_method("pgd", SimpleNamespace(pgd=PGDConfig(epsilon=8 / 255, steps=3, step_size=2 / 255)))
    torch.manual_seed(7)
    out = method.step(model, x, y)
    torch.manual_seed(7)
    x_adv = pgd_linf(model, x, y, 8 / 255, 3, 2 / 255)
    with torch.no_grad():
        torch.testing.assert_close(out.logits, model(x_adv))
        assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)
    assert out.stats["ce"] == pytest.approx(F.cross_entropy(out.logits, y).item(), rel=1e-5)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_attack_mode_is_used_and_restored(mode):
    model, (x, y) = _net(), _batch()
    model.train()
    build_method("pgd", SimpleNamespace(pgd=PGDConfig(steps=2, attack_mode=mode))).step(model, x, y)
    assert model.seen[:2] == [mode == "train"] * 2 and model.seen[-1] is True and model.training
    model.seen.clear()
    cfg = IGNormConfig(path_steps=2, approx=1, attack_steps=1, attack_mode=mode)
    build_method("ig_norm", SimpleNamespace(ig_norm=cfg)).step(model, x, y)
    assert model.seen[0] is (mode == "train") and model.seen[-1] is True and model.training


# -- the loss IG -----------------------------------------------------------------------------------

@pytest.mark.parametrize("every,path_batch", [(1, None), (1, 4), (2, 1), (3, 2)])
def test_ig_matches_unvectorized_reference(every, path_batch):
    model, (x, y) = _net(dtype=torch.float64), _batch(dtype=torch.float64)
    x_prime = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    ig = loss_ig(model, x, x_prime, y, steps=6, every=every, create_graph=True, path_batch=path_batch)
    ref = _reference_ig(model, x, x_prime, y, m=6, every=every)
    torch.testing.assert_close(ig, ref, rtol=1e-10, atol=1e-12)
    # and so are the parameter gradients of |IG|_1 (the training term)
    grads = torch.autograd.grad(ig_l1(ig).sum(), list(model.parameters()))
    ref_grads = torch.autograd.grad(ig_l1(ref).sum(), list(model.parameters()))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-12)


def test_ig_completeness_on_a_smooth_model():
    model, (x, y) = _net(act=nn.Softplus, dtype=torch.float64), _batch(dtype=torch.float64)
    x_prime = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        gap = (F.cross_entropy(model(x_prime), y, reduction="none")
               - F.cross_entropy(model(x), y, reduction="none"))
    errors = [(loss_ig(model, x, x_prime, y, steps=m).flatten(1).sum(1) - gap).abs().max().item()
              for m in (5, 50, 500)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-2 * gap.abs().max().item()


def test_ig_is_zero_at_the_clean_point_and_detached_without_graph():
    model, (x, y) = _net(), _batch()
    assert torch.equal(loss_ig(model, x, x, y, steps=4), torch.zeros_like(x))
    ig = loss_ig(model, x, x.flip(0), y, steps=4)
    assert not ig.requires_grad and all(p.grad is None for p in model.parameters())


# -- IG-NORM / IG-SUM-NORM -----------------------------------------------------------------------

def test_inner_attack_increases_ig_approx_norm():
    model, (x, y) = _net(), _batch(4)
    cfg = IGNormConfig(path_steps=10, approx=2, epsilon=16 / 255, attack_steps=5, attack_step_size=4 / 255)
    start_cfg = IGNormConfig(path_steps=10, approx=2, epsilon=16 / 255, attack_steps=0)

    def approx_norm(x_prime):
        return ig_l1(loss_ig(model, x, x_prime, y, steps=10, every=2))

    torch.manual_seed(3)
    x_start = ig_attack(model, x, y, start_cfg, with_ce=False)      # the random start only
    torch.manual_seed(3)
    x_adv = ig_attack(model, x, y, cfg, with_ce=False)
    # (no random-noise comparison: to first order |IG|_1 ~ sum_j |delta_j g_j|, which every corner
    # of the L-inf ball nearly maximises, so sign noise of size eps is already a strong point)
    assert (approx_norm(x_adv) > approx_norm(x_start)).all()
    assert (x_adv - x).abs().max() <= 16 / 255 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert all(p.grad is None for p in model.parameters())


def test_ig_sum_norm_attack_also_raises_ce():
    model, (x, y) = _net(), _batch(4)
    cfg = IGNormConfig(lam=0.1, path_steps=4, approx=2, epsilon=16 / 255, attack_steps=5,
                       attack_step_size=4 / 255)
    x_adv = ig_attack(model, x, y, cfg, with_ce=True)
    with torch.no_grad():
        ce = lambda t: F.cross_entropy(model(t), y, reduction="none")  # noqa: E731
        assert (ce(x_adv) > ce(x)).all()


@pytest.mark.parametrize("name", ["ig_norm", "ig_sum_norm"])
def test_ig_term_reaches_parameter_gradients(name):
    model, (x, y) = _net(), _batch()
    base = dict(path_steps=4, approx=2, attack_steps=2)
    grads = {}
    for lam in (0.0, 0.5):
        torch.manual_seed(5)
        out = build_method(name, SimpleNamespace(**{name: IGNormConfig(lam=lam, **base)})).step(model, x, y)
        model.zero_grad(set_to_none=True)
        out.loss.backward()
        grads[lam] = [p.grad.clone() for p in model.parameters()]
    if name == "ig_norm":   # the attack does not depend on lam: the difference is lam * d|IG|/dtheta
        torch.manual_seed(5)
        x_adv = ig_attack(model, x, y, IGNormConfig(lam=0.5, **base), with_ce=False)
        term = ig_l1(loss_ig(model, x, x_adv, y, steps=4, create_graph=True)).mean()
        expected = torch.autograd.grad(term, list(model.parameters()))
        for g1, g0, e in zip(grads[0.5], grads[0.0], expected):
            torch.testing.assert_close(g1 - g0, 0.5 * e, rtol=1e-4, atol=1e-7)
        assert sum(e.abs().sum() for e in expected) > 0
    else:
        assert any(not torch.allclose(a, b) for a, b in zip(grads[0.5], grads[0.0]))


@pytest.mark.parametrize("name", ["ig_norm", "ig_sum_norm"])
def test_ig_methods_build_and_step(name):
    x, y = _batch(2, 16)
    small = IGNormConfig(path_steps=4, approx=2, attack_steps=1, path_batch=2)
    default = build_method(name, None)
    assert default.cfg == IGNormConfig()
    # the default (Flower) config on the small conv net; a small config on the tiny VGG-GAP
    for method, model in ((default, _net()), (build_method(name, SimpleNamespace(**{name: small})),
                                              build_model("vgg_gap_tiny", 3))):
        out = method.step(model, x, y)
        assert out.loss.ndim == 0 and math.isfinite(out.loss.item())
        assert out.logits.shape == (2, 3) and set(out.stats) == {"ce", "ig_norm"}
        assert out.loss.item() == pytest.approx(out.stats["ce"] + method.cfg.lam * out.stats["ig_norm"],
                                                rel=1e-5)
        out.loss.backward()
        assert all(p.grad is not None for p in model.parameters())


def test_softplus_beta_swaps_only_inside_the_step():
    model, (x, y) = _net(), _batch()
    cfg = IGNormConfig(path_steps=4, approx=2, attack_steps=1, softplus_beta=10.0)
    out = build_method("ig_sum_norm", SimpleNamespace(ig_sum_norm=cfg)).step(model, x, y)
    assert math.isfinite(out.loss.item())
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 2
    assert F.relu(torch.tensor([-1.0])).item() == 0.0


@pytest.mark.parametrize("name,arch", [("ig_norm", "resnet_tiny"), ("ig_sum_norm", "vgg_gap_tiny")])
def test_ig_methods_lean_double_backward_equals_the_plain_one_in_float64(name, arch, monkeypatch):
    """The attack runs in `input_second_order`, the training IG term in `lean_double_backward`: x'
    (every sign step), CE, |IG|_1 and the parameter gradients as PyTorch's own double backward
    computes them (Softplus surrogate, train-mode BatchNorm)."""
    import contextlib

    import wsol.methods.ig_norm as ig_module
    from wsol.models.second_order import plain_double_backward

    x, y = _batch(2, 16, dtype=torch.float64)
    cfg = IGNormConfig(path_steps=2, approx=1, attack_steps=2, softplus_beta=5.0)
    results = []
    for plain in (False, True):
        torch.manual_seed(0)
        model = build_model(arch, 3).double().train()
        seen = []
        with monkeypatch.context() as mp, plain_double_backward() if plain else contextlib.nullcontext():
            real = ig_module.ig_attack
            mp.setattr(ig_module, "ig_attack", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
            torch.manual_seed(5)
            out = build_method(name, SimpleNamespace(**{name: cfg})).step(model, x, y)
            out.loss.backward()
        results.append((seen[0], out.stats, [p.grad.clone() for p in model.parameters()]))
    (xa, stats, grads), (xb, stats_b, grads_b) = results
    assert not torch.equal(xa, x) and torch.equal(xa, xb)
    assert stats == pytest.approx(stats_b, rel=1e-12)
    for g, h in zip(grads, grads_b):
        torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-14)
