"""Either layout from one path (:func:`detect_layout`, :func:`load_split`), and the conversion of
an official folder to wsolevaluation metadata."""

from __future__ import annotations

import os
from pathlib import Path

from .base import SPLITS, CubFormatError, CubSplit
from .official import official_split, read_official
from .wsoleval import read_wsoleval

__all__ = ["detect_layout", "load_split", "convert_official_to_wsoleval"]


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
