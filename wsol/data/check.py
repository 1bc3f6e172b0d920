"""Validate a CUB folder (either layout) and summarise it; collects every problem.

Beyond the files' own format, a split with no images (or, for wsolevaluation metadata, no
train split) is a problem: training refuses such a dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .cub import official_split
from .datasets import dataset_spec, spec_for_folder
from .cub.official import _parse_official
from .errors import DataFormatError
from .layout import detect_layout
from .split import SPLITS, CubSplit
from .wsoleval import _parse_wsoleval
from .images import ImageLoadError, load_mask, load_rgb

__all__ = ["DatasetReport", "check_dataset"]


@dataclass
class DatasetReport:
    layout: str
    root: Path
    dataset: str = "cub"
    splits: dict[str, int] = field(default_factory=dict)
    num_images: int = 0
    num_classes: int = 0
    boxes_per_image: tuple[int, float, int] = (0, 0.0, 0)  # min, mean, max
    masks_found: int = 0
    problems: list[str] = field(default_factory=list)
    metadata_ok: bool = True           # False: the text files did not parse; the counts mean nothing

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary_lines(self) -> list[str]:
        """The summary; only the layout line when the metadata is broken (its counts would mislead)."""
        layout = f"layout:          {self.layout} ({self.root})" + (
            f", dataset {self.dataset}" if self.layout == "wsoleval" else "")
        if not self.metadata_ok:
            return [] if self.layout == "unknown" else [layout]
        lo, mean, hi = self.boxes_per_image
        return [
            layout,
            f"images:          {self.num_images}",
            f"classes:         {self.num_classes}",
            "splits:          " + ", ".join(f"{k} {v}" for k, v in self.splits.items()),
            f"boxes per image: min {lo}, mean {mean:.2f}, max {hi} (splits with boxes)",
            f"masks found:     {self.masks_found} of {self.num_images}",
        ]


def _check_files(split: CubSplit, decode: bool, problems: list[str], progress: bool) -> int:
    """Decode every image and mask of a split; returns the number of masks found."""
    found = 0
    for s in tqdm(split.samples, desc=f"checking {split.name}", disable=not progress or not decode, leave=False):
        size = s.size  # None where image_sizes.txt gives none: the decoded image's
        if decode:
            try:
                img = load_rgb(split.image_path(s))
                if size is not None and img.shape[1::-1] != tuple(size):
                    problems.append(f"{split.image_path(s)}: decoded size {img.shape[1]}x{img.shape[0]}"
                                    f" differs from {size[0]}x{size[1]}")
                size = img.shape[1::-1]
            except ImageLoadError as err:
                problems.append(str(err))
        paths = [*s.mask_paths, *([s.ignore_path] if s.ignore_path else [])]
        for mp in paths:
            if not decode:
                found += mp != s.ignore_path and Path(mp).is_file()
                if not Path(mp).is_file():
                    problems.append(f"{mp}: {'ignore mask' if mp == s.ignore_path else 'mask'} of {s.image_id} "
                                    "not found")
                continue
            try:
                m = load_mask(mp)
                found += mp != s.ignore_path
                if size is not None and m.shape[::-1] != tuple(size):
                    problems.append(f"{mp}: mask is {m.shape[1]}x{m.shape[0]}, image is {size[0]}x{size[1]}")
            except ImageLoadError as err:
                problems.append(str(err))
    return found


def check_dataset(
    path: str | os.PathLike,
    decode: bool = True,
    image_root: str | os.PathLike | None = None,
    val_per_class: int = 0,
    progress: bool = True,
    dataset: str | None = None,
    mask_root: str | os.PathLike | None = None,
) -> DatasetReport:
    """Check a dataset folder (CUB's official layout, or wsolevaluation metadata of CUB, ILSVRC,
    OpenImages, ...): every text file, every id, every box, every mask path and (with ``decode``)
    every image and mask.

    Never raises on dataset problems: they are collected in ``report.problems``.
    """
    try:
        layout, root = detect_layout(path, dataset)
    except DataFormatError as err:
        return DatasetReport("unknown", Path(path), problems=list(err.problems), metadata_ok=False)
    except (FileNotFoundError, ValueError) as err:
        return DatasetReport("unknown", Path(path), problems=[str(err)], metadata_ok=False)
    report = DatasetReport(layout, root)
    if layout == "official":
        splits = _official_splits(root, val_per_class, report)
    else:
        spec = dataset_spec(dataset) if dataset not in (None, "custom") else spec_for_folder(root.resolve())
        splits = _wsoleval_splits(root, image_root, decode, report, spec, mask_root)
        report.dataset = spec.name if spec is not None else "custom"
    report.problems += _empty_split_problems(layout, root, splits)
    for split in splits:
        report.masks_found += _check_files(split, decode, report.problems, progress)
    report.splits = {s.name: len(s) for s in splits}
    report.num_images = len({x.image_id for s in splits for x in s.samples})
    report.num_classes = max((s.num_classes for s in splits), default=0)
    counts = [len(x.boxes) for s in splits if s.has_boxes for x in s.samples]
    if counts:
        report.boxes_per_image = (min(counts), float(np.mean(counts)), max(counts))
    return report


def _official_splits(root: Path, val_per_class: int, report: DatasetReport) -> list[CubSplit]:
    data, problems = _parse_official(root, skip_bad_images=True)
    report.problems = problems + [msg for _, msg in data.bad_images]
    if problems:
        report.metadata_ok = False
        return []
    names = ("train", "val", "test") if val_per_class > 0 else ("train", "test")
    splits = [official_split(data, s, val_per_class) for s in names]
    missing = [s.image_id for sp in splits for s in sp.samples if not s.mask_paths]
    if data.seg_root is not None and missing:
        report.problems += [f"{data.seg_root}: no mask for {m}" for m in missing]
    return splits


def _wsoleval_splits(root: Path, image_root, decode: bool, report: DatasetReport, spec=None,
                     mask_root=None) -> list[CubSplit]:
    splits = []
    for name in SPLITS:
        if (root / name).is_dir():
            split, probs = _parse_wsoleval(root / name, name, image_root, None, decode, True, mask_root, spec)
            report.problems += probs
            if split is None:
                report.metadata_ok = False
            else:
                splits.append(split)
    return splits


def _empty_split_problems(layout: str, root: Path, splits: list[CubSplit]) -> list[str]:
    """A split without images, or wsolevaluation metadata without a train split: training refuses both."""
    where = {"official": lambda name: root / "train_test_split.txt",
             "wsoleval": lambda name: root / name / "image_ids.txt"}[layout]
    problems = [f"{where(s.name)}: the {s.name} split has no images" + (
                "; training needs at least one training image" if s.name == "train" else "")
                for s in splits if not len(s)]
    if layout == "wsoleval" and not (root / "train").is_dir():
        problems.append(f"{root / 'train'}: no train split (image_ids.txt, ...); training needs one")
    return problems
