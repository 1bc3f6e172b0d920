"""CUB-200-2011 reader: the official layout and the wsolevaluation metadata layout.

The torch dataset over a parsed split is in :mod:`wsol.data.dataset`.

Official layout (``CUB_200_2011/``, space separated, 1-based ids)::

    images.txt              <id> <NNN.Class/File.jpg>
    image_class_labels.txt  <id> <class 1..C>
    classes.txt             <class> <NNN.Class>
    train_test_split.txt    <id> <1 train | 0 test>
    bounding_boxes.txt      <id> <x> <y> <w> <h>
    images/                 the photos
    segmentations/          optional soft masks NNN.Class/<stem>.png (also looked for beside the root)

wsolevaluation layout (``metadata/CUB/{train,val,test}/``, comma separated, id = image path
relative to the image root)::

    image_ids.txt     <id>
    class_labels.txt  <id>,<label 0..C-1>
    image_sizes.txt   <id>,<W>,<H>
    localization.txt  <id>,<x0>,<y0>,<x1>,<y1>   (one line per box)
                      or <id>,<mask_path>,<ignore_path>   (OpenImages-style masks)

Boxes are held in the wsolevaluation convention: ``x0, y0, x1, y1`` in original-image pixels,
with the official-to-metadata rule of REFERENCE.md §4.2: ``x1 = min(x + w, W - 1)``.
Every format problem is reported with its file and line; :class:`CubFormatError` carries
them all.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .images import ImageLoadError, image_size

__all__ = [
    "CubFormatError",
    "Sample",
    "CubSplit",
    "CubOfficial",
    "read_official",
    "official_split",
    "read_wsoleval",
    "load_split",
    "detect_layout",
    "convert_official_to_wsoleval",
    "OFFICIAL_FILES",
    "WSOLEVAL_FILES",
    "MASK_THRESHOLD",
]

log = logging.getLogger(__name__)

OFFICIAL_FILES = (
    "images.txt",
    "image_class_labels.txt",
    "classes.txt",
    "train_test_split.txt",
    "bounding_boxes.txt",
)
WSOLEVAL_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")
SPLITS = ("train", "val", "test")
MASK_THRESHOLD = 128  # CUB soft masks (annotator votes) are foreground at >= 128 (`default`)
MAX_PROBLEMS_IN_MESSAGE = 20

Box = tuple[float, float, float, float]


class CubFormatError(ValueError):
    """A dataset folder does not follow the expected layout.

    ``problems`` lists every problem found, each naming its file (and line when it has one).
    """

    def __init__(self, problems: list[str], context: str = "") -> None:
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:MAX_PROBLEMS_IN_MESSAGE])
        more = len(self.problems) - MAX_PROBLEMS_IN_MESSAGE
        tail = f"\n  ... and {more} more (run tools/check_dataset.py for all)" if more > 0 else ""
        head = f"{context}: " if context else ""
        super().__init__(f"{head}{len(self.problems)} problem(s):\n  {shown}{tail}")


@dataclass(frozen=True)
class Sample:
    """One image of a split.

    image_id: path relative to the image root (the wsolevaluation id).
    label: class index, 0-based.
    size: (W, H) of the stored image.
    boxes: ground-truth boxes (x0, y0, x1, y1), original pixels, wsolevaluation convention.
    mask_paths: absolute paths of the mask file(s) (CUB: one soft mask; OpenImages: instances).
    ignore_path: absolute path of an ignore mask (OpenImages-style), if any.
    """

    image_id: str
    label: int
    size: tuple[int, int]
    boxes: tuple[Box, ...]
    mask_paths: tuple[str, ...] = ()
    ignore_path: str | None = None


@dataclass
class CubSplit:
    """A list of samples plus where their files are."""

    name: str
    image_root: Path
    samples: list[Sample]
    class_names: list[str]
    layout: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_masks(self) -> bool:
        return bool(self.samples) and all(s.mask_paths for s in self.samples)

    def __len__(self) -> int:
        return len(self.samples)


# --------------------------------------------------------------------------- parsing


def _parse_number(text: str, kind: type, where: str, name: str, problems: list[str]):
    try:
        value = float(text) if kind is float else int(text)
    except ValueError:
        problems.append(f"{where}: field '{name}' is not {'a number' if kind is float else 'an integer'}: {text!r}")
        return None
    if kind is float and not np.isfinite(value):
        problems.append(f"{where}: field '{name}' is not finite: {text!r}")
        return None
    return value


def _read_table(
    path: Path, fields: tuple[str, ...], problems: list[str], sep: str | None = None
) -> list[tuple[int, list[str]]]:
    """Rows of a text table as (line number, fields); wrong field counts become problems.

    With ``sep=None`` (whitespace) the last field takes the rest of the line, so paths and
    class names with spaces survive.
    """
    if not path.is_file():
        problems.append(f"{path}: file not found (expected columns: {' '.join(fields)})")
        return []
    rows = []
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if sep is None:
                parts = line.split(None, len(fields) - 1) if fields[-1] in ("path", "name") else line.split()
            else:
                parts = [p.strip() for p in line.split(sep)]
            if len(parts) != len(fields):
                problems.append(
                    f"{path}:{lineno}: expected {len(fields)} fields ({' '.join(fields)}), "
                    f"got {len(parts)}: {line!r}"
                )
                continue
            rows.append((lineno, parts))
    return rows


class _Table(dict):
    """{key: (lineno, values)}; ``rejected`` holds keys whose row had a bad field."""

    rejected: set


def _keyed(
    path: Path, rows, kinds: tuple[type, ...], names: tuple[str, ...], problems: list[str], key_kind=int
) -> _Table:
    """{key: (lineno, values)} from rows whose first field is the key; duplicates are problems."""
    out = _Table()
    out.rejected = set()
    for lineno, parts in rows:
        where = f"{path}:{lineno}"
        key = _parse_number(parts[0], key_kind, where, names[0], problems) if key_kind is not str else parts[0]
        vals = [
            p if k is str else _parse_number(p, k, where, n, problems)
            for p, k, n in zip(parts[1:], kinds, names[1:])
        ]
        if key is None or any(v is None for v in vals):
            out.rejected.add(key)
            continue
        if key in out:
            problems.append(f"{where}: duplicate id {key} (first on line {out[key][0]})")
            continue
        out[key] = (lineno, vals)
    return out


def _cross_check(ref_name: str, ref: dict, other_path: Path, other: dict, problems: list[str]) -> None:
    """Ids present in one file and missing in the other (rows already reported as bad are skipped)."""
    known = set(other) | getattr(other, "rejected", set())
    for key in sorted(set(ref) - known, key=str)[:MAX_PROBLEMS_IN_MESSAGE * 5]:
        problems.append(f"{other_path}: id {key} (from {ref_name} line {ref[key][0]}) is missing")
    for key in sorted(set(other) - set(ref), key=str)[:MAX_PROBLEMS_IN_MESSAGE * 5]:
        problems.append(f"{other_path}:{other[key][0]}: id {key} is not in {ref_name}")


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


def xywh_to_wsoleval(box, size: tuple[int, int]) -> Box:
    """Official CUB box -> wsolevaluation box (REFERENCE.md §4.2, exact on all boxes)."""
    x, y, w, h = box
    W, H = size
    return (float(x), float(y), float(min(x + w, W - 1)), float(min(y + h, H - 1)))


# --------------------------------------------------------------------------- official layout


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


def _find_seg_root(root: Path) -> Path | None:
    for cand in (root / "segmentations", root.parent / "segmentations"):
        if cand.is_dir():
            return cand
    return None


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


def _read_sizes(image_root: Path, entries: dict, listing: Path) -> tuple[dict, list[tuple]]:
    """({key: (W, H)} from image headers, [(key, problem naming the listing line)] for failures)."""
    sizes, failures = {}, []
    for key, (lineno, rel) in entries.items():
        try:
            sizes[key] = image_size(image_root / rel)
        except ImageLoadError as err:
            failures.append((key, f"{listing}:{lineno}: {err}"))
    return sizes, failures


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


# --------------------------------------------------------------------------- wsolevaluation layout


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


# --------------------------------------------------------------------------- layout detection and conversion


def detect_layout(path: str | os.PathLike) -> tuple[str, Path]:
    """('official', root) or ('wsoleval', metadata_dir) for a dataset folder.

    Accepts the CUB root, a folder holding ``CUB_200_2011/``, a metadata folder with
    train/val/test subfolders, or a folder holding ``metadata/CUB``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: dataset folder not found")
    for cand in (path, path / "CUB_200_2011"):
        if (cand / "images.txt").is_file():
            return "official", cand
    for cand in (path, path / "metadata" / "CUB", path / "metadata", path / "CUB"):
        if any((cand / s / "image_ids.txt").is_file() for s in SPLITS):
            return "wsoleval", cand
    raise CubFormatError(
        [f"{path}: neither an official CUB folder (images.txt, ...) nor wsolevaluation metadata "
         "(train/val/test folders with image_ids.txt, ...)"]
    )


def load_split(
    path: str | os.PathLike,
    split: str,
    val_per_class: int = 0,
    image_root: str | os.PathLike | None = None,
    skip_bad_images: bool = False,
) -> CubSplit:
    """One split from either layout (see :func:`detect_layout`)."""
    layout, root = detect_layout(path)
    if layout == "official":
        return official_split(read_official(root, skip_bad_images), split, val_per_class)
    return read_wsoleval(root, split, image_root)


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines), encoding="utf-8")  # no trailing newline, as wsolevaluation


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def convert_official_to_wsoleval(
    root: str | os.PathLike, out_dir: str | os.PathLike, val_per_class: int = 0
) -> dict[str, int]:
    """Write wsolevaluation metadata (train/[val/]test) for an official CUB folder.

    Boxes follow REFERENCE.md §4.2: ``x1 = min(x + w, W - 1)``. Ids are image paths relative to
    ``root/images``. Returns the number of images per written split.
    """
    data = read_official(root)
    counts = {}
    for split in ("train", "val", "test") if val_per_class > 0 else ("train", "test"):
        s = official_split(data, split, val_per_class)
        d = Path(out_dir) / split
        d.mkdir(parents=True, exist_ok=True)
        _write_lines(d / "image_ids.txt", [x.image_id for x in s.samples])
        _write_lines(d / "class_labels.txt", [f"{x.image_id},{x.label}" for x in s.samples])
        _write_lines(d / "image_sizes.txt", [f"{x.image_id},{x.size[0]},{x.size[1]}" for x in s.samples])
        _write_lines(d / "localization.txt",
                     [f"{x.image_id}," + ",".join(_fmt(v) for v in b) for x in s.samples for b in x.boxes])
        counts[split] = len(s)
    return counts
