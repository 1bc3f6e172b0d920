"""Subsets of a split: wsolevaluation's proxy training list and seeded per-class fractions.

    proxy = proxy_split(train, metadata_dir)                 # train/image_ids_proxy.txt (ILSVRC)
    small = per_class_fraction(train, 0.1, seed=0)           # 10% of each class, at least one image
    rest, held = per_class_holdout(val, 0.2, seed=0)         # FSL: train on 80% of val, tune on 20%

A subset keeps the split's class list (so class ids and the classifier's size do not change) and
the samples' order. The seeded draws depend on (seed, class, the class's image ids) only, so the
same call on the same split gives the same images on every machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from .split import WSOLFormatError, WSOLSplit

__all__ = ["PROXY_FILE", "per_class_fraction", "per_class_holdout", "proxy_split"]

PROXY_FILE = "image_ids_proxy.txt"   # wsolevaluation: metadata/<Dataset>/train/image_ids_proxy.txt


def _with_samples(split: WSOLSplit, samples: list, suffix: str) -> WSOLSplit:
    return dataclasses.replace(split, samples=samples, name=f"{split.name}:{suffix}")


def _per_class_draw(split: WSOLSplit, fraction: float, seed: int, at_least: int) -> set[int]:
    """Indices of `split.samples` drawn per class: round(fraction * n_c), at least `at_least`
    (and at most n_c), without replacement, from a generator seeded by (seed, class, ids)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    by_class: dict[int, list[int]] = {}
    for i, s in enumerate(split.samples):
        by_class.setdefault(s.label, []).append(i)
    chosen: set[int] = set()
    for label in sorted(by_class):
        idx = by_class[label]
        digest = hashlib.sha256("\n".join(split.samples[i].image_id for i in idx).encode()).digest()
        rng = np.random.default_rng([seed, label, int.from_bytes(digest[:8], "little")])
        k = min(len(idx), max(at_least, int(round(fraction * len(idx)))))
        chosen.update(idx[j] for j in rng.choice(len(idx), size=k, replace=False))
    return chosen


def per_class_fraction(split: WSOLSplit, fraction: float, seed: int = 0) -> WSOLSplit:
    """A seeded `fraction` of every class of `split` (at least one image a class)."""
    keep = _per_class_draw(split, fraction, seed, at_least=1)
    return _with_samples(split, [s for i, s in enumerate(split.samples) if i in keep], f"fraction{fraction:g}")


def per_class_holdout(split: WSOLSplit, fraction: float, seed: int = 0) -> tuple[WSOLSplit, WSOLSplit]:
    """(rest, held): a seeded `fraction` of every class held out (at least one image of each class
    that has two or more; a class with one image stays in `rest`)."""
    by_class: dict[int, int] = {}
    for s in split.samples:
        by_class[s.label] = by_class.get(s.label, 0) + 1
    held_idx = _per_class_draw(split, fraction, seed, at_least=1)
    # a one-image class keeps its image for training
    held_idx = {i for i in held_idx if by_class[split.samples[i].label] > 1}
    rest = [s for i, s in enumerate(split.samples) if i not in held_idx]
    held = [s for i, s in enumerate(split.samples) if i in held_idx]
    return _with_samples(split, rest, f"train{1 - fraction:g}"), _with_samples(split, held, f"held{fraction:g}")


def proxy_split(split: WSOLSplit, metadata_dir: str | os.PathLike) -> WSOLSplit:
    """The images of `split` listed in `metadata_dir/<split>/image_ids_proxy.txt` (wsolevaluation's
    proxy training set, shipped for ILSVRC), in that file's order. A missing file, or a listed id
    that is not in the split, is a WSOLFormatError naming the file (and line)."""
    path = Path(metadata_dir) / split.name / PROXY_FILE
    if not path.is_file():
        raise WSOLFormatError([f"{path}: no proxy training list (wsolevaluation ships {PROXY_FILE} for ILSVRC "
                               "only); give a fraction instead (--proxy 0.1, data.proxy_fraction)"])
    by_id = {s.image_id: s for s in split.samples}
    samples, problems = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        image_id = line.strip()
        if not image_id:
            continue
        if image_id not in by_id:
            problems.append(f"{path}:{n}: {image_id!r} is not an image of the {split.name} split")
        else:
            samples.append(by_id[image_id])
    if problems or not samples:
        raise WSOLFormatError(problems or [f"{path}: lists no image"])
    return _with_samples(split, samples, "proxy")
