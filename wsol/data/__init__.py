"""Datasets: CUB-200-2011 (official and wsolevaluation layouts), the synthetic CUB-format
generator, and the albumentations pipelines."""

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
from .images import ImageLoadError, image_size, load_mask, load_rgb
from .transforms import SampleTransform, build_transform

__all__ = [
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
]
