"""Rendering of the synthetic CUB-format images: class definitions, shapes, textures,
cluttered backgrounds, distractors and annotator-vote masks (see :mod:`wsol.data.synthetic`
for the dataset writer and the design).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SHAPES = ("Disc", "Triangle", "Square", "Star", "Cross", "Crescent", "Arrow", "Ell")
TEXTURES = ("Striped", "Checkered", "Dotted", "Spotted", "Ringed", "Hatched", "Wavy", "Rayed")
# Texture period as a fraction of the image's shorter side. "any" is used while the band is
# not a class axis (<= 64 classes); "coarse"/"fine" are separated by a factor of 1.3.
BANDS = {"any": (0.045, 0.14), "coarse": (0.085, 0.14), "fine": (0.04, 0.065)}
_VARIANTS = (("coarse", False), ("fine", False), ("coarse", True), ("fine", True))
_BASE = len(SHAPES) * len(TEXTURES)
MAX_CLASSES = len(_VARIANTS) * _BASE  # 256
_MIN_SIZE_FOR_BANDS = 64  # the fine band needs at least this many pixels to be visible
_SEED_SALT = 0x5C0B  # separates this generator's streams from other users of the same seed
_SS = 4  # supersampling factor for anti-aliased object/distractor edges
_SHIFT = 4  # fractional bits for cv2 polygon coordinates
_TAIL_PROB = 0.3  # tail appendage as a nuisance while it is not a class axis


# --------------------------------------------------------------------------- classes


@dataclass(frozen=True)
class ClassSpec:
    """What defines one synthetic class. ``index`` is 0-based; the CUB label is index + 1.

    ``band`` is "any" when texture frequency is not a class axis; ``tail`` is None when the
    tail appendage is a random nuisance rather than a class axis.
    """

    index: int
    name: str
    shape: str
    texture: str
    band: str
    tail: bool | None

    @property
    def folder(self) -> str:
        """CUB class folder name, e.g. ``001.Striped_Disc``."""
        return f"{self.index + 1:03d}.{self.name}"


def _combo_order(n: int) -> list[tuple[int, int]]:
    """First ``n`` (shape, texture) index pairs, chosen so that for n >= 4 every used shape
    comes with >= 2 textures and every used texture with >= 2 shapes (neither alone names
    the class). Uses an m x m block walked by cyclic diagonals."""
    m = min(len(SHAPES), max(math.ceil(math.sqrt(n)), math.ceil(n / 2)))
    return [(s, (s + d) % m) for d in range(m) for s in range(m)][:n]


def class_specs(num_classes: int) -> list[ClassSpec]:
    """The class definitions for a dataset of ``num_classes`` classes (1..MAX_CLASSES)."""
    _check_int("num_classes", num_classes, 1, MAX_CLASSES)
    combos = _combo_order(min(num_classes, _BASE))
    specs = []
    for k in range(num_classes):
        s, t = combos[k % _BASE]
        band, tail = _VARIANTS[k // _BASE]
        words = [TEXTURES[t], SHAPES[s]]
        if num_classes > _BASE:
            words.insert(0, band.capitalize())
        else:
            band = "any"
        if num_classes > 2 * _BASE:
            words.insert(0, "Tailed" if tail else "Plain")
        else:
            tail = None
        specs.append(ClassSpec(k, "_".join(words), SHAPES[s], TEXTURES[t], band, tail))
    return specs


# --------------------------------------------------------------------------- geometry


def _regular(n: int, r: float = 1.0, start: float = -math.pi / 2) -> np.ndarray:
    a = start + np.arange(n) * 2 * math.pi / n
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _crescent() -> np.ndarray:
    d, r2 = 0.5, 0.85  # inner circle centre (d, 0), radius r2; outer circle r = 1
    x = (1 - r2**2 + d**2) / (2 * d)
    y = math.sqrt(1 - x**2)
    t0, p0 = math.atan2(y, x), math.atan2(y, x - d)
    outer = np.linspace(t0, 2 * math.pi - t0, 48)
    inner = np.linspace(2 * math.pi - p0, p0, 32)
    return np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                           np.stack([d + r2 * np.cos(inner), r2 * np.sin(inner)], 1)])


def _star() -> np.ndarray:
    pts = _regular(10)
    pts[1::2] *= 0.45
    return pts


# Canonical polygons in [-1, 1]^2 and an interior anchor point for the tail appendage.
_POLYGONS = {
    "Disc": _regular(72),
    "Triangle": _regular(3),
    "Square": np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.85,
    "Star": _star(),
    "Cross": np.array([[-.33, -1], [.33, -1], [.33, -.33], [1, -.33], [1, .33], [.33, .33],
                       [.33, 1], [-.33, 1], [-.33, .33], [-1, .33], [-1, -.33], [-.33, -.33]]),
    "Crescent": _crescent(),
    "Arrow": np.array([[-1, -.28], [.15, -.28], [.15, -.75], [1, 0], [.15, .75], [.15, .28],
                       [-1, .28]]),
    "Ell": np.array([[-1, -1], [-.2, -1], [-.2, .3], [1, .3], [1, 1], [-1, 1]]),
}
_ANCHORS = {"Crescent": (-0.7, 0.0), "Ell": (-0.6, 0.65)}


def _tail_polygon(rng: np.random.Generator, shape: str) -> np.ndarray:
    """A blunt tapering tail from the shape's interior anchor, in a random direction."""
    ax, ay = _ANCHORS.get(shape, (0.0, 0.0))
    phi = rng.uniform(0, 2 * math.pi)
    u, n = np.array([math.cos(phi), math.sin(phi)]), np.array([-math.sin(phi), math.cos(phi)])
    a = np.array([ax, ay])
    return np.stack([a + 0.3 * n, a + 1.5 * u + 0.13 * n, a + 1.5 * u - 0.13 * n, a - 0.3 * n])


def _raster(polys: Sequence[np.ndarray], width: int, height: int) -> np.ndarray:
    """Anti-aliased coverage of the union of polygons (pixel units), float32 (H, W) in [0,1]."""
    canvas = np.zeros((height * _SS, width * _SS), np.uint8)
    for p in polys:
        pts = np.round((p * _SS + (_SS - 1) / 2) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_8, shift=_SHIFT)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _pose(rng: np.random.Generator, parts: Sequence[np.ndarray], area: float,
          width: int, height: int, margin: float) -> list[np.ndarray]:
    """Random aspect ratio, rotation and mirror; scale so the tight box has ``area`` px^2
    (re-drawing the pose when it would not fit); random position fully inside the image."""
    for _ in range(30):
        ar = math.exp(rng.uniform(-math.log(1.8), math.log(1.8)))
        th = rng.uniform(0, 2 * math.pi)
        flip = -1.0 if rng.random() < 0.5 else 1.0
        rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        mat = rot @ np.diag([flip * math.sqrt(ar), 1 / math.sqrt(ar)])
        pts = [p @ mat.T for p in parts]
        allp = np.concatenate(pts)
        lo, (w0, h0) = allp.min(0), np.ptp(allp, 0)
        s = math.sqrt(area / (w0 * h0))
        if s * w0 <= width - 2 * margin and s * h0 <= height - 2 * margin:
            break
    s = min(s, (width - 2 * margin) / w0, (height - 2 * margin) / h0)
    x0 = rng.uniform(margin, max(margin, width - margin - s * w0))   # max: a shrunk object can miss by
    y0 = rng.uniform(margin, max(margin, height - margin - s * h0))  # a rounding error
    return [(p - lo) * s + (x0, y0) for p in pts]


def _blob_polygon(rng: np.random.Generator) -> np.ndarray:
    """Irregular smooth closed blob in [-1, 1]^2 (a distractor-only shape family)."""
    k = int(rng.integers(7, 13))
    r = rng.uniform(0.5, 1.0, k)
    r = (np.roll(r, 1) + 2 * r + np.roll(r, -1)) / 4
    a = np.linspace(0, 2 * math.pi, 60, endpoint=False)
    rr = np.interp(a, np.arange(k + 1) * 2 * math.pi / k, np.append(r, r[0]))
    return np.stack([rr * np.cos(a), rr * np.sin(a)], 1)


# --------------------------------------------------------------------------- appearance


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(width, dtype=np.float32)[None, :],
            np.arange(height, dtype=np.float32)[:, None])


def _aa(dist_px: np.ndarray) -> np.ndarray:
    """Signed distance (px, positive inside) to an anti-aliased 0..1 coverage."""
    return np.clip(0.5 + dist_px, 0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: float) -> np.ndarray:
    """Zero-mean, unit-std noise with features about ``max(W,H)/cells`` px across."""
    cw = max(2, round(cells * width / max(width, height)))
    ch = max(2, round(cells * height / max(width, height)))
    n = cv2.resize(rng.standard_normal((ch, cw)).astype(np.float32), (width, height),
                   interpolation=cv2.INTER_CUBIC)
    return (n - n.mean()) / (n.std() + 1e-6)


def _texture(rng: np.random.Generator, name: str, period: float, centre: tuple[float, float],
             radius: float, width: int, height: int) -> np.ndarray:
    """Two-tone pattern ``name`` with period ``period`` px, random angle and phase.

    Returns float32 (H, W) in [0, 1]; edges are anti-aliased to about one pixel.
    """
    x, y = _grid(width, height)
    cx, cy = centre
    alpha, ph1, ph2 = rng.uniform(0, 2 * math.pi, 3)
    u = (x - cx) * math.cos(alpha) + (y - cy) * math.sin(alpha)
    v = -(x - cx) * math.sin(alpha) + (y - cy) * math.cos(alpha)
    w = 2 * math.pi / period
    if name == "Striped":
        return _aa(np.sin(w * u + ph1) / w)
    if name == "Checkered":
        a, b = _aa(np.sin(w * u + ph1) / w), _aa(np.sin(w * v + ph2) / w)
        return a + b - 2 * a * b
    if name == "Dotted":
        du = (u / period + ph1) % 1.0 - 0.5
        dv = (v / period + ph2) % 1.0 - 0.5
        return _aa((0.27 - np.sqrt(du * du + dv * dv)) * period)
    if name == "Spotted":
        n = _smooth_noise(rng, width, height, 2.2 * max(width, height) / period)
        return np.clip(0.5 + 2.5 * (n - 0.3), 0.0, 1.0)
    # Ringed and Rayed are centred near (not at) the object's centre.
    ox, oy = rng.uniform(-0.25, 0.25, 2) * radius
    r = np.sqrt((x - cx - ox) ** 2 + (y - cy - oy) ** 2)
    if name == "Ringed":
        return _aa(np.sin(w * r + ph1) / w)
    if name == "Rayed":
        k = max(5, round(math.pi * radius / period))  # local period ~ `period` at r = radius/2
        return _aa(np.sin(k * np.arctan2(y - cy - oy, x - cx - ox) + ph1) * r / k)
    if name == "Hatched":
        beta = alpha + rng.uniform(math.pi / 3, math.pi / 2)
        u2 = (x - cx) * math.cos(beta) + (y - cy) * math.sin(beta)
        lines = [np.abs((q / period + p) % 1.0 - 0.5) * period for q, p in ((u, ph1), (u2, ph2))]
        return _aa(0.14 * period - np.minimum(*lines))
    if name == "Wavy":
        amp, lam = rng.uniform(0.3, 0.45) * period, rng.uniform(2.0, 3.0) * period
        return _aa(np.sin(w * (u + amp * np.sin(2 * math.pi * v / lam + ph2)) + ph1) / w)
    raise ValueError(f"unknown texture {name!r}; expected one of {TEXTURES}")


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _colour_pair(rng: np.random.Generator, min_contrast: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Two random RGB colours whose luma differs by at least ``min_contrast``."""
    c1 = _colour(rng)
    for _ in range(20):
        c2 = _colour(rng)
        if abs(_luma(c1) - _luma(c2)) >= min_contrast:
            return c1, c2
    return c1, 255.0 - c1


def _two_tone(p: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    return c1 + (c2 - c1) * p[..., None]


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Multi-scale coloured noise + linear gradient + soft blobs, float32 (H, W, 3) 0..255."""
    beta = rng.uniform(0.4, 1.1)
    n = sum(_smooth_noise(rng, width, height, c) / c**beta for c in (2, 4, 8, 16, 32))
    n = (n - n.min()) / (np.ptp(n) + 1e-6)
    stops = np.sort(rng.uniform(0, 1, 2))
    palette = np.stack([_colour(rng) for _ in range(4)])
    img = np.stack([np.interp(n, [0, *stops, 1], palette[:, ch]) for ch in range(3)], -1)
    x, y = _grid(width, height)
    th = rng.uniform(0, 2 * math.pi)
    g = (x * math.cos(th) + y * math.sin(th)) / max(width, height)
    g = ((g - g.min()) / (np.ptp(g) + 1e-6) * rng.uniform(0, 0.5))[..., None]
    img = img * (1 - g) + _colour(rng) * g
    for _ in range(int(rng.integers(2, 6))):
        bx, by = rng.uniform(0, width), rng.uniform(0, height)
        s = rng.uniform(0.05, 0.2) * max(width, height)
        a = (rng.uniform(0.3, 0.7) * np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * s * s)))[..., None]
        img = img * (1 - a) + _colour(rng) * a
    return img.astype(np.float32)


def _plain_fill(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A fill that is not a class texture: flat, linear gradient, or smooth noise."""
    kind = int(rng.integers(3))
    c1, c2 = _colour_pair(rng, 30.0)
    if kind == 0:
        return np.broadcast_to(c1, (height, width, 3)).astype(np.float32)
    if kind == 1:
        x, y = _grid(width, height)
        th = rng.uniform(0, 2 * math.pi)
        g = x * math.cos(th) + y * math.sin(th)
        return _two_tone((g - g.min()) / (np.ptp(g) + 1e-6), c1, c2)
    n = _smooth_noise(rng, width, height, rng.uniform(6, 20))
    return _two_tone(np.clip(0.5 + 0.3 * n, 0, 1), c1, c2)


def _composite(img: np.ndarray, fill: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return img * (1 - a) + fill * a


# --------------------------------------------------------------------------- one image


@dataclass
class SyntheticSample:
    """One rendered image. ``image``: uint8 (H, W, 3) RGB; ``mask``: uint8 (H, W) soft
    annotator-vote mask (0/63/127/191/255); ``box``: (x, y, w, h) tight box of
    ``mask >= 128`` in pixels (w = max_col - min_col + 1); ``label``: 0-based class."""

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    label: int


def _period(rng: np.random.Generator, band: str, short_side: int) -> float:
    lo, hi = BANDS[band]
    return max(3.0, rng.uniform(lo, hi) * short_side)


def _away_from(rng: np.random.Generator, bw: float, bh: float, avoid: np.ndarray,
               width: int, height: int) -> tuple[float, float]:
    """Top-left corner for a bw x bh box that overlaps box ``avoid`` (x0,y0,x1,y1) by at
    most a quarter of its own area when such a spot is found within 12 tries."""
    for _ in range(12):
        x0 = rng.uniform(-0.15 * bw, width - 0.85 * bw)
        y0 = rng.uniform(-0.15 * bh, height - 0.85 * bh)
        ix = max(0.0, min(x0 + bw, avoid[2]) - max(x0, avoid[0]))
        iy = max(0.0, min(y0 + bh, avoid[3]) - max(y0, avoid[1]))
        if ix * iy <= 0.25 * bw * bh:
            break
    return x0, y0


def clutter(rng: np.random.Generator, img: np.ndarray, avoid: np.ndarray,
            num_distractors: tuple[int, int]) -> np.ndarray:
    """Background clutter, not a cue: with p 0.5 a faint texture over the whole image (blend 0.1-0.25),
    then `num_distractors` (lo, hi inclusive) distractor shapes kept off the box `avoid` (x0,y0,x1,y1).
    Shared by the CUB-format and the wsolevaluation-layout generators (same random draws, in order)."""
    height, width = img.shape[:2]
    short = min(width, height)
    if rng.random() < 0.5:
        tex = _texture(rng, TEXTURES[int(rng.integers(len(TEXTURES)))], _period(rng, "any", short),
                       (rng.uniform(0, width), rng.uniform(0, height)), short / 4, width, height)
        b = rng.uniform(0.1, 0.25)
        img = img * (1 - b) + _two_tone(tex, *_colour_pair(rng)) * b
    for _ in range(int(rng.integers(num_distractors[0], num_distractors[1] + 1))):
        img = _distractor(rng, img, avoid)
    return img


def _distractor(rng: np.random.Generator, img: np.ndarray, avoid: np.ndarray) -> np.ndarray:
    """Draw one distractor onto ``img`` (float32 H,W,3): a plain blob, a stroke, a class
    shape with a plain fill, or a class texture inside a blob. Never both class cues."""
    height, width = img.shape[:2]
    kind = int(rng.integers(4))
    area = rng.uniform(0.02, 0.08) * width * height
    if kind == 1:  # stroke: a thick random polyline
        side = 1.6 * math.sqrt(area)
        x0, y0 = _away_from(rng, side, side, avoid, width, height)
        pts = np.stack([rng.uniform(x0, x0 + side, 4), rng.uniform(y0, y0 + side, 4)], 1)
        canvas = np.zeros((height * _SS, width * _SS), np.uint8)
        thick = max(1, round(rng.uniform(0.012, 0.03) * min(width, height) * _SS))
        cv2.polylines(canvas, [np.round(pts * _SS).astype(np.int32)], False, 255, thick, cv2.LINE_AA)
        alpha = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        return _composite(img, _plain_fill(rng, width, height), alpha)
    base = _POLYGONS[SHAPES[int(rng.integers(len(SHAPES)))]] if kind == 2 else _blob_polygon(rng)
    (poly,) = _pose(rng, [base], area, width, height, 0.0)
    lo, hi = poly.min(0), poly.max(0)
    x0, y0 = _away_from(rng, *(hi - lo), avoid, width, height)
    poly = poly - lo + (x0, y0)
    alpha = _raster([poly], width, height)
    if kind == 3:
        centre, radius = tuple(poly.mean(0)), math.sqrt(area) / 2
        tex = _texture(rng, TEXTURES[int(rng.integers(len(TEXTURES)))],
                       _period(rng, "any", min(width, height)), centre, radius, width, height)
        fill = _two_tone(tex, *_colour_pair(rng))
    else:
        fill = _plain_fill(rng, width, height)
    return _composite(img, fill, alpha)


def _annotator_mask(rng: np.random.Generator, cover: np.ndarray, annotators: int = 4) -> np.ndarray:
    """Soft mask from simulated annotators: annotator i thresholds the coverage at a random
    level in the i-th of ``annotators`` overlapping slices of [0.1, 0.9] (from generous to
    strict) and may grow or shrink the result by one pixel; v votes of n map to
    floor(255 v / n): 0, 63, 127, 191, 255 for four annotators."""
    votes = np.zeros(cover.shape, np.uint16)
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    step = 0.8 / annotators
    for i in range(annotators):
        m = (cover >= rng.uniform(0.1 + (i - 0.5) * step, 0.1 + (i + 1.5) * step)).astype(np.uint8)
        r = rng.random()
        if r < 0.2:
            m = cv2.erode(m, kernel)
        elif r < 0.4:
            m = cv2.dilate(m, kernel)
        votes += m
    return (votes * 255 // annotators).astype(np.uint8)


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask >= 128)
    if rows.size == 0:
        raise RuntimeError("synthetic object vanished from its mask (internal error)")
    x, y = int(cols.min()), int(rows.min())
    return x, y, int(cols.max()) - x + 1, int(rows.max()) - y + 1


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Smooth global shading and sensor grain, then round to uint8."""
    height, width = img.shape[:2]
    shade = 1.0 + rng.uniform(0.05, 0.15) * _smooth_noise(rng, width, height, 3)
    img = img * shade[..., None]
    img = img + rng.normal(0.0, rng.uniform(1.0, 4.0), img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_sample(spec: ClassSpec, rng: np.random.Generator, width: int, height: int, *,
                  num_distractors: tuple[int, int] = (2, 4),
                  box_fraction: tuple[float, float] = (0.10, 0.60)) -> SyntheticSample:
    """Render one image of class ``spec`` at ``width`` x ``height`` pixels.

    The object's tight box covers a uniform fraction in ``box_fraction`` of the image
    (re-posed or shrunk only when it cannot fit) and lies at least 3 px inside every border.
    """
    img = _background(rng, width, height)
    parts = [_POLYGONS[spec.shape]]
    if spec.tail if spec.tail is not None else rng.random() < _TAIL_PROB:
        parts.append(_tail_polygon(rng, spec.shape))
    area = rng.uniform(*box_fraction) * width * height
    polys = _pose(rng, parts, area, width, height, margin=3.0)
    allp = np.concatenate(polys)
    obj_box = np.concatenate([allp.min(0), allp.max(0)])
    short = min(width, height)
    img = clutter(rng, img, obj_box, num_distractors)
    cover = _raster(polys, width, height)
    centre = tuple((obj_box[:2] + obj_box[2:]) / 2)
    radius = math.sqrt(np.prod(obj_box[2:] - obj_box[:2])) / 2
    tex = _texture(rng, spec.texture, _period(rng, spec.band, short), centre, radius, width, height)
    img = _composite(img, _two_tone(tex, *_colour_pair(rng)), cover)
    image = _finish(rng, img)
    mask = _annotator_mask(rng, cover)
    return SyntheticSample(image, mask, _tight_box(mask), spec.index)


def image_rng(seed: int, class_index: int, index_in_class: int) -> np.random.Generator:
    """The generator for one image: independent of every other image, of the class count's
    effect on other classes, and of the worker that renders it."""
    return np.random.default_rng([_SEED_SALT, seed, class_index, index_in_class])


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {rng}, got {value}")


def pink_noise_image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """uint8 (H, W, 3): 1/f colour noise, the spectrum of natural images, channels mixed so they
    correlate like a photo's (JPEG stand-ins for loader tests and benchmarks)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    chans = []
    for _ in range(3):
        spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f
        spec[0, 0] = 0
        chans.append(np.fft.irfft2(spec, s=(height, width)))
    x = np.stack(chans, -1) @ (rng.random((3, 3)) * 0.5 + np.eye(3))
    x = (x - x.mean()) / x.std()
    return np.clip(128 + 40 * x, 0, 255).astype(np.uint8)
