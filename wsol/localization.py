"""Heatmap to boxes and masks (REFERENCE 5.1, 6.1, 6.4, 6.5).

Two box protocols live here:

* ``wsoleval`` (:func:`boxes_at_thresholds`): wsolevaluation's bit-exact extraction --
  ``uint8(map * 255)`` (truncation), strict ``u8 > int(tau * max u8)``, ``RETR_TREE`` +
  ``CHAIN_APPROX_SIMPLE`` contours (hole contours included), box
  ``[x, y, min(x + w, W - 1), min(y + h, H - 1)]``, ``[[0, 0, 0, 0]]`` when no contour.
* ``art2020`` (:func:`art2020_box`): the ART/ADL fixed-threshold protocol -- cubehelix
  colour map, RGB->gray, ``[x, y, x + w, y + h]`` with no clip, ``[0, 0, 1, 1]`` when no
  contour.

The many-threshold path computes contours once per *distinct foreground set* instead of
once per threshold: the foreground at cut level ``L`` is ``u8 > L`` and only depends on
which values present in ``u8`` exceed ``L``, so at most (number of distinct values of
``u8``) ``findContours`` calls are made per map whatever the threshold interval, and each
call runs on the crop of the foreground's bounding box (``offset=`` puts the contours
back), which gives the same contours as the full image because the removed margin is
background connected to the outside.  Identity with the straightforward loop is tested on
random, noisy and hand-made maps (holes, islands in holes, border contact, single pixels,
diagonal links, equal-area ties).  The cost is bound by ``findContours`` itself: one call
per distinct level, so the gain is large at interval 0.001 (<= 256 calls instead of 1000)
and small at 0.01 (about 100 calls either way); see ``benchmarks/bench_localization.py``.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

__all__ = [
    "normalize_scoremap",
    "find_contours",
    "cut_levels",
    "boxes_at_threshold",
    "boxes_at_thresholds",
    "boxes_at_thresholds_reference",
    "level_contours",
    "contours_to_boxes",
    "iter_level_boxes",
    "level_boxes",
    "mask_at_threshold",
    "largest_component",
    "region_at_threshold",
    "art2020_gray",
    "art2020_box",
]


def normalize_scoremap(cam: np.ndarray, size: tuple[int, int] = (224, 224)) -> np.ndarray:
    """wsolevaluation's ``normalize_scoremap`` after a bicubic resize.

    Args:
        cam: (h, w) float map.
        size: output (W, H) as cv2 takes it (square maps make the order moot).

    Returns:
        (H, W) float64 in [0, 1]; a map with a NaN, or constant after the resize, becomes
        all zeros.
    """
    cam = np.asarray(cam, dtype=np.float64)
    if cam.ndim != 2:
        raise ValueError(f"normalize_scoremap expects an (h, w) map, got shape {cam.shape}")
    if tuple(cam.shape[::-1]) != tuple(size):
        cam = cv2.resize(cam, tuple(size), interpolation=cv2.INTER_CUBIC)
    if np.isnan(cam).any():
        return np.zeros(cam.shape, dtype=np.float64)
    lo, hi = cam.min(), cam.max()
    if hi == lo:
        return np.zeros(cam.shape, dtype=np.float64)
    return (cam - lo) / (hi - lo)


def find_contours(binary: np.ndarray, offset: tuple[int, int] = (0, 0)) -> Sequence[np.ndarray]:
    """``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` for OpenCV 3 and 4/5 signatures."""
    out = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=offset)
    return out[0] if len(out) == 2 else out[1]


def _to_uint8(scoremap: np.ndarray) -> np.ndarray:
    scoremap = np.asarray(scoremap)
    if not np.issubdtype(scoremap.dtype, np.floating):
        scoremap = scoremap.astype(np.float64)
    if scoremap.ndim != 2:
        raise ValueError(f"score map must be (H, W), got shape {scoremap.shape}")
    if np.isnan(scoremap).any():
        return np.zeros(scoremap.shape, dtype=np.uint8)
    # wsolevaluation: (scoremap * 255).astype(np.uint8) -- truncation, in the map's own
    # float dtype (float32 and float64 can truncate differently).  Values are clipped to
    # [0, 1] first so out-of-range input cannot wrap around.
    return (np.clip(scoremap, 0.0, 1.0) * 255).astype(np.uint8)


def cut_levels(u8_max: int, thresholds: np.ndarray) -> np.ndarray:
    """(T,) int cut levels ``int(tau * max u8)`` exactly as wsolevaluation computes them."""
    return np.trunc(np.asarray(thresholds, dtype=np.float64) * float(u8_max)).astype(np.int64)


def _contours_to_boxes(contours, width: int, height: int, multi_contour: bool) -> np.ndarray:
    """wsolevaluation's per-threshold box code, kept plain (the reference path)."""
    if len(contours) == 0:
        return np.zeros((1, 4), dtype=np.int64)
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.asarray(boxes, dtype=np.int64)


def boxes_at_threshold(scoremap: np.ndarray, threshold: float, multi_contour: bool = False) -> np.ndarray:
    """wsolevaluation boxes at one threshold, straightforward (REFERENCE 6.1).

    Returns:
        (K, 4) int64 ``x0, y0, x1, y1``; ``[[0, 0, 0, 0]]`` when no contour.
    """
    u8 = _to_uint8(scoremap)
    height, width = u8.shape
    _, fg = cv2.threshold(u8, int(threshold * np.max(u8)), 255, cv2.THRESH_BINARY)
    return _contours_to_boxes(find_contours(fg), width, height, multi_contour)


def boxes_at_thresholds_reference(scoremap: np.ndarray, thresholds: Sequence[float],
                                  multi_contour: bool = False) -> list[np.ndarray]:
    """The straightforward loop: threshold + findContours for every threshold."""
    return [boxes_at_threshold(scoremap, t, multi_contour) for t in thresholds]


def _level_groups(u8: np.ndarray, thresholds: np.ndarray):
    """Map thresholds to distinct foreground sets.

    Returns ``(values, key)``: the foreground of threshold k is ``u8 >= values[key[k]]``
    (``key[k] == len(values)`` means empty), ``values`` the sorted distinct values of u8.
    """
    values = np.flatnonzero(np.bincount(u8.ravel(), minlength=256))
    levels = cut_levels(int(u8.max()), thresholds)
    key = np.searchsorted(values, levels, side="right")
    return values, key


def _fg_bounds(line_max: np.ndarray, values: np.ndarray):
    """First and one-past-last index where ``line_max >= v``, for every v in ``values``."""
    lo = np.searchsorted(np.maximum.accumulate(line_max), values, side="left")
    hi = len(line_max) - np.searchsorted(np.maximum.accumulate(line_max[::-1]), values, side="left")
    return lo.tolist(), hi.tolist()


def level_contours(scoremap: np.ndarray, thresholds: Sequence[float]):
    """Contours of every distinct foreground set among many thresholds.

    Returns:
        ``(contours_per_group, group_of_threshold, (H, W))``: a list of contour lists (one
        per distinct foreground set ``u8 > int(tau * max u8)``), and a (T,) int index into
        it for each threshold.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    u8 = _to_uint8(scoremap)
    values, key = _level_groups(u8, thresholds)
    uniq, group = np.unique(key, return_inverse=True)
    present = uniq[uniq < len(values)]
    cut = values[present]
    y0, y1 = _fg_bounds(u8.max(axis=1), cut)
    x0, x1 = _fg_bounds(u8.max(axis=0), cut)
    # findContours on the crop of the foreground's bounding box: the removed margin is
    # background connected to the outside, so the contours (and their order) are the same.
    contours = [find_contours((u8[y0[i]:y1[i], x0[i]:x1[i]] >= v).view(np.uint8), (x0[i], y0[i]))
                for i, v in enumerate(cut.tolist())]
    contours += [()] * (len(uniq) - len(present))  # thresholds above the max: empty foreground
    return contours, group.reshape(-1), u8.shape


def contours_to_boxes(contours, shape: tuple[int, int], multi_contour: bool) -> np.ndarray:
    """(K, 4) int64 wsolevaluation boxes of a contour list for an (H, W) map."""
    return _contours_to_boxes(contours, shape[1], shape[0], multi_contour)


def level_boxes(contours_per_group, shape: tuple[int, int], multi_contour: bool):
    """Boxes of many contour lists at once, vectorised over all their points.

    Args:
        contours_per_group: G contour lists (from :func:`level_contours`).
        shape: the map's (H, W).
        multi_contour: every contour (True) or the largest by ``cv2.contourArea`` (False).

    Returns:
        ``(boxes, starts)``: (K, 4) int64 boxes, group g owning ``boxes[starts[g]:starts[g+1]]``
        (``[[0, 0, 0, 0]]`` for a group without contours), ``starts`` (G,) int64.
    """
    height, width = shape
    per_group = np.fromiter(map(len, contours_per_group), dtype=np.int64, count=len(contours_per_group))
    flat = [c for cs in contours_per_group for c in cs]
    counts = np.maximum(per_group if multi_contour else np.minimum(per_group, 1), 1)
    out_ends = np.cumsum(counts)
    out_starts = out_ends - counts
    boxes = np.zeros((int(out_ends[-1]) if len(counts) else 0, 4), dtype=np.int64)
    if not flat:
        return boxes, out_starts
    points = np.concatenate(flat).reshape(-1, 2).astype(np.int64)
    plen = np.fromiter(map(len, flat), dtype=np.int64, count=len(flat))
    pend = np.cumsum(plen)
    pstart = pend - plen
    group = np.repeat(np.arange(len(per_group)), per_group)  # group of every contour
    cstart = np.cumsum(per_group) - per_group  # first contour of every group
    if multi_contour:
        rank = np.arange(len(flat)) - cstart[group]
    else:
        prev = np.roll(points, 1, axis=0)
        prev[pstart] = points[pend - 1]  # close each polygon on itself
        cross = prev[:, 0] * points[:, 1] - points[:, 0] * prev[:, 1]
        # shoelace in exact int64 == cv2.contourArea (same terms in double); ties -> first
        area = np.abs(np.add.reduceat(cross, pstart))
        nonempty = per_group > 0
        best = np.maximum.reduceat(area, cstart[nonempty])
        is_best = area == np.repeat(best, per_group[nonempty])
        cand = np.flatnonzero(is_best)
        _, first = np.unique(group[cand], return_index=True)
        keep = cand[first]
        pstart, pend, group = pstart[keep], pend[keep], group[keep]
        points = np.concatenate([points[a:b] for a, b in zip(pstart.tolist(), pend.tolist())])
        lengths = pend - pstart
        pend = np.cumsum(lengths)
        pstart = pend - lengths
        rank = np.zeros(len(keep), dtype=np.int64)
    lo = np.minimum.reduceat(points, pstart, axis=0)
    hi = np.maximum.reduceat(points, pstart, axis=0)
    rows = out_starts[group] + rank
    boxes[rows, 0], boxes[rows, 1] = lo[:, 0], lo[:, 1]
    boxes[rows, 2] = np.minimum(hi[:, 0] + 1, width - 1)  # boundingRect x + w, clipped
    boxes[rows, 3] = np.minimum(hi[:, 1] + 1, height - 1)
    return boxes, out_starts


def iter_level_boxes(scoremap: np.ndarray, thresholds: Sequence[float], multi_contour: bool = False):
    """Distinct-foreground boxes for many thresholds.

    Returns:
        ``(boxes_per_group, group_of_threshold)``: a list of (K_g, 4) int64 arrays, one per
        distinct foreground set, and a (T,) index into that list for each threshold.
    """
    contours, group, shape = level_contours(scoremap, thresholds)
    boxes, starts = level_boxes(contours, shape, multi_contour)
    return np.split(boxes, starts[1:]), group


def boxes_at_thresholds(scoremap: np.ndarray, thresholds: Sequence[float],
                        multi_contour: bool = False) -> list[np.ndarray]:
    """wsolevaluation boxes for many thresholds (fast, identical to the straightforward loop).

    Args:
        scoremap: (H, W) float in [0, 1].
        thresholds: (T,) floats.
        multi_contour: False -> the largest contour (MaxBoxAcc); True -> every contour
            (MaxBoxAccV2).

    Returns:
        list of T int64 arrays (K_t, 4), ``x0, y0, x1, y1``.
    """
    boxes, group = iter_level_boxes(scoremap, thresholds, multi_contour)
    return [boxes[g] for g in group]


def mask_at_threshold(scoremap: np.ndarray, threshold: float, largest: bool = False) -> np.ndarray:
    """(H, W) bool ``scoremap >= threshold`` (wsolevaluation's mask rule).

    With ``largest`` keep only the largest 8-connected component (by pixel count, ties
    to the lowest label).  A NaN map gives an all-False mask.
    """
    scoremap = np.asarray(scoremap, dtype=np.float64)
    if np.isnan(scoremap).any():
        return np.zeros(scoremap.shape, dtype=bool)
    mask = scoremap >= threshold
    return largest_component(mask) if largest else mask


def largest_component(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the largest 8-connected component of ``mask`` (empty stays empty)."""
    mask = np.asarray(mask, dtype=bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def art2020_gray(scoremap: np.ndarray, size: int = 224) -> np.ndarray:
    """ART/ADL map -> uint8 gray image (REFERENCE 6.5).

    Bicubic resize to ``size`` (if needed), per-image min-max, matplotlib ``cubehelix``
    colour map * 255, RGB -> GRAY.  The dtype is unverified in REFERENCE; we convert the
    colour image to uint8 (truncation) before ``cv2.cvtColor(RGB2GRAY)``, which is what the
    official code's ``np.uint8(cmap(x) * 255)`` style gives.  A NaN or constant map gives
    all zeros.
    """
    import matplotlib

    m = np.asarray(scoremap, dtype=np.float64)
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC)
    if np.isnan(m).any() or m.max() == m.min():
        return np.zeros((size, size), dtype=np.uint8)
    m = (m - m.min()) / (m.max() - m.min())
    rgb = np.uint8(matplotlib.colormaps["cubehelix"](m)[..., :3] * 255)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def art2020_box(scoremap: np.ndarray, threshold: float, size: int = 224) -> np.ndarray:
    """ART fixed-threshold box (REFERENCE 6.5).

    Returns:
        (4,) int64 ``[x, y, x + w, y + h]`` of the largest contour of
        ``gray > int(threshold * max gray)`` (no ``W - 1`` clip); ``[0, 0, 1, 1]`` when
        there is no contour (NaN or constant maps included).
    """
    gray = art2020_gray(scoremap, size)
    _, fg = cv2.threshold(gray, int(threshold * np.max(gray)), 255, cv2.THRESH_BINARY)
    contours = find_contours(fg)
    if len(contours) == 0:
        return np.array([0, 0, 1, 1], dtype=np.int64)
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return np.array([x, y, x + w, y + h], dtype=np.int64)


def region_at_threshold(scoremap: np.ndarray, threshold: float, multi_contour: bool = False,
                        min_fraction: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The object region of a [0, 1] map at ``threshold``: a mask and its box(es), which agree.

    Foreground is wsolevaluation's ``uint8(map * 255) > int(tau * max)``; its 8-connected
    components are the candidate regions. The mask is the largest component (``multi_contour``:
    every component of at least ``min_fraction`` of the largest's area) and each box is the
    exact bounding box of one kept component, inclusive ``x0, y0, x1, y1``, largest first.

    Returns:
        ((H, W) bool mask, (K, 4) int64 boxes); an empty foreground gives an empty mask and
        ``[[0, 0, 0, 0]]`` (as wsolevaluation's no-contour box).
    """
    u8 = _to_uint8(scoremap)
    fg = (u8 > int(threshold * int(u8.max()))).view(np.uint8) if u8.max() > 0 else np.zeros_like(u8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.zeros(u8.shape, dtype=bool), np.zeros((1, 4), dtype=np.int64)
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = 1 + np.argsort(-areas, kind="stable")
    keep = [k for k in order if areas[k - 1] >= min_fraction * areas.max()] if multi_contour else order[:1]
    boxes = [[stats[k, cv2.CC_STAT_LEFT], stats[k, cv2.CC_STAT_TOP],
              stats[k, cv2.CC_STAT_LEFT] + stats[k, cv2.CC_STAT_WIDTH] - 1,
              stats[k, cv2.CC_STAT_TOP] + stats[k, cv2.CC_STAT_HEIGHT] - 1] for k in keep]
    return np.isin(labels, keep), np.asarray(boxes, dtype=np.int64)
