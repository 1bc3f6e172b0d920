"""Box metrics: MaxBoxAcc / MaxBoxAccV2 (wsolevaluation) and fixed-threshold Loc (ART).

REFERENCE 6.2, 6.3, 6.5.  ``BoxEvaluator`` sweeps thresholds ``np.arange(0, 1, interval)``
and, per image and threshold, takes the max IoU over all (predicted, GT) box pairs.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from wsol.localization import _to_uint8, art2020_box, boxes_at_threshold
from wsol.metrics.iou import check_boxes, iou, iou_art2020

__all__ = ["BoxEvaluator", "LocEvaluator", "max_iou_per_threshold", "MODES"]

#: mode name -> (multi_contour, result key)
MODES = {"v1": (False, "MaxBoxAcc"), "v2": (True, "MaxBoxAccV2")}


def max_iou_per_threshold(scoremap: np.ndarray, thresholds: np.ndarray, gt_boxes,
                          modes: Sequence[str] = ("v1", "v2")) -> dict[str, np.ndarray]:
    """Max IoU of the wsolevaluation boxes with the GT boxes, for every threshold.

    Args:
        scoremap: (H, W) float in [0, 1].
        thresholds: (T,) floats.
        gt_boxes: (M, 4) GT boxes of this image.
        modes: "v1" (largest contour) and/or "v2" (all contours).

    Returns:
        {mode: (T,) float64}: the numbers of findContours + boundingRect per threshold (and
        ``max(contours, key=cv2.contourArea)`` for "v1"), from the union-find sweeps of
        wsol._component_sweep (no findContours call).
    """
    ious = _batch_ious(np.asarray(scoremap)[None], [gt_boxes], np.asarray(thresholds, dtype=np.float64),
                       tuple(modes))
    return {mode: v[0] for mode, v in ious.items()}


def _batch_ious(scoremaps: np.ndarray, gt_boxes: Sequence, thresholds: np.ndarray,
                modes: Sequence[str]) -> dict[str, np.ndarray]:
    """{mode: (B, T)} max IoU per threshold of maps (B, H, W), the batch in one numba call
    (wsol._component_sweep.best_iou_batch, maps over numba's threads)."""
    from wsol._component_sweep import best_iou_batch

    if scoremaps.ndim != 3:
        raise ValueError(f"score maps must be (B, H, W), got shape {scoremaps.shape}")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"modes must be among {sorted(MODES)}, got {sorted(unknown)}")
    gts = [check_boxes(gt, "gt_boxes") for gt in gt_boxes]
    if scoremaps.dtype not in (np.float32, np.float64):  # quantised in numba otherwise
        u8 = np.empty(scoremaps.shape, np.uint8)
        for i, scoremap in enumerate(scoremaps):
            u8[i] = _to_uint8(scoremap)
        scoremaps = u8
    v1, v2 = best_iou_batch(scoremaps, gts, thresholds, v1="v1" in modes, v2="v2" in modes)
    return {mode: v1 if mode == "v1" else v2 for mode in modes}


class BoxEvaluator:
    """MaxBoxAcc (largest contour) and MaxBoxAccV2 (all contours), wsolevaluation-exact.

    Args:
        cam_curve_interval: threshold step; thresholds are ``np.arange(0, 1, step)``.
        iou_thresholds: deltas in percent (30, 50, 70).
        multi_contour: False -> MaxBoxAcc only, True -> MaxBoxAccV2 only, "both" -> both.
            Each batch takes one numba call, maps spread over numba's threads (union-find
            sweeps instead of findContours per threshold; the same numbers).
    """

    def __init__(self, cam_curve_interval: float = 0.001,
                 iou_thresholds: Iterable[int] = (30, 50, 70), multi_contour="both"):
        if multi_contour == "both":
            self.modes = ("v1", "v2")
        elif multi_contour in (True, False):
            self.modes = ("v2",) if multi_contour else ("v1",)
        else:
            raise ValueError(f"multi_contour must be True, False or 'both', got {multi_contour!r}")
        self.thresholds = np.arange(0, 1, cam_curve_interval)
        self.iou_thresholds = tuple(int(d) for d in iou_thresholds)
        self.reset()

    def reset(self) -> None:
        T = len(self.thresholds)
        self.num_images = 0
        self.num_gated = 0  # images with a top-1 flag
        self.num_correct = {m: {d: np.zeros(T, np.int64) for d in self.iou_thresholds} for m in self.modes}
        self.num_correct_top1 = {m: {d: np.zeros(T, np.int64) for d in self.iou_thresholds} for m in self.modes}

    def accumulate(self, scoremaps, gt_boxes: Sequence, correct=None) -> None:
        """Add a batch.

        Args:
            scoremaps: (B, H, W) float in [0, 1] (wsolevaluation-normalised maps).
            gt_boxes: B arrays (K_i, 4) of GT boxes ``x0, y0, x1, y1`` in map pixels.
            correct: optional (B,) bool, top-1 classification correct, for Top-1 Loc
                gated at the per-delta best threshold.
        """
        scoremaps = np.asarray(scoremaps)
        if scoremaps.ndim == 2:
            scoremaps = scoremaps[None]
        if len(gt_boxes) != len(scoremaps):
            raise ValueError(f"{len(scoremaps)} score maps but {len(gt_boxes)} GT box sets")
        if correct is not None:
            correct = np.asarray(correct, dtype=bool).reshape(-1)
            if len(correct) != len(scoremaps):
                raise ValueError(f"{len(scoremaps)} score maps but {len(correct)} correct flags")
        # per image and threshold the max IoU over the (predicted, GT) pairs; the whole batch
        # in one numba call, maps over threads
        for mode, ious in _batch_ious(scoremaps, gt_boxes, self.thresholds, self.modes).items():
            self._add(mode, ious, correct)
        self.num_images += len(scoremaps)
        self.num_gated += len(scoremaps) if correct is not None else 0

    def _add(self, mode: str, ious: np.ndarray, correct) -> None:
        """Count hits of per-image max IoUs (B, T) into the curves; correct (B,) bool or None."""
        for d in self.iou_thresholds:
            hit = ious >= d / 100
            self.num_correct[mode][d] += hit.sum(axis=0)
            if correct is not None:
                self.num_correct_top1[mode][d] += hit[correct].sum(axis=0)

    def compute(self) -> dict:
        """Summary, best thresholds per delta and the full curves.

        Returns:
            {"MaxBoxAcc": {"30": %, "50": %, "70": %} (the paper's number is "50"),
             "MaxBoxAccV2": {"30": %, "50": %, "70": %, "mean": %},
             "best_threshold": {key: {delta: tau}},
             "gt_known_loc_at_best": {key: {delta: %}} (= the MaxBoxAcc numbers: GT-known Loc
                 at the per-delta best tau),
             "top1_loc_at_best": {key: {delta: %}} (Top-1 Loc gated at the same tau; only if
                 every batch gave ``correct``),
             "curve": {"thresholds": [...], key: {delta: [% per threshold]}},
             "num_images": N}
        """
        if self.num_images == 0:
            raise RuntimeError("BoxEvaluator.compute() called before accumulate()")
        n = self.num_images
        out = {"num_images": n, "best_threshold": {},
               "curve": {"thresholds": self.thresholds.tolist()}}
        gated = self.num_gated == n
        out["gt_known_loc_at_best"] = {}
        if gated:
            out["top1_loc_at_best"] = {}
        for mode in self.modes:
            key = MODES[mode][1]
            summary, best_tau, curve, top1 = {}, {}, {}, {}
            for d in self.iou_thresholds:
                acc = 100.0 * self.num_correct[mode][d] / n
                k = int(np.argmax(acc))
                summary[str(d)] = float(acc[k])
                best_tau[str(d)] = float(self.thresholds[k])
                curve[str(d)] = acc.tolist()
                if gated:
                    top1[str(d)] = 100.0 * float(self.num_correct_top1[mode][d][k]) / n
            if mode == "v2":  # MaxBoxAccV2 is the mean over deltas; MaxBoxAcc is delta 50
                summary["mean"] = float(np.mean([summary[str(d)] for d in self.iou_thresholds]))
            out[key] = summary
            out["best_threshold"][key] = best_tau
            out["curve"][key] = curve
            out["gt_known_loc_at_best"][key] = {d: summary[d] for d in curve}
            if gated:
                out["top1_loc_at_best"][key] = top1
        return out


    def curves(self) -> dict:
        """{"thresholds": (T,), "<MaxBoxAcc|MaxBoxAccV2> IoU<delta>": (T,) %} for plotting."""
        res = self.compute()
        out = {"thresholds": np.asarray(res["curve"]["thresholds"])}
        for mode in self.modes:
            key = MODES[mode][1]
            for d, acc in res["curve"][key].items():
                out[f"{key} IoU{d}"] = np.asarray(acc)
        return out


class LocEvaluator:
    """GT-known Loc and Top-1 Loc at one fixed threshold (hit: IoU >= 0.5).

    Args:
        threshold: the fixed tau (ART: Grad 0.2, CAM 0.1).
        protocol: "art2020" (cubehelix-gray boxes, unclamped IoU, REFERENCE 6.5) or
            "wsoleval" (largest-contour wsolevaluation box, clamped inclusive IoU).
        iou_threshold: hit when max IoU >= this.
    """

    def __init__(self, threshold: float, protocol: str = "art2020", iou_threshold: float = 0.5):
        if protocol not in ("art2020", "wsoleval"):
            raise ValueError(f"protocol must be 'art2020' or 'wsoleval', got {protocol!r}")
        self.threshold, self.protocol, self.iou_threshold = float(threshold), protocol, iou_threshold
        self.reset()

    def reset(self) -> None:
        self.num_images = 0
        self.num_hit = 0
        self.num_hit_top1 = 0
        self.num_gated = 0

    def box(self, scoremap: np.ndarray) -> np.ndarray:
        """(1, 4) predicted box for one map under this protocol."""
        if self.protocol == "art2020":
            return art2020_box(scoremap, self.threshold, size=scoremap.shape[-1]).reshape(1, 4)
        return boxes_at_threshold(scoremap, self.threshold, multi_contour=False)

    def accumulate(self, scoremaps, gt_boxes: Sequence, correct=None) -> np.ndarray:
        """Add a batch: scoremaps (B, H, W); gt_boxes B arrays (K_i, 4); correct (B,) bool.

        Returns:
            (B, 4) int64 predicted boxes.
        """
        scoremaps = np.asarray(scoremaps)
        if scoremaps.ndim == 2:
            scoremaps = scoremaps[None]
        if len(gt_boxes) != len(scoremaps):
            raise ValueError(f"{len(scoremaps)} score maps but {len(gt_boxes)} GT box sets")
        iou_fn = iou_art2020 if self.protocol == "art2020" else iou
        preds = np.zeros((len(scoremaps), 4), dtype=np.int64)
        for i, (scoremap, gt) in enumerate(zip(scoremaps, gt_boxes)):
            preds[i] = self.box(scoremap)[0]
            hit = bool(iou_fn(preds[i:i + 1], np.asarray(gt).reshape(-1, 4)).max() >= self.iou_threshold)
            self.num_images += 1
            self.num_hit += hit
            if correct is not None:
                self.num_gated += 1
                self.num_hit_top1 += hit and bool(np.asarray(correct).reshape(-1)[i])
        return preds

    def compute(self) -> dict:
        """{"gt_known_loc": %, "top1_loc": % (None unless every batch gave ``correct``),
        "threshold", "protocol", "num_images"}."""
        if self.num_images == 0:
            raise RuntimeError("LocEvaluator.compute() called before accumulate()")
        top1 = 100.0 * self.num_hit_top1 / self.num_images if self.num_gated == self.num_images else None
        return {"gt_known_loc": 100.0 * self.num_hit / self.num_images, "top1_loc": top1,
                "threshold": self.threshold, "protocol": self.protocol, "num_images": self.num_images}
