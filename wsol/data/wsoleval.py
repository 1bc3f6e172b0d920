"""The wsolevaluation metadata layout, for every dataset in it (``metadata/<CUB|ILSVRC|OpenImages>/
{train,val,test}/``, comma separated, id = image path relative to the image root; REFERENCE §12.1)::

    image_ids.txt     <id>
    class_labels.txt  <id>,<label 0..C-1>
    image_sizes.txt   <id>,<W>,<H>             (may be empty or absent where no box needs it:
                                                ILSVRC train, every OpenImages split)
    localization.txt  <id>,<x0>,<y0>,<x1>,<y1>   (one line per box; several per image allowed)
                      or <id>,<mask_path>,<ignore_path>   (OpenImages: one line per instance mask, the
                      ignore path on an image's first line only)
                      (empty or absent: labels only, e.g. ILSVRC and OpenImages train)
    mapping.txt       optional (ILSVRC val): ImageNetV2's ``<k>/<n>.jpeg, <k>/<sha1>.jpeg`` renames
    ../class_names.txt  optional: line k is class k's name

Roots (wsolevaluation: images in ``<data_root>/<Dataset>``, masks in ``<mask_root>/OpenImages``): the
image root is ``image_root`` if given, else the first of ``<root>/images/<Dataset>``,
``<root>/dataset/<Dataset>``, ``<metadata>/images``, ``<metadata>/../images``, ``<metadata>/../../images``
that exists (root: the folder holding ``metadata/``); mask paths are relative to ``mask_root`` if
given, else to the image root (wsolevaluation), or to its parent where the masks are found there.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from pathlib import Path

from .datasets import NAMES_FILE, WSOLDatasetSpec, dataset_spec, read_names_file, spec_for_folder
from .split import (MASK_THRESHOLD, WSOLFormatError, WSOLSplit, Sample, _cross_check, _find_seg_root, _keyed, _parse_number,
                    _read_sizes, _read_table)

__all__ = ["read_wsoleval", "WSOLEVAL_FILES"]

WSOLEVAL_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")
MAPPING_FILE = "mapping.txt"   # optional, ImageNetV2's old -> hashed file names (PR 53)


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



def _class_names_from_ids(samples: list[Sample], num_classes: int, part: int | None = None) -> list[str]:
    """Class names from the id folder (part `part` of the "/"-split id; None: the first part that
    is one folder per class) when each label has exactly one; ``class_{k:03d}`` otherwise."""
    parts = [s.image_id.split("/")[:-1] for s in samples]
    depth = min((len(p) for p in parts), default=0)
    candidates = [part] if part is not None else range(depth)
    for j in candidates:
        folders: dict[int, set] = defaultdict(set)
        for s, p in zip(samples, parts):
            folders[s.label].add(p[j] if j < len(p) else "")
        names = [next(iter(folders[k])) if len(folders.get(k, ())) == 1 and "" not in folders[k] else None
                 for k in range(num_classes)]
        if any(n is not None for n in names) and len({n for n in names if n}) == sum(n is not None for n in names):
            return [n or f"class_{k:03d}" for k, n in enumerate(names)]
    return [f"class_{k:03d}" for k in range(num_classes)]


def _class_names(split_dir: Path, spec: WSOLDatasetSpec | None, samples: list[Sample], n_cls: int,
                 problems: list[str]) -> list[str]:
    for names_file in (split_dir / NAMES_FILE, split_dir.parent / NAMES_FILE):
        if names_file.is_file():
            try:
                return read_names_file(names_file, n_cls)
            except ValueError as err:
                problems.append(str(err))
                return []
    part = None if spec is None else spec.class_folder
    names = None
    train = split_dir.parent / "train"
    if part is None and split_dir.name != "train" and (train / "image_ids.txt").is_file():
        # ids without a class folder (ILSVRC test): the train split's folders name the classes
        try:
            names = read_wsoleval(split_dir.parent, "train", num_classes=n_cls, require_images=False,
                                  dataset=None if spec is None else spec.name).class_names
        except WSOLFormatError:
            names = None
    if names is None:
        names = _class_names_from_ids(samples, n_cls, part)
    if spec is not None and spec.class_names is not None:
        names = spec.class_names(names)
    return names


def read_wsoleval(
    metadata_dir: str | os.PathLike,
    split: str,
    image_root: str | os.PathLike | None = None,
    num_classes: int | None = None,
    check_images: bool = False,
    require_images: bool = True,
    mask_root: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> WSOLSplit:
    """Read one split of wsolevaluation metadata (``metadata_dir/<split>/*.txt``).

    Args:
        image_root: the folder the ids are relative to (default: see the module doc).
        num_classes: class count; by default 1 + the largest label over the split.
        check_images: open every image header and compare with image_sizes.txt.
        require_images: fail when no image root is found (False for score-map evaluation,
            which needs only the metadata).
        mask_root: root the mask paths of OpenImages-style localization.txt are relative to
            (default: the image root, as wsolevaluation; its parent where the masks are there).
        dataset: a `wsol.data.datasets` table name (cub, ilsvrc, openimages); default: the one
            whose wsolevaluation folder name (CUB, ILSVRC, OpenImages) `metadata_dir` is, else
            a dataset not in the table ("custom").
    Raises:
        WSOLFormatError listing every problem.
    """
    split_dir = Path(metadata_dir) / split
    if dataset == "custom":
        spec = None
    else:
        spec = dataset_spec(dataset) if dataset is not None else spec_for_folder(Path(metadata_dir).resolve())
    result, problems = _parse_wsoleval(split_dir, split, image_root, num_classes, check_images,
                                       require_images, mask_root, spec)
    if problems:
        raise WSOLFormatError(problems, f"wsolevaluation metadata {split_dir}")
    return result


def _default_image_root(metadata_dir: Path, spec: WSOLDatasetSpec | None) -> Path | None:
    cands = []
    if spec is not None:
        top = metadata_dir.parent.parent if metadata_dir.parent.name == "metadata" else metadata_dir.parent
        cands += [top / "images" / spec.folder, top / "dataset" / spec.folder]
    cands += [metadata_dir / "images", metadata_dir.parent / "images", metadata_dir.parent.parent / "images"]
    for cand in cands:
        if cand.is_dir():
            return cand
    return None


def _default_mask_root(image_root: Path, masks: dict) -> Path:
    """The image root (wsolevaluation), or its parent where the first mask is found there."""
    first = next((m for entries, _ in masks.values() for _, m, _ in entries), None)
    if first is not None and not (image_root / first).is_file() and (image_root.parent / first).is_file():
        return image_root.parent
    return image_root


def _parse_wsoleval(split_dir: Path, split: str, image_root, num_classes, check_images,
                    require_images: bool = True, mask_root=None, spec: WSOLDatasetSpec | None = None):
    p: list[str] = []
    if not split_dir.is_dir():
        return None, [f"{split_dir}: split folder not found (expected {', '.join(WSOLEVAL_FILES)})"]
    f = {name: split_dir / name for name in WSOLEVAL_FILES}
    ids = _keyed(f["image_ids.txt"], _read_table(f["image_ids.txt"], ("id",), p, ","), (), ("id",), p, str)
    labels = _keyed(f["class_labels.txt"], _read_table(f["class_labels.txt"], ("id", "label"), p, ","),
                    (int,), ("id", "label"), p, str)
    # image_sizes.txt may be empty or absent (wsolevaluation's ILSVRC train and OpenImages): then only
    # boxes need it
    sizes = (_keyed(f["image_sizes.txt"], _read_table(f["image_sizes.txt"], ("id", "W", "H"), p, ","),
                    (int, int), ("id", "W", "H"), p, str) if _nonempty(f["image_sizes.txt"]) else {})
    boxes, masks = _parse_localization(f["localization.txt"], p, optional=split == "train")
    if boxes and masks:
        p.append(f"{f['localization.txt']}: mixes box lines (id,x0,y0,x1,y1) and mask lines "
                 "(id,mask_path,ignore_path); one kind per split")
    loc = {k: (v[0][0][0], None) for k, v in {**boxes, **masks}.items()}
    for name, table in (("class_labels.txt", labels), ("image_sizes.txt", sizes), ("localization.txt", loc)):
        if ids and (name == "class_labels.txt" or table or getattr(table, "rejected", None)):
            _cross_check("image_ids.txt", ids, f[name], table, p)
    if boxes and not sizes and ids:
        p.append(f"{f['image_sizes.txt']}: {'empty' if f['image_sizes.txt'].is_file() else 'file not found'}, but "
                 "localization.txt has boxes: they need each image's size (id,W,H per image)")
    for key, (entries, _) in boxes.items():
        for line, box in entries:
            _check_box_xyxy(f"{f['localization.txt']}:{line}", box, tuple(sizes[key][1]) if key in sizes else None, p)
    for key, (entries, _) in masks.items():
        ignores = [(line, i) for line, _, i in entries if i]
        if len({i for _, i in ignores}) > 1:
            p.append(f"{f['localization.txt']}:{ignores[1][0]}: {key} has a second ignore mask {ignores[1][1]!r} "
                     f"(first: {ignores[0][1]!r} on line {ignores[0][0]}); one per image, on its first line")
    root = Path(image_root) if image_root is not None else _default_image_root(split_dir.parent, spec)
    if (root is None or not root.is_dir()) and require_images:
        where = f"image_root {root}" if image_root is not None else \
            "looked for images/<Dataset>, dataset/<Dataset> and images/ beside the metadata"
        p.append(f"{split_dir}: image root not found ({where}); pass the image root (--image-root / data.image_root)")
    root = root if root is not None else split_dir
    mroot = Path(mask_root) if mask_root is not None else _default_mask_root(root, masks)
    seg_root = _find_seg_root(root) if root is not None and root.is_dir() and not masks else None
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
    if (split_dir / MAPPING_FILE).is_file() and root.is_dir():
        samples = _translate_names(samples, root, split_dir / MAPPING_FILE, p)
    if check_images and sizes:
        _compare_sizes(root, {x.image_id: (ids[x.image_id][0], x.file or x.image_id) for x in samples}, sizes,
                       f["image_ids.txt"], p)
    names = _class_names(split_dir, spec, samples, n_cls, p)
    threshold = spec.mask_threshold if spec is not None else (1 if masks else MASK_THRESHOLD)
    return WSOLSplit(split, root, samples, names, "wsoleval", "custom" if spec is None else spec.name,
                     threshold), p


def _translate_names(samples: list[Sample], root: Path, mapping_file: Path, problems: list[str]) -> list[Sample]:
    """ImageNetV2 (wsolevaluation issue #42): the current tarball names its images ``<k>/<sha1>.jpeg``
    where the metadata says ``val2/<k>/<n>.jpeg``. Where an id's file is missing and ``mapping.txt``
    (wsolevaluation PR 53: ``<k>/<n>.jpeg, <k>/<sha1>.jpeg`` per line) names it, the sample reads the
    hashed file and keeps its id (the score-map name). REFERENCE §12.1.6."""
    mapping = {}
    with open(mapping_file, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = [x.strip() for x in line.split(",")]
            if len(parts) != 2 or not all(parts):
                problems.append(f"{mapping_file}:{lineno}: expected 'old_name, new_name', got {line.strip()!r}")
                continue
            mapping[parts[0]] = parts[1]
    out = []
    for s in samples:
        if not (root / s.image_id).is_file():
            head, _, rest = s.image_id.partition("/")
            new = mapping.get(s.image_id) or (f"{head}/{mapping[rest]}" if rest in mapping else None)
            if new is not None:
                s = dataclasses.replace(s, file=new)
        out.append(s)
    return out


def _nonempty(path: Path) -> bool:
    """Whether `path` exists with something other than whitespace in it."""
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return bool(fh.read(4096).strip()) or path.stat().st_size > 4096


def _parse_localization(path: Path, problems: list[str], optional: bool = False):
    """Boxes {id: ([(line, box)], None)} and masks {id: ([(line, mask, ignore)], None)}.
    An empty file has neither (labels-only splits); an absent one is a problem unless `optional`."""
    boxes: dict = {}
    masks: dict = {}
    if not path.is_file():
        if not optional:
            problems.append(f"{path}: file not found (expected id,x0,y0,x1,y1 or id,mask_path,ignore_path; "
                            "an empty file for a split without localization)")
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
    size = tuple(sizes[key][1]) if key in sizes else None
    box_list = tuple(b for _, b in boxes[key][0]) if key in boxes else ()
    mask_paths: tuple[str, ...] = ()
    ignore = None
    if key in masks:
        mask_paths = tuple(str(mask_root / m) for _, m, _ in masks[key][0])
        ign = [i for _, _, i in masks[key][0] if i]
        ignore = str(mask_root / ign[0]) if ign else None
    elif seg_root is not None:
        mpath = seg_root / Path(key).with_suffix(".png")
        if mpath.is_file():
            mask_paths = (str(mpath),)
    return Sample(key, labels[key][1][0], size, box_list, mask_paths, ignore)



def _compare_sizes(root: Path, files: dict, sizes: dict, listing: Path, problems: list[str]) -> None:
    """files: {id: (line in image_ids.txt, file relative to root)}."""
    found, failures = _read_sizes(root, files, listing)
    problems.extend(msg for _, msg in failures)
    for key, size in found.items():
        if tuple(size) != tuple(sizes[key][1]):
            problems.append(f"{listing.parent / 'image_sizes.txt'}:{sizes[key][0]}: {key} is {size[0]}x{size[1]} "
                            f"on disk, not {sizes[key][1][0]}x{sizes[key][1][1]}")
