"""Box IoU with the inclusive (+1) pixel convention (REFERENCE 6.2, 6.5)."""

from __future__ import annotations

import numpy as np

__all__ = ["iou", "iou_art2020", "check_boxes"]


def check_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """(N, 4) int64 ``x0, y0, x1, y1``; raise ValueError on negative coords or x1 < x0."""
    b = np.asarray(boxes)
    if b.ndim == 1:
        b = b.reshape(1, -1)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4) x0,y0,x1,y1, got {np.shape(boxes)}")
    if (b < 0).any():
        raise ValueError(f"{name}: negative coordinates in {b[(b < 0).any(axis=1)][:3].tolist()}")
    if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        bad = b[(b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])][:3].tolist()
        raise ValueError(f"{name}: x1 < x0 or y1 < y0 in {bad}")
    return b.astype(np.int64, copy=False)


def _iou(a: np.ndarray, b: np.ndarray, clamp: bool) -> np.ndarray:
    a = a[:, None, :]
    b = b[None, :, :]
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1
    if clamp:
        iw = np.maximum(iw, 0)
        ih = np.maximum(ih, 0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    out = np.zeros(union.shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def iou(boxes_a, boxes_b) -> np.ndarray:
    """Pairwise IoU, inclusive boxes: ``iw = max(0, min x1 - max x0 + 1)``.

    Args:
        boxes_a: (N, 4) ``x0, y0, x1, y1``.
        boxes_b: (M, 4).

    Returns:
        (N, M) float64; 0 where the union is <= 0.
    """
    return _iou(check_boxes(boxes_a, "boxes_a"), check_boxes(boxes_b, "boxes_b"), clamp=True)


def iou_art2020(boxes_a, boxes_b) -> np.ndarray:
    """ART/ADL IoU: like :func:`iou` but negative overlaps are *not* clamped.

    Two negative extents multiply to a positive "intersection" (the official quirk,
    REFERENCE 6.5).  Boxes are not validated beyond their shape since art2020 box
    rescaling can give negative coordinates.
    """
    a = np.asarray(boxes_a, dtype=np.int64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.int64).reshape(-1, 4)
    return _iou(a, b, clamp=False)
