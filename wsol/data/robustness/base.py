"""What every robustness reader shares: :class:`DatasetFormatError`, :class:`ClassificationSplit`
and the file / value checks that make each format problem name its file and what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFormatError

__all__ = ["DatasetFormatError", "ClassificationSplit"]


class DatasetFormatError(DataFormatError):
    """A dataset file or folder does not follow the expected layout.

    ``problems`` lists every problem found, each naming its file (and line when it has one);
    a single problem is the whole message.
    """


@dataclass
class ClassificationSplit:
    """One split of a classification dataset.

    images: uint8 (N, H, W, 3) for in-memory datasets, or N image file paths.
    labels: int64 (N,), 0-based.
    class_names: C names; ``name``: e.g. ``"cifar10/test"``.
    boxes: optional float64 (N, 4) x0,y0,x1,y1 inclusive, original pixels (GTSRB ROI).
    image_ids: optional N ids (file paths relative to the dataset root); see :meth:`image_id`.
    """

    name: str
    images: np.ndarray | list[str]
    labels: np.ndarray
    class_names: list[str]
    boxes: np.ndarray | None = None
    image_ids: list[str] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        n = len(self.labels)
        if len(self.images) != n:
            raise ValueError(f"{self.name}: {len(self.images)} images but {n} labels")
        if self.boxes is not None and np.shape(self.boxes) != (n, 4):
            raise ValueError(f"{self.name}: boxes must be ({n}, 4), got {np.shape(self.boxes)}")
        if self.image_ids is not None and len(self.image_ids) != n:
            raise ValueError(f"{self.name}: {len(self.image_ids)} image ids but {n} labels")

    @property
    def in_memory(self) -> bool:
        return isinstance(self.images, np.ndarray)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def image_id(self, index: int) -> str:
        """The stored id, else ``"<name>/<index>"`` for arrays or the path for files."""
        if self.image_ids is not None:
            return self.image_ids[index]
        return f"{self.name}/{index}" if self.in_memory else str(self.images[index])

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------- shared checks


def _need_file(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found (expected {expected})")
    return path


def _check_split(split: str, valid: tuple[str, ...], dataset: str) -> None:
    if split not in valid:
        raise ValueError(f"{dataset}: split must be one of {valid}, got {split!r}")


def _check_range(path: Path, values: np.ndarray, lo: int, hi: int, what: str = "label") -> None:
    """Raise naming ``path`` and the first entry of ``values`` (N,) outside lo..hi."""
    bad = np.flatnonzero((values < lo) | (values > hi))
    if bad.size:
        i = int(bad[0])
        raise DatasetFormatError(f"{path}: {bad.size} {what}(s) outside the expected {lo}..{hi}, "
                                 f"first at position {i}: {values[i]}")


def _as_int_array(path: Path, key: str, value, expected: str) -> np.ndarray:
    """A numeric array with integral values as int64, else a format error naming ``key``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr))):
        raise DatasetFormatError(f"{path}: '{key}' must hold integers ({expected}), got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and np.any(arr != np.round(arr)):
        raise DatasetFormatError(f"{path}: '{key}' must hold integers ({expected}), found fractional values")
    return arr.astype(np.int64)


def _loadmat(path: Path, keys: tuple[str, ...]) -> dict:
    """``scipy.io.loadmat`` with the named keys required."""
    from scipy.io import loadmat

    _need_file(path, f"a MATLAB .mat file with {', '.join(keys)}")
    try:
        mat = loadmat(path)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5) files
        raise DatasetFormatError(f"{path}: MATLAB v7.3 files are not supported; save with -v7 ({err})") from err
    except Exception as err:  # scipy raises ValueError, TypeError, OSError ... on damaged files
        raise DatasetFormatError(f"{path}: not a readable MATLAB .mat file ({err})") from err
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetFormatError(f"{path}: missing key(s) {missing}; expected {list(keys)}, found {found}")
    return mat


def _existing_files(paths: list[Path], context: str) -> list[str]:
    """Paths as strings; raise naming the missing ones."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DatasetFormatError([f"{p}: image file not found" for p in missing], context)
    return [str(p) for p in paths]
