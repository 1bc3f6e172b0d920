"""Torch dataset over a parsed CUB split, its batch collation, and DataLoader worker seeding."""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .cub import MASK_THRESHOLD, CubSplit, Sample
from .images import ImageLoadError, load_mask, load_rgb

__all__ = ["CubDataset", "collate_samples", "seed_worker"]

log = logging.getLogger(__name__)

TransformFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], dict]


class CubDataset(Dataset):
    """Torch dataset over a :class:`CubSplit`.

    Each item is a dict:
        image: float32 (3, H, W) in [0, 1] (after ``transform``);
        label: int; boxes: float32 (K, 4) x0,y0,x1,y1 in transformed-image pixels;
        mask: bool (H, W), only when every sample of the split has a mask;
        image_id: str; index: int; orig_size: (W, H).
    With ``skip_bad_images`` an unreadable image yields ``{"skipped": True, "image_id",
    "index", "error"}`` and a warning instead of raising; :func:`collate_samples` drops it from
    the batch and lists it under ``batch["skipped"]`` so the run can report it.
    """

    def __init__(
        self,
        split: CubSplit,
        transform: TransformFn | None = None,
        skip_bad_images: bool = True,
        load_masks: bool = True,
        mask_threshold: int = MASK_THRESHOLD,
    ) -> None:
        self.split = split
        self.transform = transform
        self.skip_bad_images = skip_bad_images
        self.load_masks = load_masks and split.has_masks
        self.mask_threshold = mask_threshold

    def __len__(self) -> int:
        return len(self.split.samples)

    @property
    def class_names(self) -> list[str]:
        return self.split.class_names

    def _read(self, s: Sample) -> tuple[np.ndarray, np.ndarray | None]:
        image = load_rgb(self.split.image_root / s.image_id)
        if image.shape[1::-1] != tuple(s.size):
            log.debug("%s: stored size %s differs from metadata %s", s.image_id, image.shape[1::-1], s.size)
        mask = None
        if self.load_masks:
            fg = np.zeros(image.shape[:2], dtype=bool)
            for mp in s.mask_paths:
                m = load_mask(mp)
                if m.shape != fg.shape:
                    raise ImageLoadError(f"{mp}: mask is {m.shape[1]}x{m.shape[0]}, image is "
                                         f"{fg.shape[1]}x{fg.shape[0]}")
                fg |= m >= self.mask_threshold
            mask = fg.astype(np.uint8)
        return image, mask

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
                "mask": None if mask is None else torch.from_numpy(mask.astype(bool)),
            }
        item = {"image": out["image"], "label": s.label, "boxes": out["boxes"], "image_id": s.image_id,
                "index": index, "orig_size": tuple(s.size)}
        if out.get("mask") is not None:
            item["mask"] = out["mask"]
        return item


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and the dataset's albumentations pipeline from
    the worker's torch seed, so augmentations repeat for a seeded DataLoader generator."""
    info = torch.utils.data.get_worker_info()
    seed = info.seed % 2**32
    np.random.seed(seed)
    transform = getattr(info.dataset, "transform", None)
    if hasattr(transform, "set_seed"):
        transform.set_seed(seed)


def collate_samples(items: list[dict]) -> dict:
    """Batch dataset items; skipped ones go to ``batch["skipped"]`` (list of dicts).

    Returns a dict with image (B,3,H,W), label (B,), boxes (list of (K_i,4)), image_id (list),
    index (B,), orig_size (list), mask (B,H,W) bool when present, skipped (list). B may be 0.
    """
    good = [it for it in items if not it.get("skipped")]
    batch: dict = {"skipped": [{k: it[k] for k in ("image_id", "index", "error")} for it in items
                               if it.get("skipped")]}
    if not good:
        batch.update(image=torch.empty(0), label=torch.empty(0, dtype=torch.long), boxes=[], image_id=[],
                     index=torch.empty(0, dtype=torch.long), orig_size=[])
        return batch
    batch["image"] = torch.stack([it["image"] for it in good])
    batch["label"] = torch.tensor([it["label"] for it in good], dtype=torch.long)
    batch["boxes"] = [it["boxes"] for it in good]
    batch["image_id"] = [it["image_id"] for it in good]
    batch["index"] = torch.tensor([it["index"] for it in good], dtype=torch.long)
    batch["orig_size"] = [it["orig_size"] for it in good]
    if all("mask" in it for it in good):
        batch["mask"] = torch.stack([it["mask"] for it in good])
    return batch
