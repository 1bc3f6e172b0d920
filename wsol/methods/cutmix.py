"""CutMix (Yun et al., ICCV 2019) as wsolevaluation trains it (REFERENCE.md §12.3.4).

One step on a clean batch (x, y), following wsolevaluation's main.py ``_wsol_training`` and
``wsol/method/cutmix.py``:

1. Mix only when ``cutmix_prob > np.random.rand(1) and cutmix_beta > 0`` (the draw is made on
   every step, before beta is looked at; with the defaults every batch is mixed). Otherwise the
   step is plain CE(f(x), y).
2. lam ~ np.random.beta(beta, beta); perm = torch.randperm(B) (the default CPU generator, as the
   reference draws it before ``.cuda()``); y_a = y, y_b = y[perm].
3. Box: r = sqrt(1 - lam), cut2 = int(H r), cut3 = int(W r); c2 = np.random.randint(H), then
   c3 = np.random.randint(W); rows [clip(c2 - cut2//2, 0, H), clip(c2 + cut2//2, 0, H)), columns
   likewise with c3, cut3, W. (The reference calls dim 2 "w" and dim 3 "h": naming only.)
4. x_mix = x with the box copied from x[perm]. The reference does this in place on normalized
   images; a pixel copy commutes with the per-channel normalization, so copying [0,1] pixels
   gives the same normalized image. We copy x first: the caller's batch is left as it was.
5. lam' = 1 - area(box) / (H W), recomputed from the clipped box;
   loss = CE(z, y_a) * lam' + CE(z, y_b) * (1 - lam') with z = f(x_mix).

The logits returned are z (the trainer's accuracy compares them with y = y_a, as main.py logs).
``np.int`` in the reference is the builtin ``int`` (removed from NumPy >= 1.24).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsol.settings import NONNEG, UNIT, check_limits

from wsol.space import InverseUniform, Uniform
from .base import StepOutput, TrainingMethod, register_method

__all__ = ["CutMixConfig", "CutMixMethod", "cutmix", "rand_bbox"]


@dataclass
class CutMixConfig:
    """Method "cutmix" (REFERENCE §12.3.4). Defaults: wsolevaluation's config.py:230-233."""

    LIMITS: ClassVar[dict] = {"cutmix_beta": NONNEG, "cutmix_prob": UNIT}

    cutmix_beta: float = 1.0           # lam ~ Beta(beta, beta); 0: never mix (as the reference)
    cutmix_prob: float = 1.0           # probability that a batch is mixed

    def __post_init__(self) -> None:
        check_limits(type(self), vars(self), "cutmix")


def rand_bbox(size: torch.Size | tuple[int, ...], lam: float) -> tuple[int, int, int, int]:
    """The box (a2, a3, b2, b3): rows a2:b2 (dim 2), columns a3:b3 (dim 3) of an N x C x H x W batch.

    Draws ``np.random.randint(H)`` then ``np.random.randint(W)`` (wsolevaluation cutmix.py:25-40).
    """
    h, w = size[2], size[3]
    cut_rat = np.sqrt(1. - lam)
    cut_h, cut_w = int(h * cut_rat), int(w * cut_rat)
    ch = np.random.randint(h)
    cw = np.random.randint(w)
    a2, a3 = np.clip(ch - cut_h // 2, 0, h), np.clip(cw - cut_w // 2, 0, w)
    b2, b3 = np.clip(ch + cut_h // 2, 0, h), np.clip(cw + cut_w // 2, 0, w)
    return int(a2), int(a3), int(b2), int(b3)


def cutmix(x: torch.Tensor, y: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """(x_mix (B,C,H,W), y_a (B,), y_b (B,), lam') as wsolevaluation's ``cutmix``, on a copy of x.

    Draws, in order: ``np.random.beta(beta, beta)``, ``torch.randperm(B)`` (CPU generator),
    ``np.random.randint(H)``, ``np.random.randint(W)``. lam' is a Python float.
    """
    lam = np.random.beta(beta, beta)
    perm = torch.randperm(x.shape[0]).to(x.device)
    y_a, y_b = y.clone().detach(), y[perm].clone().detach()
    a2, a3, b2, b3 = rand_bbox(x.shape, lam)
    mixed = x.clone()
    mixed[:, :, a2:b2, a3:b3] = x[perm, :, a2:b2, a3:b3]
    lam = 1 - ((b2 - a2) * (b3 - a3) / (x.shape[-1] * x.shape[-2]))
    return mixed, y_a, y_b, float(lam)


@register_method("cutmix", settings=CutMixConfig)
class CutMixMethod(TrainingMethod):
    """lam' CE(f(x_mix), y_a) + (1 - lam') CE(f(x_mix), y_b) when the batch is mixed, else CE(f(x), y);
    logits of the image trained on; stats {"ce", "lam"} (lam 1.0 for an unmixed batch)."""

    def search_space(self) -> dict:
        """lr, batch size, the size prior beta = 1/u with u uniform on (0, 2] and the mix rate
        (uniform on [0, 1]), the paper's."""
        return {**super().search_space(), "method.cutmix.cutmix_beta": InverseUniform(0.0, 2.0),
                "method.cutmix.cutmix_prob": Uniform(0.0, 1.0)}

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        c = self.cfg
        if c.cutmix_prob > np.random.rand(1) and c.cutmix_beta > 0:   # main.py's order: rand drawn first
            x_mix, y_a, y_b, lam = cutmix(x, y, c.cutmix_beta)
            logits = model(x_mix)
            loss = F.cross_entropy(logits, y_a) * lam + F.cross_entropy(logits, y_b) * (1. - lam)
        else:
            logits, lam = model(x), 1.0
            loss = F.cross_entropy(logits, y)
        return StepOutput(loss, logits.detach(), {"ce": loss.item(), "lam": lam})
