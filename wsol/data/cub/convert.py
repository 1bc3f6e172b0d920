"""The conversion of an official CUB folder to wsolevaluation metadata (REFERENCE.md §4.2)."""

from __future__ import annotations

import os
from pathlib import Path

from .official import official_split, read_official

__all__ = ["convert_official_to_wsoleval"]


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
