"""Offline regeneration of CIFAR-10-C from a CIFAR-10-format test split (REFERENCE.md §8).

:func:`regenerate_cifar10c` applies :mod:`wsol.data.corruptions` (CIFAR-10-C constants) to every
test image at the 5 severities and writes the released layout (``<corruption>.npy`` uint8
(5*N, 32, 32, 3), severity blocks 1..5, ``labels.npy``) plus ``REGENERATED.json``, which labels
the folder "CIFAR-10-C-regenerated (not bit-identical)" and lists the approximations used.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .corruptions import APPROXIMATIONS, CORRUPTION_FUNCTIONS, SEVERITIES, _check_name, _pick
from .robustness import CIFAR10C_CORRUPTIONS, CIFAR10C_SEVERITIES, DatasetFormatError, available_cifar10c, read_cifar10

__all__ = ["REGENERATED_LABEL", "REGENERATED_FILE", "regenerate_cifar10c", "is_regenerated"]

log = logging.getLogger(__name__)

REGENERATED_LABEL = "CIFAR-10-C-regenerated (not bit-identical)"
REGENERATED_FILE = "REGENERATED.json"
RANDOMNESS_NOTE = ("numpy Generators seeded per (seed, corruption index, severity, image index) replace "
                   "the original's global RandomState: same distributions, different draws")


def is_regenerated(root: str | os.PathLike) -> dict | None:
    """The ``REGENERATED.json`` record under ``root``, or None for a folder without one (the release)."""
    path = Path(root) / REGENERATED_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DatasetFormatError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(record, dict):
        raise DatasetFormatError(f"{path}: expected a JSON object, got {type(record).__name__}")
    return record


def _check_severities(severities: Sequence[int]) -> None:
    for s in severities:
        _pick(SEVERITIES, s)
    if tuple(sorted(int(s) for s in severities)) != SEVERITIES:
        raise ValueError(f"severities must be all of {SEVERITIES}: the released layout stores 5 severity "
                         f"blocks per file, got {tuple(severities)}")


def _atomic_save(path: Path, array: np.ndarray) -> None:
    """np.save to a hidden temp file beside ``path``, then rename over it."""
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def _start_record(out: Path, names: list[str], seed: int, n: int, source: str, overwrite: bool) -> dict:
    """The REGENERATED.json record to extend, after checking the files already in ``out``."""
    previous = is_regenerated(out)
    present = available_cifar10c(out)
    if present and previous is None:
        raise ValueError(f"{out} holds CIFAR-10-C files ({', '.join(present)}) but no {REGENERATED_FILE}: "
                         "it looks like the released set; write the regenerated set to another folder")
    kept = [c for c in present if not (overwrite and c in names)]
    for c in kept:
        rows = np.load(out / f"{c}.npy", mmap_mode="r").shape[0]
        if rows != CIFAR10C_SEVERITIES * n:
            raise ValueError(f"{out / f'{c}.npy'} holds {rows} images, expected {CIFAR10C_SEVERITIES} x {n}; "
                             "pass overwrite=True (--overwrite) or use another folder")
    if kept and previous.get("seed") != seed:
        raise ValueError(f"{out} holds {', '.join(kept)} regenerated with seed {previous.get('seed')}, "
                         f"not {seed}; use that seed, overwrite=True (--overwrite) or another folder")
    return {"label": REGENERATED_LABEL, "constants": "CIFAR-10-C (make_cifar_c.py)", "seed": seed,
            "num_images": n, "severities": list(SEVERITIES), "corruptions": kept, "approximations": {},
            "randomness": RANDOMNESS_NOTE, "source": source}


def _write_record(out: Path, record: dict, name: str) -> None:
    done = set(record["corruptions"]) | {name}
    record["corruptions"] = [c for c in CIFAR10C_CORRUPTIONS if c in done]
    record["approximations"] = {c: APPROXIMATIONS[c] for c in record["corruptions"] if c in APPROXIMATIONS}
    tmp = out / f".{REGENERATED_FILE}.partial"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / REGENERATED_FILE)


def _corrupt_split(images: np.ndarray, name: str, seed: int, progress: bool) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (5N, H, W, 3), severity blocks 1..5; one Generator per image."""
    fn, index = CORRUPTION_FUNCTIONS[name], CIFAR10C_CORRUPTIONS.index(name)
    n = len(images)
    out = np.empty((CIFAR10C_SEVERITIES * n, *images.shape[1:]), np.uint8)
    with tqdm(total=len(out), desc=name, unit="img", disable=not progress) as bar:
        for s in SEVERITIES:
            for i, image in enumerate(images):
                out[(s - 1) * n + i] = fn(image, s, np.random.default_rng([seed, index, s, i]))
                bar.update(1)
    return out


def regenerate_cifar10c(cifar_root: str | os.PathLike, out_dir: str | os.PathLike,
                        corruptions: Sequence[str] | None = None, severities: Sequence[int] = SEVERITIES,
                        seed: int = 0, progress: bool = True, limit: int | None = None,
                        overwrite: bool = False) -> Path:
    """Write CIFAR-10-C from the CIFAR-10 test split (``read_cifar10(cifar_root, "test")``).

    Writes ``<corruption>.npy`` uint8 (5*N, 32, 32, 3) (severity blocks 1..5 in order, the
    released layout), ``labels.npy`` int64 (5*N,) and ``REGENERATED.json`` (label, constants,
    seed, corruptions, approximations, source) into ``out_dir``; returns ``out_dir``.
    ``limit`` keeps the first N test images. Each file is written to a temp file and renamed, so
    an interrupted run keeps the finished corruptions; present ones are skipped unless
    ``overwrite``. Image i at severity s of corruption k uses ``default_rng([seed, k, s, i])``,
    so ``limit`` and the corruption list do not change any image.
    """
    names = list(CIFAR10C_CORRUPTIONS if corruptions is None else corruptions)
    for name in names:
        _check_name(name)
    _check_severities(severities)
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of test images, got {limit}")
    test = read_cifar10(cifar_root, "test")
    images, labels = test.images[:limit], test.labels[:limit]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = _start_record(out, names, int(seed), len(labels), str(Path(cifar_root)), overwrite)
    _atomic_save(out / "labels.npy", np.tile(labels.astype(np.int64), CIFAR10C_SEVERITIES))
    for name in names:
        path = out / f"{name}.npy"
        if path.is_file() and not overwrite:
            log.info("%s exists; skipped (pass overwrite=True to regenerate it)", path)
        else:
            _atomic_save(path, _corrupt_split(images, name, int(seed), progress))
            log.info("wrote %s", path)
        _write_record(out, record, name)
    return out
