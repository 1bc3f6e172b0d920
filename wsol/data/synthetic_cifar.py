"""A synthetic CIFAR-10-format dataset: the synthetic CUB generator's classes at 32 x 32.

CIFAR-10 cannot be downloaded here; the robustness tools still need a 10-class, 32 px set in
CIFAR-10's exact file format to run end to end. Each image is one :func:`render_sample` of the
synthetic CUB generator (class = shape x texture, cluttered background, distractors), rendered
at ``render_size`` and shrunk to 32 px with area interpolation, as CIFAR's images were shrunk
from photographs. Objects fill more of the frame than in the CUB-format set (box fraction
0.25-0.65, at most 2 distractors), as CIFAR's objects do.

Written layout (read by :func:`wsol.data.robustness.read_cifar10`)::

    <out>/cifar-10-batches-py/data_batch_1..5   dicts {b"data": uint8 (N, 3072) R,G,B planes,
                                                 b"labels": [int], b"batch_label", b"filenames"}
    <out>/cifar-10-batches-py/test_batch
    <out>/cifar-10-batches-py/batches.meta      {b"label_names": [...10 names]}
    <out>/cifar-10-batches-py/synthetic_info.json

The same arguments give byte-identical files (every image has its own seeded generator).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .synthetic_render import class_specs, image_rng, render_sample

__all__ = ["make_synthetic_cifar", "SYNTHETIC_CIFAR_VERSION"]

SYNTHETIC_CIFAR_VERSION = 1
_TEST_OFFSET = 1_000_000  # test images use their own generators, disjoint from train


def _render(specs, seed: int, index: int, render_size: int, size: int) -> np.ndarray:
    spec = specs[index % len(specs)]
    rng = image_rng(seed, spec.index, index // len(specs))
    s = render_sample(spec, rng, render_size, render_size, num_distractors=(0, 2), box_fraction=(0.25, 0.65))
    return cv2.resize(s.image, (size, size), interpolation=cv2.INTER_AREA)


def _split(specs, seed: int, n: int, offset: int, render_size: int, progress: bool, desc: str):
    """n images, classes interleaved (image i has class i mod C): uint8 (n, 32, 32, 3), labels (n,)."""
    images = np.stack([_render(specs, seed, offset + i, render_size, 32)
                       for i in tqdm(range(n), desc=desc, unit="img", disable=not progress)])
    labels = np.arange(offset, offset + n) % len(specs)
    return images, labels


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, name: str) -> None:
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    record = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels], b"data": data,
              b"filenames": [f"{name.replace(' ', '_')}_{i:05d}.png".encode() for i in range(len(images))]}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(record, fh, protocol=2)
    tmp.replace(path)


def make_synthetic_cifar(out_dir, train_per_class: int = 500, test_per_class: int = 100, seed: int = 0,
                         render_size: int = 64, overwrite: bool = False, progress: bool = True) -> Path:
    """Write a 10-class synthetic set in CIFAR-10's python layout; returns the batches folder.

    ``train_per_class`` images per class go to data_batch_1..5 (split evenly, classes
    interleaved), ``test_per_class`` to test_batch. An existing complete set with the same
    parameters is reused; one with other parameters raises FileExistsError unless ``overwrite``.
    """
    for name, v, lo in (("train_per_class", train_per_class, 5), ("test_per_class", test_per_class, 1),
                        ("render_size", render_size, 32)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    folder = Path(out_dir) / "cifar-10-batches-py"
    params = {"version": SYNTHETIC_CIFAR_VERSION, "train_per_class": train_per_class,
              "test_per_class": test_per_class, "seed": seed, "render_size": render_size}
    info_path = folder / "synthetic_info.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        if info.get("params") == params and info.get("complete"):
            return folder
        if not overwrite:
            raise FileExistsError(f"{folder} holds another synthetic CIFAR set ({info.get('params')}); "
                                  "pass overwrite=True (--overwrite) to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    specs = class_specs(10)
    info_path.write_text(json.dumps({"params": params, "complete": False}))
    images, labels = _split(specs, seed, 10 * train_per_class, 0, render_size, progress, "train")
    for k, part in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        _write_batch(folder / f"data_batch_{k}", images[part], labels[part], f"training batch {k} of 5")
    images, labels = _split(specs, seed, 10 * test_per_class, _TEST_OFFSET, render_size, progress, "test")
    _write_batch(folder / "test_batch", images, labels, "testing batch 1 of 1")
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [s.name.encode() for s in specs], b"num_vis": 3072,
                     b"num_cases_per_batch": 10 * train_per_class // 5}, fh, protocol=2)
    info_path.write_text(json.dumps({"params": params, "complete": True,
                                     "classes": [s.name for s in specs],
                                     "note": "synthetic stand-in in CIFAR-10's format; not CIFAR-10"}, indent=2))
    return folder
