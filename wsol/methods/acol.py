"""ACoL (Zhang et al., CVPR 2018), wsolevaluation's `--wsol_method acol` (REFERENCE §12.3.2).

The model is `wsol.models.acol`'s (`build_model(arch, C, architecture_type="acol",
acol_threshold=...)`, which `model_options` asks the trainer for): two classifiers on the trunk
feature, the second on the feature with branch A's GT-class attention erased. The loss is
wsolevaluation's `get_loss` ([W] method/acol.py:42-44):

    loss = CE(logits, y) + CE(logit_b, y)

with the GT label driving the erasing. The reported accuracy uses `logits` (branch A). At test
time the model's `class_maps` gives wsolevaluation's CAM (max of the two min-maxed branch maps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from wsol.models.acol import ACOL_ARCHS
from wsol.settings import UNIT, check_limits

from wsol.space import Uniform
from .base import StepOutput, TrainingMethod, register_method

__all__ = ["ACoLConfig", "ACoLMethod"]


@dataclass
class ACoLConfig:
    """Method "acol": wsolevaluation's hyperparameter name and default ([W] config.py:212)."""

    LIMITS: ClassVar[dict] = {"acol_threshold": UNIT}

    acol_threshold: float = 0.7   # delta: positions with min-max attention >= delta are erased for branch B

    def __post_init__(self) -> None:
        check_limits(type(self), vars(self), "acol")


@register_method("acol", settings=ACoLConfig)
class ACoLMethod(TrainingMethod):
    """CE(branch A, y) + CE(branch B on the erased feature, y), weight 1 each."""

    supported_archs = ACOL_ARCHS

    def search_space(self) -> dict:
        """lr, batch size, the erasing threshold delta (uniform on [0, 1], the paper's)."""
        return {**super().search_space(), "method.acol.acol_threshold": Uniform(0.0, 1.0)}

    def model_options(self) -> dict:
        """ACoL's heads on the backbone, with this run's threshold."""
        return {"architecture_type": "acol", "acol_threshold": self.cfg.acol_threshold}

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        if not callable(getattr(model, "acol_outputs", None)):
            raise ValueError(f"method 'acol' needs a model built with architecture_type='acol' "
                             f"(wsol.models.acol); got {type(model).__name__}")
        out = model.acol_outputs(x, y)
        ce = F.cross_entropy(out["logits"], y.long())
        ce_b = F.cross_entropy(out["logit_b"], y.long())
        return StepOutput(ce + ce_b, out["logits"].detach(), {"ce": ce.item(), "ce_b": ce_b.item()})
