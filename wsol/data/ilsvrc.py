"""ImageNet-1k (ILSVRC 2012) for WSOL: the converter from the official ImageNet layout to
wsolevaluation's ILSVRC metadata (REFERENCE.md §12.1); the class table is wsol.data.imagenet_classes
(re-exported here).

Inputs (each split is written when its inputs are given)::

    train_dir            <wnid>/<file>.JPEG                               -> train (labels only)
    val_dir              ILSVRC2012_val_XXXXXXXX.JPEG, flat               -> test (official boxes)
    val_xml_dir          ILSVRC2012_val_XXXXXXXX.xml, PASCAL VOC (ILSVRC2012_bbox_val_v3.tgz):
                         <size><width/><height/></size>, then per box
                         <object><name>wnid</name><bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object>
      or val_solution_csv LOC_val_solution.csv (Kaggle): header ``ImageId,PredictionString``, rows
                         ``<ImageId>,<wnid> x0 y0 x1 y1 [<wnid> x0 y0 x1 y1 ...]``
    synset_mapping       LOC_synset_mapping.txt (Kaggle), line i ``<wnid> <names>``: checked to
                         list the class table below in its order
    imagenetv2_dir       <k>/<n>.jpeg or <k>/<sha1>.jpeg, k = 0..999 (ImageNetV2 threshold0.7) -> val
    imagenetv2_boxes     ImageNetV2_boxes.txt: header ``image_id,x0,y0,x1,y1``, ids ``k/n.jpeg``
    imagenetv2_mapping   mapping.txt, lines ``k/n.jpeg, k/<sha1>.jpeg`` (old, new; comma + space)

Output ``out_dir/{train,val,test}/`` (comma separated, no header, no spaces, no trailing
newline; ids are relative to the image root ``dataset/ILSVRC``, whatever the input folders are
called)::

    image_ids.txt      train/<wnid>/<file>.JPEG | val2/<k>/<file>.jpeg | val/ILSVRC2012_val_XXXXXXXX.JPEG
    class_labels.txt   <id>,<label>        label = index of the WNID in sorted-WNID order (§12.1.4);
                                           ImageNetV2 folder k has label k
    image_sizes.txt    <id>,<W>,<H>        the image's own size, from its header; empty for train
    localization.txt   <id>,<x0>,<y0>,<x1>,<y1>   one line per box, in the annotation's order, with
                                           x1 = min(x1, W - 1), y1 = min(y1, H - 1); empty for train

All 50,000 official validation images are kept (no blacklist). Every problem found (missing or
unreadable file, malformed XML, bad CSV/text row, unknown WNID, box outside its image, image
without boxes) is collected, each naming its file and line, and raised as one
:class:`IlsvrcFormatError`; nothing is written then.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from xml.parsers import expat

from tqdm import tqdm

from .errors import DataFormatError
from .images import ImageLoadError, image_size
from .imagenet_classes import NUM_CLASSES, ilsvrc_class_names, ilsvrc_wnids, wnid_to_index

__all__ = [
    "IlsvrcFormatError",
    "ilsvrc_wnids",
    "ilsvrc_class_names",
    "wnid_to_index",
    "convert_imagenet_to_wsoleval",
    "NUM_CLASSES",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
MAX_PROBLEMS_KEPT = 10_000
_INT = re.compile(r"[+-]?\d+\Z")
_V2_BOXES_HEADER = "image_id,x0,y0,x1,y1"
_SOLUTION_HEADER = "ImageId,PredictionString"

Box = tuple[int, int, int, int]


class IlsvrcFormatError(DataFormatError):
    """ImageNet input files do not follow the official layout.

    ``problems`` lists every problem found, each naming its file (and line when it has one).
    """


# --------------------------------------------------------------------------- shared pieces


class _Problems:
    """Problems found so far: keeps the first ``MAX_PROBLEMS_KEPT`` and counts the rest."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.dropped = 0

    def add(self, message: str) -> None:
        if len(self.kept) < MAX_PROBLEMS_KEPT:
            self.kept.append(message)
        else:
            self.dropped += 1

    def __len__(self) -> int:
        return len(self.kept) + self.dropped

    def extend(self, other: "_Problems") -> None:
        for message in other.kept:
            self.add(message)
        self.dropped += other.dropped

    def as_list(self) -> list[str]:
        tail = [f"(and {self.dropped} more problem(s), not kept)"] if self.dropped else []
        return self.kept + tail


class _Lines:
    """A text file written line by line without a trailing newline, as wsolevaluation ships them."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "w", encoding="utf-8", newline="\n")
        self.count = 0

    def write(self, line: str) -> None:
        self.fh.write(f"\n{line}" if self.count else line)
        self.count += 1


class _SplitWriter:
    """The four metadata files of one split, written as images come (nothing held in memory)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.files = {name: _Lines(folder / f"{name}.txt")
                      for name in ("image_ids", "class_labels", "image_sizes", "localization")}
        self.classes: set[int] = set()

    def add(self, image_id: str, label: int, size: tuple[int, int] | None = None, boxes: list[Box] = ()) -> None:
        self.files["image_ids"].write(image_id)
        self.files["class_labels"].write(f"{image_id},{label}")
        if size is not None:
            self.files["image_sizes"].write(f"{image_id},{size[0]},{size[1]}")
        for box in boxes:
            self.files["localization"].write(f"{image_id}," + ",".join(str(v) for v in box))
        self.classes.add(label)

    def counts(self) -> dict[str, int]:
        return {"images": self.files["image_ids"].count, "boxes": self.files["localization"].count,
                "classes": len(self.classes)}

    def __enter__(self) -> "_SplitWriter":
        return self

    def __exit__(self, *exc) -> None:
        for f in self.files.values():
            f.fh.close()


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _list_images(folder: Path, problems: _Problems, skipped: list[str], hint: str = "") -> list[str]:
    """Sorted image file names directly in ``folder``; subfolders are problems (one, with ``hint``),
    other files are added to ``skipped``."""
    names, subdirs = [], []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                subdirs.append(entry.name)
            elif _is_image_name(entry.name):
                names.append(entry.name)
            else:
                skipped.append(str(folder / entry.name))
    if subdirs:
        problems.add(f"{folder / sorted(subdirs)[0]}: unexpected folder ({len(subdirs)} in {folder}); "
                     f"images must sit directly in it{hint}")
    return sorted(names)


def _warn_skipped(skipped: list[str], what: str) -> None:
    if skipped:
        log.warning("%s: skipped %d file(s) that are not images (%s), e.g. %s",
                    what, len(skipped), "/".join(IMAGE_EXTENSIONS), skipped[0])


def _parse_int(text: str, where: str, name: str, problems: _Problems) -> int | None:
    if text is None or not _INT.match(text.strip()):
        problems.add(f"{where}: {name} is not an integer: {text!r}")
        return None
    return int(text)


def _clip_box(where: str, box: Box, size: tuple[int, int], problems: _Problems) -> Box | None:
    """wsolevaluation's box for an image of ``size`` = (W, H): ``x1 = min(x1, W - 1)``,
    ``y1 = min(y1, H - 1)`` (REFERENCE.md §12.1.5-6); a far corner may lie at most on W / H."""
    x0, y0, x1, y1 = box
    W, H = size
    if x1 < x0 or y1 < y0:
        problems.add(f"{where}: box ({x0},{y0},{x1},{y1}) has x1 < x0 or y1 < y0")
        return None
    if x0 < 0 or y0 < 0 or x0 >= W or y0 >= H or x1 > W or y1 > H:
        problems.add(f"{where}: box ({x0},{y0},{x1},{y1}) lies outside the {W}x{H} image")
        return None
    return x0, y0, min(x1, W - 1), min(y1, H - 1)


def _map(fn, items, pool: ThreadPoolExecutor | None):
    """``map`` in order, on the thread pool when there is one (image headers and XMLs are I/O bound)."""
    return pool.map(fn, items) if pool is not None else map(fn, items)


def _header_size(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    try:
        return image_size(path), None
    except ImageLoadError as err:
        return None, str(err)


def _read_size(path: Path, problems: _Problems, where: str = "") -> tuple[int, int] | None:
    try:
        return image_size(path)
    except ImageLoadError as err:
        problems.add(f"{where}: {err}" if where else str(err))
        return None


# --------------------------------------------------------------------------- train


def _write_train(train_dir: Path, folder: Path, problems: _Problems, check_images: bool,
                 progress: bool, pool: ThreadPoolExecutor | None) -> dict[str, int]:
    """``train/<wnid>/<file>`` ids and labels; image_sizes.txt and localization.txt stay empty."""
    index = wnid_to_index()
    if train_dir.name != "train":
        log.info("%s: ids start with train/; the image root must hold this folder as train/", train_dir)
    classes, skipped = [], []  # files beside the class folders (e.g. leftover per-class tars) are skipped
    with os.scandir(train_dir) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                classes.append(entry.name)
            else:
                skipped.append(entry.path)
    if not classes:
        problems.add(f"{train_dir}: no class folders (expected <wnid>/<file>.JPEG)")
    with _SplitWriter(folder) as out:
        for wnid in tqdm(sorted(classes), desc="ILSVRC train", unit="class", disable=not progress):
            label = index.get(wnid)
            if label is None:
                problems.add(f"{train_dir / wnid}: folder name is not one of the 1000 ImageNet-1k WNIDs")
                continue
            names = _list_images(train_dir / wnid, problems, skipped)
            if not names:
                problems.add(f"{train_dir / wnid}: class folder holds no images")
            checked = _map(_header_size, [train_dir / wnid / n for n in names], pool) if check_images else ()
            for name, (_, error) in itertools.zip_longest(names, checked, fillvalue=(None, None)):
                if error is not None:
                    problems.add(error)
                    continue
                out.add(f"train/{wnid}/{name}", label)
        counts = out.counts()
    _warn_skipped(skipped, f"{train_dir}")
    if counts["classes"] and counts["classes"] != NUM_CLASSES:
        log.warning("%s: %d of %d classes have a folder", train_dir, counts["classes"], NUM_CLASSES)
    return counts


# --------------------------------------------------------------------------- test (official val)


@dataclass
class _Annotation:
    """The boxes of one official validation image, from an XML file or a CSV row."""

    where: str  # file[:line] naming the whole annotation
    size: tuple[int, int] | None = None  # the XML <size>
    size_where: str = ""
    objects: list[tuple[str, str, str, Box]] = field(default_factory=list)  # (name's where, wnid, box's where, box)


_VOC_BOX = ("xmin", "ymin", "xmax", "ymax")


class _VocHandler:
    """expat callbacks collecting <size> and <object>s of a PASCAL VOC file, with line numbers."""

    def __init__(self, parser) -> None:
        self.parser = parser
        self.stack: list[tuple[str, int]] = []
        self.text: list[str] = []
        self.values: dict[str, tuple[str, int]] = {}
        self.objects: list[dict] = []
        self.bad_root: tuple[str, int] | None = None

    def start(self, name: str, attrs) -> None:
        if not self.stack and name != "annotation":
            self.bad_root = (name, self.parser.CurrentLineNumber)
        self.stack.append((name, self.parser.CurrentLineNumber))
        self.text = []
        if self._path() == "annotation/object":
            self.objects.append({"line": self.parser.CurrentLineNumber})

    def end(self, name: str) -> None:
        path, line = self._path(), self.stack[-1][1]
        value = "".join(self.text).strip()
        if path in ("annotation/size/width", "annotation/size/height"):
            self.values[name] = (value, line)
        elif path == "annotation/object/name" or (path.startswith("annotation/object/bndbox/") and name in _VOC_BOX):
            self.objects[-1][name] = (value, line)
        self.stack.pop()
        self.text = []

    def chars(self, data: str) -> None:
        self.text.append(data)

    def _path(self) -> str:
        return "/".join(n for n, _ in self.stack)


def _voc_size(path: Path, values: dict[str, tuple[str, int]], ann: _Annotation, problems: _Problems) -> None:
    lacking = [k for k in ("width", "height") if k not in values]
    if lacking:
        line = next(iter(values.values()))[1]
        problems.add(f"{path}:{line}: <size> lacks <{lacking[0]}>")
        return
    (w, wl), (h, hl) = values["width"], values["height"]
    W, H = _parse_int(w, f"{path}:{wl}", "<width>", problems), _parse_int(h, f"{path}:{hl}", "<height>", problems)
    if W is not None and H is not None:
        if W <= 0 or H <= 0:
            problems.add(f"{path}:{wl}: <size> {W}x{H} is not a positive size")
        ann.size, ann.size_where = (W, H), f"{path}:{wl}"


def _parse_voc_xml(path: Path, problems: _Problems) -> _Annotation | None:
    """The size and boxes of one official val XML; None (problems added) when it is unusable."""
    parser = expat.ParserCreate()
    h = _VocHandler(parser)
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = h.start, h.end, h.chars
    try:
        with open(path, "rb") as fh:
            parser.ParseFile(fh)
    except expat.ExpatError as err:
        problems.add(f"{path}:{err.lineno}: malformed XML ({expat.ErrorString(err.code)}, column {err.offset + 1})")
        return None
    except OSError as err:
        problems.add(f"{path}: cannot read ({err.strerror or err})")
        return None
    if h.bad_root is not None:
        problems.add(f"{path}:{h.bad_root[1]}: root element <{h.bad_root[0]}>, expected PASCAL VOC <annotation>")
        return None
    n_before = len(problems)
    ann = _Annotation(where=str(path))
    if "width" in h.values or "height" in h.values:
        _voc_size(path, h.values, ann, problems)
    if not h.objects:
        problems.add(f"{path}: no <object> (an image without boxes)")
    for obj in h.objects:
        where = f"{path}:{obj['line']}"
        missing = [f"<{k}>" for k in ("name",) + _VOC_BOX if k not in obj]
        if missing:
            problems.add(f"{where}: <object> lacks {', '.join(missing)}")
            continue
        coords = [_parse_int(obj[k][0], f"{path}:{obj[k][1]}", f"<{k}>", problems) for k in _VOC_BOX]
        if None not in coords:
            ann.objects.append((f"{path}:{obj['name'][1]}", obj["name"][0], f"{path}:{obj['xmin'][1]}",
                                tuple(coords)))
    return ann if len(problems) == n_before else None


def _read_solution_csv(path: Path, problems: _Problems) -> tuple[dict[str, _Annotation], dict[str, int]]:
    """({ImageId: annotation} of the good rows, {ImageId: line} of every row) from Kaggle's
    LOC_val_solution.csv (rows in any order)."""
    out: dict[str, _Annotation] = {}
    lines: dict[str, int] = {}
    if path.stat().st_size == 0:
        problems.add(f"{path}: empty file (expected the header {_SOLUTION_HEADER!r}, then one row per image)")
        return out, lines
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            where = f"{path}:{lineno}"
            if lineno == 1:
                if line.strip() != _SOLUTION_HEADER:
                    problems.add(f"{where}: expected the header {_SOLUTION_HEADER!r}, got {line!r}")
                continue
            if not line.strip():
                continue
            parts = line.split(",")
            stem = parts[0].strip()
            if stem in lines:
                problems.add(f"{where}: duplicate ImageId {stem} (first on line {lines[stem]})")
                continue
            if stem:
                lines[stem] = lineno  # a bad row still names its image: no "image without a row" too
            if len(parts) != 2 or not stem:
                problems.add(f"{where}: expected 2 fields ({_SOLUTION_HEADER}), got {line!r}")
                continue
            ann = _parse_prediction(where, parts[1].split(), problems)
            if ann is not None:
                out[stem] = ann
    if not lines:
        problems.add(f"{path}: no rows after the header")
    return out, lines


def _parse_prediction(where: str, tokens: list[str], problems: _Problems) -> _Annotation | None:
    if not tokens:
        problems.add(f"{where}: empty PredictionString (an image without boxes)")
        return None
    if len(tokens) % 5:
        problems.add(f"{where}: PredictionString has {len(tokens)} tokens; expected groups of 5 "
                     "(<wnid> x_min y_min x_max y_max)")
        return None
    ann, ok = _Annotation(where=where), True
    for g in range(0, len(tokens), 5):
        bwhere = f"{where}: box {g // 5 + 1}"
        coords = [_parse_int(t, bwhere, name, problems)
                  for t, name in zip(tokens[g + 1:g + 5], ("x_min", "y_min", "x_max", "y_max"))]
        ok = ok and None not in coords
        ann.objects.append((bwhere, tokens[g], bwhere, tuple(coords)))
    return ann if ok else None


def _list_val_images(val_dir: Path, problems: _Problems, skipped: list[str]) -> dict[str, str]:
    """{stem: file name} of the flat official validation folder."""
    names = _list_images(val_dir, problems, skipped,
                         " (wsolevaluation's test ids are val/<file>.JPEG: undo any per-class sorting)")
    by_stem: dict[str, str] = {}
    for name in names:
        stem = os.path.splitext(name)[0]
        if stem in by_stem:
            problems.add(f"{val_dir / name}: two images named {stem} ({by_stem[stem]} too)")
            continue
        by_stem[stem] = name
    return by_stem


def _write_test(val_dir: Path, xml_dir: Path | None, csv_path: Path | None, folder: Path,
                problems: _Problems, check_images: bool, progress: bool,
                pool: ThreadPoolExecutor | None) -> dict[str, int]:
    """``val/<file>`` ids with the official boxes (one line each, clipped to the image)."""
    skipped: list[str] = []
    images = _list_val_images(val_dir, problems, skipped)
    _warn_skipped(skipped, f"{val_dir}")
    if not images:
        problems.add(f"{val_dir}: no images (expected ILSVRC2012_val_XXXXXXXX.JPEG)")
    if xml_dir is not None:
        xml_stems = {os.path.splitext(n)[0] for n in os.listdir(xml_dir) if n.lower().endswith(".xml")}
        for stem in sorted(xml_stems - set(images)):
            problems.add(f"{xml_dir / (stem + '.xml')}: no image {stem}.JPEG in {val_dir}")
    else:
        csv_rows, csv_lines = _read_solution_csv(csv_path, problems)
        for stem in sorted(set(csv_lines) - set(images)):
            problems.add(f"{csv_path}:{csv_lines[stem]}: image {stem}.JPEG not found in {val_dir}")
    index = wnid_to_index()

    def one(stem: str) -> tuple[tuple | None, _Problems]:  # runs in the worker threads
        local = _Problems()
        if xml_dir is not None:
            if stem not in xml_stems:
                local.add(f"{xml_dir / (stem + '.xml')}: annotation not found (for {val_dir / images[stem]})")
                return None, local
            ann = _parse_voc_xml(xml_dir / f"{stem}.xml", local)
        else:
            ann = csv_rows.get(stem)
            if stem not in csv_lines and csv_lines:  # (a file without rows is one problem)
                local.add(f"{val_dir / images[stem]}: no row in {csv_path} (an image without boxes)")
        return (_test_record(val_dir / images[stem], ann, index, local, check_images) if ann else None), local

    with _SplitWriter(folder) as out:
        stems = sorted(images)
        for record, local in tqdm(_map(one, stems, pool), total=len(stems), desc="ILSVRC test", unit="image",
                                  disable=not progress):
            problems.extend(local)
            if record is not None:
                out.add(*record)
        return out.counts()


def _test_record(image: Path, ann: _Annotation, index: Mapping[str, int], problems: _Problems,
                 check_images: bool) -> tuple[str, int, tuple[int, int], list[Box]] | None:
    """(id, label, (W, H), clipped boxes) of one official validation image, or None (problems added)."""
    size = ann.size
    if check_images or size is None:
        size = _read_size(image, problems)
        if size is None:
            return None
        if ann.size is not None and ann.size != size:
            problems.add(f"{ann.size_where}: <size> {ann.size[0]}x{ann.size[1]} differs from the image's own "
                         f"{size[0]}x{size[1]} ({image})")
            return None
    labels = set()
    boxes = []
    for name_where, wnid, box_where, box in ann.objects:
        if wnid not in index:
            problems.add(f"{name_where}: {wnid!r} is not one of the 1000 ImageNet-1k WNIDs")
            continue
        labels.add(index[wnid])
        boxes.append(_clip_box(box_where, box, size, problems))
    if len(labels) > 1:
        problems.add(f"{ann.where}: boxes of several classes in one image "
                     f"({', '.join(ilsvrc_wnids()[k] for k in sorted(labels))})")
    if len(labels) == 1 and None not in boxes and len(boxes) == len(ann.objects):
        return f"val/{image.name}", labels.pop(), size, boxes
    return None


# --------------------------------------------------------------------------- val (ImageNetV2)


def _read_v2_boxes(path: Path, problems: _Problems) -> tuple[list[tuple[int, str, Box]], set[str]]:
    """([(line, id, box)] of the good rows, {id} of every row) of ImageNetV2_boxes.txt; a leading
    ``val2/`` of an id is dropped."""
    rows, named = [], set()
    if path.stat().st_size == 0:
        problems.add(f"{path}: empty file (expected the header {_V2_BOXES_HEADER!r}, then one row per box)")
        return rows, named
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            where = f"{path}:{lineno}"
            if lineno == 1:
                if line.replace(" ", "") != _V2_BOXES_HEADER:
                    problems.add(f"{where}: expected the header {_V2_BOXES_HEADER!r}, got {line!r}")
                continue
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            named.add(parts[0].removeprefix("val2/"))  # a bad row still names its image
            if len(parts) != 5 or not parts[0]:
                problems.add(f"{where}: expected 5 fields ({_V2_BOXES_HEADER}), got {line!r}")
                continue
            coords = [_parse_int(t, where, n, problems) for t, n in zip(parts[1:], ("x0", "y0", "x1", "y1"))]
            if None not in coords:
                rows.append((lineno, parts[0].removeprefix("val2/"), tuple(coords)))
    if not named:
        problems.add(f"{path}: no rows after the header")
    return rows, named


def _split_v2_id(rel: str) -> tuple[str, str] | None:
    folder, sep, name = rel.partition("/")
    return (folder, name) if sep and folder and name and "/" not in name else None


def _read_v2_mapping(path: Path, problems: _Problems) -> dict[str, str]:
    """{old id k/n.jpeg: new id k/<sha1>.jpeg} from wsolevaluation PR 53's mapping.txt."""
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    targets: dict[str, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            parts = [p.strip() for p in line.split(",")]
            old_new = [_split_v2_id(p) for p in parts] if len(parts) == 2 else [None]
            if None in old_new:
                problems.add(f"{where}: expected 'k/n.jpeg, k/<new name>.jpeg', got {line!r}")
            elif old_new[0][0] != old_new[1][0]:
                problems.add(f"{where}: {parts[0]} and {parts[1]} are in different class folders")
            elif parts[0] in first:
                problems.add(f"{where}: duplicate id {parts[0]} (first on line {first[parts[0]]})")
            elif parts[1] in targets:
                problems.add(f"{where}: {parts[1]} is already the new name on line {targets[parts[1]]}")
            else:
                first[parts[0]], targets[parts[1]] = lineno, lineno
                out[parts[0]] = parts[1]
    return out


def _list_v2_images(v2_dir: Path, problems: _Problems, skipped: list[str]) -> set[str]:
    """``k/<file>`` of every image in the ImageNetV2 class folders."""
    found = set()
    with os.scandir(v2_dir) as it:
        folders = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    for k in folders:
        found.update(f"{k}/{n}" for n in _list_images(v2_dir / k, problems, skipped))
    return found


def _v2_label(folder: str) -> int | None:
    return int(folder) if folder.isdigit() and int(folder) < NUM_CLASSES else None


def _resolve_v2(rel: str, files: set[str], mapping: dict[str, str], where: str, v2_dir: Path,
                mapping_path: Path | None, problems: _Problems) -> str | None:
    """The id on disk for a boxes-file id: itself when present, else its mapping.txt name."""
    if _split_v2_id(rel) is None or _v2_label(rel.split("/")[0]) is None:
        problems.add(f"{where}: image id {rel!r} is not k/<file> with a class folder k in 0..{NUM_CLASSES - 1}")
        return None
    if rel in files:
        return rel
    if rel in mapping:
        if mapping[rel] in files:
            return mapping[rel]
        problems.add(f"{where}: image not found: {v2_dir / rel}, nor its new name {v2_dir / mapping[rel]} "
                     f"(from {mapping_path})")
        return None
    hint = f"; {rel} is not in {mapping_path}" if mapping_path else \
        "; for the hashed file names of the current tarball pass mapping.txt (--imagenetv2-mapping)"
    problems.add(f"{where}: image not found: {v2_dir / rel}{hint}")
    return None


def _write_val(v2_dir: Path, boxes_path: Path, mapping_path: Path | None, folder: Path, problems: _Problems,
               progress: bool, pool: ThreadPoolExecutor | None) -> dict[str, int]:
    """``val2/<k>/<file>`` ids (label k) with the released ImageNetV2 boxes, clipped to the image."""
    skipped: list[str] = []
    files = _list_v2_images(v2_dir, problems, skipped)
    _warn_skipped(skipped, f"{v2_dir}")
    mapping = _read_v2_mapping(mapping_path, problems) if mapping_path is not None else {}
    rows, named = _read_v2_boxes(boxes_path, problems)
    images: dict[str, tuple[str | None, list]] = {}  # boxes-file id -> (id on disk, [(where, box)]), file order
    for lineno, rel, box in rows:
        where = f"{boxes_path}:{lineno}"
        if rel not in images:
            images[rel] = (_resolve_v2(rel, files, mapping, where, v2_dir, mapping_path, problems), [])
        images[rel][1].append((where, box))
    used: dict[str, str] = {}
    for rel, (disk, _) in images.items():
        if disk is not None and disk in used:
            problems.add(f"{images[rel][1][0][0]}: {rel} and {used[disk]} name the same image {v2_dir / disk}")
        elif disk is not None:
            used[disk] = rel
    named |= {mapping[rel] for rel in named if rel in mapping}  # used, or its row is already a problem
    for disk in sorted(files - named) if named else ():  # (a file without rows is one problem)
        problems.add(f"{v2_dir / disk}: image without boxes (not in {boxes_path})")
    todo = [(disk, boxes) for disk, boxes in images.values() if disk is not None]
    sizes = _map(_header_size, [v2_dir / disk for disk, _ in todo], pool)
    with _SplitWriter(folder) as out:
        for (disk, boxes), (size, error) in tqdm(zip(todo, sizes), total=len(todo), desc="ImageNetV2 val",
                                                 unit="image", disable=not progress):
            if error is not None:
                problems.add(f"{boxes[0][0]}: {error}")
                continue
            clipped = [_clip_box(where, box, size, problems) for where, box in boxes]
            if None not in clipped:
                out.add(f"val2/{disk}", _v2_label(disk.split("/")[0]), size, clipped)
        return out.counts()


# --------------------------------------------------------------------------- synset mapping


def _check_synset_mapping(path: Path, problems: _Problems) -> None:
    """LOC_synset_mapping.txt must list the class table's WNIDs in its order (line i = class i)."""
    wnids = ilsvrc_wnids()
    n = 0
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            wnid = line.split(None, 1)[0]
            if n < NUM_CLASSES and wnid != wnids[n]:
                problems.add(f"{path}:{lineno}: class {n} is {wnid}, expected {wnids[n]} (sorted-WNID order)")
            n += 1
    if n != NUM_CLASSES:
        problems.add(f"{path}: {n} classes, expected {NUM_CLASSES}")


# --------------------------------------------------------------------------- the converter


def _check_inputs(paths: dict[str, Path | None], kinds: dict[str, str], problems: _Problems) -> None:
    for name, path in paths.items():
        if path is None:
            continue
        if kinds[name] == "dir" and not path.is_dir():
            problems.add(f"{path}: {name} folder not found")
        elif kinds[name] == "file" and not path.is_file():
            problems.add(f"{path}: {name} file not found")


def _splits_requested(train_dir, val_dir, val_xml_dir, val_solution_csv, imagenetv2_dir, imagenetv2_boxes,
                      imagenetv2_mapping) -> list[str]:
    """The splits to write; ValueError for an incomplete or contradictory set of inputs."""
    if (val_xml_dir is not None or val_solution_csv is not None) and val_dir is None:
        raise ValueError("val_xml_dir / val_solution_csv need val_dir (the official validation images)")
    if val_dir is not None and (val_xml_dir is None) == (val_solution_csv is None):
        raise ValueError("val_dir needs exactly one of val_xml_dir (the bounding-box XMLs) or val_solution_csv "
                         "(LOC_val_solution.csv)")
    if (imagenetv2_dir is None) != (imagenetv2_boxes is None):
        raise ValueError("imagenetv2_dir and imagenetv2_boxes (ImageNetV2_boxes.txt) go together")
    if imagenetv2_mapping is not None and imagenetv2_dir is None:
        raise ValueError("imagenetv2_mapping needs imagenetv2_dir and imagenetv2_boxes")
    splits = [s for s, given in (("train", train_dir), ("val", imagenetv2_dir), ("test", val_dir))
              if given is not None]
    if not splits:
        raise ValueError("nothing to convert: pass train_dir, val_dir (+ boxes) and/or imagenetv2_dir (+ boxes)")
    return splits


def convert_imagenet_to_wsoleval(
    out_dir: str | os.PathLike,
    *,
    train_dir: str | os.PathLike | None = None,
    val_dir: str | os.PathLike | None = None,
    val_xml_dir: str | os.PathLike | None = None,
    val_solution_csv: str | os.PathLike | None = None,
    synset_mapping: str | os.PathLike | None = None,
    imagenetv2_dir: str | os.PathLike | None = None,
    imagenetv2_boxes: str | os.PathLike | None = None,
    imagenetv2_mapping: str | os.PathLike | None = None,
    check_images: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 8,
) -> dict[str, dict[str, int]]:
    """Write wsolevaluation's ILSVRC metadata (``out_dir/{train,val,test}/``) from the official
    ImageNet layout; the module docstring gives every input and output format.

    Writes ``train`` when ``train_dir`` is given, ``test`` for ``val_dir`` plus one of
    ``val_xml_dir`` / ``val_solution_csv``, and ``val`` for ``imagenetv2_dir`` plus
    ``imagenetv2_boxes`` (and ``imagenetv2_mapping`` when the images have the hashed names).
    Other splits already in ``out_dir`` are left alone.

    Args:
        check_images: open every image header: train images are checked to be readable, test
            sizes are compared with the XML ``<size>``. Without it, train images are not opened
            and test sizes come from the XML; ImageNetV2 and CSV-annotated test images are
            always opened, since their size is not written anywhere else.
        overwrite: replace splits that already exist in ``out_dir``.
        progress: show tqdm progress bars.
        workers: threads reading image headers and XMLs (I/O bound: helps most on network disks);
            1 reads them in this thread. The output does not depend on it.
    Returns:
        {split: {"images": n, "boxes": n, "classes": n}} for the splits written.
    Raises:
        ValueError: an incomplete set of inputs (e.g. val_dir without boxes).
        FileExistsError: a split to write exists and ``overwrite`` is False.
        IlsvrcFormatError: every problem found in the inputs; nothing is written then.
    """
    splits = _splits_requested(train_dir, val_dir, val_xml_dir, val_solution_csv, imagenetv2_dir,
                               imagenetv2_boxes, imagenetv2_mapping)
    p = {name: Path(v) if v is not None else None for name, v in dict(
        train_dir=train_dir, val_dir=val_dir, val_xml_dir=val_xml_dir, val_solution_csv=val_solution_csv,
        synset_mapping=synset_mapping, imagenetv2_dir=imagenetv2_dir, imagenetv2_boxes=imagenetv2_boxes,
        imagenetv2_mapping=imagenetv2_mapping).items()}
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    existing = [str(out / s) for s in splits if (out / s).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)}: already exist(s); pass overwrite=True (--overwrite) "
                              "to replace")
    problems = _Problems()
    _check_inputs(p, {k: "dir" if k.endswith("_dir") else "file" for k in p}, problems)
    if problems:
        raise IlsvrcFormatError(problems.as_list(), "ImageNet conversion")
    base = out.parent  # the temp folder goes into the nearest existing folder: nothing is created on error
    while not base.is_dir():
        base = base.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=base))
    try:
        with ThreadPoolExecutor(max_workers=workers) if workers > 1 else contextlib.nullcontext() as pool:
            counts = _convert_into(tmp, splits, p, problems, check_images, progress, pool)
        if problems:
            raise IlsvrcFormatError(problems.as_list(), "ImageNet conversion")
        out.mkdir(parents=True, exist_ok=True)
        for s in splits:
            if (out / s).exists():
                (out / s).rename(tmp / f"replaced-{s}")
            (tmp / s).rename(out / s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote %s: %s", out, counts)
    return counts


def _convert_into(tmp: Path, splits: list[str], p: dict[str, Path | None], problems: _Problems,
                  check_images: bool, progress: bool, pool: ThreadPoolExecutor | None) -> dict[str, dict[str, int]]:
    counts = {}
    if p["synset_mapping"] is not None:
        _check_synset_mapping(p["synset_mapping"], problems)
    if "train" in splits:
        counts["train"] = _write_train(p["train_dir"], tmp / "train", problems, check_images, progress, pool)
    if "val" in splits:
        counts["val"] = _write_val(p["imagenetv2_dir"], p["imagenetv2_boxes"], p["imagenetv2_mapping"],
                                   tmp / "val", problems, progress, pool)
    if "test" in splits:
        counts["test"] = _write_test(p["val_dir"], p["val_xml_dir"], p["val_solution_csv"], tmp / "test",
                                     problems, check_images, progress, pool)
    return counts
