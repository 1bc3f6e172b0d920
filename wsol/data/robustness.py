"""Readers for the classification datasets of the robustness evaluation, and one torch dataset.

Every reader takes a dataset root as users download it and returns a
:class:`ClassificationSplit`; :class:`ClassificationDataset` turns any split into items
``{"image": float32 (3,S,S) in [0,1], "label", "index", "image_id"}``.

| reader              | layout under ``root``                                                   | images     |
|---------------------|-------------------------------------------------------------------------|------------|
| :func:`read_cifar10`  | ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``       | in memory  |
| :func:`read_cifar10c` | ``CIFAR-10-C/<corruption>.npy`` + ``labels.npy`` (Zenodo 2535967)        | in memory  |
| :func:`read_svhn`     | ``{train,test,extra}_32x32.mat`` (format 2, cropped digits)             | in memory  |
| :func:`read_gtsrb`    | ``Final_Training/Images/000NN/GT-000NN.csv``, ``Final_Test/Images`` + ``GT-final_test.csv`` | files |
| :func:`read_flowers17`  | ``jpg/image_0001.jpg..``, ``datasplits.mat``                          | files      |
| :func:`read_flowers102` | ``jpg/image_00001.jpg..``, ``imagelabels.mat``, ``setid.mat``         | files      |

Every format problem raises :class:`DatasetFormatError` naming the file (and the line, for
text files) and what was expected. Image files are decoded lazily by the dataset with
:func:`wsol.data.images.load_rgb`, which raises ``ImageLoadError`` naming the file.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from .images import load_rgb

__all__ = [
    "DatasetFormatError",
    "ClassificationSplit",
    "ClassificationDataset",
    "collate_classification",
    "read_cifar10",
    "read_cifar10c",
    "available_cifar10c",
    "read_svhn",
    "read_gtsrb",
    "read_flowers17",
    "read_flowers102",
    "CIFAR10_CLASSES",
    "CIFAR10C_CORRUPTIONS",
    "CIFAR10C_BENCHMARK",
    "CIFAR10C_ART2020",
    "CIFAR10C_RECORD",
    "GTSRB_NUM_CLASSES",
]

log = logging.getLogger(__name__)

MAX_PROBLEMS_IN_MESSAGE = 20

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10C_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate",
)
CIFAR10C_BENCHMARK = CIFAR10C_CORRUPTIONS[:15]
# ART's 15 columns (REFERENCE.md §8): speckle noise in, frost out.
CIFAR10C_ART2020 = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise",
)
CIFAR10C_RECORD = "Zenodo record 2535967 (https://zenodo.org/record/2535967)"
CIFAR10C_SEVERITIES = 5

GTSRB_NUM_CLASSES = 43
GTSRB_COLUMNS = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
FLOWERS17_PER_CLASS = 80
FLOWERS17_NUM_IMAGES = 17 * FLOWERS17_PER_CLASS


class DatasetFormatError(ValueError):
    """A dataset file or folder does not follow the expected layout.

    ``problems`` lists every problem found, each naming its file (and line when it has one).
    """

    def __init__(self, problems: str | list[str], context: str = "") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        head = f"{context}: " if context else ""
        if len(self.problems) == 1:
            super().__init__(f"{head}{self.problems[0]}")
            return
        shown = "\n  ".join(self.problems[:MAX_PROBLEMS_IN_MESSAGE])
        more = len(self.problems) - MAX_PROBLEMS_IN_MESSAGE
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{head}{len(self.problems)} problem(s):\n  {shown}{tail}")


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


# --------------------------------------------------------------------------- CIFAR-10


def _cifar_folder(root: str | os.PathLike) -> Path:
    root = Path(root)
    sub = root / "cifar-10-batches-py"
    return sub if sub.is_dir() else root


def _pickle_get(d: dict, key: str):
    """Value of ``key`` in a CIFAR pickle, whose keys are bytes (python 2) or str."""
    return d[key.encode()] if key.encode() in d else d.get(key)


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
    except Exception as err:  # any unpickling failure means a damaged or foreign file
        raise DatasetFormatError(f"{path}: not a CIFAR-10 python pickle ({err})") from err
    if not isinstance(d, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(d).__name__}")
    return d


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> images uint8 (N, 32, 32, 3), labels int64 (N,).

    The file's ``data`` rows are 3072 bytes: the R, G and B planes of 32x32, each row-major.
    """
    d = _load_pickle(path)
    data, labels = _pickle_get(d, "data"), _pickle_get(d, "labels")
    if data is None or labels is None:
        raise DatasetFormatError(f"{path}: expected keys b'data' and b'labels', found {sorted(d)}")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetFormatError(f"{path}: 'data' must have shape (N, 3072), got {data.shape}")
    if data.dtype != np.uint8:
        if data.dtype.kind not in "iu" or data.min(initial=0) < 0 or data.max(initial=0) > 255:
            raise DatasetFormatError(f"{path}: 'data' must be uint8 pixels, got dtype {data.dtype}")
        data = data.astype(np.uint8)
    labels = _as_int_array(path, "labels", labels, "class indices 0..9").reshape(-1)
    if len(labels) != len(data):
        raise DatasetFormatError(f"{path}: {len(labels)} labels for {len(data)} images")
    _check_range(path, labels, 0, 9)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _cifar_class_names(folder: Path) -> list[str]:
    path = folder / "batches.meta"
    if not path.is_file():
        log.warning("%s not found; using the standard CIFAR-10 class names", path)
        return list(CIFAR10_CLASSES)
    names = _pickle_get(_load_pickle(path), "label_names")
    if names is None or len(names) != 10:
        raise DatasetFormatError(f"{path}: expected 'label_names' with 10 class names")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_cifar10(root: str | os.PathLike, split: str = "test") -> ClassificationSplit:
    """CIFAR-10, python version. ``root`` is ``cifar-10-batches-py/`` or its parent.

    Returns images uint8 (N, 32, 32, 3) with N = 50000 (train) or 10000 (test).
    """
    _check_split(split, ("train", "test"), "cifar10")
    folder = _cifar_folder(root)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetFormatError(f"{folder}: missing CIFAR-10 batch file(s) {missing} "
                                 f"(expected {names} in cifar-10-batches-py/)")
    parts = [_read_cifar_batch(folder / n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ClassificationSplit(f"cifar10/{split}", images, labels, _cifar_class_names(folder))


# --------------------------------------------------------------------------- CIFAR-10-C


def available_cifar10c(root: str | os.PathLike) -> list[str]:
    """The corruptions of :data:`CIFAR10C_CORRUPTIONS` with a ``.npy`` file under ``root``."""
    return [c for c in CIFAR10C_CORRUPTIONS if (Path(root) / f"{c}.npy").is_file()]


def _load_npy(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found (expected {what}; download CIFAR-10-C "
                                 f"from {CIFAR10C_RECORD})")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # ValueError / OSError on damaged or pickled files
        raise DatasetFormatError(f"{path}: not a readable .npy array ({err})") from err


def read_cifar10c(root: str | os.PathLike, corruption: str, severity: int) -> ClassificationSplit:
    """One corruption at one severity (1..5) of CIFAR-10-C: images uint8 (10000, 32, 32, 3).

    ``<corruption>.npy`` holds 5 blocks of the test set, severities 1..5 in order; only the
    requested block is read (memory-mapped, then copied).
    """
    if corruption not in CIFAR10C_CORRUPTIONS:
        raise ValueError(f"unknown CIFAR-10-C corruption {corruption!r}; valid: {', '.join(CIFAR10C_CORRUPTIONS)}")
    if not 1 <= int(severity) <= CIFAR10C_SEVERITIES:
        raise ValueError(f"CIFAR-10-C severity must be 1..5, got {severity}")
    root = Path(root)
    path = root / f"{corruption}.npy"
    arr = _load_npy(path, "uint8 (50000, 32, 32, 3): 5 severity blocks of the 10000 test images")
    if arr.ndim != 4 or arr.shape[3] != 3 or arr.shape[0] % CIFAR10C_SEVERITIES or arr.dtype != np.uint8:
        raise DatasetFormatError(f"{path}: expected uint8 (5*N, H, W, 3) (50000, 32, 32, 3) for the "
                                 f"release, got {arr.dtype} {arr.shape}")
    lpath = root / "labels.npy"
    labels = _load_npy(lpath, f"({arr.shape[0]},) class indices 0..9")
    if labels.shape != (arr.shape[0],) or labels.dtype.kind not in "iu":
        raise DatasetFormatError(f"{lpath}: expected integer labels of shape ({arr.shape[0]},) to match "
                                 f"{path.name}, got {labels.dtype} {labels.shape}")
    n = arr.shape[0] // CIFAR10C_SEVERITIES
    block = slice((int(severity) - 1) * n, int(severity) * n)
    labels = np.array(labels[block], dtype=np.int64)
    _check_range(lpath, labels, 0, 9)
    return ClassificationSplit(f"cifar10c/{corruption}/{int(severity)}", np.array(arr[block]), labels,
                               list(CIFAR10_CLASSES))


# --------------------------------------------------------------------------- SVHN


def read_svhn(root: str | os.PathLike, split: str = "test") -> ClassificationSplit:
    """SVHN format 2 (cropped digits): ``<split>_32x32.mat`` with X (32,32,3,N), y (N,1) in 1..10.

    Returns images uint8 (N, 32, 32, 3); label 10 (digit 0) becomes 0.
    """
    _check_split(split, ("train", "test", "extra"), "svhn")
    path = Path(root) / f"{split}_32x32.mat"
    mat = _loadmat(path, ("X", "y"))
    X = np.asarray(mat["X"])
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3):
        raise DatasetFormatError(f"{path}: 'X' must have shape (32, 32, 3, N), got {X.shape}")
    if X.dtype != np.uint8:
        raise DatasetFormatError(f"{path}: 'X' must be uint8, got {X.dtype}")
    y = _as_int_array(path, "y", mat["y"], "labels 1..10")
    if y.size != X.shape[3] or (y.ndim == 2 and 1 not in y.shape) or y.ndim > 2:
        raise DatasetFormatError(f"{path}: 'y' must have shape ({X.shape[3]}, 1), got {y.shape}")
    y = y.reshape(-1)
    _check_range(path, y, 1, 10)
    labels = np.where(y == 10, 0, y)
    images = np.ascontiguousarray(X.transpose(3, 0, 1, 2))
    return ClassificationSplit(f"svhn/{split}", images, labels, [str(d) for d in range(10)])


# --------------------------------------------------------------------------- GTSRB


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


# --------------------------------------------------------------------------- Oxford flowers


def _mat_indices(path: Path, mat: dict, key: str, n_max: int) -> np.ndarray:
    """1-based indices under ``key`` -> int64 0-based, each checked to lie in 1..n_max."""
    idx = _as_int_array(path, key, mat[key], f"1-based image indices 1..{n_max}").reshape(-1)
    _check_range(path, idx, 1, n_max, what=f"image index in '{key}'")
    return idx - 1


def _flowers_split(root: Path, name: str, index: np.ndarray, labels: np.ndarray, pattern: str,
                   num_classes: int) -> ClassificationSplit:
    rel = [f"jpg/{pattern.format(i + 1)}" for i in index]
    paths = _existing_files([root / r for r in rel], name)
    names = [f"{c:0{len(str(num_classes))}d}" for c in range(num_classes)]
    return ClassificationSplit(name, paths, labels, names, image_ids=rel)


def read_flowers17(root: str | os.PathLike, split: str = "test", fold: int = 1) -> ClassificationSplit:
    """Oxford 17 Flowers: ``jpg/image_0001.jpg..image_1360.jpg`` and ``datasplits.mat``.

    Images come 80 per class in order (class = (i-1) // 80). ``datasplits.mat`` holds
    trn1, val1, tst1, ..., tst3 (1-based indices); ``fold`` in 1..3. Class names are the
    indices "00".."16": the download does not name the classes.
    """
    _check_split(split, ("train", "val", "test"), "flowers17")
    if fold not in (1, 2, 3):
        raise ValueError(f"flowers17: fold must be 1, 2 or 3, got {fold!r}")
    root = Path(root)
    path = root / "datasplits.mat"
    if not path.is_file() and (root / "jpg" / "datasplits.mat").is_file():
        path = root / "jpg" / "datasplits.mat"
    key = {"train": "trn", "val": "val", "test": "tst"}[split] + str(fold)
    mat = _loadmat(path, (key,))
    index = _mat_indices(path, mat, key, FLOWERS17_NUM_IMAGES)
    labels = index // FLOWERS17_PER_CLASS
    return _flowers_split(root, f"flowers17/{split}{fold}", index, labels, "image_{:04d}.jpg", 17)


def read_flowers102(root: str | os.PathLike, split: str = "test") -> ClassificationSplit:
    """Oxford 102 Flowers: ``jpg/image_00001.jpg..``, ``imagelabels.mat`` (``labels`` (1,N) in
    1..102) and ``setid.mat`` (``trnid``, ``valid``, ``tstid``, 1-based). Labels become 0..101."""
    _check_split(split, ("train", "val", "test"), "flowers102")
    root = Path(root)
    lpath = root / "imagelabels.mat"
    all_labels = _as_int_array(lpath, "labels", _loadmat(lpath, ("labels",))["labels"], "classes 1..102")
    if all_labels.ndim != 2 or 1 not in all_labels.shape:
        raise DatasetFormatError(f"{lpath}: 'labels' must have shape (1, N), got {all_labels.shape}")
    _check_range(lpath, all_labels.reshape(-1), 1, 102)
    all_labels = all_labels.reshape(-1) - 1
    key = {"train": "trnid", "val": "valid", "test": "tstid"}[split]
    spath = root / "setid.mat"
    index = _mat_indices(spath, _loadmat(spath, (key,)), key, len(all_labels))
    return _flowers_split(root, f"flowers102/{split}", index, all_labels[index], "image_{:05d}.jpg", 102)


# --------------------------------------------------------------------------- torch dataset


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> (size, size, 3): area interpolation to shrink, bilinear to grow."""
    H, W = image.shape[:2]
    if (H, W) == (size, size):
        return image
    interp = cv2.INTER_AREA if size <= min(H, W) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


class _TrainAugment:
    """Random h-flip + ``pad``-pixel reflect-padded random crop back to (H, W) (CIFAR recipe), and
    optionally ART's CIFAR extras: ColorJitter(j, j, j) and a rotation within +-``rotation`` degrees.

    ``set_seed`` makes the draws repeat; :func:`wsol.data.seed_worker` finds it as
    ``dataset.transform`` in each DataLoader worker.
    """

    def __init__(self, height: int, width: int, pad: int = 4, hflip_p: float = 0.5,
                 color_jitter: float = 0.0, rotation: float = 0.0) -> None:
        steps = [A.Pad(padding=pad, border_mode=cv2.BORDER_REFLECT_101),  # torchvision's "reflect"
                 A.RandomCrop(height, width),
                 A.HorizontalFlip(p=hflip_p)]
        if color_jitter > 0:
            steps.append(A.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter,
                                       hue=0.0, p=1.0))
        if rotation > 0:  # torchvision's RandomRotation fills with 0
            steps.append(A.Rotate(limit=rotation, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0))
        self.pipeline = A.Compose(steps)

    def set_seed(self, seed: int) -> None:
        self.pipeline.set_random_seed(seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.pipeline(image=image)["image"]


class ClassificationDataset(Dataset):
    """Torch dataset over a :class:`ClassificationSplit`.

    Items: ``{"image": float32 (3, S, S) in [0, 1], "label": int, "index": int, "image_id": str}``.
    ``image_size`` resizes every image to S x S (else the stored size is kept). ``train`` adds a
    random horizontal flip and a ``pad``-pixel reflect-padded random crop (plus ``color_jitter``
    and ``rotation`` when > 0); an image-file split needs ``image_size`` then, since its files
    differ in size.
    """

    def __init__(self, split: ClassificationSplit, image_size: int | None = None, train: bool = False,
                 pad: int = 4, hflip_p: float = 0.5, color_jitter: float = 0.0, rotation: float = 0.0) -> None:
        self.split = split
        self.image_size = None if image_size is None else int(image_size)
        self.train = train
        self.transform: _TrainAugment | None = None
        if train:
            if self.image_size is not None:
                h = w = self.image_size
            elif split.in_memory:
                h, w = split.images.shape[1:3]
            else:
                raise ValueError(f"{split.name}: train=True on an image-file split needs image_size "
                                 "(the files differ in size)")
            self.transform = _TrainAugment(h, w, pad, hflip_p, color_jitter, rotation)

    def set_seed(self, seed: int) -> None:
        """Seed the random augmentation (no effect when ``train=False``)."""
        if self.transform is not None:
            self.transform.set_seed(seed)

    @property
    def class_names(self) -> list[str]:
        return self.split.class_names

    def __len__(self) -> int:
        return len(self.split)

    def load(self, index: int) -> np.ndarray:
        """The stored image, uint8 (H, W, 3)."""
        img = self.split.images[index]
        return np.asarray(img) if self.split.in_memory else load_rgb(img)

    def __getitem__(self, index: int) -> dict:
        image = self.load(index)
        if self.image_size is not None:
            image = _resize(image, self.image_size)
        if self.transform is not None:
            image = self.transform(image)
        tensor = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)
        return {"image": tensor, "label": int(self.split.labels[index]), "index": int(index),
                "image_id": self.split.image_id(index)}


def collate_classification(items: list[dict]) -> dict:
    """Batch items: image (B, 3, S, S), label (B,) int64, index (B,) int64, image_id list, and
    ``skipped`` (always empty: kept so the training loop reads CUB and classification batches alike)."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "image_id": [it["image_id"] for it in items],
        "skipped": [],
    }
