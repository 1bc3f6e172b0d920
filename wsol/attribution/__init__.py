"""Attribution maps with one call shape: `method(model, x, target, **options) -> Tensor`.

    from wsol.attribution import attribute, heatmap
    g = attribute("grad", model, x, y)                   # (B,3,H,W)
    h = heatmap(model, x, y, method="cam")               # (B,H,W) at input size

x is (B,3,H,W) in [0,1] (models normalize internally), target a LongTensor (B,) or an
int. Gradient-family methods (grad, ig, smoothgrad, gradshap) return (B,3,H,W);
feature-map methods (cam, gradcam, gradcampp) return (B,h,w) at feature resolution.
No method changes the model's train/eval state or writes parameter `.grad`: put the
model in eval mode first (BN, dropout and ADL are otherwise active). `create_graph=True`
keeps the graph for training and attacks (use `smooth_activations` for second order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._common import TargetLike
from .cam import cam, gradcam, gradcampp
from .gradient import input_gradient, smoothgrad
from .path import gradient_shap, integrated_gradients
from .reduce import REDUCTIONS, art2020_gradient_map, box_filter3, gaussian_blur, reduce_channels

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


def heatmap(model: nn.Module, x: torch.Tensor, target: TargetLike, method: str = "grad",
            reduction: str = "abs_mean", size: tuple[int, int] | None = None,
            **options: Any) -> torch.Tensor:
    """Attribution map (B,H,W) for localization, not normalized.

    Runs `method`, reduces (B,3,H,W) outputs over channels with `reduction` (see
    `reduce_channels`) and resizes to `size` (default: x's H,W) with torch bilinear
    interpolation (align_corners=False). This resize is a convenience: the
    wsolevaluation protocol resizes feature-resolution maps itself with cv2 bicubic
    (wsol.localization), so pass the raw method output there instead.
    """
    out = attribute(method, model, x, target, **options)
    if out.ndim == 4:
        out = reduce_channels(out, reduction)
    size = tuple(x.shape[-2:]) if size is None else tuple(size)
    if tuple(out.shape[-2:]) != size:
        out = F.interpolate(out.unsqueeze(1), size=size, mode="bilinear",
                            align_corners=False).squeeze(1)
    return out


__all__ = [
    "ATTRIBUTION_METHODS",
    "REDUCTIONS",
    "art2020_gradient_map",
    "attribute",
    "box_filter3",
    "cam",
    "gaussian_blur",
    "get_method",
    "gradcam",
    "gradcampp",
    "gradient_shap",
    "heatmap",
    "input_gradient",
    "integrated_gradients",
    "reduce_channels",
    "smoothgrad",
]
