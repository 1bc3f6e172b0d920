"""Synthetic stand-in for CUB-200-2011, written in CUB's official on-disk layout.

Each image holds one object on a cluttered background. The class is a combination of the
object's **shape family** and **texture family** (plus, past 64 classes, the texture's
frequency band and a tail appendage). Colours, scale, aspect ratio, rotation, mirroring and
position are drawn at random for every image, so none of them carries the label. The
background is multi-scale coloured noise with gradients, blobs and an optional faint texture;
2-4 distractors per image are irregular blobs, strokes, or "half cues": a class shape with a
plain fill, or a class texture inside an irregular blob. A distractor never carries both a
class shape and a class texture, so only the object itself determines the label.

Ground truth: the object's soft mask (four simulated annotators whose votes map to
0/63/127/191/255, like CUB's vote masks) and the tight box of ``mask >= 128``.

Every image gets its own ``numpy.random.Generator`` seeded from (seed, class, index in
class), so output is byte-identical for the same arguments, whatever the worker count.

Output layout (``out_dir`` is the CUB root)::

    images/NNN.Name/Name_XXXX.jpg          RGB JPEG, quality 95
    segmentations/NNN.Name/Name_XXXX.png   8-bit single-channel soft mask
    images.txt image_class_labels.txt classes.txt train_test_split.txt bounding_boxes.txt
    synthetic_info.json README.txt
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .synthetic_render import (  # noqa: F401  (re-exported)
    SHAPES,
    TEXTURES,
    ClassSpec,
    SyntheticSample,
    MAX_CLASSES,
    _BASE,
    _MIN_SIZE_FOR_BANDS,
    _SEED_SALT,
    _check_int,
    class_specs,
    image_rng,
    render_sample,
)

__all__ = [
    "GENERATOR_VERSION",
    "SHAPES",
    "TEXTURES",
    "MAX_CLASSES",
    "ClassSpec",
    "SyntheticSample",
    "class_specs",
    "image_rng",
    "render_sample",
    "make_synthetic_cub",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0.0"
JPEG_QUALITY = 95
_INFO_NAME = "synthetic_info.json"
_OUTPUT_ENTRIES = (
    "images", "segmentations", "images.txt", "image_class_labels.txt", "classes.txt",
    "train_test_split.txt", "bounding_boxes.txt", "README.txt", _INFO_NAME,
)

# --------------------------------------------------------------------------- dataset


def _check_range(name: str, value, lo: float, hi: float, kind=float) -> tuple:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if kind is int:
        _check_int(name, a, int(lo), int(hi))
        _check_int(name, b, int(lo), int(hi))
    elif not (lo < float(a) <= float(b) <= hi):
        raise ValueError(f"{name} must satisfy {lo} < low <= high <= {hi}, got {value!r}")
    if a > b:
        raise ValueError(f"{name} must have low <= high, got {value!r}")
    return (kind(a), kind(b))


def _validate(num_classes, images_per_class, size, seed, train_fraction, size_jitter,
              num_distractors, box_fraction) -> dict:
    """Check every argument; return the normalised parameters recorded in the info file."""
    _check_int("num_classes", num_classes, 1, MAX_CLASSES)
    _check_int("images_per_class", images_per_class, 2)
    _check_int("seed", seed, 0)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if not (isinstance(size, Sequence) and len(size) == 2):
        raise ValueError(f"size must be an int or a (width, height) pair, got {size!r}")
    for s in size:
        _check_int("size", s, 32)
    if num_classes > _BASE and min(size) < _MIN_SIZE_FOR_BANDS:
        raise ValueError(f"num_classes={num_classes} > {_BASE} uses texture frequency bands, "
                         f"which need size >= {_MIN_SIZE_FOR_BANDS}; got size {size}")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) \
            or not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be a number with 0 < f < 1, got {train_fraction!r}")
    if isinstance(size_jitter, bool) or not isinstance(size_jitter, (int, float)) \
            or not 0 <= size_jitter <= 0.5:
        raise ValueError(f"size_jitter must be a number in [0, 0.5], got {size_jitter!r}")
    return {
        "num_classes": int(num_classes), "images_per_class": int(images_per_class),
        "size": [int(size[0]), int(size[1])], "seed": int(seed),
        "train_fraction": float(train_fraction), "size_jitter": float(size_jitter),
        "num_distractors": list(_check_range("num_distractors", num_distractors, 0, 8, int)),
        "box_fraction": list(_check_range("box_fraction", box_fraction, 0.0, 0.8)),
        "jpeg_quality": JPEG_QUALITY,
    }


def _image_size(rng: np.random.Generator, size: Sequence[int], jitter: float) -> tuple[int, int]:
    if jitter == 0:
        return size[0], size[1]
    w, h = (max(32, round(s * rng.uniform(1 - jitter, 1 + jitter))) for s in size)
    return w, h


def _generate_one(job: tuple) -> tuple[int, int, tuple[int, int, int, int]]:
    """Render and write one image and its mask; return (width, height, box)."""
    root, spec, j, stem, params = job
    rng = image_rng(params["seed"], spec.index, j)
    width, height = _image_size(rng, params["size"], params["size_jitter"])
    sample = render_sample(spec, rng, width, height,
                           num_distractors=tuple(params["num_distractors"]),
                           box_fraction=tuple(params["box_fraction"]))
    img_path = Path(root, "images", spec.folder, stem + ".jpg")
    seg_path = Path(root, "segmentations", spec.folder, stem + ".png")
    bgr = cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(img_path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"{img_path}: could not write JPEG")
    if not cv2.imwrite(str(seg_path), sample.mask):
        raise OSError(f"{seg_path}: could not write PNG")
    return width, height, sample.box


def _train_flags(seed: int, class_index: int, n: int, fraction: float) -> list[int]:
    """Deterministic per-class split: round(fraction * n) train images, clamped to 1..n-1."""
    n_train = min(n - 1, max(1, math.floor(fraction * n + 0.5)))
    order = np.random.default_rng([_SEED_SALT, seed, 0x5B11, class_index]).permutation(n)
    flags = [0] * n
    for i in order[:n_train]:
        flags[int(i)] = 1
    return flags


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


_README = """Synthetic CUB-200-2011-format dataset written by wsol.data.synthetic (art-wsol).
Not birds: each image holds one textured shape on a cluttered background; the class is
the combination of the shape family and the texture family (see synthetic_info.json for
the class definitions, generator version and parameters). Same layout as CUB_200_2011:
images/, segmentations/ (soft vote masks: 0, 63, 127, 191, 255), images.txt,
image_class_labels.txt, classes.txt, train_test_split.txt, bounding_boxes.txt
(x y w h: tight box of segmentation >= 128, w = max_col - min_col + 1).
Regenerate byte-identically with: python tools/make_synthetic_cub.py --out DIR {args}
"""


def _prepare_dir(root: Path, params: dict, overwrite: bool) -> bool:
    """Make ``root`` ready; return True when it already holds this exact dataset."""
    if not root.exists():
        root.mkdir(parents=True)
        return False
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: exists and is not a directory")
    if not any(root.iterdir()):
        return False
    info_path = root / _INFO_NAME
    info = None
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = None
    if not overwrite:
        if info and info.get("complete") and info.get("version") == GENERATOR_VERSION \
                and info.get("parameters") == params:
            return True
        raise FileExistsError(f"{root}: directory is not empty and does not hold a complete synthetic "
                              "dataset with these parameters; pass overwrite=True or use an empty directory")
    if info is None:
        raise FileExistsError(f"{root}: not empty and has no {_INFO_NAME}, so it was not written by "
                              "this generator; refusing to delete anything there")
    for name in _OUTPUT_ENTRIES:
        p = root / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    return False


def _write_metadata(root: Path, specs: list[ClassSpec], params: dict, rel: list[str],
                    labels: list[int], flags: list[int], boxes: list) -> None:
    _write_lines(root / "images.txt", [f"{i} {r}" for i, r in enumerate(rel, 1)])
    _write_lines(root / "image_class_labels.txt", [f"{i} {c + 1}" for i, c in enumerate(labels, 1)])
    _write_lines(root / "classes.txt", [f"{s.index + 1} {s.folder}" for s in specs])
    _write_lines(root / "train_test_split.txt", [f"{i} {f}" for i, f in enumerate(flags, 1)])
    _write_lines(root / "bounding_boxes.txt",
                 [f"{i} {x:.1f} {y:.1f} {w:.1f} {h:.1f}" for i, (x, y, w, h) in enumerate(boxes, 1)])
    p = params
    size = p["size"][0] if p["size"][0] == p["size"][1] else f"{p['size'][0]}x{p['size'][1]}"
    args = (f"--classes {p['num_classes']} --images-per-class {p['images_per_class']} --size {size} "
            f"--seed {p['seed']} --train-fraction {p['train_fraction']}")
    if p["size_jitter"]:
        args += f" --size-jitter {p['size_jitter']}"
    (root / "README.txt").write_text(_README.format(args=args), encoding="utf-8", newline="\n")


def _write_info(root: Path, params: dict, specs: list[ClassSpec], complete: bool, counts=None) -> None:
    info = {"generator": "wsol.data.synthetic", "version": GENERATOR_VERSION, "complete": complete,
            "parameters": params, "classes": [asdict(s) | {"folder": s.folder} for s in specs]}
    if counts:
        info.update(counts)
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    (root / _INFO_NAME).write_text(text, encoding="utf-8", newline="\n")


def make_synthetic_cub(out_dir, num_classes: int = 10, images_per_class: int = 40,
                       size: int | tuple[int, int] = 128, seed: int = 0,
                       train_fraction: float = 0.5, *, size_jitter: float = 0.0,
                       num_distractors: tuple[int, int] = (2, 4),
                       box_fraction: tuple[float, float] = (0.10, 0.60),
                       num_workers: int = 0, overwrite: bool = False,
                       progress: bool = True) -> Path:
    """Write a synthetic dataset in CUB_200_2011's official layout into ``out_dir``.

    Args:
        out_dir: the CUB root to write (created if missing).
        num_classes: 1..256 (>64 needs size >= 64). images_per_class: >= 2.
        size: square side, or (width, height), in pixels, each >= 32.
        seed: non-negative int; the same arguments give byte-identical files.
        train_fraction: 0 < f < 1; per class round(f * n) images (clamped to 1..n-1) are train.
        size_jitter: 0..0.5; each image's width and height are independently scaled by
            U(1 - j, 1 + j), so readers meet non-square images of varying size.
        num_distractors: inclusive (low, high) count per image, within 0..8.
        box_fraction: range of the object's box area as a fraction of the image.
        num_workers: 0 renders in this process; > 0 uses that many processes (same bytes).
        overwrite: replace an earlier synthetic dataset in ``out_dir``. Without it a
            non-empty ``out_dir`` is an error, unless it already holds a complete dataset
            made with identical parameters, which is then reused as is.
        progress: show a tqdm progress bar.
    Returns:
        ``out_dir`` as a Path.
    """
    params = _validate(num_classes, images_per_class, size, seed, train_fraction, size_jitter,
                       num_distractors, box_fraction)
    _check_int("num_workers", num_workers, 0)
    root = Path(out_dir)
    specs = class_specs(params["num_classes"])
    if _prepare_dir(root, params, overwrite):
        logger.info("%s already holds this synthetic dataset; reusing it", root)
        return root
    _write_info(root, params, specs, complete=False)
    jobs, rel, labels, flags = [], [], [], []
    digits = max(4, len(str(images_per_class)))
    for spec in specs:
        (root / "images" / spec.folder).mkdir(parents=True, exist_ok=True)
        (root / "segmentations" / spec.folder).mkdir(parents=True, exist_ok=True)
        flags += _train_flags(params["seed"], spec.index, images_per_class, params["train_fraction"])
        for j in range(images_per_class):
            stem = f"{spec.name}_{j + 1:0{digits}d}"
            jobs.append((str(root), spec, j, stem, params))
            rel.append(f"{spec.folder}/{stem}.jpg")
            labels.append(spec.index)
    logger.info("writing %d synthetic images (%d classes) to %s", len(jobs), len(specs), root)
    results = []
    with tqdm(total=len(jobs), desc="synthetic CUB", unit="img", disable=not progress) as bar:
        if num_workers == 0:
            for job in jobs:
                results.append(_generate_one(job))
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(num_workers, mp_context=ctx) as pool:
                for r in pool.map(_generate_one, jobs, chunksize=8):
                    results.append(r)
                    bar.update()
    _write_metadata(root, specs, params, rel, labels, flags, [r[2] for r in results])
    _write_info(root, params, specs, complete=True,
                counts={"num_images": len(jobs), "num_train": sum(flags)})
    return root
