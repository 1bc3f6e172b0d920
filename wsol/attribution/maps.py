"""The one heatmap path: maps for localization, at input (or any) resolution in [0,1], plus logits.

    maps, logits = saliency_maps(model, x, target, "grad")          # (B,H,W) float64, (B,C)
    maps, logits = saliency_maps(model, x, None, "cam", size=(H, W))  # predicted class, photo size

`raw_maps_and_logits` gives the unnormalised maps (feature or input resolution) of the two
evaluation protocols (REFERENCE §5, §6): under ``paper`` the gradient map is the official ART
pipeline (`art2020_gradient_map`, batch-global), otherwise a channel mean of |gradient|.
`saliency_maps` then resizes each map with cv2 bicubic and min-max normalises it exactly as
wsolevaluation's `normalize_scoremap` does, so evaluation, localization, segmentation and the
demo score the same numbers from the same maps. The attribution attacks' scoring takes its
Ghorbani-style maps (sum-normalised, `normalize="hw"` etc.) from the same function
(`wsol.attacks.saliency_map`); only the attack's differentiable inner step builds its own.

Saliency names: every `ATTRIBUTION_METHODS` name, plus ``grad_art``, the ART paper's smoothed
gradient map computed per image (REFERENCE §5.2 steps 1-8 without the batch-global steps).

Default thresholds live here too, in one table (`THRESHOLDS`): ``paper`` is the ART paper's fixed
threshold (Grad 0.2, CAM-like 0.1, REFERENCE §6.5); ``photo`` is what localizes real photos best
(benchmarks/real_photo_localization.py, recorded in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._common import TargetLike, as_target, check_images, grad_input, num_classes_of, objective
from .cam import cam_and_logits
from .methods import ATTRIBUTION_METHODS, attribute
from .reduce import SUM_NORMALIZATIONS, art2020_gradient_map, gaussian_blur, reduce_channels, sum_normalize

SMOOTHED_GRAD = "grad_art"

# protocol -> saliency -> threshold on the [0,1] map ("*": every saliency not named)
THRESHOLDS: dict[str, dict[str, float]] = {
    "paper": {"grad": 0.2, "*": 0.1},                   # the ART paper (REFERENCE §6.5)
    # measured on 12 real photos with real ImageNet weights (benchmarks/RESULTS.md, "Real-photo
    # localization"), each with its PHOTO_BLUR; CAM-like maps best at 0.35 (12 of 12 at IoU >= 0.5).
    # gradshap was not measured: it takes IG's settings, its closest relative.
    "photo": {"grad": 0.25, "smoothgrad": 0.3, "ig": 0.15, "gradshap": 0.15, "grad_art": 0.3, "*": 0.35},
}
# Gaussian sigma (input pixels) the photo thresholds were measured with: gradient-family maps are
# speckle at pixel scale and need it; CAM-like maps are smooth from their upsampling.
PHOTO_BLUR: dict[str, float] = {"grad": 8.0, "smoothgrad": 8.0, "ig": 8.0, "gradshap": 8.0}
PHOTO_SALIENCY = "cam"   # tools/localize.py's default where the model has a CAM head
PHOTO_FALLBACK = "gradcam"


def default_threshold(saliency: str, protocol: str = "paper") -> float:
    """The threshold `THRESHOLDS[protocol]` gives `saliency` (paper: Grad 0.2, CAM-like 0.1)."""
    table = THRESHOLDS[protocol]
    return table.get(saliency, table["*"])


def saliency_names() -> tuple[str, ...]:
    """Every saliency `saliency_maps` takes."""
    return (*ATTRIBUTION_METHODS, SMOOTHED_GRAD)


def _raw_tensor(model: nn.Module, x: torch.Tensor, target: torch.Tensor, saliency: str, protocol: str,
                reduction: str, **options) -> torch.Tensor:
    """Unnormalised maps (B,h,w), detached, on x's device in the attribution's dtype."""
    if saliency == SMOOTHED_GRAD or (saliency == "grad" and protocol == "paper"):
        # the official pipeline uses the predicted class (REFERENCE §5.2 step 1)
        return art2020_gradient_map(model, x, batch_global=saliency == "grad").detach()
    out = attribute(saliency, model, x, target, **options)
    if out.ndim == 4:
        out = reduce_channels(out, reduction)
    return out.detach()


def _raw_tensor_and_logits(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None, saliency: str,
                           protocol: str, reduction: str, **options) -> tuple[torch.Tensor, torch.Tensor]:
    if saliency == "cam" and not options:
        return cam_and_logits(model, x, target)
    if saliency == "grad" and protocol != "paper" and not options:
        inp = grad_input(x, create_graph=False)
        with torch.enable_grad():
            logits = model(inp)
            (g,) = torch.autograd.grad(objective(logits, _or_predicted(target, logits), "logit"), inp)
        return reduce_channels(g, reduction), logits.detach()
    with torch.no_grad():
        logits = model(x)
    return _raw_tensor(model, x, _or_predicted(target, logits), saliency, protocol, reduction, **options), logits


def raw_maps(model: nn.Module, x: torch.Tensor, target: torch.Tensor, saliency: str,
             protocol: str = "wsolevaluation", reduction: str = "abs_mean", **options) -> np.ndarray:
    """Unnormalised maps (B,h,w) float64 numpy on the host, for class `target` (B,).
    Gradient-family attributions are reduced over channels with `reduction` (mean_c |a|)."""
    return _raw_tensor(model, x, target, saliency, protocol, reduction, **options).double().cpu().numpy()


def raw_maps_and_logits(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None, saliency: str,
                        protocol: str = "wsolevaluation", reduction: str = "abs_mean",
                        **options) -> tuple[np.ndarray, torch.Tensor]:
    """`raw_maps` plus the logits (B,C), sharing one forward for CAM and the logit gradient
    (the same numbers as a separate no-grad forward; tested). `target` None: the predicted
    class, taken from that same forward."""
    raw, logits = _raw_tensor_and_logits(model, x, target, saliency, protocol, reduction, **options)
    return raw.double().cpu().numpy(), logits


def _or_predicted(target: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    return logits.detach().argmax(1) if target is None else target


def saliency_maps(model: nn.Module, x: torch.Tensor, target: TargetLike | None = None, saliency: str = "grad",
                  *, size: tuple[int, int] | None = None, blur: float = 0.0, protocol: str = "wsolevaluation",
                  reduction: str = "abs_mean", normalize: str = "minmax",
                  **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps for localization: (B,H,W) float64 on the host in [0,1], and logits (B,C) (detached).

    Args:
        model: a `WSOLModel` in eval mode; x: images (B,3,H,W) in [0,1].
        target: class per image ((B,) or int); None: the predicted class.
        saliency: a name of `saliency_names()`.
        size: output (H, W) (default: x's). Maps are resized with cv2 bicubic and min-max
            normalised (wsolevaluation's normalize_scoremap; a NaN or constant map -> zeros).
        blur: Gaussian sigma in input pixels applied to the raw map before the resize (0: none).
        protocol: "wsolevaluation" or "paper" (the batch-global ART pipeline for "grad").
        reduction: channel reduction of gradient-family attributions (`REDUCTIONS`; mean_c |a|).
        normalize: "minmax" (the above; localization) or one of `SUM_NORMALIZATIONS` ("hw",
            "sum_1024", "none"): the attribution attacks' Ghorbani-style maps, which sum to a
            fixed total (their centre-of-mass measure is not invariant to min-max). These stay
            at the map's own resolution, on x's device in the attribution's dtype (no `size`,
            no `blur`), so the attacks' measures are computed where the attack ran.
        **options: passed to the attribution method (e.g. `steps` for ig, `seed` for smoothgrad,
            `variant="ce"` for the gradient of the loss).

    With `target` None the prediction comes from the forward pass that makes the map (no extra
    pass); the logits returned are that pass's, so the caller's probabilities need none either.
    """
    from wsol.localization import normalize_scoremap

    check_images(x)
    if saliency not in saliency_names():
        raise ValueError(f"unknown saliency {saliency!r}; valid: {', '.join(saliency_names())}")
    if normalize != "minmax" and normalize not in SUM_NORMALIZATIONS:
        raise ValueError(f"unknown normalize {normalize!r}; valid: minmax, {', '.join(SUM_NORMALIZATIONS)}")
    if normalize != "minmax" and (size is not None or blur > 0):
        raise ValueError(f"normalize={normalize!r} keeps the maps at their own resolution: "
                         "size and blur apply only to normalize='minmax'")
    t = None if target is None else as_target(target, x.shape[0], num_classes_of(model), x.device)
    raw, logits = _raw_tensor_and_logits(model, x, t, saliency, protocol, reduction, **options)
    if normalize != "minmax":
        return sum_normalize(raw, normalize), logits.detach()
    raw = raw.double().cpu().numpy()
    if blur > 0:
        sigma = blur * raw.shape[-1] / x.shape[-1]   # input pixels -> the map's own pixels
        raw = gaussian_blur(torch.from_numpy(raw), sigma).numpy()
    H, W = size if size is not None else tuple(x.shape[-2:])
    maps = np.stack([normalize_scoremap(m, (W, H)) for m in raw])
    return torch.from_numpy(maps), logits.detach()
