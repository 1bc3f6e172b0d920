"""PGD (L-inf and L2) in pixel space: ball and range, ascent, a hand-worked linear case, side effects."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol.attacks import pgd_l2, pgd_linf, pgd_maximize
from wsol.models import build_model


class Linear2(nn.Module):
    """z = W flatten(x) + b with 2 classes: CE's input gradient is (p - onehot) W, so for label y
    its sign is sign(w_{1-y} - w_y) everywhere and the best L-inf step is eps * that sign."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dims, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 3))


def _ce_per_sample(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def test_linf_stays_in_ball_and_unit_range():
    torch.manual_seed(0)
    model = build_model("vgg_gap_tiny", 3)
    x = torch.rand(3, 3, 16, 16)
    x[0, :, :4] = 0.0                      # pixels at the range ends, where clipping binds
    x[1, :, :4] = 1.0
    eps = 8 / 255
    x_adv = pgd_linf(model, x, torch.tensor([0, 1, 2]), eps, steps=4, step_size=3 / 255)
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= eps + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_linf_raises_loss_over_clean_and_random_noise():
    model = _mlp()
    torch.manual_seed(1)
    x = torch.rand(16, 3, 8, 8) * 0.8 + 0.1
    y = torch.randint(0, 3, (16,))
    eps = 8 / 255
    x_adv = pgd_linf(model, x, y, eps, steps=10, step_size=2 / 255)
    noise = (x + eps * torch.randn_like(x).sign()).clamp(0, 1)
    adv, clean, rand = (_ce_per_sample(model, t, y) for t in (x_adv, x, noise))
    assert (adv > clean).all()
    assert (adv > rand).all()


def test_linf_matches_the_hand_worked_linear_optimum():
    torch.manual_seed(2)
    model = Linear2(3 * 4 * 4)
    x = torch.rand(4, 3, 4, 4) * 0.6 + 0.2     # the eps-ball stays inside [0,1]
    y = torch.tensor([0, 1, 0, 1])
    eps = 0.05
    w = model.fc.weight.detach()                # (2, D)
    direction = (w[1 - y] - w[y]).sign().view_as(x)
    x_adv = pgd_linf(model, x, y, eps, steps=10, step_size=0.02)   # 10 * 0.02 >= 2 eps
    torch.testing.assert_close(x_adv, x + eps * direction, rtol=0, atol=1e-6)


def test_l2_matches_the_hand_worked_linear_optimum_and_stays_in_ball():
    torch.manual_seed(3)
    model = Linear2(3 * 4 * 4)
    x = torch.rand(4, 3, 4, 4) * 0.6 + 0.2
    y = torch.tensor([0, 1, 1, 0])
    eps = 0.1
    w = model.fc.weight.detach()
    d = (w[1 - y] - w[y])
    expected = x + (eps * d / d.norm(dim=1, keepdim=True)).view_as(x)
    x_adv = pgd_l2(model, x, y, eps, steps=5, step_size=0.03, random_start=False)
    torch.testing.assert_close(x_adv, expected, rtol=0, atol=1e-6)
    x_rand = pgd_l2(model, x, y, eps, steps=3, step_size=0.05)
    assert ((x_rand - x).flatten(1).norm(dim=1) <= eps + 1e-6).all()
    assert x_rand.min() >= 0 and x_rand.max() <= 1


def test_l2_random_start_and_clipping_stay_in_ball():
    torch.manual_seed(4)
    model = _mlp()
    x = torch.rand(8, 3, 8, 8)
    x[:4] = x[:4].round()                       # saturated images: the clip binds
    eps = 0.5
    for steps in (0, 4):
        x_adv = pgd_l2(model, x, torch.randint(0, 3, (8,)), eps, steps=steps, step_size=0.2)
        assert ((x_adv - x).flatten(1).norm(dim=1) <= eps + 1e-5).all()
        assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize("attack", [pgd_linf, pgd_l2])
def test_zero_steps_without_random_start_returns_x(attack):
    model = _mlp()
    x = torch.rand(2, 3, 8, 8)
    x_adv = attack(model, x, torch.tensor([0, 1]), 0.1, steps=0, step_size=0.01, random_start=False)
    assert torch.equal(x_adv, x) and x_adv is not x


@pytest.mark.parametrize("training", [True, False])
def test_model_mode_and_parameter_grads_untouched(training):
    model = build_model("vgg_gap_tiny", 3).train(training)
    x = torch.rand(2, 3, 16, 16)
    pgd_linf(model, x, torch.tensor([0, 2]), 4 / 255, steps=2, step_size=2 / 255)
    pgd_l2(model, x, torch.tensor([0, 2]), 0.5, steps=2, step_size=0.2)
    assert model.training is training
    assert all(p.grad is None for p in model.parameters())


def test_existing_parameter_grads_are_kept():
    model = _mlp()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    pgd_linf(model, torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), 4 / 255, 2, 2 / 255)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in model.parameters())


def test_attack_works_under_no_grad():
    model = _mlp()
    torch.manual_seed(5)
    x, y = torch.rand(4, 3, 8, 8), torch.randint(0, 3, (4,))
    with torch.no_grad():
        x_adv = pgd_linf(model, x, y, 8 / 255, steps=5, step_size=2 / 255)
    assert (_ce_per_sample(model, x_adv, y) > _ce_per_sample(model, x, y)).all()


def test_custom_loss_fn_and_objective():
    model = _mlp()
    x = torch.rand(4, 3, 8, 8)
    y = torch.zeros(4, dtype=torch.long)
    logit0 = lambda z, t: z.gather(1, t[:, None]).sum()   # noqa: E731 - maximise the class-0 logit
    x_adv = pgd_linf(model, x, y, 8 / 255, steps=5, step_size=2 / 255, loss_fn=logit0)
    with torch.no_grad():
        assert (model(x_adv)[:, 0] > model(x)[:, 0]).all()
    # pgd_maximize on a pixel objective: maximising sum(x) goes to the top of the ball
    top = pgd_maximize(lambda t: t.sum(), x * 0.5, 0.1, steps=3, step_size=0.05, random_start=False)
    torch.testing.assert_close(top, x * 0.5 + 0.1)


def test_bad_arguments_raise():
    model, x, y = _mlp(), torch.rand(1, 3, 8, 8), torch.tensor([0])
    with pytest.raises(ValueError, match="epsilon"):
        pgd_linf(model, x, y, -0.1, 1, 0.01)
    with pytest.raises(ValueError, match="steps"):
        pgd_linf(model, x, y, 0.1, -1, 0.01)
    with pytest.raises(ValueError, match="linf, l2"):
        pgd_maximize(lambda t: t.sum(), x, 0.1, 1, 0.01, norm="l1")
    with pytest.raises(ValueError, match="scalar"):
        pgd_maximize(lambda t: t, x, 0.1, 1, 0.01)


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_linf_matches_torchattacks(random_start):
    """Our L-inf PGD against torchattacks.PGD (REFERENCE §7.4), same start and steps, eval-mode model."""
    torchattacks = pytest.importorskip("torchattacks")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).double().eval()
    x, y = torch.rand(6, 3, 12, 12, dtype=torch.float64), torch.randint(0, 5, (6,))
    eps, alpha, steps = 8 / 255, 2 / 255, 10
    torch.manual_seed(1)
    ours = pgd_linf(model, x, y, eps, steps=steps, step_size=alpha, random_start=random_start)
    torch.manual_seed(1)
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert (ours - x).abs().max() <= eps + 1e-12
