"""GTSRB, official layout: per-class training folders with ``GT-000NN.csv``, the test folder with
``GT-final_test.csv``; every CSV problem names its file and line."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import ClassificationSplit, DatasetFormatError, _check_split

__all__ = ["read_gtsrb", "GTSRB_NUM_CLASSES"]

GTSRB_NUM_CLASSES = 43
GTSRB_COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")


def _gtsrb_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    inner = root / "GTSRB"
    if inner.is_dir() and not (root / "Final_Training").exists() and not (root / "Final_Test").exists():
        return inner
    return root


def _parse_gtsrb_row(path: Path, lineno: int, line: str, problems: list[str]) -> tuple | None:
    """(filename, (W, H), (x1, y1, x2, y2), class_id), or None after recording a problem."""
    parts = [p.strip() for p in line.split(";")]
    where = f"{path}:{lineno}"
    if len(parts) != len(GTSRB_COLUMNS):
        problems.append(f"{where}: expected {len(GTSRB_COLUMNS)} fields separated by ';' "
                        f"({';'.join(GTSRB_COLUMNS)}), got {len(parts)}: {line!r}")
        return None
    values = []
    for name, text in zip(GTSRB_COLUMNS[1:], parts[1:]):
        try:
            values.append(int(text))
        except ValueError:
            problems.append(f"{where}: field '{name}' is not an integer: {text!r}")
            return None
    W, H, x1, y1, x2, y2, cid = values
    # One pixel of slack on the far side, as for CUB: the readme does not say inclusive or not.
    if not (0 <= x1 <= x2 <= W and 0 <= y1 <= y2 <= H):
        problems.append(f"{where}: ROI ({x1},{y1},{x2},{y2}) is not inside the {W}x{H} image "
                        "with X1 <= X2, Y1 <= Y2")
        return None
    return parts[0], (W, H), (x1, y1, x2, y2), cid


def _read_gtsrb_csv(path: Path, image_dir: Path, problems: list[str], folder_class: int | None = None) -> list:
    """Rows of a GTSRB annotation CSV as (image path, roi, class_id); problems name file:line."""
    if not path.is_file():
        problems.append(f"{path}: file not found (expected columns {';'.join(GTSRB_COLUMNS)})")
        return []
    rows = []
    with open(path, encoding="utf-8-sig") as fh:
        lines = [(n, line.rstrip("\r\n")) for n, line in enumerate(fh, start=1)]
    lines = [(n, line) for n, line in lines if line.strip()]
    if not lines or tuple(p.strip() for p in lines[0][1].split(";")) != GTSRB_COLUMNS:
        got = lines[0][1] if lines else "an empty file"
        problems.append(f"{path}:1: expected the header {';'.join(GTSRB_COLUMNS)}, got {got!r}")
        return []
    for lineno, line in lines[1:]:
        row = _parse_gtsrb_row(path, lineno, line, problems)
        if row is None:
            continue
        name, _, roi, cid = row
        where = f"{path}:{lineno}"
        if not 0 <= cid < GTSRB_NUM_CLASSES:
            problems.append(f"{where}: ClassId {cid} is outside 0..{GTSRB_NUM_CLASSES - 1}")
            continue
        if folder_class is not None and cid != folder_class:
            problems.append(f"{where}: ClassId {cid} disagrees with its folder {folder_class:05d}")
            continue
        image = image_dir / name
        if not image.is_file():
            problems.append(f"{where}: image file {image} not found")
            continue
        rows.append((image, roi, cid))
    return rows


def _gtsrb_train_rows(root: Path, problems: list[str]) -> list:
    images = root / "Final_Training" / "Images"
    if not images.is_dir():
        raise DatasetFormatError(f"{images}: folder not found (expected one folder per class, 00000..00042)")
    folders = sorted(p for p in images.iterdir() if p.is_dir())
    if not folders:
        raise DatasetFormatError(f"{images}: no class folders (expected 00000..00042)")
    rows = []
    for folder in folders:
        if not (folder.name.isdigit() and int(folder.name) < GTSRB_NUM_CLASSES):
            problems.append(f"{folder}: class folder name must be 00000..{GTSRB_NUM_CLASSES - 1:05d}")
            continue
        csv = folder / f"GT-{folder.name}.csv"
        rows += _read_gtsrb_csv(csv, folder, problems, folder_class=int(folder.name))
    return rows


def _gtsrb_test_rows(root: Path, problems: list[str]) -> list:
    images = root / "Final_Test" / "Images"
    candidates = [images / "GT-final_test.csv", root / "Final_Test" / "GT-final_test.csv", root / "GT-final_test.csv"]
    csv = next((c for c in candidates if c.is_file()), None)
    if csv is None:
        raise DatasetFormatError(f"GT-final_test.csv (with ClassId; GTSRB_Final_Test_GT.zip) not found; "
                                 f"looked at {', '.join(map(str, candidates))}")
    return _read_gtsrb_csv(csv, images, problems)


def read_gtsrb(root: str | os.PathLike, split: str = "test") -> ClassificationSplit:
    """GTSRB, official layout (``root`` holds ``Final_Training/`` and/or ``Final_Test/``).

    Returns image file paths (.ppm), labels 0..42 and ``boxes`` float64 (N, 4) = the ROI
    (Roi.X1, Roi.Y1, Roi.X2, Roi.Y2) in original pixels. Train order: class folder, then CSV row.
    """
    _check_split(split, ("train", "test"), "gtsrb")
    root = _gtsrb_root(root)
    problems: list[str] = []
    rows = _gtsrb_train_rows(root, problems) if split == "train" else _gtsrb_test_rows(root, problems)
    if problems:
        raise DatasetFormatError(problems, f"GTSRB {split} ({root})")
    if not rows:
        raise DatasetFormatError(f"{root}: the GTSRB {split} annotation files list no images")
    paths = [str(r[0]) for r in rows]
    ids = [r[0].relative_to(root).as_posix() for r in rows]
    boxes = np.array([r[1] for r in rows], dtype=np.float64)
    labels = np.array([r[2] for r in rows], dtype=np.int64)
    names = [f"{c:05d}" for c in range(GTSRB_NUM_CLASSES)]
    return ClassificationSplit(f"gtsrb/{split}", paths, labels, names, boxes=boxes, image_ids=ids)
