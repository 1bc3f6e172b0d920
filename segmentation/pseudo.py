"""Pseudo masks from heatmaps: threshold (fixed, Otsu, or chosen on a validation split),
optional GrabCut refinement seeded by the heatmap, optional largest-component filter.

Score maps are (H, W) float in [0, 1] (``wsol.localization.normalize_scoremap``); masks are
bool (H, W); images are uint8 RGB (H, W, 3) of the same size.

No dense CRF: the maintained package (pydensecrf2) ships as C++ source only, and GrabCut
(OpenCV) does the same job here: a colour model of the image, seeded by the heatmap, pulls the
mask onto the object's edges.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from skimage.filters import threshold_otsu

from wsol.localization import largest_component

log = logging.getLogger(__name__)

THRESHOLD_MODES = ("fixed", "otsu", "val")
REFINEMENTS = ("none", "grabcut")


@dataclass
class PseudoMaskOptions:
    """How a score map becomes a mask.

    threshold: "fixed" (``tau``), "otsu" (per image), or "val" (the tau with the best mean mask
        IoU on a validation split, chosen by the caller and passed as ``tau``).
    tau: the threshold for "fixed" / "val" (score >= tau is foreground).
    blur_sigma: Gaussian blur of the score map (pixels) before thresholding, then min-max again;
        0 = none. Pixel-level gradient maps are speckled; a blur makes them region-like.
    refine: "none" or "grabcut" (OpenCV GrabCut initialised from the heatmap: score >= fg_sure
        -> sure foreground, >= tau -> probable foreground, < bg_sure -> sure background, the
        rest probable background; ``grabcut_iters`` iterations).
    largest: keep only the largest 8-connected component (after refinement).
    """

    threshold: str = "fixed"
    tau: float | None = 0.2
    blur_sigma: float = 0.0
    refine: str = "none"
    largest: bool = False
    fg_sure: float = 0.8
    bg_sure: float = 0.05
    grabcut_iters: int = 5

    def check(self) -> None:
        if self.threshold not in THRESHOLD_MODES:
            raise ValueError(f"threshold mode must be one of {', '.join(THRESHOLD_MODES)}, got {self.threshold!r}")
        if self.refine not in REFINEMENTS:
            raise ValueError(f"refine must be one of {', '.join(REFINEMENTS)}, got {self.refine!r}")
        if self.threshold != "otsu" and (self.tau is None or not 0 <= self.tau <= 1):
            raise ValueError(f"threshold mode {self.threshold!r} needs tau in [0, 1], got {self.tau!r}")
        if self.blur_sigma < 0:
            raise ValueError(f"blur_sigma must be >= 0, got {self.blur_sigma}")
        if not 0 <= self.bg_sure <= self.fg_sure <= 1:
            raise ValueError(f"need 0 <= bg_sure <= fg_sure <= 1, got {self.bg_sure}, {self.fg_sure}")

    def to_dict(self) -> dict:
        return asdict(self)


def smooth(scoremap: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (sigma in pixels) and min-max back to [0, 1]; sigma 0 returns the map."""
    scoremap = np.asarray(scoremap, dtype=np.float64)
    if sigma <= 0:
        return scoremap
    out = cv2.GaussianBlur(scoremap, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    lo, hi = out.min(), out.max()
    return np.zeros_like(out) if hi <= lo else (out - lo) / (hi - lo)


def otsu_threshold(scoremap: np.ndarray) -> float | None:
    """Otsu's threshold of the map's values (skimage); None for a constant map."""
    scoremap = np.asarray(scoremap, dtype=np.float64)
    if not np.isfinite(scoremap).all() or scoremap.max() <= scoremap.min():
        return None
    return float(threshold_otsu(scoremap))


def grabcut_refine(image: np.ndarray, scoremap: np.ndarray, tau: float, fg_sure: float = 0.8,
                   bg_sure: float = 0.05, iters: int = 5) -> np.ndarray:
    """GrabCut seeded by the heatmap; returns bool (H, W).

    Falls back to ``scoremap >= tau`` when GrabCut cannot run (no foreground or no background
    seed, e.g. an empty or full mask).
    """
    image = np.ascontiguousarray(image)
    if image.shape[:2] != scoremap.shape or image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"grabcut needs a uint8 (H, W, 3) image the size of the map {scoremap.shape}, "
                         f"got {image.dtype} {image.shape}")
    thresholded = scoremap >= tau
    if thresholded.all() or not thresholded.any():
        return thresholded
    seeds = np.where(thresholded, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeds[scoremap >= max(fg_sure, tau)] = cv2.GC_FGD
    seeds[scoremap < min(bg_sure, tau)] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), seeds, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error as err:  # degenerate colour model (e.g. a flat image)
        log.debug("grabcut failed (%s); keeping the thresholded mask", err)
        return thresholded
    return (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)


def pseudo_mask(scoremap: np.ndarray, opts: PseudoMaskOptions, image: np.ndarray | None = None,
                tau: float | None = None) -> tuple[np.ndarray, float | None]:
    """One score map (H, W) in [0, 1] (already smoothed: :func:`smooth`) -> (bool mask (H, W),
    the threshold used).

    ``tau`` overrides ``opts.tau`` (e.g. the one chosen on val). "otsu" on a constant map gives
    an empty mask and threshold None. ``image`` is needed for GrabCut.
    """
    scoremap = np.asarray(scoremap, dtype=np.float64)
    if opts.threshold == "otsu":
        t = otsu_threshold(scoremap)
        if t is None:
            return np.zeros(scoremap.shape, bool), None
    else:
        t = opts.tau if tau is None else tau
    if opts.refine == "grabcut":
        if image is None:
            raise ValueError("refine='grabcut' needs the image")
        mask = grabcut_refine(image, scoremap, t, opts.fg_sure, opts.bg_sure, opts.grabcut_iters)
    else:
        mask = scoremap >= t
    if opts.largest:
        mask = largest_component(mask)
    return mask, t


def pseudo_masks(scoremaps: np.ndarray, opts: PseudoMaskOptions, images: np.ndarray | None = None,
                 tau: float | None = None) -> np.ndarray:
    """A batch: scoremaps (B, H, W), images uint8 (B, H, W, 3) or None -> bool (B, H, W)."""
    out = np.zeros(np.shape(scoremaps), bool)
    for i, s in enumerate(scoremaps):
        out[i] = pseudo_mask(s, opts, None if images is None else images[i], tau)[0]
    return out
