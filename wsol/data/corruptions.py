"""The 19 CIFAR-10-C corruptions with the CIFAR-10-C constants (regeneration: wsol.data.cifar10c_regen).

REFERENCE.md §8. The constants are those of Hendrycks & Dietterich's
``ImageNet-C/create_c/make_cifar_c.py`` (github.com/hendrycks/robustness), not ImageNet-C's
(the ``imagecorruptions`` package). Every corruption has the shape
``fn(image uint8 (H, W, 3), severity 1..5, rng: np.random.Generator) -> uint8 (H, W, 3)`` and
draws every random number from ``rng``; the final float -> uint8 step truncates, as the
original's ``np.uint8(...)`` does.

Where this differs from the original (see :data:`APPROXIMATIONS`):

- ``motion_blur`` and ``snow``: the original calls ImageMagick's ``MotionBlurImage`` through
  Wand. Here an OpenCV ``filter2D`` line kernel (:func:`motion_blur_kernel`) reproduces
  ImageMagick's kernel: 2*radius+1 taps along the angle, half-Gaussian weights of the same
  sigma, edge-replicated borders, the same random angle range.
- ``frost``: the original blends crops of six frost photographs, which are not available
  offline. Here :func:`frost_texture` draws a procedural texture (ice needles over a plasma
  haze, blue-white tint) and blends it with the original constants. It is an approximation.
- Randomness: numpy Generators seeded per (seed, corruption, severity, image) instead of the
  original's global ``RandomState``, so no regenerated image is bit-identical to the release.

``glass_blur`` keeps the original's numpy aliasing: its "swap" ``x[h, w], x[h', w'] =
x[h', w'], x[h, w]`` of two views copies the neighbour into ``x[h, w]`` and leaves the
neighbour unchanged, so the released set was made that way.

:func:`wsol.data.cifar10c_regen.regenerate_cifar10c` applies them to a CIFAR-10-format test
split and writes the released layout, labelled "CIFAR-10-C-regenerated (not bit-identical)".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import skimage.color
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scizoom
from skimage.filters import gaussian as sk_gaussian

from .robustness import CIFAR10C_CORRUPTIONS, CIFAR10C_SEVERITIES

__all__ = [
    "CORRUPTION_FUNCTIONS",
    "APPROXIMATIONS",
    "corrupt",
    "motion_blur_kernel",
    "frost_texture",
]

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

SEVERITIES = tuple(range(1, CIFAR10C_SEVERITIES + 1))

APPROXIMATIONS = {
    "motion_blur": "ImageMagick MotionBlurImage (Wand) replaced by an OpenCV filter2D line kernel with "
                   "ImageMagick's weights: 2*radius+1 taps, half-Gaussian of the same sigma, angle "
                   "U(-45, 45) degrees, edge-replicated border; rounded to uint8 like the PNG round trip",
    "snow": "the snow layer's ImageMagick motion blur replaced by the same OpenCV line kernel (same "
            "radius and sigma, angle U(-135, -45) degrees)",
    "frost": "procedural frost texture (random ice needles over a plasma-fractal haze, blue-white "
             "tint) instead of crops of Hendrycks' six frost photos, which are not available offline; "
             "the blend constants are the original's",
}
# --------------------------------------------------------------------------- constants (make_cifar_c.py)

_GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)
_SHOT_NOISE = (500, 250, 100, 75, 50)
_IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)
_SPECKLE_NOISE = (0.06, 0.1, 0.12, 0.16, 0.2)
_GAUSSIAN_BLUR = (0.4, 0.6, 0.7, 0.8, 1.0)
_GLASS_BLUR = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # sigma, max delta, iters
_DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))  # radius, alias blur
_MOTION_BLUR = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # radius, sigma
_ZOOM_BLUR = tuple(np.arange(1, end, 0.01) for end in (1.06, 1.11, 1.16, 1.21, 1.26))
_FOG = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))  # strength, wibble decay
_FROST = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # image weight, frost weight
# loc, scale, zoom, threshold, blur radius, blur sigma, image weight
_SNOW = ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8))
# loc, scale, sigma, threshold, strength (water) / mud sigma, mud?
_SPATTER = ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
            (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1))
_CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
_BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)
_SATURATE = ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2))
_JPEG_QUALITY = (80, 65, 58, 50, 40)
_PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)
# displacement alpha, displacement sigma, affine jitter; fractions of the image side (32 in the original)
_ELASTIC = ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))

_SPATTER_KERNEL = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)
_WATER_RGB = np.array([175, 238, 238], np.float32) / 255  # pale turquoise
_MUD_RGB = np.array([63, 42, 20], np.float32) / 255
_FROST_TINT = np.array([0.86, 0.93, 1.0])  # RGB gains of the procedural frost: blue-white


# --------------------------------------------------------------------------- helpers


def _pick(table: Sequence, severity: int):
    """The constant of ``severity`` (1..5); ValueError otherwise."""
    if isinstance(severity, bool) or int(severity) != severity or not 1 <= severity <= CIFAR10C_SEVERITIES:
        raise ValueError(f"CIFAR-10-C severity must be an integer 1..{CIFAR10C_SEVERITIES}, got {severity!r}")
    return table[int(severity) - 1]


def _unit(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float64 in [0, 1]."""
    return np.asarray(image, dtype=np.float64) / 255.0


def _from_unit(x: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (clipped) -> uint8, truncating like the original's ``np.uint8``."""
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def _gaussian(x: np.ndarray, sigma: float, **kwargs) -> np.ndarray:
    """skimage's Gaussian filter (mode 'nearest', truncate 4 unless given), channels last for 3-D."""
    return sk_gaussian(x, sigma=sigma, channel_axis=-1 if x.ndim == 3 else None, **kwargs)


def _clipped_zoom(img: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of ``img`` (H, W, C) by ``factor`` >= 1 (bilinear) and crop back to (H, W)."""
    H, W = img.shape[:2]
    ch, cw = int(np.ceil(H / factor)), int(np.ceil(W / factor))
    top, left = (H - ch) // 2, (W - cw) // 2
    out = scizoom(img[top:top + ch, left:left + cw], (factor, factor, 1), order=1)
    t, l = (out.shape[0] - H) // 2, (out.shape[1] - W) // 2
    return out[t:t + H, l:l + W]


def _plasma_fractal(rng: np.random.Generator, mapsize: int = 32, wibbledecay: float = 3.0) -> np.ndarray:
    """Diamond-square height map (mapsize, mapsize) in [0, 1]; ``mapsize`` a power of two."""
    a = np.zeros((mapsize, mapsize))
    step, wibble = mapsize, 100.0

    def wibbled_mean(v: np.ndarray) -> np.ndarray:  # the original's wibble * U(-wibble, wibble)
        return v / 4 + wibble * rng.uniform(-wibble, wibble, v.shape)

    while step >= 2:
        half = step // 2
        corners = a[0::step, 0::step]
        square = corners + np.roll(corners, -1, axis=0)
        square += np.roll(square, -1, axis=1)
        a[half::step, half::step] = wibbled_mean(square)
        dr, ul = a[half::step, half::step], a[0::step, 0::step]
        a[0::step, half::step] = wibbled_mean(dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
        a[half::step, 0::step] = wibbled_mean(dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
        step //= 2
        wibble /= wibbledecay
    a -= a.min()
    return a / a.max()


def _plasma_size(height: int, width: int) -> int:
    """The smallest power of two >= the image side, at least the original's 32."""
    return max(32, 1 << int(np.ceil(np.log2(max(height, width)))))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """Normalised disk kernel, anti-aliased by a small Gaussian (the original's ``disk``)."""
    L, ksize = (np.arange(-8, 9), (3, 3)) if radius <= 8 else (np.arange(-radius, radius + 1), (5, 5))
    X, Y = np.meshgrid(L, L)
    disk = np.array(X ** 2 + Y ** 2 <= radius ** 2, dtype=np.float32)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


def motion_blur_kernel(radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's ``MotionBlurImage`` kernel as a float32 (2w+1, 2w+1) ``filter2D`` kernel.

    w = 2*ceil(radius)+1 taps; tap i has weight exp(-i^2 / (2 sigma^2)) (normalised to sum 1) and
    reads the pixel at offset (ceil(i cos a - 0.5), ceil(i sin a - 0.5)) (x, y), a = ``angle``
    in degrees, exactly as ImageMagick places them. The anchor is the centre.
    """
    width = int(2 * np.ceil(radius) + 1)
    i = np.arange(width)
    weights = np.exp(-(i ** 2) / (2.0 * max(sigma, 1e-12) ** 2))
    weights /= weights.sum()
    a = np.deg2rad(angle)
    ox = np.ceil(i * np.cos(a) - 0.5).astype(int)
    oy = np.ceil(i * np.sin(a) - 0.5).astype(int)
    kernel = np.zeros((2 * width + 1, 2 * width + 1), np.float64)
    np.add.at(kernel, (width + oy, width + ox), weights)
    return kernel.astype(np.float32)


def _motion_blur_u8(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """Motion-blur a uint8 (H, W) or (H, W, 3) image; rounded to uint8 like ImageMagick's output."""
    kernel = motion_blur_kernel(radius, sigma, angle)
    out = cv2.filter2D(image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _hsv_adjust(image: np.ndarray, channel: int, gain: float, offset: float) -> np.ndarray:
    """HSV channel ``channel`` -> clip(v * gain + offset, 0, 1), back to RGB in [0, 1]."""
    hsv = skimage.color.rgb2hsv(_unit(image))
    hsv[..., channel] = np.clip(hsv[..., channel] * gain + offset, 0, 1)
    return skimage.color.hsv2rgb(hsv)


def frost_texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural stand-in for a crop of Hendrycks' frost photos: uint8 (height, width, 3).

    A plasma-fractal haze in [0.25, 0.6] plus 10..19 thin anti-aliased ice needles (each with two
    side branches at +-60 degrees, drawn at 4x and area-downsampled), tinted blue-white.
    """
    scale = 4
    canvas = np.zeros((height * scale, width * scale), np.float32)
    for _ in range(int(rng.integers(10, 20))):
        x0, y0 = rng.uniform(0, width * scale), rng.uniform(0, height * scale)
        angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(3, 12) * scale
        value = float(rng.uniform(0.4, 1.0))
        _needle(canvas, x0, y0, angle, length, value)
        xm, ym = x0 + 0.5 * length * np.cos(angle), y0 + 0.5 * length * np.sin(angle)
        for turn in (np.pi / 3, -np.pi / 3):
            _needle(canvas, xm, ym, angle + turn, 0.4 * length, 0.8 * value)
    needles = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
    size = _plasma_size(height, width)
    haze = 0.25 + 0.35 * _plasma_fractal(rng, size, 2.0)[:height, :width]
    texture = np.clip(haze + needles, 0, 1)[..., None] * _FROST_TINT
    return (texture * 255).astype(np.uint8)


def _needle(canvas: np.ndarray, x0: float, y0: float, angle: float, length: float, value: float) -> None:
    x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
    cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), value, thickness=2, lineType=cv2.LINE_AA)


# --------------------------------------------------------------------------- noise


def gaussian_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Additive N(0, sigma) per pixel and channel, sigma = .04 .06 .08 .09 .10 (of the [0,1] range)."""
    x = _unit(image)
    return _from_unit(x + rng.normal(scale=_pick(_GAUSSIAN_NOISE, severity), size=x.shape))


def shot_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson(x * c) / c, c = 500 250 100 75 50 photons."""
    c = _pick(_SHOT_NOISE, severity)
    return _from_unit(rng.poisson(_unit(image) * c) / c)


def impulse_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper on a fraction .01 .02 .03 .05 .07 of the values, half salt (skimage 's&p')."""
    x = _unit(image)
    flipped = rng.random(x.shape) < _pick(_IMPULSE_NOISE, severity)
    salted = rng.random(x.shape) < 0.5
    return _from_unit(np.where(flipped, salted.astype(np.float64), x))


def speckle_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """x + x * N(0, c), c = .06 .1 .12 .16 .2."""
    x = _unit(image)
    return _from_unit(x + x * rng.normal(scale=_pick(_SPECKLE_NOISE, severity), size=x.shape))


# --------------------------------------------------------------------------- blur


def gaussian_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, sigma = .4 .6 .7 .8 1 pixels."""
    return _from_unit(_gaussian(_unit(image), _pick(_GAUSSIAN_BLUR, severity)))


def glass_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blur, locally shuffle pixels (1 or 2 passes, offsets in {-1, 0}), blur again.

    Each pass visits rows and columns from the far edge inward and sets x[h, w] = x[h+dy, w+dx]
    (the original's aliased "swap"). With offsets <= 0 every read hits a pixel not yet written in
    that pass, so one vectorised assignment per pass equals the original's loop.
    """
    sigma, delta, passes = _pick(_GLASS_BLUR, severity)
    x = (_gaussian(_unit(image), sigma) * 255).astype(np.uint8)
    H, W = x.shape[:2]
    rows = np.arange(H - delta, delta, -1)[:, None]
    cols = np.arange(W - delta, delta, -1)[None, :]
    for _ in range(passes):
        d = rng.integers(-delta, delta, size=(rows.size, cols.size, 2))  # (dx, dy), high exclusive
        x[rows, cols] = x[rows + d[..., 1], cols + d[..., 0]]
    return _from_unit(_gaussian(x / 255.0, sigma))


def defocus_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an anti-aliased disk, (radius, alias blur) = (.3,.4) (.4,.5) (.5,.6) (1,.2) (1.5,.1)."""
    kernel = _disk(*_pick(_DEFOCUS_BLUR, severity))
    return _from_unit(cv2.filter2D(_unit(image), -1, kernel))


def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """ImageMagick-style motion blur, (radius, sigma) = (6,1) (6,1.5) (6,2) (8,2) (9,2.5), angle U(-45, 45).

    Approximation: an OpenCV line kernel (:func:`motion_blur_kernel`) replaces ImageMagick/Wand.
    """
    radius, sigma = _pick(_MOTION_BLUR, severity)
    return _motion_blur_u8(np.asarray(image, np.uint8), radius, sigma, rng.uniform(-45, 45))


def zoom_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Mean of the image and its centre zooms by 1, 1.01, ... up to 1.06 .. 1.26."""
    x = _unit(image).astype(np.float32)
    factors = _pick(_ZOOM_BLUR, severity)
    out = np.zeros_like(x)
    for factor in factors:
        out += _clipped_zoom(x, factor)
    return _from_unit((x + out) / (len(factors) + 1))


# --------------------------------------------------------------------------- weather


def snow(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Zoomed, thresholded N(loc, scale) snow layer, motion-blurred at U(-135, -45) degrees, added
    twice (once rotated 180 degrees) to the image brightened towards 1.5 * grey + 0.5.

    Approximation: the layer's ImageMagick motion blur is the OpenCV line kernel.
    """
    loc, scale, zoom, threshold, radius, sigma, keep = _pick(_SNOW, severity)
    x = _unit(image).astype(np.float32)
    layer = _clipped_zoom(rng.normal(loc=loc, scale=scale, size=x.shape[:2])[..., None], zoom)[..., 0]
    layer[layer < threshold] = 0
    layer_u8 = (np.clip(layer, 0, 1) * 255).astype(np.uint8)
    streaks = _motion_blur_u8(layer_u8, radius, sigma, rng.uniform(-135, -45))[..., None] / 255.0
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = keep * x + (1 - keep) * np.maximum(x, grey * 1.5 + 0.5)
    return _from_unit(x + streaks + np.rot90(streaks, k=2))


def frost(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """a * image + b * frost, (a, b) = (1,.2) (1,.3) (.9,.4) (.85,.4) (.75,.45).

    Approximation: the frost layer is :func:`frost_texture` (procedural), not a crop of
    Hendrycks' frost photos, which are not available offline.
    """
    a, b = _pick(_FROST, severity)
    layer = frost_texture(image.shape[0], image.shape[1], rng).astype(np.float64)
    return np.clip(a * np.asarray(image, np.float64) + b * layer, 0, 255).astype(np.uint8)


def fog(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Add c * plasma fractal (wibble decay d), rescale by max / (max + c); (c, d) = (.2,3) .. (1.5,1.75)."""
    strength, decay = _pick(_FOG, severity)
    x = _unit(image)
    H, W = x.shape[:2]
    peak = x.max()
    x = x + strength * _plasma_fractal(rng, _plasma_size(H, W), decay)[:H, :W, None]
    return _from_unit(x * peak / (peak + strength))


def spatter(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Blurred, thresholded N(loc, scale) liquid layer: water drops (severity 1-3) or mud (4-5)."""
    loc, scale, sigma, threshold, strength, mud = _pick(_SPATTER, severity)
    x = _unit(image).astype(np.float32)
    liquid = _gaussian(rng.normal(loc=loc, scale=scale, size=x.shape[:2]), sigma)
    liquid[liquid < threshold] = 0
    return _from_unit(_mud(x, liquid, threshold, strength) if mud else _water(x, liquid, strength))


def _water(x: np.ndarray, liquid: np.ndarray, strength: float) -> np.ndarray:
    """Pale turquoise drops shaded by an embossed distance map of the liquid's edges."""
    liquid_u8 = (np.clip(liquid, 0, 1) * 255).astype(np.uint8)
    dist = cv2.distanceTransform(255 - cv2.Canny(liquid_u8, 50, 150), cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    dist = cv2.blur(cv2.filter2D(dist, cv2.CV_8U, _SPATTER_KERNEL), (3, 3)).astype(np.float32)
    m = liquid_u8 * dist
    peak = m.max()
    m = m / peak * strength if peak > 0 else m  # the original divides by zero on a dry layer
    return x + m[..., None] * _WATER_RGB


def _mud(x: np.ndarray, liquid: np.ndarray, threshold: float, sigma: float) -> np.ndarray:
    """Mud-brown blobs where the blurred liquid mask reaches 0.8."""
    m = _gaussian((liquid > threshold).astype(np.float32), sigma)
    m[m < 0.8] = 0
    return x * (1 - m[..., None]) + _MUD_RGB * m[..., None]


# --------------------------------------------------------------------------- digital


def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """HSV value + c, c = .05 .1 .15 .2 .3."""
    return _from_unit(_hsv_adjust(image, 2, 1.0, _pick(_BRIGHTNESS, severity)))


def saturate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """HSV saturation * a + b, (a, b) = (.3,0) (.1,0) (1.5,0) (2,.1) (2.5,.2)."""
    gain, offset = _pick(_SATURATE, severity)
    return _from_unit(_hsv_adjust(image, 1, gain, offset))


def contrast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Deviations from the per-channel mean scaled by c = .75 .5 .4 .3 .15."""
    x = _unit(image)
    means = x.mean(axis=(0, 1), keepdims=True)
    return _from_unit((x - means) * _pick(_CONTRAST, severity) + means)


def jpeg_compression(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG round trip at quality 80 65 58 50 40 (libjpeg, 4:2:0, as PIL's default save)."""
    quality = _pick(_JPEG_QUALITY, severity)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the image")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def pixelate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """PIL box downsampling to int(side * c), c = .95 .9 .85 .75 .65, and box upsampling back."""
    c = _pick(_PIXELATE, severity)
    H, W = image.shape[:2]
    small = Image.fromarray(np.asarray(image, np.uint8)).resize((int(W * c), int(H * c)), Image.BOX)
    return np.asarray(small.resize((W, H), Image.BOX))


def elastic_transform(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Random affine (corner jitter), then a smooth random displacement field (bilinear, reflect).

    Constants are fractions of the side (the original's IMSIZE = 32): alpha, sigma, jitter =
    (0, 0, .08) (.05, .2, .07) (.08, .06, .06) (.1, .04, .05) (.1, .03, .03).
    """
    H, W = image.shape[:2]
    alpha, sigma, jitter = (v * min(H, W) for v in _pick(_ELASTIC, severity))
    x = _unit(image).astype(np.float32)
    center, square = np.float32((H, W)) // 2, min(H, W) // 3
    pts1 = np.float32([center + square, [center[0] + square, center[1] - square], center - square])
    pts2 = pts1 + rng.uniform(-jitter, jitter, size=pts1.shape).astype(np.float32)
    x = cv2.warpAffine(x, cv2.getAffineTransform(pts1, pts2), (W, H), borderMode=cv2.BORDER_REFLECT_101)
    dx, dy = ((_gaussian(rng.uniform(-1, 1, size=(H, W)), sigma, mode="reflect", truncate=3) * alpha)
              .astype(np.float32)[..., None] for _ in range(2))
    yy, xx, zz = np.meshgrid(np.arange(H), np.arange(W), np.arange(x.shape[2]), indexing="ij")
    return _from_unit(map_coordinates(x, (yy + dy, xx + dx, zz), order=1, mode="reflect"))


CORRUPTION_FUNCTIONS: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur, "glass_blur": glass_blur, "motion_blur": motion_blur,
    "zoom_blur": zoom_blur, "snow": snow, "frost": frost, "fog": fog, "brightness": brightness,
    "contrast": contrast, "elastic_transform": elastic_transform, "pixelate": pixelate,
    "jpeg_compression": jpeg_compression, "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur, "spatter": spatter, "saturate": saturate,
}


def _check_name(name: str) -> str:
    if name not in CORRUPTION_FUNCTIONS:
        raise ValueError(f"unknown CIFAR-10-C corruption {name!r}; valid: {', '.join(CIFAR10C_CORRUPTIONS)}")
    return name


def corrupt(image: np.ndarray, name: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1..5) to ``image`` uint8 (H, W, 3) -> uint8 (H, W, 3)."""
    fn = CORRUPTION_FUNCTIONS[_check_name(name)]
    _pick(SEVERITIES, severity)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"corrupt: expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    return fn(image, int(severity), rng)
