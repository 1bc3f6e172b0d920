"""Synthetic stand-ins for ILSVRC (ImageNet-1K) and OpenImages30k in wsolevaluation's layout.

Offline test and demo data: every file is where wsolevaluation expects it (REFERENCE
§12.1) and every text file follows its conventions: comma separated, no header, no spaces,
**no trailing newline**, empty (0 bytes) where wsolevaluation ships an empty file. Images
come from the synthetic CUB renderer (:mod:`wsol.data.synthetic_render`: class = shape
family x texture family on a cluttered background) extended to **1-3 objects per image**
(:mod:`wsol.data.synthetic_scene`),
all of the image's class, each posed inside its own cell of the image (so objects never
overlap). Image sizes vary per image (``size`` scaled by ``U(1 - size_jitter, 1 + size_jitter)``
independently in width and height), so box rescaling is exercised.

ILSVRC (``make_synthetic_ilsvrc``; wsolevaluation: ``--data_root out_root/images``,
``--metadata_root out_root/metadata/ILSVRC``)::

    images/ILSVRC/train/<wnid>/<wnid>_<n>.JPEG                 train (train-weaksup)
    images/ILSVRC/val2/<k>/<n>.jpeg                            val (ImageNetV2 style), k = label
    images/ILSVRC/val/ILSVRC2012_val_%08d.JPEG                 test (official-val style)
    metadata/ILSVRC/{train,val,test}/image_ids.txt             <image_id>
                                     class_labels.txt          <image_id>,<label>
                                     image_sizes.txt           <image_id>,<W>,<H>  (EMPTY for train)
                                     localization.txt          <image_id>,<x0>,<y0>,<x1>,<y1>
                                                               one line per box (EMPTY for train)
    metadata/ILSVRC/train/image_ids_proxy.txt                  a per-class subset of train
    metadata/ILSVRC/synthetic_info.json, images/ILSVRC/synthetic_info.json

  Image ids are relative to the image root ``out_root/images/ILSVRC``. The classes are the
  first ``num_classes`` of the 1000 ImageNet-1K WordNet ids in sorted order (read from
  timm's ``imagenet_synsets.txt``); label k = the k-th of them (sorted-WNID order, as
  wsolevaluation). Boxes are integer inclusive corners (``x1 <= W - 1``), the tight box of
  each object's mask (coverage >= 0.5); val/test images hold 1-3 boxes each.

OpenImages30k (``make_synthetic_openimages``)::

    images/OpenImages/{train,val,test}/<mid>/<16 hex>.jpg                         images
    images/OpenImages/{val,test}/<mid>/<16 hex>_m<mid>_<8 hex>.png                one per instance
    images/OpenImages/{val,test}/<mid>/<16 hex>_ignore.png                        one per image
    metadata/OpenImages/{train,val,test}/image_ids.txt, class_labels.txt
                                         image_sizes.txt     EMPTY for every split
                                         localization.txt    <image_id>,<mask_path>,<ignore_path>
                                                             (EMPTY for train)
    metadata/OpenImages/synthetic_info.json, images/OpenImages/synthetic_info.json

  Image ids and mask paths are both relative to ``out_root/images/OpenImages``: that folder
  is the image root and the mask root (wsolevaluation: ``--data_root out_root/images
  --mask_root out_root/images``, which append ``OpenImages``). One localization line per
  instance mask; the ignore path is on an image's **first** line only, later lines end with
  an empty third field. Instance masks are 1-bit grayscale PNGs at the image's resolution;
  ignore masks are 8-bit RGB PNGs (0 or 255), like the released files. The ignore region is
  either a margin box around every instance minus the ground-truth foreground, or the box of
  one **unlabelled** instance of the class (drawn but given no mask) minus the foreground,
  or, for about 15 % of images, empty. The classes are fake Freebase MIDs (``0dq_7f``-style,
  one with ``_`` among the first ones so Python's ``sorted()`` byte order is exercised);
  label = index of the folder MID in ``sorted()`` order.

Up to 256 classes use the CUB renderer's class definitions; 257-1000 classes add two axes
of this module (a solid rim and a round hole: ``Rimmed_``, ``Holed_``, ``Rimmed_Holed_``).

Determinism: every image has its own ``numpy.random.Generator`` seeded from (seed, dataset,
split, class, index), so the same arguments give byte-identical files whatever the worker
count. Writing is atomic: the dataset is built in a temporary folder inside ``out_root``
and renamed into place; ``synthetic_info.json`` (generator, version, parameters, classes,
counts) marks a complete dataset, and a complete dataset with the same parameters is reused
as is. ILSVRC and OpenImages may share one ``out_root``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .imagenet_classes import ilsvrc_class_names, ilsvrc_wnids
from .synthetic import _check_range
from .synthetic_render import _MIN_SIZE_FOR_BANDS, _check_int
from .synthetic_scene import (MAX_CLASSES, MAX_OBJECTS, ObjectClass, SyntheticScene, _tight_xyxy, object_classes,
                              render_scene)

__all__ = [
    "GENERATOR_VERSION",
    "MAX_CLASSES",
    "MAX_OBJECTS",
    "ObjectClass",
    "SyntheticScene",
    "object_classes",
    "imagenet_synsets",
    "imagenet_lemmas",
    "openimages_mids",
    "render_scene",
    "make_synthetic_ilsvrc",
    "make_synthetic_openimages",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0.0"
JPEG_QUALITY = 95
_MIN_SIZE = 48
_MIN_JITTERED = 40
_INFO_NAME = "synthetic_info.json"
_SALT = 0x3E7A  # separates this generator's streams from the CUB generator's
_DATASET_CODE = {"ILSVRC": 1, "OpenImages": 2}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
SPLITS = ("train", "val", "test")
_EMPTY_IGNORE_P = 0.15  # OpenImages val/test: share of images with an empty ignore mask
_UNLABELLED_P = 0.30  # ... whose ignore region is an unlabelled instance
_PROXY_FRACTION = 0.2  # ILSVRC image_ids_proxy.txt: this share of each class (at least 1)

# --------------------------------------------------------------------------- class ids


def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ImageNet-1K WordNet ids in sorted order (label k = the k-th): the class table's."""
    return ilsvrc_wnids()


@functools.lru_cache(maxsize=1)
def imagenet_lemmas() -> dict[str, str]:
    """WordNet id -> lemma (e.g. ``n01440764`` -> ``tench, Tinca tinca``) for the 1000 classes."""
    return dict(zip(ilsvrc_wnids(), ilsvrc_class_names()))


_MID_ALPHABET = "0123456789bcdfghjklmnpqrstvwxyz_"  # Freebase MID characters
_MID_HEAD = ("0dq_7f", "0dq8mz", "0dqk3w")  # '_' sorts after the digits, before the letters


def openimages_mids(num_classes: int) -> list[str]:
    """``num_classes`` fake Freebase MIDs (no ``/m/``) in Python ``sorted()`` order; label k
    is the k-th. The set for n classes is a subset of the set for n + 1; the first ones
    include ``0dq_7f``, ``0dq8mz``, ``0dqk3w`` (sorted: ``0dq8mz < 0dq_7f < 0dqk3w``)."""
    _check_int("num_classes", num_classes, 1, MAX_CLASSES)
    mids = list(_MID_HEAD[:num_classes])
    seen = set(mids)
    rng = np.random.default_rng([_SALT, 0x01D5])
    while len(mids) < num_classes:
        n = int(rng.integers(4, 7))
        chars = [_MID_ALPHABET[int(rng.integers(len(_MID_ALPHABET) - 1))]]
        chars += [_MID_ALPHABET[int(i)] for i in rng.integers(len(_MID_ALPHABET), size=n - 1)]
        mid = "0" + "".join(chars)
        if mid not in seen:
            seen.add(mid)
            mids.append(mid)
    return sorted(mids)


# --------------------------------------------------------------------------- validation


def _size_pair(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    if isinstance(size, str) or not (isinstance(size, Sequence) and len(size) == 2):
        raise ValueError(f"size must be an int or a (width, height) pair, got {size!r}")
    for s in size:
        _check_int("size", s, _MIN_SIZE)
    return int(size[0]), int(size[1])


def _validate(dataset: str, num_classes, images_per_class, val_per_class, test_per_class, size,
              seed, size_jitter, objects_per_image, num_distractors, box_fraction) -> dict:
    """Check every argument; return the normalised parameters recorded in the info file."""
    _check_int("num_classes", num_classes, 1, MAX_CLASSES)
    _check_int("images_per_class", images_per_class, 1)
    _check_int("val_per_class", val_per_class, 1)
    _check_int("test_per_class", test_per_class, 1)
    _check_int("seed", seed, 0)
    size = _size_pair(size)
    if isinstance(size_jitter, bool) or not isinstance(size_jitter, (int, float)) \
            or not 0 <= size_jitter <= 0.5:
        raise ValueError(f"size_jitter must be a number in [0, 0.5], got {size_jitter!r}")
    smallest = max(_MIN_JITTERED, math.floor(min(size) * (1 - size_jitter)))
    if num_classes > 64 and smallest < _MIN_SIZE_FOR_BANDS:
        raise ValueError(f"num_classes={num_classes} > 64 uses texture frequency bands, which need "
                         f"images of at least {_MIN_SIZE_FOR_BANDS} px: min(size) * (1 - size_jitter) "
                         f"must be >= {_MIN_SIZE_FOR_BANDS}, got size {size}, size_jitter {size_jitter}")
    return {
        "dataset": dataset, "num_classes": int(num_classes),
        "images_per_class": int(images_per_class), "val_per_class": int(val_per_class),
        "test_per_class": int(test_per_class), "size": list(size), "seed": int(seed),
        "size_jitter": float(size_jitter),
        "objects_per_image": list(_check_range("objects_per_image", objects_per_image, 1,
                                               MAX_OBJECTS, int)),
        "num_distractors": list(_check_range("num_distractors", num_distractors, 0, 8, int)),
        "box_fraction": list(_check_range("box_fraction", box_fraction, 0.0, 0.8)),
        "jpeg_quality": JPEG_QUALITY,
    }


# --------------------------------------------------------------------------- plan and jobs


def _rng(params: dict, split: str, label: int, j: int, stream: int) -> np.random.Generator:
    """stream 0 renders the image; stream 1 plans it (size, object count, names)."""
    return np.random.default_rng([_SALT, params["seed"], _DATASET_CODE[params["dataset"]],
                                  _SPLIT_CODE[split], label, j, stream])


def _plan_size(rng: np.random.Generator, params: dict) -> tuple[int, int]:
    jit = params["size_jitter"]
    if jit == 0:
        return tuple(params["size"])
    w, h = (max(_MIN_JITTERED, round(s * rng.uniform(1 - jit, 1 + jit))) for s in params["size"])
    return w, h


def _plan(params: dict, split: str, label: int, j: int) -> dict:
    rng = _rng(params, split, label, j, 1)
    width, height = _plan_size(rng, params)
    lo, hi = params["objects_per_image"]
    return {"split": split, "label": label, "j": j, "width": width, "height": height,
            "objects": int(rng.integers(lo, hi + 1)), "rng": rng}


@functools.lru_cache(maxsize=4)
def _classes_cached(num_classes: int) -> tuple[ObjectClass, ...]:
    return tuple(object_classes(num_classes))


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"{path}: could not write JPEG")


def _write_png(path: Path, img: np.ndarray, bilevel: bool = False) -> None:
    flags = [cv2.IMWRITE_PNG_BILEVEL, 1] if bilevel else []
    if not cv2.imwrite(str(path), img, flags):
        raise OSError(f"{path}: could not write PNG")


def _scene(job: dict, num_unlabelled: int = 0) -> SyntheticScene:
    params = job["params"]
    cls = _classes_cached(params["num_classes"])[job["label"]]
    return render_scene(cls, _rng(params, job["split"], job["label"], job["j"], 0),
                        job["width"], job["height"], job["objects"], num_unlabelled,
                        num_distractors=tuple(params["num_distractors"]),
                        box_fraction=tuple(params["box_fraction"]))


def _ilsvrc_job(job: dict) -> list[tuple[int, int, int, int]]:
    """Render and write one ILSVRC image; return its boxes."""
    scene = _scene(job)
    _write_jpeg(Path(job["root"], job["image_id"]), scene.image)
    return scene.boxes


def _expand(box, margin_rng: np.random.Generator, width: int, height: int) -> tuple[int, ...]:
    x0, y0, x1, y1 = box
    mx = max(2, round(margin_rng.uniform(0.1, 0.25) * (x1 - x0 + 1)))
    my = max(2, round(margin_rng.uniform(0.1, 0.25) * (y1 - y0 + 1)))
    return max(0, x0 - mx), max(0, y0 - my), min(width - 1, x1 + mx), min(height - 1, y1 + my)


def _openimages_job(job: dict) -> bool:
    """Render and write one OpenImages image (+ masks and ignore for val/test); return
    whether its ignore mask is non-empty."""
    root = Path(job["root"])
    kind = job.get("ignore")
    scene = _scene(job, 1 if kind == "unlabelled" else 0)
    _write_jpeg(root / job["image_id"], scene.image)
    if kind is None:
        return False
    for mask, rel in zip(scene.masks, job["masks"]):
        _write_png(root / rel, mask.astype(np.uint8) * 255, bilevel=True)
    ignore = np.zeros((job["height"], job["width"]), bool)
    rng = np.random.default_rng([_SALT, job["params"]["seed"], 0x16, _SPLIT_CODE[job["split"]],
                                 job["label"], job["j"]])
    if kind == "unlabelled":
        regions = [_tight_xyxy(m) for m in scene.unlabelled]
    elif kind == "boxes":
        regions = scene.boxes
    else:
        regions = []
    for box in regions:
        x0, y0, x1, y1 = _expand(box, rng, job["width"], job["height"])
        ignore[y0:y1 + 1, x0:x1 + 1] = True
    for mask in scene.masks:
        ignore &= ~mask
    _write_png(root / job["ignore_path"], np.repeat(ignore[..., None], 3, 2).astype(np.uint8) * 255)
    return bool(ignore.any())


def _run_jobs(fn, jobs: list[dict], num_workers: int, progress: bool, desc: str) -> list:
    results = []
    with tqdm(total=len(jobs), desc=desc, unit="img", disable=not progress) as bar:
        if num_workers == 0:
            for job in jobs:
                results.append(fn(job))
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(num_workers, mp_context=ctx) as pool:
                for r in pool.map(fn, jobs, chunksize=8):
                    results.append(r)
                    bar.update()
    return results


# --------------------------------------------------------------------------- files


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    """wsolevaluation's convention: '\\n' between lines, none at the end; 0 bytes if empty."""
    path.write_text("\n".join(lines), encoding="utf-8", newline="\n")


def _write_split(meta_dir: Path, split: str, ids: list[str], labels: list[int],
                 sizes: list[tuple[int, int]] | None, loc_lines: list[str]) -> None:
    d = meta_dir / split
    d.mkdir(parents=True, exist_ok=True)
    _write_lines(d / "image_ids.txt", ids)
    _write_lines(d / "class_labels.txt", [f"{i},{c}" for i, c in zip(ids, labels)])
    _write_lines(d / "image_sizes.txt", [f"{i},{w},{h}" for i, (w, h) in zip(ids, sizes)] if sizes else [])
    _write_lines(d / "localization.txt", loc_lines)


def _info_text(info: dict) -> str:
    return json.dumps(info, indent=2, sort_keys=True) + "\n"


def _read_info(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _targets(root: Path, dataset: str) -> tuple[Path, Path]:
    return root / "images" / dataset, root / "metadata" / dataset


def _prepare(root: Path, dataset: str, params: dict, overwrite: bool) -> dict | None:
    """Return the info of a complete dataset with these parameters to reuse, else None after
    making sure the two target folders may be (re)written."""
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root}: exists and is not a directory")
    targets = [p for p in _targets(root, dataset) if p.exists() or p.is_symlink()]
    if not targets:
        return None
    infos = [_read_info(p / _INFO_NAME) if p.is_dir() else None for p in targets]
    generated = all(i is not None and i.get("generator") == __name__ for i in infos)
    meta_info = _read_info(_targets(root, dataset)[1] / _INFO_NAME)
    complete = (len(targets) == 2 and generated and meta_info is not None and meta_info.get("complete")
                and meta_info.get("version") == GENERATOR_VERSION)
    if not overwrite:
        if complete and meta_info.get("parameters") == params:
            return meta_info
        what = ("holds a complete synthetic dataset made with other parameters or another "
                "generator version" if complete else "holds files that are not a complete synthetic dataset")
        raise FileExistsError(f"{root}: {' and '.join(str(t) for t in targets)} already exist and "
                              f"{what}; pass overwrite=True (--overwrite) or use another out_root")
    if not generated:
        raise FileExistsError(f"{root}: {' and '.join(str(t) for t in targets)} exist without this "
                              f"generator's {_INFO_NAME}, so they were not written by it; refusing to "
                              "delete anything there")
    return None


def _commit(root: Path, tmp: Path, dataset: str) -> None:
    """Replace the dataset's two folders by the freshly built ones (metadata last: its info
    file marks the dataset complete)."""
    for target in _targets(root, dataset):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for target in _targets(root, dataset):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / target.relative_to(root), target)


def _finish_info(info: dict, root: Path, dataset: str, reused: bool) -> dict:
    images, meta = _targets(root, dataset)
    paths = {"out_root": str(root), "data_root": str(root / "images"), "image_root": str(images),
             "metadata_root": str(meta), "info": str(meta / _INFO_NAME)}
    if dataset == "OpenImages":
        paths["mask_root"] = str(images)
    return {**info, "paths": paths, "reused": reused}


def _build(out_root, dataset: str, params: dict, classes_info: list[dict], overwrite: bool,
           num_workers: int, progress: bool, writer) -> dict:
    _check_int("num_workers", num_workers, 0)
    root = Path(out_root)
    cached = _prepare(root, dataset, params, overwrite)
    if cached is not None:
        logger.info("%s already holds this synthetic %s dataset; reusing it", root, dataset)
        return _finish_info(cached, root, dataset, reused=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".synthetic-{dataset}-", dir=root))
    try:
        img_root, meta_root = _targets(tmp, dataset)
        img_root.mkdir(parents=True)
        meta_root.mkdir(parents=True)
        counts = writer(img_root, meta_root, num_workers, progress)
        info = {"generator": __name__, "dataset": dataset, "version": GENERATOR_VERSION,
                "complete": True, "parameters": params, "classes": classes_info, "splits": counts,
                "layout": {"image_root": f"images/{dataset}", "metadata_root": f"metadata/{dataset}",
                           **({"mask_root": f"images/{dataset}"} if dataset == "OpenImages" else {})}}
        text = _info_text(info)
        for d in (img_root, meta_root):
            (d / _INFO_NAME).write_text(text, encoding="utf-8", newline="\n")
        _commit(root, tmp, dataset)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _finish_info(info, root, dataset, reused=False)


# --------------------------------------------------------------------------- ILSVRC


def make_synthetic_ilsvrc(out_root, num_classes: int = 10, images_per_class: int = 20,
                          size: int | tuple[int, int] = 96, seed: int = 0, *,
                          val_per_class: int = 2, test_per_class: int = 5,
                          size_jitter: float = 0.3, objects_per_image: tuple[int, int] = (1, 3),
                          num_distractors: tuple[int, int] = (1, 3),
                          box_fraction: tuple[float, float] = (0.25, 0.6),
                          num_workers: int = 0, overwrite: bool = False,
                          progress: bool = True) -> dict:
    """Write a synthetic ILSVRC in wsolevaluation's layout (module docstring) under ``out_root``.

    Args:
        out_root: data root; writes ``images/ILSVRC`` and ``metadata/ILSVRC`` there.
        num_classes: 1..1000; the classes are the first ``num_classes`` sorted ImageNet WNIDs.
            More than 64 needs images of at least 64 px after jitter.
        images_per_class: >= 1 train images per class (labels only, no boxes).
        size: nominal (width, height) or side, each >= 48 px.
        seed: non-negative int; the same arguments give byte-identical files.
        val_per_class, test_per_class: >= 1 images per class for ``val`` (``val2/<k>/<n>.jpeg``)
            and ``test`` (``val/ILSVRC2012_val_%08d.JPEG``, numbered in shuffled class order).
        size_jitter: 0..0.5; width and height are each scaled by U(1 - j, 1 + j) (>= 40 px).
        objects_per_image: inclusive (low, high) within 1..3; one box per object.
        num_distractors: inclusive (low, high) within 0..8 clutter shapes per image.
        box_fraction: range of an object's box area as a fraction of its cell's area.
        num_workers: 0 renders in this process; > 0 uses that many processes (same bytes).
        overwrite: replace an earlier synthetic ILSVRC in ``out_root``. Without it existing
            ``images/ILSVRC`` or ``metadata/ILSVRC`` is an error, unless they hold a complete
            dataset made with identical parameters, which is then reused as is.
        progress: show a tqdm progress bar.
    Returns:
        The info dict (as in ``metadata/ILSVRC/synthetic_info.json``: parameters, classes with
        ``wnid`` / ``name`` / ``appearance``, per-split counts) plus ``paths`` (absolute
        ``image_root``, ``metadata_root``, ``data_root``, ...) and ``reused``.
    """
    params = _validate("ILSVRC", num_classes, images_per_class, val_per_class, test_per_class,
                       size, seed, size_jitter, objects_per_image, num_distractors, box_fraction)
    wnids = imagenet_synsets()[:params["num_classes"]]
    lemmas = imagenet_lemmas()
    appearance = object_classes(params["num_classes"])
    classes_info = [{"label": k, "wnid": w, "name": lemmas.get(w, ""), "appearance": appearance[k].name}
                    for k, w in enumerate(wnids)]

    def writer(img_root: Path, meta_root: Path, num_workers: int, progress: bool) -> dict:
        n_cls = params["num_classes"]
        plans: dict[str, list[dict]] = {s: [] for s in SPLITS}
        for k, wnid in enumerate(wnids):
            per = params["images_per_class"]
            numbers = np.random.default_rng([_SALT, params["seed"], 0x7A1, k]).choice(
                max(50_000, 10 * per), per, replace=False) + 1
            for j, num in enumerate(sorted(int(v) for v in numbers)):
                plans["train"].append({**_plan(params, "train", k, j),
                                       "image_id": f"train/{wnid}/{wnid}_{num}.JPEG"})
            for j in range(params["val_per_class"]):
                plans["val"].append({**_plan(params, "val", k, j), "image_id": f"val2/{k}/{j}.jpeg"})
        order = np.random.default_rng([_SALT, params["seed"], 0x7E5]).permutation(
            n_cls * params["test_per_class"])
        for number, slot in enumerate(order, start=1):
            k, j = divmod(int(slot), params["test_per_class"])
            plans["test"].append({**_plan(params, "test", k, j),
                                  "image_id": f"val/ILSVRC2012_val_{number:08d}.JPEG"})
        folders = {str(Path(p["image_id"]).parent) for s in SPLITS for p in plans[s]}
        for folder in sorted(folders):
            (img_root / folder).mkdir(parents=True, exist_ok=True)
        jobs = [{k: v for k, v in p.items() if k != "rng"} | {"root": str(img_root), "params": params}
                for s in SPLITS for p in plans[s]]
        boxes = iter(_run_jobs(_ilsvrc_job, jobs, num_workers, progress, "synthetic ILSVRC"))
        counts = {}
        for split in SPLITS:
            ids = [p["image_id"] for p in plans[split]]
            labels = [p["label"] for p in plans[split]]
            split_boxes = [next(boxes) for _ in ids]
            if split == "train":
                _write_split(meta_root, split, ids, labels, None, [])
                per_class = {}
                for i, c in zip(ids, labels):
                    per_class.setdefault(c, []).append(i)
                proxy = [i for c in sorted(per_class) for i in
                         per_class[c][:max(1, math.floor(_PROXY_FRACTION * len(per_class[c]) + 0.5))]]
                _write_lines(meta_root / split / "image_ids_proxy.txt", proxy)
                counts[split] = {"images": len(ids), "boxes": 0, "proxy_images": len(proxy)}
                continue
            sizes = [(p["width"], p["height"]) for p in plans[split]]
            loc = [f"{i},{x0},{y0},{x1},{y1}" for i, bs in zip(ids, split_boxes) for x0, y0, x1, y1 in bs]
            _write_split(meta_root, split, ids, labels, sizes, loc)
            counts[split] = {"images": len(ids), "boxes": len(loc),
                             "images_with_several_boxes": sum(len(b) > 1 for b in split_boxes)}
        return counts

    return _build(out_root, "ILSVRC", params, classes_info, overwrite, num_workers, progress, writer)


# --------------------------------------------------------------------------- OpenImages


def make_synthetic_openimages(out_root, num_classes: int = 10, images_per_class: int = 20,
                              size: int | tuple[int, int] = 96, seed: int = 0, *,
                              val_per_class: int = 3, test_per_class: int = 5,
                              size_jitter: float = 0.3, objects_per_image: tuple[int, int] = (1, 3),
                              num_distractors: tuple[int, int] = (1, 3),
                              box_fraction: tuple[float, float] = (0.25, 0.6),
                              num_workers: int = 0, overwrite: bool = False,
                              progress: bool = True) -> dict:
    """Write a synthetic OpenImages30k in wsolevaluation's layout (module docstring).

    ``out_root/images/OpenImages`` is both the image root and the mask root: the paths in
    ``localization.txt`` are relative to it (wsolevaluation: ``data_root = mask_root =
    out_root/images``). Every val/test image has one PNG per instance and exactly one
    ``<imageid>_ignore.png``; about 15 % of the ignore masks are empty.

    Arguments as :func:`make_synthetic_ilsvrc` (``num_classes`` 1..1000 fake MIDs, see
    :func:`openimages_mids`). Returns the info dict plus ``paths`` (with ``mask_root``)
    and ``reused``.
    """
    params = _validate("OpenImages", num_classes, images_per_class, val_per_class, test_per_class,
                       size, seed, size_jitter, objects_per_image, num_distractors, box_fraction)
    mids = openimages_mids(params["num_classes"])
    appearance = object_classes(params["num_classes"])
    classes_info = [{"label": k, "mid": m, "appearance": appearance[k].name} for k, m in enumerate(mids)]

    def writer(img_root: Path, meta_root: Path, num_workers: int, progress: bool) -> dict:
        per_split = {"train": params["images_per_class"], "val": params["val_per_class"],
                     "test": params["test_per_class"]}
        plans: dict[str, list[dict]] = {s: [] for s in SPLITS}
        used: set[str] = set()
        for split in SPLITS:
            for k, mid in enumerate(mids):
                (img_root / split / mid).mkdir(parents=True, exist_ok=True)
                class_plans = []
                for j in range(per_split[split]):
                    plan = _plan(params, split, k, j)
                    rng = plan.pop("rng")
                    image_hex = rng.bytes(8).hex()
                    while image_hex in used:
                        image_hex = rng.bytes(8).hex()
                    used.add(image_hex)
                    plan["image_id"] = f"{split}/{mid}/{image_hex}.jpg"
                    if split != "train":
                        u = rng.random()
                        plan["ignore"] = ("empty" if u < _EMPTY_IGNORE_P else
                                          "unlabelled" if u < _EMPTY_IGNORE_P + _UNLABELLED_P else "boxes")
                        suffixes: list[str] = []
                        while len(suffixes) < plan["objects"]:
                            s = rng.bytes(4).hex()
                            if s not in suffixes:
                                suffixes.append(s)
                        plan["masks"] = [f"{split}/{mid}/{image_hex}_m{mid}_{s}.png" for s in suffixes]
                        plan["ignore_path"] = f"{split}/{mid}/{image_hex}_ignore.png"
                    class_plans.append(plan)
                plans[split] += sorted(class_plans, key=lambda p: p["image_id"])
        jobs = [p | {"root": str(img_root), "params": params} for s in SPLITS for p in plans[s]]
        flags = iter(_run_jobs(_openimages_job, jobs, num_workers, progress, "synthetic OpenImages"))
        counts = {}
        for split in SPLITS:
            ids = [p["image_id"] for p in plans[split]]
            labels = [p["label"] for p in plans[split]]
            nonempty = [next(flags) for _ in ids]
            loc = [] if split == "train" else [
                f"{p['image_id']},{m},{p['ignore_path'] if n == 0 else ''}"
                for p in plans[split] for n, m in enumerate(p["masks"])]
            _write_split(meta_root, split, ids, labels, None, loc)
            counts[split] = {"images": len(ids), "masks": len(loc)}
            if split != "train":
                counts[split] |= {"images_with_several_masks": sum(len(p["masks"]) > 1 for p in plans[split]),
                                  "empty_ignore_masks": len(ids) - sum(nonempty)}
        return counts

    return _build(out_root, "OpenImages", params, classes_info, overwrite, num_workers, progress, writer)
