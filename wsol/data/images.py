"""Robust image and mask reading.

Every image enters the toolkit as an RGB ``uint8`` array of shape (H, W, 3), whatever its
file holds: grayscale, palette, RGBA/LA (alpha dropped), CMYK, 16-bit or 32-bit integer
and float images are converted. PIL is used (not OpenCV) because it is what the reference
WSOL code reads with and it never applies EXIF rotation, so boxes stay in stored-pixel
coordinates. (OpenCV only packs PIL's decoded RGBX pixels into RGB, the training loader's hot
path: see ``_rgb_pixels``.)
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageLoadError", "load_rgb", "load_mask", "image_size"]


class ImageLoadError(ValueError):
    """An image or mask file is missing, unreadable, truncated or corrupt."""


def _open(path: str | os.PathLike) -> Image.Image:
    if not os.path.isfile(path):  # Path.is_file's answer without building a Path (hot in training)
        raise ImageLoadError(f"{Path(path)}: image file not found")
    try:
        img = Image.open(path)
        img.load()  # force a full decode so truncated files fail here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageLoadError(f"{Path(path)}: unreadable or corrupt image ({err})") from err
    return img


class _ArrowArray(ctypes.Structure):
    """The Arrow C data interface's ``struct ArrowArray`` (a stable ABI)."""


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64), ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))), ("dictionary", ctypes.POINTER(_ArrowArray)),
    ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p),
]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _rgbx_view(img: Image.Image):
    """(capsule, uint8 (H, W, 4) view of Pillow's own RGBX memory) of an RGB image, or None where Pillow
    does not export it in place (Pillow < 11.2, or an image in several memory blocks). The view is valid
    while the capsule lives."""
    export = getattr(img.im, "__arrow_c_array__", None)
    W, H = img.size
    if export is None or W * H == 0:
        return None
    try:
        capsule = export()
    except (ValueError, TypeError, OSError):
        return None
    arr = ctypes.cast(_capsule_pointer(capsule, b"arrow_array"), ctypes.POINTER(_ArrowArray)).contents
    if arr.n_children != 1 or arr.length != W * H or arr.offset != 0:
        return None
    child = arr.children[0].contents
    if child.n_buffers != 2 or child.length != 4 * W * H or child.offset != 0 or not child.buffers[1]:
        return None
    buf = (ctypes.c_uint8 * (4 * W * H)).from_address(child.buffers[1])
    return capsule, np.frombuffer(buf, dtype=np.uint8).reshape(H, W, 4)


def _check_rgbx_layout() -> bool:
    """Whether the in-place view of this Pillow holds R, G, B in its first three bytes (checked once)."""
    probe = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    img = Image.fromarray(probe)
    got = _rgbx_view(img)
    return got is not None and np.array_equal(got[1][..., :3], probe)


_RGBX_OK: bool | None = None


def _rgb_pixels(img: Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) of an RGB image: the bytes ``np.asarray(img)`` gives, with one copy instead of two.

    Pillow keeps RGB as 4 bytes a pixel (RGBX); ``np.asarray`` packs it through ``tobytes`` (chunks, then
    a join). Where Pillow exports the image through the Arrow C data interface (Pillow >= 11.2, one memory
    block: images up to 4M pixels by default) the RGBX memory is read in place and packed by OpenCV;
    otherwise ``np.asarray``. The same pixels either way (tests/test_loader_equivalence.py).
    """
    global _RGBX_OK
    if _RGBX_OK is None:
        _RGBX_OK = _check_rgbx_layout()
    view = _rgbx_view(img) if _RGBX_OK else None
    if view is not None:
        return cv2.cvtColor(view[1], cv2.COLOR_RGBA2RGB)  # a new array, made while the capsule lives
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


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
    return _rgb_pixels(img)


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
