"""The ImageNet-1k (ILSVRC 2012) class table: WordNet ids in sorted order (the class index is the
position) and their names, read from timm's bundled files without importing timm (or torch)."""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

__all__ = ["NUM_CLASSES", "ilsvrc_wnids", "ilsvrc_class_names", "wnid_to_index"]

NUM_CLASSES = 1000
_WNID = re.compile(r"n\d{8}\Z")


def _timm_info_file(name: str) -> Path:
    """A file of timm's bundled ``timm/data/_info`` folder, found without importing timm (torch)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("timm is not installed; it ships the ImageNet-1k class table")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info" / name
    if not path.is_file():
        raise RuntimeError(f"{path}: timm's ImageNet class file is missing")
    return path


@lru_cache(maxsize=1)
def ilsvrc_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet-1k WordNet ids in sorted order; the class index is the position.

    This is torchvision ImageFolder's, Kaggle ``LOC_synset_mapping.txt``'s and wsolevaluation's
    order (REFERENCE.md §12.1.4), read from timm's bundled ``imagenet_synsets.txt``.
    """
    path = _timm_info_file("imagenet_synsets.txt")
    wnids = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    bad = [w for w in wnids if not _WNID.match(w)]
    if len(wnids) != NUM_CLASSES or len(set(wnids)) != NUM_CLASSES or list(wnids) != sorted(wnids) or bad:
        raise RuntimeError(f"{path}: expected {NUM_CLASSES} distinct sorted WNIDs, got {len(wnids)} "
                           f"(sorted: {list(wnids) == sorted(wnids)}, malformed: {bad[:3]})")
    return wnids


@lru_cache(maxsize=1)
def ilsvrc_class_names() -> tuple[str, ...]:
    """Human-readable names in the order of :func:`ilsvrc_wnids` (``"tench, Tinca tinca"``, ...),
    from timm's bundled ``imagenet_synset_to_lemma.txt``."""
    path = _timm_info_file("imagenet_synset_to_lemma.txt")
    wanted = set(ilsvrc_wnids())
    lemmas = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        wnid, _, lemma = line.partition("\t")
        if wnid in wanted:
            lemmas[wnid] = lemma.strip()
    missing = sorted(wanted - set(lemmas))
    if missing:
        raise RuntimeError(f"{path}: no name for {len(missing)} WNID(s), e.g. {missing[:3]}")
    return tuple(lemmas[w] for w in ilsvrc_wnids())


@lru_cache(maxsize=1)
def wnid_to_index() -> Mapping[str, int]:
    """{wnid: class index} for the 1000 ImageNet-1k classes (read-only)."""
    return MappingProxyType({w: i for i, w in enumerate(ilsvrc_wnids())})
