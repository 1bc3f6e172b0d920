"""Data for a training run: the synthetic CUB cache, the train / val splits and their loaders, and
the per-epoch seeding that makes shuffling and augmentation depend on (seed, epoch, rank) only."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from wsol.config import Config, ConfigError
from wsol.data import WSOLDataset, build_transform, collate_samples, detect_layout, load_split, seed_worker
from wsol.data.cub import official_split, read_official
from wsol.data.datasets import WSOL_DATASETS
from wsol.data.robustness import collate_classification

from .classification import classification_eval_dataset, classification_train_dataset, prepare_classification
from .distributed import DistInfo, barrier

__all__ = ["synthetic_root", "prepare_data", "train_loader", "val_loader", "seed_epoch"]

log = logging.getLogger(__name__)

def synthetic_root(cfg: Config) -> Path:
    """Where the synthetic dataset for `cfg.data.synthetic` lives (generated once, then reused)."""
    s = cfg.data.synthetic
    base = Path(cfg.data.cache_dir or os.environ.get("ART_WSOL_CACHE") or Path.home() / ".cache" / "art-wsol")
    name = f"synthetic-c{s.num_classes}-n{s.images_per_class}-s{s.size}-seed{s.seed}-f{s.train_fraction:g}"
    if cfg.data.dataset != "cub":   # an ILSVRC / OpenImages stand-in in wsolevaluation's layout
        return base / f"{cfg.data.dataset}-{name}"
    return base / name / "CUB_200_2011"


def _wsoleval_stand_in(cfg: Config, root: Path) -> None:
    """Write (or reuse) the ILSVRC / OpenImages stand-in of `cfg.data.synthetic` at `root`: of each
    class's images_per_class, the train_fraction are train, the rest val (a third) and test."""
    from wsol.data.synthetic_wsoleval import make_synthetic_ilsvrc, make_synthetic_openimages

    s = cfg.data.synthetic
    train = max(1, round(s.images_per_class * s.train_fraction))
    rest = max(2, s.images_per_class - train)
    make = make_synthetic_ilsvrc if cfg.data.dataset == "ilsvrc" else make_synthetic_openimages
    make(root, num_classes=s.num_classes, images_per_class=train, size=s.size, seed=s.seed,
         val_per_class=max(1, rest // 3), test_per_class=rest - max(1, rest // 3), progress=False)


def _synthetic_cub(root: Path, s) -> None:
    from wsol.data.synthetic import make_synthetic_cub

    params = dict(num_classes=s.num_classes, images_per_class=s.images_per_class, size=s.size,
                  seed=s.seed, train_fraction=s.train_fraction, progress=False)
    try:
        make_synthetic_cub(root, **params)
    except FileExistsError:
        if not _stale_synthetic(root):
            raise
        log.warning("%s holds an incomplete or older synthetic dataset (an interrupted run?); "
                    "generating it again", root)
        make_synthetic_cub(root, overwrite=True, **params)


def _ensure_synthetic(cfg: Config, info: DistInfo) -> Path:
    root = synthetic_root(cfg)
    s = cfg.data.synthetic
    if info.is_main:
        what = "CUB-format dataset" if cfg.data.dataset == "cub" else f"{cfg.data.dataset} stand-in"
        log.info("no --data given: training on the built-in synthetic %s at %s "
                 "(%d classes x %d images, %d px; generated once, reused after)",
                 what, root, s.num_classes, s.images_per_class, s.size)
        root.parent.mkdir(parents=True, exist_ok=True)
        # runs started side by side share the cache: one generates, the others wait and reuse
        with open(root.parent / ".generate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if cfg.data.dataset != "cub":
                _wsoleval_stand_in(cfg, root)
            else:
                _synthetic_cub(root, s)
    barrier(info)
    return root


def _stale_synthetic(root: Path) -> bool:
    """Whether `root` holds this generator's output that was cut off or comes from another version."""
    from wsol.data.synthetic import GENERATOR_VERSION

    try:
        info = json.loads((root / "synthetic_info.json").read_text())
    except (OSError, ValueError):
        return False
    return info.get("complete") is False or info.get("version") != GENERATOR_VERSION


def prepare_data(cfg: Config, info: DistInfo = DistInfo()):
    """(data root, train split, val split, [(image, error)] skipped while parsing).

    WSOL datasets (`wsol.data.datasets`: cub, ilsvrc, openimages; without `data.root` the built-in
    synthetic CUB or ILSVRC / OpenImages stand-in): validation is carved from train
    (CUB's official layout, `data.val_per_class`) or read from wsolevaluation's val metadata (ILSVRC:
    ImageNetV2; OpenImages: its val split), with `data.image_root` / `data.mask_root` where the images
    and masks live apart from the metadata. Classification sets (`data.dataset`): see
    wsol.engine.classification. Never the test split.
    """
    d = cfg.data
    if d.dataset not in WSOL_DATASETS:
        return (*prepare_classification(cfg), [])
    root = Path(d.root) if d.root else _ensure_synthetic(cfg, info)
    layout, found = detect_layout(root, d.dataset)
    skip = cfg.data.skip_bad_images
    if layout == "official":
        per_class = cfg.data.val_per_class
        if per_class <= 0:
            raise ConfigError(f"data.val_per_class must be > 0 for the official CUB layout at {root}: "
                              "validation is carved from train, never taken from test")
        data = read_official(found, skip_bad_images=skip)
        train_split, val_split = official_split(data, "train", per_class), official_split(data, "val", per_class)
        bad = list(data.bad_images)
    else:
        opts = dict(image_root=d.image_root, mask_root=d.mask_root, dataset=d.dataset)
        train_split, val_split, bad = load_split(root, "train", **opts), load_split(root, "val", **opts), []
    if d.proxy:
        train_split = _proxy(train_split, found, d)
    if not len(train_split) or not len(val_split):
        raise ConfigError(f"{root}: train has {len(train_split)} and val {len(val_split)} images; both must be > 0")
    return root, train_split, val_split, bad


def _proxy(train_split, metadata_dir: Path, d):
    """`data.proxy`: the proxy training set (image_ids_proxy.txt beside train's metadata) or, with
    `data.proxy_fraction`, a seeded share of every class."""
    from wsol.data.subset import per_class_fraction, proxy_split

    n = len(train_split)
    if d.proxy_fraction is not None:
        sub = per_class_fraction(train_split, d.proxy_fraction, d.proxy_seed)
    else:
        sub = proxy_split(train_split, metadata_dir)
    log.info("data.proxy: training on %d of the %d train images (%s)", len(sub), n,
             f"{d.proxy_fraction:g} of each class, seed {d.proxy_seed}" if d.proxy_fraction is not None
             else f"{metadata_dir}/train/image_ids_proxy.txt")
    return sub


def train_loader(cfg: Config, split, info: DistInfo,
                 load_masks: bool = False) -> tuple[DataLoader, DistributedSampler | None]:
    """The training loader; `load_masks`: the batches carry the GT masks too (a method trained on
    localization labels, e.g. FSL; image-level methods never read them)."""
    d = cfg.data
    if d.dataset in WSOL_DATASETS:
        ds = WSOLDataset(split, build_transform(d.train_transform, d.image_size, d.resize_size),
                        skip_bad_images=d.skip_bad_images, load_masks=load_masks)
        collate = collate_samples
    else:
        ds, collate = classification_train_dataset(cfg, split), collate_classification
    sampler = None
    if info.enabled:
        sampler = DistributedSampler(ds, info.world_size, info.rank, shuffle=True, seed=cfg.train.seed,
                                     drop_last=cfg.train.drop_last)
    drop = cfg.train.drop_last and len(ds) // max(info.world_size, 1) > cfg.train.batch_size
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=d.num_workers, collate_fn=collate, worker_init_fn=seed_worker,
                        generator=torch.Generator(), drop_last=drop)
    return loader, sampler


def val_loader(cfg: Config, split) -> DataLoader:
    d = cfg.data
    if d.dataset in WSOL_DATASETS:
        ds = WSOLDataset(split, build_transform(d.eval_transform, d.image_size, d.resize_size),
                        skip_bad_images=d.skip_bad_images)
        collate = collate_samples
    else:
        ds, collate = classification_eval_dataset(cfg, split), collate_classification
    if cfg.val.max_images is not None and cfg.val.max_images < len(ds):
        ds = torch.utils.data.Subset(ds, range(cfg.val.max_images))
    return DataLoader(ds, batch_size=cfg.val.batch_size, shuffle=False, num_workers=d.num_workers,
                      collate_fn=collate)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def seed_epoch(loader: DataLoader, sampler, cfg: Config, epoch: int, info: DistInfo) -> None:
    """Shuffling and augmentation of `epoch` depend on (seed, epoch, rank) only."""
    s = _epoch_seed(cfg.train.seed, epoch, info.rank)
    loader.generator.manual_seed(s)
    if sampler is not None:
        sampler.set_epoch(epoch)
    loader.dataset.transform.set_seed(s)  # used as is when num_workers == 0
