"""Oxford 17 and 102 Flowers, official layouts (``jpg/`` plus the split / label ``.mat`` files)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import ClassificationSplit, DatasetFormatError, _as_int_array, _check_range, _check_split, \
    _existing_files, _loadmat

__all__ = ["read_flowers17", "read_flowers102"]

FLOWERS17_PER_CLASS = 80
FLOWERS17_NUM_IMAGES = 17 * FLOWERS17_PER_CLASS


def _mat_indices(path: Path, mat: dict, key: str, n_max: int) -> np.ndarray:
    """1-based indices under ``key`` -> int64 0-based, each checked to lie in 1..n_max."""
    idx = _as_int_array(path, key, mat[key], f"1-based image indices 1..{n_max}").reshape(-1)
    _check_range(path, idx, 1, n_max, what=f"image index in '{key}'")
    return idx - 1


def _flowers_split(root: Path, name: str, index: np.ndarray, labels: np.ndarray, pattern: str,
                   num_classes: int) -> ClassificationSplit:
    rel = [f"jpg/{pattern.format(i + 1)}" for i in index]
    paths = _existing_files([root / r for r in rel], name)
    names = [f"{c:0{len(str(num_classes))}d}" for c in range(num_classes)]
    return ClassificationSplit(name, paths, labels, names, image_ids=rel)


def read_flowers17(root: str | os.PathLike, split: str = "test", fold: int = 1) -> ClassificationSplit:
    """Oxford 17 Flowers: ``jpg/image_0001.jpg..image_1360.jpg`` and ``datasplits.mat``.

    Images come 80 per class in order (class = (i-1) // 80). ``datasplits.mat`` holds
    trn1, val1, tst1, ..., tst3 (1-based indices); ``fold`` in 1..3. Class names are the
    indices "00".."16": the download does not name the classes.
    """
    _check_split(split, ("train", "val", "test"), "flowers17")
    if fold not in (1, 2, 3):
        raise ValueError(f"flowers17: fold must be 1, 2 or 3, got {fold!r}")
    root = Path(root)
    path = root / "datasplits.mat"
    if not path.is_file() and (root / "jpg" / "datasplits.mat").is_file():
        path = root / "jpg" / "datasplits.mat"
    key = {"train": "trn", "val": "val", "test": "tst"}[split] + str(fold)
    mat = _loadmat(path, (key,))
    index = _mat_indices(path, mat, key, FLOWERS17_NUM_IMAGES)
    labels = index // FLOWERS17_PER_CLASS
    return _flowers_split(root, f"flowers17/{split}{fold}", index, labels, "image_{:04d}.jpg", 17)


def read_flowers102(root: str | os.PathLike, split: str = "test") -> ClassificationSplit:
    """Oxford 102 Flowers: ``jpg/image_00001.jpg..``, ``imagelabels.mat`` (``labels`` (1,N) in
    1..102) and ``setid.mat`` (``trnid``, ``valid``, ``tstid``, 1-based). Labels become 0..101."""
    _check_split(split, ("train", "val", "test"), "flowers102")
    root = Path(root)
    lpath = root / "imagelabels.mat"
    all_labels = _as_int_array(lpath, "labels", _loadmat(lpath, ("labels",))["labels"], "classes 1..102")
    if all_labels.ndim != 2 or 1 not in all_labels.shape:
        raise DatasetFormatError(f"{lpath}: 'labels' must have shape (1, N), got {all_labels.shape}")
    _check_range(lpath, all_labels.reshape(-1), 1, 102)
    all_labels = all_labels.reshape(-1) - 1
    key = {"train": "trnid", "val": "valid", "test": "tstid"}[split]
    spath = root / "setid.mat"
    index = _mat_indices(spath, _loadmat(spath, (key,)), key, len(all_labels))
    return _flowers_split(root, f"flowers102/{split}", index, all_labels[index], "image_{:05d}.jpg", 102)
