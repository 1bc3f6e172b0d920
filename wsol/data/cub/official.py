"""The official CUB-200-2011 layout (``CUB_200_2011/``, space separated, 1-based ids)::

    images.txt              <id> <NNN.Class/File.jpg>
    image_class_labels.txt  <id> <class 1..C>
    classes.txt             <class> <NNN.Class>
    train_test_split.txt    <id> <1 train | 0 test>
    bounding_boxes.txt      <id> <x> <y> <w> <h>
    images/                 the photos
    segmentations/          optional soft masks NNN.Class/<stem>.png (also looked for beside the root)

Boxes become wsolevaluation boxes with the rule of REFERENCE.md §4.2: ``x1 = min(x + w, W - 1)``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..split import (SPLITS, Box, CubFormatError, CubSplit, Sample, _cross_check, _find_seg_root, _keyed,
                   _read_sizes, _read_table)

__all__ = ["CubOfficial", "read_official", "official_split", "xywh_to_wsoleval", "OFFICIAL_FILES"]

log = logging.getLogger(__name__)

OFFICIAL_FILES = (
    "images.txt",
    "image_class_labels.txt",
    "classes.txt",
    "train_test_split.txt",
    "bounding_boxes.txt",
)


def _check_box_xywh(where: str, box, size, problems: list[str]) -> bool:
    x, y, w, h = box
    if w <= 0 or h <= 0:
        problems.append(f"{where}: box has zero or negative area (w={w:g}, h={h:g})")
        return False
    if size is None:
        return True
    W, H = size
    # One pixel of slack on the far side: the files do not state 0- or 1-based coordinates.
    if x < 0 or y < 0 or x >= W or y >= H or x + w > W + 1 or y + h > H + 1:
        problems.append(f"{where}: box (x={x:g}, y={y:g}, w={w:g}, h={h:g}) lies outside the {W}x{H} image")
        return False
    return True



def xywh_to_wsoleval(box, size: tuple[int, int]) -> Box:
    """Official CUB box -> wsolevaluation box (REFERENCE.md §4.2, exact on all boxes)."""
    x, y, w, h = box
    W, H = size
    return (float(x), float(y), float(min(x + w, W - 1)), float(min(y + h, H - 1)))



@dataclass
class CubOfficial:
    """The parsed official CUB-200-2011 folder. Ids are the 1-based integers of the files."""

    root: Path
    image_root: Path
    seg_root: Path | None
    ids: list[int]
    paths: dict[int, str]
    labels: dict[int, int]  # 0-based
    class_names: list[str]
    is_train: dict[int, bool]
    boxes_xywh: dict[int, tuple[float, float, float, float]]
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    bad_images: list[tuple[str, str]] = field(default_factory=list)  # (image path, error), skipped

    def sample(self, i: int) -> Sample:
        size = self.sizes[i]
        mask = ()
        if self.seg_root is not None:
            mpath = self.seg_root / Path(self.paths[i]).with_suffix(".png")
            if mpath.is_file():
                mask = (str(mpath),)
        return Sample(self.paths[i], self.labels[i], size, (xywh_to_wsoleval(self.boxes_xywh[i], size),), mask)



def _parse_classes(path: Path, rows, problems: list[str]) -> list[str]:
    classes = _keyed(path, rows, (str,), ("class", "name"), problems)
    names = []
    for k in range(1, len(classes) + 1):
        if k not in classes:
            problems.append(f"{path}: class ids must run 1..{len(classes)}; class {k} is missing")
            return []
        names.append(classes[k][1][0])
    return names



def read_official(root: str | os.PathLike, skip_bad_images: bool = False) -> CubOfficial:
    """Parse and cross-check an official CUB-200-2011 folder.

    Every image header is read for (W, H), which the box checks and the box rule need.

    Args:
        root: the folder holding images.txt (``CUB_200_2011``).
        skip_bad_images: drop images whose file is missing or unreadable (with a warning,
            listed in ``bad_images``) instead of failing; for long runs.
    Raises:
        CubFormatError listing every problem found.
    """
    data, problems = _parse_official(Path(root), skip_bad_images)
    if problems:
        raise CubFormatError(problems, f"CUB folder {root}")
    return data



def _parse_official(root: Path, skip_bad_images: bool = False) -> tuple[CubOfficial, list[str]]:
    p: list[str] = []
    f = {name: root / name for name in OFFICIAL_FILES}
    images = _keyed(f["images.txt"], _read_table(f["images.txt"], ("id", "path"), p), (str,), ("id", "path"), p)
    labels = _keyed(f["image_class_labels.txt"], _read_table(f["image_class_labels.txt"], ("id", "class"), p),
                    (int,), ("id", "class"), p)
    names = _parse_classes(f["classes.txt"], _read_table(f["classes.txt"], ("class", "name"), p), p)
    split = _keyed(f["train_test_split.txt"], _read_table(f["train_test_split.txt"], ("id", "is_train"), p),
                   (int,), ("id", "is_train"), p)
    fields = ("id", "x", "y", "w", "h")
    boxes = _keyed(f["bounding_boxes.txt"], _read_table(f["bounding_boxes.txt"], fields, p), (float,) * 4, fields, p)
    for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", split),
                        ("bounding_boxes.txt", boxes)):
        if images and f[name].is_file():
            _cross_check("images.txt", images, f[name], table, p)
    for key, (lineno, (c,)) in labels.items():
        if names and not 1 <= c <= len(names):
            p.append(f"{f['image_class_labels.txt']}:{lineno}: class {c} is not in classes.txt (1..{len(names)})")
    for key, (lineno, (t,)) in split.items():
        if t not in (0, 1):
            p.append(f"{f['train_test_split.txt']}:{lineno}: is_train must be 0 or 1, got {t}")
    image_root = root / "images"
    if not image_root.is_dir():
        p.append(f"{image_root}: image folder not found")
    ids = sorted(images)
    sizes, bad = _read_sizes(image_root, {i: (images[i][0], images[i][1][0]) for i in ids},
                             f["images.txt"]) if image_root.is_dir() else ({}, [])
    if skip_bad_images:
        for _, msg in bad:
            log.warning("skipping image: %s", msg)
        ids = [i for i in ids if i in sizes]
    else:
        p.extend(msg for _, msg in bad)
    for key, (lineno, box) in boxes.items():
        _check_box_xywh(f"{f['bounding_boxes.txt']}:{lineno}", box, sizes.get(key), p)
    data = CubOfficial(
        root=root, image_root=image_root, seg_root=_find_seg_root(root), ids=ids,
        paths={i: images[i][1][0] for i in ids},
        labels={i: labels[i][1][0] - 1 for i in ids if i in labels},
        class_names=names, is_train={i: split[i][1][0] == 1 for i in ids if i in split},
        boxes_xywh={i: tuple(boxes[i][1]) for i in ids if i in boxes}, sizes=sizes,
        bad_images=[(images[i][1][0], msg) for i, msg in bad] if skip_bad_images else [],
    )
    return data, p



def _val_ids(ids_by_class: dict[int, list], per_class: int) -> set:
    """Deterministic held-out ids: per class, the ``per_class`` ids with the smallest SHA-1."""
    chosen = set()
    for ids in ids_by_class.values():
        ranked = sorted(ids, key=lambda k: hashlib.sha1(str(k).encode()).hexdigest())
        chosen.update(ranked[: min(per_class, max(len(ids) - 1, 0))])
    return chosen



def official_split(data: CubOfficial, split: str, val_per_class: int = 0) -> CubSplit:
    """Samples of one split of the official layout.

    The official files have train and test only. ``val_per_class > 0`` carves a deterministic
    validation split out of train (and removes it from train); never out of test.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "val" and val_per_class <= 0:
        raise ValueError(
            f"{data.root}: the official CUB layout has no val split; pass val_per_class > 0 to carve "
            "one from train, or use wsolevaluation metadata with a val folder"
        )
    train_ids = [i for i in data.ids if data.is_train[i]]
    by_class: dict[int, list] = defaultdict(list)
    for i in train_ids:
        by_class[data.labels[i]].append(data.paths[i])
    val_paths = _val_ids(by_class, val_per_class) if val_per_class > 0 else set()
    if split == "test":
        ids = [i for i in data.ids if not data.is_train[i]]
    elif split == "val":
        ids = [i for i in train_ids if data.paths[i] in val_paths]
    else:
        ids = [i for i in train_ids if data.paths[i] not in val_paths]
    return CubSplit(split, data.image_root, [data.sample(i) for i in ids], list(data.class_names), "official")
