"""CUB-200-2011 reader: the official layout and the wsolevaluation metadata layout.

One module per layout (:mod:`.official`, :mod:`.wsoleval`, each with its file formats in its
docstring), what both share in :mod:`.base` (sample and split types, the format error, the
table parsing), the path-to-split entry points and the conversion in :mod:`.layout`; everything
public is imported from here. The torch dataset over a parsed split is in
:mod:`wsol.data.dataset`.

Boxes are held in the wsolevaluation convention: ``x0, y0, x1, y1`` in original-image pixels,
with the official-to-metadata rule of REFERENCE.md §4.2: ``x1 = min(x + w, W - 1)``.
Every format problem is reported with its file and line; :class:`CubFormatError` carries
them all.
"""

from .base import MASK_THRESHOLD, SPLITS, CubFormatError, CubSplit, Sample
from .layout import convert_official_to_wsoleval, detect_layout, load_split
from .official import OFFICIAL_FILES, CubOfficial, official_split, read_official, xywh_to_wsoleval
from .wsoleval import WSOLEVAL_FILES, read_wsoleval

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
    "xywh_to_wsoleval",
    "OFFICIAL_FILES",
    "WSOLEVAL_FILES",
    "SPLITS",
    "MASK_THRESHOLD",
]
