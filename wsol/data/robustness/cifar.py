"""CIFAR-10 (python pickle batches) and CIFAR-10-C (one ``.npy`` per corruption + ``labels.npy``)."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np

from .base import ClassificationSplit, DatasetFormatError, _as_int_array, _check_range, _check_split

__all__ = ["read_cifar10", "read_cifar10c", "available_cifar10c", "CIFAR10_CLASSES", "CIFAR10C_CORRUPTIONS",
           "CIFAR10C_BENCHMARK", "CIFAR10C_ART2020", "CIFAR10C_RECORD", "CIFAR10C_SEVERITIES"]

log = logging.getLogger(__name__)

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10C_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate",
)
CIFAR10C_BENCHMARK = CIFAR10C_CORRUPTIONS[:15]
# ART's 15 columns (REFERENCE.md §8): speckle noise in, frost out.
CIFAR10C_ART2020 = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise",
)
CIFAR10C_RECORD = "Zenodo record 2535967 (https://zenodo.org/record/2535967)"
CIFAR10C_SEVERITIES = 5


# --------------------------------------------------------------------------- CIFAR-10


def _cifar_folder(root: str | os.PathLike) -> Path:
    root = Path(root)
    sub = root / "cifar-10-batches-py"
    return sub if sub.is_dir() else root


def _pickle_get(d: dict, key: str):
    """Value of ``key`` in a CIFAR pickle, whose keys are bytes (python 2) or str."""
    return d[key.encode()] if key.encode() in d else d.get(key)


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
    except Exception as err:  # any unpickling failure means a damaged or foreign file
        raise DatasetFormatError(f"{path}: not a CIFAR-10 python pickle ({err})") from err
    if not isinstance(d, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    return d


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> images uint8 (N, 32, 32, 3), labels int64 (N,).

    The file's ``data`` rows are 3072 bytes: the R, G and B planes of 32x32, each row-major.
    """
    d = _load_pickle(path)
    data, labels = _pickle_get(d, "data"), _pickle_get(d, "labels")
    if data is None or labels is None:
        raise DatasetFormatError(f"{path}: expected keys b'data' and b'labels', found {sorted(d)}")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetFormatError(f"{path}: 'data' must have shape (N, 3072), got {data.shape}")
    if data.dtype != np.uint8:
        if data.dtype.kind not in "iu" or data.min(initial=0) < 0 or data.max(initial=0) > 255:
            raise DatasetFormatError(f"{path}: 'data' must be uint8 pixels, got dtype {data.dtype}")
        data = data.astype(np.uint8)
    labels = _as_int_array(path, "labels", labels, "class indices 0..9").reshape(-1)
    if len(labels) != len(data):
        raise DatasetFormatError(f"{path}: {len(labels)} labels for {len(data)} images")
    _check_range(path, labels, 0, 9)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _cifar_class_names(folder: Path) -> list[str]:
    path = folder / "batches.meta"
    if not path.is_file():
        log.warning("%s not found; using the standard CIFAR-10 class names", path)
        return list(CIFAR10_CLASSES)
    names = _pickle_get(_load_pickle(path), "label_names")
    if names is None or len(names) != 10:
        raise DatasetFormatError(f"{path}: expected 'label_names' with 10 class names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_cifar10(root: str | os.PathLike, split: str = "test") -> ClassificationSplit:
    """CIFAR-10, python version. ``root`` is ``cifar-10-batches-py/`` or its parent.

    Returns images uint8 (N, 32, 32, 3) with N = 50000 (train) or 10000 (test).
    """
    _check_split(split, ("train", "test"), "cifar10")
    folder = _cifar_folder(root)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetFormatError(f"{folder}: missing CIFAR-10 batch file(s) {missing} "
                                 f"(expected {names} in cifar-10-batches-py/)")
    parts = [_read_cifar_batch(folder / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ClassificationSplit(f"cifar10/{split}", images, labels, _cifar_class_names(folder))


# --------------------------------------------------------------------------- CIFAR-10-C


def available_cifar10c(root: str | os.PathLike) -> list[str]:
    """The corruptions of :data:`CIFAR10C_CORRUPTIONS` with a ``.npy`` file under ``root``."""
    return [c for c in CIFAR10C_CORRUPTIONS if (Path(root) / f"{c}.npy").is_file()]


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found (expected {what}; download CIFAR-10-C "
                                 f"from {CIFAR10C_RECORD})")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # ValueError / OSError on damaged or pickled files
        raise DatasetFormatError(f"{path}: not a readable .npy array ({err})") from err


def read_cifar10c(root: str | os.PathLike, corruption: str, severity: int) -> ClassificationSplit:
    """One corruption at one severity (1..5) of CIFAR-10-C: images uint8 (10000, 32, 32, 3).

    ``<corruption>.npy`` holds 5 blocks of the test set, severities 1..5 in order; only the
    requested block is read (memory-mapped, then copied).
    """
    if corruption not in CIFAR10C_CORRUPTIONS:
        raise ValueError(f"unknown CIFAR-10-C corruption {corruption!r}; valid: {', '.join(CIFAR10C_CORRUPTIONS)}")
    if not 1 <= int(severity) <= CIFAR10C_SEVERITIES:
        raise ValueError(f"CIFAR-10-C severity must be 1..5, got {severity}")
    root = Path(root)
    path = root / f"{corruption}.npy"
    arr = _load_npy(path, "uint8 (50000, 32, 32, 3): 5 severity blocks of the 10000 test images")
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.shape[0] % CIFAR10C_SEVERITIES or arr.dtype != np.uint8:
        raise DatasetFormatError(f"{path}: expected uint8 (5*N, H, W, 3) (50000, 32, 32, 3) for the "
                                 f"release, got {arr.dtype} {arr.shape}")
    lpath = root / "labels.npy"
    labels = _load_npy(lpath, f"({arr.shape[0]},) class indices 0..9")
    if labels.shape != (arr.shape[0],) or labels.dtype.kind not in "iu":
        raise DatasetFormatError(f"{lpath}: expected integer labels of shape ({arr.shape[0]},) to match "
                                 f"{path.name}, got {labels.dtype} {labels.shape}")
    n = arr.shape[0] // CIFAR10C_SEVERITIES
    block = slice((int(severity) - 1) * n, int(severity) * n)
    labels = np.array(labels[block], dtype=np.int64)
    _check_range(lpath, labels, 0, 9)
    return ClassificationSplit(f"cifar10c/{corruption}/{int(severity)}", np.array(arr[block]), labels,
                               list(CIFAR10_CLASSES))
