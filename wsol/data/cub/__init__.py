"""CUB-200-2011 reader: the official layout and the wsolevaluation metadata layout.

CUB's own layout is :mod:`.official`; the wsolevaluation layout, shared with ILSVRC and
OpenImages, is :mod:`wsol.data.wsoleval`, the split type :mod:`wsol.data.split`, the
path-to-split entry points (`load_split`, `detect_layout`) :mod:`wsol.data.layout`; the conversion
of an official folder is :mod:`.convert`. The torch dataset over a parsed split is in :mod:`wsol.data.dataset`.

Boxes are held in the wsolevaluation convention: ``x0, y0, x1, y1`` in original-image pixels,
with the official-to-metadata rule of REFERENCE.md §4.2: ``x1 = min(x + w, W - 1)``.
Every format problem is reported with its file and line; :class:`CubFormatError` carries
them all.
"""

from ..split import MASK_THRESHOLD, SPLITS, CubFormatError, CubSplit, Sample
from ..wsoleval import WSOLEVAL_FILES, read_wsoleval
from .convert import convert_official_to_wsoleval
from .official import OFFICIAL_FILES, CubOfficial, official_split, read_official, xywh_to_wsoleval

__all__ = [
    "CubFormatError",
    "Sample",
    "CubSplit",
    "CubOfficial",
    "read_official",
    "official_split",
    "read_wsoleval",
    "convert_official_to_wsoleval",
    "xywh_to_wsoleval",
    "OFFICIAL_FILES",
    "WSOLEVAL_FILES",
    "SPLITS",
    "MASK_THRESHOLD",
]
