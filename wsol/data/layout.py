"""A split from one path, whatever its layout (:func:`detect_layout`, :func:`load_split`): CUB's
official folder, or wsolevaluation metadata of any dataset in `wsol.data.datasets` (CUB, ILSVRC,
OpenImages, ...)."""

from __future__ import annotations

import os
from pathlib import Path

from .cub.official import official_split, read_official
from .datasets import WSOL_DATASETS, dataset_spec
from .split import SPLITS, WSOLFormatError, WSOLSplit
from .wsoleval import read_wsoleval

__all__ = ["detect_layout", "load_split"]


def detect_layout(path: str | os.PathLike, dataset: str | None = None) -> tuple[str, Path]:
    """('official', root) or ('wsoleval', metadata_dir) for a dataset folder.

    Accepts the CUB root, a folder holding ``CUB_200_2011/``, a metadata folder with
    train/val/test subfolders, or a folder holding ``metadata/<Dataset>`` (CUB, ILSVRC,
    OpenImages; only `dataset`'s when given).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: dataset folder not found")
    if dataset in (None, "cub"):
        for cand in (path, path / "CUB_200_2011"):
            if (cand / "images.txt").is_file():
                return "official", cand
    specs = [dataset_spec(dataset)] if dataset not in (None, "custom") else list(WSOL_DATASETS.values())
    cands = [path] + [c for s in specs for c in (path / "metadata" / s.folder, path / s.folder)] + [path / "metadata"]
    for cand in cands:
        if any((cand / s / "image_ids.txt").is_file() for s in SPLITS):
            return "wsoleval", cand
    wanted = " or ".join(f"metadata/{s.folder}" for s in specs)
    raise WSOLFormatError(
        [f"{path}: neither an official CUB folder (images.txt, ...) nor wsolevaluation metadata "
         f"(train/val/test folders with image_ids.txt, ..., here or in {wanted})"]
    )


def load_split(
    path: str | os.PathLike,
    split: str,
    val_per_class: int = 0,
    image_root: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
    dataset: str | None = None,
    mask_root: str | os.PathLike | None = None,
) -> WSOLSplit:
    """One split from either layout (see :func:`detect_layout`); `image_root` / `mask_root` /
    `dataset` go to :func:`read_wsoleval` (the official CUB layout has its images in place)."""
    layout, root = detect_layout(path, dataset)
    if layout == "official":
        return official_split(read_official(root, skip_bad_images), split, val_per_class)
    return read_wsoleval(root, split, image_root, mask_root=mask_root, dataset=dataset)
