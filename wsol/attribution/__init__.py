"""Attribution maps with one call shape: `method(model, x, target, **options) -> Tensor`.

    from wsol.attribution import attribute, saliency_maps
    g = attribute("grad", model, x, y)                   # (B,3,H,W)
    maps, logits = saliency_maps(model, x, y, "cam")     # (B,H,W) in [0,1] at input size, (B,C)

`saliency_maps` (wsol/attribution/maps.py) is the one path from a model to maps: evaluation,
localization, segmentation, generation, the demo and the attribution attacks' scoring
(`normalize="hw"` etc., via `wsol.attacks.saliency_map`) call it (or its raw half,
`raw_maps_and_logits`); `THRESHOLDS` / `default_threshold` are the one table of thresholds.

x is (B,3,H,W) in [0,1] (models normalize internally), target a LongTensor (B,) or an
int. Gradient-family methods (grad, ig, smoothgrad, gradshap) return (B,3,H,W);
feature-map methods (cam, gradcam, gradcampp) return (B,h,w) at feature resolution.
No method changes the model's train/eval state or writes parameter `.grad`: put the
model in eval mode first (BN, dropout and ADL are otherwise active). `create_graph=True`
keeps the graph for training and attacks (use `smooth_activations` for second order).
"""

from __future__ import annotations

from .cam import cam, gradcam, gradcampp
from .gradient import input_gradient, smoothgrad
from .maps import THRESHOLDS, default_threshold, raw_maps, raw_maps_and_logits, saliency_maps, saliency_names
from .methods import ATTRIBUTION_METHODS, attribute, get_method
from .path import gradient_shap, integrated_gradients
from .reduce import REDUCTIONS, art2020_gradient_map, box_filter3, gaussian_blur, reduce_channels

__all__ = [
    "THRESHOLDS",
    "default_threshold",
    "raw_maps",
    "raw_maps_and_logits",
    "saliency_maps",
    "saliency_names",
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
    "input_gradient",
    "integrated_gradients",
    "reduce_channels",
    "smoothgrad",
]
