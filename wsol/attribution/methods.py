"""The attribution methods by name: one call shape, `method(model, x, target, **options)`
(see the package docstring). `wsol.attribution.maps` and the package both read this table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ._common import TargetLike
from .cam import cam, gradcam, gradcampp
from .gradient import input_gradient, smoothgrad
from .path import gradient_shap, integrated_gradients

__all__ = ["ATTRIBUTION_METHODS", "attribute", "get_method"]


ATTRIBUTION_METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "grad": input_gradient,
    "cam": cam,
    "gradcam": gradcam,
    "gradcampp": gradcampp,
    "ig": integrated_gradients,
    "smoothgrad": smoothgrad,
    "gradshap": gradient_shap,
}


def get_method(name: str) -> Callable[..., torch.Tensor]:
    """The attribution function registered as `name`; ValueError names the valid ones."""
    try:
        return ATTRIBUTION_METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown attribution method {name!r}; valid: "
                         f"{', '.join(ATTRIBUTION_METHODS)}") from None


def attribute(name: str, model: nn.Module, x: torch.Tensor, target: TargetLike,
              **options: Any) -> torch.Tensor:
    """Run the method registered as `name`: (B,3,H,W) or (B,h,w), see the module doc."""
    return get_method(name)(model, x, target, **options)
