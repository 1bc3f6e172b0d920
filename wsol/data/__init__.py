"""Datasets: the WSOL datasets in wsolevaluation's layout (CUB-200-2011, ILSVRC / ImageNet-1K,
OpenImages30k; `wsol.data.datasets` is their table) and CUB's official layout, the synthetic
stand-ins, the albumentations pipelines, and the robustness sets (CIFAR-10, CIFAR-10-C, SVHN,
GTSRB, Oxford Flowers 17 / 102).

Importing this package is light (no torch): the metadata readers load at once, the torch datasets
and pipelines (`WSOLDataset`, `build_transform`, the robustness sets, ...) on first use.
"""

from __future__ import annotations

import importlib

from .cub import CubOfficial, convert_official_to_wsoleval, official_split, read_official
from .datasets import WSOL_DATASETS, WSOLDatasetSpec, dataset_spec, wsol_dataset_names
from .errors import DataFormatError
from .ilsvrc import IlsvrcFormatError, convert_imagenet_to_wsoleval, ilsvrc_class_names, ilsvrc_wnids
from .images import ImageLoadError, image_size, load_mask, load_rgb
from .layout import detect_layout, load_split
from .split import CubFormatError, CubSplit, Sample, WSOLFormatError, WSOLSplit
from .wsoleval import read_wsoleval

# name -> module, imported on first use (they pull torch / albumentations)
_LAZY = {
    "WSOLDataset": ".dataset", "CubDataset": ".dataset", "batch_gt_masks": ".dataset", "collate_samples": ".dataset", "seed_worker": ".dataset",
    "SampleTransform": ".transforms", "build_transform": ".transforms",
    **{name: ".robustness" for name in (
        "CIFAR10C_ART2020", "CIFAR10C_BENCHMARK", "CIFAR10C_CORRUPTIONS", "ClassificationDataset",
        "ClassificationSplit", "DatasetFormatError", "available_cifar10c", "collate_classification",
        "read_cifar10", "read_cifar10c", "read_flowers17", "read_flowers102", "read_gtsrb", "read_svhn")},
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wsol.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DataFormatError",
    "WSOLFormatError",
    "WSOLSplit",
    "WSOLDataset",
    "WSOL_DATASETS",
    "WSOLDatasetSpec",
    "dataset_spec",
    "wsol_dataset_names",
    "IlsvrcFormatError",
    "convert_imagenet_to_wsoleval",
    "ilsvrc_class_names",
    "ilsvrc_wnids",
    "CubDataset",
    "CubFormatError",
    "CubOfficial",
    "CubSplit",
    "Sample",
    "collate_samples",
    "convert_official_to_wsoleval",
    "detect_layout",
    "load_split",
    "official_split",
    "read_official",
    "read_wsoleval",
    "seed_worker",
    "ImageLoadError",
    "image_size",
    "load_mask",
    "load_rgb",
]
__all__ += [name for name in _LAZY if name not in __all__]
