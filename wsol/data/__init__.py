"""Datasets: CUB-200-2011 (official and wsolevaluation layouts), the synthetic CUB-format
generator, the albumentations pipelines, and the robustness sets (CIFAR-10, CIFAR-10-C,
SVHN, GTSRB, Oxford Flowers 17 / 102)."""

from .cub import (
    CubFormatError,
    CubOfficial,
    CubSplit,
    Sample,
    convert_official_to_wsoleval,
    detect_layout,
    load_split,
    official_split,
    read_official,
    read_wsoleval,
)
from .dataset import CubDataset, collate_samples, seed_worker
from .errors import DataFormatError
from .images import ImageLoadError, image_size, load_mask, load_rgb
from .robustness import (
    CIFAR10C_ART2020,
    CIFAR10C_BENCHMARK,
    CIFAR10C_CORRUPTIONS,
    ClassificationDataset,
    ClassificationSplit,
    DatasetFormatError,
    available_cifar10c,
    collate_classification,
    read_cifar10,
    read_cifar10c,
    read_flowers17,
    read_flowers102,
    read_gtsrb,
    read_svhn,
)
from .transforms import SampleTransform, build_transform

__all__ = [
    "DataFormatError",
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
    "SampleTransform",
    "build_transform",
    "CIFAR10C_ART2020",
    "CIFAR10C_BENCHMARK",
    "CIFAR10C_CORRUPTIONS",
    "ClassificationDataset",
    "ClassificationSplit",
    "DatasetFormatError",
    "available_cifar10c",
    "collate_classification",
    "read_cifar10",
    "read_cifar10c",
    "read_flowers17",
    "read_flowers102",
    "read_gtsrb",
    "read_svhn",
]
