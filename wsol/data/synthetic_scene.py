"""Multi-object scenes for the ILSVRC / OpenImages stand-ins (wsol.data.synthetic_wsoleval): the
synthetic CUB renderer (:mod:`wsol.data.synthetic_render`) extended to 1-4 objects of one class per
image, each posed inside its own cell of the image (so objects never overlap), and, past its 256
classes, two more appearance axes (a solid rim and a round hole)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .synthetic_render import (
    _POLYGONS,
    _TAIL_PROB,
    MAX_CLASSES as _RENDER_CLASSES,
    ClassSpec,
    _background,
    _check_int,
    clutter,
    _colour_pair,
    _composite,
    _finish,
    _luma,
    _period,
    _pose,
    _raster,
    _tail_polygon,
    _texture,
    _two_tone,
    class_specs,
)

__all__ = ["MAX_CLASSES", "MAX_OBJECTS", "ObjectClass", "SyntheticScene", "object_classes", "render_scene"]

MAX_CLASSES = 1000  # ImageNet-1K; 257..1000 use this module's rim / hole axes
MAX_OBJECTS = 3  # labelled objects per image; one more cell is kept for an unlabelled object
_VARIANTS = ((False, False), (True, False), (False, True), (True, True))  # (rim, hole)


# --------------------------------------------------------------------------- appearance


@dataclass(frozen=True)
class ObjectClass:
    """Appearance of one class: the CUB renderer's ``spec`` (shape, texture, band, tail) and
    this module's extra axes, used past 256 classes: a solid ``rim`` along the object's
    border and a round ``hole`` at its deepest point (not part of its mask)."""

    index: int
    spec: ClassSpec
    rim: bool = False
    hole: bool = False

    @property
    def name(self) -> str:
        return "_".join([w for w, on in (("Rimmed", self.rim), ("Holed", self.hole)) if on]
                        + [self.spec.name])


def object_classes(num_classes: int) -> list[ObjectClass]:
    """The appearance of each of ``num_classes`` (1..1000) classes, index = label."""
    _check_int("num_classes", num_classes, 1, MAX_CLASSES)
    if num_classes <= _RENDER_CLASSES:
        return [ObjectClass(s.index, s) for s in class_specs(num_classes)]
    base = class_specs(_RENDER_CLASSES)
    return [ObjectClass(k, base[k % _RENDER_CLASSES], *_VARIANTS[k // _RENDER_CLASSES])
            for k in range(num_classes)]


# --------------------------------------------------------------------------- one image


@dataclass
class SyntheticScene:
    """One rendered image. ``image``: uint8 (H, W, 3) RGB; ``masks``: bool (H, W), one per
    labelled object; ``boxes``: their tight boxes (x0, y0, x1, y1), integer inclusive corners;
    ``unlabelled``: bool (H, W) masks of objects drawn without annotation; ``label``."""

    image: np.ndarray
    masks: list[np.ndarray]
    boxes: list[tuple[int, int, int, int]]
    unlabelled: list[np.ndarray]
    label: int


def _cells(rng: np.random.Generator, width: int, height: int, n: int) -> list[tuple[float, ...]]:
    """``n`` (1..4) disjoint cells (x0, y0, x1, y1) in random order: the whole image, two
    halves split along the longer side, or three/four quadrants of a jittered 2 x 2 grid."""
    if n == 1:
        return [(0.0, 0.0, float(width), float(height))]
    if n == 2:
        if width >= height:
            s = rng.uniform(0.4, 0.6) * width
            cells = [(0.0, 0.0, s, float(height)), (s, 0.0, float(width), float(height))]
        else:
            s = rng.uniform(0.4, 0.6) * height
            cells = [(0.0, 0.0, float(width), s), (0.0, s, float(width), float(height))]
    else:
        sx, sy = rng.uniform(0.4, 0.6) * width, rng.uniform(0.4, 0.6) * height
        cells = [(0.0, 0.0, sx, sy), (sx, 0.0, float(width), sy),
                 (0.0, sy, sx, float(height)), (sx, sy, float(width), float(height))]
    return [cells[int(i)] for i in rng.permutation(len(cells))[:n]]


def _pose_in_cell(rng: np.random.Generator, parts: Sequence[np.ndarray], area: float,
                  cell: tuple[float, ...], margin: float) -> list[np.ndarray]:
    """The CUB renderer's pose (``synthetic_render._pose``) inside ``cell`` (x0, y0, x1, y1)."""
    pts = _pose(rng, parts, area, cell[2] - cell[0], cell[3] - cell[1], margin)
    return [p + (cell[0], cell[1]) for p in pts]


def _deepest_point(binary: np.ndarray) -> tuple[float, float, float]:
    dist = cv2.distanceTransform(binary.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y), float(dist[y, x])


def _draw_object(rng: np.random.Generator, img: np.ndarray, cls: ObjectClass, polys, cell) -> tuple:
    """Composite one object into ``img``; return (img, bool mask)."""
    height, width = img.shape[:2]
    cover = _raster(polys, width, height)
    if cls.hole:
        cx, cy, d = _deepest_point(cover >= 0.5)
        x, y = np.arange(width, dtype=np.float32)[None, :], np.arange(height, dtype=np.float32)[:, None]
        r = max(1.0, 0.5 * d)
        cover = cover * (1.0 - np.clip(r + 0.5 - np.sqrt((x - cx) ** 2 + (y - cy) ** 2), 0.0, 1.0))
    allp = np.concatenate(polys)
    lo, hi = allp.min(0), allp.max(0)
    short_cell = min(cell[2] - cell[0], cell[3] - cell[1])
    tex = _texture(rng, cls.spec.texture, _period(rng, cls.spec.band, int(short_cell)),
                   tuple((lo + hi) / 2), math.sqrt(float(np.prod(hi - lo))) / 2, width, height)
    c1, c2 = _colour_pair(rng)
    img = _composite(img, _two_tone(tex, c1, c2), cover)
    mask = cover >= 0.5
    if cls.rim:
        dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
        t = max(1.5, 0.3 * float(dist.max()))
        rim = np.clip(t + 0.5 - dist, 0.0, 1.0) * cover
        dark = (_luma(c1) + _luma(c2)) / 2 > 127
        colour = rng.uniform(0, 50, 3) if dark else rng.uniform(205, 255, 3)
        img = _composite(img, np.broadcast_to(colour.astype(np.float32), img.shape), rim)
    return img, mask


def _tight_xyxy(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise RuntimeError("synthetic object vanished from its mask (internal error)")
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def render_scene(cls: ObjectClass, rng: np.random.Generator, width: int, height: int,
                 num_objects: int, num_unlabelled: int = 0, *,
                 num_distractors: tuple[int, int] = (1, 3),
                 box_fraction: tuple[float, float] = (0.25, 0.6)) -> SyntheticScene:
    """Render ``num_objects`` labelled (+ ``num_unlabelled``) objects of class ``cls``, 1..4
    in all, at ``width`` x ``height`` pixels, on the CUB renderer's cluttered background.

    Each object is posed (random aspect, rotation, mirror, position) inside its own cell with
    a tight box of ``U(box_fraction)`` of the cell's area (shrunk only when it cannot fit),
    at least 2 px inside the cell; texture periods are relative to the cell's shorter side.
    """
    n = num_objects + num_unlabelled
    if not 1 <= n <= MAX_OBJECTS + 1 or num_objects < 0 or num_unlabelled < 0:
        raise ValueError(f"num_objects + num_unlabelled must be 1..{MAX_OBJECTS + 1}, "
                         f"got {num_objects} + {num_unlabelled}")
    img = _background(rng, width, height)
    cells = _cells(rng, width, height, n)
    placed = []
    for cell in cells:
        parts = [_POLYGONS[cls.spec.shape]]
        if cls.spec.tail if cls.spec.tail is not None else rng.random() < _TAIL_PROB:
            parts.append(_tail_polygon(rng, cls.spec.shape))
        cw, ch = cell[2] - cell[0], cell[3] - cell[1]
        area = rng.uniform(*box_fraction) * cw * ch
        polys = _pose_in_cell(rng, parts, area, cell, margin=2.0)
        placed.append((polys, cell))
    first = np.concatenate(placed[0][0])
    avoid = np.concatenate([first.min(0), first.max(0)])
    img = clutter(rng, img, avoid, num_distractors)
    masks = []
    for polys, cell in placed:
        img, mask = _draw_object(rng, img, cls, polys, cell)
        masks.append(mask)
    image = _finish(rng, img)
    boxes = [_tight_xyxy(m) for m in masks]
    return SyntheticScene(image, masks[:num_objects], boxes[:num_objects], masks[num_objects:],
                          cls.index)
