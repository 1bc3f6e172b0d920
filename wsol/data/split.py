"""The split type every WSOL dataset shares (CUB, ILSVRC, OpenImages30k, ...), its sample type and
format error, and the table parsing that reports every problem with its file and line.

`WSOLSplit` / `WSOLFormatError` are the names; `CubSplit` / `CubFormatError` stay as aliases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import MAX_PROBLEMS_IN_MESSAGE, DataFormatError
from .images import ImageLoadError, image_size

__all__ = ["WSOLFormatError", "CubFormatError", "Sample", "WSOLSplit", "CubSplit", "SPLITS", "MASK_THRESHOLD"]

SPLITS = ("train", "val", "test")
MASK_THRESHOLD = 128  # CUB soft masks (annotator votes) are foreground at >= 128 (`default`)

Box = tuple[float, float, float, float]


class WSOLFormatError(DataFormatError):
    """A dataset folder does not follow the expected layout.

    ``problems`` lists every problem found, each naming its file (and line when it has one);
    the message always counts them and points at tools/check_dataset.py for the full list.
    """

    single_inline = False
    more_hint = " (run tools/check_dataset.py for all)"


CubFormatError = WSOLFormatError  # the name before ILSVRC and OpenImages


@dataclass(frozen=True, slots=True)
class Sample:
    """One image of a split.

    image_id: path relative to the image root (the wsolevaluation id; the score-map name).
    label: class index, 0-based.
    size: (W, H) of the stored image; None where the metadata gives none (wsolevaluation's empty
        image_sizes.txt of ILSVRC train and OpenImages: the image's own size is used).
    boxes: ground-truth boxes (x0, y0, x1, y1), original pixels, wsolevaluation convention.
    mask_paths: absolute paths of the mask file(s) (CUB: one soft mask; OpenImages: instances).
    ignore_path: absolute path of an ignore mask (OpenImages-style), if any.
    """

    image_id: str
    label: int
    size: tuple[int, int] | None
    boxes: tuple[Box, ...]
    mask_paths: tuple[str, ...] = ()
    ignore_path: str | None = None
    file: str | None = None   # the image file relative to the root where it is not the id (ImageNetV2's
                              # hashed names, translated through mapping.txt); None: the id itself


@dataclass
class WSOLSplit:
    """A list of samples plus where their files are.

    name: the split (train, val, test); image_root: the folder image ids are relative to;
    layout: "official" (CUB's own files) or "wsoleval" (wsolevaluation metadata); dataset: the
    `wsol.data.datasets` table name (cub, ilsvrc, openimages) or "custom"; mask_threshold: a
    mask pixel is foreground at >= this grey value (CUB soft masks 128, instance masks 1).
    """

    name: str
    image_root: Path
    samples: list[Sample]
    class_names: list[str]
    layout: str
    dataset: str = "cub"
    mask_threshold: int = MASK_THRESHOLD

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_boxes(self) -> bool:
        """Every sample has at least one GT box (box metrics apply)."""
        return bool(self.samples) and all(s.boxes for s in self.samples)

    @property
    def has_masks(self) -> bool:
        """Every sample has a mask (PxAP / mIoU apply)."""
        return bool(self.samples) and all(s.mask_paths for s in self.samples)

    def image_path(self, sample: Sample) -> Path:
        """The image file of `sample`: the image root + its id (or its translated file name)."""
        return self.image_root / (sample.file or sample.image_id)

    @property
    def has_ignore(self) -> bool:
        """Some sample has an ignore mask (OpenImages): pixels left out of PxAP."""
        return any(s.ignore_path for s in self.samples)

    def __len__(self) -> int:
        return len(self.samples)


CubSplit = WSOLSplit  # the name before ILSVRC and OpenImages


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



def _read_sizes(image_root: Path, entries: dict, listing: Path) -> tuple[dict, list[tuple]]:
    """({key: (W, H)} from image headers, [(key, problem naming the listing line)] for failures)."""
    sizes, failures = {}, []
    for key, (lineno, rel) in entries.items():
        try:
            sizes[key] = image_size(image_root / rel)
        except ImageLoadError as err:
            failures.append((key, f"{listing}:{lineno}: {err}"))
    return sizes, failures



def _find_seg_root(root: Path) -> Path | None:
    for cand in (root / "segmentations", root.parent / "segmentations"):
        if cand.is_dir():
            return cand
    return None
