"""MaxBoxAcc and MaxBoxAccV2 per level without findContours: union-find sweeps (numba).

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

MaxBoxAcc (v1) takes the largest contour by ``cv2.contourArea``, first of the largest on ties.
That contour is the outer border of a top-level component (one not inside a hole): a hole
border or a component inside a hole encloses no more area than the border around it and comes
after it in findContours' order. The outer border of a component, holes filled, is the polygon
through the centres of its boundary pixels, and its area is 1 per 2x2 window with four of the
filled component's pixels plus 1/2 per window with three. The top-level components with their
holes filled are the 8-connected components of ``fill > c``, where ``fill`` is u8 with every
hole filled (the level at which a pixel joins the background component of the image edge,
which the background sweep records). A third sweep, over fill, keeps every such component's
box, area and first pixel in raster order; findContours lists top-level borders by descending
first pixel, so equal areas go to the later first pixel. The tests compare the boxes with
findContours + contourArea + boundingRect on every binary 4 x 4 map, random maps at every level
and hand-made ones (equal areas, touching components, single pixels, holes, image borders).

Implementation notes (all exact, for speed):

- the map is indexed with a one-pixel frame, so neighbours need no bounds checks; in the
  background sweep the frame is one permanent component ("outside"), so background touching
  the edge simply merges into it and every other background root is a hole;
- which neighbours are already in the set when a pixel is added follows from the values
  alone, so one vectorised pass computes it for both sweeps (``_ring_masks``); two set
  neighbours adjacent to each other are in one set already, so a table lists the few that
  need a ``find`` (``_ring_tables``);
- only roots carry a box (and a union-by-rank rank): a new pixel joins its neighbours'
  component (one box update) and starts a root only when no neighbour is in the set yet;
- a root's IoU is cached with the box it was computed for, so each evaluated level only
  recomputes the boxes that changed;
- ``best_iou_batch`` runs whole batches in one call (v1 and / or v2), maps spread over numba
  threads, the GIL released.
"""

from __future__ import annotations

import contextlib
import sys
import threading

import numpy as np
from numba import get_num_threads, njit, prange

__all__ = ["v2_best_iou_per_cut", "v2_best_iou_batch", "v1_best_iou_per_cut", "v1_boxes_per_cut", "best_iou_batch"]

_OUTSIDE_RANK = 1 << 29  # so that union by rank always keeps the frame component as the root


@njit(cache=True)
def _union(parent, rank, box, ra, rb):
    """Merge roots ra != rb (union by rank); box[r, :4] x0, y0, x1, y1 per root. Returns the root."""
    if rank[ra] < rank[rb]:
        ra, rb = rb, ra
    parent[rb] = ra
    rank[ra] += rank[ra] == rank[rb]
    box[ra, 0] = min(box[ra, 0], box[rb, 0])
    box[ra, 1] = min(box[ra, 1], box[rb, 1])
    box[ra, 2] = max(box[ra, 2], box[rb, 2])
    box[ra, 3] = max(box[ra, 3], box[rb, 3])
    return ra


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
def _alloc(H, W):
    """Scratch for one (H, W) map, N2 = (H + 2) * (W + 2) framed pixels, N = H * W: parent,
    rank (N2,) int32; box (N2, 8) int32 (box, box of the cached IoU); iou (N2,); framed (N2,)
    int16; masks (N2,) uint16; order, xs, ys, roots (N,) int32; rings (N,) uint16; starts
    (257,); the ring tables (rep, count) for 8- then 4-connectivity; for MaxBoxAcc (v1, see
    ``_sweep``) forder (N,) int32, nxt (N2,) int32, the window-gain table (256,) int32, px, py
    (N2,) int32 the column and row of every framed pixel, tail (N2,) int32 and fstarts (257,)."""
    N2, N = (H + 2) * (W + 2), H * W
    fg_rep, fg_count = _ring_tables(True)
    bg_rep, bg_count = _ring_tables(False)
    return (np.empty(N2, np.int32), np.empty(N2, np.int32), np.empty((N2, 8), np.int32), np.empty(N2),
            np.empty(N2, np.int16), np.empty(N2, np.uint16),
            np.empty(N, np.int32), np.empty(N, np.int32), np.empty(N, np.int32), np.empty(N, np.int32),
            np.empty(N, np.uint16), np.zeros(257, np.int64), fg_rep, fg_count, bg_rep, bg_count,
            np.empty(N, np.int32), np.empty(N2, np.int32), _window_gain(), *_coordinates(H, W),
            np.empty(N2, np.int32), np.zeros(257, np.int64))


@njit(cache=True)
def _coordinates(H, W):
    """px, py (N2,) int32: column and row of every framed pixel (-1 on the frame)."""
    W2 = W + 2
    px, py = np.full((H + 2) * W2, -1, np.int32), np.full((H + 2) * W2, -1, np.int32)
    for y in range(H):
        for x in range(W):
            px[(y + 1) * W2 + x + 1], py[(y + 1) * W2 + x + 1] = x, y
    return px, py


_b = np.uint16  # a bit, typed so that the mask loop stays in 16-bit lanes


@njit(cache=True)
def _ring_masks(framed, W2, masks):
    """masks (N2,) for every framed pixel p: which of its 8 neighbours (bit i: N, NE, E, SE, S,
    SW, W, NW) are already in the set when p is added. Low byte: the foreground sweep (values
    down, so a higher value, or the same value earlier in raster order); high byte: the
    background sweep (values up; the frame, valued -1, is always in)."""
    for y in range(1, framed.size // W2 - 1):  # row by row, so that the loop vectorises
        up, mid = framed[(y - 1) * W2:y * W2], framed[y * W2:(y + 1) * W2]
        dn = framed[(y + 1) * W2:(y + 2) * W2]
        out = masks[y * W2:(y + 1) * W2]
        for x in range(1, W2 - 1):
            v = mid[x]
            n, ne, e, se = up[x], up[x + 1], mid[x + 1], dn[x + 1]
            s, sw, w, nw = dn[x], dn[x - 1], mid[x - 1], up[x - 1]
            fg = (_b(n >= v) | _b(ne >= v) << 1 | _b(e > v) << 2 | _b(se > v) << 3
                  | _b(s > v) << 4 | _b(sw > v) << 5 | _b(w >= v) << 6 | _b(nw >= v) << 7)
            bg = (_b(n <= v) | _b(ne <= v) << 1 | _b(e < v) << 2 | _b(se < v) << 3
                  | _b(s < v) << 4 | _b(sw < v) << 5 | _b(w <= v) << 6 | _b(nw <= v) << 7)
            out[x] = fg | bg << 8


@njit(cache=True)
def _sort_by_value(u8, framed, masks, order, xs, ys, rings, starts):
    """Counting sort of the pixels by ascending value, raster order within a value.

    Fills framed (N2,) the map with a -1 frame, order (N,) framed pixel indices, xs/ys their
    coordinates, rings (N,) their ``_ring_masks`` and starts (257,) the first position of
    each value.
    """
    H, W = u8.shape
    W2 = W + 2
    framed[:] = -1
    starts[:] = 0
    for y in range(H):
        for x in range(W):
            framed[(y + 1) * W2 + x + 1] = u8[y, x]
            starts[u8[y, x] + 1] += 1
    for v in range(256):
        starts[v + 1] += starts[v]
    _ring_masks(framed, W2, masks)
    pos = starts[:256].copy()
    for y in range(H):
        for x in range(W):
            p = (y + 1) * W2 + x + 1
            k = pos[framed[p]]
            order[k], xs[k], ys[k], rings[k] = p, x, y, masks[p]
            pos[framed[p]] = k + 1


@njit(cache=True)
def _level_best(parent, box, iou, roots, nr, gt, H, W, foreground):
    """Max IoU over the current boxes; drops merged roots from roots[:nr]. Returns (best, new nr).

    box[r, 4:8] is the box that iou[r] was computed for: most levels leave most boxes unchanged.
    """
    b = 0.0
    j = 0
    for i in range(nr):
        r = roots[i]
        if parent[r] != r:
            continue
        roots[j] = r
        j += 1
        if (box[r, 0] != box[r, 4] or box[r, 1] != box[r, 5] or box[r, 2] != box[r, 6]
                or box[r, 3] != box[r, 7]):
            box[r, 4], box[r, 5], box[r, 6], box[r, 7] = box[r, 0], box[r, 1], box[r, 2], box[r, 3]
            if foreground:
                bx0, by0 = box[r, 0], box[r, 1]
                bx1, by1 = min(box[r, 2] + 1, W - 1), min(box[r, 3] + 1, H - 1)
            else:  # hole border: one pixel around the hole
                bx0, by0 = box[r, 0] - 1, box[r, 1] - 1
                bx1, by1 = min(box[r, 2] + 2, W - 1), min(box[r, 3] + 2, H - 1)
            iou[r] = _best_iou(bx0, by0, bx1, by1, gt)
        b = max(b, iou[r])
    return b, j


@njit(cache=True)
def _ring_tables(eight):
    """Which neighbours of a new pixel need a ``find``, by the set/unset mask of its ring.

    Ring bit i: N, NE, E, SE, S, SW, W, NW. Set ring pixels adjacent to each other (8- or
    4-adjacency) are in one set already, so one per group is enough; with 4-connectivity only
    groups holding a 4-neighbour touch the pixel. Returns rep (256, 4) ring positions and
    count (256,).
    """
    rep, count = np.zeros((256, 4), np.int32), np.zeros(256, np.int32)
    for m in range(256):
        lab = np.arange(8)
        for i in range(8):
            for j in ((i + 1) % 8, (i + 2) % 8):
                adjacent = j == (i + 1) % 8 or (eight and i % 2 == 0)
                if adjacent and (m >> i) & 1 and (m >> j) & 1:
                    old = lab[j]
                    for k in range(8):
                        if lab[k] == old:
                            lab[k] = lab[i]
        taken = np.zeros(8, np.bool_)
        for i in (0, 2, 4, 6, 1, 3, 5, 7):
            if (m >> i) & 1 and not taken[lab[i]] and (eight or i % 2 == 0):
                rep[m, count[m]] = i
                count[m] += 1
            taken[lab[i]] = taken[lab[i]] or (m >> i) & 1 == 1
    return rep, count


@njit(cache=True)
def _sweep(u8, gt, need, best, scratch, foreground):
    """best[c] = max(best[c], max IoU of the contour boxes of u8 > c) for need[c], from one kind.

    foreground: outer boxes, 8-connected components of u8 > c, added from the top value down.
    Otherwise hole boxes: 4-connected components of u8 <= c that do not touch the edge, grown
    by one pixel, added from value 0 up. The background sweep also lists the pixels in the
    order they join the edge's component ("outside"), for MaxBoxAcc (``_v1_sweep``): a pixel's
    level there is u8 with every hole filled. forder (N,) gets the framed pixel indices by
    ascending filled level, fstarts (257,) the first position of each level; hole components
    keep their pixels in a linked list (nxt, tail (N2,); the root heads its list), written to
    forder when the hole joins the outside.
    """
    H, W = u8.shape
    W2 = W + 2
    parent, rank, box, iou, framed, masks, order, xs, ys, roots, rings, starts = scratch[:12]
    rep, count = scratch[12:14] if foreground else scratch[14:16]
    forder, nxt, tail, fstarts = scratch[16], scratch[17], scratch[21], scratch[22]
    ring = np.array([-W2, -W2 + 1, 1, W2 + 1, W2, W2 - 1, -1, -W2 - 1], np.int32)
    off = np.empty((256, 4), np.int32)  # the neighbours to link, as index offsets
    for m in range(256):
        for i in range(count[m]):
            off[m, i] = ring[rep[m, i]]
    shift = 0 if foreground else 8
    if not foreground:  # the frame: one component with root 0, outside the image
        for x in range(W2):
            parent[x] = parent[(H + 1) * W2 + x] = 0
        for y in range(1, H + 1):
            parent[y * W2] = parent[y * W2 + W + 1] = 0
        rank[0] = _OUTSIDE_RANK
    nr, nf = 0, 0
    last, changed = 0.0, True
    for step in range(256):
        v = 255 - step if foreground else step
        fstarts[v] = nf
        for k in range(starts[v], starts[v + 1]):
            p = order[k]
            m = (rings[k] >> shift) & 255
            x, y = xs[k], ys[k]
            cm = count[m]
            if cm == 0:  # a new root
                parent[p], rank[p] = p, 0
                box[p, 0], box[p, 1], box[p, 2], box[p, 3] = x, y, x, y
                box[p, 4] = -1  # no IoU cached yet
                roots[nr] = p
                nr += 1
                if not foreground:  # a hole pixel heads its component's list
                    nxt[p], tail[p] = -1, p
                continue
            # the hot path is written out: a helper that LLVM does not inline (and that
            # depends on the caller) makes the sweep several times slower
            r = -1
            for i in range(cm):
                q = p + off[m, i]
                while parent[q] != q:  # find, halving the path
                    parent[q] = parent[parent[q]]
                    q = parent[q]
                if r < 0:
                    r = q
                elif q != r:
                    a = r
                    r = _union(parent, rank, box, r, q)
                    if not foreground:
                        o = q if r == a else a  # the root merged into r
                        if r == 0:  # a hole joins the outside: its pixels get level v
                            while o >= 0:
                                forder[nf] = o
                                nf += 1
                                o = nxt[o]
                        else:
                            nxt[tail[r]] = o
                            tail[r] = tail[o]
            parent[p] = r  # join root r
            box[r, 0], box[r, 1] = min(box[r, 0], x), min(box[r, 1], y)
            box[r, 2], box[r, 3] = max(box[r, 2], x), max(box[r, 3], y)
            if not foreground:
                if r == 0:
                    forder[nf] = p
                    nf += 1
                else:
                    nxt[tail[r]] = p
                    nxt[p], tail[r] = -1, p
        c = v - 1 if foreground else v  # foreground is u8 > c; background u8 <= c
        changed = changed or starts[v + 1] > starts[v]
        if c >= 0 and need[c]:
            if changed:  # else the boxes are those of the last evaluated level
                last, nr = _level_best(parent, box, iou, roots, nr, gt, H, W, foreground)
                changed = False
            best[c] = max(best[c], last)
    fstarts[256] = nf


@njit(cache=True)
def _window_gain():
    """gain (256,): for the set/unset ring mask of a new pixel (bit i: N, NE, E, SE, S, SW, W, NW),
    how many of its four 2x2 windows (N NE E, E SE S, S SW W, W NW N) already hold two or three
    set pixels. That is twice the area the pixel adds to its component's outer border polygon,
    which is 1 per window of four set pixels plus 1/2 per window of three."""
    gain = np.zeros(256, np.int32)
    for m in range(256):
        for w in range(4):
            k = ((m >> (2 * w)) & 1) + ((m >> (2 * w + 1)) & 1) + ((m >> ((2 * w + 2) % 8)) & 1)
            gain[m] += k >= 2
    return gain


@njit(cache=True)
def _largest(parent, box, roots, nr):
    """The root of the largest outer border (box[r, 4] twice its area, box[r, 5] its first pixel in
    raster order; ties go to the later first pixel); drops merged roots from roots[:nr].
    Returns (root, new nr)."""
    best = -1
    j = 0
    for i in range(nr):
        r = roots[i]
        if parent[r] != r:
            continue
        roots[j] = r
        j += 1
        if best < 0 or box[r, 4] > box[best, 4] or (box[r, 4] == box[best, 4] and box[r, 5] > box[best, 5]):
            best = r
    return best, j


@njit(cache=True)
def _v1_sweep(W, H, need, boxes, scratch):
    """boxes[c] (256, 4) = the MaxBoxAcc box of ``u8 > c`` (largest contour by contourArea, as
    wsolevaluation's x0, y0, min(x + w, W - 1), min(y + h, H - 1)) for every c with need[c] and
    some pixel above c, from the pixels by filled level that the background ``_sweep`` listed.

    The largest RETR_TREE contour is the outer border of an 8-connected component of
    ``fill > c`` (a component with its holes filled, which the border encloses; a hole border
    or a component inside a hole is never larger and comes later in findContours' order). The
    border polygon's area (cv2.contourArea) is 1 per 2x2 window of the component with four
    pixels plus 1/2 per window with three, so it grows by ``_window_gain`` as pixels join.
    findContours lists top-level borders by descending raster index of their first pixel and
    ``max`` keeps the first, so equal areas go to the later first pixel.

    Pixels join from the highest filled level down; which neighbours are in already is read from
    the ``added`` flags (any order within a level gives the same components). The largest root is
    kept up to date as pixels join, and all roots are rescanned only after its (area, first
    pixel) went down, which happens when it gains a pixel earlier in raster order but no area.
    """
    W2 = W + 2
    parent, rank, box, added, roots = scratch[0], scratch[1], scratch[2], scratch[5], scratch[9]
    rep, count, order, gain, px, py, starts = scratch[12], scratch[13], scratch[16], scratch[18], \
        scratch[19], scratch[20], scratch[22]
    ring = np.array([-W2, -W2 + 1, 1, W2 + 1, W2, W2 - 1, -1, -W2 - 1], np.int32)
    off = np.empty((256, 4), np.int32)
    for m in range(256):
        for i in range(count[m]):
            off[m, i] = ring[rep[m, i]]
    added[:] = 0
    nr, best, best_area, best_first, dirty = 0, -1, -1, -1, False
    for step in range(256):
        v = 255 - step
        for k in range(starts[v + 1] - 1, starts[v] - 1, -1):
            p = order[k]
            m = (added[p - W2] | added[p - W2 + 1] << 1 | added[p + 1] << 2 | added[p + W2 + 1] << 3
                 | added[p + W2] << 4 | added[p + W2 - 1] << 5 | added[p - 1] << 6 | added[p - W2 - 1] << 7)
            added[p] = 1
            x, y = px[p], py[p]
            cm = count[m]
            if cm == 0:  # a new root: a single pixel, area 0
                parent[p], rank[p] = p, 0
                box[p, 0], box[p, 1], box[p, 2], box[p, 3] = x, y, x, y
                box[p, 4], box[p, 5] = 0, y * W + x
                roots[nr] = p
                nr += 1
                r = p
            else:
                r = -1
                for i in range(cm):
                    q = p + off[m, i]
                    while parent[q] != q:
                        parent[q] = parent[parent[q]]
                        q = parent[q]
                    if r < 0:
                        r = q
                    elif q != r:
                        area, first = box[r, 4] + box[q, 4], min(box[r, 5], box[q, 5])
                        r = _union(parent, rank, box, r, q)
                        box[r, 4], box[r, 5] = area, first
                parent[p] = r
                box[r, 0], box[r, 1] = min(box[r, 0], x), min(box[r, 1], y)
                box[r, 2], box[r, 3] = max(box[r, 2], x), max(box[r, 3], y)
                box[r, 4] += gain[m]
                box[r, 5] = min(box[r, 5], y * W + x)
            area, first = box[r, 4], box[r, 5]
            if r == best or (best >= 0 and parent[best] != best):  # the largest grew (or merged into r)
                dirty = dirty or (area == best_area and first < best_first)
                best, best_area, best_first = r, area, first
            elif area > best_area or (area == best_area and first > best_first):
                best, best_area, best_first = r, area, first
        if v >= 1 and need[v - 1] and nr > 0:
            if dirty:
                best, nr = _largest(parent, box, roots, nr)
                best_area, best_first, dirty = box[best, 4], box[best, 5], False
            boxes[v - 1, 0], boxes[v - 1, 1] = box[best, 0], box[best, 1]
            boxes[v - 1, 2], boxes[v - 1, 3] = min(box[best, 2] + 1, W - 1), min(box[best, 3] + 1, H - 1)


@njit(cache=True)
def _sweeps(u8, gt, cuts, scratch, v1, v2, best_v2, boxes_v1):
    """The sweeps of one map for cut levels cuts (T,): best_v2 (256,) max IoU over all contour
    boxes per needed level (v2), boxes_v1 (256, 4) the largest contour's box per needed level (v1;
    the background sweep runs for it too, to list the pixels by filled level). Returns max u8."""
    need = np.zeros(256, np.bool_)
    for t in range(cuts.size):
        need[cuts[t]] = True
    framed, masks, order, xs, ys, rings, starts = scratch[4:9] + scratch[10:12]  # all but roots
    _sort_by_value(u8, framed, masks, order, xs, ys, rings, starts)
    if v2:
        _sweep(u8, gt, need, best_v2, scratch, True)
        _sweep(u8, gt, need, best_v2, scratch, False)
    elif v1:
        _sweep(u8, gt, np.zeros(256, np.bool_), best_v2, scratch, False)
    if v1:
        H, W = u8.shape
        _v1_sweep(W, H, need, boxes_v1, scratch)
    top = 0
    for v in range(255, -1, -1):
        if starts[v + 1] > starts[v]:
            top = v
            break
    return top


@njit(cache=True)
def _ious_per_cut(u8, gt, cuts, out_v1, out_v2, scratch, v1, v2):
    """out_v1 / out_v2 (T,): IoU with gt (M, 4) (max over the GT boxes) of the largest contour's
    box (v1), and the max over all contour boxes (v2), of u8 > cuts[t]."""
    best = np.zeros(256)
    boxes = np.zeros((256, 4), np.int64)
    top = _sweeps(u8, gt, cuts, scratch, v1, v2, best, boxes)
    empty = _best_iou(0, 0, 0, 0, gt)  # no pixel above the cut: no contour, box [0, 0, 0, 0]
    if v2:
        for t in range(cuts.size):
            out_v2[t] = empty if cuts[t] >= top else best[cuts[t]]
    if v1:
        iou = np.full(256, -1.0)
        for t in range(cuts.size):
            c = cuts[t]
            if c >= top:
                out_v1[t] = empty
                continue
            if iou[c] < 0:
                iou[c] = _best_iou(boxes[c, 0], boxes[c, 1], boxes[c, 2], boxes[c, 3], gt)
            out_v1[t] = iou[c]


@njit(cache=True)
def _quantise(scoremap, k, u8):
    """u8 (H, W) = wsolevaluation's ``(scoremap * 255).astype(uint8)`` of a float map (H, W),
    as ``wsol.localization._to_uint8``: clipped to [0, 1] and scaled in the map's own dtype
    (k = [0, 1, 255] in that dtype), all zeros if any value is NaN."""
    H, W = scoremap.shape
    for y in range(H):
        for x in range(W):
            if np.isnan(scoremap[y, x]):
                u8[:] = 0
                return
    for y in range(H):
        for x in range(W):
            u8[y, x] = np.uint8(min(max(scoremap[y, x], k[0]), k[1]) * k[2])


@njit(cache=True, parallel=True, nogil=True)
def _batch(maps, k, quantise, gts, gt_start, thresholds, out_v1, out_v2, v1, v2, nthreads):
    """out_v1 / out_v2 (B, T) for maps (B, H, W) (uint8, or float quantised with k when quantise),
    GT boxes gts[gt_start[b]:gt_start[b + 1]] (K, 4), cut levels int(thresholds (T,) * max u8);
    maps dealt round-robin to nthreads workers; v1 / v2 say which outputs to fill (the other
    one may be a single unused row)."""
    B, H, W = maps.shape
    for t in prange(nthreads):  # one scratch per worker
        scratch = _alloc(H, W)
        cuts = np.empty(thresholds.size, np.int64)
        u8 = np.empty((H, W), np.uint8)
        for b in range(t, B, nthreads):
            if quantise:
                _quantise(maps[b], k, u8)
            else:
                u8[:] = maps[b]
            top = float(u8.max())
            for i in range(thresholds.size):  # wsolevaluation's int(tau * max u8)
                cuts[i] = int(thresholds[i] * top)
            _ious_per_cut(u8, gts[gt_start[b]:gt_start[b + 1]], cuts, out_v1[b if v1 else 0],
                          out_v2[b if v2 else 0], scratch, v1, v2)


_SCRATCH: dict = {}


def _scratch(shape):
    """This thread's scratch for (H, W) maps: allocating it costs about as much as a sweep."""
    key = threading.get_ident()
    have, scratch = _SCRATCH.get(key, (None, None))
    if have != shape:
        have, scratch = _SCRATCH[key] = shape, _alloc(*shape)
    return scratch


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
    out = np.empty(cuts.size)
    _ious_per_cut(u8, gt, cuts, out, out, _scratch(u8.shape), False, True)
    return out


def v1_best_iou_per_cut(u8: np.ndarray, gt: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """IoU of the largest RETR_TREE contour's box of ``u8 > c`` (MaxBoxAcc) with the GT, per cut c.

    Args and returns as :func:`v2_best_iou_per_cut` (the max over the GT boxes).
    """
    u8 = np.ascontiguousarray(u8, dtype=np.uint8)
    gt = np.ascontiguousarray(gt, dtype=np.int64).reshape(-1, 4)
    cuts = np.asarray(cuts, dtype=np.int64)
    out = np.empty(cuts.size)
    _ious_per_cut(u8, gt, cuts, out, out, _scratch(u8.shape), True, False)
    return out


def v1_boxes_per_cut(u8: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """(T, 4) int64 wsolevaluation box of the largest contour (by cv2.contourArea) of ``u8 > c``
    for each cut c: ``[x, y, min(x + w, W - 1), min(y + h, H - 1)]``, ``[0, 0, 0, 0]`` when empty."""
    u8 = np.ascontiguousarray(u8, dtype=np.uint8)
    cuts = np.asarray(cuts, dtype=np.int64)
    boxes = np.zeros((256, 4), np.int64)
    top = _sweeps(u8, np.zeros((0, 4), np.int64), cuts, _scratch(u8.shape), True, False, np.zeros(256), boxes)
    out = boxes[np.minimum(cuts, 255)]
    out[cuts >= top] = 0
    return out


@contextlib.contextmanager
def _torch_threads_kept():
    """Keep torch's intra-op thread count across a numba parallel call. numba's OpenMP threading
    layer sets the calling thread's OpenMP thread count to numba's (omp_set_num_threads), which is
    also torch's: a process that ran `torch.set_num_threads(1)` would train on numba's count after
    its first validation (measured: at::get_num_threads() 1 -> 2), and a run resumed in a fresh
    process would then not repeat one that never stopped. torch is only consulted when already
    imported (the score-map path never imports it)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if torch is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)


def best_iou_batch(maps: np.ndarray, gts, thresholds: np.ndarray, v1: bool = True,
                   v2: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """MaxBoxAcc (v1) and MaxBoxAccV2 (v2) max IoU per threshold for a batch of maps, with
    wsolevaluation's cuts ``int(tau * max u8)``.

    Args:
        maps: (B, H, W) uint8 maps, or float32/float64 score maps, quantised here exactly as
            ``wsol.localization._to_uint8`` does.
        gts: B arrays (M_b, 4) int64 GT boxes.
        thresholds: (T,) float64 taus.
        v1, v2: which of the two to compute.
    Returns:
        ((B, T) float64 or None, (B, T) float64 or None): v1's and v2's.  Maps run in parallel
        over numba's threads (``numba.set_num_threads``); the GIL is released meanwhile.
    """
    maps = np.ascontiguousarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"score maps must be (B, H, W), got shape {maps.shape}")
    quantise = maps.dtype != np.uint8
    if quantise and maps.dtype not in (np.float32, np.float64):
        raise TypeError(f"maps must be uint8, float32 or float64, got {maps.dtype}")
    B = maps.shape[0]
    gts = [np.asarray(g, dtype=np.int64).reshape(-1, 4) for g in gts]
    if len(gts) != B:
        raise ValueError(f"{B} score maps but {len(gts)} GT box sets")
    gt_start = np.zeros(B + 1, np.int64)
    gt_start[1:] = np.cumsum([len(g) for g in gts])
    flat = np.concatenate(gts) if B else np.zeros((0, 4), np.int64)
    out_v1 = np.empty((B if v1 else 1, len(thresholds)))  # one unused row when not asked for
    out_v2 = np.empty((B if v2 else 1, len(thresholds)))
    if B and (v1 or v2):
        k = np.array([0, 1, 255], maps.dtype)
        with _torch_threads_kept():
            _batch(maps, k, quantise, flat, gt_start, np.asarray(thresholds, dtype=np.float64), out_v1, out_v2,
                   v1, v2, min(get_num_threads(), B))
    return (out_v1 if v1 else None), (out_v2 if v2 else None)


def v2_best_iou_batch(maps: np.ndarray, gts, thresholds: np.ndarray) -> np.ndarray:
    """``v2_best_iou_per_cut`` for a batch (:func:`best_iou_batch` with v2 only): (B, T) float64."""
    return best_iou_batch(maps, gts, thresholds, v1=False, v2=True)[1]
