"""Box and mask localization metrics, and attribution-robustness metrics, as
wsolevaluation-style evaluators.

``accumulate(...)`` many times, ``compute() -> dict``; pure functions underneath.
"""

from wsol.metrics.box import BoxEvaluator, LocEvaluator, max_iou_per_threshold
from wsol.metrics.iou import check_boxes, iou, iou_art2020
from wsol.metrics.mask import MaskIoUEvaluator, PxAPEvaluator, mask_iou, pxap_from_histograms
from wsol.metrics.robustness import (
    AttributionRobustnessEvaluator,
    center_shift,
    cosine_similarity,
    kendall_tau_b,
    mask_by_topk,
    mass_center,
    spearman_rho,
    topk_intersection,
    topk_mask,
)

__all__ = [
    "AttributionRobustnessEvaluator",
    "center_shift",
    "cosine_similarity",
    "kendall_tau_b",
    "mask_by_topk",
    "mass_center",
    "spearman_rho",
    "topk_intersection",
    "topk_mask",
    "BoxEvaluator",
    "LocEvaluator",
    "MaskIoUEvaluator",
    "PxAPEvaluator",
    "check_boxes",
    "iou",
    "iou_art2020",
    "mask_iou",
    "max_iou_per_threshold",
    "pxap_from_histograms",
]
