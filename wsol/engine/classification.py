"""Classification datasets in the training engine (tools/train_classifier.py).

`data.dataset` picks the reader (REFERENCE.md §7, wsol/data/robustness.py):

    cifar10     python pickle batches (train / test)
    svhn        train_32x32.mat / test_32x32.mat
    gtsrb       official Final_Training / Final_Test folders and CSVs
    flowers17   jpg/ + datasplits.mat (fold `data.fold`; official train / val / test)
    flowers102  jpg/ + imagelabels.mat + setid.mat (official train / val / test)

Validation is never the test split: the official val split where the dataset has one
(Flowers), else `data.val_per_class` images per class carved from train, the ones whose
image id has the smallest SHA-1 (deterministic, independent of the seed), as for CUB.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from wsol.config import Config, ConfigError
from wsol.data.robustness import (
    ClassificationDataset,
    ClassificationSplit,
    read_cifar10,
    read_flowers17,
    read_flowers102,
    read_gtsrb,
    read_svhn,
)

__all__ = ["CLASSIFICATION_DATASETS", "read_classification", "carve_val", "prepare_classification",
           "classification_train_dataset", "classification_eval_dataset"]

READERS = {"cifar10": read_cifar10, "svhn": read_svhn, "gtsrb": read_gtsrb, "flowers17": read_flowers17,
           "flowers102": read_flowers102}
CLASSIFICATION_DATASETS = tuple(READERS)
OFFICIAL_VAL = ("flowers17", "flowers102")


def read_classification(dataset: str, root: str | os.PathLike, split: str, fold: int = 1) -> ClassificationSplit:
    """The `split` of `dataset` under `root` (DatasetFormatError naming the file on bad input)."""
    if dataset not in READERS:
        raise ConfigError(f"data.dataset={dataset!r} is not a classification dataset; valid: "
                          f"{', '.join(CLASSIFICATION_DATASETS)}")
    if dataset == "flowers17":
        return read_flowers17(root, split, fold=fold)
    return READERS[dataset](root, split)


def _subset(split: ClassificationSplit, index: np.ndarray, name: str) -> ClassificationSplit:
    images = split.images[index] if split.in_memory else [split.images[i] for i in index]
    ids = [split.image_id(int(i)) for i in index]
    boxes = None if split.boxes is None else split.boxes[index]
    return ClassificationSplit(name, images, split.labels[index], split.class_names, boxes, ids)


def carve_val(split: ClassificationSplit, per_class: int) -> tuple[ClassificationSplit, ClassificationSplit]:
    """(train without val, val): per class, the `per_class` images whose id has the smallest SHA-1.

    A class with fewer than per_class + 1 images gives all but one to train (min(n, available)).
    """
    if per_class <= 0:
        raise ConfigError(f"data.val_per_class must be > 0 to carve a validation split from {split.name} "
                          "(validation is never the test split)")
    keys = np.array([hashlib.sha1(split.image_id(i).encode()).hexdigest() for i in range(len(split))])
    val = []
    for c in np.unique(split.labels):
        members = np.flatnonzero(split.labels == c)
        take = min(per_class, len(members) - 1)
        val.extend(members[np.argsort(keys[members], kind="stable")[:take]].tolist())
    is_val = np.zeros(len(split), bool)
    is_val[val] = True
    base = split.name.rsplit("/", 1)[0]
    return (_subset(split, np.flatnonzero(~is_val), f"{base}/train-minus-val"),
            _subset(split, np.flatnonzero(is_val), f"{base}/val-from-train"))


def prepare_classification(cfg: Config) -> tuple[Path, ClassificationSplit, ClassificationSplit]:
    """(root, train split, val split) for a classification `cfg.data.dataset`."""
    d = cfg.data
    if not d.root:
        raise ConfigError(f"data.dataset={d.dataset!r} needs --data (the dataset folder); the built-in "
                          "synthetic data is CUB-format only (tools/make_synthetic_cifar.py writes a "
                          "CIFAR-10-format one)")
    root = Path(d.root)
    if d.dataset in OFFICIAL_VAL:
        train = read_classification(d.dataset, root, "train", d.fold)
        val = read_classification(d.dataset, root, "val", d.fold)
    else:
        train, val = carve_val(read_classification(d.dataset, root, "train", d.fold), d.val_per_class)
    if not len(train) or not len(val):
        raise ConfigError(f"{root}: train has {len(train)} and val {len(val)} images; both must be > 0")
    return root, train, val


def _image_size(cfg: Config, split: ClassificationSplit) -> int | None:
    """Resize only when the stored size differs from data.image_size (file-based sets always)."""
    if split.in_memory and split.images.shape[1:3] == (cfg.data.image_size,) * 2:
        return None
    return cfg.data.image_size


def classification_train_dataset(cfg: Config, split: ClassificationSplit) -> ClassificationDataset:
    """The training dataset: pad-crop, flip with p = data.hflip (+ data.color_jitter, data.rotation), in [0, 1]."""
    d = cfg.data
    return ClassificationDataset(split, _image_size(cfg, split), train=True, pad=d.pad, hflip_p=d.hflip,
                                 color_jitter=d.color_jitter, rotation=d.rotation)


def classification_eval_dataset(cfg: Config, split: ClassificationSplit) -> ClassificationDataset:
    """An evaluation dataset (no augmentation), images resized to data.image_size when needed."""
    return ClassificationDataset(split, _image_size(cfg, split))
