"""The wsolevaluation metadata layout (``metadata/CUB/{train,val,test}/``, comma separated,
id = image path relative to the image root)::

    image_ids.txt     <id>
    class_labels.txt  <id>,<label 0..C-1>
    image_sizes.txt   <id>,<W>,<H>
    localization.txt  <id>,<x0>,<y0>,<x1>,<y1>   (one line per box)
                      or <id>,<mask_path>,<ignore_path>   (OpenImages-style masks)
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from .base import (CubFormatError, CubSplit, Sample, _cross_check, _find_seg_root, _keyed, _parse_number,
                   _read_sizes, _read_table)

__all__ = ["read_wsoleval", "WSOLEVAL_FILES"]

WSOLEVAL_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")


def _check_box_xyxy(where: str, box, size, problems: list[str]) -> bool:
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0:
        problems.append(f"{where}: box ({x0:g},{y0:g},{x1:g},{y1:g}) has x1 < x0 or y1 < y0")
        return False
    if x1 == x0 or y1 == y0:
        problems.append(f"{where}: box ({x0:g},{y0:g},{x1:g},{y1:g}) has zero area")
        return False
    if size is not None:
        W, H = size
        if x0 < 0 or y0 < 0 or x1 > W - 1 or y1 > H - 1:
            problems.append(f"{where}: box ({x0:g},{y0:g},{x1:g},{y1:g}) lies outside the {W}x{H} image")
            return False
    return True



def _class_names_from_ids(samples: list[Sample], num_classes: int) -> list[str]:
    """Class names from the ``NNN.Name/`` folder of the ids when each label has one folder."""
    folders: dict[int, set] = defaultdict(set)
    for s in samples:
        folders[s.label].add(s.image_id.split("/")[0] if "/" in s.image_id else "")
    names = []
    for k in range(num_classes):
        f = folders.get(k, set())
        names.append(next(iter(f)) if len(f) == 1 and "" not in f else f"class_{k:03d}")
    return names



def read_wsoleval(
    metadata_dir: str | os.PathLike,
    split: str,
    image_root: str | os.PathLike | None = None,
    num_classes: int | None = None,
    check_images: bool = False,
    require_images: bool = True,
    mask_root: str | os.PathLike | None = None,
) -> CubSplit:
    """Read one split of wsolevaluation metadata (``metadata_dir/<split>/*.txt``).

    Args:
        image_root: the folder the ids are relative to; by default ``metadata_dir/images``,
            ``metadata_dir/../images`` or ``metadata_dir/../../images`` (first that exists).
        num_classes: class count; by default 1 + the largest label over the split.
        check_images: open every image header and compare with image_sizes.txt.
        require_images: fail when no image root is found (False for score-map evaluation,
            which needs only the metadata).
        mask_root: root the mask paths of OpenImages-style localization.txt are relative to
            (default: the image root's parent).
    Raises:
        CubFormatError listing every problem.
    """
    split_dir = Path(metadata_dir) / split
    result, problems = _parse_wsoleval(split_dir, split, image_root, num_classes, check_images,
                                       require_images, mask_root)
    if problems:
        raise CubFormatError(problems, f"wsolevaluation metadata {split_dir}")
    return result



def _default_image_root(metadata_dir: Path) -> Path | None:
    for cand in (metadata_dir / "images", metadata_dir.parent / "images", metadata_dir.parent.parent / "images"):
        if cand.is_dir():
            return cand
    return None



def _parse_wsoleval(split_dir: Path, split: str, image_root, num_classes, check_images,
                    require_images: bool = True, mask_root=None):
    p: list[str] = []
    if not split_dir.is_dir():
        return None, [f"{split_dir}: split folder not found (expected {', '.join(WSOLEVAL_FILES)})"]
    f = {name: split_dir / name for name in WSOLEVAL_FILES}
    ids = _keyed(f["image_ids.txt"], _read_table(f["image_ids.txt"], ("id",), p, ","), (), ("id",), p, str)
    labels = _keyed(f["class_labels.txt"], _read_table(f["class_labels.txt"], ("id", "label"), p, ","),
                    (int,), ("id", "label"), p, str)
    sizes = _keyed(f["image_sizes.txt"], _read_table(f["image_sizes.txt"], ("id", "W", "H"), p, ","),
                   (int, int), ("id", "W", "H"), p, str)
    boxes, masks = _parse_localization(f["localization.txt"], p)
    loc = {k: (v[0][0][0], None) for k, v in {**boxes, **masks}.items()}
    for name, table in (("class_labels.txt", labels), ("image_sizes.txt", sizes), ("localization.txt", loc)):
        if ids and f[name].is_file():
            _cross_check("image_ids.txt", ids, f[name], table, p)
    for key, (entries, _) in boxes.items():
        for line, box in entries:
            _check_box_xyxy(f"{f['localization.txt']}:{line}", box, tuple(sizes[key][1]) if key in sizes else None, p)
    root = Path(image_root) if image_root is not None else _default_image_root(split_dir.parent)
    if (root is None or not root.is_dir()) and require_images:
        p.append(f"{split_dir}: image root not found (looked for images/ beside the metadata); pass image_root")
    root = root if root is not None else split_dir
    mroot = Path(mask_root) if mask_root is not None else root.parent
    seg_root = _find_seg_root(root) if root is not None and root.is_dir() else None
    n_cls = num_classes or (1 + max((v[1][0] for v in labels.values()), default=-1))
    for key, (lineno, (lab,)) in labels.items():
        if not 0 <= lab < n_cls:
            p.append(f"{f['class_labels.txt']}:{lineno}: label {lab} outside 0..{n_cls - 1}")
    for key, (lineno, (w, h)) in sizes.items():
        if w <= 0 or h <= 0:
            p.append(f"{f['image_sizes.txt']}:{lineno}: image size must be positive, got {w}x{h}")
    if p:
        return None, p
    samples = [_wsoleval_sample(k, labels, sizes, boxes, masks, mroot, seg_root) for k in ids]
    if check_images:
        _compare_sizes(root, ids, sizes, f["image_ids.txt"], p)
    return CubSplit(split, root, samples, _class_names_from_ids(samples, n_cls), "wsoleval"), p



def _parse_localization(path: Path, problems: list[str]):
    """Boxes {id: ([(line, box)], None)} and masks {id: ([(line, mask, ignore)], None)}."""
    boxes: dict = {}
    masks: dict = {}
    if not path.is_file():
        problems.append(f"{path}: file not found (expected id,x0,y0,x1,y1 or id,mask_path,ignore_path)")
        return boxes, masks
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = [x.strip() for x in line.rstrip("\r\n").split(",")]
            if parts == [""]:
                continue
            where = f"{path}:{lineno}"
            if len(parts) == 3:
                masks.setdefault(parts[0], ([], None))[0].append((lineno, parts[1], parts[2]))
            elif len(parts) == 5:
                vals = [_parse_number(v, float, where, n, problems) for v, n in zip(parts[1:], ("x0", "y0", "x1", "y1"))]
                if None not in vals:
                    boxes.setdefault(parts[0], ([], None))[0].append((lineno, tuple(vals)))
            else:
                problems.append(f"{where}: expected 5 fields (id,x0,y0,x1,y1) or 3 (id,mask_path,ignore_path), "
                                f"got {len(parts)}: {line.strip()!r}")
    return boxes, masks



def _wsoleval_sample(key, labels, sizes, boxes, masks, mask_root: Path, seg_root: Path | None) -> Sample:
    box_list = tuple(b for _, b in boxes[key][0]) if key in boxes else ()
    mask_paths: tuple[str, ...] = ()
    ignore = None
    if key in masks:
        mask_paths = tuple(str(mask_root / m) for _, m, _ in masks[key][0])
        ign = {i for _, _, i in masks[key][0] if i}
        ignore = str(mask_root / sorted(ign)[0]) if ign else None
    elif seg_root is not None:
        mpath = seg_root / Path(key).with_suffix(".png")
        if mpath.is_file():
            mask_paths = (str(mpath),)
    return Sample(key, labels[key][1][0], tuple(sizes[key][1]), box_list, mask_paths, ignore)



def _compare_sizes(root: Path, ids: dict, sizes: dict, listing: Path, problems: list[str]) -> None:
    found, failures = _read_sizes(root, {k: (ids[k][0], k) for k in ids}, listing)
    problems.extend(msg for _, msg in failures)
    for key, size in found.items():
        if tuple(size) != tuple(sizes[key][1]):
            problems.append(f"{listing.parent / 'image_sizes.txt'}:{sizes[key][0]}: {key} is {size[0]}x{size[1]} "
                            f"on disk, not {sizes[key][1][0]}x{sizes[key][1][1]}")
