"""Robust image and mask reading.

Every image enters the toolkit as an RGB ``uint8`` array of shape (H, W, 3), whatever its
file holds: grayscale, palette, RGBA/LA (alpha dropped), CMYK, 16-bit or 32-bit integer
and float images are converted. PIL is used (not OpenCV) because it is what the reference
WSOL code reads with and it never applies EXIF rotation, so boxes stay in stored-pixel
coordinates.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageLoadError", "load_rgb", "load_mask", "image_size"]


class ImageLoadError(ValueError):
    """An image or mask file is missing, unreadable, truncated or corrupt."""


def _open(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: image file not found")
    try:
        img = Image.open(path)
        img.load()  # force a full decode so truncated files fail here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{path}: unreadable or corrupt image ({err})") from err
    return img


def _wide_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Map a 16/32-bit integer or float single-channel array to uint8."""
    if arr.dtype.kind == "f":
        scale = 255.0 if np.nanmax(arr) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(arr) * scale, 0, 255).round().astype(np.uint8)
    if mode.startswith("I;16") or arr.max(initial=0) > 255:
        return np.clip(arr.astype(np.float64) / 257.0, 0, 255).round().astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Returns:
        uint8 array (H, W, 3).
    Raises:
        ImageLoadError naming the file when it is missing or cannot be decoded.
    """
    img = _open(path)
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        gray = _wide_to_uint8(np.asarray(img), mode)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, LA, RGBA, CMYK, YCbCr, LAB, HSV
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a (soft) segmentation mask: its first channel as uint8 (H, W).

    CUB-200-2011 masks are mostly mode L, some LA; the first channel holds the votes.
    """
    img = _open(path)
    arr = np.asarray(img)
    if img.mode == "P":
        arr = np.asarray(img.convert("L"))
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        arr = _wide_to_uint8(arr, img.mode)
    return np.ascontiguousarray(arr)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{path}: unreadable or corrupt image ({err})") from err
