"""Natural training (clean cross-entropy) and ADL (the same loss, the model's ADL layers on)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsol.space import Uniform
from .base import StepOutput, TrainingMethod, register_method

__all__ = ["NaturalMethod", "ADLMethod"]


@register_method("natural")
class NaturalMethod(TrainingMethod):
    """CE(f(x), y): same architecture and schedule as ART, no attack (REFERENCE §2)."""

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        return StepOutput(ce, logits.detach(), {"ce": ce.item()})


@register_method("adl")
class ADLMethod(NaturalMethod):
    """ADL (Choe & Shim, CVPR 2019): natural training of a model built with `adl=True`.

    The ADL layers act in train mode only; the trainer builds the model with them
    (config `model.adl` is forced on, with `model.adl_drop_rate` / `model.adl_gamma`).
    """

    needs_adl = True

    def search_space(self) -> dict:
        """lr, batch size, the drop rate and the erasing threshold gamma (uniform on [0, 1], the paper's)."""
        return {**super().search_space(), "model.adl_drop_rate": Uniform(0.0, 1.0),
                "model.adl_gamma": Uniform(0.0, 1.0)}

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        if not any(type(m).__name__ == "ADL" for m in model.modules()):
            raise ValueError("method 'adl' needs a model built with ADL layers (model.adl=true)")
        return super().step(model, x, y)
