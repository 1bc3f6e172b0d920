"""The table of WSOL datasets in wsolevaluation's metadata layout (REFERENCE.md §12.1).

A new dataset in that layout is a metadata folder (``metadata/<folder>/{train,val,test}/``)
plus one entry here: its wsolevaluation name (the metadata and image folder), what it
localizes with (boxes or masks), and where its class names come from.

    spec = dataset_spec("ilsvrc")      # WSOLDatasetSpec(name="ilsvrc", folder="ILSVRC", ...)
    spec = spec_for_folder(Path("metadata/OpenImages/test"))  # found from the folder names

Class names, first that applies: a ``class_names.txt`` in the metadata folder (line k is class
k's name; see :func:`read_names_file`), the table's ``class_names`` source, else the image-id
folder that holds every image of one class (``class_{k:03d}`` where there is none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WSOLDatasetSpec", "WSOL_DATASETS", "dataset_spec", "spec_for_folder", "wsol_dataset_names",
           "NAMES_FILE", "read_names_file"]

NAMES_FILE = "class_names.txt"


def _ilsvrc_names(found: list[str]) -> list[str]:
    """``<wnid> <lemma>`` per class (REFERENCE §12.1.4): WordNet ids found in the train folders get
    their name; 1000 classes without folder names get the sorted-WNID table."""
    from .imagenet_classes import ilsvrc_class_names, ilsvrc_wnids

    wnids = ilsvrc_wnids()
    lemma = dict(zip(wnids, ilsvrc_class_names()))
    if len(found) == len(wnids) and not any(n in lemma for n in found):
        return [f"{w} {lemma[w]}" for w in wnids]
    return [f"{n} {lemma[n]}" if n in lemma else n for n in found]


@dataclass(frozen=True)
class WSOLDatasetSpec:
    """One WSOL dataset in wsolevaluation's layout.

    Attributes:
        name: the config / command-line name (``data.dataset``).
        folder: wsolevaluation's dataset name: metadata in ``metadata/<folder>``, images in
            ``<data_root>/<folder>`` (REFERENCE §12.1.1).
        localization: "boxes" (localization.txt holds boxes) or "masks" (mask and ignore paths).
        class_folder: which "/"-separated part of an image id names its class (CUB ``NNN.Name/x.jpg``:
            0; OpenImages ``train/<mid>/x.jpg``: 1), or None: the first part that is one folder per
            class, for val/test the train split's (ILSVRC test ids carry no class).
        class_names: turns the names found in the id folders into the dataset's own (ILSVRC:
            ``<wnid> <lemma>``); None: keep them.
        mask_threshold: instance/soft mask foreground at >= this grey value (CUB soft masks 128;
            OpenImages' 0/255 instance masks: 1, any non-zero pixel).
    """

    name: str
    folder: str
    localization: str
    class_folder: int | None
    class_names: Callable[[list[str]], list[str]] | None = None
    mask_threshold: int = 128
    description: str = ""


WSOL_DATASETS: dict[str, WSOLDatasetSpec] = {
    "cub": WSOLDatasetSpec("cub", "CUB", "boxes", 0,
                           description="CUB-200-2011 (official layout or wsolevaluation metadata); boxes, "
                                       "soft masks when segmentations/ is present"),
    "ilsvrc": WSOLDatasetSpec("ilsvrc", "ILSVRC", "boxes", None, _ilsvrc_names,
                              description="ImageNet-1K in wsolevaluation's layout (train: labels only; val: "
                                          "ImageNetV2; test: the official validation set, several boxes)"),
    "openimages": WSOLDatasetSpec("openimages", "OpenImages", "masks", 1, mask_threshold=1,
                                  description="OpenImages30k (100 classes; instance masks and ignore masks)"),
}


def wsol_dataset_names() -> tuple[str, ...]:
    return tuple(WSOL_DATASETS)


def dataset_spec(name: str) -> WSOLDatasetSpec:
    """The table entry of `name`; ValueError naming the valid ones."""
    try:
        return WSOL_DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown WSOL dataset {name!r}; valid: {', '.join(WSOL_DATASETS)}") from None


def spec_for_folder(path: Path) -> WSOLDatasetSpec | None:
    """The entry whose wsolevaluation folder name (CUB, ILSVRC, OpenImages) is `path` or one of its
    parents (case-insensitive); None if none is."""
    by_folder = {s.folder.lower(): s for s in WSOL_DATASETS.values()}
    for part in (path, *path.parents):
        spec = by_folder.get(part.name.lower())
        if spec is not None:
            return spec
    return None


def read_names_file(path: Path, num_classes: int) -> list[str]:
    """Class names from a names file: one per line, line k = class k (blank lines not allowed);
    ValueError naming the file unless it has exactly `num_classes` lines."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    blank = [i + 1 for i, s in enumerate(lines) if not s.strip()]
    if blank:
        raise ValueError(f"{path}:{blank[0]}: empty class name (one name per line, line k = class k)")
    if len(lines) != num_classes:
        raise ValueError(f"{path}: {len(lines)} class names for {num_classes} classes "
                         "(one name per line, line k = class k)")
    return [s.strip() for s in lines]
