"""Box and mask localization metrics, and attribution-robustness metrics, as
wsolevaluation-style evaluators.

``accumulate(...)`` many times, ``compute() -> dict``; pure functions underneath.

Importing this package is light (numpy, cv2; no torch): the attribution-robustness metrics
(:mod:`wsol.metrics.robustness`, which need torch) load on first use.
"""

from __future__ import annotations

import importlib

from wsol.metrics.box import BoxEvaluator, LocEvaluator, max_iou_per_threshold
from wsol.metrics.iou import check_boxes, iou, iou_art2020
from wsol.metrics.mask import MaskIoUEvaluator, PxAPEvaluator, mask_iou, pxap_from_histograms

_ROBUSTNESS = (
    "AttributionRobustnessEvaluator",
    "center_shift",
    "cosine_similarity",
    "kendall_tau_b",
    "mask_by_topk",
    "mass_center",
    "spearman_rho",
    "topk_intersection",
    "topk_mask",
)

__all__ = [
    *_ROBUSTNESS,
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


def __getattr__(name: str):
    """The robustness metrics, imported (with torch) on first use."""
    if name not in _ROBUSTNESS:
        raise AttributeError(f"module 'wsol.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module("wsol.metrics.robustness"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_ROBUSTNESS))
