"""MaxBoxAccV2's per-level max IoU without findContours: a union-find sweep (numba).

With ``RETR_TREE`` the contours of a binary map (8-connected foreground) are exactly:

- one outer border per 8-connected foreground component, whose bounding rect is the
  component's bounding box (its extreme pixels are border points, and CHAIN_APPROX_SIMPLE
  keeps the ends of every straight run);
- one hole border per 4-connected background component that does not touch the image edge,
  traced through the foreground pixels 4-adjacent to it, so its bounding rect is the hole's
  bounding box grown by one pixel on every side.

So the wsolevaluation boxes of every level ``u8 > c`` (c = 0..255) follow from two sweeps over
the pixels sorted by value: foreground components merge as c goes down, background components
merge as c goes up. Each box gets wsolevaluation's end rule ``min(x + w, W - 1)``. The tests
check identity with findContours on random, noisy and hand-made maps (holes, islands in holes,
border contact, diagonal chains, single pixels).
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

__all__ = ["v2_best_iou_per_cut"]


@njit(cache=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True)
def _best_iou(bx0, by0, bx1, by1, gt):
    """Max inclusive (+1) IoU of one box with the GT boxes (M, 4), as wsol.metrics.iou."""
    best = 0.0
    area_a = (bx1 - bx0 + 1) * (by1 - by0 + 1)
    for m in range(gt.shape[0]):
        iw = min(bx1, gt[m, 2]) - max(bx0, gt[m, 0]) + 1
        ih = min(by1, gt[m, 3]) - max(by0, gt[m, 1]) + 1
        inter = max(iw, 0) * max(ih, 0)
        union = area_a + (gt[m, 2] - gt[m, 0] + 1) * (gt[m, 3] - gt[m, 1] + 1) - inter
        if union > 0:
            v = inter / union
            if v > best:
                best = v
    return best


@njit(cache=True)
def _sorted_by_value(flat):
    """(order of pixels by ascending value, start offset of each value 0..256)."""
    starts = np.zeros(257, np.int64)
    for i in range(flat.size):
        starts[flat[i] + 1] += 1
    for v in range(256):
        starts[v + 1] += starts[v]
    order = np.empty(flat.size, np.int64)
    pos = starts[:256].copy()
    for i in range(flat.size):
        v = flat[i]
        order[pos[v]] = i
        pos[v] += 1
    return order, starts


@njit(cache=True)
def _sweep(u8, gt, need, foreground, buf, edge):
    """Best IoU per cut level c (256,) over outer (foreground=True) or hole boxes.

    ``buf`` (8, >= H*W) int64 and ``edge`` (>= H*W) bool are scratch space (reused between
    calls: every entry is written before it is read, except ``parent``, reset here).
    """
    H, W = u8.shape
    N = H * W
    order, starts = _sorted_by_value(u8.ravel())
    parent, size, x0, y0, x1, y1, active, where = buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]
    parent[:N] = -1
    nact = 0
    best = np.zeros(256)
    if foreground:  # 8-connected foreground
        dys = np.array([-1, -1, -1, 0, 0, 1, 1, 1])
        dxs = np.array([-1, 0, 1, -1, 1, -1, 0, 1])
    else:  # 4-connected background
        dys = np.array([-1, 0, 0, 1])
        dxs = np.array([0, -1, 1, 0])
    for step in range(256):
        v = 255 - step if foreground else step
        for k in range(starts[v], starts[v + 1]):
            p = order[k]
            y, x = p // W, p % W
            parent[p], size[p] = p, 1
            x0[p], y0[p], x1[p], y1[p] = x, y, x, y
            edge[p] = x == 0 or y == 0 or x == W - 1 or y == H - 1
            active[nact], where[p] = p, nact
            nact += 1
            rp = p  # the root of p's set, kept current through the unions below
            for d in range(dys.size):
                yy, xx = y + dys[d], x + dxs[d]
                if yy < 0 or yy >= H or xx < 0 or xx >= W:
                    continue
                q = yy * W + xx
                if parent[q] < 0:
                    continue
                ra, rb = rp, _find(parent, q)
                if ra == rb:
                    continue
                if size[ra] < size[rb]:
                    ra, rb = rb, ra
                parent[rb] = ra
                size[ra] += size[rb]
                x0[ra], y0[ra] = min(x0[ra], x0[rb]), min(y0[ra], y0[rb])
                x1[ra], y1[ra] = max(x1[ra], x1[rb]), max(y1[ra], y1[rb])
                edge[ra] = edge[ra] or edge[rb]
                last = active[nact - 1]  # swap-remove rb from the active roots
                active[where[rb]] = last
                where[last] = where[rb]
                nact -= 1
                rp = ra
        c = v - 1 if foreground else v  # foreground is u8 > c; background u8 <= c
        if c < 0 or not need[c]:
            continue
        b = 0.0
        for a in range(nact):
            r = active[a]
            if foreground:
                bx0, by0, bx1, by1 = x0[r], y0[r], min(x1[r] + 1, W - 1), min(y1[r] + 1, H - 1)
            elif edge[r]:
                continue
            else:  # hole border: one pixel around the hole
                bx0, by0, bx1, by1 = x0[r] - 1, y0[r] - 1, min(x1[r] + 2, W - 1), min(y1[r] + 2, H - 1)
            b = max(b, _best_iou(bx0, by0, bx1, by1, gt))
        best[c] = b
    return best


_SCRATCH: dict = {}


def _scratch(n: int):
    """Per-thread scratch arrays for maps of up to n pixels (allocating them costs more than a sweep)."""
    key = threading.get_ident()
    buf, edge = _SCRATCH.get(key, (None, None))
    if buf is None or buf.shape[1] < n:
        buf, edge = np.empty((8, n), np.int64), np.empty(n, np.bool_)
        _SCRATCH[key] = (buf, edge)
    return buf, edge


def v2_best_iou_per_cut(u8: np.ndarray, gt: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Max IoU over all RETR_TREE contour boxes of ``u8 > c`` with the GT, for each cut c.

    Args:
        u8: (H, W) uint8 map (wsolevaluation's truncated map).
        gt: (M, 4) int64 GT boxes x0, y0, x1, y1.
        cuts: (T,) int cut levels in 0..255.
    Returns:
        (T,) float64; an empty foreground gives the IoU of the box [0, 0, 0, 0].
    """
    u8 = np.ascontiguousarray(u8, dtype=np.uint8)
    gt = np.ascontiguousarray(gt, dtype=np.int64).reshape(-1, 4)
    cuts = np.asarray(cuts, dtype=np.int64)
    need = np.zeros(256, np.bool_)
    need[cuts] = True
    buf, edge = _scratch(u8.size)
    best = np.maximum(_sweep(u8, gt, need, True, buf, edge), _sweep(u8, gt, need, False, buf, edge))
    empty = cuts >= int(u8.max())  # no pixel above the cut: no contour, box [0, 0, 0, 0]
    out = best[cuts]
    out[empty] = _best_iou(0, 0, 0, 0, gt)
    return out
