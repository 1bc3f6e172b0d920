"""SVHN format 2 (cropped digits, ``<split>_32x32.mat``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import ClassificationSplit, DatasetFormatError, _as_int_array, _check_range, _check_split, _loadmat

__all__ = ["read_svhn"]


def read_svhn(root: str | os.PathLike, split: str = "test") -> ClassificationSplit:
    """SVHN format 2 (cropped digits): ``<split>_32x32.mat`` with X (32,32,3,N), y (N,1) in 1..10.

    Returns images uint8 (N, 32, 32, 3); label 10 (digit 0) becomes 0.
    """
    _check_split(split, ("train", "test", "extra"), "svhn")
    path = Path(root) / f"{split}_32x32.mat"
    mat = _loadmat(path, ("X", "y"))
    X = np.asarray(mat["X"])
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3):
        raise DatasetFormatError(f"{path}: 'X' must have shape (32, 32, 3, N), got {X.shape}")
    if X.dtype != np.uint8:
        raise DatasetFormatError(f"{path}: 'X' must be uint8, got {X.dtype}")
    y = _as_int_array(path, "y", mat["y"], "labels 1..10")
    if y.size != X.shape[3] or (y.ndim == 2 and 1 not in y.shape) or y.ndim > 2:
        raise DatasetFormatError(f"{path}: 'y' must have shape ({X.shape[3]}, 1), got {y.shape}")
    y = y.reshape(-1)
    _check_range(path, y, 1, 10)
    labels = np.where(y == 10, 0, y)
    images = np.ascontiguousarray(X.transpose(3, 0, 1, 2))
    return ClassificationSplit(f"svhn/{split}", images, labels, [str(d) for d in range(10)])
