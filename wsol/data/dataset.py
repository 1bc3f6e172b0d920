"""Torch dataset over a parsed WSOL split (any dataset), its batch collation, and DataLoader worker seeding."""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .split import Sample, WSOLSplit
from .images import ImageLoadError, load_mask, load_rgb

__all__ = ["WSOLDataset", "CubDataset", "batch_gt_masks", "collate_samples", "seed_worker"]

log = logging.getLogger(__name__)

TransformFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], dict]


class WSOLDataset(Dataset):
    """Torch dataset over a :class:`WSOLSplit` (CUB, ILSVRC, OpenImages, ...).

    Each item is a dict:
        image: float32 (3, H, W) in [0, 1] (after ``transform``);
        label: int; boxes: float32 (K, 4) x0,y0,x1,y1 in transformed-image pixels (K = 0 where
        the split has none, e.g. ILSVRC train);
        mask: bool (H, W) foreground (the union of the image's instance masks), only when every
        sample of the split has a mask;
        ignore: bool (H, W), pixels left out of PxAP (the ignore mask minus the foreground), only
        when the split has ignore masks (OpenImages);
        image_id: str; index: int; orig_size: (W, H) of the image as read.
    With ``skip_bad_images`` an unreadable image yields ``{"skipped": True, "image_id",
    "index", "error"}`` and a warning instead of raising; :func:`collate_samples` drops it from
    the batch and lists it under ``batch["skipped"]`` so the run can report it.
    """

    def __init__(
        self,
        split: WSOLSplit,
        transform: TransformFn | None = None,
        skip_bad_images: bool = True,
        load_masks: bool = True,
        mask_threshold: int | None = None,
    ) -> None:
        self.split = split
        self.transform = transform
        self.skip_bad_images = skip_bad_images
        self.load_masks = load_masks and split.has_masks
        self.load_ignore = self.load_masks and split.has_ignore
        self.mask_threshold = split.mask_threshold if mask_threshold is None else mask_threshold

    def __len__(self) -> int:
        return len(self.split.samples)

    @property
    def class_names(self) -> list[str]:
        return self.split.class_names

    def _read(self, s: Sample) -> tuple[np.ndarray, np.ndarray | None]:
        """The image and its mask, uint8 (H, W): 1 foreground, 0 background, 255 ignore."""
        image = load_rgb(self.split.image_path(s))
        if s.size is not None and image.shape[1::-1] != tuple(s.size):
            log.debug("%s: stored size %s differs from metadata %s", s.image_id, image.shape[1::-1], s.size)
        mask = None
        if self.load_masks:
            fg = np.zeros(image.shape[:2], dtype=bool)
            for mp in s.mask_paths:
                fg |= self._mask(mp, fg.shape) >= self.mask_threshold
            mask = fg.astype(np.uint8)
            if self.load_ignore and s.ignore_path:
                mask[(self._mask(s.ignore_path, fg.shape) > 0) & ~fg] = 255
        return image, mask

    @staticmethod
    def _mask(path: str, shape: tuple[int, int]) -> np.ndarray:
        m = load_mask(path)
        if m.shape != shape:
            raise ImageLoadError(f"{path}: mask is {m.shape[1]}x{m.shape[0]}, image is {shape[1]}x{shape[0]}")
        return m

    def __getitem__(self, index: int) -> dict:
        s = self.split.samples[index]
        try:
            image, mask = self._read(s)
        except ImageLoadError as err:
            if not self.skip_bad_images:
                raise
            log.warning("skipping %s: %s", s.image_id, err)
            return {"skipped": True, "image_id": s.image_id, "index": index, "error": str(err)}
        boxes = np.asarray(s.boxes, dtype=np.float64).reshape(-1, 4)
        if self.transform is not None:
            out = self.transform(image, boxes, mask)
        else:
            out = {
                "image": torch.from_numpy(image.copy()).permute(2, 0, 1).float().div_(255),
                "boxes": torch.from_numpy(boxes).float(),
                "mask": None if mask is None else torch.from_numpy(mask == 1),
                "ignore": None if mask is None else torch.from_numpy(mask == 255),
            }
        item = {"image": out["image"], "label": s.label, "boxes": out["boxes"], "image_id": s.image_id,
                "index": index, "orig_size": tuple(image.shape[1::-1])}
        if out.get("mask") is not None:
            item["mask"] = out["mask"]
            if self.load_ignore:
                item["ignore"] = out["ignore"]
        return item


CubDataset = WSOLDataset  # the name before ILSVRC and OpenImages


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and the dataset's albumentations pipeline from
    the worker's torch seed, so augmentations repeat for a seeded DataLoader generator. (Not
    cv2.setNumThreads here: in a forked worker of a parent whose OpenCV thread pool ran, it deadlocks.)"""
    info = torch.utils.data.get_worker_info()
    seed = info.seed % 2**32
    np.random.seed(seed)
    transform = getattr(info.dataset, "transform", None)
    if hasattr(transform, "set_seed"):
        transform.set_seed(seed)


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """torch.stack; inside a DataLoader worker straight into shared memory, as torch's default_collate
    does (the batch then crosses to the main process without another copy)."""
    out = None
    if torch.utils.data.get_worker_info() is not None:
        numel = sum(t.numel() for t in tensors)
        storage = tensors[0]._typed_storage()._new_shared(numel, device=tensors[0].device)
        out = tensors[0].new(storage).resize_(len(tensors), *tensors[0].shape)
    return torch.stack(tensors, 0, out=out)


def collate_samples(items: list[dict]) -> dict:
    """Batch dataset items; skipped ones go to ``batch["skipped"]`` (list of dicts).

    Returns a dict with image (B,3,H,W), label (B,), boxes (list of (K_i,4)), image_id (list),
    index (B,), orig_size (list), mask (B,H,W) bool and ignore (B,H,W) bool when present, skipped
    (list). B may be 0.
    """
    good = [it for it in items if not it.get("skipped")]
    batch: dict = {"skipped": [{k: it[k] for k in ("image_id", "index", "error")} for it in items
                               if it.get("skipped")]}
    if not good:
        batch.update(image=torch.empty(0), label=torch.empty(0, dtype=torch.long), boxes=[], image_id=[],
                     index=torch.empty(0, dtype=torch.long), orig_size=[])
        return batch
    batch["image"] = _stack([it["image"] for it in good])
    batch["label"] = torch.tensor([it["label"] for it in good], dtype=torch.long)
    batch["boxes"] = [it["boxes"] for it in good]
    batch["image_id"] = [it["image_id"] for it in good]
    batch["index"] = torch.tensor([it["index"] for it in good], dtype=torch.long)
    batch["orig_size"] = [it["orig_size"] for it in good]
    for key in ("mask", "ignore"):
        if all(key in it for it in good):
            batch[key] = _stack([it[key] for it in good])
    return batch


def batch_gt_masks(batch: dict) -> np.ndarray:
    """PxAP's ground truth of a collated batch: uint8 (B,H,W), 1 foreground, 0 background, 255
    ignore (OpenImages' ignore regions, left out of PxAP as wsolevaluation does)."""
    gt = batch["mask"].numpy().astype(np.uint8)
    if "ignore" in batch:
        gt[batch["ignore"].numpy() & (gt == 0)] = 255
    return gt
