"""Mask metrics: PxAP (wsolevaluation MaskEvaluator) and mIoU / pooled pIoU (REFERENCE 6.4).

GT masks are uint8 (H, W) with fg = 1, bg = 0, ignore = 255 (ignore pixels are skipped).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PxAPEvaluator", "MaskIoUEvaluator", "pxap_from_histograms", "mask_iou", "IGNORE"]

IGNORE = 255


def pxap_from_histograms(hist_true: np.ndarray, hist_false: np.ndarray) -> dict:
    """PxAP from ascending score histograms over the bins ``thresholds ++ [1, 2, 3]``.

    Args:
        hist_true: (T + 2,) counts of foreground-pixel scores per bin.
        hist_false: (T + 2,) counts of background-pixel scores per bin.

    Returns:
        {"PxAP": 100 * sum_{i>=1, tp_i+fp_i != 0} P_i (R_i - R_{i-1}) (reversed order),
         "precision": (T+2,), "recall": (T+2,)} -- wsolevaluation, no interpolation.
    """
    hist_true = np.asarray(hist_true, dtype=np.float64)
    hist_false = np.asarray(hist_false, dtype=np.float64)
    tp = hist_true[::-1].cumsum()
    fn = hist_true.sum() - tp
    fp = hist_false[::-1].cumsum()
    if hist_true.sum() <= 0:
        raise RuntimeError("PxAP needs at least one foreground pixel in the GT masks")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
    valid = (tp + fp)[1:] != 0
    pxap = 100.0 * float((precision[1:] * np.diff(recall))[valid].sum())
    return {"PxAP": pxap, "precision": precision, "recall": recall}


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of a bool (H, W) prediction with a {0, 1, 255} GT mask, ignore pixels skipped.

    Both empty -> 1.0 (they agree).
    """
    gt = np.asarray(gt)
    keep = gt != IGNORE
    p, g = np.asarray(pred, bool)[keep], gt[keep] == 1
    union = np.count_nonzero(p | g)
    return 1.0 if union == 0 else np.count_nonzero(p & g) / union


class PxAPEvaluator:
    """PxAP (pooled pixels), per-image mIoU and pooled pIoU over a threshold sweep.

    Args:
        cam_curve_interval: thresholds ``np.arange(0, 1, step)``.
        fixed_threshold: optional tau at which mIoU is also reported (e.g. ART's).

    The mask at tau is ``scoremap >= tau``; since ``np.histogram`` bins are left-closed,
    the counts of ``score >= tau_k`` are the reverse cumulative sums of the per-bin counts,
    so one histogram per image gives the whole IoU curve.
    """

    def __init__(self, cam_curve_interval: float = 0.001, fixed_threshold: float | None = None):
        self.thresholds = np.arange(0, 1, cam_curve_interval)
        self.edges = np.append(self.thresholds, [1.0, 2.0, 3.0])
        self.fixed_threshold = fixed_threshold
        self.reset()

    def reset(self) -> None:
        nb = len(self.edges) - 1
        self.hist_true = np.zeros(nb, np.int64)
        self.hist_false = np.zeros(nb, np.int64)
        self.iou_sum = np.zeros(len(self.thresholds), np.float64)
        self.fixed_iou_sum = 0.0
        self.num_images = 0

    def accumulate(self, scoremaps, gt_masks) -> None:
        """Add a batch: scoremaps (B, H, W) float in [0, 1]; gt_masks (B, H, W) uint8 {0,1,255}."""
        scoremaps, gt_masks = np.asarray(scoremaps), np.asarray(gt_masks)
        if scoremaps.ndim == 2:
            scoremaps, gt_masks = scoremaps[None], gt_masks[None]
        if scoremaps.shape != gt_masks.shape:
            raise ValueError(f"score maps {scoremaps.shape} and GT masks {gt_masks.shape} differ in shape")
        T = len(self.thresholds)
        for scoremap, gt in zip(scoremaps, gt_masks):
            h_t, _ = np.histogram(scoremap[gt == 1], bins=self.edges)
            h_f, _ = np.histogram(scoremap[gt == 0], bins=self.edges)
            self.hist_true += h_t
            self.hist_false += h_f
            tp = h_t[::-1].cumsum()[::-1][:T]  # pixels with score >= tau_k
            fp = h_f[::-1].cumsum()[::-1][:T]
            union = h_t.sum() + fp
            self.iou_sum += np.divide(tp, union, out=np.ones(T), where=union > 0)
            if self.fixed_threshold is not None:
                self.fixed_iou_sum += mask_iou(scoremap >= self.fixed_threshold, gt)
            self.num_images += 1

    def compute(self) -> dict:
        """{"PxAP", "mIoU" (best over tau), "mIoU_threshold", "pIoU" (best pooled),
        "pIoU_threshold", "mIoU_at_fixed" (if set), "curve": {thresholds, precision,
        recall, mIoU, pIoU}, "num_images"}."""
        if self.num_images == 0:
            raise RuntimeError("PxAPEvaluator.compute() called before accumulate()")
        T = len(self.thresholds)
        ap = pxap_from_histograms(self.hist_true, self.hist_false)
        miou = 100.0 * self.iou_sum / self.num_images
        tp = self.hist_true[::-1].cumsum()[::-1][:T]
        fp = self.hist_false[::-1].cumsum()[::-1][:T]
        union = self.hist_true.sum() + fp
        piou = 100.0 * np.divide(tp, union, out=np.zeros(T), where=union > 0)
        k, j = int(np.argmax(miou)), int(np.argmax(piou))
        out = {"PxAP": ap["PxAP"], "mIoU": float(miou[k]), "mIoU_threshold": float(self.thresholds[k]),
               "pIoU": float(piou[j]), "pIoU_threshold": float(self.thresholds[j]),
               "num_images": self.num_images,
               "curve": {"thresholds": self.thresholds.tolist(),
                         "precision": ap["precision"].tolist(), "recall": ap["recall"].tolist(),
                         "mIoU": miou.tolist(), "pIoU": piou.tolist()}}
        if self.fixed_threshold is not None:
            out["mIoU_at_fixed"] = 100.0 * self.fixed_iou_sum / self.num_images
        return out


class MaskIoUEvaluator:
    """Binary masks (pseudo masks or a segmentation network's) against GT masks.

    Foreground / background IoU from the confusion pooled over all pixels of the split, their
    mean (the two-class semantic-segmentation mIoU), and the mean over images of the per-image
    foreground IoU (:func:`mask_iou`). GT ignore pixels (255) are skipped.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.confusion = np.zeros((2, 2), np.int64)   # [gt, pred]
        self.image_iou_sum = 0.0
        self.num_images = 0

    def accumulate(self, pred_masks, gt_masks) -> None:
        """Add a batch: pred_masks (B, H, W) bool; gt_masks (B, H, W) uint8 {0, 1, 255}."""
        pred_masks, gt_masks = np.asarray(pred_masks, bool), np.asarray(gt_masks)
        if pred_masks.ndim == 2:
            pred_masks, gt_masks = pred_masks[None], gt_masks[None]
        if pred_masks.shape != gt_masks.shape:
            raise ValueError(f"predicted masks {pred_masks.shape} and GT masks {gt_masks.shape} differ in shape")
        for pred, gt in zip(pred_masks, gt_masks):
            keep = gt != IGNORE
            g, p = gt[keep].astype(np.int64), pred[keep].astype(np.int64)
            self.confusion += np.bincount(2 * g + p, minlength=4).reshape(2, 2)
            self.image_iou_sum += mask_iou(pred, gt)
            self.num_images += 1

    def compute(self) -> dict:
        """{"mIoU": mean of fg and bg IoU, "fg_IoU", "bg_IoU", "image_fg_IoU", "pixel_acc",
        "num_images"}, all in percent."""
        if self.num_images == 0:
            raise RuntimeError("MaskIoUEvaluator.compute() called before accumulate()")
        c = self.confusion.astype(np.float64)
        ious = []
        for k in (1, 0):
            union = c[k, :].sum() + c[:, k].sum() - c[k, k]
            ious.append(100.0 * c[k, k] / union if union > 0 else 100.0)
        fg, bg = ious
        return {"mIoU": (fg + bg) / 2, "fg_IoU": fg, "bg_IoU": bg,
                "image_fg_IoU": 100.0 * self.image_iou_sum / self.num_images,
                "pixel_acc": 100.0 * np.trace(c) / max(c.sum(), 1.0), "num_images": self.num_images}
