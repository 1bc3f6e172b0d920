"""IG-NORM and IG-SUM-NORM (Chen et al., NeurIPS 2019; REFERENCE.md §2).

Both regularise the Integrated Gradients of the **loss** L = CE(f(.), y) along the straight
path x -> x' (right Riemann sum with m points):

    IG_j(x, x') = (x'_j - x_j) * (1/m) * sum_{i=1..m} dL(x + (i/m)(x' - x)) / dx_j

    ig_norm:      min CE(x)  + lam * mean_b |IG(x, x'_b)|_1,  x' = PGD maximising |IG_approx|_1
    ig_sum_norm:  min CE(x') + lam * mean_b |IG(x, x'_b)|_1,  x' = PGD maximising CE(x') + lam |IG_approx|_1

IG_approx keeps every `approx`-th path point (i = approx, 2 approx, ..., m) and averages over
those m/approx points. The inner PGD is L-inf with a random start: at x' = x the IG is zero and
so is the gradient of |IG|_1, so an attack without one never moves.

Chen's code sums CE and |IG|_1 over the batch; we average both, which is the same objective
up to the factor B (so Chen's learning rates, tuned for the sum, correspond to B times larger
ones here). Per-sample losses are summed before each input gradient, so every sample's
gradient is its own as long as the model has no cross-sample layers (BatchNorm in train mode
couples them, as in any batched attack).

Presets (`IGNormConfig.preset(dataset, method)`, REFERENCE §2 table, 0-255 values / 255):

    dataset   lam NORM / SUM   m / approx   inner PGD eps / steps / step
    mnist     1.0 / 0.1        50 / 5       0.3 / 40 / 0.01
    gtsrb     1.0 / 1.0        50 / 10      8/255 / 7 / 2/255
    flower    0.1 / 0.1        50 / 10      8/255 / 7 / 2/255     (the IGNormConfig defaults)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from wsol.attacks.pgd import pgd_maximize
from wsol.models import input_second_order, lean_double_backward, smooth_activations

from wsol.space import LogUniform
from .base import StepOutput, TrainingMethod, eval_mode, register_method
from .pgd import ATTACK_MODES, check_attack_mode

__all__ = ["IGNormConfig", "IGNormMethod", "IGSumNormMethod", "ig_attack", "ig_l1", "loss_ig",
           "path_alphas"]

# REFERENCE §2 table: dataset -> (lam ig_norm, lam ig_sum_norm, m, approx, eps, steps, step size).
_PRESETS = {
    "mnist": (1.0, 0.1, 50, 5, 0.3, 40, 0.01),
    "gtsrb": (1.0, 1.0, 50, 10, 8 / 255, 7, 2 / 255),
    "flower": (0.1, 0.1, 50, 10, 8 / 255, 7, 2 / 255),
}
_VARIANTS = ("ig_norm", "ig_sum_norm")


@dataclass
class IGNormConfig:
    """Methods "ig_norm" and "ig_sum_norm" (each gets its own instance).

    Defaults: the Flower-17 row of REFERENCE §2 (Chen et al.'s Flower configs), the same for
    both variants.
    """

    CHOICES: ClassVar[dict] = {"attack_mode": ATTACK_MODES}

    lam: float = 0.1                   # lambda on mean_b |IG_b|_1 (and inside the SUM attack)
    path_steps: int = 50               # m right-Riemann points of the training IG
    approx: int = 10                   # the attack's IG_approx uses every approx-th point (m/approx)
    epsilon: float = 8 / 255           # inner L-inf PGD radius, [0,1] units
    attack_steps: int = 7
    attack_step_size: float = 2 / 255  # [0,1] units
    random_start: bool = True          # x + U(-eps, eps); without it the attack cannot leave x
    attack_mode: str = "train"         # "train" (as the model is, Chen / Madry) or "eval"
    softplus_beta: float | None = None  # Softplus(beta) for the IG passes; None: the model as is (Chen)
    path_batch: int | None = None      # path points per forward pass; None: all at once

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        check_attack_mode(self.attack_mode)
        for name in ("lam", "epsilon", "attack_step_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name, low in (("path_steps", 1), ("approx", 1), ("attack_steps", 0)):
            v = getattr(self, name)
            if int(v) != v or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v}")
        if self.path_steps % self.approx:
            raise ValueError(f"approx ({self.approx}) must divide path_steps "
                             f"({self.path_steps}) so IG_approx is a right Riemann sum")
        if self.softplus_beta is not None and self.softplus_beta <= 0:
            raise ValueError(f"softplus_beta must be > 0 or null, got {self.softplus_beta}")
        if self.path_batch is not None and (int(self.path_batch) != self.path_batch or self.path_batch < 1):
            raise ValueError(f"path_batch must be an integer >= 1 or null, got {self.path_batch}")

    @classmethod
    def preset(cls, dataset: str, method: str = "ig_norm", **overrides) -> IGNormConfig:
        """Chen et al.'s setting for `dataset` in {mnist, gtsrb, flower} and `method`."""
        if dataset not in _PRESETS:
            raise ValueError(f"unknown IG-NORM preset {dataset!r}; valid: {', '.join(_PRESETS)}")
        if method not in _VARIANTS:
            raise ValueError(f"unknown IG-NORM method {method!r}; valid: {', '.join(_VARIANTS)}")
        lam_norm, lam_sum, m, approx, eps, steps, alpha = _PRESETS[dataset]
        values = {"lam": lam_norm if method == "ig_norm" else lam_sum, "path_steps": m,
                  "approx": approx, "epsilon": eps, "attack_steps": steps, "attack_step_size": alpha}
        return cls(**{**values, **overrides})


# -- the loss IG -------------------------------------------------------------------------------

def path_alphas(steps: int, every: int = 1, device=None, dtype=None) -> torch.Tensor:
    """Right-Riemann path positions i/m for i = every, 2*every, ..., m: () -> (m // every,)."""
    if steps < 1 or every < 1 or steps % every:
        raise ValueError(f"need steps >= 1 and every >= 1 dividing steps, got {steps}, {every}")
    return torch.arange(every, steps + 1, every, device=device, dtype=dtype) / steps


def _path_gradients(model: nn.Module, x: torch.Tensor, x_prime: torch.Tensor, y: torch.Tensor,
                    alphas: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """sum_i dL_b(x + a_i (x' - x)) / dx over the P alphas, each sample its own: -> (B,...)."""
    p, b = alphas.shape[0], x.shape[0]
    a = alphas.view(p, 1, *([1] * (x.ndim - 1)))
    points = (x.unsqueeze(0) + a * (x_prime - x).unsqueeze(0)).reshape(p * b, *x.shape[1:])
    if not points.requires_grad:       # x' is a constant: differentiate w.r.t. the points
        points = points.detach().requires_grad_(True)
    loss = F.cross_entropy(model(points), y.repeat(p), reduction="sum")
    (grad,) = torch.autograd.grad(loss, points, create_graph=create_graph)
    return grad.view(p, b, *x.shape[1:]).sum(0)


def loss_ig(model: nn.Module, x: torch.Tensor, x_prime: torch.Tensor, y: torch.Tensor,
            steps: int = 50, every: int = 1, create_graph: bool = False,
            path_batch: int | None = None) -> torch.Tensor:
    """IG of the per-sample loss CE(f(.), y_b) along x -> x' (right Riemann, m = `steps`).

    IG_j = (x'_j - x_j) * mean_{i in I} dL(x + (i/m)(x' - x))/dx_j with I = {every, 2 every, ..., m}
    (every = 1: the full sum; every = approx: Chen's IG_approx).

    Args:
        x, x_prime: (B,C,H,W) in [0,1]. x' may require grad (an attack differentiating through
            the IG); x is treated as a constant.
        y: labels (B,) long.
        create_graph: keep the graph so the result is differentiable w.r.t. the model
            parameters and x' (training and the inner attack).
        path_batch: path points per forward pass (each pass has path_batch * B rows); None:
            all points in one pass. With create_graph every pass's graph is kept until the
            caller's backward, so batching then saves little memory.

    Returns:
        IG (B,C,H,W) in loss units; sum_j IG_j ~= L(x') - L(x) as m grows (completeness, for a
        model smooth along the path).
    """
    alphas = path_alphas(steps, every, device=x.device, dtype=x.dtype)
    if path_batch is not None and path_batch < 1:
        raise ValueError(f"path_batch must be >= 1 or None, got {path_batch}")
    per_pass = len(alphas) if path_batch is None else int(path_batch)
    x = x.detach()
    with torch.enable_grad():
        total = sum(_path_gradients(model, x, x_prime, y, alphas[s:s + per_pass], create_graph)
                    for s in range(0, len(alphas), per_pass))
    return (x_prime - x) * total / len(alphas)


def ig_l1(ig: torch.Tensor) -> torch.Tensor:
    """|IG_b|_1 per sample: (B,...) -> (B,)."""
    return ig.flatten(1).abs().sum(1)


# -- the inner attack and the two methods -------------------------------------------------------

def _activations(model: nn.Module, beta: float | None):
    """smooth_activations(model, beta), or nothing when beta is None."""
    return contextlib.nullcontext(model) if beta is None else smooth_activations(model, beta)


def ig_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: IGNormConfig,
              with_ce: bool) -> torch.Tensor:
    """x' (B,C,H,W), detached: L-inf PGD maximising sum_b |IG_approx_b|_1 (ig_norm, with_ce=False)
    or sum_b CE(f(x'_b), y_b) + lam |IG_approx_b|_1 (ig_sum_norm, with_ce=True).

    The IG passes run under Softplus(cfg.softplus_beta) when it is set; the CE term uses the
    model as is. The model's mode is switched to eval for cfg.attack_mode == "eval" and restored.
    The attack needs input gradients only, so it runs inside `wsol.models.input_second_order`
    (parameters frozen, the lean double backward): the same x' as PyTorch's own double backward
    (tests/test_methods_baselines.py, float64).
    """
    def objective(x_adv: torch.Tensor) -> torch.Tensor:
        with _activations(model, cfg.softplus_beta):
            ig = loss_ig(model, x, x_adv, y, cfg.path_steps, cfg.approx, True, cfg.path_batch)
        value = ig_l1(ig).sum()
        if with_ce:
            value = F.cross_entropy(model(x_adv), y, reduction="sum") + cfg.lam * value
        return value

    with eval_mode(model, cfg.attack_mode == "eval"), input_second_order(model):
        return pgd_maximize(objective, x, cfg.epsilon, cfg.attack_steps, cfg.attack_step_size,
                            "linf", cfg.random_start)


@register_method("ig_norm", settings=IGNormConfig)
class IGNormMethod(TrainingMethod):
    """IG-NORM: CE(x) + lam * mean_b |IG(x, x'_b)|_1; logits of x; stats {"ce", "ig_norm"}."""

    #: CE on x' and the CE term inside the attack (IG-SUM-NORM) instead of CE on x (IG-NORM)
    adversarial_ce = False
    localization_map = "grad"

    def search_space(self) -> dict:
        """lr, batch size, lambda (ours: log-uniform 0.01-1) and the attack radius (0.5-8/255)."""
        name = f"method.{self.name}"
        return {**super().search_space(), f"{name}.lam": LogUniform(0.01, 1.0),
                f"{name}.epsilon": LogUniform(0.5 / 255, 8 / 255)}

    def __init__(self, cfg: IGNormConfig | None = None) -> None:
        cfg = IGNormConfig() if cfg is None else cfg
        cfg.validate()
        super().__init__(cfg)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        c = self.cfg
        x_adv = ig_attack(model, x, y, c, with_ce=self.adversarial_ce)
        logits = model(x_adv if self.adversarial_ce else x)
        ce = F.cross_entropy(logits, y)
        with lean_double_backward(model), _activations(model, c.softplus_beta):
            ig = loss_ig(model, x, x_adv, y, c.path_steps, 1, True, c.path_batch)
        norm = ig_l1(ig).mean()
        loss = ce + c.lam * norm
        return StepOutput(loss, logits.detach(), {"ce": ce.item(), "ig_norm": norm.item()})


@register_method("ig_sum_norm", settings=IGNormConfig)
class IGSumNormMethod(IGNormMethod):
    """IG-SUM-NORM: CE(x') + lam * mean_b |IG(x, x'_b)|_1; logits of x'; stats {"ce", "ig_norm"}."""

    adversarial_ce = True
