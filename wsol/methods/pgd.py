"""PGD adversarial training (Madry et al.): min_theta E max_{|delta|_inf <= eps} CE(f(x + delta), y).

REFERENCE.md §2: start at x + U(-eps, eps), K steps x' <- clip01(proj_eps(x' + alpha * sign grad CE)),
train with CE on x' only. Presets (REFERENCE §2 table), all in [0,1] pixel units:

    PGDConfig.cub()    eps 2/255, K 7,  alpha 0.5/255   (ART's CUB PGD-AT script; the defaults)
    PGDConfig.cifar()  eps 8/255, K 10, alpha 2/255     (MadryLab cifar10_challenge, "PGD-10")

ART's SVHN/GTSRB/Flower rows are "PGD-7" (MadryLab `robustness` default: 7 steps); their
epsilon is not given in REFERENCE.md, so no preset is offered for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from wsol.attacks.pgd import pgd_linf

from wsol.space import LogUniform
from .base import StepOutput, TrainingMethod, eval_mode, register_method

__all__ = ["ATTACK_MODES", "PGDConfig", "PGDMethod", "check_attack_mode"]

#: "train": attack the model as it is (train mode, as Madry's and ART's code); "eval": eval mode.
ATTACK_MODES = ("train", "eval")


def check_attack_mode(mode: str) -> None:
    """Raise ValueError unless `mode` is one of ATTACK_MODES."""
    if mode not in ATTACK_MODES:
        raise ValueError(f"unknown attack_mode {mode!r}; valid values: {', '.join(ATTACK_MODES)}")


@dataclass
class PGDConfig:
    """Method "pgd". Defaults: the CUB preset (ART's PGD-AT script, REFERENCE §2)."""

    CHOICES: ClassVar[dict] = {"attack_mode": ATTACK_MODES}

    epsilon: float = 2 / 255           # L-inf radius, [0,1] units
    steps: int = 7                     # K
    step_size: float = 0.5 / 255       # alpha, [0,1] units
    random_start: bool = True          # x + U(-eps, eps), clipped to [0,1]
    attack_mode: str = "train"         # "train" (Madry / ART) or "eval" (BN running stats, no dropout)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        check_attack_mode(self.attack_mode)
        for name in ("epsilon", "step_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {self.steps}")

    @classmethod
    def cub(cls, **overrides) -> PGDConfig:
        """ART's CUB PGD-AT script: eps 2/255, K 7, alpha 0.5/255, random start."""
        return cls(**{"epsilon": 2 / 255, "steps": 7, "step_size": 0.5 / 255, **overrides})

    @classmethod
    def cifar(cls, **overrides) -> PGDConfig:
        """MadryLab cifar10_challenge: eps 8/255, K 10, alpha 2/255, random start."""
        return cls(**{"epsilon": 8 / 255, "steps": 10, "step_size": 2 / 255, **overrides})


@register_method("pgd", settings=PGDConfig)
class PGDMethod(TrainingMethod):
    """CE(f(x'), y) with x' = L-inf PGD on CE; logits are those of x'; stats {"ce"}."""

    localization_map = "grad"   # the ART paper's PGD-AT row is scored on gradient maps

    def search_space(self) -> dict:
        """lr, batch size, the attack's radius and step size (ours: log-uniform over 0.5-8/255
        and 0.25-2/255); the step count stays as configured."""
        return {**super().search_space(), "method.pgd.epsilon": LogUniform(0.5 / 255, 8 / 255),
                "method.pgd.step_size": LogUniform(0.25 / 255, 2 / 255)}

    def __init__(self, cfg: PGDConfig | None = None) -> None:
        cfg = PGDConfig() if cfg is None else cfg
        cfg.validate()
        super().__init__(cfg)

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x' (B,3,H,W) in [0,1], detached; the model's mode is restored afterwards."""
        c = self.cfg
        with eval_mode(model, c.attack_mode == "eval"):
            return pgd_linf(model, x, y, c.epsilon, c.steps, c.step_size, c.random_start)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        x_adv = self.attack(model, x, y)
        logits = model(x_adv)
        ce = F.cross_entropy(logits, y)
        return StepOutput(ce, logits.detach(), {"ce": ce.item()})
